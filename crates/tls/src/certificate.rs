//! The server's certificate, handed to rustls per handshake through its resolver hook.
//!
//! rustls' `with_single_cert` fixes a certificate into the `ServerConfig` for good. A block
//! instead keeps its certificate (with its key and, later, an OCSP staple: all three live in
//! one `CertifiedKey`) behind a [`CertResolver`] that rustls asks at every handshake. So a
//! reload can put a new certificate in place without rebuilding the block's configuration,
//! which would throw away its session cache and ticket keys; a handshake already under way
//! keeps the certificate it was given.
//!
//! ```text
//!   TlsServer::replace_certificate ──► CertResolver::replace ─┐
//!   handshake ──► rustls ──► ResolvesServerCert::resolve ◄────┘ (the current one)
//! ```

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::identity::PeerCert;

/// A block's current certificate: what rustls sends, and its names for our logs.
#[derive(Debug)]
pub(crate) struct CertResolver {
    current: RwLock<Current>,
}

#[derive(Debug, Clone)]
struct Current {
    key: Arc<CertifiedKey>,
    leaf: Arc<PeerCert>,
}

impl CertResolver {
    /// Serve `key`, whose leaf certificate is `leaf`.
    pub(crate) fn new(key: CertifiedKey, leaf: PeerCert) -> CertResolver {
        CertResolver {
            current: RwLock::new(Current {
                key: Arc::new(key),
                leaf: Arc::new(leaf),
            }),
        }
    }

    /// Serve `key` from the next handshake on.
    pub(crate) fn replace(&self, key: CertifiedKey, leaf: PeerCert) {
        let next = Current {
            key: Arc::new(key),
            leaf: Arc::new(leaf),
        };
        // Poisoned only if a thread panicked while swapping two Arcs, which cannot leave
        // a half-written value behind.
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// The leaf certificate being served now.
    pub(crate) fn leaf(&self) -> Arc<PeerCert> {
        self.current().leaf
    }

    fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().key)
    }
}

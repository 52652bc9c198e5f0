//! `mtls-tls`: the only crate that depends on rustls.
//!
//! It turns validated settings into rustls configurations, and owns everything about the
//! handshake the rest of mtls needs to know:
//!
//! ```text
//!   ciphers   OpenSSL cipher strings / protocol names ──► rustls suites and versions
//!   server    ServerTlsSettings ──► TlsServer (certificate, verifier, sessions)
//!             ClientHello::read ─► pick a block by SNI ─► complete ─► HandshakeInfo
//!             (certificate: the block's certificate, behind rustls' resolver, replaceable)
//!   verifier  client_ca / trusted_ca / CRLs / verify_depth, with a Refusal for every "no",
//!             kept by a verifier of each handshake's own
//!   identity  the peer certificate's names, serial and fingerprint
//!   keylog    KeyLogFile: the server block's `keylog`, NSS key log lines, mode 0600
//!   client    ClientTlsSettings ──► TlsClient: TLS to upstreams with our certificate,
//!             verified by trusted_ca (CN fallback like nginx), sessions resumed
//!   probe     ProbeSettings ──► ProbeClient: `mtls get`'s connection, reporting the whole
//!             handshake (chain, CertificateRequest CA names, key log) through client's
//!             verifier, in the server's words; `for_load` + `connect_quick`: the same
//!             client for `mtls bench`, without the report, with a SessionReuse policy
//! ```
//!
//! `cause` walks an error's chain of causes by type, for every crate that meets TLS
//! errors under hyper's and io's.
//!
//! Certificates and keys are read with `mtls-pki`'s PEM/DER readers; nothing here parses
//! HTTP.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cause;
mod certificate;
pub mod ciphers;
pub mod client;
mod error;
pub mod identity;
pub mod keylog;
pub mod probe;
pub mod server;
pub mod tickets;
pub mod verifier;

pub use client::{ClientStream, ClientTlsSettings, TlsClient, UpstreamHandshake, UpstreamTlsError};
pub use identity::PeerCert;
pub use keylog::KeyLogFile;
pub use probe::{ProbeClient, ProbeError, ProbeInfo, ProbeSettings, QuickHandshake, SessionReuse};
pub use server::{
    ClientHello, HandshakeError, HandshakeInfo, ServerTlsSettings, TlsError, TlsServer,
};
pub use verifier::{Refusal, VerifyClient, VerifyStatus};
/// The TLS stream the gateway reads and writes after a handshake.
pub type ServerStream<IO> = tokio_rustls::server::TlsStream<IO>;

//! `mtls-verify`: the one certificate verifier of mtls.
//!
//! Every side that decides whether a certificate is good asks this crate, and only this
//! crate: the gateway's client-certificate verifier, the proxy's upstream verifier,
//! `mtls get` and `mtls pki verify`. The decision and its explanation are one value
//! ([`Failure`]: a stable [`Check`] name, the certificate it is about, one sentence), so the
//! command line can never call a certificate good that the gateway refuses.
//!
//! ```text
//!   Verifier::new(Policy { anchors, crls, purpose, depth, .. })      (once per TLS block)
//!       │
//!   verify(leaf, intermediates, name, time)                           (once per handshake)
//!       ├─ cert::Cert         parse each certificate once: extensions, key, defects
//!       ├─ path               build candidate paths (several issuers, loops, budget),
//!       │                     then RFC 5280 section 6 on each until one holds
//!       │    ├─ signature     aws-lc-rs; weak keys and SHA-1 refused
//!       │    ├─ names         name constraints (DNS, IP, email, URI, directory names)
//!       │    └─ crl           revocation: the newest CRL its issuer's key signed decides,
//!       │                     each CRL signature checked once per key (the OCSP seam)
//!       └─ hostname           RFC 6125 (and, when asked, the CN fallback nginx uses)
//!       ▼
//!   Ok(Verified { chain })  or  Err(Failure { check, about, sentence, chain })
//! ```
//!
//! Path validation is RFC 5280 section 6 for what private PKIs use, with the CA/Browser
//! Forum's rules on keys and signature algorithms. What is refused on purpose and what is
//! not supported is listed in `docs/CONFORMANCE.md`, with the conformance suite's results.
//!
//! All the work is bounded ([`budget`]): a pathological bundle of intermediates fails fast
//! with a sentence instead of burning CPU in a handshake. [`fitness`] is what can be known
//! of a server's own certificate at load time (`mtls check`), with the same check names.
//!
//! A [`Verifier`] remembers the signatures of intermediate CA certificates that verified
//! (never an end entity's), so the CA every client of a PKI sends costs one ECDSA
//! verification per verifier, not one per handshake.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod budget;
mod cert;
pub mod crl;
mod failure;
pub mod fitness;
pub mod hostname;
mod names;
mod path;
mod signature;

pub use failure::{Check, Failure, Link};
pub use hostname::PeerName;
pub use path::{CrlScope, Policy, Purpose, Verified, Verifier, anchor_problem};

//! `mtls-pki`: the certificate authority behind `mtls pki`.
//!
//! Everything a mutual-TLS deployment needs from a PKI, without a page of openssl commands
//! (seed 001: private key -> CSR -> the CA signs it -> certificate; seed 003: .p12 and .jks
//! for Java and browsers):
//!
//! ```text
//!   key ──► csr ──► ca::Ca::sign_csr ─┐                        (or any key + cert files)
//!                                     ├─► certs/NAME.crt + chain ─► Credentials ─┬─► p12::export
//!   ca::Ca::issue (key made here) ────┘          │               (key matches,   └─► jks::export
//!                                                ▼                chain ordered)
//!             ca::Ca::revoke ─► db (index.txt) ─► CRL (crl.pem)
//!
//!   p12::import, jks::read, pkcs7::read ──► keys and certificates back out
//!   show::describe(any file) ──► what it is, for humans or JSON
//! ```
//!
//! Whether a certificate is good is `mtls-verify`'s to say (the one verifier of every
//! side); this crate makes and reads them.
//!
//! This crate knows nothing of sockets: the `tls` crate turns its files into rustls
//! configurations. Certificates are made with rcgen and read with x509-parser; signatures
//! are checked with aws-lc-rs (through x509-parser's `verify-aws`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ca;
pub mod credentials;
pub mod db;
mod der;
pub mod dn;
pub mod encrypted;
pub mod error;
pub mod fs;
pub mod jks;
pub mod key;
pub mod names;
pub mod p12;
pub mod pem;
pub mod pkcs7;
pub mod show;
#[cfg(test)]
mod testing;

pub use ca::{Ca, InitOptions, IssueRequest, Issued, LeafOptions, RevokeTarget, SignRequest};
pub use credentials::Credentials;
pub use db::{Entry, Profile, Reason, Status};
pub use encrypted::Password;
pub use error::{Error, Result};
pub use key::KeyType;
pub use names::{San, Subject};

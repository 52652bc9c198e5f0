//! End-to-end tests of the `mtls` binary: one test binary, helpers in `util`.
//!
//! `pki` drives the CLI and checks files, exit codes and messages; `interop_pki` proves
//! that what we make is accepted by the real tools (openssl, keytool, Python's ssl);
//! `serve` runs the gateway against curl, `openssl s_client` and Python's ssl.

#![allow(clippy::unwrap_used)]

mod bench;
mod get;
mod hostile;
mod interop_pki;
mod limits;
mod pki;
mod proxy;
mod serve;
mod trace_oracle;
mod util;

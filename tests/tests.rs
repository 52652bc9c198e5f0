//! End-to-end tests of the `mtls` binary: one test binary, helpers in `util`.
//!
//! `pki` drives the CLI and checks files, exit codes and messages; `interop_pki` proves
//! that what we make is accepted by the real tools (openssl, keytool, Python's ssl);
//! `serve` runs the gateway against curl, `openssl s_client` and Python's ssl;
//! `scanners` against testssl.sh and sslyze.
//! `hostile` sends what an attacker would (path spellings past a location's rules, forged
//! identity headers, bad Host headers); `limits` holds deadlines and bounds.
//! `identity` proves that names from certificates cannot be forged: `$ssl_client_s_dn` is
//! compared byte for byte with nginx's, identity headers and log lines are escaped.
//! `encrypted_keys` reads keys openssl encrypted (both forms) in `pki`, `serve` and `get`,
//! and has openssl read the keys we encrypt.
//! `trace_peers` has real peers fail (Python's ssl, curl, openssl, Java, nginx) under
//! tcpdump and checks each verdict sentence of `mtls trace`, with tshark as the oracle.

#![allow(clippy::unwrap_used)]

mod bench;
mod conformance;
mod encrypted_keys;
mod get;
mod hostile;
mod identity;
mod interop_pki;
mod limits;
mod one_verifier;
mod pki;
mod proxy;
mod reload;
mod runtime;
mod scanners;
mod serve;
mod trace;
mod trace_oracle;
mod trace_peers;
mod util;

//! `mtls-inspect`: a sans-I/O TLS dissector.
//!
//! It will parse TLS records and handshake messages from bytes (TLS 1.2 and 1.3 shapes),
//! decrypt them with NSS key-log secrets, read pcap/pcapng captures with TCP reassembly,
//! compute JA3/JA4, and explain in plain words why a handshake failed. It takes `&[u8]`
//! and never opens a socket, so `mtls get --trace` and `mtls trace` share it.
//!
//! Empty until issue 5 lands.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

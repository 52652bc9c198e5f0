//! Integration tests of `mtls-inspect` (one binary, per the workspace style).

mod conversation;
mod fingerprint;
mod fixtures;
mod robustness;
mod util;

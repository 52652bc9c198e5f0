//! Integration tests of `mtls-inspect` (one binary, per the workspace style).

mod conversation;
mod fixtures;
mod robustness;
mod util;

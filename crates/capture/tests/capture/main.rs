//! The one integration-test binary of `mtls-capture`.

#![allow(clippy::unwrap_used)] // tests panic on purpose when something is off

mod damaged_capture;
mod packet;
mod properties;
mod reader;
mod real_capture;
mod reassembly;
mod util;

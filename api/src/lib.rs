//! The `sample-platform` binary's library: configuration, the HTTP API and the
//! wiring that starts every part of the platform.
//!
//! `main.rs` parses the command line and calls [`run`]; tests call
//! [`http::router`] (no socket) or [`platform::serve`] on `127.0.0.1:0`.

pub mod config;
pub mod http;
pub mod platform;

pub use config::{Cli, Command, Settings};
pub use platform::run;

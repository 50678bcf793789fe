//! The `sample-platform` binary's library: configuration, the HTTP API (GitHub
//! webhooks, GraphQL, health), operators' tokens, and the wiring that starts
//! every part of the platform.
//!
//! `main.rs` parses the command line and calls [`run`]; tests call
//! [`platform::serve`] on `127.0.0.1:0` and talk to it over HTTP.

pub mod auth;
pub mod catalogue;
pub mod client;
pub mod config;
pub mod demo;
pub mod files;
pub mod github;
pub mod graphql;
pub mod http;
pub mod platform;

pub use config::{Cli, Command, Settings};
pub use platform::run;

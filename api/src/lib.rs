//! The `sample-platform` binary's library: everything that faces the outside
//! (GitHub, operators, runners, browsers, the command line) and the wiring
//! that starts every part of the platform.
//!
//! `main.rs` parses the command line ([`Cli`], [`Command`]) and calls [`run`];
//! tests call [`serve::serve`] on `127.0.0.1:0` with their [`Settings`] and
//! talk to it over HTTP.
//!
//! - [`cli`]: the subcommands, and [`run`] that does each.
//! - [`serve`]: the wiring of `serve`: opens the database, serves HTTP,
//!   migrates, then starts the projectors and, when this instance leads, the
//!   process managers.
//! - [`http`]: the axum router: GitHub webhooks, the runner's endpoint,
//!   GraphQL over HTTP and WebSocket, files, `/healthz` and `/readyz`, the
//!   dashboard. Bad input is a 4xx with a reason and records nothing.
//! - [`github`]: webhook signatures (`X-Hub-Signature-256`) and payloads.
//! - [`graphql`]: queries over the read models, operators' mutations, the
//!   run-change subscription and the catalogue; kept in `api/schema.graphql`.
//! - [`audit_show`]: `audit show`, a run as of any position, from the log.
//! - [`auth`]: operators' API tokens and their scopes (a table; each change
//!   recorded in the `access` stream).
//! - [`config`]: settings from defaults, a TOML file, `SP_*` variables, flags.
//! - [`client`]: the command line as a client of a running platform.
//! - [`demo`]: `sample-platform demo`, the whole job on one machine.

pub mod audit_show;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod config_show;
pub mod demo;
pub mod github;
pub mod graphql;
pub mod http;
pub mod people;
pub mod serve;

pub use cli::{Cli, Command, run};
pub use config::Settings;

//! The Sample Platform's domain: what a test run is, which events it records,
//! and the rules that decide them. Pure Rust: no I/O, no async, no clock.
//!
//! Using it takes three steps, and the write side (`sp-commands`) does exactly these:
//!
//! 1. fold a run's recorded events into a [`RunState`] with [`RunState::evolve`]
//!    (or [`Aggregate::replay`]);
//! 2. call [`decide`] with the state, a [`RunCommand`] and a [`Context`] (the time
//!    now and the [`Policy`]); it answers the new events or a typed [`Rejection`];
//! 3. append those events with the state's version as the expected version.
//!
//! Events are stored as a type name, a schema version and JSON data
//! ([`codec`]); older shapes are upcast when read.
//!
//! The state machine makes the old platform's failures unrepresentable: a run that is
//! not final is [`Lifecycle::Active`], which cannot be built without a [`Deadline`];
//! a final run has exactly one [`Final`] and accepts only cleanup and reporting.
//!
//! Modules: [`run`] (stream `run-<uuid>`: [`RunEvent`], its state, commands and
//! [`decide`]); the other aggregates, each implementing [`Aggregate`] over its own
//! streams: [`catalogue`], [`delivery`] (deliveries and builds), [`pull_request`],
//! [`blocklist`], [`platform`] and [`notices`]; [`access`] (tokens made and
//! revoked, a record only); [`retention`] (which files of finished runs may go,
//! and the record of each deletion); [`summary`] (one line a person can read for any
//! event, for the audit log); [`aggregate`] (the trait);
//! [`intake`] (a GitHub delivery to a plan); [`policy`] (deadlines and retries);
//! [`verdict`] (judging results); [`protocol`] (the runner's JSON); [`ids`]
//! ([`RunId`], [`Platform`]); [`context`] ([`Context`]: the time and policy
//! `decide` sees); and [`codec`] ([`EventSchema`], [`Upcaster`]). The
//! crate root re-exports the types most callers need from them.

pub mod access;
pub mod aggregate;
pub mod blocklist;
pub mod catalogue;
pub mod codec;
pub mod comparison;
pub mod context;
pub mod custom;
pub mod delivery;
pub mod estimate;
pub mod ids;
pub mod intake;
pub mod kinds;
pub mod notices;
pub mod platform;
pub mod policy;
pub mod protocol;
pub mod pull_request;
pub mod retention;
pub mod run;
pub mod summary;
pub mod verdict;

pub use aggregate::Aggregate;
pub use codec::{DecodeError, EncodedEvent, EventSchema, Upcaster};
pub use context::Context;
pub use ids::{Platform, RunId};
pub use kinds::{InputKind, OutputKind};
pub use policy::{DeadlinePolicy, Policy, RetryPolicy};
pub use run::{
    Ancestry, Artifact, Deadline, DeadlineKind, ErrorClass, FailureReason, Final, Lifecycle, Phase,
    QueueRun, Rejection, Run, RunCommand, RunEvent, RunInfo, RunState, RunnerStage, Stage, Trigger,
    VmRecord, VmStatus, decide,
};
pub use verdict::{
    Counts, ExpectedOutput, OutputProduced, ProducedOutput, RegressionTest, SampleRef, TestResult,
    Verdict,
};

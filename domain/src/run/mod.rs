//! A test run: its events, state, commands and the rules between them.

mod commands;
mod decide;
pub mod events;
mod state;
mod types;

pub use commands::{QueueRun, Rejection, RunCommand};
pub use decide::decide;
pub use events::RunEvent;
pub use state::{Artifact, Final, Lifecycle, Phase, Run, RunInfo, RunState, VmRecord, VmStatus};
pub use types::{
    Ancestry, Deadline, DeadlineKind, ErrorClass, FailureReason, RunnerStage, Stage, Trigger,
};

#[cfg(test)]
mod tests;

//! The process managers as sagas. Every effect outside the platform is a
//! named step between an intent recorded first and an outcome recorded after;
//! it is made safe to repeat by what it carries (an idempotency key, a content
//! hash, a state already told), so a crash anywhere repeats nothing outside;
//! and a step whose effect outlives the run names the step that undoes it. An
//! undo that cannot finish ends in a state a person sees (`VmAbandoned`).
//!
//! [`STEPS`] is that table; the managers name their calls by it, and the
//! tests hold it to the events the domain really has.

/// One outside effect of a process manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// How logs, health and errors name it.
    pub name: &'static str,
    pub manager: &'static str,
    /// The recorded event that asks for it; the effect never comes first.
    pub intent: &'static str,
    /// What it does outside.
    pub effect: &'static str,
    /// Why doing it again (after a crash, a timeout, on another replica)
    /// repeats nothing outside.
    pub repeat: &'static str,
    /// The events that record how it went.
    pub outcomes: &'static [&'static str],
    pub undo: Undo,
}

/// How a step's effect is taken back when the run no longer wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undo {
    /// By another step of the table.
    By(&'static str),
    /// Its undo could not finish: a person is asked (`VmAbandoned`), and
    /// reconciliation records when it is done.
    Person,
    /// Nothing outlives the run that needs taking back, and why.
    Nothing(&'static str),
}

pub const CREATE_VM: Step = Step {
    name: "create VM",
    manager: "vm-manager",
    intent: "VmRequested",
    effect: "the provider creates the attempt's VM",
    repeat: "the create carries the attempt's recorded idempotency key: the cloud answers a \
             repeated create with the VM the first one made",
    outcomes: &["VmCreated", "VmCreateFailed"],
    undo: Undo::By(DELETE_VM.name),
};

pub const DELETE_VM: Step = Step {
    name: "delete VM",
    manager: "vm-manager",
    intent: "VmDeleteRequested",
    effect: "the provider deletes the VM",
    repeat: "a VM that is already gone counts as deleted",
    outcomes: &["VmDeleted", "VmDeleteFailed", "VmAbandoned"],
    undo: Undo::Person,
};

pub const FETCH_ARTIFACT: Step = Step {
    name: "fetch artifact",
    manager: "artifacts",
    intent: "Queued",
    effect: "the build is downloaded into the object store",
    repeat: "the store is content-addressed: a second download keeps the same object under \
             the same SHA-256, and only a complete one is kept",
    outcomes: &["ArtifactFetched", "ArtifactUnavailable"],
    undo: Undo::Nothing("the object is shared by its hash with every run of that build"),
};

pub const REPORT_STATUS: Step = Step {
    name: "report status",
    manager: "statuses",
    intent: "Completed",
    effect: "GitHub shows the commit status of the run's state",
    repeat: "a state told is recorded (StatusReported) and never sent again; one sent but not \
             yet recorded when the process died is sent again with the same value, which GitHub \
             keeps as one status",
    outcomes: &["StatusReported", "StatusReportFailed"],
    undo: Undo::Nothing("the next state of the commit's newest run overwrites it"),
};

pub const WRITE_COMMENT: Step = Step {
    name: "write pull request comment",
    manager: "comments",
    intent: "Completed",
    effect: "the pull request's one summary comment says what its head's runs found",
    repeat: "the comment's id is recorded (CommentWritten) and later heads edit it; before \
             posting, the pull request's comments are searched for the platform's hidden \
             marker, so a comment posted but not recorded when the process died is edited, \
             never posted twice",
    outcomes: &["CommentWritten", "CommentFailed"],
    undo: Undo::Nothing("the next head's summary replaces it"),
};

pub const DELETE_ORPHAN: Step = Step {
    name: "delete orphan VM",
    manager: "reconcile",
    intent: "NoticeRecorded",
    effect: "the provider deletes a VM no run accounts for",
    repeat: "a VM that is already gone counts as deleted",
    outcomes: &["NoticeRecorded"],
    undo: Undo::Nothing("the VM was not wanted"),
};

/// Every outside effect of the process managers.
pub const STEPS: &[Step] = &[
    CREATE_VM,
    DELETE_VM,
    FETCH_ARTIFACT,
    REPORT_STATUS,
    WRITE_COMMENT,
    DELETE_ORPHAN,
];

impl Step {
    /// The step's name with what it acts on: `create VM sp-linux-…`.
    pub fn on(&self, target: &str) -> String {
        format!("{} {target}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use strum::VariantNames;

    use super::*;

    fn recorded(name: &str) -> bool {
        sp_domain::RunEvent::VARIANTS.contains(&name)
            || sp_domain::notices::NoticeEvent::VARIANTS.contains(&name)
            || sp_domain::pull_request::PullRequestEvent::VARIANTS.contains(&name)
    }

    #[test]
    fn every_step_is_asked_for_and_answered_by_real_events() {
        for step in STEPS {
            assert!(
                recorded(step.intent),
                "{}: no event {}",
                step.name,
                step.intent
            );
            assert!(!step.outcomes.is_empty(), "{}: no outcome", step.name);
            for outcome in step.outcomes {
                assert!(recorded(outcome), "{}: no event {outcome}", step.name);
            }
        }
    }

    #[test]
    fn every_undo_is_a_step_or_says_why_none_is_needed() {
        for step in STEPS {
            match step.undo {
                Undo::By(undo) => assert!(
                    STEPS.iter().any(|s| s.name == undo),
                    "{}: its undo {undo} is not a step",
                    step.name
                ),
                Undo::Nothing(why) => assert!(!why.is_empty(), "{}", step.name),
                // The undo of last resort must be able to say so.
                Undo::Person => assert!(step.outcomes.contains(&"VmAbandoned"), "{}", step.name),
            }
        }
    }
}

//! One line a person can read for any stored event, and the thing it is
//! about, for the audit log: `summarize` picks the event's family by its
//! stream's name and says what happened in words.

use crate::access::{self, AccessEvent};
use crate::blocklist::{self, BlocklistEvent};
use crate::catalogue::CatalogueEvent;
use crate::codec::EventSchema;
use crate::delivery::{BuildEvent, DeliveryEvent, DeliveryOutcome};
use crate::notices::{self, NoticeEvent};
use crate::platform::PlatformEvent;
use crate::pull_request::PullRequestEvent;
use crate::retention::{self, RetentionEvent};
use crate::run::{ErrorClass, RunEvent, RunnerStage, Trigger};
use crate::verdict::Verdict;

/// What the audit log shows of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// What the event is about beyond its stream, where a stream holds many
    /// things: `test:<id>` and `sample:<sha256>` in the catalogue,
    /// `github:<login>` in the blocklist, `token:<name>` in `access`,
    /// `run:<id>` in `retention`.
    pub subject: Option<String>,
    pub line: String,
}

impl Summary {
    fn of(line: String) -> Self {
        Summary {
            subject: None,
            line,
        }
    }

    fn about(subject: String, line: String) -> Self {
        Summary {
            subject: Some(subject),
            line,
        }
    }
}

/// The summary of an event of `stream`, from its stored form. An event that
/// cannot be read is summarised as such, never skipped.
pub fn summarize(stream: &str, event_type: &str, schema_version: u32, data: &str) -> Summary {
    fn read<E: EventSchema>(
        event_type: &str,
        schema_version: u32,
        data: &str,
        say: impl FnOnce(E) -> Summary,
    ) -> Summary {
        match E::decode(event_type, schema_version, data) {
            Ok(event) => say(event),
            Err(e) => Summary::of(format!("{event_type} that cannot be read: {e}")),
        }
    }
    let (t, v) = (event_type, schema_version);
    match stream {
        s if s.starts_with("run-") => read(t, v, data, |e: RunEvent| of_run(&e)),
        "catalogue" => read(t, v, data, catalogue),
        s if s.starts_with("delivery-") => read(t, v, data, delivery),
        s if s.starts_with("build-") => read(t, v, data, build),
        s if s.starts_with("pr-") => read(t, v, data, pull_request),
        s if s.starts_with("platform-") => read(t, v, data, platform),
        blocklist::STREAM => read(t, v, data, blocked),
        notices::STREAM => read(t, v, data, notice),
        access::STREAM => read(t, v, data, access),
        retention::STREAM => read(t, v, data, retained),
        _ => Summary::of(format!("{event_type} on a stream this build does not know")),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn class(c: ErrorClass) -> &'static str {
    match c {
        ErrorClass::Retryable => "retryable",
        ErrorClass::Quota => "quota",
        ErrorClass::Permanent => "permanent",
    }
}

/// `text`, or `: text` after something when not empty.
fn then(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// A run event's summary, for a reader that has decoded it already.
pub fn of_run(event: &RunEvent) -> Summary {
    use RunEvent as E;
    Summary::of(match event {
        E::Queued(e) => {
            let trigger = match &e.trigger {
                Trigger::Push { branch } => format!("a push to {branch}"),
                Trigger::PullRequest { number, .. } => format!("pull request #{number}"),
                Trigger::Manual { requested_by, note } => format!(
                    "{requested_by} by hand{}",
                    then(note.as_deref().unwrap_or_default())
                ),
                Trigger::Custom { login, note } => format!(
                    "a custom run by @{login}{}",
                    then(note.as_deref().unwrap_or_default())
                ),
            };
            format!(
                "queued {}@{} on {} for {trigger}, {} tests",
                e.repository,
                short(&e.commit_sha),
                e.platform,
                e.tests.len()
            )
        }
        E::Superseded(e) => format!("superseded by run {}{}", e.by, then(&e.reason)),
        E::Cancelled(e) => format!("cancelled{}", then(&e.reason)),
        E::ArtifactFetched(e) => format!(
            "build artifact fetched: {} bytes, sha256 {}",
            e.size_bytes,
            short(&e.sha256)
        ),
        E::ArtifactUnavailable(e) => format!(
            "build artifact unavailable ({}){}",
            class(e.class),
            then(&e.reason)
        ),
        E::VmRequested(e) => format!("VM {} requested for attempt {}", e.vm_name, e.attempt),
        E::VmCreated(e) => format!("VM {} created for attempt {}", e.vm_name, e.attempt),
        E::VmCreateFailed(e) => format!(
            "VM {} not created ({}){}",
            e.vm_name,
            class(e.class),
            then(&e.message)
        ),
        E::Progress(e) => format!(
            "runner {}, {} of {} tests{}",
            match e.stage {
                RunnerStage::Preparing => "preparing",
                RunnerStage::Testing => "testing",
            },
            e.done,
            e.total,
            then(&e.message)
        ),
        E::SampleResult(e) => format!(
            "test {} exited {} after {} ms{}",
            e.result.test_id,
            e.result.exit_code,
            e.result.runtime_ms,
            if e.result.timed_out {
                ", killed at its timeout"
            } else {
                ""
            }
        ),
        E::TimedOut(e) => format!("timed out while {} (attempt {})", e.stage, e.attempt),
        E::RetryScheduled(e) => format!(
            "attempt {} scheduled for {}{}",
            e.next_attempt,
            e.not_before.format("%Y-%m-%d %H:%M:%S UTC"),
            then(&e.reason)
        ),
        E::VmDeleteRequested(e) => format!("VM {} to be deleted{}", e.vm_name, then(&e.reason)),
        E::VmDeleted(e) => format!("VM {} deleted", e.vm_name),
        E::VmDeleteFailed(e) => format!(
            "VM {} not deleted ({}){}",
            e.vm_name,
            class(e.class),
            then(&e.message)
        ),
        E::VmAbandoned(e) => format!(
            "VM {} left to a person after {} failed deletions{}",
            e.vm_name,
            e.failures,
            then(&e.reason)
        ),
        E::Failed(e) => format!(
            "failed while {} ({}){}",
            e.reason.stage,
            class(e.reason.class),
            then(&e.reason.message)
        ),
        E::Completed(e) => format!(
            "completed: {}, {} passed and {} failed",
            match e.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
            },
            e.counts.passed,
            e.counts.failed
        ),
        E::StatusReported(e) => format!(
            "GitHub told {} {}{}",
            e.context,
            e.state,
            then(&e.description)
        ),
        E::ReportRefused(e) => format!(
            "a report of attempt {} refused{}",
            e.attempt,
            then(&e.reason)
        ),
        E::StatusReportFailed(e) => format!(
            "GitHub not told {} {} ({}){}",
            e.context,
            e.state,
            class(e.class),
            then(&e.message)
        ),
    })
}

fn catalogue(event: CatalogueEvent) -> Summary {
    use CatalogueEvent as E;
    match event {
        E::SampleAdded { sample, .. } => Summary::about(
            format!("sample:{}", sample.sha256),
            format!(
                "sample {} added: {} bytes, sha256 {}{}",
                sample.name,
                sample.size_bytes,
                short(&sample.sha256),
                if sample.tags.is_empty() {
                    String::new()
                } else {
                    format!(", tagged {}", sample.tags.join(", "))
                }
            ),
        ),
        E::TestDefined { test, .. } => Summary::about(
            format!("test:{}", test.id),
            format!(
                "test {} defined: `{}` on sample {}, exit code {} expected, {} outputs{}",
                test.id,
                test.command,
                short(&test.sample),
                test.expected_exit_code,
                test.outputs.len(),
                if test.active { "" } else { ", inactive" }
            ),
        ),
        E::TestActivationChanged {
            test_id,
            active,
            reason,
            ..
        } => Summary::about(
            format!("test:{test_id}"),
            format!(
                "test {test_id} {}{}",
                if active { "activated" } else { "deactivated" },
                then(&reason)
            ),
        ),
        E::OutputAccepted {
            test_id,
            platform,
            output,
            sha256,
            as_baseline,
            run_id,
            accepted_by,
            reason,
            ..
        } => Summary::about(
            format!("test:{test_id}"),
            format!(
                "{output} of test {test_id} on {platform} (sha256 {}) accepted as {} from run {run_id} by {accepted_by}{}",
                short(&sha256),
                if as_baseline {
                    "the new baseline"
                } else {
                    "a variant"
                },
                then(&reason)
            ),
        ),
    }
}

fn delivery(event: DeliveryEvent) -> Summary {
    let DeliveryEvent::DeliveryHandled {
        event,
        action,
        repository,
        sender,
        outcome,
        ..
    } = event;
    let what = match action {
        Some(action) => format!("{event} {action}"),
        None => event,
    };
    let outcome = match outcome {
        DeliveryOutcome::Queued { runs, superseded } => format!(
            "{} runs queued, {} superseded",
            runs.len(),
            superseded.len()
        ),
        DeliveryOutcome::Cancelled { runs } => format!("{} runs cancelled", runs.len()),
        DeliveryOutcome::BuildRecorded => "build recorded".into(),
        DeliveryOutcome::Pong => "ping answered".into(),
        DeliveryOutcome::Ignored { reason } => format!("ignored{}", then(&reason)),
    };
    Summary::of(format!(
        "GitHub {what}{}{}: {outcome}",
        repository.map(|r| format!(" on {r}")).unwrap_or_default(),
        sender.map(|s| format!(" from {s}")).unwrap_or_default(),
    ))
}

fn build(event: BuildEvent) -> Summary {
    let BuildEvent::BuildFinished {
        repository,
        commit_sha,
        workflow,
        conclusion,
        branch,
        ..
    } = event;
    Summary::of(format!(
        "workflow {workflow} finished {conclusion} for {repository}@{}{}",
        short(&commit_sha),
        branch.map(|b| format!(" on {b}")).unwrap_or_default()
    ))
}

fn pull_request(event: PullRequestEvent) -> Summary {
    use PullRequestEvent as E;
    Summary::of(match event {
        E::HeadObserved(h) => format!(
            "head {} is {} ({}) by {}, {} runs planned",
            h.seq,
            short(&h.sha),
            h.head_ref,
            h.author,
            h.runs.len()
        ),
        E::PullRequestClosed(_) => "closed".into(),
        E::CommentWritten(c) => format!(
            "summary comment {} for head {} (comment {})",
            if c.posted { "posted" } else { "edited" },
            c.head_seq,
            c.comment_id
        ),
        E::CommentFailed(c) => format!(
            "summary comment for head {} not written ({}){}",
            c.head_seq,
            class(c.class),
            then(&c.message)
        ),
    })
}

fn platform(event: PlatformEvent) -> Summary {
    Summary::of(match event {
        PlatformEvent::PlatformPaused(c) => format!("{} paused{}", c.platform, then(&c.note)),
        PlatformEvent::PlatformResumed(c) => format!("{} resumed{}", c.platform, then(&c.note)),
    })
}

fn blocked(event: BlocklistEvent) -> Summary {
    match event {
        BlocklistEvent::UserBlocked { login, reason, .. } => Summary::about(
            format!("github:{login}"),
            format!("{login} blocked{}", then(&reason)),
        ),
        BlocklistEvent::UserUnblocked { login, .. } => {
            Summary::about(format!("github:{login}"), format!("{login} unblocked"))
        }
    }
}

fn notice(event: NoticeEvent) -> Summary {
    let NoticeEvent::NoticeRecorded { kind, message, .. } = event;
    Summary::of(format!("{kind}{}", then(&message)))
}

fn access(event: AccessEvent) -> Summary {
    match event {
        AccessEvent::TokenCreated { name, scopes, .. } => Summary::about(
            format!("token:{name}"),
            format!("token {name} created, scopes {}", scopes.join(", ")),
        ),
        AccessEvent::TokenRevoked { name, .. } => {
            Summary::about(format!("token:{name}"), format!("token {name} revoked"))
        }
        AccessEvent::RoleGranted { login, role, .. } => {
            Summary::about(format!("github:{login}"), format!("{login} made {role}"))
        }
        AccessEvent::RoleRevoked { login, role, .. } => Summary::about(
            format!("github:{login}"),
            format!("{login} is no longer {role}"),
        ),
        AccessEvent::SignedIn { login, .. } => {
            Summary::about(format!("github:{login}"), format!("{login} signed in"))
        }
        AccessEvent::SignedOut { login, .. } => {
            Summary::about(format!("github:{login}"), format!("{login} signed out"))
        }
    }
}

fn retained(event: RetentionEvent) -> Summary {
    match event {
        RetentionEvent::RunFilesDeleted {
            run,
            kind,
            deleted,
            kept,
            policy,
            ..
        } => Summary::about(
            format!("run:{run}"),
            format!(
                "{} {kind} files of run {run} deleted by retention{}: {policy}",
                deleted.len(),
                if kept.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} kept: another run or the catalogue still needs them)",
                        kept.len()
                    )
                }
            ),
        ),
        RetentionEvent::FileDeleteFailed {
            run,
            kind,
            key,
            class: c,
            message,
            ..
        } => Summary::about(
            format!("run:{run}"),
            format!(
                "{kind} {} of run {run} not deleted ({}){}",
                short(&key),
                class(c),
                then(&message)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_that_cannot_be_read_is_said_so() {
        let s = summarize("catalogue", "TestDefined", 1, r#"{"at": 5}"#);
        assert!(
            s.line.starts_with("TestDefined that cannot be read"),
            "{s:?}"
        );
        let s = summarize("elsewhere", "Odd", 1, "{}");
        assert_eq!(s.line, "Odd on a stream this build does not know");
    }

    #[test]
    fn a_baseline_approval_says_who_what_and_why() {
        let data = r#"{"at":"2026-12-07T10:00:00Z","test_id":"t1","platform":"linux",
            "output":"out.srt","sha256":"0123456789abcdef0123","as_baseline":true,
            "run_id":"00000000-0000-0000-0000-000000000007","accepted_by":"github:alice",
            "reason":"new timing"}"#;
        let s = summarize("catalogue", "OutputAccepted", 1, data);
        assert_eq!(s.subject.as_deref(), Some("test:t1"));
        assert_eq!(
            s.line,
            "out.srt of test t1 on linux (sha256 0123456789ab) accepted as the new baseline \
             from run 00000000-0000-0000-0000-000000000007 by github:alice: new timing"
        );
    }
}

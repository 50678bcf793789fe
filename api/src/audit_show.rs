//! `sample-platform audit show RUN [--at POSITION]`: a run as it was just
//! after an event of the log (or now), and its trail, each event in a line a
//! person can read. Read from the log itself, so it answers even when the
//! read models lag or are being rebuilt.

use std::fmt::Write as _;

use anyhow::{Context as _, bail};
use sp_domain::RunId;
use sp_domain::summary::summarize;
use sp_eventstore::EventStore;
use sp_projections::run_as_of;

/// The text `audit show` prints for `run`, as of `at` (the latest event
/// when `None`).
pub async fn show(store: &dyn EventStore, run: &str, at: Option<i64>) -> anyhow::Result<String> {
    let id: RunId = run.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let events = store
        .read_stream(&id.stream(), 1)
        .await
        .context("reading the run's events")?;
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        bail!("there is no run {run} in this database's log");
    };
    let at = at.unwrap_or(last.position);
    let Some(row) = run_as_of(store, id, at)
        .await
        .context("folding the run's events")?
    else {
        bail!(
            "run {run} did not exist yet at position {at}: its first event is at position {}",
            first.position
        );
    };
    let mut out = String::new();
    let when = events
        .iter()
        .take_while(|e| e.position <= at)
        .last()
        .map(|e| e.recorded_at.to_rfc3339())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "run {run} as of position {at} ({when}){}",
        if at >= last.position {
            ", its latest event"
        } else {
            ""
        }
    );
    let mut fact = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<9} {value}");
    };
    fact(
        "status",
        format!(
            "{} (stage {}, attempt {})",
            row.status, row.stage, row.attempt
        ),
    );
    fact(
        "commit",
        format!("{}@{} on {}", row.repository, row.commit_sha, row.platform),
    );
    fact(
        "trigger",
        match (&row.pull_request, &row.branch, &row.requested_by) {
            (Some(pr), _, _) => format!("pull request #{pr}"),
            (None, Some(branch), _) => format!("{} to {branch}", row.trigger_kind),
            (None, None, Some(by)) => format!("{} by {by}", row.trigger_kind),
            _ => row.trigger_kind.clone(),
        },
    );
    if let Some(verdict) = &row.verdict {
        fact(
            "verdict",
            format!(
                "{verdict}: {} passed, {} failed",
                row.passed.unwrap_or(0),
                row.failed.unwrap_or(0)
            ),
        );
    } else {
        fact(
            "samples",
            format!("{} of {} done", row.samples_done, row.samples_total),
        );
    }
    if let Some(reason) = &row.final_reason {
        fact("ended", reason.clone());
    }
    if let Some(problem) = &row.last_problem {
        fact("problem", problem.clone());
    }
    if let Some(by) = &row.superseded_by {
        fact("replaced", format!("by run {by}"));
    }
    let _ = writeln!(
        out,
        "\ntrail ({} events; those after position {at} are marked later):",
        events.len()
    );
    for e in &events {
        let summary = summarize(
            &e.stream_id,
            &e.event_type,
            e.schema_version,
            e.data.as_str(),
        );
        let _ = writeln!(
            out,
            "{} {:>8}  {}  {:<20} {:<24} {}",
            if e.position > at { "later" } else { "     " },
            e.position,
            e.recorded_at.format("%Y-%m-%d %H:%M:%S"),
            e.event_type,
            e.metadata.actor,
            summary.line
        );
    }
    Ok(out)
}

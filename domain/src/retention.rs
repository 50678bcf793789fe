//! Retention: which files of finished runs may go (build artifacts, produced
//! outputs, runner logs), by age and by keeping the last runs of each branch
//! or pull request on each platform; and the record of each deletion (stream
//! `retention`).
//!
//! Only finished runs are judged, so nothing a run still needs can be due. A
//! file shared by several runs (outputs and artifacts are kept once by their
//! SHA-256) goes only when every run holding it is due; the manager also
//! keeps every output the catalogue approves or accepts, and never touches a
//! sample.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::EventSchema;
use crate::ids::RunId;
use crate::run::ErrorClass;

pub const STREAM: &str = "retention";

/// The files retention deletes, each kind by its own rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// The build's program a run tested.
    Artifact,
    /// What a run's tests produced.
    Output,
    /// What a run's runner uploaded: its log, standard error…
    Log,
}

impl FileKind {
    pub const ALL: [FileKind; 3] = [FileKind::Artifact, FileKind::Output, FileKind::Log];

    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Artifact => "artifact",
            FileKind::Output => "output",
            FileKind::Log => "log",
        }
    }

    pub fn parse(text: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long one kind of file is kept after its run finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A finished run's files go this many days after it finished…
    pub after_days: u32,
    /// …unless it is one of the last this many finished runs of its branch
    /// (or pull request) on its platform.
    #[serde(default)]
    pub keep_last: u32,
}

impl Rule {
    /// The rule in words, recorded with every deletion it makes.
    pub fn describe(&self, kind: FileKind) -> String {
        let kept = if self.keep_last > 0 {
            format!(
                ", except for the last {} finished runs of each branch or pull request on each platform",
                self.keep_last
            )
        } else {
            String::new()
        };
        format!(
            "{kind} files are kept {} days after their run finished{kept}",
            self.after_days
        )
    }
}

/// The policy: a rule per kind; a kind without one is kept for ever.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Rule>,
}

impl RetentionPolicy {
    pub fn rule(&self, kind: FileKind) -> Option<Rule> {
        match kind {
            FileKind::Artifact => self.artifacts,
            FileKind::Output => self.outputs,
            FileKind::Log => self.logs,
        }
    }

    pub fn is_empty(&self) -> bool {
        FileKind::ALL.iter().all(|k| self.rule(*k).is_none())
    }
}

/// A finished run as retention judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedRun {
    pub run: RunId,
    pub repository: String,
    /// Its branch, `#<number>` for a pull request, or empty (a manual run).
    pub line: String,
    pub platform: String,
    pub finished_at: DateTime<Utc>,
}

/// The runs whose files `rule` lets go at `now`: finished more than its days
/// ago, and not among the last `keep_last` of their branch on their
/// platform. Once due, a run stays due: it only ages, and only newer runs
/// join its line.
pub fn due(runs: &[FinishedRun], rule: &Rule, now: DateTime<Utc>) -> HashSet<RunId> {
    let cutoff = now - Duration::days(i64::from(rule.after_days));
    let mut lines: BTreeMap<(&str, &str, &str), Vec<&FinishedRun>> = BTreeMap::new();
    for r in runs {
        lines
            .entry((&r.repository, &r.line, &r.platform))
            .or_default()
            .push(r);
    }
    let mut due = HashSet::new();
    for mut line in lines.into_values() {
        line.sort_by(|a, b| b.finished_at.cmp(&a.finished_at).then(b.run.cmp(&a.run)));
        due.extend(
            line.into_iter()
                .skip(rule.keep_last as usize)
                .filter(|r| r.finished_at < cutoff)
                .map(|r| r.run),
        );
    }
    due
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumCount,
)]
pub enum RetentionEvent {
    /// A finished run's files of one kind are gone by `policy`: those
    /// deleted now, and those kept because another run still holds them or
    /// the catalogue approves them (they go with the last run holding them).
    /// Recorded once per run and kind.
    RunFilesDeleted {
        at: DateTime<Utc>,
        run: RunId,
        kind: FileKind,
        /// A SHA-256 (artifacts, outputs) or `<attempt>/<name>` (logs).
        deleted: Vec<String>,
        #[serde(default)]
        kept: Vec<String>,
        policy: String,
    },
    /// Deleting a file failed; the next sweep tries again.
    FileDeleteFailed {
        at: DateTime<Utc>,
        run: RunId,
        kind: FileKind,
        key: String,
        class: ErrorClass,
        message: String,
    },
}

impl EventSchema for RetentionEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn run(n: u128, line: &str, platform: &str, days_ago: i64, now: DateTime<Utc>) -> FinishedRun {
        FinishedRun {
            run: RunId(Uuid::from_u128(n)),
            repository: "o/r".into(),
            line: line.into(),
            platform: platform.into(),
            finished_at: now - Duration::days(days_ago),
        }
    }

    #[test]
    fn old_runs_beyond_the_last_few_of_their_line_are_due() {
        let now = Utc::now();
        let runs = [
            run(1, "master", "linux", 40, now),
            run(2, "master", "linux", 35, now),
            run(3, "master", "linux", 31, now),
            run(4, "master", "linux", 1, now),
            // Another platform and another line keep their own last runs.
            run(5, "master", "windows", 50, now),
            run(6, "#7", "linux", 60, now),
            run(7, "#7", "linux", 45, now),
        ];
        let rule = Rule {
            after_days: 30,
            keep_last: 2,
        };
        let mut due: Vec<u128> = due(&runs, &rule, now)
            .into_iter()
            .map(|r| r.0.as_u128())
            .collect();
        due.sort_unstable();
        assert_eq!(due, [1, 2], "run 3 is among master's last two, 4 is recent");
        let age_only = Rule {
            after_days: 30,
            keep_last: 0,
        };
        assert_eq!(super::due(&runs, &age_only, now).len(), 6);
        assert!(
            Rule {
                after_days: 7,
                keep_last: 3
            }
            .describe(FileKind::Log)
            .contains("last 3 finished runs")
        );
    }
}

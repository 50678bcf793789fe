//! Identifiers that cross boundaries: runs and platforms.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The identity of one test run. Its events live in the stream `run-<uuid>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub Uuid);

/// Namespace for run ids derived from an external key (a webhook delivery, say),
/// so that the same delivery names the same run on every replica and after restarts.
const RUN_NAMESPACE: Uuid = Uuid::from_u128(0x5b1f_3c2e_8d4a_4e6b_9a70_2f1c_6d8e_0a31);

impl RunId {
    const STREAM_PREFIX: &'static str = "run-";

    /// A run id that is a pure function of `key`: the same key always gives the same run.
    pub fn derived(key: &str) -> Self {
        RunId(Uuid::new_v5(&RUN_NAMESPACE, key.as_bytes()))
    }

    /// The event stream that holds this run.
    pub fn stream(&self) -> String {
        format!("{}{}", Self::STREAM_PREFIX, self.0)
    }

    /// The run whose stream this is, if it is a run stream.
    pub fn from_stream(stream: &str) -> Option<Self> {
        stream.strip_prefix(Self::STREAM_PREFIX)?.parse().ok()
    }

    /// A short, stable fragment for names that have length limits (VM names).
    pub fn short(&self) -> String {
        self.0.simple().to_string()[..12].to_string()
    }
}

/// A string that is not a run id (a UUID).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a run id (a UUID)")]
pub struct InvalidRunId(pub String);

impl std::str::FromStr for RunId {
    type Err = InvalidRunId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(RunId)
            .map_err(|_| InvalidRunId(s.to_string()))
    }
}

/// How rows that store a run id as text are read (`#[sqlx(try_from)]`).
impl TryFrom<String> for RunId {
    type Error = InvalidRunId;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A platform tests run on (`linux`, `windows`). Lower-case letters, digits and
/// dashes, so it can appear in VM names, labels and status contexts unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform name {0:?}: use 1 to 32 lower-case letters, digits or dashes")]
pub struct InvalidPlatform(pub String);

impl Platform {
    pub fn new(name: &str) -> Result<Self, InvalidPlatform> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Platform(name.to_string()))
        } else {
            Err(InvalidPlatform(name.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Platform {
    type Error = InvalidPlatform;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Platform::new(&value)
    }
}

impl From<Platform> for String {
    fn from(p: Platform) -> String {
        p.0
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why `name` is not a GitHub repository's `owner/name`, if it is not one.
///
/// GitHub's rules: the owner is 1 to 39 ASCII letters, digits or dashes, not
/// starting with a dash; the name is 1 to 100 ASCII letters, digits, `-`, `_`
/// or `.`, and neither `.` nor `..`. Repository names become stream ids and
/// status contexts, so anything else is refused where it enters.
pub fn repository_problem(name: &str) -> Option<String> {
    let Some((owner, repo)) = name.split_once('/') else {
        return Some(format!("{name:?} is not of the form owner/name"));
    };
    let owner_ok = (1..=39).contains(&owner.len())
        && !owner.starts_with('-')
        && owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !owner_ok {
        return Some(format!(
            "{name:?}: the owner must be 1 to 39 ASCII letters, digits or dashes"
        ));
    }
    let repo_ok = (1..=100).contains(&repo.len())
        && repo != "."
        && repo != ".."
        && repo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !repo_ok {
        return Some(format!(
            "{name:?}: the name must be 1 to 100 ASCII letters, digits, '-', '_' or '.'"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_run_ids_are_stable_and_distinct() {
        assert_eq!(RunId::derived("d1/linux"), RunId::derived("d1/linux"));
        assert_ne!(RunId::derived("d1/linux"), RunId::derived("d1/windows"));
    }

    #[test]
    fn stream_names_round_trip() {
        let id = RunId::derived("x");
        assert_eq!(RunId::from_stream(&id.stream()), Some(id));
        assert_eq!(RunId::from_stream("platform-linux"), None);
        assert_eq!(RunId::from_stream("run-not-a-uuid"), None);
    }

    #[test]
    fn repository_names_follow_githubs_rules() {
        for good in ["CCExtractor/ccextractor", "a/b", "o-1/r_2.x", "x/.github"] {
            assert_eq!(repository_problem(good), None, "{good}");
        }
        let long = format!("o/{}", "r".repeat(101));
        for bad in [
            "x",
            "",
            "/r",
            "o/",
            "o/r/s",
            "-o/r",
            "ö/r",
            "o/ä",
            "o/.",
            "o/..",
            "o r/x",
            "o/\0",
            long.as_str(),
        ] {
            assert!(repository_problem(bad).is_some(), "{bad:?} accepted");
        }
    }

    #[test]
    fn platform_names_are_validated() {
        assert!(Platform::new("linux").is_ok());
        assert!(Platform::new("windows-2022").is_ok());
        assert!(Platform::new("").is_err());
        assert!(Platform::new("Linux").is_err());
        assert!(Platform::new("a b").is_err());
        assert!(serde_json::from_str::<Platform>("\"UPPER\"").is_err());
    }
}

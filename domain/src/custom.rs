//! A contributor's custom runs: which of the catalogue's tests they chose,
//! and how many runs they may have. Pure: the caller counts the runs.

use crate::verdict::RegressionTest;

/// The tests a contributor chose: by id, by category, or both (a test is
/// in when either names it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub tests: Vec<String>,
    pub categories: Vec<String>,
}

impl Selection {
    /// The chosen tests among `available` (a platform's), or why none can
    /// be run: nothing chosen, or a test id the catalogue does not have
    /// (`known` says whether it has it on any platform).
    pub fn pick(
        &self,
        platform: &str,
        available: &[RegressionTest],
        known: impl Fn(&str) -> bool,
    ) -> Result<Vec<RegressionTest>, String> {
        if self.tests.is_empty() && self.categories.is_empty() {
            return Err("choose the regression tests to run: by test id or by category".into());
        }
        if let Some(unknown) = self.tests.iter().find(|t| !known(t)) {
            return Err(format!("the catalogue has no active test {unknown:?}"));
        }
        let chosen: Vec<RegressionTest> = available
            .iter()
            .filter(|t| {
                self.tests.contains(&t.id)
                    || t.categories.iter().any(|c| self.categories.contains(c))
            })
            .cloned()
            .collect();
        if chosen.is_empty() {
            return Err(format!("none of the chosen tests runs on {platform}"));
        }
        Ok(chosen)
    }
}

/// What GitHub says of a repository a contributor names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub full_name: String,
    pub owner: String,
    /// The repository it is a fork of, if it is one.
    pub parent: Option<String>,
}

impl Repository {
    /// Whether `login` may test this repository's commits: it must be
    /// theirs, and where the platform serves named repositories, a fork of
    /// one of them.
    pub fn testable_by(&self, login: &str, served: &[String]) -> Result<(), String> {
        let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        if !same(&self.owner, login) {
            return Err(format!(
                "{} belongs to {}, not to {login}: a custom run tests a repository of your own",
                self.full_name, self.owner
            ));
        }
        if served.is_empty() {
            return Ok(());
        }
        match &self.parent {
            Some(parent) if served.iter().any(|s| same(s, parent)) => Ok(()),
            _ => Err(format!(
                "{} is not a fork of {}: a custom run tests a fork of a repository this platform serves",
                self.full_name,
                served.join(" or ")
            )),
        }
    }
}

/// How many custom runs one person may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Queued or running at once.
    pub waiting: u32,
    /// Queued in the last 24 hours.
    pub per_day: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            waiting: 4,
            per_day: 40,
        }
    }
}

impl Limits {
    /// Whether `adding` more runs fit beside the `waiting` and `today` the
    /// person has; if not, a refusal they can act on.
    pub fn check(&self, adding: usize, waiting: u64, today: u64) -> Result<(), String> {
        let adding = adding as u64;
        if waiting + adding > u64::from(self.waiting) {
            return Err(format!(
                "you have {waiting} custom runs queued or running, and may have {} at once: wait for one to finish",
                self.waiting
            ));
        }
        if today + adding > u64::from(self.per_day) {
            return Err(format!(
                "you have queued {today} custom runs in the last 24 hours, and may queue {} a day",
                self.per_day
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::SampleRef;

    fn test(id: &str, categories: &[&str]) -> RegressionTest {
        RegressionTest {
            id: id.into(),
            sample: SampleRef {
                sha256: "0".repeat(64),
                name: "s".into(),
                location: None,
            },
            command: "{exe} {sample}".into(),
            input: Default::default(),
            expected_exit_code: 0,
            categories: categories.iter().map(|c| c.to_string()).collect(),
            outputs: vec![],
            output: Default::default(),
            output_pattern: None,
        }
    }

    #[test]
    fn a_selection_takes_tests_by_id_and_by_category() {
        let available = [
            test("a", &["dvb"]),
            test("b", &["teletext"]),
            test("c", &["dvb"]),
        ];
        let known = |id: &str| ["a", "b", "c", "w"].contains(&id);
        let pick = |tests: &[&str], categories: &[&str]| {
            Selection {
                tests: tests.iter().map(|t| t.to_string()).collect(),
                categories: categories.iter().map(|c| c.to_string()).collect(),
            }
            .pick("linux", &available, known)
            .map(|ts| ts.into_iter().map(|t| t.id).collect::<Vec<_>>())
        };
        assert_eq!(
            pick(&["b"], &["dvb"]),
            Ok(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(pick(&["a", "b"], &[]), Ok(vec!["a".into(), "b".into()]));
        assert!(pick(&[], &[]).unwrap_err().contains("choose"));
        assert!(pick(&["zz"], &[]).unwrap_err().contains("\"zz\""));
        assert!(pick(&["w"], &[]).unwrap_err().contains("runs on linux"));
    }

    #[test]
    fn only_ones_own_fork_of_a_served_repository_is_testable() {
        let served = ["CCExtractor/ccextractor".to_string()];
        let repo = |full: &str, parent: Option<&str>| Repository {
            full_name: full.into(),
            owner: full.split('/').next().unwrap_or_default().into(),
            parent: parent.map(String::from),
        };
        let fork = repo("alice/ccx", Some("ccextractor/CCExtractor"));
        assert_eq!(fork.testable_by("Alice", &served), Ok(()));
        assert!(
            fork.testable_by("bob", &served)
                .unwrap_err()
                .contains("belongs to alice")
        );
        let own = repo("alice/other", None);
        assert!(
            own.testable_by("alice", &served)
                .unwrap_err()
                .contains("not a fork")
        );
        assert_eq!(own.testable_by("alice", &[]), Ok(()));
    }

    #[test]
    fn limits_count_what_is_added() {
        let limits = Limits {
            waiting: 2,
            per_day: 3,
        };
        assert!(limits.check(2, 0, 0).is_ok());
        assert!(
            limits
                .check(2, 1, 0)
                .unwrap_err()
                .contains("may have 2 at once")
        );
        assert!(limits.check(1, 0, 3).unwrap_err().contains("3 a day"));
    }
}

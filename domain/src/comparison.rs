//! What a change did: each regression test of a finished run classified
//! against a reference run of the same platform (an earlier commit's), not
//! only against the approved output. A test that has failed for a month is
//! "failing identically"; the one this change broke is "broken here".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::verdict::{OutputProduced, RegressionTest, TestResult, judge};

/// How a test's outcome here relates to the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Passes in the reference, fails here.
    Broken,
    /// Fails on both, with other outputs or another exit code.
    FailingDifferently,
    /// Fails in the reference, passes here.
    Fixed,
    /// Fails on both in the same way: drift someone should approve or fix.
    FailingIdentically,
    /// In scope here, not in the reference run.
    New,
    /// There is no reference run: nothing can be said, and that is not good
    /// news.
    NoReference,
    UnchangedPass,
}

impl Class {
    /// Most urgent first: what a contributor reads first.
    pub const ALL: [Class; 7] = [
        Class::Broken,
        Class::FailingDifferently,
        Class::Fixed,
        Class::FailingIdentically,
        Class::New,
        Class::NoReference,
        Class::UnchangedPass,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Broken => "broken",
            Class::FailingDifferently => "failing_differently",
            Class::Fixed => "fixed",
            Class::FailingIdentically => "failing_identically",
            Class::New => "new",
            Class::NoReference => "no_reference",
            Class::UnchangedPass => "unchanged_pass",
        }
    }

    /// In words, for a page or a comment.
    pub fn label(self) -> &'static str {
        match self {
            Class::Broken => "broken here",
            Class::FailingDifferently => "failing differently",
            Class::Fixed => "fixed here",
            Class::FailingIdentically => "failing identically",
            Class::New => "new test",
            Class::NoReference => "no reference",
            Class::UnchangedPass => "unchanged pass",
        }
    }
}

/// What one test did in one run, reduced to what a comparison looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    #[serde(rename = "p")]
    pub passed: bool,
    /// `None` when the runner reported nothing for it.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(rename = "t", default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// Each checked output's produced SHA-256 ("" when it was not written).
    #[serde(rename = "o", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

impl Observed {
    /// Judged with the verdict's own rules; an output the runner found
    /// equal to the approved one is named by the approved hash, so runs
    /// whose runners reported it either way compare alike.
    pub fn of(test: &RegressionTest, result: Option<&TestResult>) -> Observed {
        let passed = judge(test, result).is_empty();
        let Some(result) = result else {
            return Observed {
                passed,
                exit_code: None,
                timed_out: false,
                outputs: BTreeMap::new(),
            };
        };
        let outputs = test
            .outputs
            .iter()
            .filter(|o| !o.ignore)
            .map(|expected| {
                let produced = result.outputs.iter().find(|p| p.name == expected.name);
                let hash = match produced.map(|p| &p.produced) {
                    Some(OutputProduced::Equal) => expected.approved_sha256.clone(),
                    Some(OutputProduced::Sha256 { sha256 }) => sha256.clone(),
                    Some(OutputProduced::Missing | OutputProduced::TooLarge { .. }) | None => {
                        String::new()
                    }
                };
                (expected.name.clone(), hash)
            })
            .collect();
        Observed {
            passed,
            exit_code: Some(result.exit_code),
            timed_out: result.timed_out,
            outputs,
        }
    }
}

/// Every test in a run's scope, observed.
pub type Observations = BTreeMap<String, Observed>;

/// Observe each test in scope (a test without a result fails).
pub fn observe(tests: &[RegressionTest], results: &BTreeMap<String, TestResult>) -> Observations {
    tests
        .iter()
        .map(|t| (t.id.clone(), Observed::of(t, results.get(&t.id))))
        .collect()
}

/// One test here against the reference run's observations (`None`: there
/// is no reference run).
pub fn classify(id: &str, here: &Observed, reference: Option<&Observations>) -> Class {
    let Some(reference) = reference else {
        return Class::NoReference;
    };
    let Some(before) = reference.get(id) else {
        return Class::New;
    };
    match (before.passed, here.passed) {
        (true, true) => Class::UnchangedPass,
        (true, false) => Class::Broken,
        (false, true) => Class::Fixed,
        (false, false) if before == here => Class::FailingIdentically,
        (false, false) => Class::FailingDifferently,
    }
}

/// Every test of `here`, classified, most urgent class first, then by id.
pub fn compare(here: &Observations, reference: Option<&Observations>) -> Vec<(String, Class)> {
    let mut classes: Vec<(String, Class)> = here
        .iter()
        .map(|(id, observed)| (id.clone(), classify(id, observed, reference)))
        .collect();
    classes.sort_by(|(a, ca), (b, cb)| ca.cmp(cb).then_with(|| a.cmp(b)));
    classes
}

/// How many tests fell in each class.
pub fn count(classes: &[(String, Class)]) -> BTreeMap<Class, u32> {
    let mut counts = BTreeMap::new();
    for (_, class) in classes {
        *counts.entry(*class).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(passed: bool, exit: i32, hash: &str) -> Observed {
        Observed {
            passed,
            exit_code: Some(exit),
            timed_out: false,
            outputs: [("out.srt".to_string(), hash.to_string())].into(),
        }
    }

    fn run(tests: &[(&str, Observed)]) -> Observations {
        tests
            .iter()
            .map(|(id, o)| (id.to_string(), o.clone()))
            .collect()
    }

    #[test]
    fn each_pair_of_outcomes_has_its_class() {
        let reference = run(&[
            ("a", observed(true, 0, "good")),
            ("b", observed(false, 0, "bad")),
            ("c", observed(false, 0, "bad")),
            ("d", observed(false, 0, "bad")),
            ("e", observed(true, 0, "good")),
            ("g", observed(false, 0, "bad")),
        ]);
        let here = run(&[
            ("a", observed(false, 0, "bad")),
            ("b", observed(true, 0, "good")),
            ("c", observed(false, 0, "worse")),
            ("d", observed(false, 0, "bad")),
            ("e", observed(true, 0, "good")),
            ("f", observed(true, 0, "good")),
            ("g", observed(false, 1, "bad")),
        ]);
        let classes = compare(&here, Some(&reference));
        let named: Vec<(&str, Class)> = classes.iter().map(|(id, c)| (id.as_str(), *c)).collect();
        assert_eq!(
            named,
            vec![
                ("a", Class::Broken),
                ("c", Class::FailingDifferently),
                ("g", Class::FailingDifferently),
                ("b", Class::Fixed),
                ("d", Class::FailingIdentically),
                ("f", Class::New),
                ("e", Class::UnchangedPass),
            ]
        );
        let counts = count(&classes);
        assert_eq!(counts.get(&Class::FailingDifferently), Some(&2));
        assert_eq!(counts.get(&Class::NoReference), None);
    }

    #[test]
    fn without_a_reference_nothing_is_good_news() {
        let here = run(&[("a", observed(true, 0, "good"))]);
        assert_eq!(
            compare(&here, None),
            vec![("a".to_string(), Class::NoReference)]
        );
    }

    #[test]
    fn observations_survive_their_stored_form() {
        let here = run(&[
            ("a", observed(false, 2, "x")),
            ("b", Observed::of_nothing()),
        ]);
        let text = serde_json::to_string(&here).expect("encode");
        let back: Observations = serde_json::from_str(&text).expect("decode");
        assert_eq!(back, here);
    }

    impl Observed {
        fn of_nothing() -> Observed {
            Observed {
                passed: false,
                exit_code: None,
                timed_out: false,
                outputs: BTreeMap::new(),
            }
        }
    }
}

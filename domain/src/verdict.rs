//! Regression tests as snapshotted into a run, the results a runner reports, and
//! the rules that turn them into a verdict.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::kinds::UDP_DATAGRAM_BYTES;

/// A media sample, addressed by its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleRef {
    pub sha256: String,
    /// Original file name, for people.
    pub name: String,
    /// Where the runner can download it; `None` when the runner's store has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// One output file a regression test is expected to produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedOutput {
    /// The output's name as the command line refers to it (e.g. `out.srt`).
    pub name: String,
    pub approved_sha256: String,
    /// Other hashes accepted as correct (platform differences, approved variants).
    #[serde(default)]
    pub variants: Vec<String>,
    /// An ignored output never fails the test.
    #[serde(default)]
    pub ignore: bool,
}

pub use crate::kinds::{InputKind, OutputKind};

/// A regression test as it was when the run was queued: later catalogue edits
/// never change an old run's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegressionTest {
    pub id: String,
    pub sample: SampleRef,
    /// The command line, with placeholders for the executable, sample and outputs.
    pub command: String,
    #[serde(default)]
    pub input: InputKind,
    pub expected_exit_code: i32,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub outputs: Vec<ExpectedOutput>,
    /// Where the outputs are read from (named files unless said otherwise).
    #[serde(default, skip_serializing_if = "OutputKind::is_file")]
    pub output: OutputKind,
    /// For one file per service or program: the names of the files that are
    /// outputs, `*` where they differ and `{base}` for the sample's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_pattern: Option<String>,
}

impl RegressionTest {
    /// What the verdict on this test depends on (its sample, command,
    /// input, expected exit code and accepted outputs) as a short hash:
    /// results of one commit judged against the same definition should
    /// agree, and when they do not the test is flaky. Accepting an output
    /// changes it.
    pub fn definition_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.sample.sha256.as_bytes());
        h.update([0]);
        h.update(self.command.as_bytes());
        h.update([0]);
        h.update(self.input.as_str().as_bytes());
        h.update(self.expected_exit_code.to_le_bytes());
        for o in &self.outputs {
            h.update([0]);
            h.update(o.name.as_bytes());
            h.update([0]);
            h.update(o.approved_sha256.as_bytes());
            for v in &o.variants {
                h.update([1]);
                h.update(v.as_bytes());
            }
            h.update([u8::from(o.ignore)]);
        }
        // Only tests of the newer kinds hash them, so the definitions of
        // tests judged before kinds existed keep their hashes.
        if !self.output.is_file() || self.output_pattern.is_some() {
            h.update([2]);
            h.update(self.output.as_str().as_bytes());
            h.update([0]);
            h.update(
                self.output_pattern
                    .as_deref()
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The command line that reproduces the test by hand, from a directory
    /// holding the program under the file name `program` and the sample
    /// under its own: like the runner, it runs in the output directory
    /// (`out/`).
    pub fn reproduce(&self, program: &str) -> String {
        const PORT: &str = "5000";
        let exe = format!("../{program}");
        let sample = format!("../{}", self.sample.name);
        let base = file_stem(&self.sample.name);
        let mut line = command_line(&self.command, &exe, &sample, ".", base, Some(PORT));
        let output = self.outputs.first().map(|o| shell_quote(&o.name));
        if matches!(self.output, OutputKind::Stdout | OutputKind::Report) {
            line = format!("{line} > {}", output.as_deref().unwrap_or("stdout"));
        }
        match self.input {
            InputKind::File => {}
            InputKind::Stdin => line = format!("{line} < {}", shell_quote(&sample)),
            InputKind::Udp => {
                // Grouped, so that `&` sends only the program to the
                // background, after the `cd` below.
                line = format!(
                    "{{ {line} & sleep 1 && socat -b{UDP_DATAGRAM_BYTES} -u FILE:{} UDP:127.0.0.1:{PORT}; wait; }}",
                    shell_quote(&sample)
                );
            }
        }
        if self.output == OutputKind::Tcp {
            line = format!(
                "(socat -u TCP-LISTEN:{PORT},reuseaddr - > {} &) && sleep 1 && {line}",
                output.as_deref().unwrap_or("tcp")
            );
        }
        format!("mkdir -p out && cd out && {line}")
    }
}

/// The command line with `{exe}`, `{sample}`, `{outdir}`, `{base}` (the
/// sample's file name without its extension) and `{port}` (for UDP input
/// and TCP output) filled in, each quoted for `sh`: what the runner runs,
/// and what a person runs to reproduce. One pass, so a path that holds a
/// placeholder's name stays as it is.
pub fn command_line(
    template: &str,
    exe: &str,
    sample: &str,
    outdir: &str,
    base: &str,
    port: Option<&str>,
) -> String {
    let mut line = String::with_capacity(template.len() + exe.len() + sample.len());
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        line.push_str(&rest[..at]);
        rest = &rest[at..];
        let filled = [
            ("{exe}", Some(exe)),
            ("{sample}", Some(sample)),
            ("{outdir}", Some(outdir)),
            ("{base}", Some(base)),
            ("{port}", port),
        ]
        .into_iter()
        .find_map(|(name, value)| Some((name, value?)).filter(|_| rest.starts_with(name)));
        match filled {
            Some((name, value)) => {
                line.push_str(&shell_quote(value));
                rest = &rest[name.len()..];
            }
            None => {
                line.push('{');
                rest = &rest[1..];
            }
        }
    }
    line.push_str(rest);
    line
}

/// A file name without its last extension: what `{base}` stands for (on a
/// runner, the sample's file is named by its SHA-256, so it is that).
pub fn file_stem(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

/// `s` as one word for `sh`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The test with this id in a run's scope. Snapshots list tests in id order
/// (the catalogue keeps them so), so a lookup costs O(log n) per result
/// rather than a scan of a 10,000-test scope; a scope in another order is
/// still searched in full.
pub fn find_test<'a>(tests: &'a [RegressionTest], id: &str) -> Option<&'a RegressionTest> {
    match tests.binary_search_by(|t| t.id.as_str().cmp(id)) {
        Ok(i) => tests.get(i),
        Err(_) => tests.iter().find(|t| t.id == id),
    }
}

/// What the runner says it found for one output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputProduced {
    /// The runner compared it with the approved hash itself and it matched.
    Equal,
    /// The produced file's hash.
    Sha256 { sha256: String },
    /// The command did not write this output.
    Missing,
    /// Larger than the runner keeps (captured output is capped): not
    /// compared.
    TooLarge { limit_bytes: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducedOutput {
    pub name: String,
    pub produced: OutputProduced,
}

/// One regression test's outcome as reported by the runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    pub test_id: String,
    pub exit_code: i32,
    pub runtime_ms: u64,
    #[serde(default)]
    pub outputs: Vec<ProducedOutput>,
    /// Killed at the per-test timeout.
    #[serde(default)]
    pub timed_out: bool,
    /// Why the sample could not be given to the program (a UDP test's
    /// program that never listened), in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
}

/// Why one regression test failed, in words a maintainer can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mismatch {
    TimedOut,
    ExitCode {
        expected: i32,
        actual: i32,
    },
    OutputDiffers {
        output: String,
        sha256: String,
    },
    OutputMissing {
        output: String,
    },
    /// Written, matching the test's output pattern, and not expected.
    OutputExtra {
        output: String,
        sha256: String,
    },
    OutputTooLarge {
        output: String,
        limit_bytes: u64,
    },
    InputNotDelivered {
        reason: String,
    },
    NoResult,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::TimedOut => f.write_str("timed out"),
            Mismatch::ExitCode { expected, actual } => {
                write!(f, "exit code {actual}, expected {expected}")
            }
            Mismatch::OutputDiffers { output, .. } => write!(f, "output {output} differs"),
            Mismatch::OutputMissing { output } => write!(f, "output {output} missing"),
            Mismatch::OutputExtra { output, .. } => {
                write!(f, "output {output} written but not expected")
            }
            Mismatch::OutputTooLarge {
                output,
                limit_bytes,
            } => write!(
                f,
                "output {output} larger than the {} MiB kept",
                limit_bytes / (1024 * 1024)
            ),
            Mismatch::InputNotDelivered { reason } => write!(f, "input not delivered: {reason}"),
            Mismatch::NoResult => f.write_str("no result reported"),
        }
    }
}

/// Passed and failed tests, overall and per category.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub passed: u32,
    pub failed: u32,
    #[serde(default)]
    pub by_category: BTreeMap<String, CategoryCounts>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCounts {
    pub passed: u32,
    pub failed: u32,
}

/// Judge one test: the mismatches, empty when it passed.
pub fn judge(test: &RegressionTest, result: Option<&TestResult>) -> Vec<Mismatch> {
    let Some(result) = result else {
        return vec![Mismatch::NoResult];
    };
    let mut mismatches = Vec::new();
    if let Some(reason) = &result.input_error {
        mismatches.push(Mismatch::InputNotDelivered {
            reason: reason.clone(),
        });
    }
    if result.timed_out {
        mismatches.push(Mismatch::TimedOut);
    }
    if result.exit_code != test.expected_exit_code {
        mismatches.push(Mismatch::ExitCode {
            expected: test.expected_exit_code,
            actual: result.exit_code,
        });
    }
    // A null test's outputs are not looked at; it lists none anyway.
    let compared = test.outputs.iter().filter(|o| !o.ignore);
    for expected in compared.filter(|_| test.output != OutputKind::Null) {
        let produced = result.outputs.iter().find(|p| p.name == expected.name);
        match produced.map(|p| &p.produced) {
            Some(OutputProduced::Equal) => {}
            Some(OutputProduced::Sha256 { sha256 })
                if *sha256 == expected.approved_sha256 || expected.variants.contains(sha256) => {}
            Some(OutputProduced::Sha256 { sha256 }) => mismatches.push(Mismatch::OutputDiffers {
                output: expected.name.clone(),
                sha256: sha256.clone(),
            }),
            Some(OutputProduced::Missing) | None => mismatches.push(Mismatch::OutputMissing {
                output: expected.name.clone(),
            }),
            Some(OutputProduced::TooLarge { limit_bytes }) => {
                mismatches.push(Mismatch::OutputTooLarge {
                    output: expected.name.clone(),
                    limit_bytes: *limit_bytes,
                })
            }
        }
    }
    if test.output.is_multi_file() {
        let expected = |name: &str| test.outputs.iter().any(|o| o.name == name);
        for extra in result.outputs.iter().filter(|p| !expected(&p.name)) {
            let sha256 = match &extra.produced {
                OutputProduced::Sha256 { sha256 } => sha256.clone(),
                _ => continue,
            };
            mismatches.push(Mismatch::OutputExtra {
                output: extra.name.clone(),
                sha256,
            });
        }
    }
    mismatches
}

/// The run's verdict: it passes when every test in scope passed.
pub fn verdict(
    tests: &[RegressionTest],
    results: &BTreeMap<String, TestResult>,
) -> (Verdict, Counts) {
    let mut counts = Counts::default();
    for test in tests {
        let passed = judge(test, results.get(&test.id)).is_empty();
        let categories: Vec<&str> = if test.categories.is_empty() {
            vec![UNCATEGORISED]
        } else {
            test.categories.iter().map(String::as_str).collect()
        };
        for category in categories {
            let entry = counts.by_category.entry(category.to_string()).or_default();
            if passed {
                entry.passed += 1;
            } else {
                entry.failed += 1;
            }
        }
        if passed {
            counts.passed += 1;
        } else {
            counts.failed += 1;
        }
    }
    let verdict = if counts.failed == 0 {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    (verdict, counts)
}

/// The category counted for tests that name none.
pub const UNCATEGORISED: &str = "uncategorised";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepting_an_output_changes_the_definition_a_result_was_judged_by() {
        let t = test_case();
        assert_eq!(t.definition_hash(), test_case().definition_hash());
        assert_eq!(t.definition_hash().len(), 16);
        let mut accepted = test_case();
        accepted.outputs[0].variants.push("f".repeat(64));
        assert_ne!(t.definition_hash(), accepted.definition_hash());
        let mut moved = test_case();
        moved.sample.sha256 = "another sample".into();
        assert_ne!(t.definition_hash(), moved.definition_hash());
        let mut renamed = test_case();
        renamed.categories.push("new".into());
        assert_eq!(
            t.definition_hash(),
            renamed.definition_hash(),
            "categories do not change a verdict"
        );
    }

    #[test]
    fn the_reproduction_names_the_sample_and_reads_standard_input_when_the_test_does() {
        let mut t = test_case();
        t.command = "{exe} {sample} -o {outdir}/x.srt".into();
        assert_eq!(
            t.reproduce("ccx"),
            "mkdir -p out && cd out && '../ccx' '../a.ts' -o '.'/x.srt"
        );
        t.command = "{exe} -".into();
        t.input = InputKind::Stdin;
        assert_eq!(
            t.reproduce("ccx"),
            "mkdir -p out && cd out && '../ccx' - < '../a.ts'"
        );
    }

    #[test]
    fn a_path_holding_a_placeholder_name_is_not_filled_again() {
        assert_eq!(
            command_line(
                "{exe} {sample} {outdir} {other} {port}",
                "e",
                "{outdir}.ts",
                "o",
                "b",
                None
            ),
            "'e' '{outdir}.ts' 'o' {other} {port}"
        );
    }

    fn test_case() -> RegressionTest {
        RegressionTest {
            id: "t1".into(),
            sample: SampleRef {
                sha256: "s".into(),
                name: "a.ts".into(),
                location: None,
            },
            command: "{exe} {sample} -o {out}".into(),
            input: Default::default(),
            expected_exit_code: 0,
            categories: vec!["dvb".into()],
            outputs: vec![
                ExpectedOutput {
                    name: "out.srt".into(),
                    approved_sha256: "good".into(),
                    variants: vec!["also-good".into()],
                    ignore: false,
                },
                ExpectedOutput {
                    name: "debug.log".into(),
                    approved_sha256: "x".into(),
                    variants: vec![],
                    ignore: true,
                },
            ],
            output: OutputKind::File,
            output_pattern: None,
        }
    }

    fn result(exit: i32, srt: OutputProduced) -> TestResult {
        TestResult {
            test_id: "t1".into(),
            exit_code: exit,
            runtime_ms: 10,
            timed_out: false,
            input_error: None,
            outputs: vec![ProducedOutput {
                name: "out.srt".into(),
                produced: srt,
            }],
        }
    }

    #[test]
    fn approved_variant_and_equal_pass() {
        let t = test_case();
        for produced in [
            OutputProduced::Equal,
            OutputProduced::Sha256 {
                sha256: "good".into(),
            },
            OutputProduced::Sha256 {
                sha256: "also-good".into(),
            },
        ] {
            assert!(judge(&t, Some(&result(0, produced))).is_empty());
        }
    }

    #[test]
    fn each_failure_rule_is_named() {
        let t = test_case();
        assert_eq!(
            judge(&t, Some(&result(1, OutputProduced::Equal))),
            vec![Mismatch::ExitCode {
                expected: 0,
                actual: 1
            }]
        );
        assert_eq!(
            judge(
                &t,
                Some(&result(
                    0,
                    OutputProduced::Sha256 {
                        sha256: "bad".into()
                    }
                ))
            ),
            vec![Mismatch::OutputDiffers {
                output: "out.srt".into(),
                sha256: "bad".into()
            }]
        );
        assert_eq!(
            judge(&t, Some(&result(0, OutputProduced::Missing))),
            vec![Mismatch::OutputMissing {
                output: "out.srt".into()
            }]
        );
        let mut no_outputs = result(0, OutputProduced::Equal);
        no_outputs.outputs.clear();
        assert_eq!(
            judge(&t, Some(&no_outputs)),
            vec![Mismatch::OutputMissing {
                output: "out.srt".into()
            }],
            "an expected output that is not reported at all is missing; the ignored one is not"
        );
        assert_eq!(judge(&t, None), vec![Mismatch::NoResult]);
    }

    fn produced(name: &str, sha256: &str) -> ProducedOutput {
        ProducedOutput {
            name: name.into(),
            produced: OutputProduced::Sha256 {
                sha256: sha256.into(),
            },
        }
    }

    #[test]
    fn a_null_test_is_judged_by_its_exit_code_alone() {
        let mut t = test_case();
        t.output = OutputKind::Null;
        t.outputs.clear();
        let mut r = result(0, OutputProduced::Missing);
        r.outputs.push(produced("stray.txt", "x"));
        assert!(
            judge(&t, Some(&r)).is_empty(),
            "an unexpected output is no error"
        );
        assert_eq!(
            judge(&t, Some(&result(3, OutputProduced::Missing))),
            vec![Mismatch::ExitCode {
                expected: 0,
                actual: 3
            }]
        );
    }

    #[test]
    fn a_multi_file_test_names_each_missing_and_each_extra_file() {
        let mut t = test_case();
        t.output = OutputKind::Cea708;
        t.output_pattern = Some("{base}_*.srt".into());
        t.outputs = ["{base}_1.srt", "{base}_2.srt"]
            .iter()
            .map(|name| ExpectedOutput {
                name: (*name).into(),
                approved_sha256: format!("ok{name}"),
                variants: vec![],
                ignore: false,
            })
            .collect();
        let mut r = result(0, OutputProduced::Equal);
        r.outputs = vec![
            produced("{base}_1.srt", "ok{base}_1.srt"),
            produced("{base}_3.srt", "new"),
        ];
        let judged = judge(&t, Some(&r));
        assert_eq!(
            judged,
            vec![
                Mismatch::OutputMissing {
                    output: "{base}_2.srt".into()
                },
                Mismatch::OutputExtra {
                    output: "{base}_3.srt".into(),
                    sha256: "new".into()
                }
            ]
        );
        let words: Vec<String> = judged.iter().map(ToString::to_string).collect();
        assert_eq!(
            words,
            [
                "output {base}_2.srt missing",
                "output {base}_3.srt written but not expected"
            ]
        );
    }

    #[test]
    fn captured_output_too_large_and_input_not_delivered_are_named() {
        let mut t = test_case();
        t.output = OutputKind::Stdout;
        t.outputs.truncate(1);
        let r = result(
            0,
            OutputProduced::TooLarge {
                limit_bytes: 64 << 20,
            },
        );
        assert_eq!(
            judge(&t, Some(&r))
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["output out.srt larger than the 64 MiB kept"]
        );
        t.input = InputKind::Udp;
        let mut r = result(-1, OutputProduced::Missing);
        r.input_error = Some("nothing listened on UDP port 4000 within 10 s".into());
        assert_eq!(
            judge(&t, Some(&r))[0].to_string(),
            "input not delivered: nothing listened on UDP port 4000 within 10 s"
        );
    }

    #[test]
    fn the_kinds_change_the_definition_only_when_used() {
        let t = test_case();
        let mut null = test_case();
        null.output = OutputKind::Null;
        assert_ne!(t.definition_hash(), null.definition_hash());
        let json = serde_json::to_value(&t).expect("json");
        assert!(
            json.get("output").is_none() && json.get("output_pattern").is_none(),
            "a file-output test is stored as before kinds: {json}"
        );
    }

    #[test]
    fn each_kind_is_reproduced_by_hand() {
        let mut t = test_case();
        t.command = "{exe} -udp {port} -stdout".into();
        t.input = InputKind::Udp;
        t.output = OutputKind::Stdout;
        t.outputs.truncate(1);
        assert_eq!(
            t.reproduce("ccx"),
            "mkdir -p out && cd out && { '../ccx' -udp '5000' -stdout > 'out.srt' & sleep 1 && \
             socat -b1316 -u FILE:'../a.ts' UDP:127.0.0.1:5000; wait; }"
        );
    }

    #[test]
    fn verdict_counts_per_category() {
        let mut a = test_case();
        a.id = "a".into();
        let mut b = test_case();
        b.id = "b".into();
        b.categories = vec![];
        let mut results = BTreeMap::new();
        let mut ra = result(0, OutputProduced::Equal);
        ra.test_id = "a".into();
        results.insert("a".to_string(), ra);
        let (v, counts) = verdict(&[a, b], &results);
        assert_eq!(v, Verdict::Fail);
        assert_eq!((counts.passed, counts.failed), (1, 1));
        assert_eq!(
            counts.by_category["dvb"],
            CategoryCounts {
                passed: 1,
                failed: 0
            }
        );
        assert_eq!(
            counts.by_category[UNCATEGORISED],
            CategoryCounts {
                passed: 0,
                failed: 1
            }
        );
    }

    #[test]
    fn empty_scope_passes() {
        assert_eq!(verdict(&[], &BTreeMap::new()).0, Verdict::Pass);
    }
}

//! The regression catalogue (stream `catalogue`): samples, regression tests
//! and their approved outputs. Every change is an event, so every baseline
//! ever approved says who approved it, from which run, and why.
//!
//! New runs snapshot [`Catalogue::tests_for`] into their `Queued` event;
//! nothing here ever changes a verdict already given.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::codec::EventSchema;
use crate::context::Context;
use crate::ids::RunId;
use crate::kinds::{InputKind, OutputKind};
use crate::verdict::{ExpectedOutput, RegressionTest, SampleRef};

pub const STREAM: &str = "catalogue";

/// A media sample, stored by its content's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub sha256: String,
    /// The name it was uploaded with.
    pub name: String,
    /// The name's extension, lower-case, without the dot; empty without one.
    pub extension: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where runners download it when it is not in the platform's store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A regression test as the catalogue defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestDefinition {
    pub id: String,
    /// The sample's SHA-256.
    pub sample: String,
    pub command: String,
    #[serde(default)]
    pub input: InputKind,
    pub expected_exit_code: i32,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default = "active")]
    pub active: bool,
    #[serde(default)]
    pub description: String,
    /// `None`: every platform.
    #[serde(default)]
    pub platforms: Option<Vec<String>>,
    #[serde(default)]
    pub outputs: Vec<OutputDefinition>,
    /// Where the outputs are read from (named files unless said otherwise).
    #[serde(default, skip_serializing_if = "OutputKind::is_file")]
    pub output: OutputKind,
    /// For output kinds cea708 and multiprogram: which files are outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_pattern: Option<String>,
}

fn active() -> bool {
    true
}

/// An output a test is expected to produce, with what was accepted for it
/// on particular platforms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDefinition {
    pub name: String,
    pub approved_sha256: String,
    #[serde(default)]
    pub variants: Vec<String>,
    #[serde(default)]
    pub ignore: bool,
    /// By platform: a baseline or variants accepted there only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub platforms: BTreeMap<String, PlatformBaseline>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformBaseline {
    /// Replaces the approved hash on this platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

impl OutputDefinition {
    /// The output as it is judged on `platform`.
    pub fn on(&self, platform: &str) -> ExpectedOutput {
        let mut expected = ExpectedOutput {
            name: self.name.clone(),
            approved_sha256: self.approved_sha256.clone(),
            variants: self.variants.clone(),
            ignore: self.ignore,
        };
        if let Some(b) = self.platforms.get(platform) {
            if let Some(approved) = &b.approved_sha256 {
                expected.approved_sha256.clone_from(approved);
            }
            for v in &b.variants {
                if !expected.variants.contains(v) {
                    expected.variants.push(v.clone());
                }
            }
        }
        expected
    }
}

impl TestDefinition {
    /// Whether its input and output kinds have what they need (see
    /// [`crate::kinds::check`]), and if not, why.
    pub fn check_kinds(&self) -> Result<(), String> {
        crate::kinds::check(
            self.input,
            self.output,
            &self.command,
            self.output_pattern.as_deref(),
            self.outputs.len(),
        )
    }

    pub fn outputs_on(&self, platform: &str) -> Vec<ExpectedOutput> {
        self.outputs.iter().map(|o| o.on(platform)).collect()
    }

    pub fn runs_on(&self, platform: &str) -> bool {
        self.active
            && self
                .platforms
                .as_ref()
                .is_none_or(|p| p.iter().any(|p| p == platform))
    }
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::EnumCount,
)]
pub enum CatalogueEvent {
    SampleAdded {
        at: DateTime<Utc>,
        sample: Sample,
    },
    /// A test created, or its whole definition replaced.
    TestDefined {
        at: DateTime<Utc>,
        test: TestDefinition,
    },
    TestActivationChanged {
        at: DateTime<Utc>,
        test_id: String,
        active: bool,
        reason: String,
    },
    /// A produced output accepted for one test on one platform: as a variant,
    /// or as the new approved baseline.
    OutputAccepted {
        at: DateTime<Utc>,
        test_id: String,
        platform: String,
        output: String,
        sha256: String,
        as_baseline: bool,
        /// The run that produced it.
        run_id: RunId,
        accepted_by: String,
        reason: String,
    },
}

impl EventSchema for CatalogueEvent {
    fn type_name(&self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CatalogueCommand {
    AddSample(Sample),
    DefineTest(TestDefinition),
    SetActive {
        test_id: String,
        active: bool,
        reason: String,
    },
    AcceptOutput(AcceptOutput),
    /// Samples and tests from a catalogue file: new samples are added, new or
    /// changed tests defined; what the file does not name is left alone.
    Import {
        samples: Vec<Sample>,
        tests: Vec<TestDefinition>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AcceptOutput {
    pub test_id: String,
    pub platform: String,
    pub output: String,
    pub sha256: String,
    pub as_baseline: bool,
    pub run_id: RunId,
    pub accepted_by: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueRejection {
    #[error("sample {sha256} is already in the catalogue as {name:?}")]
    DuplicateSample { sha256: String, name: String },
    #[error("no sample {0:?} in the catalogue")]
    UnknownSample(String),
    #[error("no regression test {0:?} in the catalogue")]
    UnknownTest(String),
    #[error("regression test {test:?} has no output {output:?}")]
    UnknownOutput { test: String, output: String },
    #[error("{0}")]
    Invalid(String),
    #[error("a reason is required")]
    ReasonRequired,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    pub samples: BTreeMap<String, Sample>,
    pub tests: BTreeMap<String, TestDefinition>,
}

impl Catalogue {
    /// Every output hash some test approves or accepts, on any platform:
    /// what retention must never delete.
    pub fn accepted_outputs(&self) -> std::collections::HashSet<&str> {
        let mut kept = std::collections::HashSet::new();
        for output in self.tests.values().flat_map(|t| &t.outputs) {
            kept.insert(output.approved_sha256.as_str());
            kept.extend(output.variants.iter().map(String::as_str));
            for b in output.platforms.values() {
                kept.extend(b.approved_sha256.as_deref());
                kept.extend(b.variants.iter().map(String::as_str));
            }
        }
        kept
    }

    /// The active tests that run on `platform`, as a new run snapshots them.
    pub fn tests_for(&self, platform: &str) -> Vec<RegressionTest> {
        self.tests
            .values()
            .filter(|d| d.runs_on(platform))
            .filter_map(|d| {
                let sample = self.samples.get(&d.sample)?;
                Some(RegressionTest {
                    id: d.id.clone(),
                    sample: SampleRef {
                        sha256: sample.sha256.clone(),
                        name: sample.name.clone(),
                        location: sample.url.clone(),
                    },
                    command: d.command.clone(),
                    input: d.input,
                    expected_exit_code: d.expected_exit_code,
                    categories: d.categories.clone(),
                    outputs: d.outputs_on(platform),
                    output: d.output,
                    output_pattern: d.output_pattern.clone(),
                })
            })
            .collect()
    }

    /// A sample by its SHA-256 or, failing that, its name.
    pub fn sample(&self, key: &str) -> Option<&Sample> {
        self.samples
            .get(&key.to_ascii_lowercase())
            .or_else(|| self.samples.values().find(|s| s.name == key))
    }
}

pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Test ids name files and URLs: letters, digits, `.`, `_` and `-`.
fn valid_test_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The extension of a file name, lower-case, without the dot.
pub fn extension_of(name: &str) -> String {
    std::path::Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

fn check_sample(s: &Sample) -> Result<(), CatalogueRejection> {
    if !is_sha256(&s.sha256) || s.sha256.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(CatalogueRejection::Invalid(format!(
            "sample {:?}: sha256 must be 64 lower-case hexadecimal digits",
            s.name
        )));
    }
    if s.name.trim().is_empty() || s.name.contains(['/', '\\']) {
        return Err(CatalogueRejection::Invalid(format!(
            "sample name {:?} must be a file name",
            s.name
        )));
    }
    // Runners download it from there: never a path on the platform's host.
    if let Some(url) = &s.url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(CatalogueRejection::Invalid(format!(
            "sample {:?}: its url must be http:// or https://, not {url:?}",
            s.name
        )));
    }
    Ok(())
}

impl Catalogue {
    /// `test` as it replaces the definition it has: baselines and variants
    /// accepted on single platforms stay unless the new definition names
    /// that platform for that output, so redefining a test (or importing an
    /// older file) never silently drops an audited acceptance.
    fn keeping_acceptances(&self, test: &TestDefinition) -> TestDefinition {
        let mut test = test.clone();
        let Some(existing) = self.tests.get(&test.id) else {
            return test;
        };
        for output in &mut test.outputs {
            if let Some(before) = existing.outputs.iter().find(|o| o.name == output.name) {
                for (platform, baseline) in &before.platforms {
                    output
                        .platforms
                        .entry(platform.clone())
                        .or_insert_with(|| baseline.clone());
                }
            }
        }
        test
    }

    /// The SHA-256 a test's `sample` stands for: a sample's hash, or the
    /// name of exactly one sample of the catalogue.
    fn sample_key(&self, sample: &str) -> Result<String, CatalogueRejection> {
        let hash = sample.to_ascii_lowercase();
        if self.samples.contains_key(&hash) {
            return Ok(hash);
        }
        let named: Vec<&Sample> = self.samples.values().filter(|s| s.name == sample).collect();
        match named.as_slice() {
            [one] => Ok(one.sha256.clone()),
            [] => Err(CatalogueRejection::UnknownSample(sample.to_string())),
            several => Err(CatalogueRejection::Invalid(format!(
                "{} samples are named {sample:?}: name the test's sample by its sha256 ({})",
                several.len(),
                several
                    .iter()
                    .map(|s| s.sha256.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn check_test(&self, t: &TestDefinition) -> Result<(), CatalogueRejection> {
        if !valid_test_id(&t.id) {
            return Err(CatalogueRejection::Invalid(format!(
                "test id {:?}: use 1 to 100 letters, digits, dots, dashes or underscores",
                t.id
            )));
        }
        if !self.samples.contains_key(&t.sample) {
            return Err(CatalogueRejection::UnknownSample(t.sample.clone()));
        }
        if t.command.trim().is_empty() {
            return Err(CatalogueRejection::Invalid(format!(
                "test {:?}: the command is empty",
                t.id
            )));
        }
        t.check_kinds()
            .map_err(|why| CatalogueRejection::Invalid(format!("test {:?}: {why}", t.id)))?;
        let mut names = std::collections::BTreeSet::new();
        for o in &t.outputs {
            if !names.insert(&o.name) {
                return Err(CatalogueRejection::Invalid(format!(
                    "test {:?}: output {:?} is listed twice",
                    t.id, o.name
                )));
            }
            let accepted = o
                .platforms
                .values()
                .flat_map(|b| b.approved_sha256.iter().chain(&b.variants));
            let mut hashes = std::iter::once(&o.approved_sha256)
                .chain(&o.variants)
                .chain(accepted);
            if !hashes.all(|h| is_sha256(h)) {
                return Err(CatalogueRejection::Invalid(format!(
                    "test {:?}: output {:?} needs 64-digit SHA-256 hashes",
                    t.id, o.name
                )));
            }
        }
        Ok(())
    }

    fn accept(
        &self,
        a: &AcceptOutput,
        ctx: &Context,
    ) -> Result<Vec<CatalogueEvent>, CatalogueRejection> {
        if a.reason.trim().is_empty() {
            return Err(CatalogueRejection::ReasonRequired);
        }
        if !is_sha256(&a.sha256) {
            return Err(CatalogueRejection::Invalid(format!(
                "{:?} is not a SHA-256",
                a.sha256
            )));
        }
        let test = self
            .tests
            .get(&a.test_id)
            .ok_or_else(|| CatalogueRejection::UnknownTest(a.test_id.clone()))?;
        let current = test
            .outputs
            .iter()
            .find(|o| o.name == a.output)
            .map(|o| o.on(&a.platform))
            .ok_or_else(|| CatalogueRejection::UnknownOutput {
                test: a.test_id.clone(),
                output: a.output.clone(),
            })?;
        let sha256 = a.sha256.to_ascii_lowercase();
        let already = if a.as_baseline {
            current.approved_sha256 == sha256
        } else {
            current.approved_sha256 == sha256 || current.variants.contains(&sha256)
        };
        if already {
            return Ok(vec![]);
        }
        Ok(vec![CatalogueEvent::OutputAccepted {
            at: ctx.now,
            test_id: a.test_id.clone(),
            platform: a.platform.clone(),
            output: a.output.clone(),
            sha256,
            as_baseline: a.as_baseline,
            run_id: a.run_id,
            accepted_by: a.accepted_by.clone(),
            reason: a.reason.clone(),
        }])
    }
}

impl Aggregate for Catalogue {
    type Event = CatalogueEvent;
    type Command = CatalogueCommand;
    type Rejection = CatalogueRejection;

    fn apply(mut self, event: &CatalogueEvent) -> Self {
        match event {
            CatalogueEvent::SampleAdded { sample, .. } => {
                self.samples.insert(sample.sha256.clone(), sample.clone());
            }
            CatalogueEvent::TestDefined { test, .. } => {
                self.tests.insert(test.id.clone(), test.clone());
            }
            CatalogueEvent::TestActivationChanged {
                test_id, active, ..
            } => {
                if let Some(t) = self.tests.get_mut(test_id) {
                    t.active = *active;
                }
            }
            CatalogueEvent::OutputAccepted {
                test_id,
                platform,
                output,
                sha256,
                as_baseline,
                ..
            } => {
                if let Some(o) = self
                    .tests
                    .get_mut(test_id)
                    .and_then(|t| t.outputs.iter_mut().find(|o| &o.name == output))
                {
                    let b = o.platforms.entry(platform.clone()).or_default();
                    if *as_baseline {
                        b.approved_sha256 = Some(sha256.clone());
                    } else if !b.variants.contains(sha256) {
                        b.variants.push(sha256.clone());
                    }
                }
            }
        }
        self
    }

    fn decide(
        &self,
        command: &CatalogueCommand,
        ctx: &Context,
    ) -> Result<Vec<CatalogueEvent>, CatalogueRejection> {
        match command {
            CatalogueCommand::AddSample(sample) => {
                check_sample(sample)?;
                if let Some(existing) = self.samples.get(&sample.sha256) {
                    return Err(CatalogueRejection::DuplicateSample {
                        sha256: existing.sha256.clone(),
                        name: existing.name.clone(),
                    });
                }
                Ok(vec![CatalogueEvent::SampleAdded {
                    at: ctx.now,
                    sample: sample.clone(),
                }])
            }
            CatalogueCommand::DefineTest(test) => {
                let test = &TestDefinition {
                    sample: self.sample_key(&test.sample)?,
                    ..test.clone()
                };
                self.check_test(test)?;
                let test = self.keeping_acceptances(test);
                if self.tests.get(&test.id) == Some(&test) {
                    return Ok(vec![]);
                }
                Ok(vec![CatalogueEvent::TestDefined { at: ctx.now, test }])
            }
            CatalogueCommand::SetActive {
                test_id,
                active,
                reason,
            } => {
                if reason.trim().is_empty() {
                    return Err(CatalogueRejection::ReasonRequired);
                }
                let test = self
                    .tests
                    .get(test_id)
                    .ok_or_else(|| CatalogueRejection::UnknownTest(test_id.clone()))?;
                if test.active == *active {
                    return Ok(vec![]);
                }
                Ok(vec![CatalogueEvent::TestActivationChanged {
                    at: ctx.now,
                    test_id: test_id.clone(),
                    active: *active,
                    reason: reason.clone(),
                }])
            }
            CatalogueCommand::AcceptOutput(a) => self.accept(a, ctx),
            CatalogueCommand::Import { samples, tests } => {
                // Decided against the catalogue as the import goes, so a file's
                // tests may use the samples it adds.
                let mut after = self.clone();
                let mut events = Vec::new();
                let mut ids = std::collections::BTreeSet::new();
                for sample in samples {
                    check_sample(sample)?;
                    if after.samples.contains_key(&sample.sha256) {
                        continue;
                    }
                    let e = CatalogueEvent::SampleAdded {
                        at: ctx.now,
                        sample: sample.clone(),
                    };
                    after = after.apply(&e);
                    events.push(e);
                }
                for test in tests {
                    if !ids.insert(&test.id) {
                        return Err(CatalogueRejection::Invalid(format!(
                            "test {:?} is defined twice",
                            test.id
                        )));
                    }
                    for e in after.decide(&CatalogueCommand::DefineTest(test.clone()), ctx)? {
                        after = after.apply(&e);
                        events.push(e);
                    }
                }
                Ok(events)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn ctx() -> Context {
        Context {
            now: DateTime::from_timestamp(1_800_000_000, 0).expect("time"),
            policy: Policy::default(),
        }
    }

    fn sha(c: char) -> String {
        std::iter::repeat_n(c, 64).collect()
    }

    fn sample() -> Sample {
        Sample {
            sha256: sha('a'),
            name: "clip.ts".into(),
            extension: "ts".into(),
            size_bytes: 10,
            tags: vec![],
            url: None,
        }
    }

    fn test_def() -> TestDefinition {
        TestDefinition {
            id: "clip-srt".into(),
            sample: sha('a'),
            command: "{exe} {sample} -o {outdir}/out.srt".into(),
            input: InputKind::File,
            expected_exit_code: 0,
            categories: vec!["broadcast".into()],
            active: true,
            description: String::new(),
            platforms: None,
            outputs: vec![OutputDefinition {
                name: "out.srt".into(),
                approved_sha256: sha('b'),
                variants: vec![],
                ignore: false,
                platforms: BTreeMap::new(),
            }],
            output: Default::default(),
            output_pattern: None,
        }
    }

    fn run(c: Catalogue, command: CatalogueCommand) -> Result<Catalogue, CatalogueRejection> {
        let events = c.decide(&command, &ctx())?;
        Ok(events.iter().fold(c, |c, e| c.apply(e)))
    }

    fn with_test() -> Catalogue {
        let c = run(Catalogue::default(), CatalogueCommand::AddSample(sample())).expect("sample");
        run(c, CatalogueCommand::DefineTest(test_def())).expect("test")
    }

    fn accept(platform: &str, sha256: String, as_baseline: bool) -> CatalogueCommand {
        CatalogueCommand::AcceptOutput(AcceptOutput {
            test_id: "clip-srt".into(),
            platform: platform.into(),
            output: "out.srt".into(),
            sha256,
            as_baseline,
            run_id: RunId(uuid::Uuid::nil()),
            accepted_by: "user:alice".into(),
            reason: "new line breaking is right".into(),
        })
    }

    #[test]
    fn a_duplicate_sample_is_refused_with_the_name_it_has() {
        let c = with_test();
        let mut again = sample();
        again.name = "other.ts".into();
        assert_eq!(
            c.decide(&CatalogueCommand::AddSample(again), &ctx()),
            Err(CatalogueRejection::DuplicateSample {
                sha256: sha('a'),
                name: "clip.ts".into()
            })
        );
    }

    #[test]
    fn a_sample_url_is_a_web_address_never_a_host_path() {
        let mut local = sample();
        local.sha256 = sha('f');
        local.url = Some("/etc/passwd".into());
        assert!(matches!(
            Catalogue::default().decide(&CatalogueCommand::AddSample(local.clone()), &ctx()),
            Err(CatalogueRejection::Invalid(m)) if m.contains("http")
        ));
        local.url = Some("https://samples.example/clip.ts".into());
        assert!(
            Catalogue::default()
                .decide(&CatalogueCommand::AddSample(local), &ctx())
                .is_ok()
        );
    }

    #[test]
    fn a_test_may_name_its_sample_by_name_when_one_sample_has_it() {
        let mut by_name = test_def();
        by_name.sample = "clip.ts".into();
        let defined = with_test()
            .decide(&CatalogueCommand::DefineTest(by_name.clone()), &ctx())
            .expect("the name stands for the sample");
        assert_eq!(defined, vec![], "the same test as by its hash");
        let c = run(Catalogue::default(), CatalogueCommand::AddSample(sample())).expect("sample");
        let c = run(c, CatalogueCommand::DefineTest(by_name.clone())).expect("defined");
        assert_eq!(c.tests["clip-srt"].sample, sha('a'), "recorded by hash");

        let twin = Sample {
            sha256: sha('e'),
            ..sample()
        };
        let c = run(c, CatalogueCommand::AddSample(twin)).expect("a second clip.ts");
        match c.decide(&CatalogueCommand::DefineTest(by_name), &ctx()) {
            Err(CatalogueRejection::Invalid(why)) => {
                assert!(why.contains("2 samples are named \"clip.ts\""), "{why}")
            }
            other => panic!("an ambiguous name is refused: {other:?}"),
        }
    }

    #[test]
    fn a_test_needs_a_known_sample_and_defining_it_again_unchanged_records_nothing() {
        let mut t = test_def();
        t.sample = sha('c');
        assert_eq!(
            with_test().decide(&CatalogueCommand::DefineTest(t), &ctx()),
            Err(CatalogueRejection::UnknownSample(sha('c')))
        );
        assert_eq!(
            with_test().decide(&CatalogueCommand::DefineTest(test_def()), &ctx()),
            Ok(vec![])
        );
    }

    #[test]
    fn an_accepted_variant_applies_to_its_platform_only() {
        let c = run(with_test(), accept("linux", sha('d'), false)).expect("accepted");
        let linux = c.tests_for("linux");
        assert_eq!(linux[0].outputs[0].variants, vec![sha('d')]);
        assert_eq!(linux[0].outputs[0].approved_sha256, sha('b'));
        assert!(c.tests_for("windows")[0].outputs[0].variants.is_empty());
        // Accepting it again records nothing.
        assert_eq!(
            c.decide(&accept("linux", sha('d'), false), &ctx()),
            Ok(vec![])
        );
    }

    #[test]
    fn redefining_a_test_or_importing_it_again_keeps_what_was_accepted() {
        let c = run(with_test(), accept("linux", sha('d'), false)).expect("accepted");
        // The definition as first written, from the API or an old file.
        assert_eq!(
            c.decide(&CatalogueCommand::DefineTest(test_def()), &ctx()),
            Ok(vec![]),
            "nothing changes"
        );
        let mut changed = test_def();
        changed.command = "{exe} --new {sample} -o {outdir}/out.srt".into();
        let c = run(
            c,
            CatalogueCommand::Import {
                samples: vec![],
                tests: vec![changed],
            },
        )
        .expect("imported");
        let linux = c.tests_for("linux");
        assert!(linux[0].command.contains("--new"));
        assert_eq!(linux[0].outputs[0].variants, vec![sha('d')]);
    }

    #[test]
    fn a_new_baseline_replaces_the_approved_hash_on_its_platform() {
        let c = run(with_test(), accept("windows", sha('e'), true)).expect("accepted");
        assert_eq!(
            c.tests_for("windows")[0].outputs[0].approved_sha256,
            sha('e')
        );
        assert_eq!(c.tests_for("linux")[0].outputs[0].approved_sha256, sha('b'));
    }

    #[test]
    fn accepting_needs_a_reason_a_known_test_and_output() {
        let mut no_reason = accept("linux", sha('d'), false);
        if let CatalogueCommand::AcceptOutput(a) = &mut no_reason {
            a.reason = " ".into();
        }
        assert_eq!(
            with_test().decide(&no_reason, &ctx()),
            Err(CatalogueRejection::ReasonRequired)
        );
        let mut other_output = accept("linux", sha('d'), false);
        if let CatalogueCommand::AcceptOutput(a) = &mut other_output {
            a.output = "out.txt".into();
        }
        assert!(matches!(
            with_test().decide(&other_output, &ctx()),
            Err(CatalogueRejection::UnknownOutput { .. })
        ));
        assert!(matches!(
            Catalogue::default().decide(&accept("linux", sha('d'), false), &ctx()),
            Err(CatalogueRejection::UnknownTest(_))
        ));
    }

    #[test]
    fn inactive_tests_and_other_platforms_tests_are_not_in_scope() {
        let c = run(
            with_test(),
            CatalogueCommand::SetActive {
                test_id: "clip-srt".into(),
                active: false,
                reason: "crashes until #123 is fixed".into(),
            },
        )
        .expect("deactivated");
        assert!(c.tests_for("linux").is_empty());
        let mut t = test_def();
        t.platforms = Some(vec!["windows".into()]);
        let c = run(with_test(), CatalogueCommand::DefineTest(t)).expect("redefined");
        assert!(c.tests_for("linux").is_empty());
        assert_eq!(c.tests_for("windows").len(), 1);
    }

    #[test]
    fn an_import_adds_what_is_new_and_leaves_the_rest() {
        let mut changed = test_def();
        changed.expected_exit_code = 1;
        let mut second = test_def();
        second.id = "clip-2".into();
        let events = with_test()
            .decide(
                &CatalogueCommand::Import {
                    samples: vec![sample()],
                    tests: vec![changed, second],
                },
                &ctx(),
            )
            .expect("imported");
        let kinds: Vec<&str> = events.iter().map(EventSchema::type_name).collect();
        assert_eq!(kinds, vec!["TestDefined", "TestDefined"]);
    }
}

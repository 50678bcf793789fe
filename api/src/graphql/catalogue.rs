//! The catalogue over GraphQL: samples, regression tests and their history,
//! what a run produced against what was expected, and the mutations that
//! change the catalogue (they need a token with the `catalogue` scope).

use async_graphql::{
    Context, ErrorExtensions, ID, InputObject, Object, Result, SimpleObject, Upload,
};
use chrono::{DateTime, Utc};
use sp_commands::catalogue::AddedSample;
use sp_commands::{ErrorKind, catalogue_file};
use sp_domain::catalogue::{self, CatalogueCommand, OutputDefinition, TestDefinition};
use sp_domain::{InputKind, OutputKind};
use sp_projections::history;

use super::{coded, graphql_error, internal, require, run_id as parse_run_id, services};
use crate::auth::Scope;

#[derive(Debug, SimpleObject)]
pub struct Sample {
    pub sha256: String,
    pub name: String,
    pub extension: String,
    pub size_bytes: i64,
    pub tags: Vec<String>,
    /// Where runners download it, when it is not in the platform's store.
    pub url: Option<String>,
    pub added_at: Option<DateTime<Utc>>,
    pub added_by: Option<String>,
    pub download_url: String,
}

#[derive(Debug, SimpleObject)]
pub struct PlatformBaseline {
    pub platform: String,
    pub approved_sha256: Option<String>,
    pub variants: Vec<String>,
}

#[derive(Debug, SimpleObject)]
pub struct OutputDef {
    pub name: String,
    pub approved_sha256: String,
    pub variants: Vec<String>,
    pub ignore: bool,
    /// Baselines and variants accepted on one platform only.
    pub platforms: Vec<PlatformBaseline>,
}

#[derive(Debug, SimpleObject)]
pub struct RegressionTestDef {
    pub id: String,
    pub sample: Sample,
    pub command: String,
    /// How the sample reaches the program: `file`, `stdin` or `udp`.
    pub input_kind: String,
    /// Where its output is read: `file`, `stdout`, `report`, `null`,
    /// `cea708`, `multiprogram` or `tcp`.
    pub output_kind: String,
    /// For `cea708` and `multiprogram`: the files that are outputs (`*`
    /// where names differ, `{base}` for the sample's name).
    pub output_pattern: Option<String>,
    pub expected_exit_code: i32,
    pub categories: Vec<String>,
    pub active: bool,
    pub description: String,
    /// Null: every platform.
    pub platforms: Option<Vec<String>>,
    pub outputs: Vec<OutputDef>,
}

#[derive(Debug, Clone, SimpleObject)]
pub struct HistoryEntry {
    pub run_id: ID,
    pub platform: String,
    pub repository: String,
    pub commit_sha: String,
    pub queued_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub passed: bool,
    pub attempt: i32,
}

#[derive(Debug, SimpleObject)]
pub struct PlatformHistory {
    pub platform: String,
    /// The newest run where the test passed.
    pub last_passed: Option<HistoryEntry>,
    /// The oldest failing run after that: where it broke.
    pub first_failed: Option<HistoryEntry>,
    /// GitHub's comparison of the two commits.
    pub compare_url: Option<String>,
}

#[derive(Debug, SimpleObject)]
pub struct FlakyCommit {
    pub platform: String,
    pub commit_sha: String,
    pub passed: i32,
    pub failed: i32,
}

#[derive(Debug, SimpleObject)]
pub struct TestHistory {
    pub test_id: String,
    /// Newest first.
    pub entries: Vec<HistoryEntry>,
    pub platforms: Vec<PlatformHistory>,
    /// Commits where the test both passed and failed on one platform,
    /// judged by the same definition (an accepted output is a new one).
    pub flaky: Vec<FlakyCommit>,
}

#[derive(Debug, SimpleObject)]
pub struct RunFile {
    pub attempt: i32,
    pub name: String,
    pub size_bytes: i64,
    pub url: String,
}

#[derive(Debug, SimpleObject)]
pub struct DiffLine {
    /// `equal`, `delete` (expected only) or `insert` (produced only).
    pub kind: String,
    pub old_line: Option<i32>,
    pub new_line: Option<i32>,
    pub text: String,
}

#[derive(Debug, Default, SimpleObject)]
pub struct OutputDiff {
    pub test_id: String,
    pub output: String,
    pub expected_sha256: Option<String>,
    pub produced_sha256: Option<String>,
    /// The catalogue as it is now accepts the produced output on the run's
    /// platform (approved, a variant, or ignored): a new run judges this
    /// output good; the test's other outputs and exit code still count.
    pub accepted_now: bool,
    /// Null when the platform does not have that content.
    pub expected_url: Option<String>,
    pub produced_url: Option<String>,
    pub binary: bool,
    /// Only the start of a side, or of the diff, is shown.
    pub truncated: bool,
    /// Why there is no diff to show, when `lines` is empty.
    pub note: Option<String>,
    pub lines: Vec<DiffLine>,
}

#[derive(Debug, SimpleObject)]
pub struct ImportSummary {
    pub samples_added: i32,
    pub tests_defined: i32,
}

#[derive(Debug, InputObject)]
pub struct OutputInput {
    pub name: String,
    pub approved_sha256: String,
    #[graphql(default)]
    pub variants: Vec<String>,
    #[graphql(default)]
    pub ignore: bool,
}

/// A regression test to create, or to replace whole (baselines accepted on
/// single platforms are kept).
#[derive(Debug, InputObject)]
pub struct TestInput {
    pub id: String,
    /// The sample's SHA-256 or name.
    pub sample: String,
    pub command: String,
    /// `file` (default), `stdin` or `udp` (the runner sends the sample as
    /// datagrams to `{port}`).
    pub input_kind: Option<String>,
    /// `file` (default: named files), `stdout`, `report`, `null` (no
    /// output), `cea708` or `multiprogram` (every file of `outputPattern`),
    /// `tcp` (what the program sends to `{port}`).
    pub output_kind: Option<String>,
    /// For `cea708` and `multiprogram`, e.g. `{base}_*.srt`.
    pub output_pattern: Option<String>,
    #[graphql(default)]
    pub expected_exit_code: i32,
    #[graphql(default)]
    pub categories: Vec<String>,
    #[graphql(default = true)]
    pub active: bool,
    #[graphql(default)]
    pub description: String,
    pub platforms: Option<Vec<String>>,
    #[graphql(default)]
    pub outputs: Vec<OutputInput>,
}

fn sample_view(s: &catalogue::Sample, added: Option<&(DateTime<Utc>, String)>) -> Sample {
    Sample {
        sha256: s.sha256.clone(),
        name: s.name.clone(),
        extension: s.extension.clone(),
        size_bytes: i64::try_from(s.size_bytes).unwrap_or(i64::MAX),
        tags: s.tags.clone(),
        url: s.url.clone(),
        added_at: added.map(|a| a.0),
        added_by: added.map(|a| a.1.clone()),
        download_url: s
            .url
            .clone()
            .unwrap_or_else(|| format!("/files/samples/{}", s.sha256)),
    }
}

fn test_view(t: &TestDefinition, c: &catalogue::Catalogue) -> RegressionTestDef {
    let sample = c.samples.get(&t.sample).map_or_else(
        || Sample {
            sha256: t.sample.clone(),
            name: t.sample.clone(),
            extension: String::new(),
            size_bytes: 0,
            tags: vec![],
            url: None,
            added_at: None,
            added_by: None,
            download_url: format!("/files/samples/{}", t.sample),
        },
        |s| sample_view(s, None),
    );
    RegressionTestDef {
        id: t.id.clone(),
        sample,
        command: t.command.clone(),
        input_kind: t.input.as_str().to_string(),
        output_kind: t.output.as_str().to_string(),
        output_pattern: t.output_pattern.clone(),
        expected_exit_code: t.expected_exit_code,
        categories: t.categories.clone(),
        active: t.active,
        description: t.description.clone(),
        platforms: t.platforms.clone(),
        outputs: t
            .outputs
            .iter()
            .map(|o| OutputDef {
                name: o.name.clone(),
                approved_sha256: o.approved_sha256.clone(),
                variants: o.variants.clone(),
                ignore: o.ignore,
                platforms: o
                    .platforms
                    .iter()
                    .map(|(p, b)| PlatformBaseline {
                        platform: p.clone(),
                        approved_sha256: b.approved_sha256.clone(),
                        variants: b.variants.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn entry(r: &history::HistoryRow) -> HistoryEntry {
    HistoryEntry {
        run_id: ID(r.run_id.clone()),
        platform: r.platform.clone(),
        repository: r.repository.clone(),
        commit_sha: r.commit_sha.clone(),
        queued_at: r.queued_at,
        finished_at: r.finished_at,
        passed: r.passed,
        attempt: r.attempt,
    }
}

#[derive(Debug, Default)]
pub struct CatalogueQuery;

#[Object]
impl CatalogueQuery {
    /// The catalogue's samples, with who added each and when.
    #[graphql(complexity = "100 + child_complexity")]
    async fn samples(&self, ctx: &Context<'_>) -> Result<Vec<Sample>> {
        require(ctx, Scope::Read)?;
        let services = services(ctx)?;
        let (current, added) = services
            .catalogues
            .current_with_origins()
            .await
            .map_err(graphql_error)?;
        Ok(current
            .state
            .samples
            .values()
            .map(|s| sample_view(s, added.get(&s.sha256)))
            .collect())
    }

    /// The regression tests, by id.
    #[graphql(complexity = "100 + child_complexity")]
    async fn regression_tests(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_inactive: bool,
    ) -> Result<Vec<RegressionTestDef>> {
        require(ctx, Scope::Read)?;
        let current = services(ctx)?
            .catalogues
            .current()
            .await
            .map_err(graphql_error)?;
        let c = &current.state;
        Ok(c.tests
            .values()
            .filter(|t| include_inactive || t.active)
            .map(|t| test_view(t, c))
            .collect())
    }

    async fn regression_test(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> Result<Option<RegressionTestDef>> {
        require(ctx, Scope::Read)?;
        let current = services(ctx)?
            .catalogues
            .current()
            .await
            .map_err(graphql_error)?;
        Ok(current
            .state
            .tests
            .get(&id)
            .map(|t| test_view(t, &current.state)))
    }

    /// A test's history across runs and platforms, newest first.
    #[graphql(complexity = "100 + child_complexity")]
    async fn test_history(
        &self,
        ctx: &Context<'_>,
        test_id: String,
        #[graphql(default = 100, desc = "At most 1000.")] limit: i32,
    ) -> Result<TestHistory> {
        require(ctx, Scope::Read)?;
        if !(1..=1000).contains(&limit) {
            return Err(coded(ErrorKind::InvalidInput, "limit must be 1 to 1000"));
        }
        let found = history::test_history(&services(ctx)?.db.pool, &test_id, i64::from(limit))
            .await
            .map_err(internal)?;
        let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(TestHistory {
            entries: found.entries.iter().map(entry).collect(),
            test_id,
            platforms: found
                .platforms
                .iter()
                .map(|p| PlatformHistory {
                    platform: p.platform.clone(),
                    last_passed: p.last_passed.as_ref().map(entry),
                    first_failed: p.first_failed.as_ref().map(entry),
                    compare_url: p.compare_url.clone(),
                })
                .collect(),
            flaky: found
                .flaky
                .into_iter()
                .map(|f| FlakyCommit {
                    platform: f.platform,
                    commit_sha: f.commit_sha,
                    passed: count(f.passed),
                    failed: count(f.failed),
                })
                .collect(),
        })
    }

    /// Logs and stderr files a run's runners uploaded, every attempt.
    #[graphql(complexity = "50 + child_complexity")]
    async fn run_files(&self, ctx: &Context<'_>, run_id: ID) -> Result<Vec<RunFile>> {
        require(ctx, Scope::Read)?;
        let id = parse_run_id(&run_id)?;
        let logs = services(ctx)?.files.logs(id.0).await.map_err(internal)?;
        let files = logs
            .into_iter()
            .map(|(log, size)| RunFile {
                url: format!("/files/logs/{id}/{}/{}", log.attempt, log.name),
                attempt: i32::try_from(log.attempt).unwrap_or(i32::MAX),
                name: log.name,
                size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
            })
            .collect();
        Ok(files)
    }

    /// The expected and produced text of one output of one test in a run,
    /// line by line (the first 256 KiB of each, at most 2,000 lines).
    #[graphql(complexity = "500 + child_complexity")]
    async fn output_diff(
        &self,
        ctx: &Context<'_>,
        run_id: ID,
        test_id: String,
        output: String,
    ) -> Result<OutputDiff> {
        require(ctx, Scope::Read)?;
        let services = services(ctx)?;
        let mut diff = services
            .catalogues
            .output_diff(&services.files, parse_run_id(&run_id)?, &test_id, &output)
            .await
            .map_err(graphql_error)?;
        // Content that retention deleted is said to be, not merely missing.
        for (stored, sha, which) in [
            (diff.produced_stored, &diff.produced_sha256, "produced"),
            (diff.expected_stored, &diff.expected_sha256, "expected"),
        ] {
            let Some(sha) = sha.as_ref().filter(|_| !stored) else {
                continue;
            };
            if let Some((at, policy)) =
                sp_projections::queries::deleted_file(&services.db.pool, "output", sha)
                    .await
                    .map_err(internal)?
            {
                diff.note = Some(format!(
                    "the {which} content was deleted by retention on {}: {policy}",
                    at.format("%Y-%m-%d")
                ));
                break;
            }
        }
        let url = |stored: bool, sha: &Option<String>| {
            sha.as_ref()
                .filter(|_| stored)
                .map(|sha| format!("/files/outputs/{sha}"))
        };
        let line = |n: Option<usize>| n.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        Ok(OutputDiff {
            expected_url: url(diff.expected_stored, &diff.expected_sha256),
            produced_url: url(diff.produced_stored, &diff.produced_sha256),
            lines: diff
                .lines
                .into_iter()
                .map(|l| DiffLine {
                    kind: l.kind.as_str().into(),
                    old_line: line(l.old_line),
                    new_line: line(l.new_line),
                    text: l.text,
                })
                .collect(),
            test_id: diff.test_id,
            output: diff.output,
            expected_sha256: diff.expected_sha256,
            produced_sha256: diff.produced_sha256,
            accepted_now: diff.accepted_now,
            binary: diff.binary,
            truncated: diff.truncated,
            note: diff.note,
        })
    }

    /// The catalogue in the catalogue file format (TOML).
    #[graphql(complexity = 200)]
    async fn export_catalogue(&self, ctx: &Context<'_>) -> Result<String> {
        require(ctx, Scope::Read)?;
        let current = services(ctx)?
            .catalogues
            .current()
            .await
            .map_err(graphql_error)?;
        Ok(catalogue_file::export(&current.state))
    }
}

#[derive(Debug, Default)]
pub struct CatalogueMutation;

#[Object]
impl CatalogueMutation {
    /// Add a sample: the file's content (a GraphQL multipart upload, up to
    /// the /graphql body limit; larger files go to `POST /api/samples`,
    /// streamed, which `sample-platform samples add` uses). Content the
    /// catalogue has already is refused with CONFLICT naming the sample.
    async fn add_sample(
        &self,
        ctx: &Context<'_>,
        file: Upload,
        #[graphql(default)] tags: Vec<String>,
    ) -> Result<Sample> {
        let caller = require(ctx, Scope::Catalogue)?;
        let services = services(ctx)?;
        let upload = file
            .value(ctx)
            .map_err(|e| coded(ErrorKind::InvalidInput, format!("the upload: {e}")))?;
        let content =
            futures_util::stream::iter([Ok::<_, std::convert::Infallible>(upload.content)]);
        let added = services
            .catalogues
            .add_sample(
                &services.files,
                &caller.actor,
                &upload.filename,
                tags,
                services.max_sample_bytes,
                content,
            )
            .await
            .map_err(graphql_error)?;
        match added {
            AddedSample::New(sample) => Ok(sample_view(&sample, Some(&(Utc::now(), caller.actor)))),
            AddedSample::Duplicate { existing, message } => {
                Err(coded(ErrorKind::Conflict, message).extend_with(|_, e| {
                    e.set("sha256", existing.sha256.clone());
                    e.set("name", existing.name.clone());
                }))
            }
        }
    }

    /// Create a regression test, or replace one whole. Returns whether the
    /// catalogue changed.
    async fn define_test(&self, ctx: &Context<'_>, test: TestInput) -> Result<bool> {
        let caller = require(ctx, Scope::Catalogue)?;
        let services = services(ctx)?;
        let current = services.catalogues.current().await.map_err(graphql_error)?;
        let sample = current
            .state
            .sample(&test.sample)
            .map(|s| s.sha256.clone())
            .ok_or_else(|| {
                coded(
                    ErrorKind::NotFound,
                    format!("no sample {:?} in the catalogue", test.sample),
                )
            })?;
        let invalid =
            |what: &str, why: String| coded(ErrorKind::InvalidInput, format!("{what} kind {why}"));
        let input = match test.input_kind.as_deref() {
            None => InputKind::File,
            Some(name) => InputKind::named(name).map_err(|why| invalid("input", why))?,
        };
        let output = match test.output_kind.as_deref() {
            None => OutputKind::File,
            Some(name) => OutputKind::named(name).map_err(|why| invalid("output", why))?,
        };
        let outputs = test
            .outputs
            .into_iter()
            .map(|o| OutputDefinition {
                // What was accepted on single platforms is kept by the
                // catalogue itself.
                platforms: Default::default(),
                name: o.name,
                approved_sha256: o.approved_sha256.to_ascii_lowercase(),
                variants: o.variants,
                ignore: o.ignore,
            })
            .collect();
        let definition = TestDefinition {
            id: test.id,
            sample,
            command: test.command,
            input,
            expected_exit_code: test.expected_exit_code,
            categories: test.categories,
            active: test.active,
            description: test.description,
            platforms: test.platforms,
            outputs,
            output,
            output_pattern: test.output_pattern,
        };
        let outcome = services
            .catalogues
            .execute(&caller.actor, &CatalogueCommand::DefineTest(definition))
            .await
            .map_err(graphql_error)?;
        Ok(!outcome.events.is_empty())
    }

    /// Take a test out of new runs (or back in), saying why.
    async fn set_test_active(
        &self,
        ctx: &Context<'_>,
        id: String,
        active: bool,
        reason: String,
    ) -> Result<bool> {
        let caller = require(ctx, Scope::Catalogue)?;
        let outcome = services(ctx)?
            .catalogues
            .execute(
                &caller.actor,
                &CatalogueCommand::SetActive {
                    test_id: id,
                    active,
                    reason,
                },
            )
            .await
            .map_err(graphql_error)?;
        Ok(!outcome.events.is_empty())
    }

    /// Accept what a run produced for one output of one test, on the run's
    /// platform: as a variant, or as the new approved baseline. Past
    /// verdicts stay as they were. Returns whether the catalogue changed.
    async fn accept_output(
        &self,
        ctx: &Context<'_>,
        run_id: ID,
        test_id: String,
        output: String,
        as_baseline: bool,
        reason: String,
    ) -> Result<bool> {
        let caller = require(ctx, Scope::Catalogue)?;
        services(ctx)?
            .catalogues
            .accept_output(
                &caller.actor,
                parse_run_id(&run_id)?,
                &test_id,
                &output,
                as_baseline,
                &reason,
            )
            .await
            .map_err(graphql_error)
    }

    /// Import a catalogue file's text (TOML, or JSON with `json: true`): new
    /// samples are added (their content must be uploaded already, or have a
    /// URL), new or changed tests defined; tests it does not name stay.
    async fn import_catalogue(
        &self,
        ctx: &Context<'_>,
        text: String,
        #[graphql(default = false)] json: bool,
    ) -> Result<ImportSummary> {
        let caller = require(ctx, Scope::Catalogue)?;
        let services = services(ctx)?;
        let file = catalogue_file::parse(&text, json, None)
            .map_err(|e| coded(ErrorKind::InvalidInput, e))?;
        let summary = services
            .catalogues
            .import(&services.files, &file, &caller.actor)
            .await
            .map_err(graphql_error)?;
        Ok(ImportSummary {
            samples_added: i32::try_from(summary.samples_added).unwrap_or(i32::MAX),
            tests_defined: i32::try_from(summary.tests_defined).unwrap_or(i32::MAX),
        })
    }
}

//! The catalogue's write side, and the regression tests new runs snapshot
//! from it.
//!
//! Every intake and enqueue needs the catalogue, so it is kept folded in
//! memory and brought up to date with one read of the events after the
//! cached version: usually none.
//!
//! The use cases that move content as well as events (importing a
//! [`CatalogueFile`], adding a sample) store the content in [`Files`] first:
//! an event never names a file the store does not have.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use bytes::Bytes;
use futures_util::Stream;
use sp_domain::catalogue::{
    self, AcceptOutput, Catalogue, CatalogueCommand, CatalogueEvent, CatalogueRejection, Sample,
    extension_of,
};
use sp_domain::{OutputProduced, Platform, Policy, RegressionTest, RunId, RunState, Trigger};
use sp_eventstore::EventStore;
use sp_files::{FileError, Files, Kind};

use crate::catalogue_file::CatalogueFile;
use crate::{Clock, CommandError, Envelope, Error, ErrorKind, Handler, Loaded, Outcome};

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub samples_added: usize,
    pub tests_defined: usize,
}

/// A sample given through the API: new, or content the catalogue has
/// already (under the name it has there).
#[derive(Debug, Clone)]
pub enum AddedSample {
    New(Sample),
    Duplicate { existing: Sample, message: String },
}

#[derive(Debug, Clone)]
pub struct Catalogues {
    handler: Handler<Catalogue>,
    pub(crate) runs: Handler<RunState>,
    cached: Arc<Mutex<Arc<Cached>>>,
    /// A change's author may not make its output the baseline.
    four_eyes: bool,
}

/// Who added each sample, and when, by SHA-256: from the metadata of the
/// `SampleAdded` events, which the catalogue's state does not keep.
pub type SampleOrigins = BTreeMap<String, (DateTime<Utc>, String)>;

#[derive(Debug, Default)]
struct Cached {
    loaded: Arc<Loaded<Catalogue>>,
    origins: Arc<SampleOrigins>,
}

fn catalogue_error(e: CommandError<CatalogueRejection>) -> Error {
    match e {
        CommandError::Rejected(r) => match r {
            CatalogueRejection::DuplicateSample { .. } => Error::conflict(r.to_string()),
            CatalogueRejection::UnknownSample(_)
            | CatalogueRejection::UnknownTest(_)
            | CatalogueRejection::UnknownOutput { .. } => Error::not_found(r.to_string()),
            CatalogueRejection::Invalid(_) | CatalogueRejection::ReasonRequired => {
                Error::invalid(r.to_string())
            }
        },
        other => other.into(),
    }
}

impl Catalogues {
    pub fn new(store: Arc<dyn EventStore>, policy: Policy, clock: Arc<dyn Clock>) -> Self {
        Catalogues {
            handler: Handler::new(store.clone(), policy.clone(), clock.clone()),
            runs: Handler::new(store, policy, clock),
            cached: Arc::default(),
            four_eyes: false,
        }
    }

    /// With `on`, whoever wrote a run's change (a custom run's contributor,
    /// a pull request head's author) cannot make its output the baseline.
    pub fn four_eyes(mut self, on: bool) -> Self {
        self.four_eyes = on;
        self
    }

    /// The catalogue as of now.
    pub async fn current(&self) -> Result<Arc<Loaded<Catalogue>>, Error> {
        Ok(self.refresh().await?.loaded.clone())
    }

    /// The catalogue as of now, with who added each sample and when.
    pub async fn current_with_origins(
        &self,
    ) -> Result<(Arc<Loaded<Catalogue>>, Arc<SampleOrigins>), Error> {
        let cached = self.refresh().await?;
        Ok((cached.loaded.clone(), cached.origins.clone()))
    }

    /// The cache brought up to date with one read of what is new.
    async fn refresh(&self) -> Result<Arc<Cached>, Error> {
        let cached = self
            .cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let newer = self
            .handler
            .store()
            .read_stream(catalogue::STREAM, cached.loaded.version + 1)
            .await
            .map_err(|e| Error::unavailable(e.to_string()))?;
        if newer.is_empty() {
            return Ok(cached);
        }
        let loaded = Handler::<Catalogue>::fold_onto(
            catalogue::STREAM,
            Loaded::clone(&cached.loaded),
            &newer,
        )
        .map_err(catalogue_error)?;
        let mut origins = SampleOrigins::clone(&cached.origins);
        for e in newer.iter().filter(|e| e.event_type == "SampleAdded") {
            if let Some(sha) = e.data.to_value()["sample"]["sha256"].as_str() {
                origins.insert(sha.to_string(), (e.recorded_at, e.metadata.actor.clone()));
            }
        }
        let fresh = Arc::new(Cached {
            loaded: Arc::new(loaded),
            origins: Arc::new(origins),
        });
        let mut slot = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        // Another caller may have caught up further meanwhile.
        if slot.loaded.version < fresh.loaded.version {
            *slot = fresh.clone();
        }
        Ok(fresh)
    }

    /// The active tests that run on `platform`.
    pub async fn tests_for(&self, platform: &Platform) -> Result<Vec<RegressionTest>, Error> {
        Ok(self.current().await?.state.tests_for(platform.as_str()))
    }

    /// Decide a catalogue command as `actor` and record its events.
    pub async fn execute(
        &self,
        actor: &str,
        command: &CatalogueCommand,
    ) -> Result<Outcome<Catalogue>, Error> {
        let loaded = Loaded::clone(&*self.current().await?);
        let outcome = self
            .handler
            .execute_loaded(catalogue::STREAM, loaded, command, &Envelope::new(actor))
            .await
            .map_err(catalogue_error)?;
        // Read what was recorded now, once, rather than by the next run
        // queued (an import of thousands of tests is one command).
        if !outcome.events.is_empty() {
            let _ = self.refresh().await;
        }
        Ok(outcome)
    }

    /// Accept what `run` produced for one output of one test, on the run's
    /// platform, as a variant or the new baseline. Returns whether the
    /// catalogue changed (accepting the same output twice changes nothing).
    pub async fn accept_output(
        &self,
        actor: &str,
        run: RunId,
        test_id: &str,
        output: &str,
        as_baseline: bool,
        reason: &str,
    ) -> Result<bool, Error> {
        let loaded = self.runs.load(&run.stream()).await?;
        let Some(r) = loaded.state.run.as_ref() else {
            return Err(Error::not_found("no such run"));
        };
        if self.four_eyes && as_baseline {
            self.second_pair_of_eyes(actor, run, &r.info).await?;
        }
        let result = r.results.get(test_id).ok_or_else(|| {
            Error::not_found(format!("run {run} has no result for test {test_id:?}"))
        })?;
        let produced = result
            .outputs
            .iter()
            .find(|o| o.name == output)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "test {test_id:?} in run {run} reported no output {output:?}"
                ))
            })?;
        let sha256 = match &produced.produced {
            OutputProduced::Sha256 { sha256 } => sha256.clone(),
            OutputProduced::Equal => {
                return Err(Error::refused(format!(
                    "output {output:?} of {test_id:?} is already the approved one"
                )));
            }
            OutputProduced::Missing => {
                return Err(Error::refused(format!(
                    "test {test_id:?} did not write {output:?} in run {run}: nothing to accept"
                )));
            }
            OutputProduced::TooLarge { limit_bytes } => {
                return Err(Error::refused(format!(
                    "output {output:?} of {test_id:?} in run {run} was larger than the {limit_bytes} \
                     bytes the runner keeps: it was not compared, so it cannot be accepted"
                )));
            }
        };
        let command = CatalogueCommand::AcceptOutput(AcceptOutput {
            test_id: test_id.to_string(),
            platform: r.info.platform.to_string(),
            output: output.to_string(),
            sha256,
            as_baseline,
            run_id: run,
            accepted_by: actor.to_string(),
            reason: reason.to_string(),
        });
        Ok(!self.execute(actor, &command).await?.events.is_empty())
    }

    /// With four eyes on, whether `actor` may make an output of `run` the
    /// baseline: a pushed commit is on its branch already; a change with an
    /// author (a custom run's contributor, a pull request head's author)
    /// needs a signed-in maintainer who is not its author; a run queued by
    /// hand names no author, so its baseline comes from another run.
    async fn second_pair_of_eyes(
        &self,
        actor: &str,
        run: RunId,
        info: &sp_domain::RunInfo,
    ) -> Result<(), Error> {
        use sp_domain::pull_request::{self, PullRequestState};
        let author = match &info.trigger {
            Trigger::Push { .. } => return Ok(()),
            Trigger::Manual { .. } => {
                return Err(Error::forbidden(format!(
                    "four eyes: run {run} was queued by hand, so who wrote its change is not known: \
                     make the baseline from the run of its push or pull request (a variant may be accepted here)"
                )));
            }
            Trigger::Custom { login, .. } => Some(login.clone()),
            Trigger::PullRequest { number, .. } => {
                let stream = pull_request::stream(&info.repository, *number);
                let events = self.runs.store().read_stream(&stream, 1).await?;
                let pr = Handler::<PullRequestState>::fold(&stream, &events)?;
                pr.state
                    .heads
                    .iter()
                    .rev()
                    .find(|h| h.sha == info.commit_sha)
                    .map(|h| h.author.clone())
            }
        };
        let Some(author) = author else {
            return Err(Error::forbidden(format!(
                "four eyes: who wrote the change run {run} tested is not recorded, so its output \
                 cannot be made the baseline here (a variant may be accepted)"
            )));
        };
        match actor.strip_prefix("github:") {
            Some(approver) if !approver.eq_ignore_ascii_case(&author) => Ok(()),
            Some(_) => Err(Error::forbidden(format!(
                "four eyes: {author} wrote the change run {run} tested, so another maintainer \
                 must make its output the baseline (a variant {author} may accept)"
            ))),
            None => Err(Error::forbidden(format!(
                "four eyes: the baseline of {author}'s change is made by a maintainer signed in \
                 with GitHub, not by a token"
            ))),
        }
    }

    /// Store a catalogue file's samples and expected outputs, then record
    /// what is new.
    pub async fn import(
        &self,
        files: &Files,
        file: &CatalogueFile,
        actor: &str,
    ) -> Result<ImportSummary, Error> {
        let mut samples = Vec::with_capacity(file.samples.len());
        for s in &file.samples {
            let mut sample = s.sample.clone();
            match &s.source {
                Some(path) => store_file(files, Kind::Sample, &sample.sha256, path).await?,
                None if sample.url.is_some() => {}
                None => match files.exists(Kind::Sample, &sample.sha256).await? {
                    Some(size) => sample.size_bytes = size,
                    None => {
                        return Err(Error::not_found(format!(
                            "sample {:?} ({}) is not in the platform's store: upload it first \
                             (`sample-platform samples add`) or import the file from the command line",
                            sample.name, sample.sha256
                        )));
                    }
                },
            }
            samples.push(sample);
        }
        for (sha256, path) in &file.expected {
            store_file(files, Kind::Output, sha256, path).await?;
        }
        let outcome = self
            .execute(
                actor,
                &CatalogueCommand::Import {
                    samples,
                    tests: file.tests.clone(),
                },
            )
            .await?;
        let mut summary = ImportSummary::default();
        for e in &outcome.events {
            match e {
                CatalogueEvent::SampleAdded { .. } => summary.samples_added += 1,
                CatalogueEvent::TestDefined { .. } => summary.tests_defined += 1,
                _ => {}
            }
        }
        Ok(summary)
    }

    /// Store a sample's content, at most `limit` bytes, then record it in the
    /// catalogue. A duplicate is detected by its hash and answered with the
    /// sample the catalogue already has; the content is stored once.
    pub async fn add_sample<S, E>(
        &self,
        files: &Files,
        actor: &str,
        name: &str,
        tags: Vec<String>,
        limit: u64,
        content: S,
    ) -> Result<AddedSample, Error>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let name = name.trim();
        if name.is_empty() || name.contains('/') || name.contains('\\') {
            return Err(Error::invalid(format!(
                "a sample needs a file name without directories, not {name:?}"
            )));
        }
        let stored = files.put(Kind::Sample, None, limit, content).await?;
        let sample = Sample {
            sha256: stored.sha256.clone(),
            extension: extension_of(name),
            name: name.to_string(),
            size_bytes: stored.size_bytes,
            tags: tags
                .into_iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            url: None,
        };
        match self
            .execute(actor, &CatalogueCommand::AddSample(sample.clone()))
            .await
        {
            Ok(_) => Ok(AddedSample::New(sample)),
            Err(Error {
                kind: ErrorKind::Conflict,
                message,
            }) => {
                let existing = self
                    .current()
                    .await?
                    .state
                    .samples
                    .get(&stored.sha256)
                    .cloned()
                    .unwrap_or(sample);
                Ok(AddedSample::Duplicate { existing, message })
            }
            Err(e) => Err(e),
        }
    }
}

/// Store a local file under the hash the catalogue file gives it, unless the
/// store has it already.
async fn store_file(
    files: &Files,
    kind: Kind,
    sha256: &str,
    path: &std::path::Path,
) -> Result<(), Error> {
    if files.exists(kind, sha256).await?.is_some() {
        return Ok(());
    }
    match files.put_path(kind, Some(sha256), u64::MAX, path).await {
        Ok(_) => Ok(()),
        Err(e @ (FileError::HashMismatch { .. } | FileError::Local { .. })) => {
            Err(Error::not_found(format!("{}: {e}", path.display())))
        }
        Err(e) => Err(e.into()),
    }
}

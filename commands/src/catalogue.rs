//! The catalogue's write side, and the regression tests new runs snapshot
//! from it.
//!
//! Every intake and enqueue needs the catalogue, so it is kept folded in
//! memory and brought up to date with one read of the events after the
//! cached version: usually none.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use sp_domain::catalogue::{self, AcceptOutput, Catalogue, CatalogueCommand, CatalogueRejection};
use sp_domain::{OutputProduced, Platform, Policy, RegressionTest, RunId, RunState};
use sp_eventstore::EventStore;

use crate::{Clock, CommandError, Envelope, Error, Handler, Loaded, Outcome};

#[derive(Debug, Clone)]
pub struct Catalogues {
    handler: Handler<Catalogue>,
    runs: Handler<RunState>,
    cached: Arc<Mutex<Arc<Cached>>>,
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
        }
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
            if let Some(sha) = e.data["sample"]["sha256"].as_str() {
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
        self.handler
            .execute_loaded(catalogue::STREAM, loaded, command, &Envelope::new(actor))
            .await
            .map_err(catalogue_error)
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
}

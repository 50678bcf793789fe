//! `sample-runner`: runs on the VM (or as the local provider's child) and
//! does one run attempt's work.
//!
//! 1. fetch the job with the attempt's credential;
//! 2. download the artifact and the samples (cached by sha256, verified);
//! 3. run each regression test with its timeout, hash its outputs, compare
//!    them with the approved hash, report the result;
//! 4. keep a heartbeat going while a test runs long;
//! 5. upload the log and each test's stderr that is not empty, report the
//!    finish.
//!
//! Reports go through a spool on disk and are retried with backoff, so a
//! platform that is briefly unreachable loses nothing. A local failure (an
//! artifact that does not check out, a full disk) is reported as a failure
//! with its reason, and the runner exits non-zero.
//!
//! [`run`] does all of it with a [`Config`] (the report URL, the attempt's
//! credential, work and cache directories) and answers an [`Outcome`]:
//! finished, or refused by the platform (the attempt is over). [`client`] speaks
//! the HTTP protocol (spool, retries, downloads verified by sha256); [`exec`]
//! runs one regression test in a process group of its own, killed whole at its
//! timeout, and compares its outputs.

pub mod client;
pub mod exec;
mod os;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sp_domain::protocol::{Job, ReportBody};
use sp_domain::{OutputProduced, RunnerStage};
use tokio::io::AsyncWriteExt;

use crate::client::{Client, SendError};

/// How long a UDP test's program has to start listening on its port.
const LISTEN_WAIT: Duration = Duration::from_secs(10);

/// The runner's command line: the same for `sample-runner` and
/// `sample-platform runner`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The run's runner URL, `…/runner/v1/runs/{run}` (from the VM's metadata).
    #[arg(long, env = "SP_REPORT_URL")]
    pub report_url: String,
    /// The attempt's runner credential (from the VM's metadata).
    #[arg(long, env = "SP_RUNNER_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Working directory for this attempt (default: the current one).
    #[arg(long, env = "SP_RUNNER_WORK_DIR", default_value = ".")]
    pub work_dir: PathBuf,
    /// Download cache, by sha256 (default: WORK_DIR/cache).
    #[arg(long, env = "SP_RUNNER_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The program under test when the job brings no artifact.
    #[arg(long, env = "SP_RUNNER_EXE")]
    pub exe: Option<PathBuf>,
}

impl From<Args> for Config {
    fn from(args: Args) -> Self {
        Config {
            cache_dir: args
                .cache_dir
                .unwrap_or_else(|| args.work_dir.join("cache")),
            report_url: args.report_url,
            token: args.token,
            work_dir: args.work_dir,
            exe: args.exe,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `…/runner/v1/runs/{run}`.
    pub report_url: String,
    pub token: String,
    /// Where this attempt works: spool, program, outputs, logs.
    pub work_dir: PathBuf,
    /// Downloads by sha256, shared by attempts on one machine.
    pub cache_dir: PathBuf,
    /// The program under test when the job brings no artifact.
    pub exe: Option<PathBuf>,
}

/// How a run of the runner ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
    /// The platform refused a report: this attempt is over.
    Refused(String),
}

/// The runner's own log, uploaded at the end.
#[derive(Debug, Clone)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn line(&self, text: impl Into<String>) {
        let text = text.into();
        tracing::info!("{text}");
        let stamp = timestamp();
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{stamp} {text}"));
    }

    async fn write(&self, to: &Path) -> std::io::Result<()> {
        let text = self.0.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
        let mut file = tokio::fs::File::create(to).await?;
        file.write_all(text.as_bytes()).await?;
        file.write_all(b"\n").await
    }
}

/// Seconds since the epoch: enough to order the log's lines.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("[{}.{:03}]", now.as_secs(), now.subsec_millis())
}

/// What the heartbeat says.
#[derive(Debug, Clone)]
struct Now {
    stage: RunnerStage,
    message: String,
    done: u32,
    total: u32,
}

impl Now {
    fn progress(&self) -> ReportBody {
        ReportBody::Progress {
            stage: self.stage,
            message: self.message.clone(),
            done: self.done,
            total: self.total,
        }
    }
}

/// Move to a new stage or test; returns the progress report to send.
fn advance(now: &Mutex<Now>, stage: RunnerStage, message: String, done: u32) -> ReportBody {
    let mut now = now.lock().unwrap_or_else(|p| p.into_inner());
    now.stage = stage;
    now.message = message;
    now.done = done;
    now.progress()
}

/// Do the job. `Err` is a local failure, already reported to the platform
/// where that was possible.
pub async fn run(mut config: Config) -> anyhow::Result<Outcome> {
    tokio::fs::create_dir_all(&config.work_dir).await?;
    // Tests run in their own output directories: every path must be absolute.
    config.work_dir = std::path::absolute(&config.work_dir)?;
    config.cache_dir = std::path::absolute(&config.cache_dir)?;
    let client = Client::new(
        &config.report_url,
        &config.token,
        config.work_dir.join("spool"),
    )?;
    let log = Log(Arc::default());
    // Reports a previous runner process of this attempt could not deliver.
    if let Err(SendError::Refused(reason)) = client.flush().await {
        return Ok(Outcome::Refused(reason));
    }
    let job = client.job().await?;
    log.line(format!(
        "run {} attempt {} on {}: {} regression tests",
        job.run_id,
        job.attempt,
        job.platform,
        job.tests.len()
    ));
    let now = Arc::new(Mutex::new(Now {
        stage: RunnerStage::Preparing,
        message: String::new(),
        done: 0,
        total: u32::try_from(job.tests.len()).unwrap_or(u32::MAX),
    }));
    let heartbeat = tokio::spawn(heartbeat(client.clone(), now.clone(), job.heartbeat_secs));
    let outcome = work(&config, &client, &job, &log, &now).await;
    heartbeat.abort();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(failure) => {
            log.line(format!("failed: {failure:#}"));
            upload_logs(&client, &config, &job, &log).await;
            let report = ReportBody::Failure {
                message: format!("{failure:#}"),
                retryable: true,
            };
            if let Err(e) = client.report(report).await {
                log.line(format!("could not report the failure: {e}"));
            }
            return Err(failure);
        }
    };
    if let Outcome::Refused(reason) = &outcome {
        log.line(format!("the platform refused a report, stopping: {reason}"));
        return Ok(outcome);
    }
    upload_logs(&client, &config, &job, &log).await;
    match client.report(ReportBody::Finish).await {
        Ok(()) => Ok(Outcome::Finished),
        Err(SendError::Refused(reason)) => Ok(Outcome::Refused(reason)),
        Err(SendError::Unreachable(reason)) => anyhow::bail!("cannot report the finish: {reason}"),
    }
}

async fn send(client: &Client, body: ReportBody) -> anyhow::Result<Option<String>> {
    match client.report(body).await {
        Ok(()) => Ok(None),
        Err(SendError::Refused(reason)) => Ok(Some(reason)),
        Err(SendError::Unreachable(reason)) => {
            anyhow::bail!("the platform stayed unreachable: {reason}")
        }
    }
}

async fn work(
    config: &Config,
    client: &Client,
    job: &Job,
    log: &Log,
    now: &Arc<Mutex<Now>>,
) -> anyhow::Result<Outcome> {
    let preparing = advance(
        now,
        RunnerStage::Preparing,
        "downloading the artifact and the samples".into(),
        0,
    );
    if let Some(reason) = send(client, preparing).await? {
        return Ok(Outcome::Refused(reason));
    }
    let exe = prepare_program(config, client, job, log).await?;
    let mut samples = Vec::with_capacity(job.tests.len());
    for t in &job.tests {
        let path = client
            .fetch(
                &t.sample_url,
                &t.test.sample.sha256,
                &config.cache_dir.join("samples"),
            )
            .await
            .map_err(|e| {
                anyhow::anyhow!("sample {} of test {}: {e}", t.test.sample.name, t.test.id)
            })?;
        samples.push(path);
    }
    log.line(format!("downloaded {} samples", samples.len()));

    let limits = exec::Limits {
        timeout: Duration::from_secs(job.per_test_timeout_secs.max(1)),
        max_captured_bytes: job.max_captured_bytes,
        udp_datagrams_per_second: job.udp_datagrams_per_second,
        listen_wait: LISTEN_WAIT,
    };
    tokio::fs::create_dir_all(config.work_dir.join("stderr")).await?;
    for (i, (t, sample)) in job.tests.iter().zip(&samples).enumerate() {
        let done = u32::try_from(i).unwrap_or(u32::MAX);
        let testing = advance(
            now,
            RunnerStage::Testing,
            format!("running {}", t.test.id),
            done,
        );
        // The stage change is reported at once; later tests ride on the
        // results and the heartbeat.
        if i == 0
            && let Some(reason) = send(client, testing).await?
        {
            return Ok(Outcome::Refused(reason));
        }
        let outdir = config.work_dir.join("outputs").join(format!("{i:04}"));
        let stderr = config
            .work_dir
            .join("stderr")
            .join(sp_domain::protocol::stderr_file_name(&t.test.id));
        let ran = exec::run_test(&t.test, &exe, sample, &outdir, &stderr, &limits).await;
        upload_outputs(client, &ran, log).await;
        let result = ran.result;
        log.line(format!(
            "{}: exit {}{} in {} ms",
            t.test.id,
            result.exit_code,
            if result.timed_out { " (timed out)" } else { "" },
            result.runtime_ms
        ));
        if let Some(reason) = send(client, ReportBody::Result { result }).await? {
            return Ok(Outcome::Refused(reason));
        }
    }
    Ok(Outcome::Finished)
}

/// The program under test: the artifact itself, a file inside a zip
/// artifact, or (without an artifact) the one configured on this machine.
async fn prepare_program(
    config: &Config,
    client: &Client,
    job: &Job,
    log: &Log,
) -> anyhow::Result<PathBuf> {
    let Some(artifact) = &job.artifact else {
        let exe = config
            .exe
            .clone()
            .unwrap_or_else(|| PathBuf::from("sample-program"));
        log.line(format!("no artifact; the program is {}", exe.display()));
        return Ok(exe);
    };
    let file = client
        .fetch(
            &artifact.url,
            &artifact.sha256,
            &config.cache_dir.join("artifacts"),
        )
        .await
        .map_err(|e| anyhow::anyhow!("the build artifact: {e}"))?;
    let bin = config.work_dir.join("bin");
    tokio::fs::create_dir_all(&bin).await?;
    let exe = match &artifact.executable {
        Some(name) => {
            let (zip, into, name) = (file.clone(), bin.clone(), name.clone());
            tokio::task::spawn_blocking(move || unzip(&zip, &into)).await??;
            bin.join(name)
        }
        None => {
            let exe = bin.join("program");
            tokio::fs::copy(&file, &exe).await?;
            exe
        }
    };
    anyhow::ensure!(exe.exists(), "the artifact has no {}", exe.display());
    os::make_executable(&exe)?;
    log.line(format!(
        "artifact {} ({} bytes) ready: {}",
        artifact.sha256,
        artifact.size_bytes,
        exe.display()
    ));
    Ok(exe)
}

fn unzip(zip: &Path, into: &Path) -> anyhow::Result<()> {
    let file = std::fs::File::open(zip)?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| anyhow::anyhow!("the artifact is not a zip: {e}"))?;
    // `extract` refuses entries that would land outside `into`.
    archive
        .extract(into)
        .map_err(|e| anyhow::anyhow!("cannot unpack the artifact: {e}"))
}

async fn heartbeat(client: Client, now: Arc<Mutex<Now>>, every_secs: u64) {
    let every = Duration::from_secs(every_secs.max(1));
    loop {
        tokio::time::sleep(every).await;
        let body = now.lock().unwrap_or_else(|p| p.into_inner()).progress();
        if let Err(e) = client.report(body).await {
            tracing::warn!(error = %e, "heartbeat not delivered");
        }
    }
}

/// Outputs that are not the approved ones go to the platform, so a
/// maintainer can compare them and accept one. A failed upload costs the
/// diff, not the run.
async fn upload_outputs(client: &Client, ran: &exec::Ran, log: &Log) {
    for o in &ran.result.outputs {
        if let OutputProduced::Sha256 { sha256 } = &o.produced
            && let Some(path) = ran.files.get(&o.name)
            && let Err(e) = client.upload_output(sha256, path).await
        {
            log.line(format!(
                "{}: output {} not uploaded: {e}",
                ran.result.test_id, o.name
            ));
        }
    }
}

async fn upload_logs(client: &Client, config: &Config, job: &Job, log: &Log) {
    let runner_log = config.work_dir.join("runner.log");
    if log.write(&runner_log).await.is_ok()
        && let Err(e) = client.upload_log("runner.log", &runner_log).await
    {
        tracing::warn!(error = %e, "cannot upload the runner log");
    }
    for t in &job.tests {
        let name = sp_domain::protocol::stderr_file_name(&t.test.id);
        let path = config.work_dir.join("stderr").join(&name);
        // An empty stderr says nothing: one request per test of a large
        // catalogue for nothing is what made the end of a run slow.
        let said_something = tokio::fs::metadata(&path).await.is_ok_and(|m| m.len() > 0);
        if said_something && let Err(e) = client.upload_log(&name, &path).await {
            tracing::warn!(error = %e, test = %t.test.id, "cannot upload a test's stderr");
        }
    }
}

//! The runner's side of the HTTP protocol: fetch the job, send reports
//! (spooled to disk first, retried with backoff, sent in order), upload logs,
//! download files into a cache verified by sha256.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use sp_domain::protocol::{Job, Report, ReportBody};
use tokio::io::AsyncWriteExt;

/// Why a report was not delivered.
#[derive(Debug)]
pub enum SendError {
    /// The platform said no (409): stop working on this attempt.
    Refused(String),
    /// Not delivered; still in the spool.
    Unreachable(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Refused(r) => write!(f, "the platform refused the report: {r}"),
            SendError::Unreachable(r) => write!(f, "the platform is unreachable: {r}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `…/runner/v1/runs/{run}`.
    base: String,
    token: String,
    spool: PathBuf,
    /// One flush at a time: the heartbeat and the tests both report, and two
    /// flushes listing the same spool would race for its files.
    flushing: Arc<tokio::sync::Mutex<()>>,
    /// How long one report may keep being retried before the runner gives up.
    patience: Duration,
}

impl Client {
    pub fn new(base: &str, token: &str, spool: PathBuf) -> anyhow::Result<Client> {
        Ok(Client {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(120))
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            spool,
            flushing: Arc::default(),
            patience: Duration::from_secs(600),
        })
    }

    pub async fn job(&self) -> anyhow::Result<Job> {
        let fetch = || async {
            let response = self
                .http
                .get(format!("{}/job", self.base))
                .bearer_auth(&self.token)
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => r
                    .json::<Job>()
                    .await
                    .map_err(|e| SendError::Refused(format!("an unreadable job: {e}"))),
                Ok(r) if r.status().is_client_error() => {
                    let status = r.status();
                    Err(SendError::Refused(format!(
                        "{status}: {}",
                        r.text().await.unwrap_or_default()
                    )))
                }
                Ok(r) => Err(SendError::Unreachable(format!("HTTP {}", r.status()))),
                Err(e) => Err(SendError::Unreachable(e.to_string())),
            }
        };
        fetch
            .retry(self.pauses(Duration::from_secs(15)))
            .sleep(tokio::time::sleep)
            .when(|e| matches!(e, SendError::Unreachable(_)))
            .notify(
                |e, retry_in| tracing::warn!(problem = %e, ?retry_in, "cannot fetch the job yet"),
            )
            .await
            .map_err(|e| match e {
                SendError::Refused(why) => anyhow::anyhow!("the platform refused the job ({why})"),
                SendError::Unreachable(problem) => anyhow::anyhow!(
                    "the platform did not hand out the job within {:?}: {problem}",
                    self.patience
                ),
            })
    }

    /// Pauses between tries of a request to the platform: from a quarter of
    /// a second, doubling up to `max`, until they add up to the patience.
    fn pauses(&self, max: Duration) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(max)
            .with_jitter()
            .without_max_times()
            .with_total_delay(Some(self.patience))
    }

    /// Spool a report and send everything spooled, oldest first.
    pub async fn report(&self, body: ReportBody) -> Result<(), SendError> {
        let report = Report {
            client_id: uuid::Uuid::now_v7(),
            body,
        };
        self.spool_report(&report)
            .await
            .map_err(|e| SendError::Unreachable(format!("cannot spool the report: {e}")))?;
        self.flush().await
    }

    async fn spool_report(&self, report: &Report) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.spool).await?;
        // v7 ids sort by time, so file names keep the reports' order.
        let path = self
            .spool
            .join(format!("{}.json", report.client_id.simple()));
        let tmp = path.with_extension("tmp");
        tokio::fs::write(&tmp, serde_json::to_vec(report)?).await?;
        tokio::fs::rename(&tmp, &path).await
    }

    async fn spooled(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Ok(mut dir) = tokio::fs::read_dir(&self.spool).await {
            while let Ok(Some(entry)) = dir.next_entry().await {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "json") {
                    files.push(path);
                }
            }
        }
        files.sort();
        files
    }

    /// Send every spooled report in order; each is retried with backoff
    /// until it is delivered, refused, or patience runs out.
    pub async fn flush(&self) -> Result<(), SendError> {
        let _one_at_a_time = self.flushing.lock().await;
        for path in self.spooled().await {
            let body = tokio::fs::read(&path)
                .await
                .map_err(|e| SendError::Unreachable(format!("spool {}: {e}", path.display())))?;
            let send = || async {
                let response = self
                    .http
                    .post(format!("{}/reports", self.base))
                    .bearer_auth(&self.token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status().is_success() => {
                        let _ = tokio::fs::remove_file(&path).await;
                        Ok(())
                    }
                    Ok(r) if r.status() == reqwest::StatusCode::CONFLICT => {
                        let _ = tokio::fs::remove_file(&path).await;
                        Err(SendError::Refused(r.text().await.unwrap_or_default()))
                    }
                    Ok(r) if r.status().is_client_error() => {
                        // The report itself is wrong: keep it for the log, do not loop.
                        let _ = tokio::fs::rename(&path, path.with_extension("rejected")).await;
                        tracing::error!(status = %r.status(), "the platform rejected a report");
                        Ok(())
                    }
                    Ok(r) => Err(SendError::Unreachable(format!("HTTP {}", r.status()))),
                    Err(e) => Err(SendError::Unreachable(e.to_string())),
                }
            };
            send.retry(self.pauses(Duration::from_secs(30)))
                .sleep(tokio::time::sleep)
                .when(|e| matches!(e, SendError::Unreachable(_)))
                .notify(|problem, retry_in| {
                    tracing::warn!(%problem, ?retry_in, "report not delivered; it stays spooled");
                })
                .await?;
        }
        Ok(())
    }

    pub async fn upload_log(&self, name: &str, file: &Path) -> anyhow::Result<()> {
        self.put_file(&format!("{}/logs/{name}", self.base), file)
            .await
            .map_err(|e| anyhow::anyhow!("log upload: {e}"))
    }

    /// An output that is not the approved one, for the platform to keep by hash.
    pub async fn upload_output(&self, sha256: &str, file: &Path) -> anyhow::Result<()> {
        self.put_file(&format!("{}/outputs/{sha256}", self.base), file)
            .await
            .map_err(|e| anyhow::anyhow!("output upload: {e}"))
    }

    async fn put_file(&self, url: &str, file: &Path) -> anyhow::Result<()> {
        let body = tokio::fs::read(file).await?;
        let response = self
            .http
            .put(url)
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
        Ok(())
    }

    /// A file by sha256: from the cache, or downloaded (with the runner's
    /// credential when it is the platform's own URL) and checked.
    pub async fn fetch(&self, url: &str, sha256: &str, cache: &Path) -> anyhow::Result<PathBuf> {
        let target = cache.join(sha256);
        if target.exists() && hash_file(&target).await? == sha256 {
            return Ok(target);
        }
        tokio::fs::create_dir_all(cache).await?;
        let partial = cache.join(format!("{sha256}.partial"));
        let try_once = || async {
            let mut request = self.http.get(url);
            if url.starts_with(&self.base) {
                request = request.bearer_auth(&self.token);
            }
            let outcome = match download(request, &partial).await {
                Ok(hash) if hash == sha256 => return Ok(()),
                Ok(hash) => anyhow::anyhow!("its sha256 is {hash}, expected {sha256}"),
                Err(e) => e,
            };
            let _ = tokio::fs::remove_file(&partial).await;
            Err(outcome)
        };
        // Three tries: a cut connection or a bad copy may pass the next time.
        let pauses = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(500))
            .with_jitter()
            .with_max_times(2);
        try_once
            .retry(pauses)
            .sleep(tokio::time::sleep)
            .await
            .map_err(|e| anyhow::anyhow!("cannot download {url}: {e}"))?;
        tokio::fs::rename(&partial, &target).await?;
        Ok(target)
    }
}

async fn download(request: reqwest::RequestBuilder, to: &Path) -> anyhow::Result<String> {
    let response = request.send().await?;
    anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
    let mut file = tokio::fs::File::create(to).await?;
    let mut hasher = Sha256::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    Ok(hex::encode(hasher.finalize()))
}

pub async fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::io::AsyncReadExt::read(&mut file, &mut buf).await?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

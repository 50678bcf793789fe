//! The command line as a client of a running platform: adding samples,
//! importing and exporting the catalogue, queueing runs. Everything goes
//! through the HTTP API, so it works against any deployment (and SQLite keeps
//! its single writer: the platform).

use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt;
use serde_json::{Value, json};

/// How the command line reaches a running platform.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The platform's URL.
    #[arg(long, env = "SP_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An API token (`sample-platform tokens create`).
    #[arg(long, env = "SP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// How `runs enqueue --wait` ends when a run did not pass: the exit code
/// tells a script which way (1: tests failed, 2: not tested, cancelled or
/// superseded, 3: the runs could not be followed).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RunsDidNotPass {
    pub exit_code: u8,
    pub message: String,
}

#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Client> {
        Ok(Client {
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()?,
            base: args.url.trim_end_matches('/').to_string(),
            token: args.token.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    /// A GraphQL operation's data; its errors become this command's error.
    pub async fn graphql(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let response = self
            .request(reqwest::Method::POST, "/graphql")
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .with_context(|| format!("cannot reach the platform at {}", self.base))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("the platform answered HTTP {status} without JSON"))?;
        if let Some(errors) = body["errors"].as_array().filter(|e| !e.is_empty()) {
            let messages: Vec<&str> = errors
                .iter()
                .filter_map(|e| e["message"].as_str())
                .collect();
            bail!("{}", messages.join("; "));
        }
        if !status.is_success() {
            bail!("HTTP {status}: {}", body["error"].as_str().unwrap_or(""));
        }
        Ok(body["data"].clone())
    }

    /// Upload a file to `path` with a progress bar; the answer's status and JSON.
    async fn upload(
        &self,
        path: &str,
        query: &[(&str, &str)],
        file: &Path,
    ) -> anyhow::Result<(u16, Value)> {
        let handle = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("{}", file.display()))?;
        let size = handle.metadata().await?.len();
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )?
            .progress_chars("=> "),
        );
        bar.set_message(
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let counted = bar.clone();
        let stream = tokio_util::io::ReaderStream::new(handle).inspect(move |chunk| {
            if let Ok(c) = chunk {
                counted.inc(c.len() as u64);
            }
        });
        let response = self
            .request(reqwest::Method::POST, path)
            .query(query)
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .with_context(|| format!("cannot reach the platform at {}", self.base))?;
        bar.finish_and_clear();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Add one sample; prints what happened. A sample the catalogue has
    /// already is not an error.
    pub async fn add_sample(&self, file: &Path, tags: &[String]) -> anyhow::Result<()> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{} is not a file", file.display()))?;
        let tags = tags.join(",");
        let (status, body) = self
            .upload("/api/samples", &[("name", &name), ("tags", &tags)], file)
            .await?;
        match status {
            201 => println!("added {name} ({})", body["sha256"].as_str().unwrap_or("")),
            409 => println!(
                "{name}: already in the catalogue as {} ({})",
                body["name"].as_str().unwrap_or("?"),
                body["sha256"].as_str().unwrap_or("")
            ),
            _ => bail!(
                "{name}: HTTP {status}: {}",
                body["error"].as_str().unwrap_or("no reason given")
            ),
        }
        Ok(())
    }

    /// Upload a catalogue file's samples and approved outputs, then import it.
    pub async fn import_catalogue(&self, file: &Path) -> anyhow::Result<()> {
        let catalogue = sp_commands::catalogue_file::load(file).map_err(|e| anyhow::anyhow!(e))?;
        let text = std::fs::read_to_string(file)?;
        let json = file.extension().is_some_and(|e| e == "json");
        self.import_loaded(&catalogue, &text, json, &file.display().to_string())
            .await
    }

    /// Import the old platform's catalogue (its MySQL tables, as a dump or
    /// CSV files), listing what could not be mapped and why.
    pub async fn import_legacy(
        &self,
        dump: &Path,
        samples: &Path,
        results: Option<&Path>,
    ) -> anyhow::Result<()> {
        let tables = sp_commands::legacy::read(dump).map_err(|e| anyhow::anyhow!(e))?;
        let legacy = sp_commands::legacy::map(&tables, samples, results);
        for skipped in &legacy.skipped {
            println!("not imported: {}: {}", skipped.what, skipped.why);
        }
        let file = &legacy.file;
        let sample_list: Vec<&sp_domain::catalogue::Sample> =
            file.samples.iter().map(|s| &s.sample).collect();
        let test_list: Vec<&sp_domain::catalogue::TestDefinition> = file.tests.iter().collect();
        let text = sp_commands::catalogue_file::write(&sample_list, &test_list);
        self.import_loaded(file, &text, false, &dump.display().to_string())
            .await?;
        if !legacy.skipped.is_empty() {
            println!(
                "{} rows of the old platform were not imported (listed above)",
                legacy.skipped.len()
            );
        }
        Ok(())
    }

    async fn import_loaded(
        &self,
        catalogue: &sp_commands::catalogue_file::CatalogueFile,
        text: &str,
        json: bool,
        what: &str,
    ) -> anyhow::Result<()> {
        // Samples go up before the import, so the import itself finds them
        // there: what this command added is counted here.
        let (mut uploaded, mut present) = (0, 0);
        for s in &catalogue.samples {
            if let Some(source) = &s.source {
                let tags = s.sample.tags.join(",");
                let query = [("name", s.sample.name.as_str()), ("tags", &tags)];
                let (status, body) = self.upload("/api/samples", &query, source).await?;
                match status {
                    201 => uploaded += 1,
                    409 => present += 1,
                    _ => bail!(
                        "sample {}: HTTP {status}: {}",
                        s.sample.name,
                        body["error"].as_str().unwrap_or("no reason given")
                    ),
                }
            }
        }
        for (sha256, source) in &catalogue.expected {
            let (status, body) = self.upload("/api/outputs", &[], source).await?;
            if !matches!(status, 200 | 201) {
                bail!(
                    "{}: HTTP {status}: {}",
                    source.display(),
                    body["error"].as_str().unwrap_or("no reason given")
                );
            }
            if body["sha256"].as_str() != Some(sha256.as_str()) {
                bail!(
                    "{}: its SHA-256 is {}, the catalogue says {sha256}",
                    source.display(),
                    body["sha256"].as_str().unwrap_or("?")
                );
            }
        }
        let data = self
            .graphql(
                "mutation($text: String!, $json: Boolean!) { importCatalogue(text: $text, json: $json) { samplesAdded testsDefined } }",
                json!({ "text": text, "json": json }),
            )
            .await?;
        let added = uploaded
            + data["importCatalogue"]["samplesAdded"]
                .as_u64()
                .unwrap_or(0);
        println!(
            "imported {what}: {added} samples added ({present} were there already), {} tests \
             defined or changed",
            data["importCatalogue"]["testsDefined"],
        );
        Ok(())
    }

    /// Follow runs until each has ended, saying where they are as they move
    /// and each verdict as it comes. Polls once a second; a platform that
    /// does not answer for a minute ends the wait.
    pub async fn wait_for_runs(&self, runs: &[String]) -> anyhow::Result<()> {
        const RUN: &str = "query($id: ID!) { run(id: $id) { platform outcome stage passed failed samplesDone samplesTotal finalReason } }";
        const PATIENCE: u32 = 60;
        let mut said: std::collections::HashMap<&str, String> = Default::default();
        let mut ended: Vec<(&str, Value)> = Vec::new();
        let mut unanswered = 0;
        let started = std::time::Instant::now();
        while ended.len() < runs.len() {
            for run in runs {
                if ended.iter().any(|(r, _)| r == run) {
                    continue;
                }
                let data = match self.graphql(RUN, json!({ "id": run })).await {
                    Ok(data) => {
                        unanswered = 0;
                        data
                    }
                    Err(e) if unanswered < PATIENCE => {
                        unanswered += 1;
                        eprintln!("{e:#}; trying again");
                        break;
                    }
                    Err(e) => {
                        return Err(unfollowed(format!("the platform stopped answering: {e:#}")));
                    }
                };
                let r = data["run"].clone();
                if r.is_null() {
                    // The read side shows a new run a moment after it is queued.
                    if started.elapsed() > std::time::Duration::from_secs(60) {
                        return Err(unfollowed(format!(
                            "run {run} is not known to the platform"
                        )));
                    }
                    continue;
                }
                let outcome = r["outcome"].as_str().unwrap_or_default();
                if matches!(outcome, "QUEUED" | "RUNNING") {
                    let now = format!(
                        "{} ({} of {} samples)",
                        r["stage"].as_str().unwrap_or("?").replace('_', " "),
                        r["samplesDone"],
                        r["samplesTotal"]
                    );
                    if said.get(run.as_str()) != Some(&now) {
                        eprintln!("run {run}: {now}");
                        said.insert(run, now);
                    }
                    continue;
                }
                println!("{}", self.verdict_line(run, &r));
                ended.push((run, r));
            }
            if ended.len() < runs.len() {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
        let outcomes: Vec<&str> = ended
            .iter()
            .map(|(_, r)| r["outcome"].as_str().unwrap_or_default())
            .collect();
        let not_passed = outcomes.iter().filter(|o| **o != "PASS").count();
        if not_passed == 0 {
            return Ok(());
        }
        let exit_code = if outcomes.iter().all(|o| matches!(*o, "PASS" | "FAIL")) {
            1
        } else {
            2
        };
        Err(RunsDidNotPass {
            exit_code,
            message: format!("{not_passed} of {} runs did not pass", runs.len()),
        }
        .into())
    }

    /// One finished run, as a person reads it.
    fn verdict_line(&self, run: &str, r: &Value) -> String {
        let platform = r["platform"].as_str().unwrap_or("?");
        let page = format!("{}/runs/{run}", self.base);
        let reason = r["finalReason"]
            .as_str()
            .map(|why| format!(": {why}"))
            .unwrap_or_default();
        match r["outcome"].as_str().unwrap_or_default() {
            "PASS" => format!(
                "run {run} on {platform} passed: {} passed  {page}",
                tests(&r["passed"])
            ),
            "FAIL" => format!(
                "run {run} on {platform} failed: {} failed, {} passed  {page}",
                tests(&r["failed"]),
                r["passed"]
            ),
            "ERROR" => format!("run {run} on {platform} could not be tested{reason}  {page}"),
            other => format!(
                "run {run} on {platform} was {}{reason}  {page}",
                other.to_lowercase()
            ),
        }
    }
}

/// "1 test", "3 tests".
fn tests(count: &Value) -> String {
    match count.as_u64() {
        Some(1) => "1 test".to_string(),
        _ => format!("{count} tests"),
    }
}

/// `--wait` could not follow the runs to their end: exit 3, apart from the
/// runs' own outcomes.
fn unfollowed(message: String) -> anyhow::Error {
    RunsDidNotPass {
        exit_code: 3,
        message,
    }
    .into()
}

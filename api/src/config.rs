//! Configuration: defaults, then an optional TOML file, then `SP_*` environment
//! variables and flags (both read by clap, so `--help` documents each).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use sp_domain::Policy;
use sp_eventstore::{Database, DbOptions, redact};

/// Settings every subcommand shares.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct GlobalArgs {
    /// TOML file with settings; `sample-platform config show` lists every
    /// key (many have no flag) and where its value comes from. Flags and
    /// SP_* variables override the file.
    #[arg(long, env = "SP_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Database URL: `sqlite://FILE` (created on first start) or
    /// `postgres://USER@HOST/DB`. Default: sqlite://sample-platform.db in the
    /// working directory.
    #[arg(long, env = "SP_DATABASE_URL", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,

    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `sp_api=debug,info`.
    #[arg(long, env = "SP_LOG", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the log says which).
    #[arg(long, env = "SP_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,

    /// Secret shared with GitHub's webhook. Without it, every delivery is
    /// refused (503): unsigned deliveries are never accepted.
    #[arg(long, env = "SP_GITHUB_WEBHOOK_SECRET", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_webhook_secret: Option<String>,

    /// Platforms to test on, comma-separated (default: linux).
    #[arg(long, env = "SP_PLATFORMS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,

    /// Branches whose pushes are tested, comma-separated (default: each
    /// repository's default branch).
    #[arg(long, env = "SP_BRANCHES", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branches: Option<Vec<String>>,

    /// Repositories served (owner/name), comma-separated (default: any).
    #[arg(long, env = "SP_REPOSITORIES", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,

    /// Whether reading the GraphQL API needs no token (default: true).
    #[arg(long, env = "SP_ANONYMOUS_READ")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anonymous_read: Option<bool>,

    /// Whether this instance runs the process managers (timer, scheduler,
    /// VMs, artifacts, reconciliation) when it holds their lease (default:
    /// true). An API-only replica sets false.
    #[arg(long, env = "SP_MANAGERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managers: Option<bool>,

    /// Where VMs come from: `local` (child processes on this machine) or `gcp`.
    #[arg(long, env = "SP_VM_PROVIDER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_provider: Option<String>,

    /// The platform's URL as runners reach it (default: http://LISTEN).
    #[arg(long, env = "SP_PUBLIC_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,

    /// Most VMs at once per platform (default 2).
    #[arg(long, env = "SP_VM_CAPACITY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_capacity: Option<usize>,

    /// The command a local VM runs (through `sh -c`).
    #[arg(long, env = "SP_LOCAL_VM_COMMAND")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_vm_command: Option<String>,

    /// Where local VMs keep their directories (default: ./vms).
    #[arg(long, env = "SP_LOCAL_VM_DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_vm_dir: Option<std::path::PathBuf>,

    /// Where build artifacts come from: `none` (the runner needs none),
    /// `github-actions` (the artifact named in `artifact_names` of the
    /// commit's build), or a URL template with {repository}, {commit} and
    /// {platform} (http(s):// or file://).
    #[arg(long, env = "SP_ARTIFACT_SOURCE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_source: Option<String>,

    /// A catalogue file (TOML or JSON) to import at start-up while the
    /// platform's catalogue is empty.
    #[arg(long, env = "SP_CATALOGUE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalogue: Option<PathBuf>,

    /// Where samples and produced outputs are kept: a directory (default
    /// ./objects) or gs://bucket/prefix.
    #[arg(long, env = "SP_OBJECT_STORE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_store: Option<String>,

    /// A GitHub token (commit statuses, Actions artifacts). Without one,
    /// statuses are not reported.
    #[arg(long, env = "SP_GITHUB_TOKEN", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_token: Option<String>,

    /// A GitHub App's id: with `github_app_key`, GitHub is called as the
    /// App's installation on each repository (check runs need it).
    #[arg(long, env = "SP_GITHUB_APP_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_app_id: Option<u64>,

    /// The GitHub App's private key: a PEM file.
    #[arg(long, env = "SP_GITHUB_APP_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_app_key: Option<PathBuf>,

    /// How runs are reported on commits: `statuses` (commit statuses) or
    /// `check_runs` (GitHub check runs; needs the App).
    #[arg(long, env = "SP_GITHUB_REPORTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_reports: Option<String>,

    /// A GitHub OAuth App's client id: people sign in with GitHub. Without
    /// it, only tokens are accepted.
    #[arg(long, env = "SP_GITHUB_OAUTH_CLIENT_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_oauth_client_id: Option<String>,

    /// The OAuth App's client secret.
    #[arg(long, env = "SP_GITHUB_OAUTH_CLIENT_SECRET", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_oauth_client_secret: Option<String>,

    /// GitHub logins that are admins whatever the access stream says,
    /// comma-separated: the first admin, who grants the other roles.
    #[arg(long, env = "SP_ADMINS", value_delimiter = ',')]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admins: Option<Vec<String>>,
}

/// Every setting, after defaults, file, environment and flags are merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub database_url: String,
    pub listen: SocketAddr,
    pub log: String,
    /// Names this deployment's shared resources in the database: the
    /// PostgreSQL notification channel and the managers' lease. Two platforms
    /// sharing one database in different schemas need different names.
    pub deployment: String,
    pub policy: Policy,
    pub github_webhook_secret: Option<String>,
    pub platforms: Vec<String>,
    pub branches: Vec<String>,
    pub repositories: Vec<String>,
    pub anonymous_read: bool,
    /// Runs of pushes get VMs before runs of pull requests when higher.
    pub push_priority: i32,
    pub pull_request_priority: i32,
    pub managers: bool,
    /// `local` or `gcp`.
    pub vm_provider: String,
    pub public_url: Option<String>,
    pub vm_capacity: usize,
    /// Per-platform capacities overriding `vm_capacity`.
    pub vm_capacity_per_platform: std::collections::BTreeMap<String, usize>,
    /// What a local VM runs (through `sh -c`); empty: this binary's runner.
    pub local_vm_command: String,
    pub local_vm_dir: std::path::PathBuf,
    /// Simulated creation time of local VMs, in milliseconds (for demos and tests).
    pub local_vm_create_delay_ms: u64,
    pub artifact_source: String,
    pub artifact_max_bytes: u64,
    /// Seconds between reconciliations of the provider's VMs with the runs.
    pub reconcile_every_secs: u64,
    /// Where GCP VMs are made (`vm_provider = "gcp"`).
    pub gcp: sp_gcp::GcpConfig,
    /// A regression test running longer is killed and fails.
    pub per_test_timeout_secs: u64,
    /// A test's captured output (standard output, report, TCP) past this is
    /// not kept, and the test fails naming it.
    pub max_captured_output_bytes: u64,
    /// The pace at which a UDP test's sample is sent (datagrams of seven
    /// MPEG-TS packets).
    pub udp_datagrams_per_second: u32,
    pub max_log_bytes: u64,
    /// Per platform, the program under test inside a zip artifact.
    pub artifact_executables: std::collections::BTreeMap<String, String>,
    /// A catalogue file (TOML or JSON) imported at start-up while the
    /// platform's catalogue is empty; later changes go through the API.
    pub catalogue: Option<std::path::PathBuf>,
    /// Where samples and produced outputs are kept, by SHA-256: a local
    /// directory, or `gs://bucket/prefix`.
    pub object_store: String,
    /// A larger sample upload is refused.
    pub max_sample_bytes: u64,
    pub github_token: Option<String>,
    /// A GitHub App (id and PEM private key file): calls are made as its
    /// installation on each repository.
    pub github_app_id: Option<u64>,
    pub github_app_key: Option<std::path::PathBuf>,
    /// `statuses` or `check_runs`: how a run's state is shown on its commit.
    pub github_reports: String,
    /// GitHub's API (a GitHub Enterprise one, or a fake in tests).
    pub github_api_url: String,
    /// Status context per platform.
    pub status_context: String,
    /// With a GitHub token, write one summary comment per pull request
    /// (edited in place as its runs finish).
    pub pull_request_comments: bool,
    /// Per platform, the name of the GitHub Actions artifact holding the build.
    pub artifact_names: std::collections::BTreeMap<String, String>,
    /// Signing in with GitHub: its OAuth App, and where GitHub's OAuth
    /// pages are (GitHub Enterprise's, or a fake in tests).
    pub github_oauth_client_id: Option<String>,
    pub github_oauth_client_secret: Option<String>,
    pub github_oauth_url: String,
    /// How long a session lasts after signing in.
    pub session_hours: u64,
    /// Logins that are always admins.
    pub admins: Vec<String>,
    /// `[contributors]`: how many custom runs one person may have queued
    /// or running at once (`waiting`) and queue a day (`per_day`).
    pub contributors: sp_domain::custom::Limits,
    /// Whoever wrote a change (a pull request's author, a custom run's
    /// contributor) may not make its output the approved baseline: another
    /// maintainer must (the old platform let people approve their own).
    pub four_eyes_baselines: bool,
    /// Which files of finished runs are deleted (`[retention.logs]
    /// after_days = 30, keep_last = 10`; likewise `artifacts`, `outputs`),
    /// and how often retention looks. No rule keeps a kind for ever.
    pub retention: RetentionSettings,
}

/// `[retention]`: a rule per kind of file, and the time between sweeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Seconds between sweeps.
    pub every_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<sp_domain::retention::Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<sp_domain::retention::Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<sp_domain::retention::Rule>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            every_secs: 3600,
            artifacts: None,
            outputs: None,
            logs: None,
        }
    }
}

impl RetentionSettings {
    pub fn policy(&self) -> sp_domain::retention::RetentionPolicy {
        sp_domain::retention::RetentionPolicy {
            artifacts: self.artifacts,
            outputs: self.outputs,
            logs: self.logs,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://sample-platform.db".to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log: "info".to_string(),
            deployment: "sample_platform".to_string(),
            policy: Policy::default(),
            github_webhook_secret: None,
            platforms: vec!["linux".to_string()],
            branches: vec![],
            repositories: vec![],
            anonymous_read: true,
            push_priority: 1,
            pull_request_priority: 0,
            managers: true,
            vm_provider: "local".to_string(),
            public_url: None,
            vm_capacity: 2,
            vm_capacity_per_platform: std::collections::BTreeMap::new(),
            local_vm_command: String::new(),
            local_vm_dir: "vms".into(),
            local_vm_create_delay_ms: 0,
            artifact_source: "none".to_string(),
            artifact_max_bytes: 512 * 1024 * 1024,
            reconcile_every_secs: 60,
            gcp: sp_gcp::GcpConfig::default(),
            per_test_timeout_secs: 300,
            max_captured_output_bytes: sp_domain::protocol::DEFAULT_MAX_CAPTURED_BYTES,
            udp_datagrams_per_second: sp_domain::protocol::DEFAULT_UDP_DATAGRAMS_PER_SECOND,
            max_log_bytes: 50 * 1024 * 1024,
            artifact_executables: std::collections::BTreeMap::new(),
            catalogue: None,
            object_store: "objects".into(),
            max_sample_bytes: 8 * 1024 * 1024 * 1024,
            github_token: None,
            github_app_id: None,
            github_app_key: None,
            github_reports: "statuses".into(),
            github_api_url: "https://api.github.com".into(),
            status_context: "CI - {platform}".into(),
            pull_request_comments: true,
            artifact_names: std::collections::BTreeMap::new(),
            github_oauth_client_id: None,
            github_oauth_client_secret: None,
            github_oauth_url: "https://github.com".into(),
            session_hours: 7 * 24,
            admins: vec![],
            contributors: sp_domain::custom::Limits::default(),
            four_eyes_baselines: false,
            retention: RetentionSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    /// Each problem on its own line, named as the file writes it.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(error: figment::Error) -> Self {
        let problems: Vec<String> = error.into_iter().map(|e| explain(&e)).collect();
        ConfigError::Invalid(problems.join("\n"))
    }
}

/// One problem with a setting, said once: the key as written in its file
/// (figment's own text puts its profile in front, `default.…`), and for an
/// unknown key the nearest known one instead of the list of all of them.
fn explain(error: &figment::Error) -> String {
    use figment::error::Kind;
    let key = error.path.join(".");
    let problem = match &error.kind {
        Kind::UnknownField(found, known) => {
            let written = if key.is_empty() {
                found.clone()
            } else {
                key.clone()
            };
            let parent = written.rsplit_once('.').map(|(p, _)| format!("{p}."));
            let nearest = known
                .iter()
                .map(|k| (strsim::jaro_winkler(found, k), *k))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            match nearest {
                Some((_, k)) => format!(
                    "unknown setting {written:?}: did you mean {:?}?",
                    format!("{}{k}", parent.unwrap_or_default())
                ),
                None => format!(
                    "unknown setting {written:?} (`sample-platform config show` lists every setting)"
                ),
            }
        }
        kind if key.is_empty() => kind.to_string(),
        kind => format!("setting {key:?}: {kind}"),
    };
    match error.metadata.as_ref().and_then(|m| m.source.as_ref()) {
        Some(source) => format!("{problem} (in {source})"),
        None => problem,
    }
}

impl Settings {
    /// The database these settings name (not migrated); a SQLite file is
    /// created if missing.
    pub async fn open(&self) -> anyhow::Result<Database> {
        self.open_with(true).await
    }

    async fn open_with(&self, create_sqlite_file: bool) -> anyhow::Result<Database> {
        let options = DbOptions {
            notify_channel: self.deployment.clone(),
            create_sqlite_file,
            ..DbOptions::default()
        };
        Database::open(&self.database_url, &options)
            .await
            .with_context(|| format!("cannot open database {}", redact(&self.database_url)))
    }

    /// The database these settings name, with every migration applied.
    pub async fn open_migrated(&self) -> anyhow::Result<Database> {
        self.migrated(self.open().await?).await
    }

    /// The platform's database, which must exist already: a command that
    /// reads or changes it (tokens, audit, rebuild) run in the wrong
    /// directory must not make an empty one and act on that.
    pub async fn open_existing(&self) -> anyhow::Result<Database> {
        self.migrated(self.open_with(false).await?).await
    }

    async fn migrated(&self, db: Database) -> anyhow::Result<Database> {
        // The store's error says "migration failed" and why.
        db.migrate().await.with_context(|| {
            format!("cannot prepare the database {}", redact(&self.database_url))
        })?;
        Ok(db)
    }

    /// Signing in with GitHub, when its OAuth App is configured; `public_url`
    /// is where GitHub sends the browser back (to `/auth/callback`).
    pub fn github_oauth(
        &self,
        public_url: &str,
    ) -> Result<Option<crate::github::oauth::GithubOAuth>, String> {
        match (&self.github_oauth_client_id, &self.github_oauth_client_secret) {
            (Some(id), Some(secret)) => crate::github::oauth::GithubOAuth::new(
                id,
                secret,
                &self.github_oauth_url,
                &self.github_api_url,
                &format!("{}/auth/callback", public_url.trim_end_matches('/')),
                self.github_token.clone(),
            )
            .map(Some)
            .map_err(|e| e.to_string()),
            (None, None) => Ok(None),
            _ => Err(
                "signing in with GitHub needs both github_oauth_client_id and github_oauth_client_secret"
                    .into(),
            ),
        }
    }

    /// The process managers' view of the settings.
    pub fn managers(
        &self,
        listening_on: std::net::SocketAddr,
        files: &sp_files::Files,
        metrics: &sp_managers::Metrics,
    ) -> Result<sp_managers::ManagersConfig, String> {
        use std::time::Duration;

        use sp_managers::artifacts::{ArtifactSource, ArtifactStore};
        let intake = self.intake().map_err(|e| e.to_string())?;
        let store = ArtifactStore {
            files: files.clone(),
            max_bytes: self.artifact_max_bytes,
            timeout: Duration::from_secs(300),
        };
        let app = match (self.github_app_id, &self.github_app_key) {
            (Some(app_id), Some(path)) => Some(sp_managers::github::GithubApp {
                app_id,
                private_key_pem: std::fs::read_to_string(path).map_err(|e| {
                    format!("github_app_key {}: cannot read it: {e}", path.display())
                })?,
            }),
            (None, None) => None,
            _ => {
                return Err(
                    "a GitHub App needs both github_app_id and github_app_key (a PEM file)".into(),
                );
            }
        };
        let checks = match self.github_reports.as_str() {
            "statuses" => false,
            "check_runs" if app.is_some() => true,
            "check_runs" => {
                return Err(
                    "github_reports = \"check_runs\" needs a GitHub App: set github_app_id and github_app_key".into(),
                );
            }
            other => {
                return Err(format!(
                    "github_reports {other:?}: use statuses or check_runs"
                ));
            }
        };
        let github = if self.github_token.is_some() || app.is_some() {
            Some(sp_managers::github::Github::new(
                sp_managers::github::GithubConfig {
                    api_url: self.github_api_url.clone(),
                    token: self.github_token.clone().unwrap_or_default(),
                    app,
                    timeout: Duration::from_secs(30),
                },
            )?)
        } else {
            None
        };
        let artifacts = match self.artifact_source.as_str() {
            "none" => ArtifactSource::None,
            "github-actions" => ArtifactSource::GithubActions {
                names: self.artifact_names.clone(),
                store,
            },
            template
                if template.starts_with("http://")
                    || template.starts_with("https://")
                    || template.starts_with("file://") =>
            {
                ArtifactSource::Url {
                    template: template.to_string(),
                    store,
                }
            }
            other => {
                return Err(format!(
                    "artifact_source {other:?}: use none, github-actions, or a URL template (http://, https:// or file://)"
                ));
            }
        };
        Ok(sp_managers::ManagersConfig {
            platforms: intake.platforms,
            capacity: self.vm_capacity_per_platform.clone(),
            default_capacity: self.vm_capacity,
            policy: self.policy.clone(),
            public_url: self
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{listening_on}")),
            vm_create: sp_managers::CallPolicy::new(Duration::from_secs(60), 3),
            vm_delete: sp_managers::CallPolicy::new(Duration::from_secs(60), 3),
            reconcile_every: Duration::from_secs(self.reconcile_every_secs.max(1)),
            artifacts,
            github: github.map(|g| g.counted_by(metrics.clone())),
            status_context: self.status_context.clone(),
            pull_request_comments: self.pull_request_comments,
            check_runs: checks,
            tick: sp_managers::TICK,
            vm_delete_pauses: sp_managers::VM_DELETE_PAUSES,
            metrics: metrics.clone(),
            retention: Some(sp_managers::retention::Retention {
                policy: self.retention.policy(),
                every: Duration::from_secs(self.retention.every_secs.max(1)),
                files: files.clone(),
                call: sp_managers::CallPolicy::new(Duration::from_secs(60), 3),
            }),
        })
    }

    /// The intake's view of the settings; fails on an invalid platform name.
    pub fn intake(
        &self,
    ) -> Result<sp_domain::intake::IntakeConfig, sp_domain::ids::InvalidPlatform> {
        Ok(sp_domain::intake::IntakeConfig {
            platforms: self
                .platforms
                .iter()
                .map(|p| sp_domain::Platform::new(p))
                .collect::<Result<_, _>>()?,
            branches: self.branches.clone(),
            repositories: self.repositories.clone(),
            push_priority: self.push_priority,
            pull_request_priority: self.pull_request_priority,
        })
    }

    /// Merge, lowest first: defaults, the TOML file, then environment and flags.
    pub fn load(global: &GlobalArgs, serve: Option<&ServeArgs>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = &global.config {
            if !path.exists() {
                return Err(ConfigError::MissingFile(path.clone()));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Serialized::defaults(global));
        if let Some(serve) = serve {
            figment = figment.merge(Serialized::defaults(serve));
        }
        Ok(figment.extract()?)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn defaults_then_file_then_flags() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(
            file,
            "database_url = \"postgres://db/x\"\nlisten = \"0.0.0.0:9000\"\n[policy.deadlines]\nheartbeat = 60"
        )
        .expect("write");
        let global = GlobalArgs {
            config: Some(file.path().to_path_buf()),
            ..GlobalArgs::default()
        };
        let from_file = Settings::load(&global, None).expect("loads");
        assert_eq!(from_file.database_url, "postgres://db/x");
        assert_eq!(from_file.listen.port(), 9000);
        assert_eq!(
            from_file.policy.deadlines.heartbeat,
            chrono::Duration::seconds(60)
        );
        assert_eq!(from_file.log, "info");

        let global = GlobalArgs {
            database_url: Some("sqlite://other.db".into()),
            ..global
        };
        let serve = ServeArgs {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            platforms: Some(vec!["linux".into(), "windows".into()]),
            ..ServeArgs::default()
        };
        let overridden = Settings::load(&global, Some(&serve)).expect("loads");
        assert_eq!(overridden.database_url, "sqlite://other.db");
        assert_eq!(overridden.listen.port(), 0);
        assert_eq!(overridden.platforms, vec!["linux", "windows"]);
        assert!(overridden.anonymous_read);
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(file, "databse_url = \"typo\"").expect("write");
        let global = GlobalArgs {
            config: Some(file.path().to_path_buf()),
            ..GlobalArgs::default()
        };
        let err = Settings::load(&global, None).expect_err("typo rejected");
        let said = err.to_string();
        assert!(
            said.starts_with("invalid configuration: unknown setting \"databse_url\": did you mean \"database_url\"?"),
            "{said}"
        );
        assert!(!said.contains("default."), "{said}");
        assert!(
            !said.contains("github_token"),
            "no list of every key: {said}"
        );

        let mut nested = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(nested, "[policy.deadlines]\nheartbeet = 3").expect("write");
        let global = GlobalArgs {
            config: Some(nested.path().to_path_buf()),
            ..GlobalArgs::default()
        };
        let said = Settings::load(&global, None).expect_err("typo").to_string();
        assert!(
            said.contains("unknown setting \"policy.deadlines.heartbeet\": did you mean \"policy.deadlines.heartbeat\"?"),
            "{said}"
        );

        let mut broken = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(broken, "database_url = ").expect("write");
        let global = GlobalArgs {
            config: Some(broken.path().to_path_buf()),
            ..GlobalArgs::default()
        };
        let said = Settings::load(&global, None)
            .expect_err("syntax")
            .to_string();
        assert_eq!(said.matches("TOML parse error").count(), 1, "{said}");

        let missing = GlobalArgs {
            config: Some("/nonexistent/sp.toml".into()),
            ..GlobalArgs::default()
        };
        assert!(matches!(
            Settings::load(&missing, None),
            Err(ConfigError::MissingFile(_))
        ));
    }
}

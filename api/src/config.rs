//! Configuration: defaults, then an optional TOML file, then `SP_*` environment
//! variables and flags (both read by clap, so `--help` documents each).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use sp_domain::Policy;

/// The Sample Platform: regression tests for every push and pull request.
#[derive(Debug, Parser)]
#[command(name = "sample-platform", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every subcommand shares.
#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct GlobalArgs {
    /// TOML file with settings (keys as in `Settings`: database_url, listen,
    /// [policy.deadlines], [policy.retry]). Flags and SP_* variables override it.
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform: HTTP API, and everything behind it.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
}

#[derive(Debug, Clone, Default, Args, Serialize)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the log says which).
    #[arg(long, env = "SP_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

/// Every setting, after defaults, file, environment and flags are merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub database_url: String,
    pub listen: SocketAddr,
    pub log: String,
    pub policy: Policy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://sample-platform.db".to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log: "info".to_string(),
            policy: Policy::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
}

impl Settings {
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
        figment
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))
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
        };
        let overridden = Settings::load(&global, Some(&serve)).expect("loads");
        assert_eq!(overridden.database_url, "sqlite://other.db");
        assert_eq!(overridden.listen.port(), 0);
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
        assert!(err.to_string().contains("databse_url"), "{err}");

        let missing = GlobalArgs {
            config: Some("/nonexistent/sp.toml".into()),
            ..GlobalArgs::default()
        };
        assert!(matches!(
            Settings::load(&missing, None),
            Err(ConfigError::MissingFile(_))
        ));
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

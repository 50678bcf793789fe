use std::path::PathBuf;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Runs one test run attempt's regression tests and reports to the platform.
#[derive(Debug, Parser)]
#[command(name = "sample-runner", version)]
struct Args {
    /// The run's runner URL, `…/runner/v1/runs/{run}` (from the VM's metadata).
    #[arg(long, env = "SP_REPORT_URL")]
    report_url: String,
    /// The attempt's runner credential (from the VM's metadata).
    #[arg(long, env = "SP_RUNNER_TOKEN", hide_env_values = true)]
    token: String,
    /// Working directory for this attempt (default: the current one).
    #[arg(long, env = "SP_RUNNER_WORK_DIR", default_value = ".")]
    work_dir: PathBuf,
    /// Download cache, by sha256 (default: WORK_DIR/cache).
    #[arg(long, env = "SP_RUNNER_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// The program under test when the job brings no artifact.
    #[arg(long, env = "SP_RUNNER_EXE")]
    exe: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SP_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let args = Args::parse();
    let config = sp_runner::Config {
        cache_dir: args
            .cache_dir
            .unwrap_or_else(|| args.work_dir.join("cache")),
        report_url: args.report_url,
        token: args.token,
        work_dir: args.work_dir,
        exe: args.exe,
    };
    match sp_runner::run(config).await {
        Ok(sp_runner::Outcome::Finished) => std::process::ExitCode::SUCCESS,
        Ok(sp_runner::Outcome::Refused(reason)) => {
            eprintln!("sample-runner: the platform ended this attempt: {reason}");
            std::process::ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("sample-runner: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Runs one test run attempt's regression tests and reports to the platform.
#[derive(Debug, Parser)]
#[command(name = "sample-runner", version)]
struct Cli {
    #[command(flatten)]
    args: sp_runner::Args,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("SP_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let config = sp_runner::Config::from(Cli::parse().args);
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

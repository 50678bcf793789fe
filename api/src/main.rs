use clap::Parser;

/// An error and its causes, each said once: our errors name their cause in
/// their own message, so `{:#}` would print it again after them.
fn once_each(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = sp_api::Cli::parse();
    match sp_api::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sample-platform: {}", once_each(&error));
            match error.downcast_ref::<sp_api::client::RunsDidNotPass>() {
                Some(runs) => std::process::ExitCode::from(runs.exit_code),
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}

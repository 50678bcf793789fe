use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = sp_api::Cli::parse();
    match sp_api::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sample-platform: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

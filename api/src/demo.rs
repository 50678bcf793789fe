//! `sample-platform demo`: the whole job on one machine. The demo catalogue
//! (the same files the end-to-end tests use) is written to `./demo`, the
//! platform serves with it, and one run is queued.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sp_commands::Operator;

use crate::config::Settings;

const FILES: &[(&str, &str)] = &[
    (
        "catalogue.toml",
        include_str!("../../tests/data/demo/catalogue.toml"),
    ),
    ("upcase.sh", include_str!("../../tests/data/demo/upcase.sh")),
    (
        "samples/hello.txt",
        include_str!("../../tests/data/demo/samples/hello.txt"),
    ),
    (
        "samples/fox.txt",
        include_str!("../../tests/data/demo/samples/fox.txt"),
    ),
    (
        "samples/broken.txt",
        include_str!("../../tests/data/demo/samples/broken.txt"),
    ),
];

pub const REPOSITORY: &str = "demo/upcase";
pub const COMMIT: &str = "de30de30de30de30de30de30de30de30de30de30";

/// Write the demo files under `dir`; returns the settings that use them.
pub fn prepare(dir: &Path, mut settings: Settings) -> std::io::Result<Settings> {
    for (name, text) in FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
    }
    let program = dir.join("upcase.sh");
    let mut permissions = std::fs::metadata(&program)?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&program, permissions)?;
    settings.catalogue = Some(dir.join("catalogue.toml"));
    settings.artifact_source = format!("file://{}", program.display());
    Ok(settings)
}

/// Queue the demo run once the platform accepts commands, and say how to watch it.
pub async fn queue_run(operator: Operator, base_url: String) {
    for _ in 0..120 {
        match operator
            .enqueue(
                "user:demo",
                REPOSITORY,
                COMMIT,
                &[],
                Some("the demo".into()),
            )
            .await
        {
            Ok(runs) => {
                for run in runs {
                    println!("queued demo run {run}; follow it with:");
                    println!(
                        "  curl -s {base_url}/graphql -H 'content-type: application/json' \\\n    -d '{{\"query\": \"{{ run(id: \\\"{run}\\\") {{ status stage attempt verdict passed failed finalReason }} }}\"}}'"
                    );
                }
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "the platform is not ready for the demo run yet");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    tracing::error!("could not queue the demo run");
}

/// `./demo`, absolute.
pub fn directory() -> std::io::Result<PathBuf> {
    std::path::absolute("demo")
}

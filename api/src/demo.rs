//! `sample-platform demo`: the whole job on one machine. The demo files (a
//! small program, its samples and a catalogue; the same files the end-to-end
//! tests use) are written to `./demo`, and the platform serves with the
//! program as every commit's build. The walkthrough it prints adds the
//! samples and tests, queues a run and follows it in the browser.

use crate::config::Settings;
use std::path::{Path, PathBuf};

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
    (
        "expected/fox-upper.txt",
        include_str!("../../tests/data/demo/expected/fox-upper.txt"),
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
    settings.artifact_source = format!("file://{}", program.display());
    Ok(settings)
}

/// What to do next, step by step.
pub fn print_walkthrough(address: &str) {
    println!(
        "The demo platform is starting on http://{address}/ (demo files in ./demo).\n\
         In another terminal, from this directory:\n\
         \n  export SP_URL=http://{address}\n\
         \x20 export SP_TOKEN=$(sample-platform tokens create demo --scope operate --scope catalogue)\n\
         \x20 sample-platform samples add --tag demo demo/samples/*.txt\n\
         \x20 sample-platform catalogue import demo/catalogue.toml\n\
         \x20 sample-platform runs enqueue {REPOSITORY} {COMMIT}\n\
         \nthen open http://{address}/ and follow the run; README.md walks through the rest."
    );
}

/// `./demo`, absolute.
pub fn directory() -> std::io::Result<PathBuf> {
    std::path::absolute("demo")
}

//! The regression catalogue file: samples and regression tests, in TOML or
//! JSON, that new runs snapshot into their `Queued` event.
//!
//! ```toml
//! [[samples]]
//! name = "hello.txt"
//! sha256 = "…"
//! path = "samples/hello.txt"        # relative to this file; or url = "https://…"
//!
//! [[tests]]
//! id = "upper-hello"
//! sample = "hello.txt"              # a sample's name or sha256
//! command = "{exe} {sample} {outdir}/out.txt"
//! expected_exit_code = 0
//! categories = ["basic"]
//! platforms = ["linux"]             # optional: every platform
//! [[tests.outputs]]
//! name = "out.txt"
//! approved_sha256 = "…"
//! variants = []
//! ignore = false
//! ```
//!
//! The file is read at start-up and again when it changes (checked at most
//! once a second); an edit that does not parse keeps the last good catalogue
//! and says why in the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use serde::Deserialize;
use sp_commands::TestScope;
use sp_domain::{ExpectedOutput, Platform, RegressionTest, SampleRef};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    samples: Vec<SampleEntry>,
    #[serde(default)]
    tests: Vec<TestEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleEntry {
    name: String,
    sha256: String,
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEntry {
    id: String,
    sample: String,
    command: String,
    #[serde(default)]
    expected_exit_code: i32,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    platforms: Option<Vec<String>>,
    #[serde(default)]
    outputs: Vec<ExpectedOutput>,
}

/// A loaded catalogue: each test with the platforms it runs on (`None`: all).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    tests: Vec<(RegressionTest, Option<Vec<String>>)>,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Catalogue {
    /// Read and check a catalogue file.
    pub fn load(path: &Path) -> Result<Catalogue, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: File = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        } else {
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut samples = BTreeMap::new();
        for s in file.samples {
            if !is_sha256(&s.sha256) {
                return Err(format!(
                    "sample {:?}: sha256 must be 64 hexadecimal digits",
                    s.name
                ));
            }
            let location = match (s.path, s.url) {
                (Some(p), None) => {
                    let full = base.join(p);
                    let full = full
                        .canonicalize()
                        .map_err(|e| format!("sample {:?}: {}: {e}", s.name, full.display()))?;
                    full.display().to_string()
                }
                (None, Some(url)) => url,
                _ => return Err(format!("sample {:?}: give either path or url", s.name)),
            };
            let sample = SampleRef {
                sha256: s.sha256.to_ascii_lowercase(),
                name: s.name.clone(),
                location: Some(location),
            };
            samples.insert(s.name, sample.clone());
            samples.insert(sample.sha256.clone(), sample);
        }
        let mut tests = Vec::new();
        let mut ids = std::collections::BTreeSet::new();
        for t in file.tests {
            if !ids.insert(t.id.clone()) {
                return Err(format!("test {:?} is defined twice", t.id));
            }
            let sample = samples
                .get(&t.sample)
                .cloned()
                .ok_or_else(|| format!("test {:?}: no sample {:?}", t.id, t.sample))?;
            if let Some(o) = t.outputs.iter().find(|o| !is_sha256(&o.approved_sha256)) {
                return Err(format!(
                    "test {:?}: output {:?} needs a 64-digit approved_sha256",
                    t.id, o.name
                ));
            }
            tests.push((
                RegressionTest {
                    id: t.id,
                    sample,
                    command: t.command,
                    input: Default::default(),
                    expected_exit_code: t.expected_exit_code,
                    categories: t.categories,
                    outputs: t.outputs,
                },
                t.platforms,
            ));
        }
        Ok(Catalogue { tests })
    }

    pub fn tests_for(&self, platform: &Platform) -> Vec<RegressionTest> {
        self.tests
            .iter()
            .filter(|(_, platforms)| {
                platforms
                    .as_ref()
                    .is_none_or(|p| p.iter().any(|p| p == platform.as_str()))
            })
            .map(|(t, _)| t.clone())
            .collect()
    }
}

/// The catalogue file as a source of tests in scope, reloaded when it changes.
#[derive(Debug)]
pub struct CatalogueFile {
    path: PathBuf,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    catalogue: Catalogue,
    modified: Option<SystemTime>,
    checked: Instant,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl CatalogueFile {
    /// Load it now; a catalogue that does not load stops the start.
    pub fn open(path: PathBuf) -> Result<CatalogueFile, String> {
        let catalogue = Catalogue::load(&path)?;
        Ok(CatalogueFile {
            state: Mutex::new(Loaded {
                catalogue,
                modified: modified(&path),
                checked: Instant::now(),
            }),
            path,
        })
    }

    fn current(&self) -> Catalogue {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.checked.elapsed().as_secs() >= 1 {
            state.checked = Instant::now();
            let now = modified(&self.path);
            if now != state.modified {
                state.modified = now;
                match Catalogue::load(&self.path) {
                    Ok(c) => {
                        tracing::info!(catalogue = %self.path.display(), "catalogue reloaded");
                        state.catalogue = c;
                    }
                    Err(error) => {
                        tracing::error!(%error, "the edited catalogue does not load; keeping the last good one");
                    }
                }
            }
        }
        state.catalogue.clone()
    }
}

impl TestScope for CatalogueFile {
    fn tests_for(&self, platform: &Platform) -> Vec<RegressionTest> {
        self.current().tests_for(platform)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000001";

    fn write(dir: &Path, text: &str) -> PathBuf {
        std::fs::create_dir_all(dir.join("samples")).expect("dir");
        std::fs::write(dir.join("samples/a.txt"), "a").expect("sample");
        let path = dir.join("catalogue.toml");
        std::fs::write(&path, text).expect("catalogue");
        path
    }

    #[test]
    fn a_catalogue_loads_with_platforms_and_resolved_paths() {
        let dir = tempfile::tempdir().expect("dir");
        let path = write(
            dir.path(),
            &format!(
                "[[samples]]\nname = \"a.txt\"\nsha256 = \"{SHA}\"\npath = \"samples/a.txt\"\n\n\
                 [[tests]]\nid = \"t1\"\nsample = \"a.txt\"\ncommand = \"{{exe}} {{sample}}\"\nplatforms = [\"linux\"]\n\
                 [[tests.outputs]]\nname = \"out\"\napproved_sha256 = \"{SHA}\"\n\n\
                 [[tests]]\nid = \"t2\"\nsample = \"{SHA}\"\ncommand = \"x\"\nexpected_exit_code = 1\n"
            ),
        );
        let c = Catalogue::load(&path).expect("loads");
        let linux = c.tests_for(&Platform::new("linux").expect("valid"));
        let windows = c.tests_for(&Platform::new("windows").expect("valid"));
        assert_eq!(linux.len(), 2);
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].expected_exit_code, 1);
        let location = linux[0].sample.location.clone().expect("location");
        assert!(
            Path::new(&location).is_absolute() && location.ends_with("samples/a.txt"),
            "{location}"
        );
    }

    #[test]
    fn mistakes_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        for (text, expected) in [
            (
                "[[tests]]\nid = \"t\"\nsample = \"nope\"\ncommand = \"x\"\n",
                "no sample",
            ),
            (
                "[[samples]]\nname = \"a\"\nsha256 = \"short\"\npath = \"samples/a.txt\"\n",
                "64 hexadecimal",
            ),
            (
                "[[samples]]\nname = \"a\"\nsha256 = \"{SHA}\"\npath = \"samples/missing\"\n",
                "missing",
            ),
            ("bogus = 1\n", "bogus"),
        ] {
            let path = write(dir.path(), &text.replace("{SHA}", SHA));
            let e = Catalogue::load(&path).expect_err("refused");
            assert!(e.contains(expected), "{e}");
        }
    }
}

//! The catalogue file: samples and regression tests in TOML (or JSON), the
//! format a catalogue moves in and out of the platform with.
//!
//! ```toml
//! [[samples]]
//! name = "hello.txt"
//! sha256 = "…"
//! path = "samples/hello.txt"        # relative to this file; or url = "https://…";
//!                                   # neither: already in the platform's store
//! tags = ["short"]
//!
//! [[tests]]
//! id = "upper-hello"
//! sample = "hello.txt"              # a sample's name or sha256
//! command = "{exe} {sample} {outdir}"
//! input = "file"                    # or "stdin": the sample on standard input; or
//!                                   # "udp": sent as datagrams to {port}
//! output = "file"                   # the named files below; or "stdout", "report"
//!                                   # (standard output: one output), "null" (none),
//!                                   # "tcp" (what the program sends to {port}: one),
//!                                   # "cea708", "multiprogram" (every file matching
//! output_pattern = "{base}_*.srt"   # this; {base}: the sample's file name on the
//!                                   # runner (its SHA-256) without extension, as in
//!                                   # output names and the command line)
//! expected_exit_code = 0
//! categories = ["basic"]
//! platforms = ["linux"]             # optional: every platform
//! active = true
//! description = "…"
//! [[tests.outputs]]
//! name = "upper.txt"
//! approved_sha256 = "…"
//! approved_path = "expected/upper.txt"  # optional: its content, for diffs
//! variants = []
//! ignore = false
//! [tests.outputs.platforms.windows]     # accepted on one platform only
//! approved_sha256 = "…"
//! variants = ["…"]
//! ```
//!
//! Importing adds the samples the platform does not have and defines the
//! tests that are new or changed; tests the file does not name stay as they
//! are, and so do outputs' per-platform acceptances the file does not name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sp_domain::catalogue::{
    Catalogue, OutputDefinition, PlatformBaseline, Sample, TestDefinition, extension_of, is_sha256,
};
use sp_domain::{InputKind, OutputKind};

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    samples: Vec<SampleEntry>,
    #[serde(default)]
    tests: Vec<TestEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleEntry {
    name: String,
    sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestEntry {
    id: String,
    sample: String,
    command: String,
    #[serde(default)]
    input: InputKind,
    #[serde(default, skip_serializing_if = "OutputKind::is_file")]
    output: OutputKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output_pattern: Option<String>,
    #[serde(default)]
    expected_exit_code: i32,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platforms: Option<Vec<String>>,
    #[serde(default = "yes")]
    active: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    description: String,
    #[serde(default)]
    outputs: Vec<OutputEntry>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputEntry {
    name: String,
    approved_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approved_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    variants: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    ignore: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    platforms: BTreeMap<String, PlatformBaseline>,
}

/// A sample named by a catalogue file, and where its content is.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSample {
    pub sample: Sample,
    /// A local file to store; `None`: the platform's store has it already,
    /// or runners download it from its URL.
    pub source: Option<PathBuf>,
}

/// A catalogue file, read and checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogueFile {
    pub samples: Vec<FileSample>,
    pub tests: Vec<TestDefinition>,
    /// Approved outputs' content, by hash, for diffs.
    pub expected: Vec<(String, PathBuf)>,
}

/// Read a catalogue file from disk; paths in it are relative to it.
pub fn load(path: &Path) -> Result<CatalogueFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json = path.extension().is_some_and(|e| e == "json");
    parse(&text, json, Some(path.parent().unwrap_or(Path::new("."))))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Read a catalogue from text. Without `base` (text sent to the API) the
/// files it names cannot be read: their content must be in the store.
pub fn parse(text: &str, json: bool, base: Option<&Path>) -> Result<CatalogueFile, String> {
    let file: File = if json {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        toml::from_str(text).map_err(|e| e.to_string())?
    };
    let resolve = |what: String, p: &Path| -> Result<Option<PathBuf>, String> {
        let Some(base) = base else { return Ok(None) };
        let full = base.join(p);
        full.canonicalize()
            .map(Some)
            .map_err(|e| format!("{what}: {}: {e}", full.display()))
    };
    let mut by_key = BTreeMap::new();
    let mut samples = Vec::new();
    for s in file.samples {
        if !is_sha256(&s.sha256) {
            return Err(format!(
                "sample {:?}: sha256 must be 64 hexadecimal digits",
                s.name
            ));
        }
        if s.path.is_some() && s.url.is_some() {
            return Err(format!("sample {:?}: give path or url, not both", s.name));
        }
        let source = match &s.path {
            Some(p) => resolve(format!("sample {:?}", s.name), p)?,
            None => None,
        };
        let size_bytes = match &source {
            Some(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            None => 0,
        };
        let sample = Sample {
            sha256: s.sha256.to_ascii_lowercase(),
            extension: extension_of(&s.name),
            name: s.name,
            size_bytes,
            tags: s.tags,
            url: s.url,
        };
        by_key.insert(sample.name.clone(), sample.sha256.clone());
        by_key.insert(sample.sha256.clone(), sample.sha256.clone());
        samples.push(FileSample { sample, source });
    }
    let mut tests = Vec::new();
    let mut expected = Vec::new();
    for t in file.tests {
        let sample = by_key
            .get(&t.sample)
            .or_else(|| by_key.get(&t.sample.to_ascii_lowercase()))
            .cloned()
            // A sample the file does not list may be in the catalogue
            // already, named by its hash or its name.
            .unwrap_or_else(|| t.sample.clone());
        let mut outputs = Vec::new();
        for o in t.outputs {
            if let Some(p) = &o.approved_path
                && let Some(full) = resolve(format!("test {:?} output {:?}", t.id, o.name), p)?
            {
                expected.push((o.approved_sha256.to_ascii_lowercase(), full));
            }
            outputs.push(OutputDefinition {
                name: o.name,
                approved_sha256: o.approved_sha256.to_ascii_lowercase(),
                variants: o.variants,
                ignore: o.ignore,
                platforms: o.platforms,
            });
        }
        tests.push(TestDefinition {
            id: t.id,
            sample,
            command: t.command,
            input: t.input,
            expected_exit_code: t.expected_exit_code,
            categories: t.categories,
            active: t.active,
            description: t.description,
            platforms: t.platforms,
            outputs,
            output: t.output,
            output_pattern: t.output_pattern,
        });
    }
    Ok(CatalogueFile {
        samples,
        tests,
        expected,
    })
}

/// The catalogue in the file format (TOML). Samples are named by hash: their
/// content is in the platform's store.
pub fn export(catalogue: &Catalogue) -> String {
    let samples: Vec<&Sample> = catalogue.samples.values().collect();
    let tests: Vec<&TestDefinition> = catalogue.tests.values().collect();
    write(&samples, &tests)
}

/// Samples and tests in the catalogue file format, naming no local files:
/// what the platform is sent once their content is uploaded.
pub fn write(samples: &[&Sample], tests: &[&TestDefinition]) -> String {
    let file = File {
        samples: samples
            .iter()
            .map(|s| SampleEntry {
                name: s.name.clone(),
                sha256: s.sha256.clone(),
                path: None,
                url: s.url.clone(),
                tags: s.tags.clone(),
            })
            .collect(),
        tests: tests
            .iter()
            .map(|t| TestEntry {
                id: t.id.clone(),
                sample: t.sample.clone(),
                command: t.command.clone(),
                input: t.input,
                output: t.output,
                output_pattern: t.output_pattern.clone(),
                expected_exit_code: t.expected_exit_code,
                categories: t.categories.clone(),
                platforms: t.platforms.clone(),
                active: t.active,
                description: t.description.clone(),
                outputs: t
                    .outputs
                    .iter()
                    .map(|o| OutputEntry {
                        name: o.name.clone(),
                        approved_sha256: o.approved_sha256.clone(),
                        approved_path: None,
                        variants: o.variants.clone(),
                        ignore: o.ignore,
                        platforms: o.platforms.clone(),
                    })
                    .collect(),
            })
            .collect(),
    };
    toml::to_string(&file).unwrap_or_else(|e| format!("# the catalogue cannot be written: {e}\n"))
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
    fn a_catalogue_file_reads_into_samples_and_definitions() {
        let dir = tempfile::tempdir().expect("dir");
        let path = write(
            dir.path(),
            &format!(
                "[[samples]]\nname = \"a.txt\"\nsha256 = \"{SHA}\"\npath = \"samples/a.txt\"\n\n\
                 [[tests]]\nid = \"t1\"\nsample = \"a.txt\"\ncommand = \"{{exe}} {{sample}}\"\nplatforms = [\"linux\"]\n\
                 [[tests.outputs]]\nname = \"out\"\napproved_sha256 = \"{SHA}\"\n\
                 [tests.outputs.platforms.windows]\nvariants = [\"{SHA}\"]\n\n\
                 [[tests]]\nid = \"t2\"\nsample = \"{SHA}\"\ncommand = \"x\"\ninput = \"stdin\"\nexpected_exit_code = 1\nactive = false\n"
            ),
        );
        let c = load(&path).expect("loads");
        assert_eq!(c.samples.len(), 1);
        let source = c.samples[0].source.clone().expect("a local file");
        assert!(source.is_absolute() && source.ends_with("samples/a.txt"));
        assert_eq!(c.samples[0].sample.size_bytes, 1);
        assert_eq!(c.samples[0].sample.extension, "txt");
        assert_eq!(c.tests[0].sample, SHA, "named by hash");
        assert_eq!(
            c.tests[0].outputs[0].platforms["windows"].variants,
            vec![SHA.to_string()]
        );
        assert_eq!(c.tests[1].input, InputKind::Stdin);
        assert!(!c.tests[1].active);
    }

    #[test]
    fn an_export_reads_back_as_the_same_definitions() {
        let dir = tempfile::tempdir().expect("dir");
        let path = write(
            dir.path(),
            &format!(
                "[[samples]]\nname = \"a.txt\"\nsha256 = \"{SHA}\"\npath = \"samples/a.txt\"\ntags = [\"x\"]\n\n\
                 [[tests]]\nid = \"t1\"\nsample = \"a.txt\"\ncommand = \"c\"\ncategories = [\"k\"]\n\
                 [[tests.outputs]]\nname = \"out\"\napproved_sha256 = \"{SHA}\"\n\
                 [tests.outputs.platforms.windows]\napproved_sha256 = \"{SHA}\"\n"
            ),
        );
        let loaded = load(&path).expect("loads");
        let mut catalogue = Catalogue::default();
        for s in &loaded.samples {
            catalogue
                .samples
                .insert(s.sample.sha256.clone(), s.sample.clone());
        }
        for t in &loaded.tests {
            catalogue.tests.insert(t.id.clone(), t.clone());
        }
        let text = export(&catalogue);
        let again = parse(&text, false, None).expect("the export reads back");
        assert_eq!(again.tests, loaded.tests, "{text}");
        assert_eq!(again.samples[0].sample.tags, vec!["x".to_string()]);
        assert_eq!(again.samples[0].source, None);
    }

    #[test]
    fn mistakes_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        for (text, expected) in [
            (
                "[[samples]]\nname = \"a\"\nsha256 = \"short\"\npath = \"samples/a.txt\"\n",
                "64 hexadecimal",
            ),
            (
                "[[samples]]\nname = \"a\"\nsha256 = \"{SHA}\"\npath = \"samples/missing\"\n",
                "missing",
            ),
            (
                "[[samples]]\nname = \"a\"\nsha256 = \"{SHA}\"\npath = \"samples/a.txt\"\nurl = \"http://x\"\n",
                "not both",
            ),
            ("bogus = 1\n", "bogus"),
        ] {
            let path = write(dir.path(), &text.replace("{SHA}", SHA));
            let e = load(&path).expect_err("refused");
            assert!(e.contains(expected), "{e}");
        }
    }
}

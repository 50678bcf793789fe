//! What a run produced for one output of one test beside what the catalogue
//! approved, line by line: what a maintainer reads before accepting it.

use sp_domain::catalogue::is_sha256;
use sp_domain::{OutputProduced, RunId};
use sp_files::Kind;

use crate::{Catalogues, Error};

/// A diff shows at most this much of each side.
pub const DIFF_BYTES: u64 = 256 * 1024;
/// And at most this many lines.
pub const DIFF_LINES: usize = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Equal,
    /// In the expected content only.
    Delete,
    /// In the produced content only.
    Insert,
}

impl LineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Equal => "equal",
            LineKind::Delete => "delete",
            LineKind::Insert => "insert",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: LineKind,
    /// 1-based, in the expected content.
    pub old_line: Option<usize>,
    /// 1-based, in the produced content.
    pub new_line: Option<usize>,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputDiff {
    pub test_id: String,
    pub output: String,
    pub expected_sha256: Option<String>,
    pub produced_sha256: Option<String>,
    /// The catalogue as it is now accepts the produced output on the run's
    /// platform (approved, a variant, or an output it ignores): accepted
    /// since the run. The test's other outputs and exit code still count.
    pub accepted_now: bool,
    /// Whether the platform's store has each side's content.
    pub expected_stored: bool,
    pub produced_stored: bool,
    pub binary: bool,
    /// Only the start of a side, or of the diff, is shown.
    pub truncated: bool,
    /// Why there is no diff to show, when `lines` is empty.
    pub note: Option<String>,
    pub lines: Vec<DiffLine>,
}

impl Catalogues {
    /// The expected and produced text of one output of one test in `run`
    /// (the first [`DIFF_BYTES`] of each, at most [`DIFF_LINES`] lines).
    pub async fn output_diff(
        &self,
        files: &sp_files::Files,
        run: RunId,
        test_id: &str,
        output: &str,
    ) -> Result<OutputDiff, Error> {
        let loaded = self.runs.load(&run.stream()).await?;
        let run = loaded
            .state
            .run
            .ok_or_else(|| Error::not_found("no such run"))?;
        let expected = run
            .info
            .tests
            .iter()
            .find(|t| t.id == test_id)
            .ok_or_else(|| Error::not_found(format!("the run has no test {test_id:?}")))?
            .outputs
            .iter()
            .find(|o| o.name == output)
            .ok_or_else(|| Error::not_found(format!("test {test_id:?} has no output {output:?}")))?
            .approved_sha256
            .clone();
        let produced = run.results.get(test_id).and_then(|r| {
            r.outputs
                .iter()
                .find(|o| o.name == output)
                .map(|o| o.produced.clone())
        });
        let mut diff = OutputDiff {
            test_id: test_id.to_string(),
            output: output.to_string(),
            expected_sha256: Some(expected.clone()),
            ..OutputDiff::default()
        };
        let produced = match produced {
            None => {
                diff.note = Some("the run has not reported this test yet".into());
                return Ok(diff);
            }
            Some(OutputProduced::Missing) => {
                diff.note = Some("the test did not write this output".into());
                return Ok(diff);
            }
            Some(OutputProduced::TooLarge { limit_bytes }) => {
                diff.note = Some(format!(
                    "the output was larger than the {limit_bytes} bytes the runner keeps, so it \
                     was neither compared nor kept"
                ));
                return Ok(diff);
            }
            Some(OutputProduced::Equal) => expected.clone(),
            Some(OutputProduced::Sha256 { sha256 }) => sha256,
        };
        diff.produced_sha256 = Some(produced.clone());
        let catalogue = self.current().await?;
        diff.accepted_now = catalogue
            .state
            .tests
            .get(test_id)
            .and_then(|t| t.outputs.iter().find(|o| o.name == output))
            .map(|o| o.on(run.info.platform.as_str()))
            .is_some_and(|o| {
                o.ignore || o.approved_sha256 == produced || o.variants.contains(&produced)
            });
        if !is_sha256(&expected) || !is_sha256(&produced) {
            diff.note = Some("not a content hash".into());
            return Ok(diff);
        }
        let old = files
            .head_bytes(Kind::Output, &expected, DIFF_BYTES)
            .await?;
        let new = files
            .head_bytes(Kind::Output, &produced, DIFF_BYTES)
            .await?;
        diff.expected_stored = old.is_some();
        diff.produced_stored = new.is_some();
        let (Some((old, old_cut)), Some((new, new_cut))) = (old, new) else {
            diff.note = Some(match (diff.expected_stored, diff.produced_stored) {
                (false, false) => "the platform has neither the expected nor the produced content".into(),
                (false, true) => "the platform does not have the expected content (import the catalogue with approved_path, or accept an output from a run)".into(),
                _ => "the runner did not upload the produced content".into(),
            });
            return Ok(diff);
        };
        let (Some(old), Some(new)) = (as_text(&old, old_cut), as_text(&new, new_cut)) else {
            diff.binary = true;
            diff.note = Some("binary content: download both to compare".into());
            return Ok(diff);
        };
        let (lines, cut) = diff_lines(&old, &new);
        diff.lines = lines;
        diff.truncated = cut || old_cut || new_cut;
        Ok(diff)
    }
}

fn diff_lines(expected: &str, produced: &str) -> (Vec<DiffLine>, bool) {
    let diff = similar::TextDiff::from_lines(expected, produced);
    let mut lines = Vec::new();
    for change in diff.iter_all_changes() {
        if lines.len() == DIFF_LINES {
            return (lines, true);
        }
        let kind = match change.tag() {
            similar::ChangeTag::Equal => LineKind::Equal,
            similar::ChangeTag::Delete => LineKind::Delete,
            similar::ChangeTag::Insert => LineKind::Insert,
        };
        lines.push(DiffLine {
            kind,
            old_line: change.old_index().map(|i| i + 1),
            new_line: change.new_index().map(|i| i + 1),
            text: change.value().trim_end_matches(['\n', '\r']).to_string(),
        });
    }
    (lines, false)
}

/// Text, or `None` for content that is not (NUL bytes or invalid UTF-8; a
/// cut in the middle of a character at the end is forgiven).
fn as_text(bytes: &[u8], cut: bool) -> Option<String> {
    if bytes.contains(&0) {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(s.to_string()),
        Err(e) if cut && e.error_len().is_none() => {
            Some(String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_pair_lines_and_stop_at_their_limit() {
        let (lines, cut) = diff_lines("a\nb\nc\n", "a\nB\nc\n");
        let kinds: Vec<LineKind> = lines.iter().map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            vec![
                LineKind::Equal,
                LineKind::Delete,
                LineKind::Insert,
                LineKind::Equal
            ]
        );
        assert_eq!((lines[1].old_line, lines[2].new_line), (Some(2), Some(2)));
        assert!(!cut);
        let long: String = (0..3000).map(|i| format!("{i}\n")).collect();
        let (lines, cut) = diff_lines("", &long);
        assert_eq!(lines.len(), DIFF_LINES);
        assert!(cut);
    }

    #[test]
    fn binary_content_is_not_text() {
        assert!(as_text(b"a\0b", false).is_none());
        assert!(as_text(&[0xff, 0xfe], false).is_none());
        // A cut through a multi-byte character at the end is forgiven.
        assert_eq!(as_text(&"é".as_bytes()[..1], true).as_deref(), Some(""));
    }
}

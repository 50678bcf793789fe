//! Running one regression test: its command line with the placeholders
//! filled in, killed with whatever it started at its timeout (`os`);
//! then its outputs hashed and compared.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sp_domain::verdict::{InputKind, OutputProduced, ProducedOutput};
use sp_domain::{RegressionTest, TestResult};

use crate::client::hash_file;

/// The command line with the paths of `{exe}`, `{sample}` and `{outdir}`.
pub fn command_line(template: &str, exe: &Path, sample: &Path, outdir: &Path) -> String {
    sp_domain::verdict::command_line(
        template,
        &exe.display().to_string(),
        &sample.display().to_string(),
        &outdir.display().to_string(),
    )
}

/// Run `test` on `sample` with `exe`, its outputs in `outdir`, its stderr in
/// `stderr`. Never fails: a command that cannot start exits 127, as in a shell.
pub async fn run_test(
    test: &RegressionTest,
    exe: &Path,
    sample: &Path,
    outdir: &Path,
    stderr: &Path,
    timeout: Duration,
) -> TestResult {
    let started = Instant::now();
    let line = command_line(&test.command, exe, sample, outdir);
    let stdin = (test.input == InputKind::Stdin).then_some(sample);
    let (exit_code, timed_out) = match spawn(&line, stdin, outdir, stderr, timeout).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = tokio::fs::write(
                stderr,
                format!("sample-runner: cannot start the test: {e}\n"),
            )
            .await;
            (127, false)
        }
    };
    let runtime_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut outputs = Vec::new();
    for expected in &test.outputs {
        let path: PathBuf = outdir.join(&expected.name);
        let produced = match hash_file(&path).await {
            Ok(hash) if hash == expected.approved_sha256 => OutputProduced::Equal,
            Ok(hash) => OutputProduced::Sha256 { sha256: hash },
            Err(_) => OutputProduced::Missing,
        };
        outputs.push(ProducedOutput {
            name: expected.name.clone(),
            produced,
        });
    }
    TestResult {
        test_id: test.id.clone(),
        exit_code,
        runtime_ms,
        outputs,
        timed_out,
    }
}

async fn spawn(
    line: &str,
    stdin: Option<&Path>,
    dir: &Path,
    stderr: &Path,
    timeout: Duration,
) -> std::io::Result<(i32, bool)> {
    tokio::fs::create_dir_all(dir).await?;
    let stderr = std::fs::File::create(stderr)?;
    let stdin = match stdin {
        Some(sample) => Stdio::from(std::fs::File::open(sample)?),
        None => Stdio::null(),
    };
    let mut child = crate::os::shell(line)
        .current_dir(dir)
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => {
            let status = status?;
            Ok((status.code().unwrap_or(-1), false))
        }
        Err(_) => {
            // The command and whatever it started.
            crate::os::kill_tree(&child);
            let _ = child.wait().await;
            Ok((-1, true))
        }
    }
}

#[cfg(test)]
mod tests {
    use sp_domain::{ExpectedOutput, SampleRef};

    use super::*;

    fn test(command: &str, approved: &str) -> RegressionTest {
        RegressionTest {
            id: "t".into(),
            sample: SampleRef {
                sha256: "s".into(),
                name: "s".into(),
                location: None,
            },
            command: command.into(),
            input: Default::default(),
            expected_exit_code: 0,
            categories: vec![],
            outputs: vec![ExpectedOutput {
                name: "out.txt".into(),
                approved_sha256: approved.into(),
                variants: vec![],
                ignore: false,
            }],
        }
    }

    #[tokio::test]
    async fn outputs_are_hashed_and_compared() {
        let dir = tempfile::tempdir().expect("dir");
        let sample = dir.path().join("sample.txt");
        std::fs::write(&sample, "hello\n").expect("sample");
        let out = dir.path().join("out");
        // sha256 of "HELLO\n"
        let approved = "64ba7a5b4b2e4b4ae3b2bfa9cf9a3e3bb7e1e8b1a7e8a2b7d8e3b9f8e2d2c1b0";
        let t = test("tr a-z A-Z < {sample} > {outdir}/out.txt", approved);
        let r = run_test(
            &t,
            Path::new("/bin/true"),
            &sample,
            &out,
            &dir.path().join("err"),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(r.exit_code, 0);
        let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"HELLO\n"));
        assert_eq!(
            r.outputs[0].produced,
            OutputProduced::Sha256 {
                sha256: expected.clone()
            },
            "not the approved hash, so the produced one"
        );
        let t = test("tr a-z A-Z < {sample} > {outdir}/out.txt", &expected);
        let r = run_test(
            &t,
            Path::new("/bin/true"),
            &sample,
            &out,
            &dir.path().join("err"),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(r.outputs[0].produced, OutputProduced::Equal);
    }

    #[tokio::test]
    async fn a_stdin_test_reads_its_sample_on_standard_input() {
        let dir = tempfile::tempdir().expect("dir");
        let sample = dir.path().join("sample.txt");
        std::fs::write(&sample, "piped\n").expect("sample");
        let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"PIPED\n"));
        let mut t = test("tr a-z A-Z > {outdir}/out.txt", &expected);
        t.input = InputKind::Stdin;
        let r = run_test(
            &t,
            Path::new("/bin/true"),
            &sample,
            &dir.path().join("out"),
            &dir.path().join("err"),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(r.outputs[0].produced, OutputProduced::Equal);
    }

    #[tokio::test]
    async fn a_test_past_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().expect("dir");
        let t = test("sh -c 'sleep 30' & sleep 30", "x");
        let started = Instant::now();
        let r = run_test(
            &t,
            Path::new("/bin/true"),
            &dir.path().join("none"),
            &dir.path().join("out"),
            &dir.path().join("err"),
            Duration::from_millis(300),
        )
        .await;
        assert!(r.timed_out);
        assert_eq!(r.exit_code, -1);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(r.outputs[0].produced, OutputProduced::Missing);
    }

    #[test]
    fn placeholders_are_quoted_paths() {
        let line = command_line(
            "{exe} -i {sample} -o {outdir}/x",
            Path::new("/a b/exe"),
            Path::new("/s'q"),
            Path::new("/o"),
        );
        assert_eq!(line, "'/a b/exe' -i '/s'\\''q' -o '/o'/x");
    }
}

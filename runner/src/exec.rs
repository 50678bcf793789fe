//! Running one regression test: its command line with the placeholders
//! filled in, the sample given as its input kind says (a path, standard
//! input, UDP datagrams), its output read where its output kind says (named
//! files, captured standard output or TCP, a pattern of files), killed with
//! whatever it started at its timeout (`os`); then its outputs hashed and
//! compared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sp_domain::kinds::{self, UDP_DATAGRAM_BYTES};
use sp_domain::verdict::{InputKind, OutputKind, OutputProduced, ProducedOutput};
use sp_domain::{RegressionTest, TestResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::client::hash_file;

/// What bounds one test, beside its own command line.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The test is killed, with whatever it started, after this.
    pub timeout: Duration,
    /// Captured output (standard output, TCP) past this is not kept, and the
    /// output is reported too large.
    pub max_captured_bytes: u64,
    /// The pace of a UDP test's datagrams.
    pub udp_datagrams_per_second: u32,
    /// How long a UDP test's program has to start listening.
    pub listen_wait: Duration,
}

/// A test's result, and where each output it reports is on disk (to
/// upload the ones that differ).
#[derive(Debug)]
pub struct Ran {
    pub result: TestResult,
    pub files: BTreeMap<String, PathBuf>,
}

/// The command line with the paths of `{exe}`, `{sample}` and `{outdir}`,
/// and `{port}` when the test has one.
pub fn command_line(
    template: &str,
    exe: &Path,
    sample: &Path,
    outdir: &Path,
    port: Option<u16>,
) -> String {
    sp_domain::verdict::command_line(
        template,
        &exe.display().to_string(),
        &sample.display().to_string(),
        &outdir.display().to_string(),
        &base_of(sample),
        port.map(|p| p.to_string()).as_deref(),
    )
}

/// What `{base}` stands for: the sample's file name, as the program sees
/// it, without its extension.
fn base_of(sample: &Path) -> String {
    let name = sample
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    sp_domain::verdict::file_stem(&name).to_string()
}

/// Run `test` on `sample` with `exe`, its outputs in `outdir`, its stderr in
/// `stderr`. Never fails: a command that cannot start exits 127, as in a shell.
pub async fn run_test(
    test: &RegressionTest,
    exe: &Path,
    sample: &Path,
    outdir: &Path,
    stderr: &Path,
    limits: &Limits,
) -> Ran {
    let started = Instant::now();
    // Captured output is kept beside the output directory, never in it: a
    // program's own file of the same name cannot clobber it.
    let capture = outdir.with_extension("captured");
    let outcome = match execute(test, exe, sample, outdir, stderr, &capture, limits).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = tokio::fs::write(
                stderr,
                format!("sample-runner: cannot start the test: {e}\n"),
            )
            .await;
            Outcome {
                exit_code: 127,
                ..Outcome::default()
            }
        }
    };
    let runtime_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let base = base_of(sample);
    let (outputs, files) = outputs(test, outdir, &capture, &base, &outcome, limits).await;
    Ran {
        result: TestResult {
            test_id: test.id.clone(),
            exit_code: outcome.exit_code,
            runtime_ms,
            outputs,
            timed_out: outcome.timed_out,
            input_error: outcome.input_error,
        },
        files,
    }
}

#[derive(Debug, Default)]
struct Outcome {
    exit_code: i32,
    timed_out: bool,
    input_error: Option<String>,
    /// What was captured: `Some(true)` when it outgrew the limit.
    captured_too_large: Option<bool>,
}

async fn execute(
    test: &RegressionTest,
    exe: &Path,
    sample: &Path,
    dir: &Path,
    stderr: &Path,
    capture: &Path,
    limits: &Limits,
) -> std::io::Result<Outcome> {
    tokio::fs::create_dir_all(dir).await?;
    let _ = tokio::fs::remove_file(capture).await;
    let deadline = tokio::time::Instant::now() + limits.timeout;
    let tcp = match test.output {
        OutputKind::Tcp => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?),
        _ => None,
    };
    let udp = match test.input {
        InputKind::Udp => Some(
            std::net::UdpSocket::bind("127.0.0.1:0")?
                .local_addr()?
                .port(),
        ),
        _ => None,
    };
    let port = match &tcp {
        Some(listener) => Some(listener.local_addr()?.port()),
        None => udp,
    };
    let line = command_line(&test.command, exe, sample, dir, port);
    let stdin = match test.input {
        InputKind::Stdin => Stdio::from(std::fs::File::open(sample)?),
        _ => Stdio::null(),
    };
    let captures_stdout = matches!(test.output, OutputKind::Stdout | OutputKind::Report);
    let mut child = crate::os::shell(&line)
        .current_dir(dir)
        .stdin(stdin)
        .stdout(if captures_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(std::fs::File::create(stderr)?)
        .kill_on_drop(true)
        .spawn()?;

    let max = limits.max_captured_bytes;
    let capturing = match (child.stdout.take(), tcp) {
        (Some(stdout), _) => {
            let to = capture.to_path_buf();
            Some(tokio::spawn(async move { keep(stdout, &to, max).await }))
        }
        (None, Some(listener)) => {
            let to = capture.to_path_buf();
            Some(tokio::spawn(async move {
                let (connection, _) = listener.accept().await?;
                keep(connection, &to, max).await
            }))
        }
        (None, None) => None,
    };

    let mut input_error = None;
    let waited = tokio::time::timeout_at(deadline, async {
        if let Some(port) = udp
            && let Err(reason) = send_udp(&mut child, port, sample, limits).await
        {
            input_error = Some(reason);
            crate::os::kill_tree(&child);
        }
        child.wait().await
    })
    .await;
    let (exit_code, timed_out) = match waited {
        Ok(status) => (status?.code().unwrap_or(-1), false),
        Err(_) => {
            crate::os::kill_tree(&child);
            let _ = child.wait().await;
            (-1, true)
        }
    };
    // What the command left running (a helper in the background holding
    // its output open) does not outlive the test.
    crate::os::kill_tree(&child);
    // A program that exited has closed its standard output and its
    // connection: what is left to read is in the pipes. One that never
    // connected leaves the accept waiting, and nothing was captured.
    let captured_too_large = match capturing {
        Some(task) => {
            let abort = task.abort_handle();
            match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(Ok(too_large))) => Some(too_large),
                Ok(_) => None,
                Err(_) => {
                    abort.abort();
                    None
                }
            }
        }
        None => None,
    };
    Ok(Outcome {
        exit_code,
        timed_out,
        input_error,
        captured_too_large,
    })
}

/// Copy `from` into the file `to`, at most `max` bytes; the rest is read
/// and dropped (a writer blocked on a full pipe would never exit). Returns
/// whether there was more than `max`.
async fn keep(mut from: impl AsyncRead + Unpin, to: &Path, max: u64) -> std::io::Result<bool> {
    let mut file = tokio::fs::File::create(to).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut kept = 0u64;
    let mut too_large = false;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let room = usize::try_from(max.saturating_sub(kept)).unwrap_or(usize::MAX);
        if n > room {
            too_large = true;
        }
        let take = n.min(room);
        file.write_all(&buf[..take]).await?;
        kept += take as u64;
    }
    file.flush().await?;
    Ok(too_large)
}

/// Wait until the program listens on UDP `port`, then send it the sample
/// as datagrams of seven MPEG-TS packets at the configured pace. The error
/// says, in words, why the sample could not be given.
async fn send_udp(
    child: &mut tokio::process::Child,
    port: u16,
    sample: &Path,
    limits: &Limits,
) -> Result<(), String> {
    let waiting_since = Instant::now();
    loop {
        match crate::os::udp_listening(port) {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return Err(format!("cannot tell whether the program listens: {e}")),
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the program exited ({status}) without listening on UDP port {port}"
            ));
        }
        if waiting_since.elapsed() > limits.listen_wait {
            return Err(format!(
                "nothing listened on UDP port {port} within {} s",
                limits.listen_wait.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sending = async {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        socket.connect(("127.0.0.1", port)).await?;
        let mut file = tokio::fs::File::open(sample).await?;
        // A tick every 10 ms carries a hundredth of a second's datagrams;
        // under 100 a second, a tick per datagram.
        let pace = limits.udp_datagrams_per_second.max(1);
        let (per_tick, every) = if pace >= 100 {
            (pace / 100, Duration::from_millis(10))
        } else {
            (1, Duration::from_secs(1) / pace)
        };
        let mut tick = tokio::time::interval(every);
        let mut datagram = vec![0u8; UDP_DATAGRAM_BYTES];
        loop {
            tick.tick().await;
            for _ in 0..per_tick {
                let n = read_full(&mut file, &mut datagram).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                socket.send(&datagram[..n]).await?;
            }
        }
    };
    match sending.await {
        Ok(()) => Ok(()),
        // A program that has read what it needs and exited refuses the
        // rest: that is the end of its input, not a failure to give it.
        Err(_) if matches!(child.try_wait(), Ok(Some(_))) => Ok(()),
        Err(e) => Err(format!("sending the sample to UDP port {port}: {e}")),
    }
}

/// Fill `buf` from `file` as far as it goes; 0 at the end.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Each output the test's kind says to look at, and where it is.
async fn outputs(
    test: &RegressionTest,
    outdir: &Path,
    capture: &Path,
    base: &str,
    outcome: &Outcome,
    limits: &Limits,
) -> (Vec<ProducedOutput>, BTreeMap<String, PathBuf>) {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    match test.output {
        OutputKind::Null => {}
        OutputKind::File => {
            for o in &test.outputs {
                found.push((
                    o.name.clone(),
                    outdir.join(kinds::pattern_for(&o.name, base)),
                ));
            }
        }
        OutputKind::Stdout | OutputKind::Report | OutputKind::Tcp => {
            if let Some(o) = test.outputs.first() {
                if outcome.captured_too_large == Some(true) {
                    let produced = OutputProduced::TooLarge {
                        limit_bytes: limits.max_captured_bytes,
                    };
                    let output = ProducedOutput {
                        name: o.name.clone(),
                        produced,
                    };
                    return (vec![output], BTreeMap::new());
                }
                found.push((o.name.clone(), capture.to_path_buf()));
            }
        }
        OutputKind::Cea708 | OutputKind::Multiprogram => {
            let pattern = kinds::pattern_for(test.output_pattern.as_deref().unwrap_or("*"), base);
            let mut written = Vec::new();
            if let Ok(mut entries) = tokio::fs::read_dir(outdir).await {
                while let Ok(Some(entry)) = entries.next_entry().await {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if kinds::matches(&pattern, &name) {
                        written.push((kinds::output_name(&name, base), entry.path()));
                    }
                }
            }
            written.sort();
            // The expected ones first (missing when not written), then the
            // rest, which the verdict names as not expected.
            for o in &test.outputs {
                if !written.iter().any(|(name, _)| *name == o.name) {
                    let path = outdir.join(kinds::pattern_for(&o.name, base));
                    found.push((o.name.clone(), path));
                }
            }
            found.extend(written);
        }
    }
    let mut produced = Vec::with_capacity(found.len());
    let mut files = BTreeMap::new();
    for (name, path) in found {
        let approved = test
            .outputs
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.approved_sha256.as_str());
        let output = match hash_file(&path).await {
            Ok(hash) if Some(hash.as_str()) == approved => OutputProduced::Equal,
            Ok(hash) => {
                files.insert(name.clone(), path);
                OutputProduced::Sha256 { sha256: hash }
            }
            Err(_) => OutputProduced::Missing,
        };
        produced.push(ProducedOutput {
            name,
            produced: output,
        });
    }
    (produced, files)
}

#[cfg(test)]
mod tests {
    use sp_domain::verdict::OutputKind;
    use sp_domain::{ExpectedOutput, SampleRef};

    use super::*;

    fn limits(timeout: Duration) -> Limits {
        Limits {
            timeout,
            max_captured_bytes: 1 << 20,
            udp_datagrams_per_second: 5000,
            listen_wait: Duration::from_secs(5),
        }
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
    }

    /// A test of these kinds with one output per name, approved as `approved`.
    fn kind_test(
        command: &str,
        input: InputKind,
        output: OutputKind,
        outputs: &[(&str, &str)],
    ) -> RegressionTest {
        let mut t = test(command, "x");
        t.input = input;
        t.output = output;
        t.outputs = outputs
            .iter()
            .map(|(name, approved)| ExpectedOutput {
                name: (*name).into(),
                approved_sha256: (*approved).into(),
                variants: vec![],
                ignore: false,
            })
            .collect();
        t
    }

    async fn run(t: &RegressionTest, sample: &Path, dir: &Path) -> Ran {
        run_test(
            t,
            Path::new("/bin/true"),
            sample,
            &dir.join("out"),
            &dir.join("err"),
            &limits(Duration::from_secs(20)),
        )
        .await
    }

    #[tokio::test]
    async fn standard_output_is_captured_capped_and_kept_beside_the_outputs() {
        let dir = tempfile::tempdir().expect("dir");
        let sample = dir.path().join("s.txt");
        std::fs::write(&sample, "abc\n").expect("sample");
        let t = kind_test(
            "tr a-z A-Z < {sample}",
            InputKind::File,
            OutputKind::Stdout,
            &[("stdout", &sha(b"ABC\n"))],
        );
        let ran = run(&t, &sample, dir.path()).await;
        assert_eq!(ran.result.outputs[0].produced, OutputProduced::Equal);

        let t = kind_test(
            "tr a-z A-Z < {sample}",
            InputKind::File,
            OutputKind::Report,
            &[("report.txt", &sha(b"other"))],
        );
        let ran = run(&t, &sample, dir.path()).await;
        assert_eq!(
            ran.result.outputs[0].produced,
            OutputProduced::Sha256 {
                sha256: sha(b"ABC\n")
            }
        );
        let kept = &ran.files["report.txt"];
        assert_eq!(
            std::fs::read(kept).expect("kept"),
            b"ABC\n",
            "uploaded from here"
        );
        assert!(!kept.starts_with(dir.path().join("out")));

        // Two MiB on standard output: past the 1 MiB kept, and the program
        // still finishes (its pipe is drained).
        let t = kind_test(
            "head -c 2097152 /dev/zero",
            InputKind::File,
            OutputKind::Stdout,
            &[("stdout", "x")],
        );
        let ran = run(&t, &sample, dir.path()).await;
        assert_eq!(ran.result.exit_code, 0);
        assert_eq!(
            ran.result.outputs[0].produced,
            OutputProduced::TooLarge {
                limit_bytes: 1 << 20
            }
        );
    }

    #[tokio::test]
    async fn a_null_test_looks_at_no_output() {
        let dir = tempfile::tempdir().expect("dir");
        let t = kind_test(
            "echo hi > x.txt; exit 3",
            InputKind::File,
            OutputKind::Null,
            &[],
        );
        let ran = run(&t, &dir.path().join("none"), dir.path()).await;
        assert_eq!(ran.result.exit_code, 3);
        assert!(ran.result.outputs.is_empty());
    }

    #[tokio::test]
    async fn every_file_of_the_pattern_is_an_output_named_from_the_sample() {
        let dir = tempfile::tempdir().expect("dir");
        let sample = dir.path().join("f00d.ts");
        std::fs::write(&sample, "x").expect("sample");
        let mut t = kind_test(
            "for s in 1 3; do echo $s > f00d_$s.srt; done; echo no > other.srt",
            InputKind::File,
            OutputKind::Cea708,
            &[("{base}_1.srt", &sha(b"1\n")), ("{base}_2.srt", "x")],
        );
        t.output_pattern = Some("{base}_*.srt".into());
        let ran = run(&t, &sample, dir.path()).await;
        let produced: Vec<(&str, &OutputProduced)> = ran
            .result
            .outputs
            .iter()
            .map(|o| (o.name.as_str(), &o.produced))
            .collect();
        assert_eq!(
            produced,
            [
                ("{base}_2.srt", &OutputProduced::Missing),
                ("{base}_1.srt", &OutputProduced::Equal),
                (
                    "{base}_3.srt",
                    &OutputProduced::Sha256 {
                        sha256: sha(b"3\n")
                    }
                ),
            ]
        );
        assert!(ran.files.contains_key("{base}_3.srt"));
    }

    #[tokio::test]
    async fn what_the_program_sends_over_tcp_is_its_output() {
        let dir = tempfile::tempdir().expect("dir");
        let sample = dir.path().join("s.txt");
        std::fs::write(&sample, "over tcp\n").expect("sample");
        let script = dir.path().join("send.pl");
        std::fs::write(
            &script,
            "use IO::Socket::INET;\n\
             my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ARGV[0]) or die $!;\n\
             open(my $f, '<', $ARGV[1]) or die $!;\n\
             print $s $_ while <$f>;\n\
             close $s;\n",
        )
        .expect("script");
        let t = kind_test(
            &format!("perl {} {{port}} {{sample}}", script.display()),
            InputKind::File,
            OutputKind::Tcp,
            &[("stream.txt", &sha(b"over tcp\n"))],
        );
        let ran = run(&t, &sample, dir.path()).await;
        assert_eq!(ran.result.exit_code, 0, "{ran:?}");
        assert_eq!(ran.result.outputs[0].produced, OutputProduced::Equal);

        // A program that never connects wrote nothing.
        let t = kind_test(
            "true {port}",
            InputKind::File,
            OutputKind::Tcp,
            &[("s", "x")],
        );
        let ran = run(&t, &sample, dir.path()).await;
        assert_eq!(ran.result.outputs[0].produced, OutputProduced::Missing);
    }

    #[tokio::test]
    async fn a_udp_test_gets_its_sample_as_datagrams_once_it_listens() {
        let dir = tempfile::tempdir().expect("dir");
        let sample = dir.path().join("s.ts");
        let content: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&sample, &content).expect("sample");
        // Listens after a moment, then keeps each datagram until a second
        // of silence.
        let script = dir.path().join("listen.pl");
        std::fs::write(
            &script,
            "use IO::Socket::INET;\n\
             sleep 1;\n\
             my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ARGV[0], Proto => 'udp') or die $!;\n\
             open(my $o, '>', 'got.ts') or die $!;\n\
             binmode $o;\n\
             my $b;\n\
             local $SIG{ALRM} = sub { close $o; exit 0 };\n\
             while (1) { alarm 1; $s->recv($b, 65536); print $o $b; print STDERR length($b), \"\\n\"; }\n",
        )
        .expect("script");
        let t = kind_test(
            &format!("perl {} {{port}}", script.display()),
            InputKind::Udp,
            OutputKind::File,
            &[("got.ts", &sha(&content))],
        );
        let ran = run(&t, &sample, dir.path()).await;
        assert_eq!(ran.result.input_error, None);
        assert_eq!(ran.result.outputs[0].produced, OutputProduced::Equal);
        let sizes = std::fs::read_to_string(dir.path().join("err")).expect("stderr");
        assert_eq!(
            sizes.lines().collect::<Vec<_>>(),
            ["1316", "1316", "1316", "1052"],
            "datagrams of seven packets"
        );

        // A program that never listens is killed, and the reason said.
        let t = kind_test("sleep 30 # {port}", InputKind::Udp, OutputKind::Null, &[]);
        let mut quick = limits(Duration::from_secs(20));
        quick.listen_wait = Duration::from_millis(300);
        let started = Instant::now();
        let ran = run_test(
            &t,
            Path::new("/bin/true"),
            &sample,
            &dir.path().join("out2"),
            &dir.path().join("err2"),
            &quick,
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(10));
        let reason = ran.result.input_error.expect("a reason");
        assert!(
            reason.starts_with("nothing listened on UDP port"),
            "{reason}"
        );
    }

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
            output: Default::default(),
            output_pattern: None,
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
            &limits(Duration::from_secs(10)),
        )
        .await
        .result;
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
            &limits(Duration::from_secs(10)),
        )
        .await
        .result;
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
            &limits(Duration::from_secs(10)),
        )
        .await
        .result;
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
            &limits(Duration::from_millis(300)),
        )
        .await
        .result;
        assert!(r.timed_out);
        assert_eq!(r.exit_code, -1);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(r.outputs[0].produced, OutputProduced::Missing);
    }

    #[test]
    fn placeholders_are_quoted_paths() {
        let line = command_line(
            "{exe} -i {sample} -o {outdir}/{base}.srt -p {port}",
            Path::new("/a b/exe"),
            Path::new("/s'q.ts"),
            Path::new("/o"),
            Some(4000),
        );
        assert_eq!(
            line,
            "'/a b/exe' -i '/s'\\''q.ts' -o '/o'/'s'\\''q'.srt -p '4000'"
        );
    }
}

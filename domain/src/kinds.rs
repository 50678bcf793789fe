//! The kinds of regression test: how the sample reaches the program under
//! test (a file, standard input, UDP datagrams) and where its output is read
//! from (named files, standard output, a report, nothing, one file per
//! service or program, a TCP connection). The runner does what a kind says;
//! the verdict rules and the catalogue's checks are here.

use serde::{Deserialize, Serialize};

/// How the sample reaches the program under test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// Its path, where the command line says `{sample}`.
    #[default]
    File,
    /// On standard input.
    Stdin,
    /// As UDP datagrams of [`UDP_DATAGRAM_BYTES`] to `127.0.0.1:{port}`,
    /// once the program listens there.
    Udp,
}

impl InputKind {
    pub const ALL: [InputKind; 3] = [InputKind::File, InputKind::Stdin, InputKind::Udp];

    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::File => "file",
            InputKind::Stdin => "stdin",
            InputKind::Udp => "udp",
        }
    }

    pub fn parse(s: &str) -> Option<InputKind> {
        InputKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of this name, or why there is none: `"x" is none of …`.
    pub fn named(name: &str) -> Result<InputKind, String> {
        InputKind::parse(name).ok_or_else(|| none_of(name, InputKind::ALL.map(InputKind::as_str)))
    }
}

fn none_of<const N: usize>(name: &str, known: [&str; N]) -> String {
    format!("{name:?} is none of {}", known.join(", "))
}

/// Seven MPEG-TS packets: what fits one datagram on an Ethernet MTU, as
/// broadcast equipment sends a transport stream.
pub const UDP_DATAGRAM_BYTES: usize = 7 * 188;

/// Where a test's output is read from, and how it is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// The named files the command writes (in `{outdir}`, its working
    /// directory).
    #[default]
    File,
    /// Standard output, captured to a file and compared as the test's one
    /// output.
    Stdout,
    /// A report the program prints on standard output: captured and compared
    /// the same way, named as a report.
    Report,
    /// No output is expected: the exit code is the verdict, and whatever the
    /// program writes is not looked at.
    Null,
    /// One file per CEA-708 service: every file matching the test's output
    /// pattern is an output; one expected and not written, or written and
    /// not expected, is named in the verdict.
    Cea708,
    /// One file per program of a multi-program stream, compared likewise.
    Multiprogram,
    /// What the program sends to a TCP server the runner runs on
    /// `127.0.0.1:{port}`, captured and compared as the test's one output.
    Tcp,
}

impl OutputKind {
    pub const ALL: [OutputKind; 7] = [
        OutputKind::File,
        OutputKind::Stdout,
        OutputKind::Report,
        OutputKind::Null,
        OutputKind::Cea708,
        OutputKind::Multiprogram,
        OutputKind::Tcp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::File => "file",
            OutputKind::Stdout => "stdout",
            OutputKind::Report => "report",
            OutputKind::Null => "null",
            OutputKind::Cea708 => "cea708",
            OutputKind::Multiprogram => "multiprogram",
            OutputKind::Tcp => "tcp",
        }
    }

    pub fn parse(s: &str) -> Option<OutputKind> {
        OutputKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of this name, or why there is none: `"x" is none of …`.
    pub fn named(name: &str) -> Result<OutputKind, String> {
        OutputKind::parse(name)
            .ok_or_else(|| none_of(name, OutputKind::ALL.map(OutputKind::as_str)))
    }

    pub fn is_file(&self) -> bool {
        *self == OutputKind::File
    }

    /// Captured by the runner (standard output or a socket) rather than
    /// written by the program as a file: the test has exactly one output.
    pub fn is_captured(self) -> bool {
        matches!(
            self,
            OutputKind::Stdout | OutputKind::Report | OutputKind::Tcp
        )
    }

    /// Outputs found by the test's pattern, as many as the program writes.
    pub fn is_multi_file(self) -> bool {
        matches!(self, OutputKind::Cea708 | OutputKind::Multiprogram)
    }
}

/// What a test of these kinds must look like, in words when it does not:
/// the catalogue refuses such a test.
pub fn check(
    input: InputKind,
    output: OutputKind,
    command: &str,
    pattern: Option<&str>,
    outputs: usize,
) -> Result<(), String> {
    let uses_port = command.contains("{port}");
    match (input, output) {
        (InputKind::Udp, OutputKind::Tcp) => {
            return Err(
                "UDP input and TCP output would both need {port}: a test has one port".into(),
            );
        }
        (InputKind::Udp, _) | (_, OutputKind::Tcp) if !uses_port => {
            return Err(format!(
                "{} needs {{port}} in the command line: the runner puts the port there",
                if input == InputKind::Udp {
                    "UDP input"
                } else {
                    "TCP output"
                }
            ));
        }
        _ => {}
    }
    if output == OutputKind::Null && outputs > 0 {
        return Err("a test with output kind null expects no output: list none".into());
    }
    if output.is_captured() && outputs != 1 {
        return Err(format!(
            "a test with output kind {} compares one output (what is captured): list exactly one",
            output.as_str()
        ));
    }
    match (output.is_multi_file(), pattern) {
        (true, None) => Err(format!(
            "a test with output kind {} needs output_pattern, e.g. \"{{base}}_*.srt\"",
            output.as_str()
        )),
        (true, Some(p)) if !p.contains('*') || p.contains('/') || p.contains('\\') => Err(format!(
            "output_pattern {p:?}: a file name with * where names differ (no directories)"
        )),
        (false, Some(_)) => Err(format!(
            "output_pattern is for output kinds cea708 and multiprogram, not {}",
            output.as_str()
        )),
        _ => Ok(()),
    }
}

/// `pattern` with `{base}` (the sample's file name without its extension,
/// as the program sees it) filled in.
pub fn pattern_for(pattern: &str, base: &str) -> String {
    pattern.replace("{base}", base)
}

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters (none included) and everything else for itself.
pub fn matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A produced file's name as its output is named in the catalogue: with the
/// sample's base name written `{base}`, so that expected outputs do not
/// depend on where a runner keeps the sample.
pub fn output_name(file_name: &str, base: &str) -> String {
    match file_name.strip_prefix(base) {
        Some(rest) if !base.is_empty() => format!("{{base}}{rest}"),
        _ => file_name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for k in InputKind::ALL {
            assert_eq!(InputKind::parse(k.as_str()), Some(k));
        }
        for k in OutputKind::ALL {
            assert_eq!(OutputKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(OutputKind::parse("files"), None);
        assert_eq!(
            InputKind::named("tcp"),
            Err("\"tcp\" is none of file, stdin, udp".to_string())
        );
    }

    #[test]
    fn patterns_match_with_stars() {
        assert!(matches("abc_*.srt", "abc_1.srt"));
        assert!(matches("abc_*.srt", "abc_.srt"));
        assert!(!matches("abc_*.srt", "abc_1.txt"));
        assert!(!matches("abc_*.srt", "xabc_1.srt"));
        assert!(matches("*_p*.ts", "x_p12.ts"));
        assert!(matches("a*a", "aa"));
        assert!(!matches("a*a", "a"));
        assert!(matches("exact", "exact"));
        assert!(!matches("exact", "exactly"));
        assert_eq!(pattern_for("{base}_*.srt", "f00d"), "f00d_*.srt");
        assert_eq!(output_name("f00d_2.srt", "f00d"), "{base}_2.srt");
        assert_eq!(output_name("other.srt", "f00d"), "other.srt");
    }

    #[test]
    fn each_kind_says_what_it_needs() {
        let ok = |i, o, c, p, n| check(i, o, c, p, n);
        assert!(ok(InputKind::File, OutputKind::File, "{exe}", None, 2).is_ok());
        assert!(
            ok(
                InputKind::Udp,
                OutputKind::Stdout,
                "{exe} -udp {port}",
                None,
                1
            )
            .is_ok()
        );
        let udp = ok(InputKind::Udp, OutputKind::File, "{exe}", None, 1).unwrap_err();
        assert!(udp.contains("{port}"), "{udp}");
        let tcp = ok(InputKind::File, OutputKind::Tcp, "{exe}", None, 1).unwrap_err();
        assert!(tcp.contains("TCP output needs {port}"), "{tcp}");
        let both = ok(InputKind::Udp, OutputKind::Tcp, "{port}", None, 1).unwrap_err();
        assert!(both.contains("one port"), "{both}");
        let null = ok(InputKind::File, OutputKind::Null, "{exe}", None, 1).unwrap_err();
        assert!(null.contains("list none"), "{null}");
        let stdout = ok(InputKind::File, OutputKind::Stdout, "{exe}", None, 2).unwrap_err();
        assert!(stdout.contains("exactly one"), "{stdout}");
        let pattern = ok(InputKind::File, OutputKind::Cea708, "{exe}", None, 2).unwrap_err();
        assert!(pattern.contains("needs output_pattern"), "{pattern}");
        let dirs = ok(InputKind::File, OutputKind::Cea708, "x", Some("a/*.srt"), 2).unwrap_err();
        assert!(dirs.contains("no directories"), "{dirs}");
        let stray = ok(InputKind::File, OutputKind::File, "x", Some("*.srt"), 1).unwrap_err();
        assert!(stray.contains("not file"), "{stray}");
        assert!(
            ok(
                InputKind::Stdin,
                OutputKind::Multiprogram,
                "x",
                Some("{base}_*.ts"),
                0
            )
            .is_ok()
        );
    }
}

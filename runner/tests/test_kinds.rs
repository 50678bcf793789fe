//! One regression test of every input and output kind (the catalogue of
//! `tests/data/kinds`), end to end on both backends with the real runner on
//! real pipes and sockets: all pass on a good build, and on a broken build
//! each fails with its own reason in words, and a diff where the output is
//! text.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sp_tests::{Backend, TestPlatform, demo_runner, eventually, test_data};

const RUNNER: &str = env!("CARGO_BIN_EXE_sample-runner");
const GOOD: char = 'a';
const BROKEN: char = 'b';

/// The program as two builds, by commit: `program.pl` and a copy with
/// `$broken = 1`.
fn builds(dir: &std::path::Path) -> String {
    let program = std::fs::read_to_string(test_data("kinds/program.pl")).expect("program");
    let broken = program.replace("my $broken = 0;", "my $broken = 1;");
    assert_ne!(broken, program, "the program has the switch");
    for (commit, text) in [(GOOD, &program), (BROKEN, &broken)] {
        let name = dir.join(format!("{}.pl", commit.to_string().repeat(40)));
        std::fs::write(name, text).expect("a build");
    }
    format!("file://{}/{{commit}}.pl", dir.display())
}

/// Each test's mismatches, once the results model has all eight.
async fn results(p: &TestPlatform, run: &str) -> BTreeMap<String, Value> {
    eventually("the results model has every test", || async {
        let r = p
            .query(
                "query($id: ID!) { results(runId: $id) { testId passed mismatches } }",
                json!({ "id": run }),
            )
            .await;
        let results = r["results"].as_array().cloned().unwrap_or_default();
        (results.len() == 8).then(|| {
            results
                .iter()
                .map(|r| (r["testId"].as_str().unwrap_or("").to_string(), r.clone()))
                .collect()
        })
    })
    .await
}

fn kinds(mismatches: &Value) -> Vec<String> {
    mismatches
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let kind = m["kind"].as_str().unwrap_or("?");
            match m["output"].as_str() {
                Some(output) => format!("{kind} {output}"),
                None => kind.to_string(),
            }
        })
        .collect()
}

async fn every_kind_runs_and_each_failure_says_why(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let source = builds(dir.path());
    let p = TestPlatform::start_with(backend, move |s| {
        let mut s = demo_runner(RUNNER)(s);
        s.catalogue = Some(test_data("kinds/catalogue.toml"));
        s.artifact_source = source;
        s
    })
    .await;

    let good = p.push("kinds-good", GOOD).await;
    let trail = p.until(&good, "Completed").await;
    let completed = &trail
        .iter()
        .find(|(t, _)| t == "Completed")
        .expect("done")
        .1;
    let passed = results(&p, &good).await;
    let failing: Vec<(&String, &Value)> =
        passed.iter().filter(|(_, r)| r["passed"] != true).collect();
    assert!(failing.is_empty(), "every kind passes: {failing:?}");
    assert_eq!(completed["verdict"], "pass", "{completed}");

    let broken = p.push("kinds-broken", BROKEN).await;
    p.until(&broken, "Completed").await;
    let failed = results(&p, &broken).await;
    let said: BTreeMap<&str, Vec<String>> = failed
        .iter()
        .map(|(id, r)| (id.as_str(), kinds(&r["mismatches"])))
        .collect();
    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("file-in-file-out", vec!["output_differs upper.txt"]),
        ("stdin-in-stdout-out", vec!["output_differs stdout"]),
        (
            "udp-in",
            vec![
                "input_not_delivered",
                "exit_code",
                "output_missing upper.txt",
            ],
        ),
        ("report-out", vec!["output_differs report.txt"]),
        ("null-out", vec!["exit_code"]),
        (
            "cea708-out",
            vec![
                "output_differs {base}_1.srt",
                "output_missing {base}_2.srt",
                "output_extra {base}_3.srt",
            ],
        ),
        (
            "multiprogram-out",
            vec![
                "output_differs {base}_p1.ts",
                "output_missing {base}_p2.ts",
                "output_extra {base}_p3.ts",
            ],
        ),
        ("tcp-out", vec!["output_missing stream.txt"]),
    ]);
    let expected: BTreeMap<&str, Vec<String>> = expected
        .into_iter()
        .map(|(id, k)| (id, k.into_iter().map(String::from).collect()))
        .collect();
    assert_eq!(said, expected, "{failed:?}");
    let udp = &failed["udp-in"]["mismatches"][0]["reason"];
    assert!(
        udp.as_str()
            .is_some_and(|r| r.contains("exited") && r.contains("without listening")),
        "{udp}"
    );

    // Text outputs, captured or written, have their diff.
    for (test, output, old, new) in [
        (
            "stdin-in-stdout-out",
            "stdout",
            "HELLO WORLD",
            "HELL0 W0RLD",
        ),
        ("report-out", "report.txt", "words: 4", "words: 5"),
        ("cea708-out", "{base}_1.srt", "HELLO WORLD", "HELL0 W0RLD"),
    ] {
        let diff = p
            .query(
                "query($run: ID!, $test: String!, $output: String!) { outputDiff(runId: $run, testId: $test, output: $output) { lines { kind text } note } }",
                json!({ "run": broken, "test": test, "output": output }),
            )
            .await;
        let lines = diff["outputDiff"]["lines"].to_string();
        assert!(
            lines.contains(old) && lines.contains(new),
            "{test} {output}: {diff}"
        );
    }
}

sp_tests::on_both_backends!(every_kind_runs_and_each_failure_says_why);

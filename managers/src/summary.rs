//! The Markdown of a pull request's summary comment: per platform the
//! verdict, the count of tests in each class against the run it is compared
//! with, the names of the tests that broke, fail differently or were fixed
//! (linked to the run page), and the reference used. Pure: rows in, text out.

use std::fmt::Write as _;

use sp_domain::comparison::Class;
use sp_projections::queries::ComparisonRow;
use sp_projections::{RunOutcome, RunRow};

/// The hidden line the platform finds its own comment by.
pub const MARKER: &str = "<!-- sample-platform:pull-request-summary -->";

/// Names listed per class and platform; the rest are counted.
const NAMES: usize = 20;

/// GitHub refuses a comment longer than this.
pub const MAX_BODY: usize = 65_536;

/// One platform's run of the head, with its comparison once it completed.
#[derive(Debug, Clone)]
pub struct PlatformRun {
    pub run: RunRow,
    pub comparison: Option<ComparisonRow>,
    /// Each test's class, most urgent first (from the comparison).
    pub tests: Vec<(String, Class)>,
}

/// The classes a table column is given to, in order.
const COLUMNS: [Class; 6] = [
    Class::Broken,
    Class::FailingDifferently,
    Class::Fixed,
    Class::FailingIdentically,
    Class::New,
    Class::UnchangedPass,
];

/// The classes whose tests are named.
const NAMED: [Class; 3] = [Class::Broken, Class::FailingDifferently, Class::Fixed];

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// A test id as inline code (ids are letters, digits, dots, dashes and
/// underscores: nothing Markdown or a URL fragment would read otherwise).
fn code(id: &str) -> String {
    format!("`{id}`")
}

fn verdict_cell(run: &RunRow) -> String {
    let (passed, failed) = (run.passed.unwrap_or(0), run.failed.unwrap_or(0));
    match run.outcome() {
        RunOutcome::Pass => format!("**pass** ({passed} tests)"),
        RunOutcome::Fail => format!("**fail** ({failed} of {} failed)", passed + failed),
        RunOutcome::Error => format!(
            "**error**: not tested ({})",
            run.final_reason
                .as_deref()
                .unwrap_or("no reason recorded")
                .replace('|', "\\|")
                .replace('\n', " ")
        ),
        RunOutcome::Cancelled => "cancelled".to_string(),
        RunOutcome::Superseded => "superseded".to_string(),
        RunOutcome::Queued | RunOutcome::Running => "not finished".to_string(),
    }
}

/// What one platform's run changed: the reference it was compared with and
/// the tests broken, failing differently and fixed, by name (empty for a
/// run without a comparison). `base` is the dashboard's address.
pub fn platform_section(r: &PlatformRun, base: &str) -> String {
    let run_url = |id: &str| format!("{base}/runs/{id}");
    let Some(comparison) = &r.comparison else {
        return String::new();
    };
    let mut out = String::new();
    let _ = writeln!(out);
    match (&comparison.reference_run, &comparison.reference_commit) {
        (Some(reference), Some(_)) => {
            let _ = writeln!(
                out,
                "**{}** compared with {} ([run]({})).",
                r.run.platform,
                comparison.reference_note,
                run_url(reference)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "**{}**: no reference, so nothing can be said about what changed ({}).",
                r.run.platform, comparison.reference_note
            );
        }
    }
    let run_id = r.run.run_id.to_string();
    for class in NAMED {
        let names: Vec<&str> = r
            .tests
            .iter()
            .filter(|(_, c)| *c == class)
            .map(|(id, _)| id.as_str())
            .collect();
        if names.is_empty() {
            continue;
        }
        let mut line: Vec<String> = names
            .iter()
            .take(NAMES)
            .map(|id| format!("[{}]({}#test-{id})", code(id), run_url(&run_id)))
            .collect();
        if names.len() > NAMES {
            line.push(format!("and {} more", names.len() - NAMES));
        }
        let label = class.label();
        let mut chars = label.chars();
        let label: String = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        };
        let _ = writeln!(out, "- {label}: {}", line.join(", "));
    }
    out
}

/// The comment for a pull request's head: `public_url` is the dashboard.
pub fn render(head_sha: &str, runs: &[PlatformRun], public_url: &str) -> String {
    let base = public_url.trim_end_matches('/');
    let run_url = |id: &str| format!("{base}/runs/{id}");
    let count = |class: Class| -> usize {
        runs.iter()
            .flat_map(|r| r.tests.iter())
            .filter(|(_, c)| *c == class)
            .count()
    };
    let errors = runs
        .iter()
        .filter(|r| r.run.outcome() == RunOutcome::Error)
        .count();
    let mut headline: Vec<String> = Vec::new();
    for (class, n) in [
        (Class::Broken, count(Class::Broken)),
        (Class::FailingDifferently, count(Class::FailingDifferently)),
        (Class::Fixed, count(Class::Fixed)),
    ] {
        if n > 0 {
            headline.push(format!("{n} {}", class.label()));
        }
    }
    if errors > 0 {
        headline.push(format!("{errors} platform(s) not tested"));
    }
    let unreferenced = runs
        .iter()
        .filter(|r| {
            r.comparison
                .as_ref()
                .is_some_and(|c| c.reference_run.is_none())
        })
        .count();
    if unreferenced > 0 {
        headline.push(format!(
            "{unreferenced} platform(s) with no earlier run to compare with"
        ));
    }
    if headline.is_empty() {
        headline.push("nothing broken".to_string());
    }

    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}");
    let _ = writeln!(out, "### Sample Platform: {}", headline.join(", "));
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Regression tests of `{}`, each compared with an earlier run of the same platform.",
        short(head_sha)
    );
    let _ = writeln!(out);
    let _ = write!(out, "| Platform | Verdict |");
    for class in COLUMNS {
        let _ = write!(out, " {} |", class.label());
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "|---|---|{}", "---:|".repeat(COLUMNS.len()));
    for r in runs {
        let _ = write!(
            out,
            "| [{}]({}) | {} |",
            r.run.platform,
            run_url(&r.run.run_id.to_string()),
            verdict_cell(&r.run)
        );
        for class in COLUMNS {
            // Without a reference run nothing is counted: a 0 would read
            // as "nothing broken".
            let compared = r
                .comparison
                .as_ref()
                .is_some_and(|c| c.reference_run.is_some());
            if compared {
                let n = r.tests.iter().filter(|(_, c)| *c == class).count();
                let _ = write!(out, " {n} |");
            } else {
                let _ = write!(out, " – |");
            }
        }
        let _ = writeln!(out);
    }
    for r in runs {
        out.push_str(&platform_section(r, base));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "<sub>One comment per pull request, edited as new commits are tested. [Dashboard]({base}/?pullRequest={})</sub>",
        runs.first()
            .and_then(|r| r.run.pull_request)
            .map(|n| n.to_string())
            .unwrap_or_default()
    );
    if out.len() > MAX_BODY {
        let mut cut = MAX_BODY - 100;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n\n… (cut: see the dashboard for the rest)\n");
    }
    out
}

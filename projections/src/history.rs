//! A regression test's history across runs and platforms, and what it says:
//! where the test last passed, where it broke after that, and the commits it
//! both passed and failed on (flaky).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sp_eventstore::Pool;

use sp_eventstore::on_pool;

/// One run's outcome of one regression test, with the run's commit.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct HistoryRow {
    pub run_id: String,
    pub platform: String,
    pub repository: String,
    pub commit_sha: String,
    pub queued_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub passed: bool,
    pub attempt: i32,
    /// The test's definition the result was judged by.
    pub definition: String,
}

/// A regression test's outcomes, newest run first.
pub async fn rows(pool: &Pool, test_id: &str, limit: i64) -> Result<Vec<HistoryRow>, sqlx::Error> {
    let sql = "SELECT r.run_id, r.platform, r.repository, r.commit_sha, r.queued_at, r.finished_at,
                      s.passed, s.attempt, s.definition
               FROM sample_results s JOIN runs r ON r.run_id = s.run_id
               WHERE s.test_id = $1
               ORDER BY r.seq DESC LIMIT $2";
    Ok(
        on_pool!(pool, p => sqlx::query_as::<_, HistoryRow>(sql).bind(test_id).bind(limit).fetch_all(p).await?),
    )
}

/// Per platform, where a test last passed and where it broke after that.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlatformHistory {
    pub platform: String,
    /// The newest run where the test passed.
    pub last_passed: Option<HistoryRow>,
    /// The oldest failing run after that: where it broke.
    pub first_failed: Option<HistoryRow>,
    /// GitHub's comparison of the two commits.
    pub compare_url: Option<String>,
}

/// A commit a test both passed and failed on, on one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlakyCommit {
    pub platform: String,
    pub commit_sha: String,
    pub passed: u32,
    pub failed: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestHistory {
    /// Newest first.
    pub entries: Vec<HistoryRow>,
    pub platforms: Vec<PlatformHistory>,
    pub flaky: Vec<FlakyCommit>,
}

/// The newest `limit` outcomes of a test, and what they say.
pub async fn test_history(
    pool: &Pool,
    test_id: &str,
    limit: i64,
) -> Result<TestHistory, sqlx::Error> {
    let entries = rows(pool, test_id, limit).await?;
    let (platforms, flaky) = summarise(&entries);
    Ok(TestHistory {
        entries,
        platforms,
        flaky,
    })
}

/// Per platform, where the test last passed and where it broke after that;
/// and the commits it both passed and failed on. `rows` are newest first.
pub fn summarise(rows: &[HistoryRow]) -> (Vec<PlatformHistory>, Vec<FlakyCommit>) {
    let mut by_platform: BTreeMap<&str, Vec<&HistoryRow>> = BTreeMap::new();
    // Flaky: one commit judged by one definition of the test, both ways. A
    // result judged after an output was accepted is judged by another
    // definition, so an acceptance and a rerun are not flaky.
    let mut by_definition: BTreeMap<(&str, &str, &str), (u32, u32)> = BTreeMap::new();
    for r in rows {
        by_platform.entry(&r.platform).or_default().push(r);
        let counts = by_definition
            .entry((&r.platform, &r.commit_sha, &r.definition))
            .or_default();
        if r.passed {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    let platforms = by_platform
        .into_iter()
        .map(|(platform, newest_first)| {
            let passed_at = newest_first.iter().position(|r| r.passed);
            let last_passed = passed_at.map(|i| newest_first[i]);
            // Newer than the last pass (all of them without one), the oldest failure.
            let newer = &newest_first[..passed_at.unwrap_or(newest_first.len())];
            let first_failed = newer.iter().rev().find(|r| !r.passed).copied();
            let compare_url = match (last_passed, first_failed) {
                (Some(p), Some(f)) if p.commit_sha != f.commit_sha => Some(format!(
                    "https://github.com/{}/compare/{}...{}",
                    f.repository, p.commit_sha, f.commit_sha
                )),
                _ => None,
            };
            PlatformHistory {
                platform: platform.to_string(),
                last_passed: last_passed.cloned(),
                first_failed: first_failed.cloned(),
                compare_url,
            }
        })
        .collect();
    let mut by_commit: BTreeMap<(&str, &str), (u32, u32)> = BTreeMap::new();
    for ((platform, commit, _), (passed, failed)) in by_definition {
        if passed > 0 && failed > 0 {
            let counts = by_commit.entry((platform, commit)).or_default();
            counts.0 += passed;
            counts.1 += failed;
        }
    }
    let flaky = by_commit
        .into_iter()
        .map(|((platform, commit), (passed, failed))| FlakyCommit {
            platform: platform.to_string(),
            commit_sha: commit.to_string(),
            passed,
            failed,
        })
        .collect();
    (platforms, flaky)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(platform: &str, commit: &str, passed: bool) -> HistoryRow {
        judged_by(platform, commit, passed, "d1")
    }

    fn judged_by(platform: &str, commit: &str, passed: bool, definition: &str) -> HistoryRow {
        HistoryRow {
            run_id: format!("{platform}-{commit}-{passed}"),
            platform: platform.into(),
            repository: "o/r".into(),
            commit_sha: commit.into(),
            queued_at: DateTime::from_timestamp(0, 0).unwrap_or_default(),
            finished_at: None,
            passed,
            attempt: 1,
            definition: definition.into(),
        }
    }

    #[test]
    fn the_break_is_the_oldest_failure_after_the_last_pass() {
        // Newest first: c4 fails, c3 fails, c2 passes, c1 fails.
        let rows = vec![
            row("linux", "c4", false),
            row("linux", "c3", false),
            row("linux", "c2", true),
            row("linux", "c1", false),
            row("windows", "c4", true),
        ];
        let (platforms, flaky) = summarise(&rows);
        let linux = &platforms[0];
        assert_eq!(
            linux.last_passed.as_ref().map(|e| e.commit_sha.as_str()),
            Some("c2")
        );
        assert_eq!(
            linux.first_failed.as_ref().map(|e| e.commit_sha.as_str()),
            Some("c3")
        );
        assert_eq!(
            linux.compare_url.as_deref(),
            Some("https://github.com/o/r/compare/c2...c3")
        );
        assert!(platforms[1].first_failed.is_none());
        assert!(flaky.is_empty());
    }

    #[test]
    fn a_commit_that_passed_and_failed_is_flaky() {
        let rows = vec![row("linux", "c1", false), row("linux", "c1", true)];
        let (_, flaky) = summarise(&rows);
        assert_eq!(flaky.len(), 1);
        assert_eq!((flaky[0].passed, flaky[0].failed), (1, 1));
    }

    #[test]
    fn a_pass_after_an_accepted_output_is_not_flaky() {
        // Newest first: the rerun after the acceptance passes, judged by the
        // test with the accepted output; the first run failed by the old one.
        let rows = vec![
            judged_by("linux", "c1", true, "accepted"),
            judged_by("linux", "c1", false, "before"),
        ];
        let (_, flaky) = summarise(&rows);
        assert!(flaky.is_empty(), "{flaky:?}");
    }
}

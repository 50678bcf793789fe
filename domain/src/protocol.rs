//! What the platform and a runner say to each other over HTTP (JSON): the job
//! a runner fetches, and the reports it sends back.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ids::RunId;
use crate::run::RunnerStage;
use crate::verdict::{RegressionTest, TestResult};

/// The name a runner uploads a test's standard error under (when it is not
/// empty), so the dashboard can put it next to the failure: the platform
/// accepts letters, digits and `._-` in a file name. An id that had to be
/// changed to fit gets a short hash of itself, so two ids never share a file.
pub fn stderr_file_name(test_id: &str) -> String {
    let fits = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if test_id.len() <= 56 && !test_id.starts_with('.') && test_id.chars().all(fits) {
        return format!("{test_id}.stderr");
    }
    let clean: String = test_id
        .chars()
        .map(|c| if fits(c) { c } else { '_' })
        .take(47)
        .collect();
    let hash: String = Sha256::digest(test_id.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{hash}.stderr", clean.trim_start_matches('.'))
}

/// `GET /runner/v1/runs/{run}/job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub run_id: RunId,
    pub attempt: u32,
    pub platform: String,
    pub commit_sha: String,
    /// The build to test; `None` when the runner's machine has the program.
    pub artifact: Option<JobArtifact>,
    pub tests: Vec<JobTest>,
    /// A test running longer is killed (its whole process tree) and fails.
    pub per_test_timeout_secs: u64,
    /// Report at least this often, even while one test runs long.
    pub heartbeat_secs: u64,
    pub reports_url: String,
    pub logs_url: String,
    /// Where to upload outputs that are not the approved ones (`PUT
    /// {outputs_url}/{sha256}`), so they can be compared and accepted.
    #[serde(default)]
    pub outputs_url: Option<String>,
    /// Captured output (standard output, TCP) past this many bytes is not
    /// kept: the output is reported too large.
    #[serde(default = "default_max_captured_bytes")]
    pub max_captured_bytes: u64,
    /// The pace of a UDP test's datagrams.
    #[serde(default = "default_udp_datagrams_per_second")]
    pub udp_datagrams_per_second: u32,
}

pub const DEFAULT_MAX_CAPTURED_BYTES: u64 = 256 * 1024 * 1024;
/// About 21 Mbit/s of transport stream: a broadcast's pace, with room.
pub const DEFAULT_UDP_DATAGRAMS_PER_SECOND: u32 = 2000;

fn default_max_captured_bytes() -> u64 {
    DEFAULT_MAX_CAPTURED_BYTES
}

fn default_udp_datagrams_per_second() -> u32 {
    DEFAULT_UDP_DATAGRAMS_PER_SECOND
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobArtifact {
    pub url: String,
    pub sha256: String,
    pub size_bytes: u64,
    /// The program under test inside a zip artifact; `None`: the artifact is
    /// the program itself.
    #[serde(default)]
    pub executable: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTest {
    pub test: RegressionTest,
    /// Where to download the sample (checked against its sha256).
    pub sample_url: String,
}

/// `POST /runner/v1/runs/{run}/reports`. A report sent again with the same
/// `client_id` is acknowledged and not recorded twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub client_id: Uuid,
    #[serde(flatten)]
    pub body: ReportBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReportBody {
    /// Where the runner is; also its heartbeat.
    Progress {
        stage: RunnerStage,
        #[serde(default)]
        message: String,
        done: u32,
        total: u32,
    },
    /// One regression test's outcome.
    Result { result: TestResult },
    /// Every test has run.
    Finish,
    /// The runner cannot go on (bad artifact, disk full).
    Failure { message: String, retryable: bool },
}

impl ReportBody {
    /// What the report is, in words, for the record of a refused one.
    pub fn describe(&self) -> String {
        match self {
            ReportBody::Progress { .. } => "a progress report".into(),
            ReportBody::Result { result } => format!("the result of {}", result.test_id),
            ReportBody::Finish => "the finish report".into(),
            ReportBody::Failure { .. } => "a failure report".into(),
        }
    }
}

/// The platform's answer to a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAck {
    /// `recorded`, `duplicate`, or `refused` (with the reason).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reports_read_as_the_runner_writes_them() {
        let r: Report = serde_json::from_value(json!({
            "client_id": "6f2d3a7e-0000-4000-8000-000000000001",
            "kind": "progress", "stage": "testing", "done": 1, "total": 3
        }))
        .expect("progress");
        assert!(matches!(
            r.body,
            ReportBody::Progress {
                done: 1,
                total: 3,
                ..
            }
        ));
        let r: Report = serde_json::from_value(json!({
            "client_id": "6f2d3a7e-0000-4000-8000-000000000002", "kind": "finish"
        }))
        .expect("finish");
        assert_eq!(r.body, ReportBody::Finish);
        assert!(serde_json::from_value::<Report>(json!({"kind": "finish"})).is_err());
    }
}

//! How long each stage may take, and how failed attempts are retried.
//!
//! Every deadline a run carries is computed from these values at the moment the
//! event is decided and then stored in the event, so replaying old events never
//! depends on today's configuration.

use std::collections::BTreeMap;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::ids::{Platform, RunId};
use crate::run::{DeadlineKind, ErrorClass};

/// Everything `decide` needs to know about limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub deadlines: DeadlinePolicy,
    pub retry: RetryPolicy,
}

/// The longest each stage may last before the run is timed out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadlinePolicy {
    /// Queued until the build artifact is fetched (builds take a while).
    #[serde(with = "secs")]
    pub artifact_wait: Duration,
    /// Artifact ready (or retry due) until a VM is requested: bounds a paused or
    /// saturated platform, so nothing waits in the queue forever.
    #[serde(with = "secs")]
    pub queue_wait: Duration,
    /// VM requested until the cloud confirms it exists.
    #[serde(with = "secs")]
    pub vm_create: Duration,
    /// VM created until the runner's first report, unless the platform has its own.
    #[serde(with = "secs")]
    pub boot: Duration,
    /// Boot limits per platform (Windows boots slower).
    #[serde(with = "secs_map")]
    pub boot_by_platform: BTreeMap<String, Duration>,
    /// Longest silence between two runner reports.
    #[serde(with = "secs")]
    pub heartbeat: Duration,
    /// Longest one attempt may run, from VM creation to the final report.
    #[serde(with = "secs")]
    pub whole_run: Duration,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        DeadlinePolicy {
            artifact_wait: Duration::minutes(60),
            queue_wait: Duration::hours(24),
            vm_create: Duration::minutes(5),
            boot: Duration::minutes(10),
            boot_by_platform: BTreeMap::from([("windows".to_string(), Duration::minutes(20))]),
            heartbeat: Duration::minutes(5),
            whole_run: Duration::minutes(120),
        }
    }
}

impl DeadlinePolicy {
    /// The configured limit for a kind of deadline on a platform.
    pub fn limit(&self, kind: DeadlineKind, platform: &Platform) -> Duration {
        match kind {
            DeadlineKind::ArtifactWait => self.artifact_wait,
            DeadlineKind::QueueWait => self.queue_wait,
            DeadlineKind::VmCreate => self.vm_create,
            DeadlineKind::Boot => self
                .boot_by_platform
                .get(platform.as_str())
                .copied()
                .unwrap_or(self.boot),
            DeadlineKind::Heartbeat => self.heartbeat,
            DeadlineKind::WholeRun => self.whole_run,
        }
    }
}

/// Retries of failed attempts: exponential backoff with jitter, up to a maximum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay after the first failed attempt, before jitter.
    #[serde(with = "secs")]
    pub base_delay: Duration,
    /// Delay after the first quota failure: quota frees up slowly.
    #[serde(with = "secs")]
    pub quota_base_delay: Duration,
    /// The delay doubles per attempt up to this.
    #[serde(with = "secs")]
    pub max_delay: Duration,
    /// Failed deletions of one VM before it is left to a person
    /// (`VmAbandoned`); a permanent failure leaves it at once.
    pub vm_delete_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::seconds(30),
            quota_base_delay: Duration::minutes(5),
            max_delay: Duration::minutes(15),
            vm_delete_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// How long to wait after `failed_attempt` (1-based) failed with `class`.
    ///
    /// Jitter spreads retries of many runs that failed together ("equal jitter":
    /// between half and all of the exponential delay). It is derived from the run
    /// and attempt instead of a random source so that `decide` stays a pure
    /// function and a replayed decision gives the same time.
    pub fn backoff(&self, run: RunId, failed_attempt: u32, class: ErrorClass) -> Duration {
        let base = match class {
            ErrorClass::Quota => self.quota_base_delay,
            ErrorClass::Retryable | ErrorClass::Permanent => self.base_delay,
        };
        let exponent = failed_attempt.saturating_sub(1).min(20);
        let full = base
            .checked_mul(1i32 << exponent)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
            .max(Duration::zero());
        let half = full / 2;
        let fraction = jitter_fraction(run, failed_attempt);
        let extra_ms = (half.num_milliseconds() as f64 * fraction) as i64;
        half + Duration::milliseconds(extra_ms)
    }

    /// Whether another attempt may follow `attempt`.
    pub fn allows_another(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }
}

/// A number in [0, 1) that is a pure function of the run and attempt (splitmix64).
fn jitter_fraction(run: RunId, attempt: u32) -> f64 {
    let (hi, lo) = run.0.as_u64_pair();
    let mut z = hi ^ lo.rotate_left(17) ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Durations in configuration files are whole seconds.
mod secs {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = u32::deserialize(d)?;
        Ok(Duration::seconds(i64::from(secs)))
    }
}

mod secs_map {
    use std::collections::BTreeMap;

    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<String, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, v)| (k, v.num_seconds())))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        let raw = BTreeMap::<String, u32>::deserialize(d)?;
        Ok(raw
            .into_iter()
            .map(|(k, v)| (k, Duration::seconds(i64::from(v))))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        let run = RunId::derived("r");
        let d1 = p.backoff(run, 1, ErrorClass::Retryable);
        let d2 = p.backoff(run, 2, ErrorClass::Retryable);
        assert!(
            d1 >= Duration::seconds(15) && d1 <= Duration::seconds(30),
            "{d1}"
        );
        assert!(
            d2 >= Duration::seconds(30) && d2 <= Duration::seconds(60),
            "{d2}"
        );
        let d_far = p.backoff(run, 40, ErrorClass::Retryable);
        assert!(d_far <= p.max_delay && d_far >= p.max_delay / 2, "{d_far}");
        let q = p.backoff(run, 1, ErrorClass::Quota);
        assert!(q >= Duration::minutes(2), "quota waits longer: {q}");
    }

    #[test]
    fn jitter_differs_between_runs_but_not_between_replays() {
        let p = RetryPolicy::default();
        let a = p.backoff(RunId::derived("a"), 1, ErrorClass::Retryable);
        let b = p.backoff(RunId::derived("b"), 1, ErrorClass::Retryable);
        assert_ne!(a, b);
        assert_eq!(a, p.backoff(RunId::derived("a"), 1, ErrorClass::Retryable));
    }

    #[test]
    fn boot_limit_is_per_platform() {
        let d = DeadlinePolicy::default();
        let linux = Platform::new("linux").expect("valid");
        let windows = Platform::new("windows").expect("valid");
        assert_eq!(d.limit(DeadlineKind::Boot, &linux), Duration::minutes(10));
        assert_eq!(d.limit(DeadlineKind::Boot, &windows), Duration::minutes(20));
    }

    #[test]
    fn policy_reads_from_seconds() {
        let p: Policy =
            serde_json::from_str(r#"{"deadlines":{"heartbeat":60},"retry":{"max_attempts":5}}"#)
                .expect("parses");
        assert_eq!(p.deadlines.heartbeat, Duration::seconds(60));
        assert_eq!(p.deadlines.vm_create, Duration::minutes(5));
        assert_eq!(p.retry.max_attempts, 5);
    }
}

//! The one way the platform calls the outside world (a cloud, an artifact
//! host, GitHub): every call has a timeout, its failures are classified, and
//! retryable ones are retried with exponential backoff and jitter up to a
//! limit, on [`backon`]'s schedules like every retry of the platform. The
//! caller records the outcome as an event.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use sp_domain::ErrorClass;

/// A classified failure of an outside call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    pub class: ErrorClass,
    pub message: String,
}

impl CallError {
    pub fn retryable(message: impl Into<String>) -> Self {
        CallError {
            class: ErrorClass::Retryable,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        CallError {
            class: ErrorClass::Permanent,
            message: message.into(),
        }
    }

    pub fn quota(message: impl Into<String>) -> Self {
        CallError {
            class: ErrorClass::Quota,
            message: message.into(),
        }
    }
}

/// How one kind of call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPolicy {
    /// Each try is abandoned after this.
    pub timeout: Duration,
    /// Tries in all, the first included.
    pub tries: u32,
    /// Wait before the second try; doubles per try, with jitter.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl CallPolicy {
    pub const fn new(timeout: Duration, tries: u32) -> Self {
        CallPolicy {
            timeout,
            tries,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }

    pub const fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max;
        self
    }

    /// The pauses after failed tries: doubling from `backoff` up to
    /// `max_backoff`, each between half of that and all of it (half fixed,
    /// half random, so retries of many callers spread out).
    pub fn pauses(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.backoff / 2)
            .with_max_delay(self.max_backoff / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }
}

/// Call `f` under `policy`: `what` names the call in messages ("create VM x").
/// A try that times out is retryable. Quota and permanent failures are not
/// retried here: they are the caller's to record and schedule.
pub async fn call<T, F, Fut>(what: &str, policy: &CallPolicy, mut f: F) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let timeout = policy.timeout;
    let try_once = || {
        let attempt = f();
        async move {
            tokio::time::timeout(timeout, attempt)
                .await
                .unwrap_or_else(|_| {
                    Err(CallError::retryable(format!(
                        "timed out after {:.1}s",
                        timeout.as_secs_f64()
                    )))
                })
        }
    };
    let retries = usize::try_from(policy.tries.max(1) - 1).unwrap_or(usize::MAX);
    try_once
        .retry(policy.pauses().with_max_times(retries))
        .sleep(tokio::time::sleep)
        .when(|e| e.class == ErrorClass::Retryable)
        .notify(|e, pause| {
            tracing::warn!(call = what, error = %e.message, retry_in = ?pause, "outside call failed; retrying");
        })
        .await
        .map_err(|e| CallError {
            class: e.class,
            message: format!("{what}: {}", e.message),
        })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use backon::BackoffBuilder;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_hang_is_a_retryable_timeout_and_retries_are_bounded() {
        let tries = AtomicU32::new(0);
        let policy = CallPolicy::new(Duration::from_secs(5), 3);
        let result: Result<(), _> = call("create VM x", &policy, || async {
            tries.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        })
        .await;
        let e = result.expect_err("a hang fails");
        assert_eq!(e.class, ErrorClass::Retryable);
        assert!(
            e.message.contains("create VM x") && e.message.contains("timed out"),
            "{e}"
        );
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_until_success() {
        let tries = AtomicU32::new(0);
        let policy = CallPolicy::new(Duration::from_secs(5), 4);
        let result = call("x", &policy, || async {
            if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(CallError::retryable("503"))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(result, Ok(7));
        assert_eq!(tries.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_and_quota_failures_are_not_retried() {
        for error in [
            CallError::permanent("bad image"),
            CallError::quota("QUOTA_EXCEEDED"),
        ] {
            let tries = AtomicU32::new(0);
            let policy = CallPolicy::new(Duration::from_secs(5), 4);
            let e = call::<(), _, _>("x", &policy, || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(error.clone())
            })
            .await
            .expect_err("fails");
            assert_eq!(e.class, error.class);
            assert_eq!(tries.load(Ordering::SeqCst), 1);
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = CallPolicy::new(Duration::from_secs(1), 10)
            .backoff(Duration::from_secs(1), Duration::from_secs(8));
        let pauses: Vec<Duration> = p.pauses().build().take(9).collect();
        assert!(pauses[0] >= Duration::from_millis(500) && pauses[0] <= Duration::from_secs(1));
        assert!(pauses[8] >= Duration::from_secs(4) && pauses[8] <= Duration::from_secs(8));
    }
}

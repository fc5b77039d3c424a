//! How long the engine waits for the container runtime, so that every task leaves PENDING and
//! STOPPING within a known time even when the Docker daemon restarts, hangs or refuses:
//!
//! - every runtime call other than a pull or a stop gets [`CALL_TIMEOUT`] to answer;
//! - a step whose calls fail transiently (daemon unreachable, or no answer in time) is retried
//!   with backoff (0.1 s doubling to 5 s) for [`RETRY_WINDOW`], then fails with the last error;
//! - PENDING (image checks and pulls, retries included) ends within the pull timeout
//!   ([`DEFAULT_PULL_TIMEOUT`] unless configured), or the task stops with
//!   `CannotPullContainerError`;
//! - stopping a container: `docker stop` with its stopTimeout (SIGTERM, then SIGKILL), then an
//!   explicit kill if that does not finish; given up [`STOP_SLACK`] after its stopTimeout, when
//!   the container is reported STOPPED with `CannotStopContainerError` while the agent keeps
//!   trying in the background. A task so leaves STOPPING within, per dependency wave, the
//!   wave's longest stopTimeout plus [`STOP_SLACK`] (60 s for one wave with the default 30 s).

use crate::runtime::{Result, RuntimeError};
use std::future::Future;
use std::time::Duration;

/// Longest wait for one runtime call other than a pull or a stop.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long transient failures of one step are retried before the step fails.
pub const RETRY_WINDOW: Duration = Duration::from_secs(60);
/// How long PENDING (pulls included) may last when the agent is not configured otherwise.
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long past its stopTimeout a container's stop is pursued before it is given up.
pub const STOP_SLACK: Duration = Duration::from_secs(30);
/// Extra time a `docker stop` call gets beyond the stopTimeout it was given, before the agent
/// escalates to a kill.
pub const STOP_CALL_GRACE: Duration = Duration::from_secs(5);
/// How long after a runtime outage a container exit is attributed to it.
pub const OUTAGE_WINDOW: Duration = Duration::from_secs(120);

/// Whether trying the same call again later may succeed: the runtime was unreachable or did
/// not answer in time.
pub fn is_transient(err: &RuntimeError) -> bool {
    matches!(err, RuntimeError::Unavailable(_))
}

/// `call`, failed as unavailable when it takes longer than `limit`.
pub async fn bounded<T>(limit: Duration, call: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(RuntimeError::Unavailable(format!(
            "the container runtime did not answer within {}s",
            limit.as_secs()
        ))),
    }
}

/// The reason of a container whose exit is attributed to a runtime outage.
pub fn outage_reason(exit_code: Option<i64>) -> String {
    let code = exit_code.map_or_else(|| "unknown".to_string(), |c| c.to_string());
    format!(
        "DockerDaemonUnavailable: the container exited (exit code {code}) while the Docker \
         daemon was restarting or unreachable"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_that_does_not_answer_in_time_is_a_transient_failure() {
        let hung = bounded::<()>(CALL_TIMEOUT, std::future::pending()).await;
        let err = hung.expect_err("timed out");
        assert!(is_transient(&err));
        assert!(err.to_string().contains("within 30s"), "{err}");
        assert!(!is_transient(&RuntimeError::Create("bad".into())));
        assert_eq!(
            bounded(CALL_TIMEOUT, async { Ok(7) }).await,
            Ok(7),
            "an answer in time is passed through"
        );
    }
}

//! Container restart policies (`restartPolicy` of a container definition), as ECS applies them:
//! a container that exits is started again in place (same container, same task) when its
//! policy is enabled, its exit code is not one of `ignoredExitCodes`, the task is not being
//! stopped, and it ran for at least `restartAttemptPeriod` seconds (300 by default) since it
//! last started. One that exits sooner is not restarted: it stops as it would without a policy.
//!
//! How long it ran is read from the runtime (its last start and its exit), so an agent that
//! restarts meanwhile decides the same way, and never starts a container twice for one exit:
//! a container it finds running is left alone.

use super::runner::TaskRunner;
use super::slot::Phase;
use berth_core::model::task_definition::ContainerRestartPolicy;
use berth_core::task_state::TaskStatus;
use std::time::{Duration, SystemTime};

/// `restartAttemptPeriod` when the policy leaves it out.
pub const DEFAULT_ATTEMPT_PERIOD: Duration = Duration::from_secs(300);

/// Why an exited container is not restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// No policy, or a disabled one.
    NoPolicy,
    /// The exit code is one of `ignoredExitCodes`.
    IgnoredExitCode,
    /// It ran for less than the attempt period since it last started.
    TooSoon,
    /// The runtime does not say when it started, exited or with what code.
    Unknown,
}

/// Whether a container of `policy` that started at `started_at` and exited at `finished_at`
/// with `exit_code` is restarted.
pub(super) fn decide(
    policy: Option<&ContainerRestartPolicy>,
    exit_code: Option<i64>,
    started_at: Option<SystemTime>,
    finished_at: Option<SystemTime>,
) -> Result<(), Refusal> {
    let policy = policy.filter(|p| p.enabled).ok_or(Refusal::NoPolicy)?;
    let code = exit_code.ok_or(Refusal::Unknown)?;
    if policy
        .ignored_exit_codes
        .iter()
        .flatten()
        .any(|ignored| i64::from(*ignored) == code)
    {
        return Err(Refusal::IgnoredExitCode);
    }
    let (Some(started), Some(finished)) = (started_at, finished_at) else {
        return Err(Refusal::Unknown);
    };
    let ran = finished.duration_since(started).unwrap_or(Duration::ZERO);
    let period = policy
        .restart_attempt_period
        .and_then(|s| u64::try_from(s).ok())
        .map_or(DEFAULT_ATTEMPT_PERIOD, Duration::from_secs);
    if ran < period {
        return Err(Refusal::TooSoon);
    }
    Ok(())
}

/// The container `reason` reported with a restart: the exit it follows and how many restarts
/// the container has had.
pub(super) fn restart_reason(exit_code: Option<i64>, restarts: u32) -> String {
    let code = exit_code.map_or_else(|| "unknown".to_string(), |c| c.to_string());
    format!("Restarted by its restartPolicy after exiting with code {code} (restart {restarts})")
}

/// How many restarts a reason from [`restart_reason`] counts (0 for any other reason): what
/// a restarted agent carries on from.
pub(super) fn restarts_in(reason: Option<&str>) -> u32 {
    reason
        .filter(|r| r.starts_with("Restarted by its restartPolicy"))
        .and_then(|r| r.rsplit_once("(restart "))
        .and_then(|(_, tail)| tail.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl TaskRunner {
    /// Restarts in place every container that exited and that its restart policy restarts;
    /// the others stay exited (and are reported so). Nothing is restarted once the task is
    /// asked to stop.
    pub(super) async fn restart_exited(&mut self) {
        for idx in 0..self.slots.len() {
            if self.check_stop().is_err() {
                return;
            }
            let slot = &mut self.slots[idx];
            if slot.phase != Phase::Done
                || !slot.started
                || slot.stop_sent
                || slot.restart_refused
                || slot.reported == TaskStatus::Stopped
            {
                continue;
            }
            let decision = decide(
                slot.def.restart_policy.as_ref(),
                slot.exit_code,
                slot.started_at,
                slot.finished_at,
            );
            if let Err(refusal) = decision {
                if refusal != Refusal::NoPolicy {
                    tracing::info!(task = %self.task_arn, container = %slot.name, exit_code = ?slot.exit_code, ?refusal, "exited container not restarted");
                }
                slot.restart_refused = true;
                continue;
            }
            self.restart_one(idx).await;
        }
    }

    /// Starts the exited container `idx` again; a container that cannot be started stays
    /// exited, its reason saying why.
    async fn restart_one(&mut self, idx: usize) {
        let Some(id) = self.slots[idx].id.clone() else {
            self.slots[idx].restart_refused = true;
            return;
        };
        let started = self
            .with_retries(|runtime| {
                let id = id.clone();
                async move { runtime.start_container(&id).await }
            })
            .await;
        let slot = &mut self.slots[idx];
        match started {
            Ok(Ok(())) => {
                slot.restarts += 1;
                slot.restart_note = Some(restart_reason(slot.exit_code, slot.restarts));
                slot.phase = Phase::Running;
                slot.started_at = None;
                slot.finished_at = None;
                slot.seen_running_at = Some(tokio::time::Instant::now());
                tracing::info!(task = %self.task_arn, container = %slot.name, exit_code = ?slot.exit_code, restarts = slot.restarts, "container restarted in place by its restart policy");
                self.refresh(idx).await;
                self.follow_logs(idx);
            }
            Ok(Err(err)) => {
                tracing::warn!(task = %self.task_arn, container = %slot.name, "cannot restart container: {err}");
                slot.restart_refused = true;
                slot.reason = Some(format!(
                    "CannotStartContainerError: restart by its restartPolicy failed: {err}"
                ));
            }
            // A stop came while the runtime was away: the container stays exited.
            Err(_) => slot.restart_refused = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ignored: &[i32], period: Option<i32>) -> ContainerRestartPolicy {
        ContainerRestartPolicy {
            enabled: true,
            ignored_exit_codes: (!ignored.is_empty()).then(|| ignored.to_vec()),
            restart_attempt_period: period,
        }
    }

    fn ran(seconds: u64) -> (Option<SystemTime>, Option<SystemTime>) {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        (Some(start), Some(start + Duration::from_secs(seconds)))
    }

    #[test]
    fn a_container_that_ran_the_attempt_period_is_restarted() {
        let (start, end) = ran(60);
        assert_eq!(
            decide(Some(&policy(&[], Some(60))), Some(3), start, end),
            Ok(())
        );
        let (start, end) = ran(300);
        assert_eq!(
            decide(Some(&policy(&[], None)), Some(3), start, end),
            Ok(())
        );
    }

    #[test]
    fn a_container_that_exits_sooner_is_not_restarted() {
        let (start, end) = ran(59);
        assert_eq!(
            decide(Some(&policy(&[], Some(60))), Some(3), start, end),
            Err(Refusal::TooSoon)
        );
        // The default period is 300 s.
        let (start, end) = ran(299);
        assert_eq!(
            decide(Some(&policy(&[], None)), Some(3), start, end),
            Err(Refusal::TooSoon)
        );
    }

    #[test]
    fn ignored_exit_codes_and_disabled_policies_are_not_restarted() {
        let (start, end) = ran(600);
        assert_eq!(
            decide(Some(&policy(&[0, 3], Some(60))), Some(3), start, end),
            Err(Refusal::IgnoredExitCode)
        );
        assert_eq!(
            decide(Some(&policy(&[0], Some(60))), Some(3), start, end),
            Ok(())
        );
        let disabled = ContainerRestartPolicy {
            enabled: false,
            ..policy(&[], Some(60))
        };
        assert_eq!(
            decide(Some(&disabled), Some(3), start, end),
            Err(Refusal::NoPolicy)
        );
        assert_eq!(decide(None, Some(3), start, end), Err(Refusal::NoPolicy));
        assert_eq!(
            decide(Some(&policy(&[], Some(60))), Some(3), None, end),
            Err(Refusal::Unknown)
        );
    }

    #[test]
    fn the_restart_count_is_read_back_from_the_reason() {
        let reason = restart_reason(Some(3), 7);
        assert_eq!(
            reason,
            "Restarted by its restartPolicy after exiting with code 3 (restart 7)"
        );
        assert_eq!(restarts_in(Some(&reason)), 7);
        assert_eq!(restarts_in(Some("Essential container in task exited")), 0);
        assert_eq!(restarts_in(None), 0);
    }
}

//! Task scale-in protection as pure logic: the bounds of UpdateTaskProtection's input, when a
//! protection set now expires, whether a task is protected at a given time, and how
//! GetTaskProtection shows it. A task's protection is stored as the time it ends
//! ([`Task::protection_expires_at`]); it lapses on its own when that time passes, so nothing has
//! to clear it, and every reader asks [`is_protected`] with its own `now`.

use crate::model::common::Timestamp;
use crate::model::task::{ProtectedTask, Task};
use crate::task_state::TaskStatus;

/// How long protection lasts when `expiresInMinutes` is not given (2 hours).
pub const DEFAULT_EXPIRES_IN_MINUTES: i32 = 120;
/// The shortest protection UpdateTaskProtection accepts, in minutes.
pub const MIN_EXPIRES_IN_MINUTES: i32 = 1;
/// The longest protection UpdateTaskProtection accepts, in minutes (48 hours).
pub const MAX_EXPIRES_IN_MINUTES: i32 = 2880;
/// How many tasks one UpdateTaskProtection names at most.
pub const MAX_UPDATE_TASKS: usize = 10;
/// How many tasks one GetTaskProtection names at most.
pub const MAX_GET_TASKS: usize = 100;

/// The failure reason of a task that is not stored (ECS's `MISSING`).
pub const FAILURE_MISSING: &str = "MISSING";
/// The failure reason of a task that cannot be protected: not a service's task, or stopped.
pub const FAILURE_TASK_NOT_VALID: &str = "TASK_NOT_VALID";
/// The detail of a `TASK_NOT_VALID` failure for a task no service started.
pub const DETAIL_NOT_A_SERVICE_TASK: &str =
    "The task is not part of a service. Only tasks of a service can be protected from scale-in.";
/// The detail of a `TASK_NOT_VALID` failure for a task that is stopped or stopping.
pub const DETAIL_TASK_STOPPED: &str =
    "The task is stopped or stopping, so it cannot be protected from scale-in.";

/// Why an UpdateTaskProtection or GetTaskProtection input is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtectionError {
    /// `expiresInMinutes` outside 1..=2880.
    #[error("expiresInMinutes must be between 1 and 2880 minutes (48 hours); {0} was given.")]
    ExpiresInMinutes(i32),
    /// `tasks` is empty or names too many tasks.
    #[error("tasks must name between 1 and {max} tasks; {given} were given.")]
    TaskCount { given: usize, max: usize },
    /// `expiresInMinutes` with `protectionEnabled: false`.
    #[error("expiresInMinutes can only be set when protectionEnabled is true.")]
    ExpiryWithoutProtection,
}

/// Checks the `tasks` of a request against `max`.
pub fn check_task_count(given: usize, max: usize) -> Result<(), ProtectionError> {
    if given == 0 || given > max {
        return Err(ProtectionError::TaskCount { given, max });
    }
    Ok(())
}

/// The end of a protection set at `now` by UpdateTaskProtection: `None` when it turns
/// protection off, else `now` plus `expires_in_minutes` (default 120).
pub fn expiry(
    now: Timestamp,
    protection_enabled: bool,
    expires_in_minutes: Option<i32>,
) -> Result<Option<Timestamp>, ProtectionError> {
    if !protection_enabled {
        return match expires_in_minutes {
            Some(_) => Err(ProtectionError::ExpiryWithoutProtection),
            None => Ok(None),
        };
    }
    let minutes = expires_in_minutes.unwrap_or(DEFAULT_EXPIRES_IN_MINUTES);
    if !(MIN_EXPIRES_IN_MINUTES..=MAX_EXPIRES_IN_MINUTES).contains(&minutes) {
        return Err(ProtectionError::ExpiresInMinutes(minutes));
    }
    Ok(Some(now + f64::from(minutes) * 60.0))
}

/// Whether protection ending at `expires_at` still holds at `now`.
pub fn holds(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_some_and(|at| now < at)
}

/// Whether `task` is protected from scale-in at `now`.
pub fn is_protected(task: &Task, now: Timestamp) -> bool {
    holds(task.protection_expires_at, now)
}

/// Whether `task` may be protected: it is not stopped and not asked to stop.
pub fn may_be_protected(task: &Task) -> bool {
    TaskStatus::of(task) != TaskStatus::Stopped && task.desired_status != Some(TaskStatus::Stopped)
}

/// `task`'s protection as GetTaskProtection shows it at `now`: enabled with its expiration
/// date while it holds, disabled (no date) once removed or expired.
pub fn protected_task(task: &Task, now: Timestamp) -> ProtectedTask {
    let enabled = is_protected(task, now);
    ProtectedTask {
        task_arn: task.task_arn.clone(),
        protection_enabled: Some(enabled),
        expiration_date: if enabled {
            task.protection_expires_at
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(expires_at: Option<f64>) -> Task {
        Task {
            task_arn: Some("arn:aws:ecs:us-east-1:0:task/demo/abc".into()),
            last_status: Some(TaskStatus::Running),
            desired_status: Some(TaskStatus::Running),
            protection_expires_at: expires_at,
            ..Task::default()
        }
    }

    #[test]
    fn protection_lasts_two_hours_unless_told_otherwise() {
        assert_eq!(expiry(1000.0, true, None), Ok(Some(1000.0 + 7200.0)));
        assert_eq!(expiry(1000.0, true, Some(1)), Ok(Some(1060.0)));
        assert_eq!(
            expiry(1000.0, true, Some(2880)),
            Ok(Some(1000.0 + 172_800.0))
        );
    }

    #[test]
    fn expiry_outside_one_minute_to_two_days_is_refused() {
        assert_eq!(
            expiry(0.0, true, Some(0)),
            Err(ProtectionError::ExpiresInMinutes(0))
        );
        assert_eq!(
            expiry(0.0, true, Some(2881)),
            Err(ProtectionError::ExpiresInMinutes(2881))
        );
        assert_eq!(
            expiry(0.0, true, Some(-5)),
            Err(ProtectionError::ExpiresInMinutes(-5))
        );
    }

    #[test]
    fn turning_protection_off_clears_it_and_takes_no_expiry() {
        assert_eq!(expiry(0.0, false, None), Ok(None));
        assert_eq!(
            expiry(0.0, false, Some(5)),
            Err(ProtectionError::ExpiryWithoutProtection)
        );
    }

    #[test]
    fn protection_holds_until_its_expiry_and_then_reads_off() {
        let t = task(Some(100.0));
        assert!(is_protected(&t, 99.9));
        assert!(!is_protected(&t, 100.0));
        let shown = protected_task(&t, 50.0);
        assert_eq!(shown.protection_enabled, Some(true));
        assert_eq!(shown.expiration_date, Some(100.0));
        let lapsed = protected_task(&t, 100.5);
        assert_eq!(lapsed.protection_enabled, Some(false));
        assert_eq!(lapsed.expiration_date, None);
        assert!(!is_protected(&task(None), 0.0));
    }

    #[test]
    fn task_counts_are_bounded() {
        assert!(check_task_count(1, MAX_UPDATE_TASKS).is_ok());
        assert!(check_task_count(10, MAX_UPDATE_TASKS).is_ok());
        assert!(check_task_count(0, MAX_UPDATE_TASKS).is_err());
        assert!(check_task_count(11, MAX_UPDATE_TASKS).is_err());
    }

    #[test]
    fn stopped_or_stopping_tasks_cannot_be_protected() {
        assert!(may_be_protected(&task(None)));
        let mut stopping = task(None);
        stopping.desired_status = Some(TaskStatus::Stopped);
        assert!(!may_be_protected(&stopping));
        let mut stopped = task(None);
        stopped.last_status = Some(TaskStatus::Stopped);
        assert!(!may_be_protected(&stopped));
    }

    #[test]
    fn the_stored_field_is_not_part_of_the_protected_task_shape() {
        let json = serde_json::to_value(protected_task(&task(Some(100.0)), 1.0)).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"taskArn": "arn:aws:ecs:us-east-1:0:task/demo/abc",
                               "protectionEnabled": true, "expirationDate": 100.0})
        );
    }
}

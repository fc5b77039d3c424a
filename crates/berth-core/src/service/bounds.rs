//! Deployment arithmetic: the task-count bounds a rolling update keeps, ECS's defaults for
//! them, and the circuit breaker's failure threshold.

use crate::model::service::DeploymentConfiguration;

/// `minimumHealthyPercent` when a REPLICA service names none.
pub const REPLICA_MIN_HEALTHY_PERCENT: i32 = 100;
/// `maximumPercent` when a REPLICA service names none.
pub const REPLICA_MAX_PERCENT: i32 = 200;
/// `minimumHealthyPercent` when a DAEMON service names none.
pub const DAEMON_MIN_HEALTHY_PERCENT: i32 = 0;
/// `maximumPercent` when a DAEMON service names none.
pub const DAEMON_MAX_PERCENT: i32 = 100;
/// Fewest failed tasks that trip the circuit breaker.
pub const BREAKER_MIN_THRESHOLD: u32 = 3;
/// Most failed tasks the circuit breaker waits for.
pub const BREAKER_MAX_THRESHOLD: u32 = 200;

/// The task-count window of a deployment: at least `min_healthy` healthy tasks, at most
/// `max_total` tasks RUNNING or PENDING.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// ceil(desired × minimumHealthyPercent / 100).
    pub min_healthy: u32,
    /// floor(desired × maximumPercent / 100).
    pub max_total: u32,
}

impl Bounds {
    /// The bounds for `desired` tasks under `config` (percentages default as ECS defaults
    /// them for the scheduling strategy).
    pub fn of(desired: u32, config: Option<&DeploymentConfiguration>, daemon: bool) -> Bounds {
        let (min_default, max_default) = if daemon {
            (DAEMON_MIN_HEALTHY_PERCENT, DAEMON_MAX_PERCENT)
        } else {
            (REPLICA_MIN_HEALTHY_PERCENT, REPLICA_MAX_PERCENT)
        };
        let min = config
            .and_then(|c| c.minimum_healthy_percent)
            .unwrap_or(min_default);
        let max = config
            .and_then(|c| c.maximum_percent)
            .unwrap_or(max_default);
        Bounds {
            min_healthy: min_healthy(desired, min),
            max_total: max_total(desired, max),
        }
    }
}

/// The fewest healthy tasks a deployment keeps: `desired × percent / 100`, rounded up.
pub fn min_healthy(desired: u32, percent: i32) -> u32 {
    let percent = u64::try_from(percent.max(0)).unwrap_or(0);
    let scaled = u64::from(desired) * percent;
    u32::try_from(scaled.div_ceil(100)).unwrap_or(u32::MAX)
}

/// The most tasks RUNNING or PENDING during a deployment: `desired × percent / 100`, rounded
/// down.
pub fn max_total(desired: u32, percent: i32) -> u32 {
    let percent = u64::try_from(percent.max(0)).unwrap_or(0);
    u32::try_from(u64::from(desired) * percent / 100).unwrap_or(u32::MAX)
}

/// How many failed tasks of a deployment trip the circuit breaker:
/// clamp(ceil(0.5 × desired), 3, 200).
pub fn breaker_threshold(desired: u32) -> u32 {
    desired
        .div_ceil(2)
        .clamp(BREAKER_MIN_THRESHOLD, BREAKER_MAX_THRESHOLD)
}

/// Checks a deployment configuration as ECS does; returns the message for the user.
pub fn validate_deployment_configuration(
    config: &DeploymentConfiguration,
    daemon: bool,
) -> Result<(), String> {
    if let Some(min) = config.minimum_healthy_percent {
        if !(0..=100).contains(&min) {
            return Err(format!(
                "minimumHealthyPercent must be between 0 and 100, got {min}."
            ));
        }
    }
    if let Some(max) = config.maximum_percent {
        if daemon {
            if !(1..=100).contains(&max) {
                return Err(format!(
                    "maximumPercent of a DAEMON service must be between 1 and 100, got {max}."
                ));
            }
        } else if !(100..=2000).contains(&max) {
            return Err(format!(
                "maximumPercent must be between 100 and 2000, got {max}: a service must be \
                 able to run all of its desired tasks."
            ));
        }
    }
    let min = config.minimum_healthy_percent.unwrap_or(if daemon {
        DAEMON_MIN_HEALTHY_PERCENT
    } else {
        REPLICA_MIN_HEALTHY_PERCENT
    });
    let max = config.maximum_percent.unwrap_or(if daemon {
        DAEMON_MAX_PERCENT
    } else {
        REPLICA_MAX_PERCENT
    });
    if max < min {
        return Err(format!(
            "maximumPercent ({max}) must not be below minimumHealthyPercent ({min})."
        ));
    }
    if let Some(strategy) = config.strategy.as_deref() {
        if strategy != "ROLLING" {
            return Err(format!(
                "Deployment strategy {strategy} is not supported: Berth runs ROLLING deployments."
            ));
        }
    }
    if config.alarms.as_ref().is_some_and(|a| a.enable) {
        return Err(
            "Deployment alarms need CloudWatch, which Berth does not have: leave alarms out or \
             disabled."
                .to_string(),
        );
    }
    if config
        .lifecycle_hooks
        .as_ref()
        .is_some_and(|h| !h.is_empty())
    {
        return Err("Deployment lifecycle hooks are not supported: leave them out.".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_healthy_rounds_up_and_maximum_rounds_down() {
        assert_eq!(min_healthy(3, 50), 2);
        assert_eq!(min_healthy(3, 100), 3);
        assert_eq!(min_healthy(3, 0), 0);
        assert_eq!(min_healthy(5, 33), 2);
        assert_eq!(max_total(3, 200), 6);
        assert_eq!(max_total(3, 150), 4);
        assert_eq!(max_total(5, 133), 6);
        assert_eq!(max_total(0, 200), 0);
    }

    #[test]
    fn bounds_default_per_scheduling_strategy() {
        assert_eq!(
            Bounds::of(3, None, false),
            Bounds {
                min_healthy: 3,
                max_total: 6
            }
        );
        assert_eq!(
            Bounds::of(3, None, true),
            Bounds {
                min_healthy: 0,
                max_total: 3
            }
        );
        let config = DeploymentConfiguration {
            minimum_healthy_percent: Some(50),
            maximum_percent: Some(100),
            ..DeploymentConfiguration::default()
        };
        assert_eq!(
            Bounds::of(4, Some(&config), false),
            Bounds {
                min_healthy: 2,
                max_total: 4
            }
        );
    }

    #[test]
    fn breaker_threshold_is_half_the_desired_count_between_3_and_200() {
        assert_eq!(breaker_threshold(0), 3);
        assert_eq!(breaker_threshold(3), 3);
        assert_eq!(breaker_threshold(7), 4);
        assert_eq!(breaker_threshold(10), 5);
        assert_eq!(breaker_threshold(399), 200);
        assert_eq!(breaker_threshold(1000), 200);
    }

    #[test]
    fn deployment_configurations_outside_ecs_ranges_are_refused() {
        let config = |min, max| DeploymentConfiguration {
            minimum_healthy_percent: min,
            maximum_percent: max,
            ..DeploymentConfiguration::default()
        };
        assert!(validate_deployment_configuration(&config(Some(100), Some(200)), false).is_ok());
        assert!(validate_deployment_configuration(&config(Some(101), None), false).is_err());
        assert!(validate_deployment_configuration(&config(Some(-1), None), false).is_err());
        assert!(validate_deployment_configuration(&config(None, Some(50)), false).is_err());
        assert!(validate_deployment_configuration(&config(Some(50), Some(100)), true).is_ok());
        assert!(validate_deployment_configuration(&config(None, Some(200)), true).is_err());
        let blue_green = DeploymentConfiguration {
            strategy: Some("BLUE_GREEN".into()),
            ..DeploymentConfiguration::default()
        };
        assert!(validate_deployment_configuration(&blue_green, false).is_err());
    }
}

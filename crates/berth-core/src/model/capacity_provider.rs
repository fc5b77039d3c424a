//! Capacity providers: the shape CreateCapacityProvider, DescribeCapacityProviders,
//! UpdateCapacityProvider and DeleteCapacityProvider return (and Berth stores), ECS's defaults
//! for an Auto Scaling group provider, and the checks ECS makes of names and settings.
//!
//! In Berth an Auto Scaling group provider takes its capacity from the container instances
//! that name its group in the [`AUTOSCALING_GROUP_ATTRIBUTE`] attribute; the built-in FARGATE
//! and FARGATE_SPOT providers take theirs from instances offering Fargate capacity
//! ([`FARGATE_CAPACITY_ATTRIBUTE`]).

use super::common::Tag;
use super::container_instance::{AUTOSCALING_GROUP_ATTRIBUTE, FARGATE_CAPACITY_ATTRIBUTE};
use crate::names::is_valid_name;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// The built-in Fargate provider.
pub const FARGATE: &str = "FARGATE";
/// The built-in Fargate Spot provider.
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";
/// The providers every account has, which cannot be created, updated or deleted.
pub const BUILT_IN: [&str; 2] = [FARGATE, FARGATE_SPOT];

/// Whether `name` is one of the built-in Fargate providers.
pub fn is_built_in(name: &str) -> bool {
    BUILT_IN.contains(&name)
}

/// A capacity provider as ECS shows it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProvider {
    pub capacity_provider_arn: Option<String>,
    pub name: Option<String>,
    pub status: Option<String>,
    pub auto_scaling_group_provider: Option<AutoScalingGroupProvider>,
    pub update_status: Option<String>,
    pub update_status_reason: Option<String>,
    pub tags: Option<Vec<Tag>>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

/// The Auto Scaling group a provider takes its capacity from, and how ECS manages it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalingGroupProvider {
    pub auto_scaling_group_arn: Option<String>,
    pub managed_scaling: Option<ManagedScaling>,
    pub managed_termination_protection: Option<String>,
    pub managed_draining: Option<String>,
}

/// Managed scaling of the group (stored and shown; Berth scales no groups).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedScaling {
    pub status: Option<String>,
    pub target_capacity: Option<i32>,
    pub minimum_scaling_step_size: Option<i32>,
    pub maximum_scaling_step_size: Option<i32>,
    pub instance_warmup_period: Option<i32>,
}

/// ECS's status of a provider that can be used.
pub const ACTIVE: &str = "ACTIVE";
/// ECS's status of a deleted provider.
pub const INACTIVE: &str = "INACTIVE";

impl CapacityProvider {
    /// Whether the provider can be used (associated with clusters, named in strategies).
    pub fn is_active(&self) -> bool {
        self.status.as_deref() == Some(ACTIVE)
    }

    /// The name of the Auto Scaling group of an EC2_AUTOSCALING provider.
    pub fn auto_scaling_group_name(&self) -> Option<&str> {
        self.auto_scaling_group_provider
            .as_ref()
            .and_then(|a| a.auto_scaling_group_arn.as_deref())
            .map(auto_scaling_group_name)
    }

    /// The instance attribute (name, and value when one is required) that marks the
    /// instances this provider takes its capacity from.
    pub fn instance_attribute(&self) -> (&'static str, Option<String>) {
        match self.name.as_deref() {
            Some(name) if is_built_in(name) => (FARGATE_CAPACITY_ATTRIBUTE, None),
            _ => (
                AUTOSCALING_GROUP_ATTRIBUTE,
                Some(
                    self.auto_scaling_group_name()
                        .unwrap_or_default()
                        .to_string(),
                ),
            ),
        }
    }

    /// The launch type of the tasks it runs: FARGATE for the Fargate providers, EC2 for an
    /// Auto Scaling group's.
    pub fn launch_type(&self) -> &'static str {
        match self.name.as_deref() {
            Some(name) if is_built_in(name) => "FARGATE",
            _ => "EC2",
        }
    }
}

/// A built-in provider as DescribeCapacityProviders lists it.
pub fn built_in(name: &str, arn: String) -> CapacityProvider {
    CapacityProvider {
        capacity_provider_arn: Some(arn),
        name: Some(name.to_string()),
        status: Some(ACTIVE.into()),
        tags: Some(Vec::new()),
        type_: Some(name.to_string()),
        ..CapacityProvider::default()
    }
}

/// The group name an `autoScalingGroupArn` names: the part after `autoScalingGroupName/`,
/// or the text itself when it is a bare name (ECS accepts either).
pub fn auto_scaling_group_name(arn: &str) -> &str {
    match arn.split_once("autoScalingGroupName/") {
        Some((_, name)) => name,
        None => arn,
    }
}

/// Checks a provider name as ECS does: up to 255 letters, digits, underscores and hyphens,
/// not starting with `aws`, `ecs` or `fargate` (in any case, so FARGATE and FARGATE_SPOT
/// stay reserved). Returns the message for the user.
pub fn validate_name(name: &str) -> Result<(), String> {
    if !is_valid_name(name) {
        return Err(format!(
            "The capacity provider name '{name}' is invalid: up to 255 letters (uppercase and \
             lowercase), numbers, underscores, and hyphens are allowed."
        ));
    }
    let lower = name.to_ascii_lowercase();
    if ["aws", "ecs", "fargate"]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
    {
        return Err(format!(
            "The capacity provider name '{name}' is invalid: a capacity provider name cannot \
             begin with \"aws\", \"ecs\", or \"fargate\"."
        ));
    }
    Ok(())
}

/// Checks an `autoScalingGroupProvider` (of a create, or the members an update gives) and
/// returns the message for the user when a value is out of ECS's range or enum.
pub fn validate_settings(
    scaling: Option<&ManagedScaling>,
    termination_protection: Option<&str>,
    draining: Option<&str>,
) -> Result<(), String> {
    let toggle = |what: &str, value: Option<&str>| match value {
        None | Some("ENABLED" | "DISABLED") => Ok(()),
        Some(other) => Err(format!(
            "'{other}' is not a valid {what} value: use ENABLED or DISABLED."
        )),
    };
    toggle("managedTerminationProtection", termination_protection)?;
    toggle("managedDraining", draining)?;
    let Some(scaling) = scaling else {
        return Ok(());
    };
    toggle("managedScaling status", scaling.status.as_deref())?;
    let range = |what: &str, value: Option<i32>, min: i32, max: i32| match value {
        Some(v) if !(min..=max).contains(&v) => Err(format!(
            "managedScaling {what} must be between {min} and {max}, got {v}."
        )),
        _ => Ok(()),
    };
    range("targetCapacity", scaling.target_capacity, 1, 100)?;
    range(
        "minimumScalingStepSize",
        scaling.minimum_scaling_step_size,
        1,
        10_000,
    )?;
    range(
        "maximumScalingStepSize",
        scaling.maximum_scaling_step_size,
        1,
        10_000,
    )?;
    range(
        "instanceWarmupPeriod",
        scaling.instance_warmup_period,
        0,
        10_000,
    )?;
    if let (Some(min), Some(max)) = (
        scaling.minimum_scaling_step_size,
        scaling.maximum_scaling_step_size,
    ) {
        if min > max {
            return Err(format!(
                "managedScaling minimumScalingStepSize ({min}) cannot be greater than \
                 maximumScalingStepSize ({max})."
            ));
        }
    }
    Ok(())
}

/// Managed scaling with ECS's defaults filled in where `given` leaves a member out: status
/// DISABLED unless given, target capacity 100, step sizes 1 and 10000, warm-up 300 s.
pub fn scaling_with_defaults(given: Option<&ManagedScaling>) -> ManagedScaling {
    let given = given.cloned().unwrap_or_default();
    ManagedScaling {
        status: Some(given.status.unwrap_or_else(|| "DISABLED".into())),
        target_capacity: Some(given.target_capacity.unwrap_or(100)),
        minimum_scaling_step_size: Some(given.minimum_scaling_step_size.unwrap_or(1)),
        maximum_scaling_step_size: Some(given.maximum_scaling_step_size.unwrap_or(10_000)),
        instance_warmup_period: Some(given.instance_warmup_period.unwrap_or(300)),
    }
}

/// An Auto Scaling group provider with ECS's defaults: managed scaling as
/// [`scaling_with_defaults`], managed termination protection DISABLED, managed draining
/// ENABLED.
pub fn with_defaults(given: &AutoScalingGroupProvider) -> AutoScalingGroupProvider {
    AutoScalingGroupProvider {
        auto_scaling_group_arn: given.auto_scaling_group_arn.clone(),
        managed_scaling: Some(scaling_with_defaults(given.managed_scaling.as_ref())),
        managed_termination_protection: Some(
            given
                .managed_termination_protection
                .clone()
                .unwrap_or_else(|| "DISABLED".into()),
        ),
        managed_draining: Some(
            given
                .managed_draining
                .clone()
                .unwrap_or_else(|| "ENABLED".into()),
        ),
    }
}

/// Lays the members an UpdateCapacityProvider gives over `current`: a given managedScaling
/// member replaces that member only.
pub fn apply_update(
    current: &mut AutoScalingGroupProvider,
    scaling: Option<&ManagedScaling>,
    termination_protection: Option<&str>,
    draining: Option<&str>,
) {
    if let Some(update) = scaling {
        let scaling = current.managed_scaling.get_or_insert_with(Default::default);
        if update.status.is_some() {
            scaling.status = update.status.clone();
        }
        if update.target_capacity.is_some() {
            scaling.target_capacity = update.target_capacity;
        }
        if update.minimum_scaling_step_size.is_some() {
            scaling.minimum_scaling_step_size = update.minimum_scaling_step_size;
        }
        if update.maximum_scaling_step_size.is_some() {
            scaling.maximum_scaling_step_size = update.maximum_scaling_step_size;
        }
        if update.instance_warmup_period.is_some() {
            scaling.instance_warmup_period = update.instance_warmup_period;
        }
    }
    if let Some(v) = termination_protection {
        current.managed_termination_protection = Some(v.to_string());
    }
    if let Some(v) = draining {
        current.managed_draining = Some(v.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_may_not_start_with_aws_ecs_or_fargate_in_any_case() {
        assert!(validate_name("web-capacity_1").is_ok());
        assert!(validate_name("my-aws-provider").is_ok());
        for bad in [
            "aws-x",
            "ecsProvider",
            "fargate2",
            "FARGATE",
            "FARGATE_SPOT",
            "AwsThing",
        ] {
            assert!(validate_name(bad).is_err(), "{bad} should be refused");
        }
        assert!(validate_name("").is_err());
        assert!(validate_name("dot.name").is_err());
        assert!(validate_name(&"x".repeat(256)).is_err());
        assert!(validate_name(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn group_name_is_the_part_after_auto_scaling_group_name() {
        let arn = "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1234:autoScalingGroupName/web";
        assert_eq!(auto_scaling_group_name(arn), "web");
        assert_eq!(auto_scaling_group_name("batch"), "batch");
    }

    #[test]
    fn defaults_fill_what_the_request_leaves_out() {
        let given = AutoScalingGroupProvider {
            auto_scaling_group_arn: Some("web".into()),
            managed_scaling: Some(ManagedScaling {
                status: Some("ENABLED".into()),
                target_capacity: Some(90),
                ..ManagedScaling::default()
            }),
            ..AutoScalingGroupProvider::default()
        };
        let full = with_defaults(&given);
        assert_eq!(
            full.managed_scaling,
            Some(ManagedScaling {
                status: Some("ENABLED".into()),
                target_capacity: Some(90),
                minimum_scaling_step_size: Some(1),
                maximum_scaling_step_size: Some(10_000),
                instance_warmup_period: Some(300),
            })
        );
        assert_eq!(
            full.managed_termination_protection.as_deref(),
            Some("DISABLED")
        );
        assert_eq!(full.managed_draining.as_deref(), Some("ENABLED"));
        let bare = with_defaults(&AutoScalingGroupProvider::default());
        assert_eq!(
            bare.managed_scaling.and_then(|s| s.status).as_deref(),
            Some("DISABLED")
        );
    }

    #[test]
    fn settings_outside_ecs_ranges_or_enums_are_refused() {
        let scaling = |target: i32| ManagedScaling {
            target_capacity: Some(target),
            ..ManagedScaling::default()
        };
        assert!(validate_settings(Some(&scaling(100)), None, None).is_ok());
        assert!(validate_settings(Some(&scaling(0)), None, None).is_err());
        assert!(validate_settings(Some(&scaling(101)), None, None).is_err());
        assert!(validate_settings(None, Some("MAYBE"), None).is_err());
        assert!(validate_settings(None, None, Some("ON")).is_err());
        let steps = ManagedScaling {
            minimum_scaling_step_size: Some(5),
            maximum_scaling_step_size: Some(2),
            ..ManagedScaling::default()
        };
        assert!(validate_settings(Some(&steps), None, None).is_err());
    }

    #[test]
    fn an_update_replaces_only_the_members_it_gives() {
        let mut current = with_defaults(&AutoScalingGroupProvider {
            auto_scaling_group_arn: Some("web".into()),
            ..AutoScalingGroupProvider::default()
        });
        let update = ManagedScaling {
            target_capacity: Some(50),
            ..ManagedScaling::default()
        };
        apply_update(&mut current, Some(&update), Some("ENABLED"), None);
        let scaling = current.managed_scaling.clone().unwrap_or_default();
        assert_eq!(scaling.target_capacity, Some(50));
        assert_eq!(scaling.instance_warmup_period, Some(300));
        assert_eq!(
            current.managed_termination_protection.as_deref(),
            Some("ENABLED")
        );
        assert_eq!(current.managed_draining.as_deref(), Some("ENABLED"));
    }

    #[test]
    fn providers_select_instances_by_group_or_by_fargate_capacity() {
        let asg = CapacityProvider {
            name: Some("web".into()),
            auto_scaling_group_provider: Some(AutoScalingGroupProvider {
                auto_scaling_group_arn: Some(
                    "arn:aws:autoscaling:us-east-1:0:autoScalingGroup:x:autoScalingGroupName/web-asg"
                        .into(),
                ),
                ..AutoScalingGroupProvider::default()
            }),
            ..CapacityProvider::default()
        };
        assert_eq!(
            asg.instance_attribute(),
            (AUTOSCALING_GROUP_ATTRIBUTE, Some("web-asg".to_string()))
        );
        assert_eq!(asg.launch_type(), "EC2");
        let spot = built_in(FARGATE_SPOT, "arn".into());
        assert_eq!(
            spot.instance_attribute(),
            (FARGATE_CAPACITY_ATTRIBUTE, None)
        );
        assert_eq!(spot.launch_type(), "FARGATE");
    }
}

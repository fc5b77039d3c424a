//! Account settings: the names ECS knows, the values each accepts and the defaults AWS manages.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// One account setting as ECS returns it.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Setting {
    pub name: Option<String>,
    pub value: Option<String>,
    pub principal_arn: Option<String>,
    /// `user` for settings someone set, `aws_managed` for defaults.
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

/// Every setting name, with the values it accepts and its AWS-managed default.
pub const SETTINGS: &[(&str, &[&str], &str)] = &[
    ("serviceLongArnFormat", &["enabled", "disabled"], "enabled"),
    ("taskLongArnFormat", &["enabled", "disabled"], "enabled"),
    (
        "containerInstanceLongArnFormat",
        &["enabled", "disabled"],
        "enabled",
    ),
    ("awsvpcTrunking", &["enabled", "disabled"], "disabled"),
    (
        "containerInsights",
        &["enabled", "disabled", "enhanced"],
        "disabled",
    ),
    ("fargateFIPSMode", &["enabled", "disabled"], "disabled"),
    ("tagResourceAuthorization", &["on", "off"], "on"),
    ("fargateTaskRetirementWaitPeriod", &["0", "7", "14"], "7"),
    ("guardDutyActivate", &["on", "off"], "off"),
    (
        "defaultLogDriverMode",
        &["blocking", "non-blocking"],
        "non-blocking",
    ),
    ("fargateEventWindows", &["enabled", "disabled"], "disabled"),
];

/// The AWS-managed default value of setting `name`, if ECS knows the name.
pub fn default_value(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, default)| *default)
}

/// Checks a setting name.
pub fn validate_name(name: &str) -> Result<(), String> {
    if SETTINGS.iter().any(|(n, _, _)| *n == name) {
        Ok(())
    } else {
        let names: Vec<&str> = SETTINGS.iter().map(|(n, _, _)| *n).collect();
        Err(format!(
            "'{name}' is not an account setting name: use one of {}.",
            names.join(", ")
        ))
    }
}

/// Checks a value for setting `name` (the name must be valid).
pub fn validate_value(name: &str, value: &str) -> Result<(), String> {
    validate_name(name)?;
    let allowed = SETTINGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, values, _)| *values)
        .unwrap_or_default();
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "'{value}' is not a valid value for {name}: use one of {}.",
            allowed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_setting_accepts_only_its_own_values() {
        assert!(validate_value("containerInsights", "enhanced").is_ok());
        assert!(validate_value("taskLongArnFormat", "enhanced").is_err());
        assert!(validate_value("fargateTaskRetirementWaitPeriod", "14").is_ok());
        assert!(validate_value("fargateTaskRetirementWaitPeriod", "3").is_err());
        assert!(validate_value("noSuchSetting", "enabled").is_err());
    }

    #[test]
    fn every_default_is_an_allowed_value() {
        for (name, values, default) in SETTINGS {
            assert!(values.contains(default), "{name}");
            assert_eq!(default_value(name), Some(*default));
        }
    }
}

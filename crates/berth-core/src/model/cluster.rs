//! The cluster shape and its settings and configuration.

use super::common::{Attachment, KeyValuePair, Tag};
use super::status::ClusterStatus;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// An ECS cluster as DescribeClusters returns it, and as it is stored less the counts and
/// statistics, which DescribeClusters takes from the state cache.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub cluster_arn: Option<String>,
    pub cluster_name: Option<String>,
    pub configuration: Option<ClusterConfiguration>,
    pub status: Option<ClusterStatus>,
    pub registered_container_instances_count: Option<i32>,
    pub running_tasks_count: Option<i32>,
    pub pending_tasks_count: Option<i32>,
    pub active_services_count: Option<i32>,
    pub statistics: Option<Vec<KeyValuePair>>,
    pub tags: Option<Vec<Tag>>,
    pub settings: Option<Vec<ClusterSetting>>,
    pub capacity_providers: Option<Vec<String>>,
    pub default_capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    pub attachments: Option<Vec<Attachment>>,
    pub attachments_status: Option<String>,
    pub service_connect_defaults: Option<ClusterServiceConnectDefaults>,
}

/// A cluster setting; ECS knows only `containerInsights` (`enabled`, `disabled`, `enhanced`).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSetting {
    pub name: Option<String>,
    pub value: Option<String>,
}

/// Cluster-wide configuration: execute-command and managed storage.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfiguration {
    pub execute_command_configuration: Option<ExecuteCommandConfiguration>,
    pub managed_storage_configuration: Option<ManagedStorageConfiguration>,
}

/// How `ecs execute-command` sessions are logged.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteCommandConfiguration {
    pub kms_key_id: Option<String>,
    pub logging: Option<String>,
    pub log_configuration: Option<ExecuteCommandLogConfiguration>,
}

/// Where execute-command session logs go.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteCommandLogConfiguration {
    pub cloud_watch_log_group_name: Option<String>,
    pub cloud_watch_encryption_enabled: Option<bool>,
    pub s3_bucket_name: Option<String>,
    pub s3_encryption_enabled: Option<bool>,
    pub s3_key_prefix: Option<String>,
}

/// Keys for managed storage encryption.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedStorageConfiguration {
    pub kms_key_id: Option<String>,
    pub fargate_ephemeral_storage_kms_key_id: Option<String>,
}

/// One capacity provider of a default strategy.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    pub weight: Option<i32>,
    pub base: Option<i32>,
}

/// Service Connect defaults as returned.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterServiceConnectDefaults {
    pub namespace: Option<String>,
}

/// Values ECS accepts for the `containerInsights` setting.
pub const CONTAINER_INSIGHTS_VALUES: [&str; 3] = ["enabled", "disabled", "enhanced"];

/// Checks cluster settings: only `containerInsights`, with one of its values.
pub fn validate_cluster_settings(settings: &[ClusterSetting]) -> Result<(), String> {
    for setting in settings {
        match setting.name.as_deref() {
            Some("containerInsights") => {}
            other => {
                return Err(format!(
                "Invalid cluster setting name '{}': the only supported name is containerInsights.",
                other.unwrap_or("")
            ))
            }
        }
        let value = setting.value.as_deref().unwrap_or("");
        if !CONTAINER_INSIGHTS_VALUES.contains(&value) {
            return Err(format!(
                "Invalid value '{value}' for containerInsights: use enabled, disabled or enhanced."
            ));
        }
    }
    Ok(())
}

/// Applies `updates` to `settings`, replacing the value of a setting already present.
pub fn merge_cluster_settings(settings: &mut Vec<ClusterSetting>, updates: &[ClusterSetting]) {
    for update in updates {
        match settings.iter_mut().find(|s| s.name == update.name) {
            Some(existing) => existing.value = update.value.clone(),
            None => settings.push(update.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(name: &str, value: &str) -> ClusterSetting {
        ClusterSetting {
            name: Some(name.into()),
            value: Some(value.into()),
        }
    }

    #[test]
    fn only_container_insights_with_known_values_is_a_valid_setting() {
        assert!(validate_cluster_settings(&[setting("containerInsights", "enabled")]).is_ok());
        assert!(validate_cluster_settings(&[setting("containerInsights", "on")]).is_err());
        assert!(validate_cluster_settings(&[setting("other", "enabled")]).is_err());
    }

    #[test]
    fn merged_settings_replace_existing_values() {
        let mut settings = vec![setting("containerInsights", "disabled")];
        merge_cluster_settings(&mut settings, &[setting("containerInsights", "enabled")]);
        assert_eq!(settings, vec![setting("containerInsights", "enabled")]);
    }

    #[test]
    fn cluster_serializes_with_ecs_field_names() {
        let cluster = Cluster {
            cluster_name: Some("demo".into()),
            registered_container_instances_count: Some(0),
            ..Cluster::default()
        };
        let json = serde_json::to_value(&cluster).expect("serializes");
        assert_eq!(json["clusterName"], "demo");
        assert_eq!(json["registeredContainerInstancesCount"], 0);
        assert!(json.get("tags").is_none());
    }
}

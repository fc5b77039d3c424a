//! Registration: RegisterContainerInstance with the host's resources, versions and attributes,
//! as the instance kept in the data dir when there is one; retried while the server is away.

use crate::agent::{AgentConfig, AgentError};
use crate::backoff::Backoff;
use crate::client::ServerClient;
use crate::host;
use crate::identity::{self, Identity};
use crate::runtime::RuntimeInfo;
use berth_core::model::container_instance::{ContainerInstance, VersionInfo};
use berth_core::model::{Attribute, Resource};
use serde::{Deserialize, Serialize};

/// Input of RegisterContainerInstance as the agent sends it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    pub cluster: String,
    pub total_resources: Vec<Resource>,
    pub version_info: VersionInfo,
    pub attributes: Vec<Attribute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterResponse {
    container_instance: ContainerInstance,
}

/// The registration request of this host; `host_address` (see [`host::address`]) becomes its
/// [`host::HOST_ADDRESS`] attribute.
pub fn request(
    config: &AgentConfig,
    runtime: &RuntimeInfo,
    previous: Option<&Identity>,
    served: &[&str],
    host_address: Option<std::net::IpAddr>,
) -> RegisterRequest {
    let resources = host::host_resources(config.memory_reserve_mib);
    let mut attributes = host::attributes(
        config.availability_zone.as_deref(),
        &host::capabilities(runtime, &config.allowances, served),
        &config.attributes,
    );
    if let Some(ip) = host_address {
        if !attributes.iter().any(|a| a.name == host::HOST_ADDRESS) {
            attributes.push(Attribute {
                name: host::HOST_ADDRESS.to_string(),
                value: Some(ip.to_string()),
                target_type: None,
                target_id: None,
            });
        }
    }
    RegisterRequest {
        cluster: config.cluster.clone(),
        total_resources: host::total_resources(resources),
        version_info: VersionInfo {
            agent_version: Some(crate::AGENT_VERSION.to_string()),
            agent_hash: Some(
                option_env!("BERTH_GIT_HASH")
                    .unwrap_or("unknown")
                    .to_string(),
            ),
            docker_version: Some(format!("DockerVersion: {}", runtime.version)),
        },
        attributes,
        container_instance_arn: previous.map(|p| p.container_instance_arn.clone()),
    }
}

/// Registers this host as `previous` (the instance recovered by `crate::recovery`) or, when
/// there is none, as a new instance; keeps the identity the server returns (durably, with a
/// backup) and returns it. Retries while the server cannot be reached; a rejection is an
/// error.
pub async fn register(
    config: &AgentConfig,
    client: &ServerClient,
    runtime: &RuntimeInfo,
    previous: Option<Identity>,
    served: &[&str],
    host_address: Option<std::net::IpAddr>,
) -> Result<Identity, AgentError> {
    let request = request(config, runtime, previous.as_ref(), served, host_address);
    let mut backoff = Backoff::default();
    let mut attempts = 0u32;
    let response: RegisterResponse = loop {
        match client.call("RegisterContainerInstance", &request).await {
            Ok(response) => break response,
            Err(err) if err.is_retryable() => {
                attempts += 1;
                if attempts.is_power_of_two() {
                    tracing::warn!(server = %client.base_url(), "cannot register yet, retrying: {err}");
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(err) => {
                return Err(AgentError::Registration {
                    cluster: config.cluster.clone(),
                    message: err.to_string(),
                    identity_file: previous
                        .as_ref()
                        .map(|_| config.data_dir.join(identity::IDENTITY_FILE)),
                })
            }
        }
    };
    let arn = response
        .container_instance
        .container_instance_arn
        .ok_or_else(|| AgentError::Registration {
            cluster: config.cluster.clone(),
            message: "the server returned no containerInstanceArn".into(),
            identity_file: None,
        })?;
    let identity = Identity {
        cluster: config.cluster.clone(),
        container_instance_arn: arn,
    };
    identity::save(&config.data_dir, &identity)?;
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restarted_agent_registers_with_its_kept_arn() {
        let config = AgentConfig::new(
            "http://127.0.0.1:7700",
            "demo",
            "/tmp/berth-test".into(),
            crate::credentials::for_fake_servers(),
        );
        let runtime = RuntimeInfo::stock("27.1.0");
        let fresh = request(&config, &runtime, None, &[], None);
        let json = serde_json::to_value(&fresh).expect("json");
        assert_eq!(json["cluster"], "demo");
        assert!(json.get("containerInstanceArn").is_none());
        assert_eq!(json["totalResources"][0]["name"], "CPU");
        assert_eq!(json["versionInfo"]["agentVersion"], crate::AGENT_VERSION);
        let kept = Identity {
            cluster: "demo".into(),
            container_instance_arn: "arn:x/demo/abc".into(),
        };
        let again =
            serde_json::to_value(request(&config, &runtime, Some(&kept), &[], None)).expect("json");
        assert_eq!(again["containerInstanceArn"], "arn:x/demo/abc");
    }
}

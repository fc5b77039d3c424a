//! The container instance shape and the pure rules around it: which resources an instance
//! registers, how its attributes are named and merged, and the identifiers it is given.

use super::common::{merge_tags, validate_tags, Attachment, Attribute, Resource, Tag, Timestamp};
use super::status::{ContainerInstanceStatus, InstanceHealthCheckState};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// The attribute an instance carries when its agent offers Fargate capacity (`berth agent
/// --fargate`, on for `berth up`): tasks of the FARGATE launch type, and of the FARGATE and
/// FARGATE_SPOT capacity providers, are placed only on such instances.
pub const FARGATE_CAPACITY_ATTRIBUTE: &str = "berth.capacity.fargate";

/// The attribute that names the Auto Scaling group an instance belongs to (given at
/// registration, e.g. `berth agent --attribute berth.autoscaling-group=web`): a capacity
/// provider whose `autoScalingGroupArn` names that group takes its capacity from such
/// instances.
pub const AUTOSCALING_GROUP_ATTRIBUTE: &str = "berth.autoscaling-group";

impl ContainerInstance {
    /// Whether this instance offers Fargate capacity.
    pub fn offers_fargate(&self) -> bool {
        self.attributes
            .iter()
            .flatten()
            .any(|a| a.name == FARGATE_CAPACITY_ATTRIBUTE)
    }
}

/// A container instance as DescribeContainerInstances returns it, and as it is stored (with
/// its tags in the top-level `tags` array) less what the API derives when it shows one:
/// `version`, `remainingResources`, `runningTasksCount` and `pendingTasksCount`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstance {
    pub container_instance_arn: Option<String>,
    pub ec2_instance_id: Option<String>,
    pub capacity_provider_name: Option<String>,
    pub version: Option<i64>,
    pub version_info: Option<VersionInfo>,
    pub remaining_resources: Option<Vec<Resource>>,
    pub registered_resources: Option<Vec<Resource>>,
    pub status: Option<ContainerInstanceStatus>,
    pub status_reason: Option<String>,
    pub agent_connected: Option<bool>,
    pub running_tasks_count: Option<i32>,
    pub pending_tasks_count: Option<i32>,
    pub agent_update_status: Option<String>,
    pub attributes: Option<Vec<Attribute>>,
    pub registered_at: Option<Timestamp>,
    pub attachments: Option<Vec<Attachment>>,
    pub tags: Option<Vec<Tag>>,
    pub health_status: Option<ContainerInstanceHealthStatus>,
}

impl ContainerInstance {
    /// The instance as it is stored: without what the API derives when it shows it.
    pub fn without_derived(self) -> ContainerInstance {
        ContainerInstance {
            version: None,
            remaining_resources: None,
            running_tasks_count: None,
            pending_tasks_count: None,
            ..self
        }
    }
}

/// Versions of the agent and the container runtime on an instance.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub agent_version: Option<String>,
    pub agent_hash: Option<String>,
    pub docker_version: Option<String>,
}

/// The health of an instance: an overall state and the checks it is made of.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstanceHealthStatus {
    pub overall_status: Option<InstanceHealthCheckState>,
    pub details: Option<Vec<InstanceHealthCheckResult>>,
}

/// One health check of an instance (`CONTAINER_RUNTIME`, `ACCELERATED_COMPUTE`, `DAEMON`).
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceHealthCheckResult {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub status: Option<InstanceHealthCheckState>,
    pub status_reason: Option<String>,
    pub last_updated: Option<Timestamp>,
    pub last_status_change: Option<Timestamp>,
}

/// A device an instance offers to tasks; ECS knows only `GPU`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformDevice {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
}

/// The only `targetType` of attributes.
pub const TARGET_TYPE: &str = "container-instance";

/// Ports ECS reserves on every instance when the agent names none: SSH, the Docker daemon
/// and the agent's introspection ports.
pub const DEFAULT_RESERVED_PORTS: [&str; 5] = ["22", "2375", "2376", "51678", "51679"];

/// Custom attributes (those not set by the agent) one instance may carry, as ECS documents
/// for AttributeLimitExceededException.
pub const MAX_CUSTOM_ATTRIBUTES: usize = 10;

/// Longest attribute name or value.
pub const MAX_ATTRIBUTE_LENGTH: usize = 128;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./\\".contains(c)
}

fn is_value_char(c: char) -> bool {
    is_name_char(c) || "@: ".contains(c)
}

/// Whether `name` is a valid attribute name: 1–128 letters, digits, hyphens, underscores,
/// periods, forward slashes or back slashes, as the ECS model documents.
pub fn is_valid_attribute_name(name: &str) -> bool {
    (1..=MAX_ATTRIBUTE_LENGTH).contains(&name.chars().count()) && name.chars().all(is_name_char)
}

/// Whether `value` is a valid attribute value: 1–128 of the characters names allow plus at
/// signs, colons and spaces, not starting or ending with a space.
pub fn is_valid_attribute_value(value: &str) -> bool {
    (1..=MAX_ATTRIBUTE_LENGTH).contains(&value.chars().count())
        && value.chars().all(is_value_char)
        && !value.starts_with(' ')
        && !value.ends_with(' ')
}

/// Checks an attribute's name and value (targets are the caller's business); returns the
/// message for the user.
pub fn validate_attribute(attribute: &Attribute) -> Result<(), String> {
    if !is_valid_attribute_name(&attribute.name) {
        return Err(format!(
            "Attribute name '{}' is invalid: use 1 to 128 letters, numbers, hyphens, underscores, \
             periods, forward slashes or back slashes.",
            attribute.name
        ));
    }
    if let Some(value) = &attribute.value {
        if !is_valid_attribute_value(value) {
            return Err(format!(
                "The value of attribute '{}' is invalid: use 1 to 128 letters, numbers, hyphens, \
                 underscores, periods, at signs, forward slashes, back slashes, colons or spaces, \
                 not starting or ending with a space (leave the value out for an attribute \
                 without one).",
                attribute.name
            ));
        }
    }
    Ok(())
}

/// Whether an attribute is one the agent reports (`ecs.*`, `com.amazonaws.ecs.*`) rather than a
/// custom one.
pub fn is_agent_attribute(name: &str) -> bool {
    name.starts_with("ecs.") || name.starts_with("com.amazonaws.ecs.")
}

/// How many custom attributes a list holds.
pub fn custom_attribute_count(attributes: &[Attribute]) -> usize {
    attributes
        .iter()
        .filter(|a| !is_agent_attribute(&a.name))
        .count()
}

/// An attribute as an instance keeps it: name and value only.
pub fn stored_attribute(name: &str, value: Option<&str>) -> Attribute {
    Attribute {
        name: name.to_string(),
        value: value.map(str::to_string),
        target_type: None,
        target_id: None,
    }
}

/// Sets attribute `name` to `value`, replacing the value of one already present.
pub fn put_attribute(attributes: &mut Vec<Attribute>, name: &str, value: Option<&str>) {
    match attributes.iter_mut().find(|a| a.name == name) {
        Some(existing) => existing.value = value.map(str::to_string),
        None => attributes.push(stored_attribute(name, value)),
    }
}

/// Removes attribute `name`; whether it was there.
pub fn remove_attribute(attributes: &mut Vec<Attribute>, name: &str) -> bool {
    let before = attributes.len();
    attributes.retain(|a| a.name != name);
    attributes.len() != before
}

/// The attributes of a re-registration: the agent's new report replaces its old one, while
/// custom attributes already on the instance stay unless the report names them again.
pub fn reregistered_attributes(existing: &[Attribute], reported: &[Attribute]) -> Vec<Attribute> {
    let mut attributes = Vec::new();
    for attribute in reported {
        put_attribute(&mut attributes, &attribute.name, attribute.value.as_deref());
    }
    for attribute in existing {
        if !is_agent_attribute(&attribute.name)
            && !attributes.iter().any(|a| a.name == attribute.name)
        {
            attributes.push(stored_attribute(
                &attribute.name,
                attribute.value.as_deref(),
            ));
        }
    }
    attributes
}

/// The attributes an instance registers with: each checked (its target, if named, must be
/// `container-instance`), kept without targets, a repeated name keeping its last value.
pub fn reported_attributes(attributes: &[Attribute]) -> Result<Vec<Attribute>, String> {
    let mut reported = Vec::new();
    for attribute in attributes {
        validate_attribute(attribute)?;
        if let Some(target_type) = attribute.target_type.as_deref() {
            if target_type != TARGET_TYPE {
                return Err(format!(
                    "Attribute '{}' has targetType '{target_type}': the only target type is \
                     container-instance.",
                    attribute.name
                ));
            }
        }
        put_attribute(&mut reported, &attribute.name, attribute.value.as_deref());
    }
    Ok(reported)
}

/// Checks that attributes stay within `MAX_CUSTOM_ATTRIBUTES` custom ones.
pub fn check_custom_attribute_limit(attributes: &[Attribute]) -> Result<(), String> {
    let custom = custom_attribute_count(attributes);
    if custom > MAX_CUSTOM_ATTRIBUTES {
        return Err(format!(
            "The container instance would have {custom} custom attributes: at most \
             {MAX_CUSTOM_ATTRIBUTES} are allowed per resource. Delete some with DeleteAttributes \
             first."
        ));
    }
    Ok(())
}

/// A checked RegisterContainerInstance call: what it sets on a new or a known instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The `registeredResources`, from `registered_resources`.
    pub resources: Vec<Resource>,
    /// The attributes the agent reports, from `reported_attributes`.
    pub attributes: Vec<Attribute>,
    /// Tags to put on the instance, already validated.
    pub tags: Vec<Tag>,
    /// Agent and runtime versions, when given.
    pub version_info: Option<VersionInfo>,
    /// The EC2 instance id of an identity document, when one was given.
    pub ec2_instance_id: Option<String>,
}

impl Registration {
    /// A newly registered ACTIVE instance with id `id` and ARN `arn`, registered at `now`.
    pub fn new_instance(
        &self,
        arn: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<ContainerInstance, String> {
        check_custom_attribute_limit(&self.attributes)?;
        Ok(ContainerInstance {
            container_instance_arn: Some(arn.to_string()),
            ec2_instance_id: Some(
                self.ec2_instance_id
                    .clone()
                    .unwrap_or_else(|| managed_instance_id_for(id)),
            ),
            version_info: Some(self.version_info.clone().unwrap_or_default()),
            registered_resources: Some(self.resources.clone()),
            status: Some(ContainerInstanceStatus::Active),
            agent_connected: Some(true),
            attributes: Some(self.attributes.clone()),
            registered_at: Some(now),
            attachments: Some(Vec::new()),
            tags: Some(self.tags.clone()),
            ..ContainerInstance::default()
        })
    }

    /// A known instance registered again: new resources (what its tasks hold is counted
    /// against them when it is shown), the agent's new attributes (custom ones kept), new
    /// versions, tags merged, agent connected; its id, status and `registeredAt` unchanged.
    pub fn reregister(&self, mut existing: ContainerInstance) -> Result<ContainerInstance, String> {
        existing.registered_resources = Some(self.resources.clone());
        let attributes = reregistered_attributes(
            existing.attributes.as_deref().unwrap_or_default(),
            &self.attributes,
        );
        check_custom_attribute_limit(&attributes)?;
        existing.attributes = Some(attributes);
        if let Some(version_info) = &self.version_info {
            existing.version_info = Some(version_info.clone());
        }
        if let Some(instance_id) = &self.ec2_instance_id {
            existing.ec2_instance_id = Some(instance_id.clone());
        }
        let tags = existing.tags.get_or_insert_with(Vec::new);
        merge_tags(tags, &self.tags);
        validate_tags(tags)?;
        existing.agent_connected = Some(true);
        Ok(existing)
    }
}

/// Whether `id` can name a container instance: 1–64 letters, digits or hyphens (Berth mints
/// 32 lowercase hex characters; older ECS ids were UUIDs).
pub fn is_valid_instance_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The `ec2InstanceId` of an instance registered without an EC2 identity: a managed-instance
/// style id (`mi-` and 17 hex characters) derived from the container instance id, so it stays
/// the same across re-registrations.
pub fn managed_instance_id_for(id: &str) -> String {
    let hex: String = id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .chain(std::iter::repeat('0'))
        .take(17)
        .collect();
    format!("mi-{hex}")
}

/// The `instanceId` of an EC2 instance identity document, if it names one; an error when the
/// document is not a JSON object.
pub fn instance_id_of_identity_document(document: &str) -> Result<Option<String>, String> {
    let json: serde_json::Value = serde_json::from_str(document).map_err(|_| {
        "instanceIdentityDocument is not valid JSON: pass the document the instance metadata \
         service returns, or leave it out."
            .to_string()
    })?;
    let object = json.as_object().ok_or_else(|| {
        "instanceIdentityDocument must be a JSON object such as {\"instanceId\": \"i-...\"}."
            .to_string()
    })?;
    Ok(object
        .get("instanceId")
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty())
        .map(str::to_string))
}

/// The kind of value a known resource holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    StringSet,
}

const KNOWN_RESOURCES: [(&str, Kind); 4] = [
    ("CPU", Kind::Integer),
    ("MEMORY", Kind::Integer),
    ("PORTS", Kind::StringSet),
    ("PORTS_UDP", Kind::StringSet),
];

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Integer => "INTEGER",
        Kind::StringSet => "STRINGSET",
    }
}

/// An INTEGER resource in the form ECS returns it.
pub fn integer_resource(name: &str, value: i32) -> Resource {
    Resource {
        name: Some(name.to_string()),
        type_: Some("INTEGER".to_string()),
        double_value: Some(0.0),
        long_value: Some(0),
        integer_value: Some(value),
        string_set_value: None,
    }
}

/// A STRINGSET resource in the form ECS returns it.
pub fn string_set_resource(name: &str, values: Vec<String>) -> Resource {
    Resource {
        name: Some(name.to_string()),
        type_: Some("STRINGSET".to_string()),
        double_value: Some(0.0),
        long_value: Some(0),
        integer_value: Some(0),
        string_set_value: Some(values),
    }
}

fn integer_value_of(name: &str, resource: &Resource) -> Result<i32, String> {
    let value = match (resource.integer_value, resource.long_value) {
        (Some(v), _) => i64::from(v),
        (None, Some(v)) => v,
        (None, None) => return Err(format!("Resource {name} needs an integerValue.")),
    };
    if value < 0 {
        return Err(format!(
            "Resource {name} has a negative value ({value}): use 0 or more."
        ));
    }
    i32::try_from(value).map_err(|_| format!("Resource {name} is too large ({value})."))
}

fn ports_of(name: &str, resource: &Resource) -> Result<Vec<String>, String> {
    let mut ports: Vec<String> = Vec::new();
    for text in resource.string_set_value.iter().flatten() {
        let port = text
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                format!(
                    "Resource {name} lists '{text}', which is not a port number from 1 to 65535."
                )
            })?;
        let port = port.to_string();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    Ok(ports)
}

/// The `registeredResources` of an instance from the `totalResources` and `platformDevices` it
/// registers with: CPU and MEMORY (INTEGER, 0 when absent), PORTS and PORTS_UDP (STRINGSET of
/// reserved ports; ECS's defaults for PORTS and none for PORTS_UDP when absent), and GPU with
/// the ids of the GPU devices. Unknown names, wrong types and negative values are errors.
pub fn registered_resources(
    total: &[Resource],
    devices: &[PlatformDevice],
) -> Result<Vec<Resource>, String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut cpu = 0;
    let mut memory = 0;
    let mut ports: Vec<String> = DEFAULT_RESERVED_PORTS.map(String::from).to_vec();
    let mut ports_udp: Vec<String> = Vec::new();
    for resource in total {
        let name = resource.name.as_deref().unwrap_or("");
        let Some((name, kind)) = KNOWN_RESOURCES.iter().find(|(n, _)| *n == name) else {
            return Err(format!(
                "Invalid resource name '{name}' in totalResources: use CPU, MEMORY, PORTS or \
                 PORTS_UDP (GPUs are registered as platformDevices)."
            ));
        };
        if seen.contains(name) {
            return Err(format!(
                "Resource {name} appears more than once in totalResources."
            ));
        }
        seen.push(name);
        if let Some(type_) = resource.type_.as_deref() {
            if type_ != kind_name(*kind) {
                return Err(format!(
                    "Resource {name} has type '{type_}': its type must be {}.",
                    kind_name(*kind)
                ));
            }
        }
        match *name {
            "CPU" => cpu = integer_value_of(name, resource)?,
            "MEMORY" => memory = integer_value_of(name, resource)?,
            "PORTS" => ports = ports_of(name, resource)?,
            _ => ports_udp = ports_of(name, resource)?,
        }
    }
    let mut resources = vec![
        integer_resource("CPU", cpu),
        integer_resource("MEMORY", memory),
        string_set_resource("PORTS", ports),
        string_set_resource("PORTS_UDP", ports_udp),
    ];
    let mut gpus: Vec<String> = Vec::new();
    for device in devices {
        if device.type_ != "GPU" {
            return Err(format!(
                "Platform device '{}' has type '{}': the only supported type is GPU.",
                device.id, device.type_
            ));
        }
        if device.id.is_empty() {
            return Err("Every platform device needs an id.".to_string());
        }
        if gpus.contains(&device.id) {
            return Err(format!(
                "Platform device '{}' appears more than once.",
                device.id
            ));
        }
        gpus.push(device.id.clone());
    }
    if !gpus.is_empty() {
        resources.push(string_set_resource("GPU", gpus));
    }
    Ok(resources)
}

/// The attribute an agent registers its host's address in: the address other hosts and the
/// host's own containers reach its published ports on (load balancer targets, Cloud Map
/// instances).
pub const HOST_ADDRESS_ATTRIBUTE: &str = "berth.host-address";

#[cfg(test)]
mod tests;

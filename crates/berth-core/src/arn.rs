//! ECS Amazon Resource Names in the long format, and the parsing of the short forms
//! (name, id, `family:revision`) that ECS operations accept in their place.

use std::fmt;

/// Region and account that every ARN this server mints carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnContext {
    /// AWS region, such as `us-east-1`.
    pub region: String,
    /// Twelve-digit account id, such as `000000000000`.
    pub account_id: String,
}

impl ArnContext {
    /// A context for the given region and account id.
    pub fn new(region: impl Into<String>, account_id: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            account_id: account_id.into(),
        }
    }

    fn prefix(&self) -> String {
        format!("arn:aws:ecs:{}:{}:", self.region, self.account_id)
    }

    /// `arn:aws:ecs:{region}:{account}:cluster/{name}`
    pub fn cluster(&self, name: &str) -> String {
        format!("{}cluster/{name}", self.prefix())
    }

    /// `arn:aws:ecs:{region}:{account}:task-definition/{family}:{revision}`
    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        format!("{}task-definition/{family}:{revision}", self.prefix())
    }

    /// `arn:aws:ecs:{region}:{account}:container-instance/{cluster}/{id}`
    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        format!("{}container-instance/{cluster}/{id}", self.prefix())
    }

    /// `arn:aws:ecs:{region}:{account}:task/{cluster}/{id}`
    pub fn task(&self, cluster: &str, id: &str) -> String {
        format!("{}task/{cluster}/{id}", self.prefix())
    }

    /// `arn:aws:ecs:{region}:{account}:service/{cluster}/{name}`
    pub fn service(&self, cluster: &str, name: &str) -> String {
        format!("{}service/{cluster}/{name}", self.prefix())
    }

    /// `arn:aws:ecs:{region}:{account}:capacity-provider/{name}`
    pub fn capacity_provider(&self, name: &str) -> String {
        format!("{}capacity-provider/{name}", self.prefix())
    }
}

/// A parsed ECS ARN: the resource type and the path after it, split on `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    /// Region field of the ARN.
    pub region: String,
    /// Account field of the ARN.
    pub account_id: String,
    /// Resource type: `cluster`, `task-definition`, `container-instance`, `task`, `service`, ...
    pub resource_type: String,
    /// The resource path after the type, split on `/` (`["demo"]`, `["demo", "<id>"]`).
    pub path: Vec<String>,
}

impl Arn {
    /// Parses `arn:{partition}:ecs:{region}:{account}:{type}/{path}`; `None` when the text is
    /// not an ECS ARN.
    pub fn parse(text: &str) -> Option<Arn> {
        let mut parts = text.splitn(6, ':');
        if parts.next()? != "arn" {
            return None;
        }
        let _partition = parts.next()?;
        if parts.next()? != "ecs" {
            return None;
        }
        let region = parts.next()?.to_string();
        let account_id = parts.next()?.to_string();
        let resource = parts.next()?;
        let (resource_type, rest) = resource.split_once('/')?;
        if resource_type.is_empty() || rest.is_empty() {
            return None;
        }
        Some(Arn {
            region,
            account_id,
            resource_type: resource_type.to_string(),
            path: rest.split('/').map(str::to_string).collect(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:aws:ecs:{}:{}:{}/{}",
            self.region,
            self.account_id,
            self.resource_type,
            self.path.join("/")
        )
    }
}

/// The cluster name a `cluster` request field names: a bare name or a cluster ARN.
/// `None` when it is an ARN of another resource type.
pub fn cluster_name_of(reference: &str) -> Option<String> {
    if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)?;
        (arn.resource_type == "cluster" && arn.path.len() == 1).then(|| arn.path[0].clone())
    } else {
        Some(reference.to_string())
    }
}

/// The last path element of a reference that may be an ARN of `resource_type` or a bare id
/// (container instance and task ids); `None` when it is an ARN of another type.
pub fn id_of(reference: &str, resource_type: &str) -> Option<String> {
    if reference.starts_with("arn:") {
        let arn = Arn::parse(reference)?;
        (arn.resource_type == resource_type)
            .then(|| arn.path.last().cloned())
            .flatten()
    } else {
        Some(reference.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_arn_round_trips_through_parse() {
        let ctx = ArnContext::new("us-east-1", "000000000000");
        let arn = ctx.cluster("demo");
        assert_eq!(arn, "arn:aws:ecs:us-east-1:000000000000:cluster/demo");
        let parsed = Arn::parse(&arn).expect("valid arn");
        assert_eq!(parsed.resource_type, "cluster");
        assert_eq!(parsed.path, vec!["demo"]);
        assert_eq!(parsed.to_string(), arn);
    }

    #[test]
    fn cluster_name_of_accepts_names_and_cluster_arns_only() {
        assert_eq!(cluster_name_of("demo").as_deref(), Some("demo"));
        assert_eq!(
            cluster_name_of("arn:aws:ecs:us-east-1:000000000000:cluster/demo").as_deref(),
            Some("demo")
        );
        assert_eq!(
            cluster_name_of("arn:aws:ecs:us-east-1:000000000000:task/demo/abc"),
            None
        );
        assert_eq!(cluster_name_of("arn:aws:s3:::bucket"), None);
    }

    #[test]
    fn id_of_takes_the_last_path_element_of_a_matching_arn() {
        let arn = "arn:aws:ecs:us-east-1:000000000000:container-instance/demo/abc123";
        assert_eq!(id_of(arn, "container-instance").as_deref(), Some("abc123"));
        assert_eq!(id_of(arn, "task"), None);
        assert_eq!(id_of("abc123", "task").as_deref(), Some("abc123"));
    }
}

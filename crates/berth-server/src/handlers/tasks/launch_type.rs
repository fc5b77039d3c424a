//! What a task's launch type and network mode add to it: Fargate's platform versions, the
//! Fargate capacity it must be placed on, and an awsvpc task's interface and platform as a new
//! task shows them.

use super::placement;
use crate::error::ApiError;
use berth_core::model::container_instance::FARGATE_CAPACITY_ATTRIBUTE;
use berth_core::model::service::AwsVpcConfiguration;
use berth_core::model::task::Task;
use berth_core::model::task_definition::TaskDefinition;

/// The Fargate platform versions Berth accepts: `LATEST` and `1.4.0` (Linux), and only for
/// the FARGATE launch type, as ECS.
pub(crate) fn check_platform_version(
    launch_type: &str,
    platform_version: Option<&str>,
) -> Result<(), ApiError> {
    match platform_version {
        None => Ok(()),
        Some(_) if launch_type != "FARGATE" => Err(ApiError::invalid_parameter(
            "The platformVersion parameter is only supported for tasks of the FARGATE launch type.",
        )),
        Some("LATEST" | "1.4.0") => Ok(()),
        Some(other) => Err(ApiError::client(format!(
            "Platform version {other} does not exist; Berth runs LATEST (1.4.0)."
        ))),
    }
}

/// What a new task shows of its launch type: an awsvpc task its interface (being made), a
/// Fargate task its platform and storage.
pub(crate) fn dress_task(
    app: &crate::app::App,
    task: &mut Task,
    td: &TaskDefinition,
    vpc: Option<&AwsVpcConfiguration>,
    pick: usize,
) {
    if let Some(vpc) = vpc {
        let attachment_id = uuid::Uuid::new_v4().to_string();
        let groups = vpc.security_groups.as_deref().unwrap_or_default();
        let firewall = berth_core::security_group::firewall_for(groups, |id| {
            let key = berth_core::security_group::security_group_key(id);
            match app.get::<berth_core::security_group::SecurityGroup>(&key) {
                Ok(found) => found.map(|g| g.value),
                // Unreadable, it still filters (closed): only its host and group get in.
                Err(e) => {
                    tracing::warn!(group = id, "cannot read a security group: {e}");
                    Some(berth_core::security_group::SecurityGroup {
                        group_id: id.to_string(),
                        group_name: id.to_string(),
                        description: String::new(),
                        vpc_id: None,
                        ingress: Vec::new(),
                        tags: Vec::new(),
                    })
                }
            }
        });
        berth_core::awsvpc::attach(
            task,
            attachment_id,
            vpc,
            &app.config.subnets,
            pick,
            firewall,
        );
    }
    if task.launch_type.as_deref() == Some("FARGATE") {
        task.platform_version = Some("1.4.0".into());
        task.platform_family = Some("Linux".into());
        task.ephemeral_storage =
            Some(td.ephemeral_storage.clone().unwrap_or(
                berth_core::model::task_definition::EphemeralStorage { size_in_gib: 20 },
            ));
    }
}

/// What an instance must carry to run `td` on `launch_type`: the task definition's
/// requirements and, for the FARGATE launch type, Fargate capacity.
pub(crate) fn requirements_for(
    td: &TaskDefinition,
    launch_type: &str,
) -> Vec<berth_core::scheduler::RequiredAttribute> {
    let mut required = placement::requirements(td.requires_attributes.as_deref());
    if launch_type == "FARGATE" {
        required.push(berth_core::scheduler::RequiredAttribute {
            name: FARGATE_CAPACITY_ATTRIBUTE.into(),
            value: None,
            target: None,
        });
    }
    required
}

//! Container definition fields Berth cannot honour on a host with no AWS access: environment
//! files in S3 and AWS log routing (FireLens). A task using one fails to start with a reason naming the container and the field,
//! rather than running without what the field asked for.

use super::SpecError;
use berth_core::model::task_definition::ContainerDefinition;

/// Log drivers Berth refuses, with why: ECS resolves them with AWS services (CloudWatch Logs,
/// a FireLens router) or with secrets from them (Splunk tokens).
pub const UNSUPPORTED_LOG_DRIVERS: &[(&str, &str)] =
    &[("awsfirelens", "it needs a FireLens log router")];

/// The first field of `def` that Berth cannot honour, as an error naming it.
pub(super) fn check(def: &ContainerDefinition, container: &str) -> Result<(), SpecError> {
    let refuse = |field: &str, why: &'static str| {
        Err(SpecError::Unsupported {
            container: container.to_string(),
            field: field.to_string(),
            why,
        })
    };
    if def
        .environment_files
        .as_ref()
        .is_some_and(|f| !f.is_empty())
    {
        return refuse(
            "environmentFiles",
            "it reads environment files from Amazon S3",
        );
    }
    if let Some(log) = &def.log_configuration {
        if let Some((driver, why)) = UNSUPPORTED_LOG_DRIVERS
            .iter()
            .find(|(driver, _)| *driver == log.log_driver)
        {
            return refuse(&format!("logConfiguration.logDriver {driver}"), why);
        }
    }
    if def.firelens_configuration.is_some() {
        return refuse("firelensConfiguration", "Berth runs no FireLens log router");
    }
    Ok(())
}

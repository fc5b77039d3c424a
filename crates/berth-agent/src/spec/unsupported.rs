//! Container definition fields Berth cannot honour on a host with no AWS access: values kept
//! in AWS services (secrets, environment files in S3, registry credentials) and AWS log
//! routing. A task using one fails to start with a reason naming the container and the field,
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
    if def.secrets.as_ref().is_some_and(|s| !s.is_empty()) {
        return refuse(
            "secrets",
            "it reads values from AWS Systems Manager Parameter Store or Secrets Manager",
        );
    }
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
    if def.repository_credentials.is_some() {
        return refuse(
            "repositoryCredentials",
            "it reads registry credentials from AWS Secrets Manager",
        );
    }
    if let Some(log) = &def.log_configuration {
        if log.secret_options.as_ref().is_some_and(|s| !s.is_empty()) {
            return refuse(
                "logConfiguration.secretOptions",
                "it reads values from AWS Systems Manager Parameter Store or Secrets Manager",
            );
        }
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

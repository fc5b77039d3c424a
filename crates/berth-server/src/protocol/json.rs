//! The AWS JSON 1.1 framing of ECS: which operation a request names and the typed input its
//! body holds. Pure parsing; no handler logic.

use crate::error::ApiError;
use serde::de::DeserializeOwned;

/// Content type of ECS requests and responses.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// Prefix of the `X-Amz-Target` header for ECS.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
/// Largest request body accepted. ECS's largest inputs (task definitions) stay far below it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An AWS JSON service served on the endpoint, known by its `X-Amz-Target` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonService {
    /// ECS (AWS JSON 1.1).
    Ecs,
    /// CloudWatch Logs (AWS JSON 1.1, `Logs_20140328`).
    Logs,
    /// CloudWatch metrics in its JSON 1.0 form (`GraniteServiceVersion20100801`).
    CloudWatch,
    /// Secrets Manager (AWS JSON 1.1, `secretsmanager`).
    SecretsManager,
    /// SSM Parameter Store (AWS JSON 1.1, `AmazonSSM`).
    Ssm,
    /// Application Auto Scaling (AWS JSON 1.1, `AnyScaleFrontendService`).
    AutoScaling,
    /// AWS Cloud Map in its JSON 1.1 form (`Route53AutoNaming_v20170314`).
    ServiceDiscovery,
}

impl JsonService {
    /// The service whose prefix `target` carries, and the operation it names.
    pub fn of_target(target: &str) -> Option<(JsonService, &str)> {
        let (prefix, op) = target.split_once('.')?;
        let service = match prefix {
            "AmazonEC2ContainerServiceV20141113" => JsonService::Ecs,
            "Logs_20140328" => JsonService::Logs,
            "GraniteServiceVersion20100801" => JsonService::CloudWatch,
            "secretsmanager" => JsonService::SecretsManager,
            "AmazonSSM" => JsonService::Ssm,
            "AnyScaleFrontendService" => JsonService::AutoScaling,
            "Route53AutoNaming_v20170314" => JsonService::ServiceDiscovery,
            _ => return None,
        };
        (!op.is_empty()).then_some((service, op))
    }

    /// The name requests to this service are signed for (the SigV4 scope's service).
    pub fn signing_name(self) -> &'static str {
        match self {
            JsonService::Ecs => "ecs",
            JsonService::Logs => "logs",
            JsonService::CloudWatch => "monitoring",
            JsonService::SecretsManager => "secretsmanager",
            JsonService::Ssm => "ssm",
            JsonService::AutoScaling => "application-autoscaling",
            JsonService::ServiceDiscovery => "servicediscovery",
        }
    }

    /// The content type of this service's answers.
    pub fn content_type(self) -> &'static str {
        match self {
            JsonService::Ecs
            | JsonService::Logs
            | JsonService::SecretsManager
            | JsonService::Ssm
            | JsonService::AutoScaling
            | JsonService::ServiceDiscovery => CONTENT_TYPE,
            JsonService::CloudWatch => "application/x-amz-json-1.0",
        }
    }
}

/// The operation an `X-Amz-Target` header names.
pub fn operation_of(target: Option<&str>) -> Result<&str, ApiError> {
    let target = target.ok_or_else(|| {
        ApiError::new(
            "MissingAction",
            format!("The X-Amz-Target header is missing: send '{TARGET_PREFIX}<Operation>'."),
        )
    })?;
    match target.strip_prefix(TARGET_PREFIX) {
        Some(op) if !op.is_empty() => Ok(op),
        _ => Err(ApiError::new(
            "UnknownOperationException",
            format!("X-Amz-Target '{target}' does not name an ECS operation: expected '{TARGET_PREFIX}<Operation>'."),
        )),
    }
}

/// Reads an AWS JSON request body as a JSON object: an empty body is `{}`; malformed JSON or
/// anything but an object is a `SerializationException`.
pub fn parse_object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::serialization(format!("The request body is not valid JSON: {e}."))
    })?;
    if !value.is_object() {
        return Err(ApiError::serialization(
            "The request body must be a JSON object holding the operation's parameters.",
        ));
    }
    Ok(value)
}

/// Reads a request body as the operation's input. An empty body is `{}`. Malformed JSON and
/// wrong types are `SerializationException`s naming the field; a missing required member is an
/// `InvalidParameterException`.
pub fn parse_input<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(parse_object(body)?).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if let Some(field) = inner.strip_prefix("missing field ") {
            let field = field.trim_matches('`');
            let at = if path == "." {
                String::new()
            } else {
                format!(" in {path}")
            };
            ApiError::invalid_parameter(format!("Missing required parameter '{field}'{at}."))
        } else {
            ApiError::serialization(format!("Invalid value for '{path}': {inner}."))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Input {
        cluster_name: Option<String>,
        count: Option<i32>,
        family: Option<String>,
        #[serde(default)]
        #[allow(dead_code)]
        nested: Vec<Nested>,
    }

    #[derive(Debug, Deserialize)]
    struct Nested {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn target_names_the_operation_after_the_ecs_prefix() {
        assert_eq!(
            operation_of(Some("AmazonEC2ContainerServiceV20141113.CreateCluster")),
            Ok("CreateCluster")
        );
        assert!(operation_of(Some("DynamoDB_20120810.GetItem")).is_err());
        assert!(operation_of(Some("AmazonEC2ContainerServiceV20141113.")).is_err());
        assert_eq!(
            operation_of(None).expect_err("missing").name,
            "MissingAction"
        );
    }

    #[test]
    fn empty_body_reads_as_no_parameters() {
        let input: Input = parse_input(b"").expect("parses");
        assert!(input.cluster_name.is_none() && input.count.is_none() && input.family.is_none());
    }

    #[test]
    fn malformed_json_and_non_objects_are_serialization_errors() {
        assert_eq!(
            parse_input::<Input>(b"{").expect_err("bad").name,
            "SerializationException"
        );
        assert_eq!(
            parse_input::<Input>(b"[1]").expect_err("bad").name,
            "SerializationException"
        );
        assert_eq!(
            parse_input::<Input>(b"null").expect_err("bad").name,
            "SerializationException"
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = parse_input::<Input>(br#"{"count": "three"}"#).expect_err("bad");
        assert_eq!(err.name, "SerializationException");
        assert!(err.message.contains("count"), "{}", err.message);
    }

    #[test]
    fn missing_required_nested_members_are_invalid_parameters() {
        let err = parse_input::<Input>(br#"{"nested": [{}]}"#).expect_err("bad");
        assert_eq!(err.name, "InvalidParameterException");
        assert!(
            err.message.contains("'name'") && err.message.contains("nested[0]"),
            "{}",
            err.message
        );
    }
}

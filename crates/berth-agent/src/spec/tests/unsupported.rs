//! Fields that need AWS services are refused with the container and the field named.

use super::*;

/// The error of a container with `extra` members.
fn refusal(extra: serde_json::Value) -> String {
    spec_of(json!({"containerDefinitions": [container(extra)]}))
        .expect_err("refused")
        .to_string()
}

#[test]
fn every_aws_only_field_is_refused_with_its_name() {
    let cases = [
        (
            json!({"environmentFiles": [{"value": "arn:aws:s3:::b/app.env", "type": "s3"}]}),
            "environmentFiles",
        ),
        (
            json!({"firelensConfiguration": {"type": "fluentbit"}}),
            "firelensConfiguration",
        ),
        (
            json!({"logConfiguration": {"logDriver": "awsfirelens"}}),
            "logConfiguration.logDriver awsfirelens",
        ),
    ];
    for (extra, field) in cases {
        let message = refusal(extra);
        assert!(
            message.starts_with(&format!(
                "container app: {field} is not supported by Berth yet ("
            )),
            "{message}"
        );
    }
}

#[test]
fn empty_lists_of_aws_only_fields_ask_for_nothing_and_are_accepted() {
    let spec = spec_of(json!({"containerDefinitions": [container(json!({
        "secrets": [], "environmentFiles": [],
        "logConfiguration": {"logDriver": "json-file", "secretOptions": []}
    }))]}))
    .expect("accepted");
    assert_eq!(spec.log_driver.as_deref(), Some("json-file"));
}

use crate::app::App;
use serde_json::{json, Value};
use std::sync::Arc;

crate::json_service_calls!(super::dispatch);

async fn put(app: &Arc<App>, name: &str, value: &str, kind: &str) -> Value {
    ok(
        app,
        "PutParameter",
        json!({"Name": name, "Value": value, "Type": kind}),
    )
    .await
}

fn names(answer: &Value) -> Vec<String> {
    answer["Parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["Name"].as_str().expect("name").to_string())
        .collect()
}

#[tokio::test]
async fn versions_increment_only_with_overwrite() {
    let app = crate::test_support::app().await;
    assert_eq!(put(&app, "/app/url", "a", "String").await["Version"], 1);
    let e = err(
        &app,
        "PutParameter",
        json!({"Name": "/app/url", "Value": "b", "Type": "String"}),
    )
    .await;
    assert_eq!(e.name, "ParameterAlreadyExists");
    let second = ok(
        &app,
        "PutParameter",
        json!({"Name": "/app/url", "Value": "b", "Overwrite": true}),
    )
    .await;
    assert_eq!(second, json!({"Version": 2, "Tier": "Standard"}));
    let got = ok(&app, "GetParameter", json!({"Name": "/app/url"})).await["Parameter"].clone();
    assert_eq!(
        (
            got["Value"].as_str(),
            got["Version"].as_i64(),
            got["Type"].as_str()
        ),
        (Some("b"), Some(2), Some("String"))
    );
    assert_eq!(
        got["ARN"],
        "arn:aws:ssm:us-east-1:000000000000:parameter/app/url"
    );
    let first = ok(&app, "GetParameter", json!({"Name": "/app/url:1"})).await["Parameter"].clone();
    assert_eq!(
        (first["Value"].as_str(), first["Selector"].as_str()),
        (Some("a"), Some(":1"))
    );
    let e = err(&app, "GetParameter", json!({"Name": "/app/url:9"})).await;
    assert_eq!(e.name, "ParameterVersionNotFound");
    let e = err(&app, "GetParameter", json!({"Name": "/app/none"})).await;
    assert_eq!(e.name, "ParameterNotFound");
}

#[tokio::test]
async fn a_secure_string_shows_its_plaintext_only_with_decryption() {
    let app = crate::test_support::app().await;
    put(&app, "/db/password", "s3cret-marker", "SecureString").await;
    let hidden = ok(&app, "GetParameter", json!({"Name": "/db/password"})).await;
    let shown = hidden["Parameter"]["Value"].as_str().expect("value");
    assert!(!shown.contains("s3cret-marker") && !shown.is_empty());
    let plain = ok(
        &app,
        "GetParameter",
        json!({"Name": "/db/password", "WithDecryption": true}),
    )
    .await;
    assert_eq!(plain["Parameter"]["Value"], "s3cret-marker");
    let described = ok(&app, "DescribeParameters", json!({})).await;
    assert_eq!(described["Parameters"][0]["KeyId"], "alias/aws/ssm");
    let history = ok(&app, "GetParameterHistory", json!({"Name": "/db/password"})).await;
    for answer in [described, history] {
        assert!(!answer.to_string().contains("s3cret-marker"));
    }
    let raw: String = app
        .state
        .list(super::PARAMETERS)
        .into_iter()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
        .collect();
    assert!(!raw.contains("s3cret-marker"), "no plaintext in the store");
}

#[tokio::test]
async fn names_follow_the_hierarchy_rules() {
    let app = crate::test_support::app().await;
    let deep = format!("/{}", vec!["l"; 16].join("/"));
    let e = err(
        &app,
        "PutParameter",
        json!({"Name": deep, "Value": "v", "Type": "String"}),
    )
    .await;
    assert_eq!(e.name, "HierarchyLevelLimitExceededException");
    for bad in ["a/b", "/a//b", "/a/", "/aws/x", "ssm-thing", "a b", ""] {
        let e = err(
            &app,
            "PutParameter",
            json!({"Name": bad, "Value": "v", "Type": "String"}),
        )
        .await;
        assert_eq!(e.name, "ValidationException", "{bad}");
    }
    let e = err(&app, "PutParameter", json!({"Name": "x", "Value": "v"})).await;
    assert_eq!(e.name, "ValidationException", "a type is needed on create");
    let e = err(
        &app,
        "PutParameter",
        json!({"Name": "x", "Value": "v", "Type": "Number"}),
    )
    .await;
    assert_eq!(e.name, "ValidationException");
    let e = err(&app, "PutParameter", json!({"Name": "x", "Value": "v", "Type": "String", "Overwrite": true, "Tags": [{"Key": "k", "Value": "v"}]})).await;
    assert_eq!(e.name, "ValidationException");
    assert!(
        app.state.list(super::PARAMETERS).is_empty(),
        "nothing half-written"
    );
}

#[tokio::test]
async fn parameters_by_path_are_one_level_or_recursive_and_paged() {
    let app = crate::test_support::app().await;
    for name in ["/p/a", "/p/b", "/p/q/c", "/other/d", "top"] {
        put(&app, name, "v", "String").await;
    }
    put(&app, "/p/s", "secret", "SecureString").await;
    let one = ok(&app, "GetParametersByPath", json!({"Path": "/p"})).await;
    assert_eq!(names(&one), ["/p/a", "/p/b", "/p/s"]);
    let all = ok(
        &app,
        "GetParametersByPath",
        json!({"Path": "/p/", "Recursive": true}),
    )
    .await;
    assert_eq!(names(&all), ["/p/a", "/p/b", "/p/q/c", "/p/s"]);
    let typed = ok(&app, "GetParametersByPath", json!({"Path": "/p", "Recursive": true, "WithDecryption": true, "ParameterFilters": [{"Key": "Type", "Values": ["SecureString"]}]})).await;
    assert_eq!(typed["Parameters"][0]["Value"], "secret");
    let page = ok(
        &app,
        "GetParametersByPath",
        json!({"Path": "/p", "Recursive": true, "MaxResults": 3}),
    )
    .await;
    assert_eq!(names(&page).len(), 3);
    let token = page["NextToken"].as_str().expect("token");
    let rest = ok(
        &app,
        "GetParametersByPath",
        json!({"Path": "/p", "Recursive": true, "MaxResults": 3, "NextToken": token}),
    )
    .await;
    assert_eq!(names(&rest), ["/p/s"]);
    let e = err(
        &app,
        "GetParametersByPath",
        json!({"Path": "/p", "MaxResults": 11}),
    )
    .await;
    assert_eq!(e.name, "ValidationException");
    let e = err(&app, "GetParametersByPath", json!({"Path": "p"})).await;
    assert_eq!(e.name, "ValidationException");
}

#[tokio::test]
async fn get_and_delete_many_report_the_names_that_do_not_exist() {
    let app = crate::test_support::app().await;
    put(&app, "one", "1", "String").await;
    put(&app, "list", "a,b", "StringList").await;
    let got = ok(
        &app,
        "GetParameters",
        json!({"Names": ["one", "list", "missing", "one:7"]}),
    )
    .await;
    assert_eq!(names(&got), ["one", "list"]);
    assert_eq!(got["InvalidParameters"], json!(["missing", "one:7"]));
    let deleted = ok(
        &app,
        "DeleteParameters",
        json!({"Names": ["one", "missing"]}),
    )
    .await;
    assert_eq!(
        deleted,
        json!({"DeletedParameters": ["one"], "InvalidParameters": ["missing"]})
    );
    ok(&app, "DeleteParameter", json!({"Name": "list"})).await;
    assert_eq!(
        err(&app, "DeleteParameter", json!({"Name": "list"}))
            .await
            .name,
        "ParameterNotFound"
    );
}

#[tokio::test]
async fn describe_filters_by_name_type_path_and_tag_and_history_lists_versions() {
    let app = crate::test_support::app().await;
    ok(&app, "PutParameter", json!({"Name": "/svc/a", "Value": "1", "Type": "String", "Description": "first", "Tags": [{"Key": "team", "Value": "x"}]})).await;
    ok(
        &app,
        "PutParameter",
        json!({"Name": "/svc/a", "Value": "2", "Overwrite": true}),
    )
    .await;
    put(&app, "/svc/b", "s", "SecureString").await;
    put(&app, "/other", "o", "String").await;
    let filtered = |filters: Value| {
        let app = app.clone();
        async move {
            names(
                &ok(
                    &app,
                    "DescribeParameters",
                    json!({"ParameterFilters": filters}),
                )
                .await,
            )
        }
    };
    assert_eq!(
        filtered(json!([{"Key": "Name", "Option": "BeginsWith", "Values": ["/svc"]}])).await,
        ["/svc/a", "/svc/b"]
    );
    assert_eq!(
        filtered(json!([{"Key": "Type", "Values": ["SecureString"]}])).await,
        ["/svc/b"]
    );
    assert_eq!(
        filtered(json!([{"Key": "Path", "Values": ["/"]}])).await,
        ["/other"]
    );
    assert_eq!(filtered(json!([{"Key": "tag:team"}])).await, ["/svc/a"]);
    assert_eq!(
        filtered(json!([{"Key": "Name", "Option": "Contains", "Values": ["SVC/B"]}])).await,
        ["/svc/b"]
    );
    let legacy = ok(
        &app,
        "DescribeParameters",
        json!({"Filters": [{"Key": "Name", "Values": ["/svc/a"]}]}),
    )
    .await;
    assert_eq!(legacy["Parameters"][0]["Description"], "first");
    assert_eq!(legacy["Parameters"][0]["Version"], 2);
    let e = err(
        &app,
        "DescribeParameters",
        json!({"ParameterFilters": [{"Key": "Colour", "Values": ["x"]}]}),
    )
    .await;
    assert_eq!(e.name, "InvalidFilterKey");

    let history = ok(&app, "GetParameterHistory", json!({"Name": "/svc/a"})).await;
    let values: Vec<&str> = history["Parameters"]
        .as_array()
        .expect("history")
        .iter()
        .map(|p| p["Value"].as_str().expect("v"))
        .collect();
    assert_eq!(values, ["1", "2"]);
    let tags = ok(
        &app,
        "ListTagsForResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/svc/a"}),
    )
    .await;
    assert_eq!(tags["TagList"], json!([{"Key": "team", "Value": "x"}]));
    ok(
        &app,
        "RemoveTagsFromResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/svc/a", "TagKeys": ["team"]}),
    )
    .await;
    ok(&app, "AddTagsToResource", json!({"ResourceType": "Parameter", "ResourceId": "/svc/b", "Tags": [{"Key": "k", "Value": "v"}]})).await;
    assert_eq!(
        filtered(json!([{"Key": "tag:k", "Values": ["v"]}])).await,
        ["/svc/b"]
    );
    let e = err(
        &app,
        "ListTagsForResource",
        json!({"ResourceType": "Document", "ResourceId": "/svc/a"}),
    )
    .await;
    assert_eq!(e.name, "InvalidResourceType");
}

#[test]
fn selectors_split_after_the_name_even_in_arns() {
    use super::split_selector;
    assert_eq!(split_selector("/a/b:3"), ("/a/b", Some("3")));
    assert_eq!(split_selector("/a/b"), ("/a/b", None));
    let arn = "arn:aws:ssm:us-east-1:000000000000:parameter/a/b";
    assert_eq!(split_selector(arn), (arn, None));
    assert_eq!(split_selector(&format!("{arn}:2")), (arn, Some("2")));
}

#[tokio::test]
async fn labels_move_between_versions_and_select_them() {
    let app = crate::test_support::app().await;
    put(&app, "/l/p", "one", "String").await;
    ok(
        &app,
        "PutParameter",
        json!({"Name": "/l/p", "Value": "two", "Overwrite": true}),
    )
    .await;
    let labelled = ok(
        &app,
        "LabelParameterVersion",
        json!({"Name": "/l/p", "ParameterVersion": 1, "Labels": ["prod", "123", "awsx"]}),
    )
    .await;
    assert_eq!(
        labelled,
        json!({"InvalidLabels": ["123", "awsx"], "ParameterVersion": 1})
    );
    let got = ok(&app, "GetParameter", json!({"Name": "/l/p:prod"})).await;
    assert_eq!(got["Parameter"]["Value"], "one");
    ok(
        &app,
        "LabelParameterVersion",
        json!({"Name": "/l/p", "Labels": ["prod"]}),
    )
    .await;
    let got = ok(&app, "GetParameter", json!({"Name": "/l/p:prod"})).await;
    assert_eq!(
        got["Parameter"]["Value"], "two",
        "the label moved to the latest version"
    );
    let history = ok(&app, "GetParameterHistory", json!({"Name": "/l/p"})).await;
    assert_eq!(history["Parameters"][0]["Labels"], json!([]));
    let removed = ok(
        &app,
        "UnlabelParameterVersion",
        json!({"Name": "/l/p", "ParameterVersion": 2, "Labels": ["prod", "qa"]}),
    )
    .await;
    assert_eq!(
        removed,
        json!({"RemovedLabels": ["prod"], "InvalidLabels": ["qa"]})
    );
    let e = err(&app, "GetParameter", json!({"Name": "/l/p:prod"})).await;
    assert_eq!(e.name, "ParameterVersionNotFound");
}

#[tokio::test]
async fn values_must_match_the_allowed_pattern_which_overwrites_keep() {
    let app = crate::test_support::app().await;
    let first = ok(
        &app,
        "PutParameter",
        json!({"Name": "/app/port", "Value": "8080", "Type": "SecureString",
               "AllowedPattern": "\\d+"}),
    )
    .await;
    assert_eq!(first["Version"], 1);
    // The whole value must match, and an overwrite keeps the stored pattern.
    let e = err(
        &app,
        "PutParameter",
        json!({"Name": "/app/port", "Value": "80a", "Overwrite": true}),
    )
    .await;
    assert_eq!(e.name, "ParameterPatternMismatchException");
    assert!(e.message.contains("\\d+"), "{}", e.message);
    assert!(!e.message.contains("80a"), "a SecureString is not echoed");
    let got = ok(
        &app,
        "GetParameter",
        json!({"Name": "/app/port", "WithDecryption": true}),
    )
    .await;
    assert_eq!(
        (
            got["Parameter"]["Value"].clone(),
            got["Parameter"]["Version"].clone()
        ),
        (json!("8080"), json!(1)),
        "nothing written"
    );
    let e = err(
        &app,
        "PutParameter",
        json!({"Name": "/app/bad", "Value": "x", "Type": "String", "AllowedPattern": "(["}),
    )
    .await;
    assert_eq!(e.name, "InvalidAllowedPatternException");
    let e = err(&app, "GetParameter", json!({"Name": "/app/bad"})).await;
    assert_eq!(e.name, "ParameterNotFound");
}

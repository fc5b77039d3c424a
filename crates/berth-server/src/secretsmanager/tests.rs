use crate::app::App;
use crate::dispatch::Ctx;
use serde_json::{json, Value};

crate::json_service_calls!(super::dispatch);

/// Every raw value the store holds under the secrets prefix, as text.
fn raw_store(app: &App) -> String {
    app.state
        .list(super::SECRETS)
        .into_iter()
        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned())
        .collect()
}

#[tokio::test]
async fn put_secret_value_makes_the_new_version_current_and_the_old_one_previous() {
    let app = crate::test_support::app().await;
    let created = ok(
        &app,
        "CreateSecret",
        json!({"Name": "db", "SecretString": "v1-marker"}),
    )
    .await;
    let arn = created["ARN"].as_str().expect("arn").to_string();
    let suffix = arn.rsplit('-').next().expect("suffix");
    assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:db-"));
    assert_eq!(suffix.len(), 6);
    let v1 = created["VersionId"].as_str().expect("version").to_string();

    let put = ok(
        &app,
        "PutSecretValue",
        json!({"SecretId": "db", "SecretString": "v2-marker"}),
    )
    .await;
    assert_eq!(put["VersionStages"], json!(["AWSCURRENT"]));
    let current = ok(&app, "GetSecretValue", json!({"SecretId": "db"})).await;
    assert_eq!(current["SecretString"], "v2-marker");
    let previous = ok(
        &app,
        "GetSecretValue",
        json!({"SecretId": "db", "VersionStage": "AWSPREVIOUS"}),
    )
    .await;
    assert_eq!(previous["SecretString"], "v1-marker");
    assert_eq!(previous["VersionId"], v1.as_str());
    let by_id = ok(
        &app,
        "GetSecretValue",
        json!({"SecretId": arn, "VersionId": v1}),
    )
    .await;
    assert_eq!(by_id["SecretString"], "v1-marker");

    let described = ok(&app, "DescribeSecret", json!({"SecretId": "db"})).await;
    assert_eq!(described["VersionIdsToStages"][&v1], json!(["AWSPREVIOUS"]));
    assert!(!described.to_string().contains("marker"));
    assert!(
        !raw_store(&app).contains("marker"),
        "no plaintext in the store"
    );
}

#[tokio::test]
async fn a_secret_is_found_by_name_full_arn_and_arn_without_its_suffix() {
    let app = crate::test_support::app().await;
    let arn = ok(
        &app,
        "CreateSecret",
        json!({"Name": "app/key", "SecretString": "x"}),
    )
    .await["ARN"]
        .as_str()
        .expect("arn")
        .to_string();
    let partial = &arn[..arn.len() - 7];
    for id in ["app/key", arn.as_str(), partial] {
        let got = ok(&app, "GetSecretValue", json!({"SecretId": id})).await;
        assert_eq!(got["ARN"], arn.as_str(), "{id}");
    }
    let wrong = format!("{partial}-ZZZZZZ");
    assert_eq!(
        err(&app, "GetSecretValue", json!({"SecretId": wrong}))
            .await
            .name,
        "ResourceNotFoundException"
    );
}

#[tokio::test]
async fn create_refuses_an_existing_name_but_accepts_a_retry_with_the_same_token() {
    let app = crate::test_support::app().await;
    let token = "11111111-2222-3333-4444-555555555555";
    let body = json!({"Name": "s", "SecretString": "v", "ClientRequestToken": token});
    let first = ok(&app, "CreateSecret", body.clone()).await;
    let again = ok(&app, "CreateSecret", body).await;
    assert_eq!(first["ARN"], again["ARN"]);
    assert_eq!(again["VersionId"], token);
    let e = err(
        &app,
        "CreateSecret",
        json!({"Name": "s", "SecretString": "other"}),
    )
    .await;
    assert_eq!(e.name, "ResourceExistsException");
    let e = err(
        &app,
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "changed", "ClientRequestToken": token}),
    )
    .await;
    assert_eq!(e.name, "ResourceExistsException");
}

#[tokio::test]
async fn bad_inputs_are_refused_and_write_nothing() {
    let app = crate::test_support::app().await;
    let cases = [
        json!({"Name": "both", "SecretString": "a", "SecretBinary": "YQ=="}),
        json!({"Name": "bad name!", "SecretString": "a"}),
        json!({"Name": "tok", "SecretString": "a", "ClientRequestToken": "short"}),
        json!({"Name": "bin", "SecretBinary": "not base64!"}),
    ];
    for case in cases {
        let e = err(&app, "CreateSecret", case.clone()).await;
        assert_ne!(e.name, "ServerException", "{case}");
    }
    assert!(app.state.list(super::SECRETS).is_empty());
}

#[tokio::test]
async fn a_secret_scheduled_for_deletion_refuses_reads_until_restored() {
    let app = crate::test_support::app().await;
    ok(
        &app,
        "CreateSecret",
        json!({"Name": "d", "SecretString": "v"}),
    )
    .await;
    let e = err(
        &app,
        "DeleteSecret",
        json!({"SecretId": "d", "RecoveryWindowInDays": 3}),
    )
    .await;
    assert_eq!(e.name, "InvalidParameterException");
    let deleted = ok(
        &app,
        "DeleteSecret",
        json!({"SecretId": "d", "RecoveryWindowInDays": 7}),
    )
    .await;
    let window = deleted["DeletionDate"].as_f64().expect("date") - app.now();
    assert!((7.0 * 86400.0 - window).abs() < 60.0);
    let e = err(&app, "GetSecretValue", json!({"SecretId": "d"})).await;
    assert_eq!(e.name, "InvalidRequestException");
    let listed = ok(&app, "ListSecrets", json!({})).await;
    assert_eq!(listed["SecretList"], json!([]));
    let listed = ok(&app, "ListSecrets", json!({"IncludePlannedDeletion": true})).await;
    assert!(listed["SecretList"][0]["DeletedDate"].is_number());

    ok(&app, "RestoreSecret", json!({"SecretId": "d"})).await;
    assert_eq!(
        ok(&app, "GetSecretValue", json!({"SecretId": "d"})).await["SecretString"],
        "v"
    );

    ok(
        &app,
        "DeleteSecret",
        json!({"SecretId": "d", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    let e = err(&app, "DescribeSecret", json!({"SecretId": "d"})).await;
    assert_eq!(e.name, "ResourceNotFoundException");
    ok(
        &app,
        "CreateSecret",
        json!({"Name": "d", "SecretString": "again"}),
    )
    .await;
}

#[tokio::test]
async fn list_secrets_filters_and_pages() {
    let app = crate::test_support::app().await;
    for (name, tag) in [("prod/a", "prod"), ("prod/b", "prod"), ("dev/a", "dev")] {
        ok(
            &app,
            "CreateSecret",
            json!({"Name": name, "SecretString": "v", "Tags": [{"Key": "env", "Value": tag}]}),
        )
        .await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["SecretList"]
            .as_array()
            .expect("list")
            .iter()
            .map(|s| s["Name"].as_str().expect("name").to_string())
            .collect()
    };
    let by_name = ok(
        &app,
        "ListSecrets",
        json!({"Filters": [{"Key": "name", "Values": ["prod/"]}]}),
    )
    .await;
    assert_eq!(names(&by_name), ["prod/a", "prod/b"]);
    let by_tag = ok(
        &app,
        "ListSecrets",
        json!({"Filters": [{"Key": "tag-value", "Values": ["dev"]}]}),
    )
    .await;
    assert_eq!(names(&by_tag), ["dev/a"]);
    let negated = ok(
        &app,
        "ListSecrets",
        json!({"Filters": [{"Key": "name", "Values": ["!prod"]}]}),
    )
    .await;
    assert_eq!(names(&negated), ["dev/a"]);

    let first = ok(&app, "ListSecrets", json!({"MaxResults": 2})).await;
    assert_eq!(names(&first).len(), 2);
    let token = first["NextToken"].as_str().expect("token");
    let second = ok(
        &app,
        "ListSecrets",
        json!({"MaxResults": 2, "NextToken": token}),
    )
    .await;
    assert_eq!(names(&second).len(), 1);
    assert!(second.get("NextToken").is_none());
    let desc = ok(&app, "ListSecrets", json!({"SortOrder": "desc"})).await;
    let dates: Vec<f64> = desc["SecretList"]
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["CreatedDate"].as_f64().expect("date"))
        .collect();
    assert!(
        dates.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {dates:?}"
    );
}

#[tokio::test]
async fn tags_are_added_replaced_and_removed() {
    let app = crate::test_support::app().await;
    ok(
        &app,
        "CreateSecret",
        json!({"Name": "t", "Tags": [{"Key": "a", "Value": "1"}]}),
    )
    .await;
    ok(
        &app,
        "TagResource",
        json!({"SecretId": "t", "Tags": [{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}]}),
    )
    .await;
    ok(
        &app,
        "UntagResource",
        json!({"SecretId": "t", "TagKeys": ["b"]}),
    )
    .await;
    let described = ok(&app, "DescribeSecret", json!({"SecretId": "t"})).await;
    assert_eq!(described["Tags"], json!([{"Key": "a", "Value": "2"}]));
    // A secret without a value has no AWSCURRENT version yet.
    let e = err(&app, "GetSecretValue", json!({"SecretId": "t"})).await;
    assert_eq!(e.name, "ResourceNotFoundException");
}

#[tokio::test]
async fn update_secret_changes_the_description_and_adds_a_version() {
    let app = crate::test_support::app().await;
    ok(
        &app,
        "CreateSecret",
        json!({"Name": "u", "SecretBinary": "AAEC"}),
    )
    .await;
    let updated = ok(
        &app,
        "UpdateSecret",
        json!({"SecretId": "u", "Description": "d"}),
    )
    .await;
    assert!(updated.get("VersionId").is_none());
    let updated = ok(
        &app,
        "UpdateSecret",
        json!({"SecretId": "u", "SecretString": "new"}),
    )
    .await;
    assert!(updated["VersionId"].is_string());
    let got = ok(
        &app,
        "GetSecretValue",
        json!({"SecretId": "u", "VersionStage": "AWSPREVIOUS"}),
    )
    .await;
    assert_eq!(got["SecretBinary"], "AAEC");
    let versions = ok(&app, "ListSecretVersionIds", json!({"SecretId": "u"})).await;
    assert_eq!(versions["Versions"].as_array().expect("versions").len(), 2);
    let batch = ok(
        &app,
        "BatchGetSecretValue",
        json!({"SecretIdList": ["u", "missing"]}),
    )
    .await;
    assert_eq!(batch["SecretValues"][0]["SecretString"], "new");
    assert_eq!(batch["Errors"][0]["ErrorCode"], "ResourceNotFoundException");
}

#[tokio::test]
async fn a_value_moved_onto_another_secret_does_not_decrypt() {
    let app = crate::test_support::app().await;
    ok(
        &app,
        "CreateSecret",
        json!({"Name": "a", "SecretString": "aaa"}),
    )
    .await;
    ok(
        &app,
        "CreateSecret",
        json!({"Name": "b", "SecretString": "bbb"}),
    )
    .await;
    let a = app
        .get::<super::Secret>(&super::secret_key("a"))
        .expect("get")
        .expect("a")
        .value;
    let mut b = app
        .get::<super::Secret>(&super::secret_key("b"))
        .expect("get")
        .expect("b")
        .value;
    b.versions[0].sealed = a.versions[0].sealed.clone();
    let version = b.versions[0].clone();
    assert_eq!(
        b.open(&app.vault, &version).expect_err("refused").name,
        "DecryptionFailure"
    );
}

#[tokio::test]
async fn rotating_the_master_key_keeps_every_value_readable() {
    let app = crate::test_support::app().await;
    ok(
        &app,
        "CreateSecret",
        json!({"Name": "r", "SecretString": "before"}),
    )
    .await;
    ok(
        &app,
        "PutSecretValue",
        json!({"SecretId": "r", "SecretString": "after"}),
    )
    .await;
    let old = app.vault.current_key_id();
    let changed =
        crate::vault::rotation::rotate_master_key(&app, crate::vault::random_key().expect("key"))
            .await
            .expect("rotate");
    assert_eq!(changed, 1);
    let stored = app
        .get::<super::Secret>(&super::secret_key("r"))
        .expect("get")
        .expect("r")
        .value;
    assert!(stored.versions.iter().all(|v| v.sealed.key_id != old));
    assert_eq!(
        ok(&app, "GetSecretValue", json!({"SecretId": "r"})).await["SecretString"],
        "after"
    );
    let previous = ok(
        &app,
        "GetSecretValue",
        json!({"SecretId": "r", "VersionStage": "AWSPREVIOUS"}),
    )
    .await;
    assert_eq!(previous["SecretString"], "before");
}

#[tokio::test]
async fn the_resolver_reads_secrets_json_keys_stages_and_parameters() {
    use super::resolve::resolve_value_from;
    let app = crate::test_support::app().await;
    let arn = ok(
        &app,
        "CreateSecret",
        json!({"Name": "creds", "SecretString": r#"{"user":"u1","port":5432}"#}),
    )
    .await["ARN"]
        .as_str()
        .expect("arn")
        .to_string();
    ok(
        &app,
        "PutSecretValue",
        json!({"SecretId": "creds", "SecretString": r#"{"user":"u2"}"#}),
    )
    .await;
    assert_eq!(
        resolve_value_from(&app, &arn).expect("whole"),
        r#"{"user":"u2"}"#
    );
    assert_eq!(
        resolve_value_from(&app, &format!("{arn}:user::")).expect("key"),
        "u2"
    );
    assert_eq!(
        resolve_value_from(&app, &format!("{arn}:user:AWSPREVIOUS:")).expect("previous"),
        "u1"
    );
    assert_eq!(
        resolve_value_from(&app, &format!("{arn}:port:AWSPREVIOUS:")).expect("number"),
        "5432"
    );
    let partial = &arn[..arn.len() - 7];
    assert_eq!(
        resolve_value_from(&app, &format!("{partial}:user::")).expect("partial"),
        "u2"
    );

    let e = resolve_value_from(&app, &format!("{arn}:password::")).expect_err("no key");
    assert!(e.message.contains("json key password") && e.message.contains(&arn));
    assert!(
        !e.message.contains("u2"),
        "the value never shows in an error"
    );
    let missing = format!("{partial}x");
    let e = resolve_value_from(&app, &missing).expect_err("missing");
    assert_eq!(e.name, "ResourceNotFoundException");
    assert!(e.message.contains(&missing));

    let ssm = |op: &'static str, body: Value| {
        let app = app.clone();
        async move {
            let ctx = Ctx {
                caller: crate::auth::root_principal(&app).expect("root"),
                app,
            };
            crate::ssm::dispatch(ctx, op, body.to_string().as_bytes())
                .await
                .expect(op)
        }
    };
    ssm(
        "PutParameter",
        json!({"Name": "/app/db-pass", "Value": "p1", "Type": "SecureString"}),
    )
    .await;
    ssm(
        "PutParameter",
        json!({"Name": "/app/db-pass", "Value": "p2", "Overwrite": true}),
    )
    .await;
    ssm(
        "PutParameter",
        json!({"Name": "plain", "Value": "v", "Type": "String"}),
    )
    .await;
    assert_eq!(
        resolve_value_from(&app, "/app/db-pass").expect("name"),
        "p2"
    );
    assert_eq!(
        resolve_value_from(&app, "/app/db-pass:1").expect("version"),
        "p1"
    );
    assert_eq!(
        resolve_value_from(
            &app,
            "arn:aws:ssm:us-east-1:000000000000:parameter/app/db-pass"
        )
        .expect("arn"),
        "p2"
    );
    assert_eq!(
        resolve_value_from(&app, "arn:aws:ssm:us-east-1:000000000000:parameter/plain")
            .expect("arn"),
        "v"
    );
    let e = resolve_value_from(&app, "/app/nope").expect_err("missing");
    assert_eq!(e.name, "ParameterNotFound");
    assert!(e.message.contains("/app/nope"));
}

#[test]
fn secret_references_split_into_arn_json_key_stage_and_version() {
    use super::resolve::parse_secret_reference;
    let arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf";
    let r = parse_secret_reference(arn).expect("plain");
    assert_eq!(
        (r.arn.as_str(), r.json_key, r.version_stage, r.version_id),
        (arn, None, None, None)
    );
    let with_suffix = format!("{arn}:user:AWSPREVIOUS:");
    let r = parse_secret_reference(&with_suffix).expect("suffix");
    assert_eq!(
        (r.json_key, r.version_stage, r.version_id),
        (Some("user"), Some("AWSPREVIOUS"), None)
    );
    let with_version = format!("{arn}:::v1");
    let r = parse_secret_reference(&with_version).expect("version");
    assert_eq!(
        (r.json_key, r.version_stage, r.version_id),
        (None, None, Some("v1"))
    );
    assert!(parse_secret_reference("arn:aws:ssm:us-east-1:0:parameter/x").is_none());
    assert!(parse_secret_reference(&format!("{arn}:a:b:c:d")).is_none());
}

#[tokio::test]
async fn random_passwords_have_the_length_and_classes_asked_for() {
    let app = crate::test_support::app().await;
    let default = ok(&app, "GetRandomPassword", json!({})).await;
    assert_eq!(
        default["RandomPassword"].as_str().expect("password").len(),
        32
    );
    let digits = ok(
        &app,
        "GetRandomPassword",
        json!({"PasswordLength": 64, "ExcludeLowercase": true, "ExcludeUppercase": true, "ExcludePunctuation": true, "ExcludeCharacters": "01"}),
    )
    .await;
    let digits = digits["RandomPassword"].as_str().expect("password");
    assert_eq!(digits.len(), 64);
    assert!(digits
        .chars()
        .all(|c| c.is_ascii_digit() && c != '0' && c != '1'));
    let e = err(&app, "GetRandomPassword", json!({"PasswordLength": 3})).await;
    assert_eq!(
        e.name, "InvalidParameterException",
        "too short for four classes"
    );
    let e = err(
        &app,
        "GetRandomPassword",
        json!({"ExcludeLowercase": true, "ExcludeUppercase": true, "ExcludePunctuation": true, "ExcludeNumbers": true}),
    )
    .await;
    assert_eq!(e.name, "InvalidParameterException");
}

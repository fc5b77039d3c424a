//! Authentication over real HTTP: the keys come from the credentials file the server wrote,
//! and every refusal is AWS's, with nothing written.

use crate::test_support::{now, send, send_ecs, served, Signing};
use berth_core::sigv4::Credentials;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_key_from_the_credentials_file_signs_and_everything_else_is_refused() {
    let served = served().await;
    let good = &served.credentials;
    let create = |name: &str| json!({ "clusterName": name });

    let ok = send_ecs(
        &served,
        "CreateCluster",
        &create("signed"),
        Signing::As(good, now()),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(
        ok.head.to_ascii_lowercase().contains("x-amzn-requestid"),
        "{}",
        ok.head
    );

    let wrong_secret = Credentials {
        secret_access_key: format!("{}x", good.secret_access_key),
        ..good.clone()
    };
    let unknown = Credentials {
        access_key_id: "AKIAUNKNOWNUNKNOWN00".into(),
        ..good.clone()
    };
    let with_token = Credentials {
        session_token: Some("forged".into()),
        ..good.clone()
    };
    let refused = [
        (
            "unsigned",
            Signing::None,
            403,
            "MissingAuthenticationTokenException",
        ),
        (
            "wrong secret",
            Signing::As(&wrong_secret, now()),
            403,
            "InvalidSignatureException",
        ),
        (
            "unknown key",
            Signing::As(&unknown, now()),
            403,
            "UnrecognizedClientException",
        ),
        (
            "forged session token",
            Signing::As(&with_token, now()),
            403,
            "UnrecognizedClientException",
        ),
        (
            "20 minutes old",
            Signing::As(good, now() - 20 * 60),
            403,
            "InvalidSignatureException",
        ),
        (
            "20 minutes ahead",
            Signing::As(good, now() + 20 * 60),
            403,
            "InvalidSignatureException",
        ),
    ];
    for (why, signing, status, error) in refused {
        let name = format!("refused-{}", why.replace(' ', "-"));
        let answer = send_ecs(&served, "CreateCluster", &create(&name), signing).await;
        assert_eq!(answer.status, status, "{why}: {answer:?}");
        assert_eq!(answer.error_type(), error, "{why}: {answer:?}");
    }
    let stale = send_ecs(
        &served,
        "ListClusters",
        &json!({}),
        Signing::As(good, now() - 20 * 60),
    )
    .await;
    assert!(stale.body.contains("Signature expired"), "{stale:?}");
    // Within the 15 minutes either way, a request is on time.
    let skewed = send_ecs(
        &served,
        "ListClusters",
        &json!({}),
        Signing::As(good, now() - 5 * 60),
    )
    .await;
    assert_eq!(skewed.status, 200, "{skewed:?}");

    let listed = send_ecs(
        &served,
        "ListClusters",
        &json!({}),
        Signing::As(good, now()),
    )
    .await;
    assert!(listed.body.contains("cluster/signed"), "{listed:?}");
    assert!(
        !listed.body.contains("refused-"),
        "a refused call wrote nothing: {listed:?}"
    );
    served.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_changed_after_signing_and_a_malformed_signature_are_refused() {
    let served = served().await;
    let addr = served.server.addr();
    let good = &served.credentials;
    let body = br#"{"clusterName":"a"}"#;
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        (
            "x-amz-target",
            "AmazonEC2ContainerServiceV20141113.CreateCluster",
        ),
    ];
    let parts = berth_core::sigv4::RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &[("host", &addr.to_string()), headers[0], headers[1]],
        body,
    };
    let signature = berth_core::sigv4::sign(&parts, good, "us-east-1", "ecs", now());
    let mut signed: Vec<(&str, &str)> = headers.to_vec();
    signed.extend(signature.iter().map(|(k, v)| (*k, v.as_str())));
    let tampered = send(
        addr,
        "POST",
        "/",
        &signed,
        br#"{"clusterName":"b"}"#,
        Signing::None,
    )
    .await;
    assert_eq!(
        tampered.error_type(),
        "InvalidSignatureException",
        "{tampered:?}"
    );
    let honest = send(addr, "POST", "/", &signed, body, Signing::None).await;
    assert_eq!(honest.status, 200, "{honest:?}");

    let malformed = [
        ("authorization", "AWS4-HMAC-SHA256 Credential=x"),
        ("authorization", "Basic dXNlcjpwYXNz"),
    ];
    for header in malformed {
        let mut sent = headers.to_vec();
        sent.push(header);
        sent.push(("x-amz-date", "20261130T120000Z"));
        let answer = send(addr, "POST", "/", &sent, body, Signing::None).await;
        assert_eq!(answer.status, 400, "{header:?}: {answer:?}");
        assert_eq!(
            answer.error_type(),
            "IncompleteSignatureException",
            "{answer:?}"
        );
    }
    // Signed for another service: refused, whatever the key.
    let mut other = vec![("host", addr.to_string())];
    other.extend(headers.iter().map(|(k, v)| (*k, v.to_string())));
    let refs: Vec<(&str, &str)> = other.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let parts = berth_core::sigv4::RequestParts {
        headers: &refs,
        ..parts
    };
    let signature = berth_core::sigv4::sign(&parts, good, "us-east-1", "s3", now());
    let mut sent: Vec<(&str, &str)> = headers.to_vec();
    sent.extend(signature.iter().map(|(k, v)| (*k, v.as_str())));
    let answer = send(addr, "POST", "/", &sent, body, Signing::None).await;
    assert_eq!(
        answer.error_type(),
        "InvalidSignatureException",
        "{answer:?}"
    );
    assert!(answer.body.contains("'ecs'"), "{answer:?}");
    served.server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credentials_file_is_private_and_stays_the_same_across_restarts() {
    use std::os::unix::fs::PermissionsExt;
    let served = served().await;
    let file = served.server.app().credentials_file().expect("file");
    let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = served.credentials.clone();
    let data = served.dir.path().join("data");
    served.server.shutdown().await.expect("shutdown");

    let config = crate::ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: Some(data.clone()),
        ..crate::ServerConfig::default()
    };
    let server = crate::serve(config).await.expect("serve again");
    let again = crate::test_support::read_profile(&file, crate::auth::PROFILE);
    assert_eq!(again, first, "the same data dir keeps the same root key");
    // The database holds no secret.
    let database = std::fs::read(data.join(crate::app::DATABASE_FILE)).expect("db");
    let secret = first.secret_access_key.as_bytes();
    assert!(
        !database.windows(secret.len()).any(|w| w == secret),
        "the secret is not in the database"
    );
    let answer = send(
        server.addr(),
        "POST",
        "/",
        &[(
            "x-amz-target",
            "AmazonEC2ContainerServiceV20141113.ListClusters",
        )],
        b"{}",
        Signing::As(&again, now()),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_gateway_answers_signed_calls_only() {
    let served = served().await;
    let addr = served.server.addr();
    let good = &served.credentials;
    let heartbeat = br#"{"cluster":"default","containerInstance":"nope"}"#;
    let path = berth_core::gateway::HEARTBEAT_PATH;
    let unsigned = send(addr, "POST", path, &[], heartbeat, Signing::None).await;
    assert_eq!(
        unsigned.error_type(),
        "MissingAuthenticationTokenException",
        "{unsigned:?}"
    );
    let stream = format!(
        "{}?cluster=default&containerInstance=nope&protocol={}",
        berth_core::gateway::DESIRED_PATH,
        berth_core::gateway::STREAM_PROTOCOL
    );
    let unsigned = send(addr, "GET", &stream, &[], b"", Signing::None).await;
    assert_eq!(
        unsigned.error_type(),
        "MissingAuthenticationTokenException",
        "{unsigned:?}"
    );
    // Signed, the calls reach the gateway, which then looks for the instance.
    for (method, path, body) in [("POST", path, &heartbeat[..]), ("GET", &stream, b"")] {
        let signed = send(addr, method, path, &[], body, Signing::As(good, now())).await;
        assert_eq!(signed.error_type(), "ClientException", "{signed:?}");
        assert!(signed.body.contains("is not registered"), "{signed:?}");
    }
    served.server.shutdown().await.expect("shutdown");
}

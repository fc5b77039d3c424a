//! TLS end to end: a server with Berth's own CA answers the agent's client that trusts that
//! CA, and nobody else — not a client trusting only the system's CAs, not plain HTTP.

use berth_agent::client::{ClientError, ServerClient};
use berth_server::tls::{Tls, CA_FILE};
use berth_server::{serve, ServerConfig};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_the_servers_own_ca_is_served_over_tls_and_others_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: Some(data.clone()),
        tls: Tls::OwnCa {
            extra_names: Vec::new(),
        },
        ..ServerConfig::default()
    };
    let server = serve(config).await.expect("serves");
    let endpoint = server.endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let text = std::fs::read_to_string(data.join("credentials")).expect("credentials");
    let keys = berth_core::sigv4::Credentials::from_profile(&text, "berth").expect("profile");

    let trusting = ServerClient::with_ca(
        &endpoint,
        "us-east-1",
        keys.clone(),
        Some(&data.join(CA_FILE)),
    )
    .expect("client");
    let listed: Value = trusting
        .call("ListClusters", &json!({}))
        .await
        .expect("served over TLS");
    assert!(listed["clusterArns"].is_array(), "{listed}");

    let system_only = ServerClient::new(&endpoint, "us-east-1", keys.clone()).expect("client");
    let refused = system_only
        .call::<_, Value>("ListClusters", &json!({}))
        .await
        .expect_err("the system does not trust Berth's CA");
    assert!(matches!(refused, ClientError::Transport(_)), "{refused}");

    let plain = format!("http://{}", server.addr());
    let plain = ServerClient::new(&plain, "us-east-1", keys).expect("client");
    assert!(
        plain
            .call::<_, Value>("ListClusters", &json!({}))
            .await
            .is_err(),
        "plain HTTP to a TLS endpoint gets nothing"
    );
    server.shutdown().await.expect("shutdown");
}

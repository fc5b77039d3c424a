//! `berth bench sigv4`: how many signed requests one core verifies per second — the whole
//! authentication of a request as the server does it (parse the signature, find the access
//! key in the state cache, derive its secret, build the canonical request, hash the body, two
//! HMAC chains), for the root user's key and for an IAM user's.

use anyhow::Context;
use berth_core::sigv4::{sign, Credentials, RequestParts};
use clap::Args;
use std::time::Instant;

/// Options of `berth bench sigv4`.
#[derive(Debug, Args)]
pub struct Sigv4Args {
    /// Requests to verify per key.
    #[arg(long, default_value_t = 200_000)]
    pub requests: u32,
}

/// A SubmitTaskStateChange body of the size agents send.
const BODY: &str = r#"{"cluster":"default","task":"arn:aws:ecs:us-east-1:000000000000:task/default/6f1f2b0c7a6e4f0e9d1c2b3a4f5e6d7c","status":"RUNNING","reason":"","containers":[{"containerName":"web","runtimeId":"4b7d2c6e9f1a","status":"RUNNING","networkBindings":[{"bindIP":"0.0.0.0","containerPort":80,"hostPort":32768,"protocol":"tcp"}]}],"pullStartedAt":1796000000.123,"pullStoppedAt":1796000001.456}"#;

/// Runs the benchmark and prints its figures.
pub async fn run(args: Sigv4Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let config = berth_server::ServerConfig {
        data_dir: Some(dir.path().join("server")),
        ..berth_server::ServerConfig::default()
    };
    let app = berth_server::App::open(config)
        .await
        .context("server state")?;
    let root = crate::commands::server_credentials(&dir.path().join("server"))?;
    let user = user_key(&app).await?;
    for (who, credentials) in [("root key", root), ("IAM user key", user)] {
        let rate = verify_rate(&app, &credentials, args.requests)?;
        println!("sigv4 verified requests/s (one core, {who}): {rate:.0}");
    }
    Ok(())
}

/// An IAM user's access key, made as IAM's CreateUser and CreateAccessKey make them.
async fn user_key(app: &std::sync::Arc<berth_server::App>) -> anyhow::Result<Credentials> {
    use berth_core::model::iam::{AccessKey, KeyStatus, User};
    use berth_store::typed::encode;
    let id = berth_server::auth::keys::new_id("AKIA")?;
    let user = User {
        user_name: "bench".into(),
        user_id: berth_server::auth::keys::new_id("AIDA")?,
        path: "/".into(),
        arn: "arn:aws:iam::000000000000:user/bench".into(),
        create_date: app.now(),
        tags: Vec::new(),
    };
    let key = AccessKey {
        access_key_id: id.clone(),
        user_name: Some("bench".into()),
        status: KeyStatus::Active,
        create_date: app.now(),
    };
    let txn = berth_store::Txn::new()
        .put(berth_store::keys::user("bench"), encode(&user))
        .put(berth_store::keys::access_key(&id), encode(&key));
    app.commit(txn).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(app.keys.credentials_of(&id))
}

fn verify_rate(
    app: &berth_server::App,
    credentials: &Credentials,
    requests: u32,
) -> anyhow::Result<f64> {
    let target = "AmazonEC2ContainerServiceV20141113.SubmitTaskStateChange";
    let base = [
        ("host", "127.0.0.1:7700"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
    ];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let unsigned = RequestParts {
        method: "POST",
        path: "/",
        query: "",
        headers: &base,
        body: BODY.as_bytes(),
    };
    let added = sign(&unsigned, credentials, "us-east-1", "ecs", now);
    let mut headers: Vec<(&str, &str)> = base.to_vec();
    headers.extend(added.iter().map(|(k, v)| (*k, v.as_str())));
    let request = RequestParts {
        headers: &headers,
        ..unsigned
    };
    berth_server::auth::authenticate(app, &request, now).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    for _ in 0..requests {
        let verified = berth_server::auth::authenticate(app, &request, now);
        std::hint::black_box(verified).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(f64::from(requests) / started.elapsed().as_secs_f64())
}

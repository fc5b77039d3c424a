//! Helpers for handler and controller tests: an in-memory server and the dispatcher driven
//! with the JSON an ECS client sends.

use crate::app::{App, ServerConfig};
use crate::dispatch::{dispatch, Ctx};
use crate::error::ApiError;
use serde_json::Value;
use std::sync::Arc;

/// Defines `call`, `ok` and `err` for the tests of one AWS JSON service whose operations
/// `$dispatch` runs, as the root user: the decoded answer or the error; an answer that must
/// succeed; an error that must come.
#[macro_export]
macro_rules! json_service_calls {
    ($dispatch:path) => {
        async fn call(
            app: &std::sync::Arc<$crate::app::App>,
            op: &str,
            body: serde_json::Value,
        ) -> Result<serde_json::Value, $crate::error::ApiError> {
            let ctx = $crate::dispatch::Ctx {
                app: app.clone(),
                caller: $crate::auth::root_principal(app).expect("root principal"),
            };
            let bytes = $dispatch(ctx, op, body.to_string().as_bytes()).await?;
            Ok(serde_json::from_slice(&bytes).expect("json answer"))
        }

        async fn ok(
            app: &std::sync::Arc<$crate::app::App>,
            op: &str,
            body: serde_json::Value,
        ) -> serde_json::Value {
            match call(app, op, body).await {
                Ok(v) => v,
                Err(e) => panic!("{op} failed: {e}"),
            }
        }

        async fn err(
            app: &std::sync::Arc<$crate::app::App>,
            op: &str,
            body: serde_json::Value,
        ) -> $crate::error::ApiError {
            match call(app, op, body).await {
                Ok(v) => panic!("{op} should fail, answered {v}"),
                Err(e) => e,
            }
        }
    };
}

/// A server on an in-memory store.
pub async fn app() -> Arc<App> {
    App::open(ServerConfig::default()).await.expect("app")
}

/// `config` with its store in `etcd`, under key prefix `prefix`.
#[cfg(feature = "etcd")]
pub fn on_etcd(
    etcd: &berth_store::etcd::local::LocalEtcd,
    prefix: &str,
    config: ServerConfig,
) -> ServerConfig {
    let url = etcd.url(prefix);
    ServerConfig {
        etcd: Some(berth_store::location::EtcdConfig::from_url(&url).expect("etcd url")),
        ..config
    }
}

/// A server (no listener, no controllers) with its store in `etcd`.
#[cfg(feature = "etcd")]
pub async fn app_on_etcd(etcd: &berth_store::etcd::local::LocalEtcd) -> Arc<App> {
    let config = on_etcd(etcd, "test", ServerConfig::default());
    App::open(config).await.expect("app over etcd")
}

/// Calls operation `op` with `body`; the decoded answer or the ECS error.
pub async fn call(app: &Arc<App>, op: &str, body: Value) -> Result<Value, ApiError> {
    let ctx = Ctx {
        app: app.clone(),
        caller: crate::auth::root_principal(app).expect("root principal"),
    };
    let bytes = dispatch(ctx, op, body.to_string().as_bytes()).await?;
    Ok(serde_json::from_slice(&bytes).expect("json response"))
}

/// Calls operation `op`, which must succeed.
pub async fn ok(app: &Arc<App>, op: &str, body: Value) -> Value {
    match call(app, op, body).await {
        Ok(v) => v,
        Err(e) => panic!("{op} failed: {e}"),
    }
}

/// The capability attributes a Berth agent on a stock Docker daemon registers with (Docker
/// Remote API versions, the json-file, local and syslog log drivers, the local volume driver,
/// container health checks and ordering), plus `extra`: for tests that register instances as
/// an agent would, so task definitions needing these capabilities can be placed.
pub fn agent_attributes(extra: &[Value]) -> Value {
    let mut out: Vec<Value> = (17..=44)
        .map(|v| serde_json::json!({"name": format!("com.amazonaws.ecs.capability.docker-remote-api.1.{v}")}))
        .collect();
    for name in [
        "com.amazonaws.ecs.capability.logging-driver.json-file",
        "com.amazonaws.ecs.capability.logging-driver.local",
        "com.amazonaws.ecs.capability.logging-driver.syslog",
        "ecs.capability.docker-plugin.local",
        "ecs.capability.container-health-check",
        "ecs.capability.container-ordering",
        "ecs.capability.container-port-range",
    ] {
        out.push(serde_json::json!({ "name": name }));
    }
    out.extend(extra.iter().cloned());
    Value::Array(out)
}

/// A server on a temp data dir, listening on a free loopback port, and the credentials it
/// wrote to `DATA_DIR/credentials` (read as a user's tools read that file).
pub struct Served {
    pub server: crate::http::Server,
    pub credentials: berth_core::sigv4::Credentials,
    pub dir: tempfile::TempDir,
}

impl Served {
    /// The ARN of the principal [`Served::credentials`] sign as (the root user).
    pub fn credentials_arn(&self) -> String {
        format!("arn:aws:iam::{}:root", self.server.app().config.account_id)
    }
}

/// Starts a [`Served`] server.
pub async fn served() -> Served {
    served_with(crate::limits::Limits::default()).await
}

/// Starts a [`Served`] server with the given limits.
pub async fn served_with(limits: crate::limits::Limits) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: Some(dir.path().join("data")),
        limits,
        ..ServerConfig::default()
    };
    let server = crate::serve(config).await.expect("serve");
    let file = server
        .app()
        .credentials_file()
        .expect("a data dir has a credentials file");
    let credentials = read_profile(&file, crate::auth::PROFILE);
    Served {
        server,
        credentials,
        dir,
    }
}

/// The credentials of `profile` in an AWS shared-credentials file.
pub fn read_profile(path: &std::path::Path, profile: &str) -> berth_core::sigv4::Credentials {
    let text = std::fs::read_to_string(path).expect("credentials file");
    berth_core::sigv4::Credentials::from_profile(&text, profile).expect("the profile's keys")
}

/// What came back from [`send`]: the status line's code, the head, and the body (up to the
/// first read's worth for streams).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The `__type` of an error body.
    pub fn error_type(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["__type"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// How [`send`] signs.
pub enum Signing<'a> {
    /// Not at all.
    None,
    /// With these credentials, at this Unix time.
    As(&'a berth_core::sigv4::Credentials, u64),
}

/// The current Unix time.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Sends one HTTP/1.1 request over a fresh connection, signed (scope `ecs`) as `signing`
/// says; `extra` headers are sent and signed. Reads the answer until the connection closes or,
/// for a stream, until the first body bytes arrive.
pub async fn send(
    addr: std::net::SocketAddr,
    method: &str,
    path_and_query: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    signing: Signing<'_>,
) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = addr.to_string();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let mut headers: Vec<(String, String)> = vec![("host".into(), host)];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    if let Signing::As(credentials, time) = signing {
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let parts = berth_core::sigv4::RequestParts {
            method,
            path,
            query,
            headers: &refs,
            body,
        };
        let added = berth_core::sigv4::sign(&parts, credentials, "us-east-1", "ecs", time);
        headers.extend(added.into_iter().map(|(k, v)| (k.to_string(), v)));
    }
    let mut request = format!("{method} {path_and_query} HTTP/1.1\r\n");
    for (k, v) in &headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    stream.write_all(body).await.expect("send body");
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
                .await
                .expect("an answer within 10 s")
                .expect("read");
        bytes.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&bytes);
        let streaming = text.contains("application/x-ndjson") && text.contains("\r\n\r\n");
        if read == 0 || streaming {
            break;
        }
    }
    let text = String::from_utf8_lossy(&bytes).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// An ECS call through [`send`].
pub async fn send_ecs(
    served: &Served,
    operation: &str,
    body: &Value,
    signing: Signing<'_>,
) -> Answer {
    let target = format!("AmazonEC2ContainerServiceV20141113.{operation}");
    send(
        served.server.addr(),
        "POST",
        "/",
        &[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", &target),
        ],
        body.to_string().as_bytes(),
        signing,
    )
    .await
}

/// Stores one `AWS/ECS` `CPUUtilization` datapoint of `value` % for service `service` of
/// `cluster` at `at` (epoch ms), as the usage publisher would.
pub fn put_service_cpu(app: &App, cluster: &str, service: &str, at: i64, value: f64) {
    let datum = crate::cloudwatch::Datum {
        namespace: "AWS/ECS".into(),
        metric_name: "CPUUtilization".into(),
        dimensions: vec![
            ("ClusterName".into(), cluster.into()),
            ("ServiceName".into(), service.into()),
        ],
        timestamp: at,
        statistics: crate::cloudwatch::StatisticSet::single(value),
        unit: "Percent".into(),
    };
    app.cloudwatch
        .put_at(vec![(datum, false)], at)
        .expect("store a datapoint");
}

/// The texts of every `<tag>` of XML answer `xml`, in order.
pub fn xml_texts(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(t, _)| t.to_string()))
        .collect()
}

/// The text of the first `<tag>` of XML answer `xml`.
pub fn xml_text(xml: &str, tag: &str) -> String {
    xml_texts(xml, tag)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
}

/// An IAM user with no policies: every action it tries is denied.
pub fn user_without_policies() -> crate::auth::Principal {
    crate::auth::Principal {
        arn: "arn:aws:iam::000000000000:user/nobody".into(),
        access_key_id: "AKIANOBODY".into(),
        identity: crate::auth::Identity::User {
            name: "nobody".into(),
            id: "AIDANOBODY".into(),
        },
        secure_transport: false,
        host: None,
    }
}

/// The form body a query-protocol client sends for `action` of API `version` with `params`.
pub fn form_body(action: &str, version: &str, params: &[(&str, &str)]) -> String {
    use crate::protocol::query::url_encode;
    let mut body = format!("Action={action}&Version={version}");
    for (k, v) in params {
        body.push_str(&format!("&{}={}", url_encode(k), url_encode(v)));
    }
    body
}

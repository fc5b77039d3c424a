//! The agent's HTTP client for the Berth server (plain HTTP/1 through hyper): ECS JSON calls
//! (RegisterContainerInstance, SubmitTaskStateChange, SubmitContainerStateChange), the NDJSON
//! desired-state stream and heartbeats, every one SigV4-signed (scope `ecs`). A client may
//! know several replicas of the server and moves on to the next when one does not answer
//! (`endpoints`).

use berth_core::gateway::{
    DesiredUpdate, Heartbeat, SubmitContainerStateChange, SubmitTaskStateChange, DESIRED_PATH,
    HEARTBEAT_PATH, STREAM_PROTOCOL,
};
use berth_core::sigv4::{self, Credentials, RequestParts};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod endpoints;
use endpoints::Endpoints;

/// `X-Amz-Target` prefix of ECS operations.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113.";
/// Content type of the ECS protocol.
pub const AMZ_JSON: &str = "application/x-amz-json-1.1";
/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long opening a connection may take (shared by the addresses a name resolves to), so
/// a server that drops packets costs this, not a whole call's timeout, before the next.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest desired-state line accepted.
const MAX_LINE_BYTES: usize = 64 << 20;

/// Errors of calls to the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server URL cannot be used.
    #[error("invalid server URL '{url}': {why}")]
    InvalidUrl { url: String, why: String },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the Berth server: {0}")]
    Transport(String),
    /// The server answered with an error.
    #[error("{kind} (HTTP {status}): {message}")]
    Api {
        status: u16,
        kind: String,
        message: String,
    },
    /// The server's answer could not be read.
    #[error("unexpected answer from the Berth server: {0}")]
    Decode(String),
}

impl ClientError {
    /// Whether trying again later may succeed: transport failures, server faults and
    /// throttling (`ThrottlingException`, or HTTP 429); not a request the server rejected.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Transport(_) | ClientError::Decode(_) => true,
            ClientError::Api { status, kind, .. } => {
                *status >= 500 || *status == 429 || kind == "ThrottlingException"
            }
            ClientError::InvalidUrl { .. } => false,
        }
    }
}

/// The client. Cheap to clone: clones share the connection pool and the server in use.
#[derive(Clone)]
pub struct ServerClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The servers, and the one in use.
    endpoints: Arc<Endpoints>,
    region: String,
    credentials: Credentials,
}

impl std::fmt::Debug for ServerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("base", &self.base_url())
            .field("servers", &self.endpoints.all().len())
            .finish()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type")]
    kind: Option<String>,
    #[serde(alias = "Message")]
    message: Option<String>,
}

impl ServerClient {
    /// A client of the server at `url` (`http://host:port`, or `https://` trusting the
    /// system's CAs), signing with `credentials` in `region`.
    pub fn new(
        url: &str,
        region: &str,
        credentials: Credentials,
    ) -> Result<ServerClient, ClientError> {
        ServerClient::with_ca(url, region, credentials, None)
    }

    /// [`ServerClient::new`], trusting for `https://` only the CA certificates in the PEM file
    /// `ca` (a Berth server's own CA is `DATA_DIR/tls/ca.pem`).
    pub fn with_ca(
        url: &str,
        region: &str,
        credentials: Credentials,
        ca: Option<&std::path::Path>,
    ) -> Result<ServerClient, ClientError> {
        ServerClient::with_servers(&[url], region, credentials, ca)
    }

    /// [`ServerClient::with_ca`] for several replicas of one server (`urls`, in order of
    /// preference; blank entries skipped): the first is used until a call or a stream to it
    /// fails at the transport level (refused, reset, timed out, TLS), then the next, round
    /// robin, for every clone of the client. An error answer (4xx, 5xx) does not move it. A
    /// DNS name that resolves to several addresses is one URL: each new connection tries
    /// its addresses in turn.
    pub fn with_servers<S: AsRef<str>>(
        urls: &[S],
        region: &str,
        credentials: Credentials,
        ca: Option<&std::path::Path>,
    ) -> Result<ServerClient, ClientError> {
        let endpoints = Endpoints::parse(urls)?;
        let mut connector = HttpConnector::new();
        // Reports and stream lines are small: send them at once, not after Nagle's delay.
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.enforce_http(false);
        let tls = tls_config(ca).map_err(|why| ClientError::InvalidUrl {
            url: endpoints.current().1.base.clone(),
            why,
        })?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let http = Client::builder(TokioExecutor::new()).build(connector);
        Ok(ServerClient {
            http,
            endpoints: Arc::new(endpoints),
            region: region.to_string(),
            credentials,
        })
    }

    /// The base URL of the server in use.
    pub fn base_url(&self) -> &str {
        &self.endpoints.current().1.base
    }

    /// The base URLs of every server this client may use, in order.
    pub fn server_urls(&self) -> Vec<&str> {
        self.endpoints
            .all()
            .iter()
            .map(|e| e.base.as_str())
            .collect()
    }

    /// The URI of `path_and_query` on server `server`.
    fn uri(&self, server: usize, path_and_query: &str) -> Result<Uri, ClientError> {
        let base = self.endpoint(server).0;
        format!("{base}{path_and_query}")
            .parse()
            .map_err(|_| ClientError::InvalidUrl {
                url: base.to_string(),
                why: format!("bad path {path_and_query}"),
            })
    }

    /// Base URL and authority of server `server`.
    fn endpoint(&self, server: usize) -> (&str, &str) {
        let endpoint = &self.endpoints.all()[server];
        (&endpoint.base, &endpoint.authority)
    }

    /// A request to `path_and_query` with `headers` and `body`, signed for ECS.
    fn signed(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Outgoing, ClientError> {
        self.signed_for("ecs", method, path_and_query, headers, body)
    }

    /// A request to `path_and_query` with `headers` and `body` for the server in use, signed
    /// for `service`.
    fn signed_for(
        &self,
        service: &str,
        method: Method,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Outgoing, ClientError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let server = self.endpoints.current().0;
        let authority = self.endpoint(server).1;
        let mut all: Vec<(&str, &str)> = vec![(HOST.as_str(), authority)];
        all.extend_from_slice(headers);
        let parts = RequestParts {
            method: method.as_str(),
            path,
            query,
            headers: &all,
            body: &body,
        };
        let added = sigv4::sign(&parts, &self.credentials, &self.region, service, now);
        let mut request = Request::builder()
            .method(method)
            .uri(self.uri(server, path_and_query)?);
        for (name, value) in all {
            request = request.header(name, value);
        }
        for (name, value) in added {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok(Outgoing { request, server })
    }

    /// Sends `outgoing`; a transport failure moves the client on to the next server.
    async fn send(&self, outgoing: Outgoing) -> Result<Response<Incoming>, ClientError> {
        let Outgoing { request, server } = outgoing;
        let sent = match tokio::time::timeout(CALL_TIMEOUT, self.http.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(ClientError::Transport(error_chain(&err))),
            Err(_) => Err(ClientError::Transport(format!(
                "no answer within {CALL_TIMEOUT:?}"
            ))),
        };
        sent.map_err(|err| failed_on(&self.endpoints, server, err))
    }

    /// Sends `outgoing` and reads the whole answer: its status and body.
    async fn exchange(
        &self,
        outgoing: Outgoing,
    ) -> Result<(hyper::StatusCode, Bytes), ClientError> {
        let server = outgoing.server;
        let response = self.send(outgoing).await?;
        let status = response.status();
        let bytes = read_body(response)
            .await
            .map_err(|err| failed_on(&self.endpoints, server, err))?;
        Ok((status, bytes))
    }

    /// Calls ECS operation `operation` with `body`; returns the decoded answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        operation: &str,
        body: &Req,
    ) -> Result<Resp, ClientError> {
        self.call_json("ecs", &format!("{TARGET_PREFIX}{operation}"), body)
            .await
    }

    /// Calls the AWS JSON 1.1 operation `target` (`Prefix.Operation`) of the service signed
    /// for as `service` (`logs` for CloudWatch Logs) with `body`; returns the decoded answer.
    pub async fn call_json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        service: &str,
        target: &str,
        body: &Req,
    ) -> Result<Resp, ClientError> {
        let operation = target.rsplit('.').next().unwrap_or(target);
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        let headers = [(CONTENT_TYPE.as_str(), AMZ_JSON), ("x-amz-target", target)];
        let request = self.signed_for(service, Method::POST, "/", &headers, body)?;
        let (status, bytes) = self.exchange(request).await?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(format!("{operation}: {e}")))
    }

    /// Calls the AWS query-protocol action `action` (IAM, STS) of the service signed for as
    /// `service` with the form parameters `params`; returns the XML answer's text.
    pub async fn call_query(
        &self,
        service: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<String, ClientError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action);
        form.append_pair("Version", query_version(service));
        for (name, value) in params {
            form.append_pair(name, value);
        }
        let body = form.finish().into_bytes();
        let headers = [(
            CONTENT_TYPE.as_str(),
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        let request = self.signed_for(service, Method::POST, "/", &headers, body)?;
        let (status, bytes) = self.exchange(request).await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            return Err(ClientError::Api {
                status: status.as_u16(),
                kind: xml_text(&text, "Code").unwrap_or_else(|| "Unknown".into()),
                message: xml_text(&text, "Message").unwrap_or(text),
            });
        }
        Ok(text)
    }

    /// SubmitTaskStateChange.
    pub async fn submit_task_state_change(
        &self,
        report: &SubmitTaskStateChange,
    ) -> Result<(), ClientError> {
        self.call::<_, serde_json::Value>("SubmitTaskStateChange", report)
            .await
            .map(|_| ())
    }

    /// SubmitContainerStateChange.
    pub async fn submit_container_state_change(
        &self,
        report: &SubmitContainerStateChange,
    ) -> Result<(), ClientError> {
        self.call::<_, serde_json::Value>("SubmitContainerStateChange", report)
            .await
            .map(|_| ())
    }

    /// Scale-in protection of `task` on this instance (`TASK_PROTECTION_PATH`): changed when
    /// `enabled` is given, else read. The answer is UpdateTaskProtection's JSON.
    pub async fn task_protection(
        &self,
        cluster: &str,
        container_instance: &str,
        task: &str,
        enabled: Option<bool>,
        expires_in_minutes: Option<i32>,
    ) -> Result<serde_json::Value, ClientError> {
        let body = serde_json::json!({
            "cluster": cluster,
            "containerInstance": container_instance,
            "task": task,
            "protectionEnabled": enabled,
            "expiresInMinutes": expires_in_minutes,
        });
        self.post(berth_core::gateway::TASK_PROTECTION_PATH, &body)
            .await
    }

    /// POSTs `body` as JSON to the gateway route `path`; returns the decoded answer.
    pub async fn post<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
    ) -> Result<Resp, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        let headers = [(CONTENT_TYPE.as_str(), "application/json")];
        let request = self.signed(Method::POST, path, &headers, body)?;
        let (status, bytes) = self.exchange(request).await?;
        if !status.is_success() {
            return Err(api_error(status.as_u16(), &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    /// Sends one heartbeat.
    pub async fn heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), ClientError> {
        let body = serde_json::to_vec(heartbeat).map_err(|e| ClientError::Decode(e.to_string()))?;
        let headers = [(CONTENT_TYPE.as_str(), "application/json")];
        let request = self.signed(Method::POST, HEARTBEAT_PATH, &headers, body)?;
        let (status, bytes) = self.exchange(request).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(api_error(status.as_u16(), &bytes))
        }
    }

    /// Opens a WebSocket on `path_and_query`, the request signed (the agent's exec relay) or
    /// not (a data channel, opened by the session token it then sends).
    pub async fn websocket(
        &self,
        path_and_query: &str,
        signed: bool,
    ) -> Result<crate::websocket::WsClient, ClientError> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| ClientError::Transport(e.to_string()))?;
        let key = berth_core::websocket::client_key(random);
        let headers = [
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", key.as_str()),
        ];
        let request = if signed {
            self.signed(Method::GET, path_and_query, &headers, Vec::new())?
        } else {
            let server = self.endpoints.current().0;
            let mut request = Request::builder()
                .method(Method::GET)
                .uri(self.uri(server, path_and_query)?)
                .header(HOST, self.endpoint(server).1);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let request = request
                .body(Full::new(Bytes::new()))
                .map_err(|e| ClientError::Decode(e.to_string()))?;
            Outgoing { request, server }
        };
        let response = self.send(request).await?;
        let status = response.status();
        if status != hyper::StatusCode::SWITCHING_PROTOCOLS {
            let bytes = read_body(response).await?;
            return Err(api_error(status.as_u16(), &bytes));
        }
        let expected = berth_core::websocket::accept_key(&key, |input| {
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, input)
                .as_ref()
                .to_vec()
        });
        let accepted = response
            .headers()
            .get("sec-websocket-accept")
            .and_then(|v| v.to_str().ok());
        if accepted != Some(expected.as_str()) {
            return Err(ClientError::Decode(
                "the server's WebSocket handshake does not answer our key".into(),
            ));
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| ClientError::Transport(error_chain(&e)))?;
        Ok(crate::websocket::client(upgraded))
    }

    /// Opens the desired-state stream of an instance, resuming after revision `since`.
    pub async fn desired_stream(
        &self,
        cluster: &str,
        container_instance: &str,
        since: Option<u64>,
    ) -> Result<DesiredStream, ClientError> {
        let mut query = format!(
            "{DESIRED_PATH}?cluster={}&containerInstance={}&protocol={STREAM_PROTOCOL}",
            encode(cluster),
            encode(container_instance)
        );
        if let Some(since) = since {
            query.push_str(&format!("&since={since}"));
        }
        let headers = [("accept", "application/x-ndjson")];
        let request = self.signed(Method::GET, &query, &headers, Vec::new())?;
        let server = request.server;
        let response = self.send(request).await?;
        let status = response.status();
        if !status.is_success() {
            let bytes = read_body(response)
                .await
                .map_err(|err| failed_on(&self.endpoints, server, err))?;
            return Err(api_error(status.as_u16(), &bytes));
        }
        Ok(DesiredStream {
            body: response.into_body(),
            buffer: Vec::new(),
            endpoints: Arc::clone(&self.endpoints),
            server,
        })
    }
}

/// The TLS configuration of a client trusting the CAs of PEM file `ca`, or the system's.
fn tls_config(ca: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{} holds no CA certificate", path.display()));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system certificate rustls cannot use is skipped, as browsers do.
                let _ = roots.add(cert);
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A request and the index of the server it is for.
struct Outgoing {
    request: Request<Full<Bytes>>,
    server: usize,
}

/// `err`, after moving `endpoints` on from server `server` when it is a transport failure.
fn failed_on(endpoints: &Endpoints, server: usize, err: ClientError) -> ClientError {
    if matches!(err, ClientError::Transport(_)) {
        endpoints.failed(server);
    }
    err
}

/// An open desired-state stream: newline-delimited JSON [`DesiredUpdate`] lines.
#[derive(Debug)]
pub struct DesiredStream {
    body: Incoming,
    buffer: Vec<u8>,
    /// The client's servers, and the index of the one this stream comes from.
    endpoints: Arc<Endpoints>,
    server: usize,
}

impl DesiredStream {
    /// The base URL of the server this stream comes from.
    pub fn server_url(&self) -> &str {
        &self.endpoints.all()[self.server].base
    }

    /// [`DesiredStream::next_update`], waiting at most `idle` for the line: a server silent
    /// that long is taken as gone (a transport error, so the client moves to the next one).
    pub async fn next_update_within(
        &mut self,
        idle: Duration,
    ) -> Result<Option<DesiredUpdate>, ClientError> {
        match tokio::time::timeout(idle, self.next_update()).await {
            Ok(next) => next,
            Err(_) => Err(failed_on(
                &self.endpoints,
                self.server,
                ClientError::Transport(format!("no desired state for {idle:?}")),
            )),
        }
    }

    /// The next line; `None` when the server ended the stream. A broken connection is a
    /// transport error, and moves the client on to its next server.
    pub async fn next_update(&mut self) -> Result<Option<DesiredUpdate>, ClientError> {
        loop {
            if let Some(line) = take_line(&mut self.buffer) {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(&line)
                    .map(Some)
                    .map_err(|e| ClientError::Decode(format!("desired state line: {e}")));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(err)) => {
                    return Err(failed_on(
                        &self.endpoints,
                        self.server,
                        ClientError::Transport(error_chain(&err)),
                    ))
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                        if self.buffer.len() > MAX_LINE_BYTES {
                            return Err(ClientError::Decode("desired state line too long".into()));
                        }
                    }
                }
            }
        }
    }
}

/// Takes the first complete line (without its newline) out of `buffer`.
fn take_line(buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = buffer.iter().position(|b| *b == b'\n')?;
    let mut line: Vec<u8> = buffer.drain(..=end).collect();
    line.pop();
    Some(line)
}

async fn read_body(response: Response<Incoming>) -> Result<Bytes, ClientError> {
    response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|e| ClientError::Transport(error_chain(&e)))
}

fn api_error(status: u16, body: &[u8]) -> ClientError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let kind = parsed
        .as_ref()
        .and_then(|b| b.kind.as_deref())
        .map(|k| k.rsplit('#').next().unwrap_or(k).to_string())
        .unwrap_or_else(|| {
            if status >= 500 {
                "ServerException".into()
            } else {
                "ClientException".into()
            }
        });
    let message = parsed
        .and_then(|b| b.message)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(500).collect());
    ClientError::Api {
        status,
        kind,
        message,
    }
}

/// An error with its sources, `a: b: c`.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests;

/// The API version a query-protocol service expects in `Version`.
fn query_version(service: &str) -> &'static str {
    match service {
        "iam" => "2010-05-08",
        "sts" => "2011-06-15",
        "monitoring" => "2010-08-01",
        _ => "",
    }
}

/// The text of the first `<tag>` element of `xml`, if any.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

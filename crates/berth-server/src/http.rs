//! The HTTP front: `POST /` carries ECS operations, `/v1/agent/...` the agent gateway;
//! `/healthz` answers liveness probes. Every request but `/healthz` must be SigV4-signed by a
//! known access key before any handler sees it. Every request gets a request id; a handler
//! that panics is a `ServerException`, never a dropped connection.

use crate::app::{App, ServerConfig};
use crate::auth::{authenticate, Principal};
use crate::dispatch::{dispatch, Ctx};
use crate::error::ApiError;
use crate::protocol::{operation_of, query, JsonService, MAX_BODY_BYTES};
use axum::body::{Body, Bytes};
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

mod accept;
pub mod cookies;
use accept::OverTls;

/// A running server: its address and the means to stop it.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint clients use: `http://ADDR`, or `https://ADDR` when it speaks TLS.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The application state (for in-process callers such as `berth up`).
    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Stops accepting requests, ends the agents' streams, lets in-flight requests finish,
    /// and returns.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.app.close();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Waits until the server stops by itself (it only does on an I/O error).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// The router of the ECS API and the side endpoints.
pub fn router(app: Arc<App>) -> Router {
    let signed = Router::new()
        .route("/", post(api))
        .route("/service/{service}/operation/{operation}", post(cbor_api))
        .route(
            berth_core::gateway::DESIRED_PATH,
            get(crate::gateway::desired),
        )
        .route(
            berth_core::gateway::HEARTBEAT_PATH,
            post(crate::gateway::heartbeat),
        )
        .route(
            berth_core::gateway::TASK_PROTECTION_PATH,
            post(crate::gateway::task_protection),
        )
        .route(
            berth_core::gateway::TASK_SECRETS_PATH,
            post(crate::task_secrets::resolve),
        )
        .route(
            berth_core::gateway::TASK_CREDENTIALS_PATH,
            post(crate::sts::task_credentials::issue),
        )
        .route(
            berth_core::gateway::VAULT_ROTATE_PATH,
            post(crate::vault::admin::rotate_key),
        )
        .route(
            berth_core::telemetry::LOGS_PATH,
            post(crate::telemetry::logs::ship),
        )
        .route(
            berth_core::telemetry::STATS_PATH,
            post(crate::telemetry::usage::report),
        )
        .route(
            &format!("{}{{session}}", berth_core::exec::AGENT_EXEC_PATH),
            get(crate::exec::relay::agent_exec),
        )
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), signed));
    Router::new()
        .merge(signed)
        .merge(crate::console::router())
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        // For scrapers, which cannot sign: the metrics token as a bearer token.
        .route("/metrics", get(crate::metrics::serve))
        // Opened with the session's one-time token (ExecuteCommand's tokenValue), not signed.
        .route(
            &format!("{}{{session}}", berth_core::exec::DATA_CHANNEL_PATH),
            get(crate::exec::channel::data_channel),
        )
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                "UnknownOperationException",
                "This method is not allowed here: send ECS operations as POST /.",
            )
            .into_response()
        })
        .fallback(|| async {
            ApiError::new(
                "UnknownOperationException",
                "Send ECS operations as POST / with X-Amz-Target.",
            )
            .into_response()
        })
        .with_state(app)
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] berth_store::StoreError),
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// The controllers, which run only where the replica leads (see [`crate::replicas`]).
fn start_controllers(app: &Arc<App>) {
    let gc_every = (app.config.stopped_task_retention / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    );
    crate::controllers::gc::spawn(app.clone(), gc_every);
    crate::controllers::services::spawn(app.clone());
    crate::controllers::instance_health::spawn(app.clone());
    crate::autoscaling::controller::spawn(app.clone());
    crate::elbv2::dataplane::spawn(app.clone());
    crate::elbv2::service_targets::spawn(app.clone());
    crate::servicediscovery::ecs::spawn(app.clone());
}

/// `/readyz`: 200 when this replica's cache has caught up with the store (so it serves
/// current reads), 503 when the store cannot be reached or the cache lags; the body says
/// which replica this is and who leads.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    const WITHIN: std::time::Duration = std::time::Duration::from_secs(2);
    let head = tokio::time::timeout(WITHIN, app.store.revision()).await;
    let (ready, why) = match head {
        Ok(Ok(head)) => {
            let synced = tokio::time::timeout(WITHIN, app.state.wait_for(head)).await;
            (
                synced.is_ok(),
                if synced.is_ok() {
                    "synced".to_string()
                } else {
                    format!(
                        "the cache lags the store (at {}, store at {head})",
                        app.state.revision()
                    )
                },
            )
        }
        Ok(Err(e)) => (false, format!("the store cannot be read: {e}")),
        Err(_) => (false, "the store does not answer".to_string()),
    };
    let body = serde_json::json!({
        "ready": ready,
        "status": why,
        "replica": app.leadership.name,
        "leads": app.leadership.leads(),
        "leader": crate::replicas::leader_line(&app).await,
        "revision": app.state.revision(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Opens the store, binds the listener and starts serving in the background.
pub async fn serve(config: ServerConfig) -> Result<Server, StartError> {
    let addr = config.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Listen { addr, source })?;
    let acceptor = crate::tls::acceptor(&config.tls, config.data_dir.as_deref(), addr)?;
    let app = App::open(config).await?;
    crate::replicas::lead(app.clone(), start_controllers);
    // Every replica answers DNS on its own addresses, applies retention to the logs its
    // agents sent it, publishes the usage they report, and tells the others whom it heard.
    crate::logs::spawn(app.clone());
    crate::telemetry::usage::spawn(app.clone());
    crate::dns::spawn(app.clone());
    crate::replicas::sightings::spawn(app.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let router = router(app.clone());
    let limits = app.config.limits.clone();
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let task = tokio::spawn(accept::accept(listener, router, limits, acceptor, stopped));
    Ok(Server {
        addr,
        scheme,
        app,
        stop: Some(stop),
        task,
    })
}

/// The id of a request, made as it arrives: every answer carries it in `x-amzn-RequestId`,
/// and the log names it beside any fault.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The service a request's signature is scoped to (`ecs`, `iam`, `sts`).
#[derive(Debug, Clone)]
pub struct SignedService(pub String);

/// The wire protocol a request speaks, as its headers tell: errors are answered in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// AWS JSON 1.0 and 1.1 (`X-Amz-Target`), and the agent gateway.
    Json,
    /// `smithy-rpc-v2-cbor` (CloudWatch).
    Cbor,
    /// The query protocol (a form body), answered in XML.
    Query,
}

/// A form body without `X-Amz-Target` is a query request, unless its signature is scoped to
/// ECS, which speaks only JSON.
fn wire_of(headers: &HeaderMap) -> Wire {
    if headers.contains_key(crate::protocol::cbor::PROTOCOL_HEADER.0) {
        return Wire::Cbor;
    }
    let form = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(query::FORM_CONTENT_TYPE));
    if form && !headers.contains_key("x-amz-target") && wire_service(headers) != "ecs" {
        Wire::Query
    } else {
        Wire::Json
    }
}

/// The XML namespace of the query service a request's signature names (IAM's by default).
fn namespace_of(service: &str) -> &'static str {
    match service {
        "sts" => crate::sts::NAMESPACE,
        "monitoring" => crate::cloudwatch::NAMESPACE,
        "elasticloadbalancing" => crate::elbv2::NAMESPACE,
        _ => crate::iam::NAMESPACE,
    }
}

/// `error` in the request's wire protocol.
fn error_answer(wire: Wire, service: &str, error: ApiError, request_id: &str) -> Response {
    let error = client_facing(error, request_id);
    match wire {
        // Cloud Map's model gives its errors their own statuses (404, 409, 429).
        Wire::Json if service == "servicediscovery" => {
            let status = crate::servicediscovery::status_of(&error);
            let mut response = error.into_response();
            *response.status_mut() = status;
            response
        }
        Wire::Cbor if service == "servicediscovery" => cbor_answer(
            crate::servicediscovery::status_of(&error),
            crate::protocol::cbor::error_body(&error),
        ),
        Wire::Json => error.into_response(),
        Wire::Cbor if service == "monitoring" => {
            // CloudWatch is `awsQueryCompatible`: `__type` names the model's error shape and
            // `x-amzn-query-error` carries the query-era code, which botocore reports.
            let body = crate::protocol::cbor::error_body_named(
                crate::cloudwatch::error_shape(error.name),
                &error.message,
            );
            let mut response = cbor_answer(error.status(), body);
            let fault = if error.status().is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            let code = format!("{};{fault}", query::query_code(error.name));
            if let Ok(value) = HeaderValue::from_str(&code) {
                response.headers_mut().insert("x-amzn-query-error", value);
            }
            response
        }
        Wire::Cbor => cbor_answer(error.status(), crate::protocol::cbor::error_body(&error)),
        Wire::Query if service == "ec2" => {
            let (status, xml) = crate::ec2::error_response(&error, request_id);
            xml_answer(status, xml)
        }
        Wire::Query => {
            let xml = query::error_response(namespace_of(service), &error, request_id);
            xml_answer(error.status(), xml)
        }
    }
}

fn cbor_answer(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(crate::protocol::cbor::CONTENT_TYPE),
    );
    let (name, value) = crate::protocol::cbor::PROTOCOL_HEADER;
    headers.insert(name, HeaderValue::from_static(value));
    response
}

fn xml_answer(status: StatusCode, xml: String) -> Response {
    let mut response = (status, xml).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(query::XML_CONTENT_TYPE),
    );
    response
}

/// Reads the body, checks the request's signature and passes it on with its [`Principal`];
/// or answers AWS's refusal, having run no handler. Counts the request in `/metrics`.
async fn signed(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let began = std::time::Instant::now();
    let request_id = RequestId(uuid::Uuid::new_v4().to_string());
    let (parts, body) = request.into_parts();
    let wire = wire_of(&parts.headers);
    let body = read_body(body, body_limit(&parts.headers)).await;
    let (service, operation) = match &body {
        Ok(body) => crate::metrics::labels(&parts, body),
        Err(_) => (wire_service(&parts.headers).to_string(), None),
    };
    let response = signed_answer(&app, request_id, parts, wire, body, next).await;
    app.metrics.observe_request(
        &service,
        operation.as_deref(),
        response.status().as_u16(),
        began.elapsed().as_secs_f64(),
    );
    response
}

async fn signed_answer(
    app: &Arc<App>,
    request_id: RequestId,
    parts: axum::http::request::Parts,
    wire: Wire,
    body: Result<Vec<u8>, ApiError>,
    next: Next,
) -> Response {
    if !crate::replicas::agent_request(&parts.uri, &parts.headers) {
        crate::replicas::catch_up(app).await;
    }
    let checked = match body {
        Ok(body) => principal_of(app, &parts, &body).map(|signed| (signed, body)),
        Err(e) => Err(e),
    };
    let mut response = match checked {
        Ok(((principal, _), _)) if !app.rate.admit(&principal.arn, &app.config.limits) => {
            let error = ApiError::new("ThrottlingException", "Rate exceeded");
            let service = wire_service(&parts.headers);
            error_answer(wire, service, error, &request_id.0)
        }
        Ok(((mut principal, service), body)) => {
            principal.secure_transport = parts.extensions.get::<OverTls>().is_some();
            principal.host = parts
                .headers
                .get(axum::http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut request = Request::from_parts(parts, Body::from(body));
            request.extensions_mut().insert(principal);
            request.extensions_mut().insert(SignedService(service));
            request.extensions_mut().insert(request_id.clone());
            next.run(request).await
        }
        Err(error) => {
            tracing::debug!(request_id = %request_id.0, error = %error, "request refused");
            error_answer(wire, wire_service(&parts.headers), error, &request_id.0)
        }
    };
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
}

/// The service an `Authorization` header's scope names (IAM's when it names none), for
/// errors answered before the request is authenticated.
pub(crate) fn wire_service(headers: &HeaderMap) -> &str {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split('/').nth(3))
        .unwrap_or("iam")
}

fn principal_of(
    app: &App,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<(Principal, String), ApiError> {
    // Values are signed as UTF-8 text (AWS's SDKs sign non-ASCII values so); one that is not
    // UTF-8 cannot have been signed and leaves its header out.
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str(), std::str::from_utf8(value.as_bytes()).ok()?))
        })
        .collect();
    let request = berth_core::sigv4::RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (principal, service) = authenticate(app, &request, now)?;
    // The agent gateway and the operator's routes are part of the ECS API.
    let path = parts.uri.path();
    if (path.starts_with("/v1/agent/") || path.starts_with("/v1/admin/")) && service != "ecs" {
        return Err(wrong_service("ecs", &service));
    }
    Ok((principal, service))
}

fn wrong_service(expected: &str, got: &str) -> ApiError {
    ApiError::new(
        "InvalidSignatureException",
        format!("Credential should be scoped to correct service: '{expected}', not '{got}'."),
    )
}

/// `POST /`: an ECS operation (JSON) or an IAM or STS action (query), as the request's
/// protocol and signature scope say.
async fn api(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
    Extension(SignedService(service)): Extension<SignedService>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let wire = wire_of(&headers);
    let ctx = Ctx { app, caller };
    match wire {
        Wire::Json => {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| std::str::from_utf8(v.as_bytes()).ok());
            let json_service = target
                .and_then(JsonService::of_target)
                .map_or(JsonService::Ecs, |(s, _)| s);
            let expected = json_service.signing_name();
            if service != expected {
                return error_answer(
                    wire,
                    &service,
                    wrong_service(expected, &service),
                    &request_id.0,
                );
            }
            match handle_json(ctx, json_service, target, body).await {
                Ok(json) => {
                    let mut response = (StatusCode::OK, json).into_response();
                    response.headers_mut().insert(
                        axum::http::header::CONTENT_TYPE,
                        HeaderValue::from_static(json_service.content_type()),
                    );
                    response
                }
                Err(error) => error_answer(wire, &service, error, &request_id.0),
            }
        }
        // `POST /` is never CBOR: that protocol names its operation in the path.
        Wire::Cbor => error_answer(
            wire,
            &service,
            ApiError::new(
                "UnknownOperationException",
                "Send smithy-rpc-v2-cbor requests to /service/<Service>/operation/<Operation>.",
            ),
            &request_id.0,
        ),
        Wire::Query => match handle_query(ctx, &service, body, &request_id.0).await {
            Ok(xml) => xml_answer(StatusCode::OK, xml),
            Err(error) => error_answer(wire, &service, error, &request_id.0),
        },
    }
}

/// Runs `work` on its own task, so a handler that panics answers a `ServerException`.
async fn guarded<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, ApiError>> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "handler panicked");
            Err(ApiError::server(
                "The server hit an internal error handling this request.",
            ))
        }
    }
}

async fn handle_query(
    ctx: Ctx,
    service: &str,
    body: Bytes,
    request_id: &str,
) -> Result<String, ApiError> {
    let request = query::QueryRequest::parse(&body)?;
    let action = request.action.clone();
    let (namespace, result) = match service {
        "iam" => (
            crate::iam::NAMESPACE,
            guarded(async move { crate::iam::dispatch(ctx, request).await }).await?,
        ),
        "sts" => (
            crate::sts::NAMESPACE,
            guarded(async move { crate::sts::dispatch(ctx, request).await }).await?,
        ),
        "monitoring" => (
            crate::cloudwatch::NAMESPACE,
            guarded(async move { crate::cloudwatch::dispatch_query(ctx, request).await }).await?,
        ),
        "elasticloadbalancing" => (
            crate::elbv2::NAMESPACE,
            guarded(async move { crate::elbv2::dispatch(ctx, request).await }).await?,
        ),
        // EC2's answers carry their members without a Result wrapper.
        "ec2" => {
            let output = guarded(async move { crate::ec2::dispatch(ctx, &body).await }).await?;
            return Ok(crate::ec2::response(&action, output, request_id));
        }
        other => {
            return Err(ApiError::new(
                "InvalidAction",
                format!("Berth serves no query API for the service '{other}': sign IAM requests for 'iam', STS requests for 'sts', CloudWatch requests for 'monitoring', ELBv2 requests for 'elasticloadbalancing' and EC2 requests for 'ec2'."),
            ))
        }
    };
    Ok(query::response(&action, namespace, result, request_id))
}

/// What the client is told of `error`. The server's own faults keep their detail in the
/// log, under the request id the client is given: internal text never reaches a client.
fn client_facing(error: ApiError, request_id: &str) -> ApiError {
    if error.name != "ServerException" {
        return error;
    }
    tracing::error!(request_id, error = %error.message, "request failed in the server");
    ApiError::server(format!(
        "The server could not complete the request; its log has the cause under request id {request_id}."
    ))
}

/// The largest body a request may have: `MAX_BODY_BYTES`, but CloudWatch Logs' PutLogEvents
/// takes 1 MiB of messages, which JSON framing and escapes make larger.
fn body_limit(headers: &HeaderMap) -> usize {
    const LOGS_MAX_BODY_BYTES: usize = 8 * MAX_BODY_BYTES;
    let logs = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("Logs_20140328."));
    if logs {
        LOGS_MAX_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

/// Reads a request body of at most `limit` bytes. A larger one is read on (and dropped) up
/// to 64 times that so the client, still sending, receives the 400 rather than a reset.
async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    use http_body_util::BodyExt;
    let drain_limit = 64 * limit;
    let unreadable = || ApiError::client("The request body could not be read.");
    let mut body = body;
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| unreadable())?;
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen <= limit {
                bytes.extend_from_slice(data);
            } else if seen > drain_limit {
                break;
            }
        }
    }
    if seen > limit {
        return Err(ApiError::client(format!(
            "The request body is {seen} bytes or more: the limit is {limit} bytes."
        )));
    }
    Ok(bytes)
}

/// Runs the JSON operation `target` names on the service it belongs to (ECS's errors for a
/// target that names none).
async fn handle_json(
    ctx: Ctx,
    service: JsonService,
    target: Option<&str>,
    body: Bytes,
) -> Result<Vec<u8>, ApiError> {
    let op = match target.and_then(JsonService::of_target) {
        Some((_, op)) => op.to_string(),
        None => operation_of(target)?.to_string(),
    };
    guarded(async move {
        match service {
            JsonService::Ecs => dispatch(ctx, &op, &body).await,
            JsonService::Logs => crate::logs::dispatch(ctx, &op, &body).await,
            JsonService::CloudWatch => crate::cloudwatch::dispatch_json(ctx, &op, &body).await,
            JsonService::SecretsManager => crate::secretsmanager::dispatch(ctx, &op, &body).await,
            JsonService::Ssm => crate::ssm::dispatch(ctx, &op, &body).await,
            JsonService::AutoScaling => crate::autoscaling::dispatch(ctx, &op, &body).await,
            JsonService::ServiceDiscovery => {
                crate::servicediscovery::dispatch_json(ctx, &op, &body).await
            }
        }
    })
    .await
}

/// `POST /service/<Service>/operation/<Operation>`: a `smithy-rpc-v2-cbor` request
/// (CloudWatch, Cloud Map).
async fn cbor_api(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
    Extension(SignedService(service)): Extension<SignedService>,
    Extension(request_id): Extension<RequestId>,
    axum::extract::Path((target, operation)): axum::extract::Path<(String, String)>,
    body: Bytes,
) -> Response {
    let ctx = Ctx { app, caller };
    let answer = match (target.as_str(), service.as_str()) {
        ("GraniteServiceVersion20100801", "monitoring") => {
            guarded(async move { crate::cloudwatch::dispatch_cbor(ctx, &operation, &body).await })
                .await
        }
        ("GraniteServiceVersion20100801", other) => Err(wrong_service("monitoring", other)),
        ("Route53AutoNaming_v20170314", "servicediscovery") => {
            guarded(
                async move { crate::servicediscovery::dispatch_cbor(ctx, &operation, &body).await },
            )
            .await
        }
        ("Route53AutoNaming_v20170314", other) => Err(wrong_service("servicediscovery", other)),
        (other, _) => Err(ApiError::new(
            "UnknownOperationException",
            format!("Berth serves no smithy-rpc-v2-cbor service named '{other}'."),
        )),
    };
    match answer {
        Ok(body) => cbor_answer(StatusCode::OK, body),
        Err(error) => error_answer(Wire::Cbor, &service, error, &request_id.0),
    }
}

#[cfg(test)]
mod tests;

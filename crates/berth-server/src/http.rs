//! The HTTP front: `POST /` carries ECS operations; `/healthz` answers liveness probes. Every
//! request gets a request id; a handler that panics is a `ServerException`, never a dropped
//! connection.

use crate::app::{App, ServerConfig};
use crate::dispatch::{dispatch, Caller, Ctx};
use crate::error::ApiError;
use crate::protocol::{access_key_of, operation_of, CONTENT_TYPE, MAX_BODY_BYTES};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// A running server: its address and the means to stop it.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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
    Router::new()
        .route("/", post(ecs))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            berth_core::gateway::DESIRED_PATH,
            get(crate::gateway::desired),
        )
        .route(
            berth_core::gateway::HEARTBEAT_PATH,
            post(crate::gateway::heartbeat),
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
    let app = App::open(config).await?;
    let gc_every = (app.config.stopped_task_retention / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(60),
    );
    crate::controllers::gc::spawn(app.clone(), gc_every);
    crate::controllers::services::spawn(app.clone());
    crate::controllers::instance_health::spawn(app.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let router = router(app.clone());
    let task = tokio::spawn(async move {
        // Small stream lines and answers must not wait on Nagle and delayed ACKs.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY could not be set");
            }
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Server {
        addr,
        app,
        stop: Some(stop),
        task,
    })
}

async fn ecs(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = handle(app, &headers, body).await;
    let mut response = match result {
        Ok(json) => {
            let mut response = (StatusCode::OK, json).into_response();
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static(CONTENT_TYPE),
            );
            response
        }
        Err(error) => client_facing(error, &request_id).into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-RequestId", value);
    }
    response
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

/// Reads a request body of at most `MAX_BODY_BYTES`. A larger one is read on (and dropped) up
/// to `DRAIN_LIMIT` so the client, still sending, receives the 400 rather than a reset.
async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    use http_body_util::BodyExt;
    const DRAIN_LIMIT: usize = 64 * MAX_BODY_BYTES;
    let unreadable = || ApiError::client("The request body could not be read.");
    let mut body = body;
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| unreadable())?;
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen <= MAX_BODY_BYTES {
                bytes.extend_from_slice(data);
            } else if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::client(format!(
            "The request body is {seen} bytes or more: the limit is {MAX_BODY_BYTES} bytes."
        )));
    }
    Ok(bytes)
}

async fn handle(app: Arc<App>, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let op = operation_of(header("x-amz-target"))?.to_string();
    let body = read_body(body).await?;
    let caller = Caller {
        access_key_id: access_key_of(header("authorization")),
    };
    let ctx = Ctx { app, caller };
    let task = tokio::spawn(async move { dispatch(ctx, &op, &body).await });
    match task.await {
        Ok(result) => result,
        Err(e) => {
            tracing::error!(error = %e, "handler panicked");
            Err(ApiError::server(
                "The server hit an internal error handling this request.",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_fault_reaches_the_client_as_its_request_id_only() {
        let fault = ApiError::server("disk I/O error in /var/lib/berth/berth.db");
        let told = client_facing(fault, "req-42");
        assert_eq!(told.name, "ServerException");
        assert!(told.message.contains("req-42"), "{}", told.message);
        assert!(!told.message.contains("berth.db"), "{}", told.message);
        let mistake = ApiError::invalid_parameter("maxResults must be between 1 and 100, got 0.");
        let told = client_facing(mistake, "req-43");
        assert_eq!(told.name, "InvalidParameterException");
        assert_eq!(told.message, "maxResults must be between 1 and 100, got 0.");
    }
}

//! The server's end of a WebSocket: the upgrade of an HTTP/1.1 request (RFC 6455 section
//! 4.2) and reading and writing messages on the upgraded connection
//! (`berth_core::websocket` frames them).

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use berth_core::websocket::accept_key;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

/// The longest message accepted.
pub const MAX_MESSAGE: usize = 1 << 20;

/// The 101 answer to a WebSocket upgrade request and the connection to come; or why the
/// request is not one.
pub fn upgrade(request: &mut Request) -> Result<(Response, OnUpgrade), ApiError> {
    let headers = request.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (true, true, Some(key)) = (
        has(header::CONNECTION, "upgrade"),
        has(header::UPGRADE, "websocket"),
        key,
    ) else {
        return Err(ApiError::client(
            "This path takes a WebSocket: GET with Connection: Upgrade, Upgrade: websocket and a Sec-WebSocket-Key.",
        ));
    };
    let accept = accept_key(&key, |input| {
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, input)
            .as_ref()
            .to_vec()
    });
    let on_upgrade = hyper::upgrade::on(request);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    Ok((response, on_upgrade))
}

/// An upgraded connection, server side.
pub type WsConn = berth_core::websocket::WebSocket<TokioIo<Upgraded>>;

/// The server end of `upgraded`.
pub fn server(upgraded: Upgraded) -> WsConn {
    WsConn::server(TokioIo::new(upgraded), MAX_MESSAGE)
}

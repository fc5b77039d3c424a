//! The server's end of a WebSocket: the upgrade of an HTTP/1.1 request (RFC 6455 section
//! 4.2) and reading and writing messages on the upgraded connection
//! (`berth_core::websocket` frames them).

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use berth_core::websocket::{accept_key, encode, Decoder, Message, Role};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
pub struct WsConn {
    io: TokioIo<Upgraded>,
    decoder: Decoder,
}

impl WsConn {
    pub fn new(upgraded: Upgraded) -> WsConn {
        WsConn {
            io: TokioIo::new(upgraded),
            decoder: Decoder::new(Role::Server, MAX_MESSAGE),
        }
    }

    /// The next message (pings included: the caller answers them, so that this never
    /// writes). `Ok(None)` when the peer closed the connection. Cancel-safe: nothing read is
    /// lost if the future is dropped.
    pub async fn recv(&mut self) -> Result<Option<Message>, String> {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match self.decoder.next_message() {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => {
                    let n = self.io.read(&mut buffer).await.map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Ok(None);
                    }
                    self.decoder.feed(&buffer[..n]);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    pub async fn send(&mut self, message: &Message) -> std::io::Result<()> {
        self.io.write_all(&encode(message, None)).await?;
        self.io.flush().await
    }

    /// Sends a close (with `code`) and ends the connection.
    pub async fn close(mut self, code: u16) {
        let _ = self.send(&Message::Close(Some(code))).await;
        let _ = self.io.shutdown().await;
    }
}

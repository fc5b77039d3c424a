//! One HTTP request through an HTTP listener: route it, answer fixed responses and redirects
//! directly, or proxy it to a target with `X-Forwarded-*` headers, bodies streamed both ways,
//! one retry of an idempotent request whose target could not be reached, 502 and 504 as ALB
//! answers them.

use super::listener::Listening;
use super::routes::{redirect_location, Action, Forward, RequestParts};
use super::targets::{InFlight, Pick};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// Errors of bodies the proxy streams.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What listeners answer with.
pub(super) type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;
/// The pooled keep-alive client to targets.
pub(super) type TargetClient = Client<HttpConnector, RequestBody>;

/// Answers one request that arrived on `listening` from `peer`.
pub(super) async fn handle(
    listening: Arc<Listening>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let routes = listening.routes();
    let authority = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let host = strip_port(authority);
    let answer = match routes.route(host, request.uri().path()) {
        None => plain(StatusCode::SERVICE_UNAVAILABLE),
        Some(Action::Fixed {
            status,
            content_type,
            body,
        }) => {
            let mut response = Response::new(full(body.clone()));
            *response.status_mut() = *status;
            if let Some(value) = content_type
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
            {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            response
        }
        Some(Action::Redirect(redirect)) => {
            let location = redirect_location(
                redirect,
                &RequestParts {
                    protocol: "http",
                    host,
                    port: listening.port,
                    path: request.uri().path(),
                    query: request.uri().query(),
                },
            );
            let mut response = Response::new(full(Bytes::new()));
            *response.status_mut() =
                StatusCode::from_u16(redirect.status).unwrap_or(StatusCode::FOUND);
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        Some(Action::Forward(forward)) => {
            forward_request(&listening, forward, routes.idle_timeout, peer, request).await
        }
    };
    Ok(answer)
}

/// Proxies `request` to a target of `forward`.
async fn forward_request(
    listening: &Listening,
    forward: &Forward,
    timeout: std::time::Duration,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(group) = forward.choose() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE);
    };
    group.count_request();
    let Some(first) = group.pick(Pick::Request { avoid: None }) else {
        return plain(StatusCode::SERVICE_UNAVAILABLE);
    };
    let (mut parts, body) = request.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // HTTP/2 carries the host in the `:authority` pseudo-header: the target, spoken to in
    // HTTP/1.1, gets it as `Host`.
    if !parts.headers.contains_key(header::HOST) {
        if let Some(value) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(header::HOST, value);
        }
    }
    add_forwarded_headers(&mut parts.headers, peer, listening.port);
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    );
    let empty_body = body.is_end_stream();
    let body = Arc::new(Mutex::new(Some(body)));
    let head = Head {
        method: parts.method,
        version: parts.version,
        path: parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned()),
        headers: parts.headers,
    };
    match send(&listening.client, &head, &body, first, timeout).await {
        Ok(response) => response,
        Err(Failed::Timeout) => plain(StatusCode::GATEWAY_TIMEOUT),
        Err(Failed::Unreachable(failed)) => {
            // A retry must send the same body: it still can if nobody read it yet, or if
            // there was none.
            let body_intact = empty_body
                || body
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some();
            if !idempotent || !body_intact {
                return plain(StatusCode::BAD_GATEWAY);
            }
            let Some(second) = group.pick(Pick::Request {
                avoid: Some(failed.target()),
            }) else {
                return plain(StatusCode::BAD_GATEWAY);
            };
            drop(failed);
            match send(&listening.client, &head, &body, second, timeout).await {
                Ok(response) => response,
                Err(Failed::Timeout) => plain(StatusCode::GATEWAY_TIMEOUT),
                Err(Failed::Unreachable(_)) => plain(StatusCode::BAD_GATEWAY),
            }
        }
    }
}

/// What is sent to a target besides the body; kept for a retry.
struct Head {
    method: Method,
    version: Version,
    path: String,
    headers: HeaderMap,
}

enum Failed {
    /// No response head in time.
    Timeout,
    /// The request failed before any response (refused, reset, closed).
    Unreachable(InFlight),
}

/// Sends the request to `target`; its response streams back counted against the target.
async fn send(
    client: &TargetClient,
    head: &Head,
    body: &Arc<Mutex<Option<Incoming>>>,
    target: InFlight,
    timeout: std::time::Duration,
) -> Result<Response<ProxyBody>, Failed> {
    let Ok(uri) = Uri::try_from(format!("http://{}{}", target.target().addr, head.path)) else {
        return Err(Failed::Unreachable(target));
    };
    let mut request = Request::new(RequestBody {
        shared: Arc::clone(body),
        taken: None,
    });
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = uri;
    // The connection to the target is HTTP/1.1 whatever the client spoke.
    *request.version_mut() = match head.version {
        Version::HTTP_10 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    *request.headers_mut() = head.headers.clone();
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => Err(Failed::Timeout),
        Ok(Err(e)) => {
            tracing::debug!(target_addr = %target.target().addr, error = %e, "target unreachable");
            Err(Failed::Unreachable(target))
        }
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            let body = Counted {
                inner: body,
                _in_flight: target,
            };
            Ok(Response::from_parts(parts, UnsyncBoxBody::new(body)))
        }
    }
}

/// The client's request body on its way to a target. It stays in the shared slot until the
/// target connection first reads it, so a request whose connection failed before that can
/// be sent again with its body.
pub(super) struct RequestBody {
    shared: Arc<Mutex<Option<Incoming>>>,
    taken: Option<Incoming>,
}

impl RequestBody {
    fn with_slot<T>(&self, f: impl FnOnce(Option<&Incoming>) -> T) -> T {
        match &self.taken {
            Some(body) => f(Some(body)),
            None => f(self
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if this.taken.is_none() {
            this.taken = this
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        }
        match &mut this.taken {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.with_slot(|body| body.is_none_or(Body::is_end_stream))
    }

    fn size_hint(&self) -> SizeHint {
        self.with_slot(|body| body.map_or_else(|| SizeHint::with_exact(0), Body::size_hint))
    }
}

/// A target's response body, counted as in flight until it has been sent (or dropped).
struct Counted {
    inner: Incoming,
    _in_flight: InFlight,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().inner)
            .poll_frame(cx)
            .map_err(BoxError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1): not forwarded.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// ALB's `X-Forwarded-For` (the client appended), `X-Forwarded-Proto`, `X-Forwarded-Port`.
fn add_forwarded_headers(headers: &mut HeaderMap, peer: SocketAddr, port: u16) {
    let client = peer.ip().to_string();
    let earlier: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let forwarded_for = if earlier.is_empty() {
        client
    } else {
        format!("{}, {client}", earlier.join(", "))
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", value);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    headers.insert("x-forwarded-port", HeaderValue::from(port));
}

/// The host of a Host header or authority, without its port (IPv6 brackets kept).
fn strip_port(authority: &str) -> &str {
    match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => &authority[..colon],
        _ => authority,
    }
}

fn full(body: Bytes) -> ProxyBody {
    UnsyncBoxBody::new(Full::new(body).map_err(|never| match never {}))
}

/// The load balancer's own short answer with `status`.
fn plain(status: StatusCode) -> Response<ProxyBody> {
    let text = format!(
        "{} {}\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    let mut response = Response::new(full(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_ports_but_not_their_ipv6_brackets() {
        assert_eq!(strip_port("a.test:8080"), "a.test");
        assert_eq!(strip_port("a.test"), "a.test");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn connection_listed_headers_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert!(headers.get("x-secret").is_none() && headers.get(header::CONNECTION).is_none());
        assert!(headers.get("x-kept").is_some());
    }
}

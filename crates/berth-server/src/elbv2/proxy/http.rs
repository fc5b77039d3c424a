//! One HTTP request through an HTTP listener: route it, answer fixed responses and redirects
//! directly, or proxy it to a target with `X-Forwarded-*` headers, bodies streamed both ways,
//! one retry of an idempotent request whose target could not be reached, 502 and 504 as ALB
//! answers them.

use super::config::Stickiness;
use super::listener::Listening;
use super::routes::{redirect_location, Action, Forward, RequestParts};
use super::targets::{InFlight, Pick, TargetGroup};
use super::upgrade;
use super::upstream::{SendError, Sender};
pub(super) use crate::http::cookies::cookie;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

/// ALB's stickiness cookie (`lb_cookie`).
const STICKY_COOKIE: &str = "AWSALB";
/// ALB's stickiness cookie for `app_cookie`.
const APP_STICKY_COOKIE: &str = "AWSALBAPP-0";
/// ALB's target group stickiness cookie (a forward to several groups).
pub(super) const GROUP_COOKIE: &str = "AWSALBTG";

/// Errors of bodies the proxy streams.
pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// What listeners answer with.
pub(super) type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

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

/// Passes `request` to a group of `forward` (the one the `AWSALBTG` cookie names, with target
/// group stickiness): proxied, or tunnelled when it switches protocols.
async fn forward_request(
    listening: &Listening,
    forward: &Forward,
    timeout: std::time::Duration,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(group) = forward.choose_for(request.headers()) else {
        return plain(StatusCode::SERVICE_UNAVAILABLE);
    };
    let mut answer = if upgrade::is_upgrade(&request) {
        upgrade::tunnel(listening, group, timeout, peer, request).await
    } else {
        forward_to(listening, group, timeout, peer, request).await
    };
    if let Some(duration) = forward.sticky {
        set_cookie(answer.headers_mut(), GROUP_COOKIE, &group.cookie, duration);
    }
    answer
}

/// Proxies `request` to a target of `group`.
async fn forward_to(
    listening: &Listening,
    group: &TargetGroup,
    timeout: std::time::Duration,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    group.count_request();
    let sticky = group.stickiness();
    let Some(first) = choose(group, &sticky, request.headers()) else {
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
    // The connection to the target is HTTP/1.1 whatever the client spoke, and the target
    // is asked for the path, not an absolute URI.
    parts.version = match parts.version {
        Version::HTTP_10 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    parts.uri = origin_form(&parts.uri);
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    );
    // A bodiless idempotent request is kept, to be sent again if its connection fails after
    // it went out; any other request can be sent again only if it never went out.
    let resend = (idempotent && body.is_end_stream()).then(|| copy_head(&parts));
    let request = Request::from_parts(parts, Outbound::Client(body));
    match send(request, first, timeout, &sticky).await {
        Ok(response) => response,
        Err(Failed::Timeout) => plain(StatusCode::GATEWAY_TIMEOUT),
        Err(Failed::Unreachable { target, unsent }) => {
            let again = match (unsent, resend) {
                _ if !idempotent => None,
                (Some(unsent), _) => Some(*unsent),
                (None, Some(head)) => Some(Request::from_parts(head, Outbound::Empty)),
                (None, None) => None,
            };
            let Some(again) = again else {
                return plain(StatusCode::BAD_GATEWAY);
            };
            let Some(second) = group.pick(Pick::Request {
                avoid: Some(target.target()),
            }) else {
                return plain(StatusCode::BAD_GATEWAY);
            };
            drop(target);
            match send(again, second, timeout, &sticky).await {
                Ok(response) => response,
                Err(Failed::Timeout) => plain(StatusCode::GATEWAY_TIMEOUT),
                Err(Failed::Unreachable { .. }) => plain(StatusCode::BAD_GATEWAY),
            }
        }
    }
}

/// The target for a request with `headers` to `group`: the one its stickiness cookie names
/// (`AWSALB` or `AWSALBAPP-0`, as `sticky` has it) when that target may take it, else the
/// group's pick.
pub(super) fn choose(
    group: &TargetGroup,
    sticky: &Stickiness,
    headers: &HeaderMap,
) -> Option<InFlight> {
    let name = match sticky {
        Stickiness::LbCookie(_) => Some(STICKY_COOKIE),
        Stickiness::AppCookie { .. } => Some(APP_STICKY_COOKIE),
        Stickiness::Off | Stickiness::SourceIp => None,
    };
    name.and_then(|name| cookie(headers, name))
        .and_then(|value| group.pick(Pick::Cookie { value }))
        .or_else(|| group.pick(Pick::Request { avoid: None }))
}

/// Adds to a response's `headers` the stickiness cookie naming `target`: `AWSALB` always
/// with `lb_cookie`; `AWSALBAPP-0` with `app_cookie` when the response sets the
/// application's cookie.
pub(super) fn stick(headers: &mut HeaderMap, sticky: &Stickiness, target: &InFlight) {
    let value = &target.target().cookie;
    match sticky {
        Stickiness::LbCookie(duration) => set_cookie(headers, STICKY_COOKIE, value, *duration),
        Stickiness::AppCookie { name, duration } => {
            let sets_it = headers
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split_once('='))
                .any(|(cookie, _)| cookie.trim() == &**name);
            if sets_it {
                set_cookie(headers, APP_STICKY_COOKIE, value, *duration);
            }
        }
        Stickiness::Off | Stickiness::SourceIp => {}
    }
}

/// Adds `Set-Cookie: name=value` lasting `duration` to `headers`.
pub(super) fn set_cookie(headers: &mut HeaderMap, name: &str, value: &str, duration: Duration) {
    let expires = httpdate::fmt_http_date(SystemTime::now() + duration);
    if let Ok(value) = HeaderValue::from_str(&format!("{name}={value}; Expires={expires}; Path=/"))
    {
        headers.append(header::SET_COOKIE, value);
    }
}

/// `uri` as a target is asked for it: path and query only.
pub(super) fn origin_form(uri: &Uri) -> Uri {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return uri.clone();
    }
    let mut parts = hyper::http::uri::Parts::default();
    parts.path_and_query = Some(
        uri.path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"))
}

/// A copy of a request's head, to send it again.
fn copy_head(parts: &hyper::http::request::Parts) -> hyper::http::request::Parts {
    let (mut copy, ()) = Request::new(()).into_parts();
    copy.method = parts.method.clone();
    copy.uri = parts.uri.clone();
    copy.version = parts.version;
    copy.headers = parts.headers.clone();
    copy
}

enum Failed {
    /// No response head in time.
    Timeout,
    /// The request failed before any response (refused, reset, closed); `unsent` is the
    /// request when it never went out.
    Unreachable {
        target: InFlight,
        unsent: Option<Box<Request<Outbound>>>,
    },
}

/// Sends the request to `target`; its response streams back counted against the target,
/// and the connection goes back to the target's pool when the response has ended.
async fn send(
    mut request: Request<Outbound>,
    target: InFlight,
    timeout: std::time::Duration,
    sticky: &Stickiness,
) -> Result<Response<ProxyBody>, Failed> {
    let to = target.target();
    if !request.headers().contains_key(header::HOST) {
        if let Ok(value) = HeaderValue::from_str(&to.addr.to_string()) {
            request.headers_mut().insert(header::HOST, value);
        }
    }
    match tokio::time::timeout(timeout, to.connections.send(to.addr, request)).await {
        Err(_) => Err(Failed::Timeout),
        Ok(Err(e)) => {
            let (unsent, why) = match e {
                SendError::Unsent(request, why) => (Some(request), why),
                SendError::Lost(why) => (None, why),
            };
            tracing::debug!(target_addr = %to.addr, error = %why, "target unreachable");
            Err(Failed::Unreachable { target, unsent })
        }
        Ok(Ok((response, sender))) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            stick(&mut parts.headers, sticky, &target);
            let body = Counted {
                inner: body,
                sender: Some(sender),
                in_flight: target,
            };
            Ok(Response::from_parts(parts, UnsyncBoxBody::new(body)))
        }
    }
}

/// A request body on its way to a target: the client's, or none (a request sent again).
#[derive(Debug)]
pub(super) enum Outbound {
    Client(Incoming),
    Empty,
}

impl Body for Outbound {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Outbound::Client(body) => Pin::new(body).poll_frame(cx),
            Outbound::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Outbound::Client(body) => body.is_end_stream(),
            Outbound::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Outbound::Client(body) => body.size_hint(),
            Outbound::Empty => SizeHint::with_exact(0),
        }
    }
}

/// A target's response body, counted as in flight until it has been sent (or dropped);
/// its connection goes back to the pool once the body has ended.
pub(super) struct Counted {
    inner: Incoming,
    sender: Option<Sender>,
    in_flight: InFlight,
}

impl Counted {
    /// The response body `inner` from the target `in_flight` counts against, on a connection
    /// that is not pooled.
    pub(super) fn unpooled(inner: Incoming, in_flight: InFlight) -> ProxyBody {
        UnsyncBoxBody::new(Counted {
            inner,
            sender: None,
            in_flight,
        })
    }

    fn give_back(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.in_flight.target().connections.put_back(sender);
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.give_back();
        }
        polled.map_err(BoxError::from)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // A body dropped before its end leaves its connection mid-response: not reused.
        if self.inner.is_end_stream() {
            self.give_back();
        }
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1): not forwarded.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
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
pub(super) fn add_forwarded_headers(headers: &mut HeaderMap, peer: SocketAddr, port: u16) {
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

pub(super) fn full(body: Bytes) -> ProxyBody {
    UnsyncBoxBody::new(Full::new(body).map_err(|never| match never {}))
}

/// The load balancer's own short answer with `status`.
pub(super) fn plain(status: StatusCode) -> Response<ProxyBody> {
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

//! Requests that switch protocols (WebSocket) through an HTTP listener, as ALB passes them:
//! an HTTP/1.1 request with `Connection: upgrade` and `Upgrade` goes to a target chosen as
//! for any request, on a connection of its own; if the target answers 101 Switching
//! Protocols, the client's and the target's connections are spliced until either side
//! closes, the tunnel counting as one request in flight on the target (so a draining
//! target's deregistration delay waits for it). Any other answer goes back as a response.
//! A target that cannot be reached is a 502, as for other requests; nothing is retried.

use super::http::{
    add_forwarded_headers, choose, origin_form, plain, stick, strip_hop_by_hop, Counted, Outbound,
    ProxyBody,
};
use super::listener::Listening;
use super::targets::TargetGroup;
use super::upstream::{send_upgrade, SendError};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;

/// Whether `request` asks to switch protocols: HTTP/1.1 with an `Upgrade` header and
/// `upgrade` among its `Connection` options.
pub(super) fn is_upgrade(request: &Request<Incoming>) -> bool {
    request.version() == Version::HTTP_11
        && request.headers().contains_key(header::UPGRADE)
        && request
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|option| option.trim().eq_ignore_ascii_case("upgrade"))
}

/// Passes the upgrade `request` to a target of `group` and, on a 101, splices the two
/// connections.
pub(super) async fn tunnel(
    listening: &Listening,
    group: &TargetGroup,
    timeout: Duration,
    peer: SocketAddr,
    mut request: Request<Incoming>,
) -> Response<ProxyBody> {
    group.count_request();
    let sticky = group.stickiness();
    let Some(target) = choose(group, &sticky, request.headers()) else {
        return plain(StatusCode::SERVICE_UNAVAILABLE);
    };
    let client_side = hyper::upgrade::on(&mut request);
    let (mut parts, body) = request.into_parts();
    let protocol = parts.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    add_forwarded_headers(&mut parts.headers, peer, listening.port);
    keep_upgrade(&mut parts.headers, protocol);
    parts.uri = origin_form(&parts.uri);
    let request = Request::from_parts(parts, Outbound::Client(body));
    let addr = target.target().addr;
    let mut response = match tokio::time::timeout(timeout, send_upgrade(addr, request)).await {
        Err(_) => return plain(StatusCode::GATEWAY_TIMEOUT),
        Ok(Err(e)) => {
            let why = match e {
                SendError::Unsent(_, why) | SendError::Lost(why) => why,
            };
            tracing::debug!(target_addr = %addr, error = %why, "target unreachable for an upgrade");
            return plain(StatusCode::BAD_GATEWAY);
        }
        Ok(Ok(response)) => response,
    };
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        stick(&mut parts.headers, &sticky, &target);
        return Response::from_parts(parts, Counted::unpooled(body, target));
    }
    let target_side = hyper::upgrade::on(&mut response);
    let mut cookie = hyper::HeaderMap::new();
    stick(&mut cookie, &sticky, &target);
    tokio::spawn(async move {
        let _in_flight = target;
        let (client, upstream) = match tokio::join!(client_side, target_side) {
            (Ok(client), Ok(upstream)) => (client, upstream),
            (client, upstream) => {
                tracing::debug!(
                    target_addr = %addr,
                    client = ?client.err(),
                    target = ?upstream.err(),
                    "an upgraded connection was not handed over"
                );
                return;
            }
        };
        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            tracing::debug!(target_addr = %addr, error = %e, "an upgraded connection ended with an error");
        }
    });
    let (mut parts, _) = response.into_parts();
    let protocol = parts.headers.get(header::UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    keep_upgrade(&mut parts.headers, protocol);
    parts.headers.extend(cookie);
    Response::from_parts(
        parts,
        Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    )
}

/// Puts back the two headers of a protocol switch that hop-by-hop stripping removed.
fn keep_upgrade(headers: &mut hyper::HeaderMap, protocol: Option<HeaderValue>) {
    if let Some(protocol) = protocol {
        headers.insert(header::UPGRADE, protocol);
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

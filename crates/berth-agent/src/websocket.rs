//! The client's end of a WebSocket on a connection the agent's HTTP client upgraded: the
//! agent's exec relays, and `berth exec`'s data channel.

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;

/// The longest message accepted.
pub const MAX_MESSAGE: usize = 1 << 20;

/// An upgraded connection, client side: every frame it sends is masked with a fresh key.
pub type WsClient = berth_core::websocket::WebSocket<TokioIo<Upgraded>>;

/// The client end of `upgraded`.
pub fn client(upgraded: Upgraded) -> WsClient {
    WsClient::client(TokioIo::new(upgraded), MAX_MESSAGE, random_mask)
}

fn random_mask() -> [u8; 4] {
    let mut mask = [0u8; 4];
    // The OS random source does not fail on Linux once booted; a zero mask would still frame
    // correctly.
    let _ = getrandom::fill(&mut mask);
    mask
}

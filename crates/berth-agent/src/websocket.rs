//! The client's end of a WebSocket (`berth_core::websocket` frames it) on a connection the
//! agent's HTTP client upgraded: the agent's exec relays, and `berth exec`'s data channel.

use berth_core::websocket::{encode, Decoder, Message, Role};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The longest message accepted.
pub const MAX_MESSAGE: usize = 1 << 20;

/// An upgraded connection, client side: every frame it sends is masked with a fresh key.
pub struct WsClient {
    io: TokioIo<Upgraded>,
    decoder: Decoder,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient").finish()
    }
}

impl WsClient {
    pub fn new(upgraded: Upgraded) -> WsClient {
        WsClient {
            io: TokioIo::new(upgraded),
            decoder: Decoder::new(Role::Client, MAX_MESSAGE),
        }
    }

    /// The next message (the caller answers pings). `Ok(None)` when the server closed the
    /// connection. Cancel-safe: nothing read is lost if the future is dropped.
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
        let mut mask = [0u8; 4];
        getrandom::fill(&mut mask).map_err(|e| std::io::Error::other(e.to_string()))?;
        self.io.write_all(&encode(message, Some(mask))).await?;
        self.io.flush().await
    }

    /// Sends a close and ends the connection.
    pub async fn close(mut self) {
        let _ = self.send(&Message::Close(Some(1000))).await;
        let _ = self.io.shutdown().await;
    }
}

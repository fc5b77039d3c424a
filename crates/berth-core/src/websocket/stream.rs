//! A WebSocket on an upgraded connection (feature `io`): reads messages and writes frames
//! on any tokio stream, for either end.

use super::{encode, Decoder, Message, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One end of a WebSocket on `io`.
pub struct WebSocket<IO> {
    io: IO,
    decoder: Decoder,
    /// A fresh masking key per frame: set for the client end, which must mask.
    masks: Option<fn() -> [u8; 4]>,
}

impl<IO> std::fmt::Debug for WebSocket<IO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("client", &self.masks.is_some())
            .finish()
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> WebSocket<IO> {
    /// The server's end: reads masked frames, writes plain ones.
    pub fn server(io: IO, max_message: usize) -> Self {
        WebSocket {
            io,
            decoder: Decoder::new(Role::Server, max_message),
            masks: None,
        }
    }

    /// The client's end: masks each frame with a key from `masks` (random ones).
    pub fn client(io: IO, max_message: usize, masks: fn() -> [u8; 4]) -> Self {
        WebSocket {
            io,
            decoder: Decoder::new(Role::Client, max_message),
            masks: Some(masks),
        }
    }

    /// The next message, pings included (the caller answers them, so that reading never
    /// writes). `Ok(None)` when the peer closed the connection. Cancel-safe: nothing read is
    /// lost if the future is dropped.
    pub async fn recv(&mut self) -> Result<Option<Message>, String> {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            if let Some(message) = self.decoder.next_message().map_err(|e| e.to_string())? {
                return Ok(Some(message));
            }
            let n = self.io.read(&mut buffer).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(None);
            }
            self.decoder.feed(&buffer[..n]);
        }
    }

    pub async fn send(&mut self, message: &Message) -> std::io::Result<()> {
        let mask = self.masks.map(|next| next());
        self.io.write_all(&encode(message, mask)).await?;
        self.io.flush().await
    }

    /// Sends a close with `code` and ends the connection.
    pub async fn close(mut self, code: u16) {
        let _ = self.send(&Message::Close(Some(code))).await;
        let _ = self.io.shutdown().await;
    }
}

//! WebSocket (RFC 6455) framing, without I/O: what exec sessions travel on (the data channel
//! of `aws ecs execute-command`, `berth exec` and the agents' relays). The callers do the
//! HTTP upgrade and move the bytes; this module turns bytes into messages and back.
//!
//! Frames from a client are masked and frames from a server are not (section 5.1); a
//! fragmented message is put back together; a message longer than the decoder's limit is an
//! error rather than unbounded memory.

use base64::Engine as _;

#[cfg(feature = "io")]
mod stream;
#[cfg(feature = "io")]
pub use stream::WebSocket;

/// The GUID a server appends to the client's key (section 1.3).
pub const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`, given SHA-1.
pub fn accept_key(key: &str, sha1: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let digest = sha1(format!("{}{ACCEPT_GUID}", key.trim()).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// A `Sec-WebSocket-Key` from 16 random bytes.
pub fn client_key(random: [u8; 16]) -> String {
    base64::engine::general_purpose::STANDARD.encode(random)
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// A close, with its status code if it had one.
    Close(Option<u16>),
}

/// Which end of the connection this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads masked frames, writes unmasked ones.
    Server,
    /// Reads unmasked frames, writes masked ones.
    Client,
}

/// Why the bytes read are not a WebSocket stream this end accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame from the client is not masked")]
    Unmasked,
    #[error("a frame from the server is masked")]
    Masked,
    #[error("unknown opcode {0}")]
    Opcode(u8),
    #[error("reserved bits set")]
    Reserved,
    #[error("a message of more than {0} bytes")]
    TooLong(usize),
    #[error("a control frame is fragmented or longer than 125 bytes")]
    BadControl,
    #[error("a continuation frame with no message to continue, or a new message inside one")]
    Fragments,
    #[error("a text message is not UTF-8")]
    NotText,
}

const CONTINUATION: u8 = 0;
const TEXT: u8 = 1;
const BINARY: u8 = 2;
const CLOSE: u8 = 8;
const PING: u8 = 9;
const PONG: u8 = 10;

/// Turns the bytes read from one end into messages.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    max_message: usize,
    buffer: Vec<u8>,
    /// A fragmented message under way: its opcode and what came so far.
    partial: Option<(u8, Vec<u8>)>,
}

impl Decoder {
    /// A decoder for `role` accepting messages of at most `max_message` bytes.
    pub fn new(role: Role, max_message: usize) -> Decoder {
        Decoder {
            role,
            max_message,
            buffer: Vec::new(),
            partial: None,
        }
    }

    /// Adds bytes read.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole message, `None` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        loop {
            let Some(Frame {
                fin,
                opcode,
                payload,
                used,
            }) = self.frame()?
            else {
                return Ok(None);
            };
            self.buffer.drain(..used);
            if opcode >= CLOSE {
                if !fin || payload.len() > 125 {
                    return Err(FrameError::BadControl);
                }
                return Ok(Some(match opcode {
                    CLOSE => Message::Close(
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
                    ),
                    PING => Message::Ping(payload),
                    _ => Message::Pong(payload),
                }));
            }
            let (kind, body) = match (opcode, self.partial.take()) {
                (CONTINUATION, Some((kind, mut body))) => {
                    body.extend_from_slice(&payload);
                    (kind, body)
                }
                (CONTINUATION, None) | (_, Some(_)) => return Err(FrameError::Fragments),
                (kind, None) => (kind, payload),
            };
            if body.len() > self.max_message {
                return Err(FrameError::TooLong(self.max_message));
            }
            if !fin {
                self.partial = Some((kind, body));
                continue;
            }
            return Ok(Some(match kind {
                TEXT => Message::Text(String::from_utf8(body).map_err(|_| FrameError::NotText)?),
                _ => Message::Binary(body),
            }));
        }
    }

    /// The frame at the start of the buffer, if it is all there.
    fn frame(&self) -> Result<Option<Frame>, FrameError> {
        let b = &self.buffer;
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        if b[0] & 0x70 != 0 {
            return Err(FrameError::Reserved);
        }
        let opcode = b[0] & 0x0f;
        if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
            return Err(FrameError::Opcode(opcode));
        }
        let masked = b[1] & 0x80 != 0;
        match (self.role, masked) {
            (Role::Server, false) => return Err(FrameError::Unmasked),
            (Role::Client, true) => return Err(FrameError::Masked),
            _ => {}
        }
        let (length, mut at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            126 | 127 => return Ok(None),
            n => (u64::from(n), 2),
        };
        let limit = self.max_message.max(125);
        let length = usize::try_from(length)
            .ok()
            .filter(|n| *n <= limit)
            .ok_or(FrameError::TooLong(self.max_message))?;
        let mask = if masked {
            if b.len() < at + 4 {
                return Ok(None);
            }
            let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            at += 4;
            Some(mask)
        } else {
            None
        };
        if b.len() < at + length {
            return Ok(None);
        }
        let mut payload = b[at..at + length].to_vec();
        if let Some(mask) = mask {
            apply_mask(&mut payload, mask);
        }
        Ok(Some(Frame {
            fin,
            opcode,
            payload,
            used: at + length,
        }))
    }
}

/// One frame read: whether it ends its message, its opcode, its unmasked payload, and how
/// many bytes of the buffer it took.
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
    used: usize,
}

fn apply_mask(bytes: &mut [u8], mask: [u8; 4]) {
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
}

/// `message` as one frame; masked with `mask` (a client must give a fresh random one).
pub fn encode(message: &Message, mask: Option<[u8; 4]>) -> Vec<u8> {
    let (opcode, mut payload) = match message {
        Message::Text(text) => (TEXT, text.as_bytes().to_vec()),
        Message::Binary(bytes) => (BINARY, bytes.clone()),
        Message::Ping(bytes) => (PING, bytes.clone()),
        Message::Pong(bytes) => (PONG, bytes.clone()),
        Message::Close(code) => (
            CLOSE,
            code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default(),
        ),
    };
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if let Some(mask) = mask {
        out.extend_from_slice(&mask);
        apply_mask(&mut payload, mask);
    }
    out.extend_from_slice(&payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        // RFC 6455 section 1.3: key "dGhlIHNhbXBsZSBub25jZQ==" → "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
        // The SHA-1 below is the digest of that key + GUID, as any SHA-1 gives it.
        let expected = "b37a4f2cc0624f1690f64606cf385945b2bec4ea";
        let sha1 = |input: &[u8]| {
            assert_eq!(
                input,
                b"dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            );
            (0..20)
                .map(|i| u8::from_str_radix(&expected[2 * i..2 * i + 2], 16).expect("hex"))
                .collect()
        };
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ==", sha1),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn the_rfc_examples_decode() {
        // Section 5.7: an unmasked "Hello" from a server; a masked one from a client.
        let mut client = Decoder::new(Role::Client, 1024);
        client.feed(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(
            client.next_message(),
            Ok(Some(Message::Text("Hello".into())))
        );
        let mut server = Decoder::new(Role::Server, 1024);
        server.feed(&[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        assert_eq!(
            server.next_message(),
            Ok(Some(Message::Text("Hello".into())))
        );
        // A fragmented "Hello", then a ping between nothing.
        client.feed(&[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
        client.feed(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(
            client.next_message(),
            Ok(Some(Message::Text("Hello".into())))
        );
        assert_eq!(
            client.next_message(),
            Ok(Some(Message::Ping(b"Hello".to_vec())))
        );
        assert_eq!(client.next_message(), Ok(None));
    }

    #[test]
    fn messages_round_trip_in_pieces_and_at_every_length_form() {
        for size in [0usize, 125, 126, 65535, 65536, 70000] {
            let message = Message::Binary((0..size).map(|i| i as u8).collect());
            let bytes = encode(&message, Some([1, 2, 3, 4]));
            let mut server = Decoder::new(Role::Server, 1 << 20);
            for chunk in bytes.chunks(1000) {
                assert_eq!(server.next_message(), Ok(None));
                server.feed(chunk);
            }
            assert_eq!(server.next_message(), Ok(Some(message.clone())));
            let mut client = Decoder::new(Role::Client, 1 << 20);
            client.feed(&encode(&message, None));
            assert_eq!(client.next_message(), Ok(Some(message)));
        }
        let mut client = Decoder::new(Role::Client, 16);
        client.feed(&encode(&Message::Close(Some(1000)), None));
        assert_eq!(client.next_message(), Ok(Some(Message::Close(Some(1000)))));
    }

    #[test]
    fn what_an_end_must_not_accept_is_refused() {
        let mut server = Decoder::new(Role::Server, 1024);
        server.feed(&encode(&Message::Text("x".into()), None));
        assert_eq!(server.next_message(), Err(FrameError::Unmasked));
        let mut client = Decoder::new(Role::Client, 1024);
        client.feed(&encode(&Message::Text("x".into()), Some([9, 9, 9, 9])));
        assert_eq!(client.next_message(), Err(FrameError::Masked));
        let mut small = Decoder::new(Role::Client, 10);
        small.feed(&encode(&Message::Binary(vec![0; 200]), None));
        assert_eq!(small.next_message(), Err(FrameError::TooLong(10)));
        let mut orphan = Decoder::new(Role::Client, 1024);
        orphan.feed(&[0x80, 0x01, 0x41]);
        assert_eq!(orphan.next_message(), Err(FrameError::Fragments));
        let mut reserved = Decoder::new(Role::Client, 1024);
        reserved.feed(&[0xc1, 0x00]);
        assert_eq!(reserved.next_message(), Err(FrameError::Reserved));
        let mut not_text = Decoder::new(Role::Client, 1024);
        not_text.feed(&[0x81, 0x01, 0xff]);
        assert_eq!(not_text.next_message(), Err(FrameError::NotText));
    }
}

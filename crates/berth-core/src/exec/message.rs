//! The binary messages of a Session Manager data channel, as the open-source
//! session-manager-plugin reads and writes them (big-endian throughout):
//!
//! | offset | size | field                                              |
//! |-------:|-----:|----------------------------------------------------|
//! |      0 |    4 | header length (116)                                |
//! |      4 |   32 | message type, ASCII padded with spaces             |
//! |     36 |    4 | schema version                                     |
//! |     40 |    8 | created date, epoch milliseconds                   |
//! |     48 |    8 | sequence number                                    |
//! |     56 |    8 | flags                                              |
//! |     64 |   16 | message id: the UUID's low 8 bytes, then its high 8 |
//! |     80 |   32 | SHA-256 of the payload                             |
//! |    112 |    4 | payload type                                       |
//! |    116 |    4 | payload length                                     |
//! |    120 |    … | payload                                            |
//!
//! Stream messages (`input_stream_data`, `output_stream_data`) carry sequence numbers from 0
//! per direction and are each acknowledged by an `acknowledge` message whose payload names
//! them ([`Acknowledgement`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const INPUT_STREAM: &str = "input_stream_data";
pub const OUTPUT_STREAM: &str = "output_stream_data";
pub const ACKNOWLEDGE: &str = "acknowledge";
pub const CHANNEL_CLOSED: &str = "channel_closed";
pub const START_PUBLICATION: &str = "start_publication";
pub const PAUSE_PUBLICATION: &str = "pause_publication";

/// What a stream message's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum PayloadType {
    Output = 1,
    Error = 2,
    Size = 3,
    Parameter = 4,
    HandshakeRequest = 5,
    HandshakeResponse = 6,
    HandshakeComplete = 7,
    EncChallengeRequest = 8,
    EncChallengeResponse = 9,
    Flag = 10,
    StdErr = 11,
    ExitCode = 12,
}

impl PayloadType {
    pub fn of(value: u32) -> Option<PayloadType> {
        use PayloadType::*;
        [
            Output,
            Error,
            Size,
            Parameter,
            HandshakeRequest,
            HandshakeResponse,
            HandshakeComplete,
            EncChallengeRequest,
            EncChallengeResponse,
            Flag,
            StdErr,
            ExitCode,
        ]
        .into_iter()
        .find(|t| *t as u32 == value)
    }
}

/// Length of everything before the payload length field.
pub const HEADER_LENGTH: u32 = 116;
const TYPE_LENGTH: usize = 32;
const PAYLOAD_OFFSET: usize = HEADER_LENGTH as usize + 4;

/// One message of the data channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    pub message_type: String,
    pub schema_version: u32,
    /// Epoch milliseconds.
    pub created_date: u64,
    pub sequence_number: i64,
    pub flags: u64,
    /// The message id, as a UUID's 16 bytes in the usual order.
    pub message_id: [u8; 16],
    pub payload_type: u32,
    pub payload: Vec<u8>,
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("a data channel message needs at least {PAYLOAD_OFFSET} bytes; got {0}")]
    Short(usize),
    #[error("header length {0} is not {HEADER_LENGTH}")]
    HeaderLength(u32),
    #[error("the payload length says {said} bytes; {found} follow")]
    PayloadLength { said: u32, found: usize },
    #[error("the payload digest does not match the payload")]
    Digest,
    #[error("the message type is not ASCII text")]
    MessageType,
}

impl ClientMessage {
    /// A message of `message_type` with a fresh id (from `id`), created `now_ms`.
    pub fn new(
        message_type: &str,
        sequence_number: i64,
        payload_type: PayloadType,
        payload: Vec<u8>,
        id: [u8; 16],
        now_ms: u64,
    ) -> ClientMessage {
        ClientMessage {
            message_type: message_type.to_string(),
            schema_version: 1,
            created_date: now_ms,
            sequence_number,
            flags: 0,
            message_id: id,
            payload_type: payload_type as u32,
            payload,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_OFFSET + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut kind = [b' '; TYPE_LENGTH];
        let name = self.message_type.as_bytes();
        let n = name.len().min(TYPE_LENGTH);
        kind[..n].copy_from_slice(&name[..n]);
        out.extend_from_slice(&kind);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.message_id[8..]);
        out.extend_from_slice(&self.message_id[..8]);
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.to_be_bytes());
        let length = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ClientMessage, DecodeError> {
        if bytes.len() < PAYLOAD_OFFSET {
            return Err(DecodeError::Short(bytes.len()));
        }
        let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let header = u32_at(0);
        if header != HEADER_LENGTH {
            return Err(DecodeError::HeaderLength(header));
        }
        let kind = std::str::from_utf8(&bytes[4..4 + TYPE_LENGTH])
            .map_err(|_| DecodeError::MessageType)?
            .trim_matches(|c| c == ' ' || c == '\0')
            .to_string();
        let mut message_id = [0u8; 16];
        message_id[8..].copy_from_slice(&bytes[64..72]);
        message_id[..8].copy_from_slice(&bytes[72..80]);
        let said = u32_at(116);
        let payload = &bytes[PAYLOAD_OFFSET..];
        if said as usize != payload.len() {
            return Err(DecodeError::PayloadLength {
                said,
                found: payload.len(),
            });
        }
        if !payload.is_empty() && Sha256::digest(payload).as_slice() != &bytes[80..112] {
            return Err(DecodeError::Digest);
        }
        Ok(ClientMessage {
            message_type: kind,
            schema_version: u32_at(36),
            created_date: u64_at(40),
            sequence_number: u64_at(48) as i64,
            flags: u64_at(56),
            message_id,
            payload_type: u32_at(112),
            payload: payload.to_vec(),
        })
    }

    /// The message id as text (`8-4-4-4-12` lowercase hex).
    pub fn id_text(&self) -> String {
        uuid_text(&self.message_id)
    }

    /// Whether it is a stream message (sequenced and acknowledged).
    pub fn is_stream(&self) -> bool {
        self.message_type == INPUT_STREAM || self.message_type == OUTPUT_STREAM
    }

    /// The `acknowledge` message of this message (id `id`, created `now_ms`).
    pub fn acknowledge(&self, id: [u8; 16], now_ms: u64) -> ClientMessage {
        let payload = serde_json::to_vec(&self.acknowledgement()).unwrap_or_default();
        ClientMessage {
            payload_type: 0,
            ..ClientMessage::new(ACKNOWLEDGE, 0, PayloadType::Output, payload, id, now_ms)
        }
    }

    /// The payload of the acknowledgement of this message.
    pub fn acknowledgement(&self) -> Acknowledgement {
        Acknowledgement {
            message_type: self.message_type.clone(),
            message_id: self.id_text(),
            sequence_number: self.sequence_number,
            is_sequential: true,
        }
    }
}

/// `8-4-4-4-12` lowercase hex of a UUID's bytes.
pub fn uuid_text(id: &[u8; 16]) -> String {
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The payload of an `acknowledge` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    #[serde(rename = "AcknowledgedMessageType")]
    pub message_type: String,
    #[serde(rename = "AcknowledgedMessageId")]
    pub message_id: String,
    #[serde(rename = "AcknowledgedMessageSequenceNumber")]
    pub sequence_number: i64,
    #[serde(rename = "IsSequentialMessage")]
    pub is_sequential: bool,
}

/// The first (text) frame a client sends on the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenDataChannelInput {
    pub message_schema_version: String,
    pub request_id: String,
    pub token_value: String,
    pub client_id: String,
    #[serde(default)]
    pub client_version: Option<String>,
}

/// The handshake the server starts: which kind of session it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeRequest {
    pub agent_version: String,
    pub requested_client_actions: Vec<RequestedClientAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestedClientAction {
    pub action_type: String,
    pub action_parameters: serde_json::Value,
}

/// The client's answer. `BerthTerminal` is Berth's own: `berth exec` without a terminal sets
/// it false; other clients leave it out and get a terminal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeResponse {
    #[serde(default)]
    pub client_version: String,
    #[serde(default)]
    pub processed_client_actions: Vec<serde_json::Value>,
    #[serde(default)]
    pub errors: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub berth_terminal: Option<bool>,
}

/// The end of the handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeComplete {
    /// Nanoseconds (a Go duration).
    pub handshake_time_to_complete: u64,
    pub customer_message: String,
}

/// The payload of `channel_closed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelClosed {
    pub message_id: String,
    pub created_date: String,
    pub destination_id: String,
    pub session_id: String,
    pub message_type: String,
    pub schema_version: u32,
    pub output: String,
}

/// A terminal size (`Size` payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub cols: u32,
    pub rows: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> [u8; 16] {
        let mut id = [0u8; 16];
        for (i, b) in id.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        id
    }

    #[test]
    fn a_message_lays_out_as_the_plugin_reads_it() {
        let message = ClientMessage::new(
            OUTPUT_STREAM,
            7,
            PayloadType::Output,
            b"hi".to_vec(),
            id(),
            1_700_000_000_123,
        );
        let bytes = message.encode();
        assert_eq!(bytes.len(), 122);
        assert_eq!(&bytes[0..4], &116u32.to_be_bytes());
        assert_eq!(&bytes[4..22], b"output_stream_data");
        assert!(bytes[22..36].iter().all(|b| *b == b' '));
        assert_eq!(&bytes[36..40], &1u32.to_be_bytes());
        assert_eq!(&bytes[40..48], &1_700_000_000_123u64.to_be_bytes());
        assert_eq!(&bytes[48..56], &7i64.to_be_bytes());
        assert_eq!(&bytes[56..64], &0u64.to_be_bytes());
        // The low half of the UUID first.
        assert_eq!(&bytes[64..72], &[9, 10, 11, 12, 13, 14, 15, 16]);
        assert_eq!(&bytes[72..80], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[80..112], Sha256::digest(b"hi").as_slice());
        assert_eq!(&bytes[112..116], &1u32.to_be_bytes());
        assert_eq!(&bytes[116..120], &2u32.to_be_bytes());
        assert_eq!(&bytes[120..], b"hi");
        assert_eq!(ClientMessage::decode(&bytes), Ok(message.clone()));
        assert_eq!(message.id_text(), "01020304-0506-0708-090a-0b0c0d0e0f10");
    }

    #[test]
    fn damaged_messages_are_refused() {
        let bytes = ClientMessage::new(
            INPUT_STREAM,
            0,
            PayloadType::Output,
            b"ls\n".to_vec(),
            id(),
            1,
        )
        .encode();
        assert_eq!(
            ClientMessage::decode(&bytes[..50]),
            Err(DecodeError::Short(50))
        );
        let mut tampered = bytes.clone();
        *tampered.last_mut().expect("test value") = b'x';
        assert_eq!(ClientMessage::decode(&tampered), Err(DecodeError::Digest));
        let mut cut = bytes.clone();
        cut.pop();
        assert!(matches!(
            ClientMessage::decode(&cut),
            Err(DecodeError::PayloadLength { said: 3, found: 2 })
        ));
        let mut header = bytes;
        header[3] = 0;
        assert_eq!(
            ClientMessage::decode(&header),
            Err(DecodeError::HeaderLength(0))
        );
    }

    #[test]
    fn acknowledgements_name_the_message_as_the_plugin_expects() {
        let message = ClientMessage::new(INPUT_STREAM, 3, PayloadType::Size, Vec::new(), id(), 1);
        let ack = serde_json::to_value(message.acknowledgement()).expect("test value");
        assert_eq!(
            ack,
            serde_json::json!({
                "AcknowledgedMessageType": "input_stream_data",
                "AcknowledgedMessageId": "01020304-0506-0708-090a-0b0c0d0e0f10",
                "AcknowledgedMessageSequenceNumber": 3,
                "IsSequentialMessage": true
            })
        );
        let reply = message.acknowledge(id(), 5);
        assert_eq!(
            (
                reply.message_type.as_str(),
                reply.payload_type,
                reply.created_date
            ),
            (ACKNOWLEDGE, 0, 5)
        );
        let payload: serde_json::Value =
            serde_json::from_slice(&reply.payload).expect("test value");
        assert_eq!(payload, ack);
        assert_eq!(PayloadType::of(12), Some(PayloadType::ExitCode));
        assert_eq!(PayloadType::of(13), None);
    }
}

//! The frames between the server and the agent running a command: one WebSocket binary
//! message each, a tag byte then the body.

/// One frame of the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Server → agent: bytes for the command's standard input.
    Input(Vec<u8>),
    /// Server → agent: the client's terminal size.
    Resize { cols: u16, rows: u16 },
    /// Agent → server: bytes the command wrote (with a terminal, stdout and stderr in one).
    Output(Vec<u8>),
    /// Agent → server: the command exited with this code; the last frame.
    Exit(i64),
    /// Agent → server: the command could not be run, and why; the last frame.
    Failed(String),
}

const INPUT: u8 = 0;
const RESIZE: u8 = 1;
const OUTPUT: u8 = 2;
const EXIT: u8 = 3;
const FAILED: u8 = 4;

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body): (u8, Vec<u8>) = match self {
            Frame::Input(bytes) => (INPUT, bytes.clone()),
            Frame::Resize { cols, rows } => {
                let mut body = cols.to_be_bytes().to_vec();
                body.extend_from_slice(&rows.to_be_bytes());
                (RESIZE, body)
            }
            Frame::Output(bytes) => (OUTPUT, bytes.clone()),
            Frame::Exit(code) => (EXIT, code.to_be_bytes().to_vec()),
            Frame::Failed(why) => (FAILED, why.as_bytes().to_vec()),
        };
        let mut out = Vec::with_capacity(body.len() + 1);
        out.push(tag);
        out.extend_from_slice(&body);
        out
    }

    /// The frame in `bytes`; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Frame> {
        let (&tag, body) = bytes.split_first()?;
        Some(match tag {
            INPUT => Frame::Input(body.to_vec()),
            RESIZE if body.len() == 4 => Frame::Resize {
                cols: u16::from_be_bytes([body[0], body[1]]),
                rows: u16::from_be_bytes([body[2], body[3]]),
            },
            OUTPUT => Frame::Output(body.to_vec()),
            EXIT => Frame::Exit(i64::from_be_bytes(body.try_into().ok()?)),
            FAILED => Frame::Failed(String::from_utf8_lossy(body).into_owned()),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_junk_is_refused() {
        for frame in [
            Frame::Input(b"ls\n".to_vec()),
            Frame::Resize {
                cols: 120,
                rows: 40,
            },
            Frame::Output(Vec::new()),
            Frame::Exit(-1),
            Frame::Exit(7),
            Frame::Failed("no such container".into()),
        ] {
            assert_eq!(Frame::decode(&frame.encode()), Some(frame));
        }
        assert_eq!(Frame::decode(&[]), None);
        assert_eq!(Frame::decode(&[9, 1]), None);
        assert_eq!(Frame::decode(&[RESIZE, 1]), None);
        assert_eq!(Frame::decode(&[EXIT, 1, 2]), None);
    }
}

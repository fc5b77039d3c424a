//! Exec into a running container (ExecuteCommand): the wire formats, no I/O.
//!
//! - [`message`]: the data channel between a client (`aws ecs execute-command` through the
//!   open-source session-manager-plugin, or `berth exec`) and the server, in the binary
//!   message format of AWS Session Manager.
//! - [`relay`]: the frames between the server and the agent that runs the command.
//! - [`words`]: how a command string becomes argv (and back), without a shell.
//!
//! A session: the client calls ExecuteCommand and gets a stream URL and a one-time token;
//! it opens a WebSocket on the URL and presents the token; the server does the handshake and,
//! once the client answered it, asks the task's agent (on its desired-state stream) to run
//! the command; the agent connects back, runs it in the container and relays its input and
//! output until it exits.

pub mod message;
pub mod relay;
pub mod words;

use serde::{Deserialize, Serialize};

/// Path of the data channel a client opens: `/v1/data-channel/{session id}`.
pub const DATA_CHANNEL_PATH: &str = "/v1/data-channel/";
/// Path of the relay an agent opens: `/v1/agent/exec/{session id}`.
pub const AGENT_EXEC_PATH: &str = "/v1/agent/exec/";

/// What an agent is asked to run, on its desired-state stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRequest {
    pub session_id: String,
    pub task_arn: String,
    pub container_name: String,
    /// Docker's id of the container.
    pub runtime_id: String,
    pub command: Vec<String>,
    /// Whether the command gets a terminal.
    pub tty: bool,
}

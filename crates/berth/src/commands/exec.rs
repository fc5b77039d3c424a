//! `berth exec TASK [--container NAME] [-- COMMAND...]`: runs a command in a running container
//! of a task started with `enableExecuteCommand`, as `aws ecs execute-command` does: it calls
//! ExecuteCommand (signed with the AWS credentials of the environment, so IAM decides), then
//! speaks the Session Manager data-channel protocol on the session's stream URL.
//!
//! With a terminal (by default when stdin and stdout are terminals, or `--tty`), the local
//! terminal is put in raw mode and its size follows the window; without one (`--no-tty`),
//! output is the command's bytes as they are. Either way `berth exec` exits with the
//! command's exit code.

use anyhow::{anyhow, bail, Context};
use berth_agent::websocket::WsClient;
use berth_core::exec::message::{
    self as msg, ChannelClosed, ClientMessage, HandshakeResponse, OpenDataChannelInput,
    PayloadType, TerminalSize,
};
use berth_core::exec::words;
use berth_core::websocket::Message;
use clap::Args;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};

/// `berth exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The task: its id or ARN.
    pub task: String,
    /// The command and its arguments (after `--`); `sh` when left out.
    #[arg(last = true)]
    pub command: Vec<String>,
    /// The container to run it in (needed when the task has several).
    #[arg(long)]
    pub container: Option<String>,
    /// The task's cluster.
    #[arg(long, default_value = "default")]
    pub cluster: String,
    #[command(flatten)]
    pub api: super::api::ApiArgs,
    /// Give the command a terminal even when stdin is not one.
    #[arg(long, short = 't', conflicts_with = "no_tty")]
    pub tty: bool,
    /// Run the command without a terminal (output as it is, for scripts).
    #[arg(long, short = 'T')]
    pub no_tty: bool,
}

/// Runs the command; the process exit code is the command's.
pub async fn run(args: ExecArgs) -> anyhow::Result<i32> {
    let client = args.api.client()?;
    let tty = if args.no_tty {
        false
    } else {
        args.tty || (std::io::stdin().is_terminal() && std::io::stdout().is_terminal())
    };
    let command = if args.command.is_empty() {
        "sh".to_string()
    } else {
        words::join(&args.command)
    };
    let mut request = serde_json::json!({
        "cluster": args.cluster,
        "task": args.task,
        "command": command,
        "interactive": true,
    });
    if let Some(container) = &args.container {
        request["container"] = container.clone().into();
    }
    let answer: serde_json::Value = client
        .call("ExecuteCommand", &request)
        .await
        .context("ExecuteCommand")?;
    let session = &answer["session"];
    let (Some(url), Some(token), Some(session_id)) = (
        session["streamUrl"].as_str(),
        session["tokenValue"].as_str(),
        session["sessionId"].as_str(),
    ) else {
        bail!("ExecuteCommand answered without a session: {answer}");
    };
    let path = stream_path(url)?;
    let ws = client
        .websocket(&path, false)
        .await
        .context("opening the session's data channel")?;
    let mut session = Session::new(ws, tty);
    session.open(token).await?;
    let outcome = session.run().await;
    drop(session.raw.take());
    match outcome? {
        Ended::Exited(code) => Ok(code),
        Ended::Closed(note) => {
            if note.is_empty() {
                bail!("session {session_id} ended without the command's exit code")
            }
            bail!("{note}")
        }
    }
}

/// The path (and query) of a stream URL, to open on the endpoint the CLI talks to.
fn stream_path(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or_else(|| anyhow!("the session's stream URL {url} is not a WebSocket URL"))?;
    let at = rest
        .find('/')
        .ok_or_else(|| anyhow!("the session's stream URL {url} has no path"))?;
    Ok(rest[at..].to_string())
}

/// The local terminal in raw mode until dropped.
struct RawTerminal {
    saved: rustix::termios::Termios,
}

impl RawTerminal {
    fn enter() -> anyhow::Result<RawTerminal> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).context("reading the terminal's mode")?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)
            .context("putting the terminal in raw mode")?;
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

fn terminal_size() -> Option<TerminalSize> {
    let size = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some(TerminalSize {
        cols: u32::from(size.ws_col),
        rows: u32::from(size.ws_row),
    })
}

enum Ended {
    Exited(i32),
    /// `channel_closed` without an exit code: its output says why.
    Closed(String),
}

struct Session {
    ws: WsClient,
    tty: bool,
    next_out: i64,
    expected_in: i64,
    early: BTreeMap<i64, ClientMessage>,
    exit_code: Option<i32>,
    raw: Option<RawTerminal>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Session {
    fn new(ws: WsClient, tty: bool) -> Session {
        Session {
            ws,
            tty,
            next_out: 0,
            expected_in: 0,
            early: BTreeMap::new(),
            exit_code: None,
            raw: None,
        }
    }

    async fn open(&mut self, token: &str) -> anyhow::Result<()> {
        let open = OpenDataChannelInput {
            message_schema_version: "1.0".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            token_value: token.to_string(),
            client_id: uuid::Uuid::new_v4().to_string(),
            client_version: Some(client_version()),
        };
        self.ws
            .send(&Message::Text(serde_json::to_string(&open)?))
            .await
            .context("sending the session token")
    }

    async fn send_input(
        &mut self,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> anyhow::Result<()> {
        let message = ClientMessage::new(
            msg::INPUT_STREAM,
            self.next_out,
            payload_type,
            payload,
            *uuid::Uuid::new_v4().as_bytes(),
            now_ms(),
        );
        self.next_out += 1;
        self.ws
            .send(&Message::Binary(message.encode()))
            .await
            .context("sending to the session")
    }

    async fn acknowledge(&mut self, message: &ClientMessage) -> anyhow::Result<()> {
        let ack = message.acknowledge(*uuid::Uuid::new_v4().as_bytes(), now_ms());
        self.ws
            .send(&Message::Binary(ack.encode()))
            .await
            .context("acknowledging")
    }

    async fn run(&mut self) -> anyhow::Result<Ended> {
        let (keys_tx, mut keys) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
        let mut keys_tx = Some(keys_tx);
        let mut resized =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
        let mut stdout = std::io::stdout();
        loop {
            tokio::select! {
                received = self.ws.recv() => {
                    let bytes = match received {
                        Ok(Some(Message::Binary(bytes))) => bytes,
                        Ok(Some(Message::Ping(payload))) => {
                            self.ws.send(&Message::Pong(payload)).await?;
                            continue;
                        }
                        Ok(Some(Message::Text(_) | Message::Pong(_))) => continue,
                        // The exit code came: what follows (channel_closed) is a formality.
                        _ if self.exit_code.is_some() => {
                            return Ok(Ended::Exited(self.exit_code.unwrap_or_default()))
                        }
                        Ok(Some(Message::Close(_)) | None) => {
                            return Ok(Ended::Closed("the server closed the session".into()))
                        }
                        Err(e) => bail!("the session's connection broke: {e}"),
                    };
                    let message = ClientMessage::decode(&bytes)
                        .map_err(|e| anyhow!("a damaged message from the server: {e}"))?;
                    match message.message_type.as_str() {
                        msg::CHANNEL_CLOSED => {
                            let closed: Option<ChannelClosed> = serde_json::from_slice(&message.payload).ok();
                            return Ok(match self.exit_code {
                                Some(code) => Ended::Exited(code),
                                None => Ended::Closed(closed.map(|c| c.output).unwrap_or_default()),
                            });
                        }
                        msg::OUTPUT_STREAM => {}
                        _ => continue,
                    }
                    // The server may close right after the last message: an acknowledgement
                    // that cannot be sent any more loses nothing.
                    let _ = self.acknowledge(&message).await;
                    if message.sequence_number >= self.expected_in {
                        self.early.entry(message.sequence_number).or_insert(message);
                    }
                    while let Some(message) = self.early.remove(&self.expected_in) {
                        self.expected_in += 1;
                        match PayloadType::of(message.payload_type) {
                            Some(PayloadType::HandshakeRequest) => {
                                let response = HandshakeResponse {
                                    client_version: client_version(),
                                    processed_client_actions: vec![serde_json::json!({
                                        "ActionType": "SessionType",
                                        "ActionStatus": 1,
                                        "ActionResult": null,
                                        "Error": ""
                                    })],
                                    errors: None,
                                    berth_terminal: Some(self.tty),
                                };
                                self.send_input(PayloadType::HandshakeResponse, serde_json::to_vec(&response)?).await?;
                            }
                            Some(PayloadType::HandshakeComplete) => {
                                if self.tty {
                                    if std::io::stdin().is_terminal() {
                                        self.raw = Some(RawTerminal::enter()?);
                                    }
                                    if let Some(size) = terminal_size() {
                                        self.send_input(PayloadType::Size, serde_json::to_vec(&size)?).await?;
                                    }
                                }
                                if let Some(tx) = keys_tx.take() {
                                    spawn_stdin_reader(tx);
                                }
                            }
                            Some(PayloadType::Output) | Some(PayloadType::StdErr) => {
                                stdout.write_all(&message.payload)?;
                                stdout.flush()?;
                            }
                            Some(PayloadType::ExitCode) => {
                                let text = String::from_utf8_lossy(&message.payload);
                                self.exit_code = text.trim().parse::<i64>().ok().map(|c| c as i32);
                            }
                            _ => {}
                        }
                    }
                }
                typed = keys.recv() => match typed {
                    Some(bytes) => self.send_input(PayloadType::Output, bytes).await?,
                    // Stdin ended: nothing more to send; the command goes on.
                    None => keys = tokio::sync::mpsc::channel(1).1,
                },
                _ = resized.recv(), if self.tty => {
                    if let Some(size) = terminal_size() {
                        self.send_input(PayloadType::Size, serde_json::to_vec(&size)?).await?;
                    }
                }
            }
        }
    }
}

fn client_version() -> String {
    format!("berth/{}", env!("CARGO_PKG_VERSION"))
}

/// Reads stdin on a thread of its own (a blocking read) into `tx`, until it ends.
fn spawn_stdin_reader(tx: tokio::sync::mpsc::Sender<Vec<u8>>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buffer = [0u8; 1024];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buffer[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_of_a_stream_url_is_opened_on_the_endpoint() {
        assert_eq!(
            stream_path(
                "ws://127.0.0.1:7700/v1/data-channel/ecs-execute-command-1?role=publish_subscribe"
            )
            .expect("path"),
            "/v1/data-channel/ecs-execute-command-1?role=publish_subscribe"
        );
        assert!(stream_path("https://x/y").is_err());
        assert!(stream_path("wss://host-only").is_err());
    }
}

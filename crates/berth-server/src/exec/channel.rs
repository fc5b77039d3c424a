//! The client's data channel (`GET /v1/data-channel/{session}`, a WebSocket): the Session
//! Manager protocol as the session-manager-plugin speaks it, the server playing the part of
//! the SSM agent.
//!
//! 1. The client's first (text) message presents the session's one-time token; anything else
//!    closes the connection with nothing sent.
//! 2. The server asks for an `InteractiveCommands` session (HandshakeRequest, stream message
//!    0); the client answers (HandshakeResponse); the server completes (HandshakeComplete, 1).
//! 3. The session is ready: the task's agent is asked to run the command and connects back
//!    (`relay`). Client input (`Output` payloads) and terminal sizes (`Size`) go to it; what
//!    the command writes comes back as `output_stream_data`, in sequence.
//! 4. When the command exits: its exit code (an `ExitCode` payload, to `berth exec` only, which
//!    asks for it in its handshake answer), then `channel_closed`, then a WebSocket close.
//!
//! Every stream message from the client is acknowledged, duplicates included, and processed
//! once, in sequence order.

use super::websocket::{self, WsConn};
use super::{ClientSide, SessionSpec, AGENT_WAIT};
use crate::app::App;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use berth_core::exec::message::{
    self as msg, ChannelClosed, ClientMessage, HandshakeComplete, HandshakeRequest,
    HandshakeResponse, OpenDataChannelInput, PayloadType, RequestedClientAction, TerminalSize,
};
use berth_core::exec::relay::Frame;
use berth_core::websocket::Message;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a client has to present its token, and to answer the handshake.
const CLIENT_WAIT: Duration = Duration::from_secs(30);
/// The version the server gives as the "agent" of the session.
const AGENT_VERSION: &str = "3.3.0.0";
/// Flag payload that ends a session (the plugin's TerminateSession).
const TERMINATE_SESSION: u32 = 2;
/// The biggest output payload sent in one message.
const OUTPUT_CHUNK: usize = 32 * 1024;
/// When an unacknowledged stream message is sent again.
const RESEND_AFTER: Duration = Duration::from_millis(500);
/// The most unacknowledged messages kept for resending (the oldest are dropped).
const MAX_UNACKED: usize = 10_000;
/// WebSocket close codes: normal, and policy violation (a refused token).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_REFUSED: u16 = 1008;

/// `GET /v1/data-channel/{session}`.
pub async fn data_channel(
    State(app): State<Arc<App>>,
    Path(session_id): Path<String>,
    mut request: Request,
) -> Response {
    match websocket::upgrade(&mut request) {
        Ok((response, on_upgrade)) => {
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => serve(app, session_id, websocket::server(upgraded)).await,
                    Err(e) => tracing::debug!(error = %e, "data channel upgrade failed"),
                }
            });
            response
        }
        Err(e) => e.into_response(),
    }
}

/// How a session ended, for the audit log.
#[derive(Debug)]
enum End {
    Exited(i64),
    Failed(String),
    ClientLeft,
}

/// The server's side of one session: sequence numbers out, order and duplicates in.
struct Channel {
    ws: WsConn,
    session_id: String,
    next_out: i64,
    expected_in: i64,
    early: BTreeMap<i64, ClientMessage>,
    /// Stream messages sent and not yet acknowledged, with when they were last sent: the
    /// plugin drops output that comes before it is ready for it, so it is sent again.
    unacked: BTreeMap<i64, (Vec<u8>, Instant)>,
}

async fn serve(app: Arc<App>, session_id: String, mut ws: WsConn) {
    let opened = match tokio::time::timeout(CLIENT_WAIT, ws.recv()).await {
        Ok(Ok(Some(Message::Text(text)))) => {
            serde_json::from_str::<OpenDataChannelInput>(&text).ok()
        }
        _ => None,
    };
    let spec = opened.and_then(|open| app.exec.claim(&session_id, &open.token_value).ok());
    let Some(spec) = spec else {
        tracing::info!(target: "berth::audit", session = %session_id, "exec data channel refused: no valid token");
        ws.close(CLOSE_REFUSED).await;
        return;
    };
    let mut channel = Channel {
        ws,
        session_id: session_id.clone(),
        next_out: 0,
        expected_in: 0,
        early: BTreeMap::new(),
        unacked: BTreeMap::new(),
    };
    let began = Instant::now();
    let end = match channel.handshake().await {
        Some(response) => {
            let tty = response.berth_terminal.unwrap_or(true);
            let wants_exit_code = response.berth_terminal.is_some();
            match app.exec.ready(&session_id, tty) {
                Some(side) => {
                    let end = channel.run(&app, side).await;
                    if let (true, End::Exited(code)) = (wants_exit_code, &end) {
                        channel
                            .send_stream(PayloadType::ExitCode, code.to_string().into_bytes())
                            .await;
                    }
                    end
                }
                None => End::Failed("the session is no longer open".into()),
            }
        }
        None => End::Failed("the client did not complete the handshake".into()),
    };
    audit_end(&spec, &session_id, &end, began.elapsed());
    app.exec.end(&session_id);
    let note = match &end {
        End::Failed(why) => why.clone(),
        _ => String::new(),
    };
    channel.send_closed(&note).await;
    channel.ws.close(CLOSE_NORMAL).await;
}

fn audit_end(spec: &SessionSpec, session_id: &str, end: &End, took: Duration) {
    tracing::info!(
        target: "berth::audit",
        session = %session_id,
        principal = %spec.caller_arn,
        task = %spec.task_arn,
        container = %spec.container_name,
        seconds = took.as_secs_f64(),
        end = ?end,
        "exec session ended"
    );
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn new_id() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

impl Channel {
    async fn send_message(&mut self, message: ClientMessage) -> bool {
        self.ws
            .send(&Message::Binary(message.encode()))
            .await
            .is_ok()
    }

    /// Sends an `output_stream_data` message with the next sequence number.
    async fn send_stream(&mut self, payload_type: PayloadType, payload: Vec<u8>) -> bool {
        let message = ClientMessage::new(
            msg::OUTPUT_STREAM,
            self.next_out,
            payload_type,
            payload,
            new_id(),
            now_ms(),
        );
        self.next_out += 1;
        let bytes = message.encode();
        self.unacked
            .insert(message.sequence_number, (bytes.clone(), Instant::now()));
        if self.unacked.len() > MAX_UNACKED {
            self.unacked.pop_first();
        }
        self.ws.send(&Message::Binary(bytes)).await.is_ok()
    }

    /// Sends again what was not acknowledged within [`RESEND_AFTER`].
    async fn resend_unacknowledged(&mut self) -> bool {
        let due: Vec<i64> = self
            .unacked
            .iter()
            .filter(|(_, (_, at))| at.elapsed() >= RESEND_AFTER)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in due {
            let Some((bytes, at)) = self.unacked.get_mut(&seq) else {
                continue;
            };
            *at = Instant::now();
            let bytes = bytes.clone();
            if self.ws.send(&Message::Binary(bytes)).await.is_err() {
                return false;
            }
        }
        true
    }

    async fn send_closed(&mut self, output: &str) {
        let closed = ChannelClosed {
            message_id: uuid::Uuid::new_v4().to_string(),
            created_date: now_ms().to_string(),
            destination_id: String::new(),
            session_id: self.session_id.clone(),
            message_type: msg::CHANNEL_CLOSED.into(),
            schema_version: 1,
            output: output.to_string(),
        };
        let mut message = ClientMessage::new(
            msg::CHANNEL_CLOSED,
            self.next_out,
            PayloadType::Output,
            serde_json::to_vec(&closed).unwrap_or_default(),
            new_id(),
            now_ms(),
        );
        message.payload_type = 0;
        self.send_message(message).await;
    }

    /// Acknowledges a stream message of the client.
    async fn acknowledge(&mut self, message: &ClientMessage) -> bool {
        self.send_message(message.acknowledge(new_id(), now_ms()))
            .await
    }

    /// The client's next stream message in sequence order, if it has come.
    fn take_ready(&mut self) -> Option<ClientMessage> {
        let message = self.early.remove(&self.expected_in)?;
        self.expected_in += 1;
        Some(message)
    }

    /// Takes in what the WebSocket gave: acknowledges and queues the client's stream
    /// messages (duplicates dropped, early ones kept for their turn), notes acknowledgements,
    /// answers pings. `false` when the client is gone or broke the protocol.
    async fn take_in(&mut self, received: Result<Option<Message>, String>) -> bool {
        let bytes = match received {
            Ok(Some(Message::Binary(bytes))) => bytes,
            Ok(Some(Message::Ping(payload))) => {
                return self.ws.send(&Message::Pong(payload)).await.is_ok()
            }
            Ok(Some(Message::Text(_) | Message::Pong(_))) => return true,
            _ => return false,
        };
        let message = match ClientMessage::decode(&bytes) {
            Ok(message) => message,
            Err(e) => {
                tracing::debug!(session = %self.session_id, error = %e, "bad data channel message");
                return false;
            }
        };
        if message.message_type == msg::ACKNOWLEDGE {
            if let Ok(ack) = serde_json::from_slice::<msg::Acknowledgement>(&message.payload) {
                self.unacked.remove(&ack.sequence_number);
            }
            return true;
        }
        if message.message_type != msg::INPUT_STREAM {
            return true;
        }
        if !self.acknowledge(&message).await {
            return false;
        }
        let seq = message.sequence_number;
        if seq >= self.expected_in && self.early.len() < 1024 {
            self.early.entry(seq).or_insert(message);
        }
        true
    }

    /// The client's next stream message in sequence order; `None` when the client is gone.
    async fn next_input(&mut self) -> Option<ClientMessage> {
        loop {
            if let Some(message) = self.take_ready() {
                return Some(message);
            }
            let received = self.ws.recv().await;
            if !self.take_in(received).await {
                return None;
            }
        }
    }

    /// Runs the handshake; the client's answer, or `None`.
    async fn handshake(&mut self) -> Option<HandshakeResponse> {
        let started = Instant::now();
        let request = HandshakeRequest {
            agent_version: AGENT_VERSION.into(),
            requested_client_actions: vec![RequestedClientAction {
                action_type: "SessionType".into(),
                action_parameters: serde_json::json!({
                    "SessionType": "InteractiveCommands",
                    "Properties": null
                }),
            }],
        };
        let payload = serde_json::to_vec(&request).unwrap_or_default();
        if !self
            .send_stream(PayloadType::HandshakeRequest, payload)
            .await
        {
            return None;
        }
        let response = tokio::time::timeout(CLIENT_WAIT, async {
            loop {
                let message = self.next_input().await?;
                if message.payload_type == PayloadType::HandshakeResponse as u32 {
                    return serde_json::from_slice::<HandshakeResponse>(&message.payload).ok();
                }
            }
        })
        .await
        .ok()??;
        let complete = HandshakeComplete {
            handshake_time_to_complete: started.elapsed().as_nanos() as u64,
            customer_message: String::new(),
        };
        let payload = serde_json::to_vec(&complete).unwrap_or_default();
        self.send_stream(PayloadType::HandshakeComplete, payload)
            .await
            .then_some(response)
    }

    /// Relays between the client and the agent until the command ends or the client leaves.
    async fn run(&mut self, app: &App, side: ClientSide) -> End {
        let ClientSide {
            to_agent,
            mut from_agent,
        } = side;
        let deadline = tokio::time::Instant::now() + AGENT_WAIT;
        let mut agent_heard = false;
        let mut resend = tokio::time::interval(RESEND_AFTER / 2);
        loop {
            while let Some(input) = self.take_ready() {
                let frame = match PayloadType::of(input.payload_type) {
                    Some(PayloadType::Output) => Frame::Input(input.payload),
                    Some(PayloadType::Size) => {
                        match serde_json::from_slice::<TerminalSize>(&input.payload) {
                            Ok(size) => Frame::Resize {
                                cols: u16::try_from(size.cols).unwrap_or(u16::MAX),
                                rows: u16::try_from(size.rows).unwrap_or(u16::MAX),
                            },
                            Err(_) => continue,
                        }
                    }
                    Some(PayloadType::Flag)
                        if input.payload.len() == 4
                            && u32::from_be_bytes([
                                input.payload[0],
                                input.payload[1],
                                input.payload[2],
                                input.payload[3],
                            ]) == TERMINATE_SESSION =>
                    {
                        return End::ClientLeft;
                    }
                    _ => continue,
                };
                if to_agent.send(frame).await.is_err() {
                    return End::Failed("the agent's connection ended".into());
                }
            }
            tokio::select! {
                _ = resend.tick() => {
                    if !self.resend_unacknowledged().await {
                        return End::ClientLeft;
                    }
                }
                received = self.ws.recv() => {
                    if !self.take_in(received).await {
                        return End::ClientLeft;
                    }
                }
                frame = from_agent.recv() => {
                    agent_heard = true;
                    match frame {
                        Some(Frame::Output(bytes)) => {
                            for chunk in bytes.chunks(OUTPUT_CHUNK) {
                                if !self.send_stream(PayloadType::Output, chunk.to_vec()).await {
                                    return End::ClientLeft;
                                }
                            }
                        }
                        Some(Frame::Exit(code)) => return End::Exited(code),
                        Some(Frame::Failed(why)) => return End::Failed(why),
                        Some(_) => {}
                        None => return End::Failed("the agent's connection ended".into()),
                    }
                }
                _ = tokio::time::sleep_until(deadline), if !agent_heard => {
                    if !app.exec.taken(&self.session_id) {
                        return End::Failed(format!(
                            "The agent of the task's container instance did not connect within {}s.",
                            AGENT_WAIT.as_secs()
                        ));
                    }
                    agent_heard = true;
                }
            }
        }
    }
}

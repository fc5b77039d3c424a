//! Runs the commands of exec sessions (ExecuteCommand) that the desired-state stream offers:
//! connects the session's relay to the server (signed, as this instance's agent), checks the
//! container is the task's on this host, starts the command in it, and relays input, terminal
//! sizes, output and finally the exit code (`berth_core::exec::relay`).

use crate::client::ServerClient;
use crate::runtime::{ContainerRuntime, ExecProcess, ExecSpec};
use crate::spec;
use crate::websocket::WsClient;
use berth_core::exec::relay::Frame;
use berth_core::exec::{ExecRequest, AGENT_EXEC_PATH};
use berth_core::websocket::Message;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long the exit code of a command whose output ended may take to show.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Runs `request` to its end. Failures are told to the session (and logged), never fatal.
pub async fn run(
    client: ServerClient,
    runtime: Arc<dyn ContainerRuntime>,
    instance_id: String,
    request: ExecRequest,
) {
    let path = format!("{AGENT_EXEC_PATH}{}", request.session_id);
    let mut ws = match client.websocket(&path, true).await {
        Ok(ws) => ws,
        Err(e) => {
            tracing::warn!(session = %request.session_id, "cannot connect the exec session: {e}");
            return;
        }
    };
    tracing::info!(
        session = %request.session_id,
        task = %request.task_arn,
        container = %request.container_name,
        command = ?request.command,
        "exec session starting"
    );
    let process = match start(runtime.as_ref(), &instance_id, &request).await {
        Ok(process) => process,
        Err(why) => {
            tracing::warn!(session = %request.session_id, "exec session refused: {why}");
            let _ = ws.send(&Message::Binary(Frame::Failed(why).encode())).await;
            ws.close(1000).await;
            return;
        }
    };
    let exit = relay(&mut ws, runtime.as_ref(), process).await;
    if let Some(frame) = exit {
        let _ = ws.send(&Message::Binary(frame.encode())).await;
    }
    ws.close(1000).await;
    tracing::info!(session = %request.session_id, "exec session ended");
}

/// Starts the command once the container is known to be the task's, on this instance.
async fn start(
    runtime: &dyn ContainerRuntime,
    instance_id: &str,
    request: &ExecRequest,
) -> Result<ExecProcess, String> {
    let state = runtime
        .inspect_container(&request.runtime_id)
        .await
        .map_err(|e| {
            format!(
                "container {} is not on this host: {e}",
                request.container_name
            )
        })?;
    let ours = state
        .labels
        .get(spec::LABEL_CONTAINER_INSTANCE)
        .map(String::as_str)
        == Some(instance_id)
        && spec::task_container_of(&state.labels)
            == Some((request.task_arn.clone(), request.container_name.clone()));
    if !ours {
        return Err(format!(
            "container {} of task {} is not on this host",
            request.container_name, request.task_arn
        ));
    }
    if !state.running {
        return Err(format!(
            "container {} is not running",
            request.container_name
        ));
    }
    let spec = ExecSpec {
        command: request.command.clone(),
        tty: request.tty,
    };
    runtime
        .exec_start(&request.runtime_id, &spec)
        .await
        .map_err(|e| {
            format!(
                "the command could not be run in container {}: {e}",
                request.container_name
            )
        })
}

/// Relays until the command's output ends (then its exit frame is returned) or the server
/// side goes away (then `None`: the command's input is closed, which ends a shell).
async fn relay(
    ws: &mut WsClient,
    runtime: &dyn ContainerRuntime,
    process: ExecProcess,
) -> Option<Frame> {
    let ExecProcess {
        id,
        mut output,
        mut input,
    } = process;
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(bytes)) => {
                    if ws.send(&Message::Binary(Frame::Output(bytes.to_vec()).encode())).await.is_err() {
                        let _ = input.shutdown().await;
                        return None;
                    }
                }
                Some(Err(e)) => return Some(Frame::Failed(format!("the command's output broke: {e}"))),
                None => break,
            },
            message = ws.recv() => match message {
                Ok(Some(Message::Binary(bytes))) => match Frame::decode(&bytes) {
                    Some(Frame::Input(bytes)) => {
                        let _ = input.write_all(&bytes).await;
                        let _ = input.flush().await;
                    }
                    Some(Frame::Resize { cols, rows }) => {
                        if let Err(e) = runtime.exec_resize(&id, cols, rows).await {
                            tracing::debug!(exec = %id, "terminal resize failed: {e}");
                        }
                    }
                    _ => {}
                },
                Ok(Some(Message::Ping(payload))) => {
                    let _ = ws.send(&Message::Pong(payload)).await;
                }
                Ok(Some(Message::Text(_) | Message::Pong(_))) => {}
                Ok(Some(Message::Close(_)) | None) | Err(_) => {
                    let _ = input.shutdown().await;
                    return None;
                }
            },
        }
    }
    let deadline = tokio::time::Instant::now() + EXIT_WAIT;
    loop {
        match runtime.exec_exit_code(&id).await {
            Ok(Some(code)) => return Some(Frame::Exit(code)),
            Ok(None) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(None) => return Some(Frame::Failed("the command's exit code is not known".into())),
            Err(e) => {
                return Some(Frame::Failed(format!(
                    "the command's exit code is not known: {e}"
                )))
            }
        }
    }
}

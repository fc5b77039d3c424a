//! The agent's relay (`GET /v1/agent/exec/{session}`, a signed WebSocket): the agent of the
//! session's container instance, and only it, connects after its desired-state stream offered
//! the session; frames go both ways (`berth_core::exec::relay`) until the command exits or
//! either side leaves.

use super::websocket::{self, WsConn};
use crate::app::App;
use crate::auth::Principal;
use crate::error::ApiError;
use axum::extract::{Extension, Path, Request, State};
use axum::response::{IntoResponse, Response};
use berth_core::arn::id_of;
use berth_core::exec::relay::Frame;
use berth_core::websocket::Message;
use std::sync::Arc;

/// `GET /v1/agent/exec/{session}`.
pub async fn agent_exec(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
    Path(session_id): Path<String>,
    mut request: Request,
) -> Response {
    let Some(spec) = app.exec.spec(&session_id) else {
        return ApiError::invalid_parameter(format!("No exec session '{session_id}' is open."))
            .into_response();
    };
    let instance_id = id_of(&spec.instance_arn, "container-instance").unwrap_or_default();
    if let Err(e) = crate::gateway::agent_instance(&app, caller, &spec.cluster, &instance_id) {
        return e.into_response();
    }
    let Some((_, side)) = app.exec.take(&session_id, &spec.instance_arn) else {
        return ApiError::invalid_parameter(format!(
            "Exec session '{session_id}' is not waiting for its agent."
        ))
        .into_response();
    };
    match websocket::upgrade(&mut request) {
        Ok((response, on_upgrade)) => {
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => relay(websocket::server(upgraded), side).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "agent exec upgrade failed");
                        let _ = side
                            .from_agent
                            .send(Frame::Failed("the agent's connection failed".into()))
                            .await;
                    }
                }
            });
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn relay(mut ws: WsConn, side: super::AgentSide) {
    let super::AgentSide {
        mut to_agent,
        from_agent,
    } = side;
    loop {
        tokio::select! {
            message = ws.recv() => {
                let frame = match message {
                    Ok(Some(Message::Binary(bytes))) => match Frame::decode(&bytes) {
                        Some(frame) => frame,
                        None => continue,
                    },
                    Ok(Some(Message::Ping(payload))) => {
                        let _ = ws.send(&Message::Pong(payload)).await;
                        continue;
                    }
                    Ok(Some(Message::Text(_) | Message::Pong(_))) => continue,
                    _ => {
                        let _ = from_agent.send(Frame::Failed("the agent's connection ended".into())).await;
                        return;
                    }
                };
                let last = matches!(frame, Frame::Exit(_) | Frame::Failed(_));
                if from_agent.send(frame).await.is_err() || last {
                    ws.close(1000).await;
                    return;
                }
            }
            frame = to_agent.recv() => match frame {
                Some(frame) => {
                    if ws.send(&Message::Binary(frame.encode())).await.is_err() {
                        let _ = from_agent.send(Frame::Failed("the agent's connection ended".into())).await;
                        return;
                    }
                }
                // The client left: the agent ends the command.
                None => {
                    ws.close(1000).await;
                    return;
                }
            }
        }
    }
}

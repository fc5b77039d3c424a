//! Exec sessions (ExecuteCommand, `handlers::execute_command`): the sessions the server has
//! issued, the client's data channel (`channel`) and the agent's relay (`relay`), both
//! WebSockets on this server's one endpoint (`websocket`).
//!
//! A session goes Issued (ExecuteCommand answered) → Claimed (a client presented its token;
//! a token works once) → Ready (the client finished the handshake; the agent's desired-state
//! stream offers it) → Offered → Taken (the agent connected) → gone. Sessions live in this
//! server's memory: a restart ends them, as a lost connection would.

pub mod channel;
pub mod relay;
pub mod websocket;

use berth_core::exec::relay::Frame;
use berth_core::exec::ExecRequest;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long an issued token may wait for its client.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// How long a ready session waits for its agent to connect.
pub const AGENT_WAIT: Duration = Duration::from_secs(30);
/// Frames queued each way before the sender waits.
const QUEUE: usize = 64;

/// What ExecuteCommand decided a session is.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    pub cluster: String,
    pub task_arn: String,
    pub container_name: String,
    pub runtime_id: String,
    pub command: Vec<String>,
    /// The command as the caller gave it, for the audit log.
    pub command_text: String,
    pub instance_arn: String,
    /// Who asked for it.
    pub caller_arn: String,
}

/// The agent's end of a ready session.
#[derive(Debug)]
pub struct AgentSide {
    /// Frames for the agent (input, resizes).
    pub to_agent: mpsc::Receiver<Frame>,
    /// Frames from the agent (output, the exit).
    pub from_agent: mpsc::Sender<Frame>,
}

/// The client channel's end of a ready session.
#[derive(Debug)]
pub struct ClientSide {
    pub to_agent: mpsc::Sender<Frame>,
    pub from_agent: mpsc::Receiver<Frame>,
}

#[derive(Debug)]
enum Stage {
    Issued,
    Claimed,
    Ready { tty: bool, agent: AgentSide },
    Offered { agent: AgentSide },
    Taken,
}

#[derive(Debug)]
struct Session {
    spec: SessionSpec,
    token: String,
    issued: Instant,
    stage: Stage,
}

/// Every session this server holds.
#[derive(Debug)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
    /// Bumped when a session becomes ready: agents' streams look for theirs.
    ready: watch::Sender<u64>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            inner: Mutex::new(HashMap::new()),
            ready: watch::channel(0).0,
        }
    }
}

/// Why a client's token opens nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// No such session, or its token does not match or was used.
    Refused,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Issues a session for `spec`: its id and one-time token. Forgets sessions whose token
    /// was never used within [`TOKEN_LIFETIME`].
    pub fn issue(&self, spec: SessionSpec, id: String, token: String) {
        let mut sessions = self.lock();
        sessions.retain(|_, s| {
            !matches!(s.stage, Stage::Issued) || s.issued.elapsed() < TOKEN_LIFETIME
        });
        sessions.insert(
            id,
            Session {
                spec,
                token,
                issued: Instant::now(),
                stage: Stage::Issued,
            },
        );
    }

    /// The session `id` for the client presenting `token`: once, while the token is fresh.
    pub fn claim(&self, id: &str, token: &str) -> Result<SessionSpec, ClaimError> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id).ok_or(ClaimError::Refused)?;
        let fresh = session.issued.elapsed() < TOKEN_LIFETIME;
        if !matches!(session.stage, Stage::Issued)
            || !fresh
            || !berth_core::sigv4::constant_time_eq(session.token.as_bytes(), token.as_bytes())
        {
            return Err(ClaimError::Refused);
        }
        session.stage = Stage::Claimed;
        Ok(session.spec.clone())
    }

    /// Marks the claimed session `id` ready for its agent (with a terminal or not); returns
    /// the client's end of it.
    pub fn ready(&self, id: &str, tty: bool) -> Option<ClientSide> {
        let (to_agent, agent_in) = mpsc::channel(QUEUE);
        let (agent_out, from_agent) = mpsc::channel(QUEUE);
        {
            let mut sessions = self.lock();
            let session = sessions.get_mut(id)?;
            if !matches!(session.stage, Stage::Claimed) {
                return None;
            }
            session.stage = Stage::Ready {
                tty,
                agent: AgentSide {
                    to_agent: agent_in,
                    from_agent: agent_out,
                },
            };
        }
        self.ready.send_modify(|n| *n += 1);
        Some(ClientSide {
            to_agent,
            from_agent,
        })
    }

    /// Wakes when a session becomes ready.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.ready.subscribe()
    }

    /// The ready sessions of the container instance `instance_arn`, as requests for its
    /// agent; each is offered once.
    pub fn offers_for(&self, instance_arn: &str) -> Vec<ExecRequest> {
        let mut sessions = self.lock();
        let mut out = Vec::new();
        for (id, session) in sessions.iter_mut() {
            if session.spec.instance_arn != instance_arn {
                continue;
            }
            let stage = std::mem::replace(&mut session.stage, Stage::Taken);
            session.stage = match stage {
                Stage::Ready { tty, agent } => {
                    out.push(ExecRequest {
                        session_id: id.clone(),
                        task_arn: session.spec.task_arn.clone(),
                        container_name: session.spec.container_name.clone(),
                        runtime_id: session.spec.runtime_id.clone(),
                        command: session.spec.command.clone(),
                        tty,
                    });
                    Stage::Offered { agent }
                }
                other => other,
            };
        }
        out
    }

    /// The agent's end of session `id`, for the agent of `instance_arn`; once.
    pub fn take(&self, id: &str, instance_arn: &str) -> Option<(SessionSpec, AgentSide)> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(id)?;
        if session.spec.instance_arn != instance_arn {
            return None;
        }
        match std::mem::replace(&mut session.stage, Stage::Taken) {
            Stage::Ready { agent, .. } | Stage::Offered { agent } => {
                Some((session.spec.clone(), agent))
            }
            other => {
                session.stage = other;
                None
            }
        }
    }

    /// Whether the agent of session `id` has connected.
    pub fn taken(&self, id: &str) -> bool {
        matches!(self.lock().get(id).map(|s| &s.stage), Some(Stage::Taken))
    }

    /// The spec of session `id`, whatever its stage.
    pub fn spec(&self, id: &str) -> Option<SessionSpec> {
        self.lock().get(id).map(|s| s.spec.clone())
    }

    /// Forgets session `id`.
    pub fn end(&self, id: &str) {
        self.lock().remove(id);
    }

    /// How many sessions are held (issued and not ended).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(instance: &str) -> SessionSpec {
        SessionSpec {
            cluster: "default".into(),
            task_arn: "arn:aws:ecs:us-east-1:000000000000:task/default/t1".into(),
            container_name: "main".into(),
            runtime_id: "abc".into(),
            command: vec!["sh".into()],
            command_text: "sh".into(),
            instance_arn: instance.into(),
            caller_arn: "arn:aws:iam::000000000000:root".into(),
        }
    }

    #[test]
    fn a_token_opens_its_session_once() {
        let sessions = Sessions::default();
        sessions.issue(spec("i-1"), "s1".into(), "secret".into());
        assert_eq!(
            sessions.claim("s1", "wrong").err(),
            Some(ClaimError::Refused)
        );
        assert_eq!(
            sessions.claim("s2", "secret").err(),
            Some(ClaimError::Refused)
        );
        assert!(sessions.claim("s1", "secret").is_ok());
        assert_eq!(
            sessions.claim("s1", "secret").err(),
            Some(ClaimError::Refused)
        );
    }

    #[test]
    fn a_ready_session_is_offered_once_to_its_own_agent_and_taken_once() {
        let sessions = Sessions::default();
        let woken = sessions.subscribe();
        sessions.issue(spec("i-1"), "s1".into(), "t".into());
        assert!(sessions.ready("s1", true).is_none(), "not claimed yet");
        sessions.claim("s1", "t").expect("claimed");
        let _client = sessions.ready("s1", false).expect("ready");
        assert!(woken.has_changed().expect("sender alive"));
        assert!(sessions.offers_for("i-2").is_empty());
        let offers = sessions.offers_for("i-1");
        assert_eq!(offers.len(), 1);
        assert!(!offers[0].tty);
        assert!(sessions.offers_for("i-1").is_empty(), "offered once");
        assert!(
            sessions.take("s1", "i-2").is_none(),
            "another instance's agent"
        );
        assert!(sessions.take("s1", "i-1").is_some());
        assert!(sessions.take("s1", "i-1").is_none(), "taken once");
        sessions.end("s1");
        assert!(sessions.is_empty());
    }
}

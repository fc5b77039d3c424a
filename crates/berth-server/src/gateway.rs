//! The agent gateway: each agent holds a stream of its desired tasks open
//! (`GET /v1/agent/desired`, newline-delimited JSON, a full snapshot per line) and sends
//! heartbeats (`POST /v1/agent/heartbeat`). The stream is level-triggered: a line is sent at
//! once, whenever the instance's tasks change, and as a keepalive.

use crate::app::App;
use crate::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use berth_core::arn::id_of;
use berth_core::gateway::{AssignedTask, DesiredState, Heartbeat};
use berth_core::model::container_instance::ContainerInstance;
use berth_core::model::task::Task;
use berth_core::model::task_definition::TaskDefinitionRecord;
use berth_core::task_state::TaskStatus;
use berth_store::keys;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often an unchanged desired state is sent again, so both sides notice a dead stream.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// When each container instance was last heard from.
#[derive(Debug, Default)]
pub struct AgentRegistry {
    last_seen: Mutex<HashMap<String, Instant>>,
}

impl AgentRegistry {
    /// Records that the agent of `instance_arn` is alive now.
    pub fn saw(&self, instance_arn: &str) {
        self.last_seen
            .lock()
            .expect("registry lock poisoned")
            .insert(instance_arn.to_string(), Instant::now());
    }

    /// When the agent of `instance_arn` was last heard from.
    pub fn last_seen(&self, instance_arn: &str) -> Option<Instant> {
        self.last_seen
            .lock()
            .expect("registry lock poisoned")
            .get(instance_arn)
            .copied()
    }
}

/// Query of the desired-state stream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredQuery {
    cluster: String,
    container_instance: String,
    #[allow(dead_code)]
    since: Option<u64>,
}

/// The instance ARN a query names, if the instance is registered and not INACTIVE.
fn instance_arn(app: &App, cluster: &str, reference: &str) -> Result<String, ApiError> {
    let id = id_of(reference, "container-instance").ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "'{reference}' is not a container instance id or ARN."
        ))
    })?;
    let found = app
        .get::<ContainerInstance>(&keys::instance(cluster, &id))?
        .filter(|i| i.value.status.as_deref() != Some("INACTIVE"));
    match found {
        Some(_) => Ok(app.arns.container_instance(cluster, &id)),
        None => Err(ApiError::client(format!(
            "Container instance '{reference}' is not registered in cluster '{cluster}': register it first."
        ))),
    }
}

/// Every task of the instance that is not yet STOPPED, with its task definition.
pub fn desired_state(
    app: &App,
    cluster: &str,
    instance_arn: &str,
) -> Result<DesiredState, ApiError> {
    let revision = app.view.revision();
    let mut definitions: HashMap<String, TaskDefinitionRecord> = HashMap::new();
    let mut tasks = Vec::new();
    for versioned in app.list::<Task>(&keys::tasks_of(cluster))? {
        let task = versioned.value;
        if task.container_instance_arn.as_deref() != Some(instance_arn)
            || TaskStatus::of(&task) == TaskStatus::Stopped
        {
            continue;
        }
        let td_arn = task.task_definition_arn.clone().unwrap_or_default();
        if !definitions.contains_key(&td_arn) {
            let Some((family, revision)) =
                td_arn.rsplit('/').next().and_then(|s| s.rsplit_once(':'))
            else {
                continue;
            };
            let Ok(revision) = revision.parse::<u32>() else {
                continue;
            };
            let Some(record) =
                app.get::<TaskDefinitionRecord>(&keys::task_definition(family, revision))?
            else {
                continue;
            };
            definitions.insert(td_arn.clone(), record.value);
        }
        let task_definition = definitions[&td_arn].task_definition.clone();
        let task = crate::handlers::task_lookup::with_version(task, versioned.mod_revision);
        tasks.push(AssignedTask {
            task,
            task_definition,
        });
    }
    Ok(DesiredState { revision, tasks })
}

/// `GET /v1/agent/desired`: the stream of an instance's desired tasks.
pub async fn desired(
    State(app): State<Arc<App>>,
    query: Result<Query<DesiredQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(e) => {
            return ApiError::invalid_parameter(format!(
                "The desired-state stream needs ?cluster=NAME&containerInstance=ID[&since=REVISION]: {e}"
            ))
            .into_response()
        }
    };
    let arn = match instance_arn(&app, &query.cluster, &query.container_instance) {
        Ok(arn) => arn,
        Err(e) => return e.into_response(),
    };
    app.agents.saw(&arn);
    let state = StreamState {
        app: app.clone(),
        cluster: query.cluster,
        arn,
        last: None,
        last_sent: Instant::now(),
        changes: app.view.subscribe(),
    };
    let stream = futures_util::stream::unfold(state, next_line);
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

struct StreamState {
    app: Arc<App>,
    cluster: String,
    arn: String,
    /// The tasks part of the last line sent, to send only changes (and keepalives).
    last: Option<Vec<u8>>,
    last_sent: Instant,
    changes: tokio::sync::watch::Receiver<u64>,
}

async fn next_line(mut st: StreamState) -> Option<(Result<Bytes, std::io::Error>, StreamState)> {
    loop {
        // An instance deregistered meanwhile ends the stream; the agent will find out why.
        if instance_arn(&st.app, &st.cluster, &st.arn).is_err() {
            return None;
        }
        let state = match desired_state(&st.app, &st.cluster, &st.arn) {
            Ok(state) => state,
            Err(e) => return Some((Err(std::io::Error::other(e.to_string())), st)),
        };
        let tasks = serde_json::to_vec(&state.tasks).unwrap_or_default();
        let due = st.last_sent.elapsed() >= KEEPALIVE;
        if st.last.as_ref() != Some(&tasks) || due {
            st.last = Some(tasks);
            st.last_sent = Instant::now();
            let mut line = serde_json::to_vec(&state).unwrap_or_default();
            line.push(b'\n');
            return Some((Ok(Bytes::from(line)), st));
        }
        let wait = KEEPALIVE.saturating_sub(st.last_sent.elapsed());
        tokio::select! {
            changed = st.changes.changed() => if changed.is_err() { return None },
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// `POST /v1/agent/heartbeat`: the agent of an instance is alive.
pub async fn heartbeat(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let beat: Heartbeat = match crate::protocol::parse_input(&body) {
        Ok(beat) => beat,
        Err(e) => return e.into_response(),
    };
    match instance_arn(&app, &beat.cluster, &beat.container_instance) {
        Ok(arn) => {
            app.agents.saw(&arn);
            (axum::http::StatusCode::OK, "{}").into_response()
        }
        Err(e) => e.into_response(),
    }
}

//! The agent gateway: each agent holds a stream of its desired tasks open
//! (`GET /v1/agent/desired`, the protocol `berth_core::gateway` documents) and sends
//! heartbeats (`POST /v1/agent/heartbeat`). A stream wakes only when its own instance's tasks
//! change for its agent (the state cache routes changes per instance), and each wake costs
//! O(tasks on that instance).

use crate::app::App;
use crate::auth::Principal;
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::task_lookup::with_version;
use crate::state::{State as CacheState, TaskEntry, TaskIndex};
use axum::body::{Body, Bytes};
use axum::extract::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use berth_core::arn::id_of;
use berth_core::gateway::{DesiredUpdate, Heartbeat, UpdatedTask, STREAM_PROTOCOL};
use berth_core::model::ContainerInstanceStatus;
use berth_store::keys;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often an unchanged desired state is sent again, so both sides notice a dead stream.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// When each container instance was last heard from, and who wants to hear of an agent that
/// speaks up after a silence.
#[derive(Debug, Default)]
pub struct AgentRegistry {
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    last_seen: HashMap<String, Instant>,
    /// Agents held silent (disconnected): a word from one is news.
    silent: HashSet<String>,
    /// Where news goes: the ARN of an agent heard for the first time since the server
    /// started, or after it was held silent.
    news: Option<tokio::sync::mpsc::UnboundedSender<String>>,
    /// Agents this replica heard from since it last told the others (see
    /// [`crate::replicas::sightings`]).
    heard_here: HashSet<String>,
}

impl AgentRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().expect("registry lock poisoned")
    }

    /// Records that the agent of `instance_arn` is alive now.
    pub fn saw(&self, instance_arn: &str) {
        let mut inner = self.lock();
        if !inner.heard_here.contains(instance_arn) {
            inner.heard_here.insert(instance_arn.to_string());
        }
        Self::seen_at(&mut inner, instance_arn, Instant::now());
    }

    /// Records that another replica heard the agent of `instance_arn` at `at`.
    pub fn saw_elsewhere(&self, instance_arn: &str, at: Instant) {
        Self::seen_at(&mut self.lock(), instance_arn, at);
    }

    /// The agents heard here since the last call.
    pub fn take_heard_here(&self) -> Vec<String> {
        self.lock().heard_here.drain().collect()
    }

    fn seen_at(inner: &mut Registry, instance_arn: &str, at: Instant) {
        let previous = inner.last_seen.get(instance_arn).copied();
        if previous.is_some_and(|seen| seen >= at) {
            return;
        }
        let first = inner
            .last_seen
            .insert(instance_arn.to_string(), at)
            .is_none();
        let was_silent = inner.silent.remove(instance_arn);
        if first || was_silent {
            if let Some(news) = &inner.news {
                let _ = news.send(instance_arn.to_string());
            }
        }
    }

    /// When the agent of `instance_arn` was last heard from.
    pub fn last_seen(&self, instance_arn: &str) -> Option<Instant> {
        self.lock().last_seen.get(instance_arn).copied()
    }

    /// News of agents from now on (see [`Registry::news`]); replaces any earlier listener.
    pub fn news(&self) -> tokio::sync::mpsc::UnboundedReceiver<String> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        self.lock().news = Some(sender);
        receiver
    }

    /// Holds `instance_arn` silent unless it was heard after `since`: its next word is news.
    /// Returns whether it is held (false: it spoke meanwhile).
    pub fn hold_silent(&self, instance_arn: &str, since: Option<Instant>) -> bool {
        let mut inner = self.lock();
        if inner.last_seen.get(instance_arn).copied() != since {
            return false;
        }
        inner.silent.insert(instance_arn.to_string());
        true
    }
}

/// Query of the desired-state stream.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredQuery {
    cluster: String,
    container_instance: String,
    /// The line format the agent reads ([`STREAM_PROTOCOL`]).
    protocol: Option<u32>,
    since: Option<u64>,
}

/// The instance ARN a query names, if the instance is registered and not INACTIVE.
fn instance_arn(app: &App, cluster: &str, reference: &str) -> Result<String, ApiError> {
    let id = id_of(reference, "container-instance").ok_or_else(|| {
        ApiError::invalid_parameter(format!(
            "'{reference}' is not a container instance id or ARN."
        ))
    })?;
    let registered = app
        .snapshot()
        .instance(&keys::instance(cluster, &id))
        .is_some_and(|i| i.value.status != Some(ContainerInstanceStatus::Inactive));
    if registered {
        Ok(app.arns.container_instance(cluster, &id))
    } else {
        Err(ApiError::client(format!(
            "Container instance '{reference}' is not registered in cluster '{cluster}': register it first."
        )))
    }
}

/// The ARN of the instance an agent names, once the caller may act for it: `ecs:Poll` on it
/// is allowed and the caller is the principal that registered it.
pub(crate) fn agent_instance(
    app: &Arc<App>,
    caller: Principal,
    cluster: &str,
    reference: &str,
) -> Result<String, ApiError> {
    let arn = instance_arn(app, cluster, reference)?;
    let ctx = Ctx {
        app: app.clone(),
        caller,
    };
    let context = vec![("ecs:cluster".to_string(), app.arns.cluster(cluster))];
    crate::authz::authorize_as(&ctx, "ecs:Poll", &arn, &context, "AccessDeniedException")?;
    let id = id_of(&arn, "container-instance").unwrap_or_default();
    crate::auth::instances::check_owner(&ctx, cluster, &id)?;
    Ok(arn)
}

/// Task `task` of `cluster`, which must run on the agent's instance `instance_arn`
/// (`AccessDeniedException` otherwise: an agent acts only for its own tasks).
pub(crate) fn task_on_instance(
    app: &App,
    cluster: &str,
    task: &str,
    instance_arn: &str,
) -> Result<Arc<crate::state::TaskEntry>, ApiError> {
    let key = crate::handlers::task_lookup::task_key_of(cluster, task).map_err(|_| {
        ApiError::new(
            "AccessDeniedException",
            format!("Task {task} does not run on container instance {instance_arn}."),
        )
    })?;
    app.snapshot()
        .task(&key)
        .filter(|entry| entry.task.container_instance_arn.as_deref() == Some(instance_arn))
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                "AccessDeniedException",
                format!("Task {task} does not run on container instance {instance_arn}."),
            )
        })
}

/// What one connection has told its agent: the `desired_revision` of each task it holds.
#[derive(Debug, Default)]
pub struct Told {
    tasks: HashMap<String, u64>,
}

impl Told {
    /// What an agent that applied every line up to revision `since` holds: every task
    /// assigned now whose last change for the agent is not newer.
    pub fn since(state: &CacheState, instance_arn: &str, since: u64) -> Told {
        Told {
            tasks: state
                .tasks_by(TaskIndex::Instance, instance_arn, None)
                .filter(|t| t.desired_revision <= since)
                .map(|t| (t.arn().to_string(), t.desired_revision))
                .collect(),
        }
    }
}

/// The next line for an agent that holds `told`, or `None` when it has nothing new (the
/// same tasks, none changed). Costs O(tasks on the instance).
pub fn next_update(
    state: &CacheState,
    instance_arn: &str,
    told: &mut Told,
) -> Option<DesiredUpdate> {
    let assigned: Vec<&Arc<TaskEntry>> = state
        .tasks_by(TaskIndex::Instance, instance_arn, None)
        .collect();
    let held: HashSet<&str> = assigned
        .iter()
        .filter(|t| told.tasks.contains_key(t.arn()))
        .filter_map(|t| t.task.task_definition_arn.as_deref())
        .collect();
    let mut sending: HashSet<&str> = HashSet::new();
    let mut tasks = Vec::new();
    for entry in &assigned {
        if told.tasks.get(entry.arn()) == Some(&entry.desired_revision) {
            continue;
        }
        let td_arn = entry
            .task
            .task_definition_arn
            .as_deref()
            .unwrap_or_default();
        let task_definition = if held.contains(td_arn) || !sending.insert(td_arn) {
            None
        } else {
            match state.definition(td_arn) {
                Some(record) => Some(record.task_definition.clone()),
                None => {
                    tracing::error!(
                        task = entry.arn(),
                        td = td_arn,
                        "gateway: task definition not found"
                    );
                    continue;
                }
            }
        };
        let mut task = with_version(entry.task.clone(), entry.mod_revision);
        // The agent needs what the API never shows: where an awsvpc task's interface goes.
        task.task_network = entry.task.task_network.clone();
        tasks.push(UpdatedTask {
            task,
            task_definition,
        });
    }
    let unchanged = tasks.is_empty() && assigned.len() == told.tasks.len();
    if unchanged {
        return None;
    }
    told.tasks = assigned
        .iter()
        .map(|t| (t.arn().to_string(), t.desired_revision))
        .collect();
    Some(DesiredUpdate {
        revision: state.revision(),
        assigned: assigned.iter().map(|t| t.arn().to_string()).collect(),
        tasks,
        exec: Vec::new(),
    })
}

/// `GET /v1/agent/desired`: the stream of an instance's desired tasks.
pub async fn desired(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
    query: Result<Query<DesiredQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(e) => {
            return ApiError::invalid_parameter(format!(
                "The desired-state stream needs ?cluster=NAME&containerInstance=ID&protocol={STREAM_PROTOCOL}[&since=REVISION]: {e}"
            ))
            .into_response()
        }
    };
    if query.protocol != Some(STREAM_PROTOCOL) {
        let asked = query
            .protocol
            .map_or_else(|| "none".to_string(), |p| p.to_string());
        return ApiError::invalid_parameter(format!(
            "This server speaks desired-state stream protocol {STREAM_PROTOCOL}; the agent asked for protocol {asked}. Run the agent of the same Berth version as the server."
        ))
        .into_response();
    }
    let max_streams = app.config.limits.max_streams_per_principal;
    let Some(slot) = app.streams.open(&caller.arn, max_streams) else {
        return ApiError::new(
            "LimitExceededException",
            format!(
                "{} already holds {max_streams} desired-state streams open, the most one principal may.",
                caller.arn
            ),
        )
        .into_response();
    };
    let arn = match agent_instance(&app, caller, &query.cluster, &query.container_instance) {
        Ok(arn) => arn,
        Err(e) => return e.into_response(),
    };
    app.agents.saw(&arn);
    // Subscribe before the first read, so a change between the two still wakes the stream.
    let changes = app.state.instance_changes(&arn);
    let told = match query.since {
        Some(since) => Told::since(&app.snapshot(), &arn, since),
        None => Told::default(),
    };
    let stream = StreamState {
        app: app.clone(),
        cluster: query.cluster,
        arn,
        told,
        first: true,
        last_sent: Instant::now(),
        changes,
        exec: app.exec.subscribe(),
        closing: app.closing(),
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(stream, next_line);
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
    told: Told,
    /// Whether no line was sent yet: the first one goes out even when it says nothing new.
    first: bool,
    last_sent: Instant,
    changes: tokio::sync::watch::Receiver<u64>,
    /// Wakes when an exec session becomes ready (for this instance or another).
    exec: tokio::sync::watch::Receiver<u64>,
    /// Turns true when the server stops: the stream ends, so a graceful shutdown can finish.
    closing: tokio::sync::watch::Receiver<bool>,
    /// This stream's place among its principal's open streams.
    _slot: crate::limits::StreamSlot,
}

async fn next_line(mut st: StreamState) -> Option<(Result<Bytes, std::io::Error>, StreamState)> {
    loop {
        st.changes.mark_unchanged();
        st.exec.mark_unchanged();
        // An instance deregistered meanwhile ends the stream; the agent will find out why.
        if *st.closing.borrow() || instance_arn(&st.app, &st.cluster, &st.arn).is_err() {
            return None;
        }
        let state = st.app.snapshot();
        let update = next_update(&state, &st.arn, &mut st.told);
        let due = st.first || st.last_sent.elapsed() >= KEEPALIVE;
        let exec = st.app.exec.offers_for(&st.arn);
        let line = match update {
            Some(mut update) => {
                update.exec = exec;
                Some(update)
            }
            None if due || !exec.is_empty() => Some(DesiredUpdate {
                revision: state.revision(),
                assigned: st.told.tasks.keys().cloned().collect(),
                tasks: Vec::new(),
                exec,
            }),
            None => None,
        };
        drop(state);
        if let Some(line) = line {
            st.first = false;
            st.last_sent = Instant::now();
            let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
            bytes.push(b'\n');
            return Some((Ok(Bytes::from(bytes)), st));
        }
        let wait = KEEPALIVE.saturating_sub(st.last_sent.elapsed());
        tokio::select! {
            changed = st.changes.changed() => if changed.is_err() { return None },
            _ = st.exec.changed() => {}
            _ = st.closing.changed() => return None,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Body of `POST /v1/agent/task-protection`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentProtection {
    cluster: String,
    container_instance: String,
    task: String,
    /// Set: UpdateTaskProtection; absent: GetTaskProtection.
    protection_enabled: Option<bool>,
    expires_in_minutes: Option<i32>,
}

/// `POST /v1/agent/task-protection`: scale-in protection asked by a task through its
/// metadata endpoint (`${ECS_AGENT_URI}/task-protection/v1/state`), relayed by its agent. The
/// agent may act only for tasks on its own instance; the answer is UpdateTaskProtection's
/// (or GetTaskProtection's).
pub async fn task_protection(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
    body: Bytes,
) -> Response {
    use crate::handlers::task_protection::{
        get, update, GetTaskProtectionRequest, UpdateTaskProtectionRequest,
    };
    let asked: AgentProtection = match crate::protocol::parse_input(&body) {
        Ok(asked) => asked,
        Err(e) => return e.into_response(),
    };
    let arn = match agent_instance(
        &app,
        caller.clone(),
        &asked.cluster,
        &asked.container_instance,
    ) {
        Ok(arn) => arn,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = task_on_instance(&app, &asked.cluster, &asked.task, &arn) {
        return e.into_response();
    }
    let ctx = Ctx { app, caller };
    let answer = match asked.protection_enabled {
        Some(enabled) => {
            update(
                ctx,
                UpdateTaskProtectionRequest {
                    cluster: Some(asked.cluster),
                    tasks: vec![asked.task],
                    protection_enabled: enabled,
                    expires_in_minutes: asked.expires_in_minutes,
                },
            )
            .await
        }
        None => {
            get(
                ctx,
                GetTaskProtectionRequest {
                    cluster: Some(asked.cluster),
                    tasks: Some(vec![asked.task]),
                },
            )
            .await
        }
    };
    match answer {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/agent/heartbeat`: the agent of an instance is alive.
pub async fn heartbeat(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
    body: Bytes,
) -> Response {
    let beat: Heartbeat = match crate::protocol::parse_input(&body) {
        Ok(beat) => beat,
        Err(e) => return e.into_response(),
    };
    match agent_instance(&app, caller, &beat.cluster, &beat.container_instance) {
        Ok(arn) => {
            app.agents.saw(&arn);
            (axum::http::StatusCode::OK, "{}").into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::STREAM_PROTOCOL;
    use crate::test_support::{now, send, served, Served, Signing};

    /// A served server with one registered instance in cluster `demo`; the instance's id.
    async fn serving_one_instance() -> (Served, String) {
        let served = served().await;
        let app = served.server.app();
        crate::handlers::clusters::ensure_cluster(&app, "demo")
            .await
            .expect("cluster");
        let id = another_instance(&app).await;
        (served, id)
    }

    /// Opens the stream with `query`, signed by the root key, and reads the start of the
    /// answer.
    async fn open_stream(served: &Served, query: &str) -> crate::test_support::Answer {
        let path = format!("/v1/agent/desired?{query}");
        let signing = Signing::As(&served.credentials, now());
        send(served.server.addr(), "GET", &path, &[], b"", signing).await
    }

    /// Registers an instance (1 vCPU, 1 GiB) in cluster `demo`; its id.
    async fn another_instance(app: &std::sync::Arc<crate::app::App>) -> String {
        let registered = crate::test_support::ok(
            app,
            "RegisterContainerInstance",
            serde_json::json!({"cluster": "demo", "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]}),
        )
        .await;
        let arn = registered["containerInstance"]["containerInstanceArn"]
            .as_str()
            .expect("arn");
        arn.rsplit('/').next().expect("id").to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_agent_asks_protection_only_for_tasks_on_its_own_instance() {
        let (served, id) = serving_one_instance().await;
        let app = served.server.app();
        crate::test_support::ok(
            &app,
            "RegisterTaskDefinition",
            serde_json::json!({"family": "web", "containerDefinitions": [
                {"name": "web", "image": "busybox", "memory": 64}]}),
        )
        .await;
        let run = crate::test_support::ok(
            &app,
            "RunTask",
            serde_json::json!({"cluster": "demo", "taskDefinition": "web"}),
        )
        .await;
        let task = run["tasks"][0]["taskArn"]
            .as_str()
            .expect("task")
            .to_string();
        assert!(run["tasks"][0]["containerInstanceArn"]
            .as_str()
            .is_some_and(|arn| arn.ends_with(&id)));
        let other = another_instance(&app).await;
        let ask = |instance: &str| {
            serde_json::json!({"cluster": "demo", "containerInstance": instance, "task": task,
                               "protectionEnabled": true})
            .to_string()
        };
        let signing = || Signing::As(&served.credentials, now());
        let path = berth_core::gateway::TASK_PROTECTION_PATH;
        let json = [("content-type", "application/json")];
        let refused = send(
            served.server.addr(),
            "POST",
            path,
            &json,
            ask(&other).as_bytes(),
            signing(),
        )
        .await;
        assert_eq!(refused.error_type(), "AccessDeniedException", "{refused:?}");
        // Its own instance's task: answered as UpdateTaskProtection answers (a RunTask task is
        // not a service's, so it cannot be protected).
        let answered = send(
            served.server.addr(),
            "POST",
            path,
            &json,
            ask(&id).as_bytes(),
            signing(),
        )
        .await;
        assert_eq!(answered.status, 200, "{answered:?}");
        let body: serde_json::Value = serde_json::from_str(&answered.body).expect("json");
        assert_eq!(body["failures"][0]["reason"], "TASK_NOT_VALID", "{body}");
        served.server.shutdown().await.expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_with_an_agent_stream_open_still_shuts_down() {
        let (served, id) = serving_one_instance().await;
        let query = format!("cluster=demo&containerInstance={id}&protocol={STREAM_PROTOCOL}");
        let answer = open_stream(&served, &query).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        tokio::time::timeout(std::time::Duration::from_secs(10), served.server.shutdown())
            .await
            .expect("the shutdown does not wait for the open stream")
            .expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_principal_holds_no_more_streams_than_its_limit() {
        let (served, id) = serving_one_instance().await;
        let app = served.server.app();
        let _held = app
            .streams
            .open(&served.credentials_arn(), 1)
            .expect("a slot");
        // The limit is the server's (10,000 by default): fill it from the same principal.
        let max = app.config.limits.max_streams_per_principal;
        let _rest: Vec<_> = (1..max)
            .map(|_| {
                app.streams
                    .open(&served.credentials_arn(), max)
                    .expect("slot")
            })
            .collect();
        let query = format!("cluster=demo&containerInstance={id}&protocol={STREAM_PROTOCOL}");
        let answer = open_stream(&served, &query).await;
        assert_eq!(answer.error_type(), "LimitExceededException", "{answer:?}");
        drop(_rest);
        let answer = open_stream(&served, &query).await;
        assert_eq!(
            answer.status, 200,
            "a closed stream frees its slot: {answer:?}"
        );
        served.server.shutdown().await.expect("shutdown");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_agent_of_another_stream_protocol_is_refused_with_the_version_to_run() {
        let (served, id) = serving_one_instance().await;
        for protocol in ["", "&protocol=1", "&protocol=3"] {
            let query = format!("cluster=demo&containerInstance={id}{protocol}");
            let answer = open_stream(&served, &query).await;
            assert_eq!(answer.status, 400, "{protocol}: {answer:?}");
            assert_eq!(answer.error_type(), "InvalidParameterException");
            assert!(
                answer
                    .body
                    .contains("speaks desired-state stream protocol 2"),
                "{answer:?}"
            );
        }
        served.server.shutdown().await.expect("shutdown");
    }
}

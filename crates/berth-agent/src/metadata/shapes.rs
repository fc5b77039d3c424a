//! The answers of the task metadata endpoint, in the JSON shapes the ECS documentation gives
//! for v4 (v3 answers the same): a container (`DockerId`, `Name`, `DockerName`, `Image`,
//! `ImageID`, `Labels`, `DesiredStatus`, `KnownStatus`, `Limits`, `CreatedAt`, `StartedAt`,
//! `Type`, `ContainerARN`, `Networks`, ...), a task (`Cluster`, `TaskARN`, `Family`,
//! `Revision`, `DesiredStatus`, `KnownStatus`, `Containers`, ...), and Docker's stats.

use super::{AgentLink, MetadataEndpoint, Posted, TaskBoard};
use crate::runtime::{ContainerRuntime, ContainerState};
use crate::spec;
use berth_core::model::common::Timestamp;
use berth_core::task_state::TaskStatus;
use hyper::{Method, StatusCode};
use serde_json::{json, Map, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Container,
    Task,
    ContainerStats,
    TaskStats,
}

/// (version, token, route) of a path: `/v4/TOKEN`, `/v4/TOKEN/task`, `/v4/TOKEN/stats`,
/// `/v4/TOKEN/task/stats`, the same under `/v3/`.
fn route(path: &str) -> Option<(&str, Route)> {
    let rest = path
        .strip_prefix("/v4/")
        .or_else(|| path.strip_prefix("/v3/"))?;
    let rest = rest.trim_end_matches('/');
    let (token, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let route = match tail {
        "" => Route::Container,
        "task" => Route::Task,
        "stats" => Route::ContainerStats,
        "task/stats" => Route::TaskStats,
        _ => return None,
    };
    Some((token, route))
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Vec<u8>) {
    (
        status,
        serde_json::to_vec(&json!({ "Error": message })).unwrap_or_default(),
    )
}

/// A request to the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub body: &'a [u8],
}

/// The path of the agent's task protection route under `${ECS_AGENT_URI}`.
const PROTECTION_ROUTE: &str = "/task-protection/v1/state";

/// The answer to `asked`.
pub async fn answer(
    endpoint: &MetadataEndpoint,
    board: &TaskBoard,
    runtime: &dyn ContainerRuntime,
    link: &AgentLink,
    asked: Asked<'_>,
) -> (StatusCode, Vec<u8>) {
    let (method, path) = (asked.method, asked.path);
    if let Some(token) = path
        .strip_prefix("/api/")
        .and_then(|rest| rest.strip_suffix(PROTECTION_ROUTE))
    {
        return protection(endpoint, board, link, token, asked).await;
    }
    if method != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "the metadata endpoint answers GET",
        );
    }
    if let Some(token) = path.strip_prefix(super::credentials::PATH_PREFIX) {
        return match super::credentials::answer(endpoint, board, link, token).await {
            Ok(credentials) => (
                StatusCode::OK,
                serde_json::to_vec(&credentials).unwrap_or_default(),
            ),
            Err((status, message)) => error(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                &message,
            ),
        };
    }
    let Some((token, route)) = route(path) else {
        return error(StatusCode::NOT_FOUND, "no such metadata path");
    };
    let Some((posted, name)) = board.find(endpoint, token) else {
        return error(
            StatusCode::NOT_FOUND,
            "no container of this host has that metadata URI",
        );
    };
    let task_arn = posted.assigned.task.task_arn.clone().unwrap_or_default();
    let mut labels = std::collections::BTreeMap::new();
    labels.insert(spec::LABEL_TASK_ARN.to_string(), task_arn);
    let states = match runtime.list_containers(&labels).await {
        Ok(states) => states,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let value = match route {
        Route::Container => container(&posted, &name, state_of(&states, &name)),
        Route::Task => task(&posted, &states, link.availability_zone.as_deref()),
        Route::ContainerStats => match state_of(&states, &name) {
            Some(state) => match runtime.stats(&state.id).await {
                Ok(stats) => stats,
                Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
            },
            None => Value::Null,
        },
        Route::TaskStats => {
            let mut all = Map::new();
            for state in &states {
                let stats = runtime.stats(&state.id).await.unwrap_or(Value::Null);
                all.insert(state.id.clone(), stats);
            }
            Value::Object(all)
        }
    };
    (
        StatusCode::OK,
        serde_json::to_vec(&value).unwrap_or_default(),
    )
}

/// `${ECS_AGENT_URI}/task-protection/v1/state`: GET reads the task's scale-in protection, PUT
/// (`{"ProtectionEnabled": true, "ExpiresInMinutes": 60}`) sets it, through the server. The
/// answers are the ECS agent's: `{"protection": {...}}`, `{"failure": {...}}` or
/// `{"error": {...}}`.
async fn protection(
    endpoint: &MetadataEndpoint,
    board: &TaskBoard,
    link: &AgentLink,
    token: &str,
    asked: Asked<'_>,
) -> (StatusCode, Vec<u8>) {
    let Some((posted, _)) = board.find(endpoint, token) else {
        return error(
            StatusCode::NOT_FOUND,
            "no container of this host has that agent URI",
        );
    };
    let task_arn = posted.assigned.task.task_arn.clone().unwrap_or_default();
    let (enabled, minutes) = match *asked.method {
        Method::GET => (None, None),
        Method::PUT => {
            let request: Value = match serde_json::from_slice(asked.body) {
                Ok(request) => request,
                Err(e) => {
                    return task_error(
                        StatusCode::BAD_REQUEST,
                        &task_arn,
                        "InvalidRequest",
                        &format!("the body is not JSON: {e}"),
                    )
                }
            };
            let Some(enabled) = request["ProtectionEnabled"].as_bool() else {
                return task_error(
                    StatusCode::BAD_REQUEST,
                    &task_arn,
                    "InvalidRequest",
                    "ProtectionEnabled (true or false) is required",
                );
            };
            let minutes = request["ExpiresInMinutes"]
                .as_i64()
                .map(|m| i32::try_from(m).unwrap_or(i32::MAX));
            (Some(enabled), minutes)
        }
        _ => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "task protection answers GET and PUT",
            )
        }
    };
    let answered = link
        .client
        .task_protection(
            &link.cluster,
            &link.instance_id,
            &task_arn,
            enabled,
            minutes,
        )
        .await;
    let answer = match answered {
        Ok(answer) => answer,
        Err(crate::client::ClientError::Api {
            status,
            kind,
            message,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            return task_error(status, &task_arn, &kind, &message);
        }
        Err(e) => {
            return task_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &task_arn,
                "ServerException",
                &e.to_string(),
            )
        }
    };
    if let Some(failure) = answer["failures"].as_array().and_then(|f| f.first()) {
        let body = json!({"failure": {
            "Arn": failure["arn"],
            "Reason": failure["reason"],
            "Detail": failure["detail"],
        }});
        return (
            StatusCode::OK,
            serde_json::to_vec(&body).unwrap_or_default(),
        );
    }
    let protected = &answer["protectedTasks"][0];
    let expiration = protected["expirationDate"]
        .as_f64()
        .map(|t| rfc3339(epoch(t)));
    let body = json!({"protection": {
        "ExpirationDate": expiration,
        "ProtectionEnabled": protected["protectionEnabled"].as_bool().unwrap_or(false),
        "TaskArn": task_arn,
    }});
    (
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

fn task_error(status: StatusCode, arn: &str, code: &str, message: &str) -> (StatusCode, Vec<u8>) {
    let body = json!({"error": {"Arn": arn, "Code": code, "Message": message}});
    (status, serde_json::to_vec(&body).unwrap_or_default())
}

/// The state of the task's container `name` among `states`.
fn state_of<'a>(states: &'a [ContainerState], name: &str) -> Option<&'a ContainerState> {
    states
        .iter()
        .find(|s| spec::task_container_of(&s.labels).is_some_and(|(_, n)| n == name))
}

/// RFC 3339 UTC with nanoseconds, as ECS writes times.
pub fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    berth_core::civil::iso8601(since.as_secs() as i64, Some(since.subsec_nanos()))
}

fn epoch(seconds: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::ZERO)
}

fn desired(posted: &Posted) -> &'static str {
    match posted.assigned.task.desired_status {
        Some(TaskStatus::Stopped) => "STOPPED",
        _ => "RUNNING",
    }
}

/// A container as v4 shows it.
pub fn container(posted: &Posted, name: &str, state: Option<&ContainerState>) -> Value {
    let def = posted
        .assigned
        .task_definition
        .container_definitions
        .iter()
        .flatten()
        .find(|d| d.name.as_deref() == Some(name));
    let known = posted
        .assigned
        .task
        .containers
        .iter()
        .flatten()
        .find(|c| c.name.as_deref() == Some(name));
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            out.insert(key.to_string(), value);
        }
    };
    put("DockerId", json!(state.map(|s| s.id.clone())));
    put("Name", json!(name));
    put("DockerName", json!(state.map(|s| s.name.clone())));
    put("Image", json!(def.and_then(|d| d.image.clone())));
    put("ImageID", json!(state.and_then(|s| s.image_id.clone())));
    put(
        "Labels",
        json!(state.map(|s| s.labels.clone()).unwrap_or_default()),
    );
    put("DesiredStatus", json!(desired(posted)));
    let status = match state {
        Some(s) if s.running => "RUNNING",
        Some(s) if s.started => "STOPPED",
        Some(_) => "CREATED",
        None => "NONE",
    };
    put("KnownStatus", json!(status));
    put("ExitCode", json!(state.and_then(|s| s.exit_code)));
    if def.is_some_and(|d| d.health_check.is_some()) {
        let health = match state.map(|s| s.health) {
            Some(crate::runtime::Health::Healthy) => "HEALTHY",
            Some(crate::runtime::Health::Unhealthy) => "UNHEALTHY",
            _ => "UNKNOWN",
        };
        put("Health", json!({ "status": health }));
    }
    put(
        "Limits",
        json!({
            "CPU": def.and_then(|d| d.cpu).unwrap_or(0),
            "Memory": def.and_then(|d| d.memory.or(d.memory_reservation)).unwrap_or(0),
        }),
    );
    put(
        "CreatedAt",
        json!(state.and_then(|s| s.created_at).map(rfc3339)),
    );
    put(
        "StartedAt",
        json!(state.and_then(|s| s.started_at).map(rfc3339)),
    );
    put(
        "FinishedAt",
        json!(state.and_then(|s| s.finished_at).map(rfc3339)),
    );
    put("Type", json!("NORMAL"));
    put(
        "ContainerARN",
        json!(known.and_then(|c| c.container_arn.clone())),
    );
    if let Some(log) = def.and_then(|d| d.log_configuration.as_ref()) {
        put("LogDriver", json!(log.log_driver));
        put("LogOptions", json!(log.options.clone().unwrap_or_default()));
    }
    let mode = posted
        .assigned
        .task_definition
        .network_mode
        .clone()
        .unwrap_or_else(|| "bridge".into());
    let networks: Vec<Value> = state
        .map(|s| s.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(_, ip)| json!({"NetworkMode": mode, "IPv4Addresses": [ip]}))
        .collect();
    let networks = if networks.is_empty() {
        vec![json!({"NetworkMode": mode})]
    } else {
        networks
    };
    put("Networks", json!(networks));
    let ports: Vec<Value> = state
        .map(|s| s.ports.clone())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            json!({
                "ContainerPort": p.container_port,
                "Protocol": p.protocol,
                "HostPort": p.host_port,
                "HostIp": p.host_ip,
            })
        })
        .collect();
    if !ports.is_empty() {
        put("Ports", json!(ports));
    }
    Value::Object(out)
}

/// The task as v4 shows it, with every container.
pub fn task(posted: &Posted, states: &[ContainerState], zone: Option<&str>) -> Value {
    let task = &posted.assigned.task;
    let td = &posted.assigned.task_definition;
    let cluster = task
        .cluster_arn
        .as_deref()
        .and_then(|arn| arn.rsplit('/').next())
        .unwrap_or_default();
    let containers: Vec<Value> = td
        .container_definitions
        .iter()
        .flatten()
        .filter_map(|d| d.name.as_deref())
        .map(|name| container(posted, name, state_of(states, name)))
        .collect();
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            out.insert(key.to_string(), value);
        }
    };
    put("Cluster", json!(cluster));
    put("TaskARN", json!(task.task_arn));
    put("Family", json!(td.family));
    put("Revision", json!(td.revision.map(|r| r.to_string())));
    put(
        "ServiceName",
        json!(task
            .group
            .as_deref()
            .and_then(|g| g.strip_prefix("service:"))),
    );
    put("DesiredStatus", json!(desired(posted)));
    put("KnownStatus", json!(posted.known.as_str()));
    let cpu = td.cpu.as_deref().and_then(|c| c.parse::<f64>().ok());
    let memory = td.memory.as_deref().and_then(|m| m.parse::<i64>().ok());
    if cpu.is_some() || memory.is_some() {
        let mut limits = Map::new();
        if let Some(cpu) = cpu {
            limits.insert("CPU".into(), json!(cpu / 1024.0));
        }
        if let Some(memory) = memory {
            limits.insert("Memory".into(), json!(memory));
        }
        put("Limits", Value::Object(limits));
    }
    put(
        "PullStartedAt",
        json!(task.pull_started_at.map(|t| rfc3339(epoch(t)))),
    );
    put(
        "PullStoppedAt",
        json!(task.pull_stopped_at.map(|t| rfc3339(epoch(t)))),
    );
    put(
        "LaunchType",
        json!(task.launch_type.clone().unwrap_or_else(|| "EC2".into())),
    );
    put("AvailabilityZone", json!(zone));
    put("Containers", json!(containers));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_as_ecs_documents_them() {
        assert_eq!(route("/v4/abc"), Some(("abc", Route::Container)));
        assert_eq!(route("/v4/abc/"), Some(("abc", Route::Container)));
        assert_eq!(route("/v4/abc/task"), Some(("abc", Route::Task)));
        assert_eq!(route("/v3/abc/stats"), Some(("abc", Route::ContainerStats)));
        assert_eq!(route("/v4/abc/task/stats"), Some(("abc", Route::TaskStats)));
        assert_eq!(route("/v4/abc/other"), None);
        assert_eq!(route("/v2/metadata"), None);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let t = UNIX_EPOCH + Duration::new(1_704_067_201, 5);
        assert_eq!(rfc3339(t), "2024-01-01T00:00:01.000000005Z");
    }
}

//! The task metadata endpoint (v4, and v3 with the same answers), served by the agent as ECS
//! serves it: each container gets `ECS_CONTAINER_METADATA_URI_V4` (and `ECS_CONTAINER_METADATA_URI`)
//! naming `http://ADDR/v4/TOKEN`, and `${uri}`, `${uri}/task`, `${uri}/stats` and
//! `${uri}/task/stats` answer with ECS's documented JSON shapes (`shapes`).
//!
//! - **Where.** The agent listens on the host's address on Docker's default bridge (its
//!   gateway, e.g. 172.17.0.1), which bridge containers reach through their default route and
//!   host-network containers as a local address. The port is ECS's 51679 unless taken (several
//!   agents on one host): then another, kept in the data dir so that containers outlive an agent
//!   restart with a URI that still works.
//! - **Who sees what.** TOKEN is an HMAC of the task ARN and container name under a key kept in
//!   the agent's data dir (0600): a container knows its own and can find no other, so it sees
//!   only its own task. It survives agent restarts, so re-adopted containers keep working.

pub mod credentials;
pub mod shapes;

use crate::runtime::ContainerRuntime;
use berth_core::gateway::AssignedTask;
use berth_core::task_state::TaskStatus;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// ECS's port for the endpoint on the host.
pub const DEFAULT_PORT: u16 = 51679;
/// The key tokens are made with, in the data dir.
pub const KEY_FILE: &str = "metadata.key";
/// The port last served on, in the data dir.
pub const PORT_FILE: &str = "metadata.port";

/// The endpoint's address and the key its tokens are made with.
#[derive(Clone)]
pub struct MetadataEndpoint {
    /// `http://ADDR:PORT`.
    base: String,
    key: [u8; 32],
    /// `http://169.254.170.2:PORT` of the task credentials endpoint, when it is served.
    credentials_base: Option<String>,
}

impl std::fmt::Debug for MetadataEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataEndpoint")
            .field("base", &self.base)
            .finish()
    }
}

impl MetadataEndpoint {
    pub fn new(addr: SocketAddr, key: [u8; 32]) -> MetadataEndpoint {
        MetadataEndpoint {
            base: format!("http://{addr}"),
            key,
            credentials_base: None,
        }
    }

    /// The endpoint, also serving task credentials on `addr` (`credentials`).
    pub fn with_credentials(mut self, addr: SocketAddr) -> MetadataEndpoint {
        self.credentials_base = Some(format!("http://{addr}"));
        self
    }

    /// Whether it serves task credentials.
    pub fn serves_credentials(&self) -> bool {
        self.credentials_base.is_some()
    }

    /// The token of task `task_arn`'s credentials: 40 hex digits.
    pub fn credentials_token(&self, task_arn: &str) -> String {
        let mac = berth_core::sigv4::hmac(&self.key, format!("{task_arn}\ncredentials").as_bytes());
        mac[..20].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The token of container `container` of task `task_arn`: 40 hex digits.
    pub fn token(&self, task_arn: &str, container: &str) -> String {
        let mac = berth_core::sigv4::hmac(&self.key, format!("{task_arn}\n{container}").as_bytes());
        mac[..20].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The environment ECS gives the container: the v4 and v3 URIs, the agent's URI (task
    /// scale-in protection) and, for a task with a role, its credentials' URI.
    pub fn environment(
        &self,
        task_arn: &str,
        container: &str,
        has_role: bool,
    ) -> Vec<(String, String)> {
        let token = self.token(task_arn, container);
        let credentials = self
            .credentials_base
            .as_ref()
            .filter(|_| has_role)
            .map(|base| {
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
                    format!(
                        "{base}{}{}",
                        credentials::PATH_PREFIX,
                        self.credentials_token(task_arn)
                    ),
                )
            });
        let mut env = vec![
            ("ECS_AGENT_URI".into(), format!("{}/api/{token}", self.base)),
            (
                "ECS_CONTAINER_METADATA_URI_V4".into(),
                format!("{}/v4/{token}", self.base),
            ),
            (
                "ECS_CONTAINER_METADATA_URI".into(),
                format!("{}/v3/{token}", self.base),
            ),
        ];
        env.extend(credentials);
        env
    }
}

/// The tasks of this instance as the endpoint shows them: what the server assigned, and the
/// task status the agent reached.
#[derive(Debug, Default)]
pub struct TaskBoard {
    tasks: RwLock<HashMap<String, Posted>>,
}

/// One task on the board.
#[derive(Debug, Clone)]
pub struct Posted {
    pub assigned: AssignedTask,
    pub known: TaskStatus,
}

impl TaskBoard {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Posted>> {
        self.tasks.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Posts (or refreshes) what the server says of a task.
    pub fn post(&self, assigned: &AssignedTask) {
        let Some(arn) = assigned.task.task_arn.clone() else {
            return;
        };
        let mut tasks = self.write();
        let known = tasks
            .get(&arn)
            .map_or_else(|| TaskStatus::of(&assigned.task), |p| p.known);
        tasks.insert(
            arn,
            Posted {
                assigned: assigned.clone(),
                known,
            },
        );
    }

    /// Records the status the agent brought task `arn` to.
    pub fn known(&self, arn: &str, status: TaskStatus) {
        if let Some(posted) = self.write().get_mut(arn) {
            posted.known = status;
        }
    }

    /// Takes task `arn` off the board.
    pub fn remove(&self, arn: &str) {
        self.write().remove(arn);
    }

    /// The first task whose ARN `matches` says.
    pub fn find_task(&self, matches: impl Fn(&str) -> bool) -> Option<Posted> {
        let tasks = self.tasks.read().unwrap_or_else(|p| p.into_inner());
        tasks
            .iter()
            .find(|(arn, _)| matches(arn))
            .map(|(_, posted)| posted.clone())
    }

    /// The task and container name `token` belongs to.
    pub fn find(&self, endpoint: &MetadataEndpoint, token: &str) -> Option<(Posted, String)> {
        let tasks = self.tasks.read().unwrap_or_else(|p| p.into_inner());
        for (arn, posted) in tasks.iter() {
            for def in posted
                .assigned
                .task_definition
                .container_definitions
                .iter()
                .flatten()
            {
                let name = def.name.as_deref().unwrap_or_default();
                if endpoint.token(arn, name) == token {
                    return Some((posted.clone(), name.to_string()));
                }
            }
        }
        None
    }
}

/// How the endpoint reaches the server for what tasks ask of it (scale-in protection).
#[derive(Debug, Clone)]
pub struct AgentLink {
    pub client: crate::client::ServerClient,
    pub cluster: String,
    /// This container instance's id.
    pub instance_id: String,
    /// Its `ecs.availability-zone`, if it has one.
    pub availability_zone: Option<String>,
    /// The task role credentials fetched for its tasks.
    pub credentials: std::sync::Arc<credentials::Cache>,
}

/// The endpoint's key from `dir`, made (0600) on first use.
pub fn load_key(dir: &Path) -> std::io::Result<[u8; 32]> {
    let path = dir.join(KEY_FILE);
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return Ok(key);
        }
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
    crate::identity::write_private(&path, &key)?;
    Ok(key)
}

/// Binds the endpoint's listener on `ip`: the port this data dir served on before, else
/// ECS's, else any; the port is kept in the data dir.
pub async fn bind(dir: &Path, ip: IpAddr) -> std::io::Result<tokio::net::TcpListener> {
    crate::identity::bind_kept_port(dir, PORT_FILE, SocketAddr::new(ip, DEFAULT_PORT), true).await
}

/// Serves the endpoint on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    endpoint: Arc<MetadataEndpoint>,
    board: Arc<TaskBoard>,
    runtime: Arc<dyn ContainerRuntime>,
    link: Arc<AgentLink>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let shared = (
            endpoint.clone(),
            board.clone(),
            runtime.clone(),
            link.clone(),
        );
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let (endpoint, board, runtime, link) = shared.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            respond(&endpoint, &board, runtime.as_ref(), &link, request).await,
                        )
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(tcp);
            // Simple clients (`nc`, HTTP/1.0) close their side once the request is sent; the
            // answer still goes out.
            let _ = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .serve_connection(io, service)
                .await;
        });
    }
}

/// The response to one request (its body read, at most 64 KiB).
async fn respond(
    endpoint: &MetadataEndpoint,
    board: &TaskBoard,
    runtime: &dyn ContainerRuntime,
    link: &AgentLink,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    use http_body_util::BodyExt;
    let (parts, body) = request.into_parts();
    let body = http_body_util::Limited::new(body, 64 * 1024)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let asked = shapes::Asked {
        method: &parts.method,
        path: parts.uri.path(),
        body: &body,
    };
    let (status, body) = shapes::answer(endpoint, board, runtime, link, asked).await;
    let mut response = hyper::Response::new(http_body_util::Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_per_container_and_per_key() {
        let addr: SocketAddr = "172.17.0.1:51679".parse().expect("addr");
        let one = MetadataEndpoint::new(addr, [1; 32]);
        let other = MetadataEndpoint::new(addr, [2; 32]);
        let token = one.token("arn:task/a", "web");
        assert_eq!(token.len(), 40);
        assert_eq!(token, one.token("arn:task/a", "web"), "stable");
        assert_ne!(token, one.token("arn:task/a", "sidecar"));
        assert_ne!(token, one.token("arn:task/b", "web"));
        assert_ne!(token, other.token("arn:task/a", "web"));
        let env = one.environment("arn:task/a", "web", true);
        assert_eq!(
            env,
            vec![
                (
                    "ECS_AGENT_URI".to_string(),
                    format!("http://172.17.0.1:51679/api/{token}")
                ),
                (
                    "ECS_CONTAINER_METADATA_URI_V4".to_string(),
                    format!("http://172.17.0.1:51679/v4/{token}")
                ),
                (
                    "ECS_CONTAINER_METADATA_URI".to_string(),
                    format!("http://172.17.0.1:51679/v3/{token}")
                ),
            ],
            "no credentials URI where none is served"
        );
    }

    #[test]
    fn a_task_with_a_role_gets_its_credentials_uri_and_no_other_task_can_compute_it() {
        let addr: SocketAddr = "172.17.0.1:51679".parse().expect("addr");
        let creds: SocketAddr = "169.254.170.2:80".parse().expect("addr");
        let endpoint = MetadataEndpoint::new(addr, [1; 32]).with_credentials(creds);
        let token = endpoint.credentials_token("arn:task/a");
        assert_eq!(token.len(), 40);
        assert_ne!(token, endpoint.credentials_token("arn:task/b"));
        assert_ne!(token, endpoint.token("arn:task/a", "web"));
        let env = endpoint.environment("arn:task/a", "web", true);
        assert!(env.contains(&(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
            format!("http://169.254.170.2:80/v2/credentials/{token}")
        )));
        let without_role = endpoint.environment("arn:task/a", "web", false);
        assert!(!without_role
            .iter()
            .any(|(name, _)| name.starts_with("AWS_CONTAINER_CREDENTIALS")));
    }

    #[tokio::test]
    async fn the_key_and_the_port_are_kept_in_the_data_dir() {
        let dir = tempfile::tempdir().expect("dir");
        let key = load_key(dir.path()).expect("key");
        assert_eq!(load_key(dir.path()).expect("key again"), key);
        let first = bind(dir.path(), "127.0.0.1".parse().expect("ip"))
            .await
            .expect("bound");
        let port = first.local_addr().expect("addr").port();
        drop(first);
        let again = bind(dir.path(), "127.0.0.1".parse().expect("ip"))
            .await
            .expect("bound again");
        assert_eq!(again.local_addr().expect("addr").port(), port);
    }
}

//! The task credentials endpoint: containers of a task with a role (`taskRoleArn`) get
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI`, which the AWS SDKs read, naming
//! `http://169.254.170.2:PORT/v2/credentials/TOKEN`; the agent answers with the role's
//! temporary credentials, which it asks the server for and renews well before they expire.
//!
//! - **Where.** The SDKs take credentials only from a loopback address or ECS's link-local
//!   169.254.170.2. The agent puts 169.254.170.2/32 on the host's loopback interface (`ip addr
//!   add`; the host's routes and firewall are left alone) and listens there, on port 80 as ECS
//!   does unless it is taken (several agents on one host), then another, kept in the data dir
//!   (`credentials.port`). Bridge containers reach it through their default route (the host
//!   delivers packets for any of its addresses); host-network containers directly.
//! - **Who sees what.** TOKEN is an HMAC of the task ARN under the metadata key: a container
//!   knows its own task's and can compute no other.

use super::{AgentLink, MetadataEndpoint, TaskBoard};
use berth_core::gateway::{AgentTaskRequest, TaskCredentials, TASK_CREDENTIALS_PATH};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// ECS's address for the endpoint.
pub const LINK_LOCAL: Ipv4Addr = Ipv4Addr::new(169, 254, 170, 2);
/// The port last served on, in the data dir.
pub const PORT_FILE: &str = "credentials.port";
/// The path of a task's credentials under the endpoint.
pub const PATH_PREFIX: &str = "/v2/credentials/";
/// Credentials with less than this left are renewed before they are handed out.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 60);

/// Credentials fetched from the server, by task ARN, with when they must be renewed.
#[derive(Debug, Default)]
pub struct Cache {
    tasks: Mutex<HashMap<String, (TaskCredentials, Instant)>>,
}

/// Binds the endpoint on 169.254.170.2, putting that address on the loopback interface
/// first when the host lacks it.
pub async fn bind(dir: &Path) -> std::io::Result<tokio::net::TcpListener> {
    let addr = SocketAddr::new(IpAddr::V4(LINK_LOCAL), 80);
    match crate::identity::bind_kept_port(dir, PORT_FILE, addr, true).await {
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            add_link_local()?;
            crate::identity::bind_kept_port(dir, PORT_FILE, addr, true).await
        }
        bound => bound,
    }
}

/// `ip addr add 169.254.170.2/32 dev lo` (an address already there is no error).
fn add_link_local() -> std::io::Result<()> {
    let output = std::process::Command::new("ip")
        .args(["addr", "add", &format!("{LINK_LOCAL}/32"), "dev", "lo"])
        .output()
        .map_err(|e| {
            std::io::Error::other(format!(
                "cannot run `ip` to add {LINK_LOCAL} to the loopback interface (install iproute2): {e}"
            ))
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() || stderr.contains("File exists") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "cannot add {LINK_LOCAL} to the loopback interface (the agent must run as root): {}",
            stderr.trim()
        )))
    }
}

/// The task role of a posted task: its override, else its definition's.
pub fn task_role(
    task: &berth_core::model::task::Task,
    definition: &berth_core::model::task_definition::TaskDefinition,
) -> Option<String> {
    task.overrides
        .as_ref()
        .and_then(|o| o.task_role_arn.clone())
        .or_else(|| definition.task_role_arn.clone())
        .filter(|arn| !arn.is_empty())
}

/// The answer to `GET /v2/credentials/TOKEN`: the credentials of the task whose token it is.
pub async fn answer(
    endpoint: &MetadataEndpoint,
    board: &TaskBoard,
    link: &AgentLink,
    token: &str,
) -> Result<TaskCredentials, (u16, String)> {
    let Some(posted) = board.find_task(|arn| endpoint.credentials_token(arn) == token) else {
        return Err((404, "no task of this host has those credentials".into()));
    };
    let arn = posted.assigned.task.task_arn.clone().unwrap_or_default();
    if task_role(&posted.assigned.task, &posted.assigned.task_definition).is_none() {
        return Err((404, "the task has no task role".into()));
    }
    if let Some((kept, renew_at)) = link
        .credentials
        .tasks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&arn)
    {
        if Instant::now() < *renew_at {
            return Ok(kept.clone());
        }
    }
    let asked = AgentTaskRequest {
        cluster: link.cluster.clone(),
        container_instance: link.instance_id.clone(),
        task: arn.clone(),
    };
    let fresh: TaskCredentials = link
        .client
        .post(TASK_CREDENTIALS_PATH, &asked)
        .await
        .map_err(|e| (502, format!("the server gave no credentials: {e}")))?;
    let left = expiration_seconds(&fresh.expiration)
        .map(|at| at - now_seconds())
        .unwrap_or(0)
        .max(0) as u64;
    let renew_at = Instant::now() + Duration::from_secs(left).saturating_sub(RENEW_BEFORE);
    link.credentials
        .tasks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(arn, (fresh.clone(), renew_at));
    Ok(fresh)
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Epoch seconds of an RFC 3339 UTC time (`2026-12-01T06:00:00Z`).
fn expiration_seconds(text: &str) -> Option<i64> {
    crate::runtime::docker::epoch_seconds(text).map(|s| s as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiration_reads_as_epoch_seconds() {
        assert_eq!(expiration_seconds("1970-01-01T01:00:00Z"), Some(3600));
        assert_eq!(expiration_seconds("soon"), None);
    }

    #[test]
    fn a_task_role_comes_from_the_override_first() {
        let definition: berth_core::model::task_definition::TaskDefinition =
            serde_json::from_value(serde_json::json!({"taskRoleArn": "arn:aws:iam::0:role/def"}))
                .expect("definition");
        let mut task: berth_core::model::task::Task =
            serde_json::from_value(serde_json::json!({})).expect("task");
        assert_eq!(
            task_role(&task, &definition).as_deref(),
            Some("arn:aws:iam::0:role/def")
        );
        task.overrides = Some(
            serde_json::from_value(serde_json::json!({"taskRoleArn": "arn:aws:iam::0:role/over"}))
                .expect("overrides"),
        );
        assert_eq!(
            task_role(&task, &definition).as_deref(),
            Some("arn:aws:iam::0:role/over")
        );
        let bare: berth_core::model::task_definition::TaskDefinition =
            serde_json::from_value(serde_json::json!({})).expect("definition");
        assert_eq!(
            task_role(
                &serde_json::from_value(serde_json::json!({})).expect("task"),
                &bare
            ),
            None
        );
    }
}

//! A task's secrets as it starts (`secrets`, `logConfiguration.secretOptions`,
//! `repositoryCredentials`): asked of the server, which resolves them with the task's
//! execution role for this agent only, and put into the containers' environment, log options
//! and pulls. They are kept in the runner's memory only, never on disk.
//!
//! Beyond ECS, a container labelled `com.berth.secret-files=true` gets its `secrets` as files
//! instead of environment variables (which leak into child processes and crash dumps): one
//! file per secret under `/run/secrets` in the container, mode 0400, owned by the container's
//! numeric `user` (root otherwise), kept in the host's memory (a tmpfs under `/dev/shm`,
//! bind-mounted read-only) and removed when the task stops.

use super::runner::{StopCause, TaskRunner};
use super::slot::Phase;
use crate::client::ClientError;
use crate::registry::{registry_of, RegistryAuth};
use berth_core::gateway::{AgentTaskRequest, TaskSecrets, TASK_SECRETS_PATH};
use berth_core::model::task_definition::TaskDefinition;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The Docker label that asks for secrets as files.
pub const SECRET_FILES_LABEL: &str = "com.berth.secret-files";
/// Where the files of every task live on the host (a tmpfs).
pub const SECRETS_ROOT: &str = "/dev/shm/berth-secrets";
/// Where a container finds its files.
pub const SECRETS_MOUNT: &str = "/run/secrets";

/// How long asking for secrets may wait for an unreachable server.
const ASK_WINDOW: Duration = Duration::from_secs(30);

/// Whether any container of `td` has secrets to resolve.
pub fn has_secrets(td: &TaskDefinition) -> bool {
    td.container_definitions.iter().flatten().any(|def| {
        def.secrets.as_ref().is_some_and(|s| !s.is_empty())
            || def.repository_credentials.is_some()
            || def
                .log_configuration
                .as_ref()
                .and_then(|l| l.secret_options.as_ref())
                .is_some_and(|s| !s.is_empty())
    })
}

impl TaskRunner {
    /// Asks for the task's secrets (when it has any) and puts them into the specs of the
    /// containers still to be created; `Err` stops the task with ECS's wording.
    pub(super) async fn apply_secrets(&mut self) -> Result<(), StopCause> {
        if !has_secrets(&self.assigned.task_definition)
            || self.slots.iter().all(|s| s.phase != Phase::NotCreated)
        {
            return Ok(());
        }
        let failed = self.initialization_failure();
        let Some(link) = self.shared.config.server.clone() else {
            return Err(failed(
                "unable to pull secrets or registry auth: this agent has no link to the server"
                    .into(),
            ));
        };
        let asked = AgentTaskRequest {
            cluster: link.cluster.clone(),
            container_instance: link.instance_id.clone(),
            task: self.task_arn.clone(),
        };
        let began = tokio::time::Instant::now();
        let mut backoff = crate::backoff::Backoff::default();
        let secrets: TaskSecrets = loop {
            match link.client.post(TASK_SECRETS_PATH, &asked).await {
                Ok(secrets) => break secrets,
                Err(e) if e.is_retryable() && began.elapsed() < ASK_WINDOW => {
                    self.check_stop()?;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(ClientError::Api { message, .. }) => return Err(failed(message)),
                Err(e) => {
                    return Err(failed(format!(
                        "unable to pull secrets or registry auth: {e}"
                    )))
                }
            }
        };
        for container in secrets.containers {
            let Some(slot) = self.slots.iter_mut().find(|s| s.name == container.name) else {
                continue;
            };
            let Some(spec) = slot.spec.as_mut() else {
                continue;
            };
            let as_files = slot
                .def
                .docker_labels
                .as_ref()
                .and_then(|l| l.get(SECRET_FILES_LABEL))
                .is_some_and(|v| v == "true");
            if as_files {
                let dir = files_dir(&self.task_arn, &slot.name);
                let owner = numeric_user(slot.def.user.as_deref());
                write_files(&dir, &container.environment, owner).map_err(|e| {
                    failed(format!(
                        "cannot write the secrets of container {} as files: {e}",
                        slot.name
                    ))
                })?;
                spec.mounts.push(crate::runtime::MountSpec::Bind {
                    host_path: dir.display().to_string(),
                    container_path: SECRETS_MOUNT.to_string(),
                    read_only: true,
                });
            } else {
                for (name, value) in container.environment {
                    spec.env.retain(|(n, _)| *n != name);
                    spec.env.push((name, value));
                }
            }
            spec.log_options.extend(container.log_options);
            slot.registry_auth = container.registry.map(|(username, password)| RegistryAuth {
                username,
                password,
                server: registry_of(&spec.image),
            });
        }
        Ok(())
    }
}

/// The host directory of container `container`'s secret files.
fn files_dir(task_arn: &str, container: &str) -> PathBuf {
    let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    Path::new(SECRETS_ROOT).join(task_id).join(container)
}

/// The uid of a container `user` given as a number (`1000` or `1000:1000`).
fn numeric_user(user: Option<&str>) -> Option<u32> {
    user?.split(':').next()?.parse().ok()
}

/// Whether `path` lies on a tmpfs (memory, never disk), from `/proc/mounts`.
fn on_tmpfs(path: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return false;
    };
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            Some((point, kind))
        })
        .filter(|(point, _)| path.starts_with(point))
        .max_by_key(|(point, _)| point.len())
        .is_some_and(|(_, kind)| kind == "tmpfs")
}

/// Writes one file per secret into `dir` (0500, files 0400, owned by `owner` or root).
fn write_files(
    dir: &Path,
    secrets: &BTreeMap<String, String>,
    owner: Option<u32>,
) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    if !on_tmpfs(Path::new(SECRETS_ROOT).parent().unwrap_or(Path::new("/"))) {
        return Err(std::io::Error::other(format!(
            "{SECRETS_ROOT} is not on a tmpfs, and secrets are never written to disk"
        )));
    }
    if let Some(bad) = secrets.keys().find(|name| {
        name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    }) {
        return Err(std::io::Error::other(format!("'{bad}' cannot name a file")));
    }
    if let Some(task_dir) = dir.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(task_dir)?;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    for (name, value) in secrets {
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&path)?;
        std::io::Write::write_all(&mut file, value.as_bytes())?;
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&path, Some(uid), None)?;
        }
    }
    if let Some(uid) = owner {
        std::os::unix::fs::chown(dir, Some(uid), None)?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500))
}

/// Removes the secret files of task `task_arn` (none is no error).
pub fn remove_files(task_arn: &str) {
    let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    let dir = Path::new(SECRETS_ROOT).join(task_id);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(task = %task_arn, "cannot remove the task's secret files: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_numeric_user_owns_the_files() {
        assert_eq!(numeric_user(Some("1000")), Some(1000));
        assert_eq!(numeric_user(Some("1000:1000")), Some(1000));
        assert_eq!(numeric_user(Some("nginx")), None);
        assert_eq!(numeric_user(None), None);
    }

    #[test]
    fn secret_files_are_written_0400_in_memory_and_removed_with_the_task() {
        let arn = format!(
            "arn:aws:ecs:us-east-1:0:task/c/{}",
            uuid::Uuid::new_v4().simple()
        );
        let dir = files_dir(&arn, "app");
        let secrets = BTreeMap::from([("DB_PASSWORD".to_string(), "hunter2".to_string())]);
        write_files(&dir, &secrets, None).expect("written");
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(dir.join("DB_PASSWORD")).expect("file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o400);
        assert_eq!(
            std::fs::read_to_string(dir.join("DB_PASSWORD")).expect("read"),
            "hunter2"
        );
        assert!(on_tmpfs(&dir), "under /dev/shm");
        let bad = BTreeMap::from([("../x".to_string(), "v".to_string())]);
        assert!(write_files(&files_dir(&arn, "bad"), &bad, None).is_err());
        remove_files(&arn);
        assert!(!dir.exists());
        remove_files(&arn);
    }
}

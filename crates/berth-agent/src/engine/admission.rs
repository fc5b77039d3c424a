//! The agent's own admission check, made before it creates any container of a task: the
//! server already checked the cluster's tags, but a host's owner decides what runs as root on
//! it (ECS's `ECS_DISABLE_PRIVILEGED`, Nomad's `allow_privileged`). Host bind mounts are
//! judged by where they lead on this host, symlinks followed, so a link under an allowed
//! directory cannot reach outside it.

use super::runner::{StopCause, TaskRunner};
use super::slot::Phase;
use berth_core::model::task_definition::TaskDefinition;
use berth_core::task_definition::admission::{check, normalize_path, Refusal};
use std::borrow::Cow;
use std::path::PathBuf;

impl TaskRunner {
    /// Refuses the task, before any of its containers is created, when its definition asks
    /// for what this agent does not allow; the reason names each refused field and the flag
    /// that would allow it. A task whose containers all exist already (re-adopted) creates
    /// nothing and is let be.
    pub(super) fn admit(&self) -> Result<(), StopCause> {
        if self.slots.iter().all(|s| s.phase != Phase::NotCreated) {
            return Ok(());
        }
        self.credentials_served()?;
        let td = with_bind_sources_resolved(&self.assigned.task_definition, real_path);
        let refusals = check(&td, &self.shared.config.allowances);
        let Some(first) = refusals.first() else {
            return Ok(());
        };
        let container = container_of(first)
            .and_then(|i| self.slots.get(i))
            .or_else(|| self.slots.first())
            .map(|slot| slot.name.clone())
            .unwrap_or_default();
        let messages: Vec<String> = refusals.iter().map(Refusal::agent_message).collect();
        Err(StopCause::Failed {
            container,
            reason: format!("CannotCreateContainerError: {}", messages.join(" ")),
        })
    }
}

impl TaskRunner {
    /// A task with a role needs the task credentials endpoint: without it, its containers
    /// would run with no credentials and fail later in ways that name nothing.
    fn credentials_served(&self) -> Result<(), StopCause> {
        let has_role = crate::metadata::credentials::task_role(
            &self.assigned.task,
            &self.assigned.task_definition,
        )
        .is_some();
        let served = self
            .shared
            .config
            .metadata
            .as_ref()
            .is_some_and(|m| m.serves_credentials());
        if !has_role || served {
            return Ok(());
        }
        Err(StopCause::Failed {
            container: self.slots.first().map(|s| s.name.clone()).unwrap_or_default(),
            reason: "ResourceInitializationError: unable to provide the task role's credentials: \
                     this agent serves no task credentials endpoint on 169.254.170.2 (its log says why)"
                .into(),
        })
    }
}

/// The index of the container a refusal is about, when it is about one.
fn container_of(refusal: &Refusal) -> Option<usize> {
    let rest = refusal.field.strip_prefix("containerDefinitions[")?;
    rest.split_once(']')?.0.parse().ok()
}

/// `td` with each host volume's `sourcePath` replaced by where `resolve` says it leads (the
/// path unchanged when it cannot tell).
pub(crate) fn with_bind_sources_resolved(
    td: &TaskDefinition,
    resolve: impl Fn(&str) -> Option<String>,
) -> Cow<'_, TaskDefinition> {
    let mut td = Cow::Borrowed(td);
    let count = td.volumes.as_ref().map_or(0, Vec::len);
    for i in 0..count {
        let source = td.volumes.as_ref().and_then(|v| {
            v[i].host
                .as_ref()
                .and_then(|h| h.source_path.clone())
                .filter(|p| !p.is_empty())
        });
        let Some(source) = source else { continue };
        let Some(real) = resolve(&source) else {
            continue;
        };
        if real != source {
            let host = td
                .to_mut()
                .volumes
                .as_mut()
                .and_then(|v| v[i].host.as_mut());
            if let Some(host) = host {
                host.source_path = Some(real);
            }
        }
    }
    td
}

/// Where the host path `path` leads on this host: its longest existing leading part with every
/// symlink resolved, followed by the rest (which Docker creates as directories). `None` when
/// the path is not absolute.
pub(crate) fn real_path(path: &str) -> Option<String> {
    let normal = normalize_path(path)?;
    let mut existing = PathBuf::from(&normal);
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut full = real;
            for part in rest.iter().rev() {
                full.push(part);
            }
            return Some(full.to_string_lossy().into_owned());
        }
        if existing.symlink_metadata().is_ok() {
            // There but not resolvable (a dangling link, no permission): Docker cannot bind
            // it either; judge the path as written.
            return Some(normal);
        }
        match existing.file_name() {
            Some(name) => {
                rest.push(name.to_os_string());
                existing.pop();
            }
            None => return Some(normal),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_symlink_under_an_allowed_directory_is_judged_by_where_it_leads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("real tempdir");
        let allowed = root.join("allowed");
        let outside = root.join("outside");
        std::fs::create_dir_all(&allowed).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, allowed.join("link")).expect("symlink");
        let text = |p: &Path| p.to_string_lossy().into_owned();

        assert_eq!(
            real_path(&text(&allowed.join("link/sub/new"))),
            Some(text(&outside.join("sub/new"))),
            "the link is followed; the missing rest is kept"
        );
        assert_eq!(
            real_path(&text(&allowed.join("data"))),
            Some(text(&allowed.join("data")))
        );
        assert_eq!(
            real_path(&format!("{}/../allowed/./x", text(&outside))),
            Some(text(&allowed.join("x")))
        );
        assert_eq!(real_path("relative/path"), None);

        let td: TaskDefinition = serde_json::from_value(serde_json::json!({
            "family": "f",
            "volumes": [
                {"name": "a", "host": {"sourcePath": text(&allowed.join("link"))}},
                {"name": "b", "host": {"sourcePath": text(&allowed.join("plain"))}},
                {"name": "c", "host": {}}
            ],
            "containerDefinitions": [{"name": "app", "image": "busybox"}]
        }))
        .expect("parses");
        let resolved = with_bind_sources_resolved(&td, real_path);
        let sources: Vec<Option<String>> = resolved
            .volumes
            .iter()
            .flatten()
            .map(|v| v.host.as_ref().and_then(|h| h.source_path.clone()))
            .collect();
        assert_eq!(
            sources,
            vec![
                Some(text(&outside)),
                Some(text(&allowed.join("plain"))),
                None
            ]
        );
        let allowances = berth_core::task_definition::admission::Allowances {
            bind_mount_prefixes: vec![text(&allowed)],
            ..Default::default()
        };
        assert_eq!(check(&td, &allowances), Vec::new(), "as written, it passes");
        let refusals = check(&resolved, &allowances);
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].field, "volumes[0].host.sourcePath");
    }

    #[test]
    fn refusals_about_a_container_name_its_index() {
        let refusal = |field: &str| Refusal {
            field: field.into(),
            grant: berth_core::task_definition::admission::Grant::Privileged,
        };
        assert_eq!(
            container_of(&refusal("containerDefinitions[3].privileged")),
            Some(3)
        );
        assert_eq!(container_of(&refusal("networkMode")), None);
    }
}

//! How the containers of one task refer to each other: `volumesFrom`, `links`, and the task
//! definition's `pidMode`/`ipcMode` `task` (one container of the task holds the namespaces and
//! the others join it, since Berth runs no pause container); and, from those, what each
//! container needs of the others before it can be created or started.

use super::{container_name, SpecError, TaskContext};
use berth_core::model::task_definition::{ContainerDefinition, TaskDefinition};

/// Something a container needs of another container of its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerequisite {
    /// The ECS name of the other container.
    pub container: String,
    /// The other container must be running when this one starts (links, shared namespaces);
    /// otherwise it only has to exist when this one is created (volumesFrom).
    pub running: bool,
}

/// The container whose PID and IPC namespaces the others join when the task definition's
/// `pidMode` or `ipcMode` is `task`: the first essential container that waits for nothing
/// (no `dependsOn`, `links` or `volumesFrom`), so that it can start first and, being
/// essential, lives as long as the task (the namespaces die with it); failing that the first
/// essential container, failing that the first container. `None` when neither mode is `task`.
pub fn namespace_holder(td: &TaskDefinition) -> Option<&str> {
    let task_mode = |mode: &Option<String>| mode.as_deref() == Some("task");
    if !task_mode(&td.pid_mode) && !task_mode(&td.ipc_mode) {
        return None;
    }
    let defs = td.container_definitions.as_deref().unwrap_or_default();
    let essential = |d: &&ContainerDefinition| d.essential.unwrap_or(true);
    let waits_for_nothing = |d: &&ContainerDefinition| {
        d.depends_on.as_ref().is_none_or(Vec::is_empty)
            && d.links.as_ref().is_none_or(Vec::is_empty)
            && d.volumes_from.as_ref().is_none_or(Vec::is_empty)
    };
    defs.iter()
        .filter(essential)
        .find(waits_for_nothing)
        .or_else(|| defs.iter().find(essential))
        .or_else(|| defs.first())
        .and_then(|d| d.name.as_deref())
}

/// The containers `def` needs before it: created first (its `volumesFrom` sources), running
/// when it starts (its `links` targets and the namespace holder). Names that are not other
/// containers of the task are left out (the spec mapping reports them).
pub fn prerequisites(td: &TaskDefinition, def: &ContainerDefinition) -> Vec<Prerequisite> {
    let own = def.name.as_deref().unwrap_or_default();
    let defs = td.container_definitions.as_deref().unwrap_or_default();
    let sibling = |name: &str| name != own && defs.iter().any(|d| d.name.as_deref() == Some(name));
    let mut out: Vec<Prerequisite> = Vec::new();
    let mut add = |container: &str, running: bool| {
        if !sibling(container) {
            return;
        }
        match out.iter_mut().find(|p| p.container == container) {
            Some(known) => known.running |= running,
            None => out.push(Prerequisite {
                container: container.to_string(),
                running,
            }),
        }
    };
    for from in def.volumes_from.iter().flatten() {
        if let Some(source) = from.source_container.as_deref() {
            add(source, false);
        }
    }
    for link in def.links.iter().flatten() {
        add(link_target(link).0, true);
    }
    if let Some(holder) = namespace_holder(td) {
        add(holder, true);
    }
    out
}

/// `(container, alias)` of a link `name[:alias]`; the alias defaults to the name.
fn link_target(link: &str) -> (&str, &str) {
    match link.split_once(':') {
        Some((name, alias)) if !alias.is_empty() => (name, alias),
        Some((name, _)) => (name, name),
        None => (link, link),
    }
}

/// Whether `name` is another container of the task than `own`.
fn is_sibling(ctx: &TaskContext<'_>, own: &str, name: &str) -> bool {
    name != own
        && ctx
            .task_definition
            .container_definitions
            .iter()
            .flatten()
            .any(|d| d.name.as_deref() == Some(name))
}

/// Docker's `VolumesFrom` of the container: the runtime name of each source container of the
/// task, `:ro` when read-only (else the source's own modes apply, as with Docker).
pub(super) fn volumes_from(
    ctx: &TaskContext<'_>,
    def: &ContainerDefinition,
    own: &str,
    family: &str,
    revision: i32,
) -> Result<Vec<String>, SpecError> {
    let mut out = Vec::new();
    for from in def.volumes_from.iter().flatten() {
        let source = from.source_container.as_deref().unwrap_or_default();
        if !is_sibling(ctx, own, source) {
            return Err(SpecError::Invalid {
                container: own.to_string(),
                field: "volumesFrom",
                message: format!("sourceContainer '{source}' is not another container of the task"),
            });
        }
        let name = container_name(family, revision, source, ctx.task_id());
        let suffix = if from.read_only == Some(true) {
            ":ro"
        } else {
            ""
        };
        out.push(format!("{name}{suffix}"));
    }
    Ok(out)
}

/// Docker's legacy `Links` of the container: `runtime-name:alias` for each link `name[:alias]`
/// to another container of the task. Links only exist on Docker's default bridge.
pub(super) fn links(
    ctx: &TaskContext<'_>,
    def: &ContainerDefinition,
    own: &str,
    family: &str,
    revision: i32,
) -> Result<Vec<String>, SpecError> {
    let links = def.links.as_deref().unwrap_or_default();
    if links.is_empty() {
        return Ok(Vec::new());
    }
    let invalid = |message: String| SpecError::Invalid {
        container: own.to_string(),
        field: "links",
        message,
    };
    let mode = ctx.network_mode();
    if mode != "bridge" {
        return Err(invalid(format!(
            "links only work in bridge network mode, and the task uses {mode}"
        )));
    }
    let mut out = Vec::new();
    for link in links {
        let (target, alias) = link_target(link);
        if !is_sibling(ctx, own, target) {
            return Err(invalid(format!(
                "'{link}' does not name another container of the task"
            )));
        }
        let name = container_name(family, revision, target, ctx.task_id());
        out.push(format!("{name}:{alias}"));
    }
    Ok(out)
}

/// Docker's `(PidMode, IpcMode)` of the container from the task definition's `pidMode` and
/// `ipcMode`: `host` and `none` as they are; `task` makes every container but the namespace
/// holder join the holder's namespaces (`container:NAME`), and the holder's IPC namespace
/// `shareable` so that they can.
pub(super) fn namespace_modes(
    ctx: &TaskContext<'_>,
    own: &str,
    family: &str,
    revision: i32,
) -> Result<(Option<String>, Option<String>), SpecError> {
    let td = ctx.task_definition;
    let holder = namespace_holder(td);
    let joined = holder.filter(|h| *h != own).map(|h| {
        format!(
            "container:{}",
            container_name(family, revision, h, ctx.task_id())
        )
    });
    let invalid = |field: &'static str, value: &str, allowed: &str| SpecError::Invalid {
        container: own.to_string(),
        field,
        message: format!("'{value}' is not a mode Berth knows (use {allowed})"),
    };
    let pid = match td.pid_mode.as_deref() {
        None => None,
        Some("host") => Some("host".to_string()),
        Some("task") => joined.clone(),
        Some(other) => return Err(invalid("pidMode", other, "host or task")),
    };
    let ipc = match td.ipc_mode.as_deref() {
        None => None,
        Some(mode @ ("host" | "none")) => Some(mode.to_string()),
        Some("task") => Some(joined.unwrap_or_else(|| "shareable".to_string())),
        Some(other) => return Err(invalid("ipcMode", other, "host, task or none")),
    };
    Ok((pid, ipc))
}

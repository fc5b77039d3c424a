//! The task definition's volumes on this host: mount points resolved to bind mounts and named
//! Docker volumes (with their driver, driver options and labels), and which Docker volumes
//! belong to one task, to be removed with its containers.

use super::{task_volume_name, SpecError, TaskContext, LABEL_TASK_ARN, LABEL_TASK_DEFINITION};
use crate::runtime::MountSpec;
use berth_core::model::task_definition::{ContainerDefinition, Volume};
use std::collections::BTreeMap;

/// The mount points of the container, resolved against the task definition's volumes.
pub(super) fn mounts(
    ctx: &TaskContext<'_>,
    def: &ContainerDefinition,
    container: &str,
    family: &str,
    revision: i32,
) -> Result<Vec<MountSpec>, SpecError> {
    let volumes = ctx.task_definition.volumes.as_deref().unwrap_or_default();
    let mut mounts = Vec::new();
    for point in def.mount_points.iter().flatten() {
        let missing = |field| SpecError::Missing {
            container: container.to_string(),
            field,
        };
        let source = point
            .source_volume
            .as_deref()
            .ok_or_else(|| missing("mountPoints.sourceVolume"))?;
        let container_path = point
            .container_path
            .clone()
            .ok_or_else(|| missing("mountPoints.containerPath"))?;
        let read_only = point.read_only.unwrap_or(false);
        let volume = volumes
            .iter()
            .find(|v| v.name.as_deref() == Some(source))
            .ok_or_else(|| SpecError::UnknownVolume {
                container: container.to_string(),
                volume: source.to_string(),
            })?;
        mounts.push(volume_mount(
            volume,
            source,
            container_path,
            read_only,
            family,
            revision,
            ctx.task_id(),
        )?);
    }
    Ok(mounts)
}

/// Whether `volume` is a Docker volume that lives and dies with the task: one with a Docker
/// volume configuration of scope `task` (the default), or one with no configuration at all
/// (ECS's agent-managed scratch volume). Host paths and `shared` volumes outlive it.
pub fn is_task_scoped(volume: &Volume) -> bool {
    let host_path = volume
        .host
        .as_ref()
        .and_then(|h| h.source_path.as_deref())
        .is_some_and(|p| !p.is_empty());
    let other_kind = volume.efs_volume_configuration.is_some()
        || volume
            .fsx_windows_file_server_volume_configuration
            .is_some()
        || volume.s3files_volume_configuration.is_some()
        || volume.configured_at_launch == Some(true);
    let shared = volume
        .docker_volume_configuration
        .as_ref()
        .is_some_and(|c| c.scope.as_deref() == Some("shared"));
    !host_path && !other_kind && !shared
}

/// The Docker names of the task's task-scoped volumes (see [`is_task_scoped`]), which are
/// removed once the task's containers are; none when the task definition has no family and
/// revision (no volume could have been made for it).
pub fn task_volume_names(ctx: &TaskContext<'_>) -> Vec<String> {
    let Ok((family, revision)) = ctx.family_revision() else {
        return Vec::new();
    };
    let volumes: &[Volume] = ctx.task_definition.volumes.as_deref().unwrap_or_default();
    volumes
        .iter()
        .filter(|v| is_task_scoped(v))
        .filter_map(|v| v.name.as_deref())
        .map(|name| task_volume_name(&family, revision, name, ctx.task_id()))
        .collect()
}

/// Whether the Docker volume `volume`, mounted by a container with these `labels`, is a
/// task-scoped volume of that container's task (`berth-{family}-{revision}-{name}-{task12}`):
/// how the agent recognises the volumes of a task whose definition it no longer has.
pub fn is_task_volume_of(volume: &str, labels: &BTreeMap<String, String>) -> bool {
    let (Some(task_arn), Some(definition)) = (
        labels.get(LABEL_TASK_ARN),
        labels.get(LABEL_TASK_DEFINITION),
    ) else {
        return false;
    };
    let Some((family, revision)) = definition.rsplit_once(':') else {
        return false;
    };
    let Ok(revision) = revision.parse::<i32>() else {
        return false;
    };
    let prefix = format!("berth-{family}-{revision}-");
    let suffix = format!("-{}", super::short_id(super::task_id_of(task_arn)));
    volume.len() > prefix.len() + suffix.len()
        && volume.starts_with(&prefix)
        && volume.ends_with(&suffix)
}

/// One mount of `volume`: a host path is a bind mount; a Docker volume configuration is a named
/// volume (scope `shared`: the volume's own name; `task`, the default: a per-task name) with
/// its driver, driver options and labels; a volume with neither is a Docker volume scoped to
/// the task (ECS's agent-managed scratch directory).
fn volume_mount(
    volume: &Volume,
    name: &str,
    container_path: String,
    read_only: bool,
    family: &str,
    revision: i32,
    task_id: &str,
) -> Result<MountSpec, SpecError> {
    let unsupported = |kind| SpecError::UnsupportedVolume {
        volume: name.to_string(),
        kind,
    };
    if volume.efs_volume_configuration.is_some() {
        return Err(unsupported("EFS"));
    }
    if volume
        .fsx_windows_file_server_volume_configuration
        .is_some()
    {
        return Err(unsupported("FSx for Windows File Server"));
    }
    if volume.s3files_volume_configuration.is_some() {
        return Err(unsupported("S3 Files"));
    }
    if volume.configured_at_launch == Some(true) {
        return Err(unsupported("configured-at-launch (EBS)"));
    }
    if let Some(host_path) = volume
        .host
        .as_ref()
        .and_then(|h| h.source_path.clone())
        .filter(|p| !p.is_empty())
    {
        return Ok(MountSpec::Bind {
            host_path,
            container_path,
            read_only,
        });
    }
    let task_volume = || task_volume_name(family, revision, name, task_id);
    Ok(match volume.docker_volume_configuration.as_ref() {
        Some(config) => MountSpec::Volume {
            name: if config.scope.as_deref() == Some("shared") {
                name.to_string()
            } else {
                task_volume()
            },
            container_path,
            read_only,
            driver: config.driver.clone(),
            driver_opts: config.driver_opts.clone().unwrap_or_default(),
            labels: config.labels.clone().unwrap_or_default(),
        },
        None => MountSpec::Volume {
            name: task_volume(),
            container_path,
            read_only,
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        },
    })
}

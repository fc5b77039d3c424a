//! How a service's `volumes` become the task's volumes and the container's mount points.

use super::convert::{Source, PROJECT_LABEL};
use super::file::{ComposeFile, ServiceSpec, ServiceVolume, VolumeSpec};
use anyhow::bail;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The task's volumes and the container's mount points: a named volume becomes a shared
/// Docker volume `{project}_{name}` (as Compose names it), a path a host volume, a lone
/// container path a volume of the task.
pub fn volumes(
    file: &ComposeFile,
    spec: &ServiceSpec,
    at: &str,
    source: &Source,
    notes: &mut Vec<String>,
) -> anyhow::Result<(Vec<Value>, Vec<Value>)> {
    let mut volumes: Vec<Value> = Vec::new();
    let mut mounts = Vec::new();
    for (i, volume) in spec.volumes.iter().enumerate() {
        let at = format!("{at}.volumes[{i}]");
        let (kind, from, target, read_only) = match volume {
            ServiceVolume::Short(text) => {
                let parts: Vec<&str> = text.split(':').collect();
                match parts.as_slice() {
                    [target] => ("volume", None, target.to_string(), false),
                    [from, target] | [from, target, _] => {
                        let read_only = parts
                            .get(2)
                            .is_some_and(|mode| mode.split(',').any(|m| m == "ro"));
                        let kind = if from.starts_with(['.', '/', '~']) {
                            "bind"
                        } else {
                            "volume"
                        };
                        (kind, Some(from.to_string()), target.to_string(), read_only)
                    }
                    _ => bail!("{at}: '{text}' is not SOURCE:TARGET[:MODE]"),
                }
            }
            ServiceVolume::Long(long) => match long.kind.as_str() {
                "volume" | "bind" => (
                    if long.kind == "bind" {
                        "bind"
                    } else {
                        "volume"
                    },
                    long.source.clone().filter(|s| !s.is_empty()),
                    long.target.clone(),
                    long.read_only,
                ),
                other => {
                    notes.push(format!(
                        "{at}: type {other} (only volume and bind are mapped)"
                    ));
                    continue;
                }
            },
        };
        if !target.starts_with('/') {
            bail!("{at}: the container path '{target}' is not absolute");
        }
        let volume = match (kind, from) {
            ("bind", Some(path)) => {
                let path = match path.strip_prefix('~') {
                    Some(rest) => PathBuf::from((source.env)("HOME").unwrap_or_default())
                        .join(rest.trim_start_matches('/')),
                    None => source.dir.join(&path),
                };
                json!({"name": format!("bind-{i}"), "host": {"sourcePath": normalise_path(&path)}})
            }
            ("bind", None) => bail!("{at}: a bind mount needs a source"),
            (_, None) => json!({"name": format!("anonymous-{i}")}),
            (_, Some(name)) => {
                let Some(top) = file.volumes.get(&name) else {
                    bail!(
                        "{at}: the volume '{name}' is not declared under the top-level `volumes:`"
                    );
                };
                named_volume(&source.project, &name, top.as_ref(), &at)?
            }
        };
        let volume_name = volume["name"].clone();
        if !volumes.iter().any(|v| v["name"] == volume_name) {
            volumes.push(volume);
        }
        let mut mount = json!({"sourceVolume": volume_name, "containerPath": target});
        if read_only {
            mount["readOnly"] = true.into();
        }
        mounts.push(mount);
    }
    Ok((volumes, mounts))
}

/// A path with `.` and `..` resolved without touching the disk.
fn normalise_path(path: &Path) -> String {
    let mut parts: Vec<std::path::Component> = Vec::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if matches!(parts.last(), Some(std::path::Component::Normal(_))) {
                    parts.pop();
                }
            }
            other => parts.push(other),
        }
    }
    parts.iter().collect::<PathBuf>().display().to_string()
}

/// A top-level named volume as a task volume.
fn named_volume(
    project: &str,
    name: &str,
    spec: Option<&VolumeSpec>,
    at: &str,
) -> anyhow::Result<Value> {
    let spec = spec.cloned().unwrap_or_default();
    let docker_name = match &spec.name {
        Some(given) => given.clone(),
        None if spec.external => name.to_string(),
        None => format!("{project}_{name}"),
    };
    if docker_name.is_empty()
        || !docker_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("{at}: the volume name '{docker_name}' must be letters, digits, - and _ for ECS");
    }
    let mut config = json!({"scope": "shared", "autoprovision": !spec.external, "driver": spec.driver.as_deref().unwrap_or("local")});
    if !spec.driver_opts.is_empty() {
        let opts: Map<String, Value> = spec
            .driver_opts
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string().into()))
            .collect();
        config["driverOpts"] = opts.into();
    }
    let mut labels: BTreeMap<String, String> = spec
        .labels
        .as_ref()
        .map(|l| {
            l.entries()
                .into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if !spec.external {
        labels.insert(PROJECT_LABEL.into(), project.into());
        labels.insert("com.docker.compose.volume".into(), name.into());
    }
    if !labels.is_empty() {
        config["labels"] = json!(labels);
    }
    Ok(json!({"name": docker_name, "dockerVolumeConfiguration": config}))
}

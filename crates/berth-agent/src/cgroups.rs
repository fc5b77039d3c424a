//! Task-level CPU and memory limits, as Fargate enforces them: the task gets a cgroup of its
//! own (`/berth/<task id>`) holding the limits, and its containers are made under it (Docker's
//! `--cgroup-parent`), so together they can use no more than the task's `cpu` and `memory`.
//! Works with Docker's `cgroupfs` driver on cgroup v1 and v2.

use std::path::{Path, PathBuf};

/// Where the cgroup filesystem is mounted.
const ROOT: &str = "/sys/fs/cgroup";

/// The parent, in every hierarchy, of Berth's task cgroups.
const PARENT: &str = "berth";

/// CFS period for CPU quotas: 100 ms, Docker's default.
const CPU_PERIOD_US: u64 = 100_000;

/// A task's limits: CPU units (1024 per vCPU) and memory in MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskLimits {
    pub cpu_units: Option<u64>,
    pub memory_mib: Option<u64>,
}

impl TaskLimits {
    /// The CFS quota (µs per period) of `cpu_units`: 1024 units are one CPU.
    pub fn cpu_quota_us(cpu_units: u64) -> u64 {
        (cpu_units * CPU_PERIOD_US / 1024).max(1000)
    }
}

/// The cgroup path containers of task `task_id` are made under (`--cgroup-parent`).
pub fn parent_of(task_id: &str) -> String {
    format!("/{PARENT}/{task_id}")
}

fn unified() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// Makes task `task_id`'s cgroup with `limits`; returns the cgroup parent for its containers.
pub fn create(task_id: &str, limits: TaskLimits) -> Result<String, String> {
    if unified() {
        create_v2(task_id, limits)?;
    } else {
        create_v1(task_id, limits)?;
    }
    Ok(parent_of(task_id))
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value)
        .map_err(|e| format!("cannot write {value} to {}: {e}", path.display()))
}

fn make_dir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn create_v1(task_id: &str, limits: TaskLimits) -> Result<(), String> {
    let task = Path::new(PARENT).join(task_id);
    let memory = Path::new(ROOT).join("memory").join(&task);
    make_dir(&memory)?;
    if let Some(mib) = limits.memory_mib {
        write(
            &memory.join("memory.limit_in_bytes"),
            &(mib * 1024 * 1024).to_string(),
        )?;
    }
    let cpu = Path::new(ROOT).join("cpu").join(&task);
    make_dir(&cpu)?;
    if let Some(units) = limits.cpu_units {
        write(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
        write(
            &cpu.join("cpu.cfs_quota_us"),
            &TaskLimits::cpu_quota_us(units).to_string(),
        )?;
    }
    Ok(())
}

fn create_v2(task_id: &str, limits: TaskLimits) -> Result<(), String> {
    let parent = Path::new(ROOT).join(PARENT);
    make_dir(&parent)?;
    // Children may only limit what their parent hands down.
    for level in [Path::new(ROOT), parent.as_path()] {
        write(&level.join("cgroup.subtree_control"), "+cpu +memory")?;
    }
    let task = parent.join(task_id);
    make_dir(&task)?;
    if let Some(mib) = limits.memory_mib {
        write(&task.join("memory.max"), &(mib * 1024 * 1024).to_string())?;
    }
    if let Some(units) = limits.cpu_units {
        write(
            &task.join("cpu.max"),
            &format!("{} {CPU_PERIOD_US}", TaskLimits::cpu_quota_us(units)),
        )?;
    }
    Ok(())
}

/// The directories of task `task_id`'s cgroup, deepest first.
fn directories(task_id: &str) -> Vec<PathBuf> {
    if unified() {
        return vec![Path::new(ROOT).join(PARENT).join(task_id)];
    }
    let Ok(hierarchies) = std::fs::read_dir(ROOT) else {
        return Vec::new();
    };
    hierarchies
        .flatten()
        .map(|h| h.path().join(PARENT).join(task_id))
        .filter(|p| p.is_dir())
        .collect()
}

/// Removes task `task_id`'s cgroup once its containers are gone (Docker leaves the task
/// directory, and the containers' own when it runs no more of them). Best effort.
pub fn remove(task_id: &str) {
    for dir in directories(task_id) {
        if let Ok(children) = std::fs::read_dir(&dir) {
            for child in children.flatten().filter(|c| c.path().is_dir()) {
                let _ = std::fs::remove_dir(child.path());
            }
        }
        if let Err(err) = std::fs::remove_dir(&dir) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(dir = %dir.display(), "cannot remove a task cgroup: {err}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_units_become_a_quota_of_the_period() {
        assert_eq!(TaskLimits::cpu_quota_us(1024), 100_000);
        assert_eq!(TaskLimits::cpu_quota_us(256), 25_000);
        assert_eq!(TaskLimits::cpu_quota_us(4096), 400_000);
        // The kernel's floor is 1 ms.
        assert_eq!(TaskLimits::cpu_quota_us(2), 1000);
        assert_eq!(parent_of("abc"), "/berth/abc");
    }
}

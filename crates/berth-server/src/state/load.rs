//! What runs on one container instance, kept up to date from task events: the counts
//! DescribeContainerInstances shows, the resources its tasks hold (its remainingResources
//! derive from them), and the task groups placement and memberOf queries read.

use super::tasks::TaskEntry;
use berth_core::resources::Reservation;
use berth_core::task_state::TaskStatus;
use std::collections::BTreeMap;

/// The tasks on one instance that are not STOPPED, summed up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceLoad {
    /// Tasks whose lastStatus is RUNNING.
    pub running: i64,
    /// Tasks whose lastStatus is PROVISIONING, PENDING or ACTIVATING.
    pub pending: i64,
    /// Tasks of each group that are not asked to stop.
    pub groups: BTreeMap<String, u32>,
    /// What the tasks hold: `remainingResources` is the registered resources less this.
    pub reserved: Reservation,
    /// Revision of the last change, so a placement snapshot kept between calls refreshes only
    /// the instances whose load moved.
    pub version: u64,
}

impl InstanceLoad {
    /// Counts `task` in (`sign` 1) or out (`sign` -1).
    pub fn add(&mut self, task: &TaskEntry, sign: i64) {
        match counted_as(task.status) {
            Some(Counted::Running) => self.running += sign,
            Some(Counted::Pending) => self.pending += sign,
            None => {}
        }
        if let Some(needs) = &task.resources {
            self.reserved.add(needs, sign);
        }
        if let Some(group) = task.placed_group() {
            let count = self.groups.entry(group.to_string()).or_default();
            *count = u32::try_from(i64::from(*count) + sign).unwrap_or(0);
            if *count == 0 {
                self.groups.remove(group);
            }
        }
    }

    /// Whether nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.running == 0 && self.pending == 0 && self.groups.is_empty() && self.reserved.is_empty()
    }

    /// The groups as (name, count) pairs in name order.
    pub fn group_list(&self) -> Vec<(String, u32)> {
        self.groups.iter().map(|(g, n)| (g.clone(), *n)).collect()
    }
}

/// How ECS counts a task of a status in runningTasksCount / pendingTasksCount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Running,
    Pending,
}

/// Whether a task of `status` counts as running, pending or neither.
pub fn counted_as(status: TaskStatus) -> Option<Counted> {
    match status {
        TaskStatus::Running => Some(Counted::Running),
        TaskStatus::Provisioning | TaskStatus::Pending | TaskStatus::Activating => {
            Some(Counted::Pending)
        }
        _ => None,
    }
}

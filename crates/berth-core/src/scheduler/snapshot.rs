//! The scheduler's picture of a cluster: its instances with what they have left and which task
//! groups run on them, laid out column by column so the placement loop reads little memory.
//! Facts that placing a task does not change (attributes, status, versions) are kept once, and
//! what is derived from them (memberOf results, spread values) is cached between batches.

use super::attributes::RequiredAttribute;
use super::query::Subjects;
use crate::model::container_instance::ContainerInstance;
use crate::model::status::{ContainerInstanceStatus, TaskStatus};
use crate::model::task::Task;
use crate::model::Resource;
use std::collections::HashMap;
use std::sync::Arc;

/// One container instance as the scheduler needs it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceInfo {
    /// The instance id (the last part of its ARN).
    pub id: String,
    /// The container instance ARN.
    pub arn: String,
    /// `ec2InstanceId` in queries.
    pub ec2_instance_id: Option<String>,
    /// ACTIVE, DRAINING, ...
    pub status: Option<ContainerInstanceStatus>,
    /// Whether its agent is connected.
    pub agent_connected: bool,
    /// The agent's version.
    pub agent_version: Option<String>,
    /// Registration time, epoch seconds.
    pub registered_at: Option<f64>,
    /// Attribute names and values.
    pub attributes: Vec<(String, Option<String>)>,
    /// Remaining CPU units.
    pub cpu: i64,
    /// Remaining memory, MiB.
    pub memory: i64,
    /// TCP host ports in use (or reserved).
    pub tcp_ports: Vec<u16>,
    /// UDP host ports in use (or reserved).
    pub udp_ports: Vec<u16>,
    /// Tasks running on it.
    pub running_tasks_count: i64,
    /// Task groups on it, with how many tasks of each.
    pub groups: Vec<(String, u32)>,
}

/// What changes on an instance as tasks come and go: the part of [`InstanceInfo`] that
/// [`Snapshot::set_load`] refreshes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Occupancy<'a> {
    /// Remaining CPU units.
    pub cpu: i64,
    /// Remaining memory, MiB.
    pub memory: i64,
    /// TCP host ports in use, sorted.
    pub tcp_ports: Vec<u16>,
    /// UDP host ports in use, sorted.
    pub udp_ports: Vec<u16>,
    /// Tasks running on it.
    pub running_tasks_count: i64,
    /// Task groups on it, with how many tasks of each.
    pub groups: &'a [(String, u32)],
}

impl Occupancy<'_> {
    /// An instance with `cpu` and `memory` left, no ports in use and no tasks.
    pub fn default_for(cpu: i64, memory: i64) -> Self {
        Occupancy {
            cpu,
            memory,
            ..Occupancy::default()
        }
    }
}

/// Bit set in an instance's state when it is ACTIVE.
pub(super) const ACTIVE: u8 = 1;
/// Bit set when its agent is connected.
pub(super) const CONNECTED: u8 = 2;
/// Both: the instance may receive tasks.
pub(super) const SCHEDULABLE: u8 = ACTIVE | CONNECTED;

/// What does not change when tasks are placed.
#[derive(Debug, Clone)]
pub(super) struct Fixed {
    pub id: String,
    pub arn: String,
    pub ec2_instance_id: Option<String>,
    pub agent_version: Option<String>,
    pub registered_at: Option<f64>,
    /// Sorted by name (stably: of two with one name, the first given is found).
    pub attributes: Vec<(String, Option<String>)>,
}

/// Attribute values by instance, numbered: `values[i]` is instance i's value number, `len`
/// how many numbers there are (instances without the attribute share one).
#[derive(Debug)]
pub(super) struct ValueIndex {
    pub values: Vec<u32>,
    pub len: usize,
}

/// A cluster's instances, ready for placement. Placing tasks updates it, so the tasks of a
/// batch (and later batches given the same snapshot) see the earlier ones.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(super) fixed: Vec<Fixed>,
    pub(super) state: Vec<u8>,
    pub(super) cpu: Vec<i64>,
    pub(super) memory: Vec<i64>,
    pub(super) tcp: Vec<Vec<u16>>,
    pub(super) udp: Vec<Vec<u16>>,
    pub(super) running: Vec<i64>,
    /// Per instance: (group number, task count).
    pub(super) groups: Vec<Vec<(u32, u32)>>,
    pub(super) group_names: Vec<String>,
    pub(super) group_numbers: HashMap<String, u32>,
    /// Per group number: its task count on every instance.
    pub(super) group_counts: HashMap<u32, Vec<u32>>,
    /// memberOf results of expressions that read no task state, by expression text.
    pub(super) masks: HashMap<String, Arc<Vec<bool>>>,
    /// Spread values by attribute name.
    pub(super) spread_values: HashMap<String, Arc<ValueIndex>>,
    /// Per set of required attributes: each instance's first missing one (see
    /// [`Snapshot::missing_attributes`]).
    pub(super) attribute_masks: HashMap<Vec<RequiredAttribute>, Arc<Vec<u16>>>,
}

impl Snapshot {
    /// A snapshot of `instances`, in the order given (placement ties go to the earlier one).
    pub fn new(instances: Vec<InstanceInfo>) -> Self {
        let mut s = Snapshot::default();
        for info in instances {
            let mut state = 0;
            if info.status == Some(ContainerInstanceStatus::Active) {
                state |= ACTIVE;
            }
            if info.agent_connected {
                state |= CONNECTED;
            }
            let groups = info
                .groups
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(g, n)| (s.group_number(g), *n))
                .collect();
            s.state.push(state);
            s.cpu.push(info.cpu);
            s.memory.push(info.memory);
            s.tcp.push(info.tcp_ports);
            s.udp.push(info.udp_ports);
            s.running.push(info.running_tasks_count);
            s.groups.push(groups);
            let mut attributes = info.attributes;
            attributes.sort_by(|a, b| a.0.cmp(&b.0));
            s.fixed.push(Fixed {
                id: info.id,
                arn: info.arn,
                ec2_instance_id: info.ec2_instance_id,
                agent_version: info.agent_version,
                registered_at: info.registered_at,
                attributes,
            });
        }
        s
    }

    /// A snapshot of stored instances (INACTIVE ones left out) and the tasks of their cluster:
    /// remaining resources are the registered ones (what tasks hold is for [`Self::set_load`]
    /// to count), runningTasksCount from tasks whose lastStatus is RUNNING, and task groups
    /// from tasks not yet STOPPED whose desiredStatus is RUNNING (ECS counts groups by desired
    /// status for distinctInstance).
    pub fn from_model<'a>(
        instances: impl IntoIterator<Item = &'a ContainerInstance>,
        tasks: impl IntoIterator<Item = &'a Task>,
    ) -> Self {
        let mut running: HashMap<&str, i64> = HashMap::new();
        let mut groups: HashMap<&str, HashMap<&str, u32>> = HashMap::new();
        for task in tasks {
            let Some(arn) = task.container_instance_arn.as_deref() else {
                continue;
            };
            if task.last_status == Some(TaskStatus::Running) {
                *running.entry(arn).or_default() += 1;
            }
            if task.last_status != Some(TaskStatus::Stopped)
                && task.desired_status != Some(TaskStatus::Stopped)
            {
                if let Some(group) = task.group.as_deref() {
                    *groups.entry(arn).or_default().entry(group).or_default() += 1;
                }
            }
        }
        let infos = instances
            .into_iter()
            .filter(|i| i.status != Some(ContainerInstanceStatus::Inactive))
            .map(|ci| {
                let mut info = InstanceInfo::from_instance(ci);
                info.running_tasks_count = running.get(info.arn.as_str()).copied().unwrap_or(0);
                if let Some(on) = groups.get(info.arn.as_str()) {
                    let mut list: Vec<(String, u32)> =
                        on.iter().map(|(g, n)| (g.to_string(), *n)).collect();
                    list.sort();
                    info.groups = list;
                }
                info
            })
            .collect();
        Snapshot::new(infos)
    }

    /// Sets what instance `i` has left and what runs on it, from a fresher count than the one
    /// the snapshot was made or last placed with (a snapshot kept between batches is brought
    /// up to date this way, instance by instance). `groups` are (group, task count) pairs.
    pub fn set_load(&mut self, i: usize, load: Occupancy<'_>) {
        self.cpu[i] = load.cpu;
        self.memory[i] = load.memory;
        self.tcp[i] = load.tcp_ports;
        self.udp[i] = load.udp_ports;
        self.running[i] = load.running_tasks_count;
        let fresh: Vec<(u32, u32)> = load
            .groups
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(g, n)| (self.group_number(g), *n))
            .collect();
        for &(g, _) in &self.groups[i] {
            if let Some(counts) = self.group_counts.get_mut(&g) {
                counts[i] = 0;
            }
        }
        for &(g, n) in &fresh {
            if let Some(counts) = self.group_counts.get_mut(&g) {
                counts[i] = n;
            }
        }
        self.groups[i] = fresh;
    }

    /// How many instances it holds.
    pub fn len(&self) -> usize {
        self.fixed.len()
    }

    /// Whether it holds no instance.
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty()
    }

    /// The id of instance `i`.
    pub fn id(&self, i: usize) -> &str {
        &self.fixed[i].id
    }

    /// The ARN of instance `i`.
    pub fn arn(&self, i: usize) -> &str {
        &self.fixed[i].arn
    }

    /// The index of the instance with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.fixed.iter().position(|f| f.id == id)
    }

    /// CPU units instance `i` has left.
    pub fn remaining_cpu(&self, i: usize) -> i64 {
        self.cpu[i]
    }

    /// MiB of memory instance `i` has left.
    pub fn remaining_memory(&self, i: usize) -> i64 {
        self.memory[i]
    }

    /// The TCP and UDP host ports in use on instance `i`.
    pub fn used_ports(&self, i: usize) -> (&[u16], &[u16]) {
        (&self.tcp[i], &self.udp[i])
    }

    /// Tasks counted as running on instance `i` (placements included).
    pub fn running_tasks_count(&self, i: usize) -> i64 {
        self.running[i]
    }

    /// How many tasks of `group` are on instance `i`.
    pub fn group_count(&self, i: usize, group: &str) -> u32 {
        let Some(&number) = self.group_numbers.get(group) else {
            return 0;
        };
        self.groups[i]
            .iter()
            .find(|(g, _)| *g == number)
            .map_or(0, |(_, n)| *n)
    }

    /// Whether instance `i` is ACTIVE with its agent connected.
    pub fn is_schedulable(&self, i: usize) -> bool {
        self.state[i] == SCHEDULABLE
    }

    /// The value of attribute `name` on instance `i`: `None` when it has no such attribute,
    /// `Some(None)` when it has one without a value.
    pub fn attribute(&self, i: usize, name: &str) -> Option<Option<&str>> {
        let attributes = &self.fixed[i].attributes;
        let k = attributes.partition_point(|(n, _)| n.as_str() < name);
        attributes
            .get(k)
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    /// What queries see of instance `i`.
    pub fn subjects(&self, i: usize) -> impl Subjects + '_ {
        InstanceRef { s: self, i }
    }

    pub(super) fn group_number(&mut self, group: &str) -> u32 {
        if let Some(&n) = self.group_numbers.get(group) {
            return n;
        }
        let n = u32::try_from(self.group_names.len()).unwrap_or(u32::MAX);
        self.group_names.push(group.to_string());
        self.group_numbers.insert(group.to_string(), n);
        n
    }

    /// Takes the per-instance counts of group `g` out (building them if needed); give them
    /// back with `group_counts.insert`.
    pub(super) fn take_group_counts(&mut self, g: u32) -> Vec<u32> {
        if let Some(counts) = self.group_counts.remove(&g) {
            return counts;
        }
        self.groups
            .iter()
            .map(|on| on.iter().find(|(n, _)| *n == g).map_or(0, |(_, c)| *c))
            .collect()
    }

    /// Adds `delta` tasks of group `g` on instance `i` to the per-instance group list.
    pub(super) fn add_to_group(&mut self, i: usize, g: u32, delta: i64) {
        let on = &mut self.groups[i];
        match on.iter_mut().find(|(n, _)| *n == g) {
            Some(entry) => {
                entry.1 = u32::try_from((i64::from(entry.1) + delta).max(0)).unwrap_or(0);
            }
            None if delta > 0 => on.push((g, u32::try_from(delta).unwrap_or(u32::MAX))),
            None => {}
        }
        on.retain(|(_, n)| *n > 0);
    }

    /// The numbered values of attribute `name` (cached: attributes do not change).
    pub(super) fn spread_index(&mut self, name: &str) -> Arc<ValueIndex> {
        if let Some(index) = self.spread_values.get(name) {
            return index.clone();
        }
        let mut numbers: HashMap<Option<&str>, u32> = HashMap::new();
        let values = self
            .fixed
            .iter()
            .map(|f| {
                let k = f.attributes.partition_point(|(n, _)| n.as_str() < name);
                let value = f
                    .attributes
                    .get(k)
                    .filter(|(n, _)| n == name)
                    .and_then(|(_, v)| v.as_deref());
                let next = u32::try_from(numbers.len()).unwrap_or(u32::MAX);
                *numbers.entry(value).or_insert(next)
            })
            .collect();
        let index = Arc::new(ValueIndex {
            values,
            len: numbers.len(),
        });
        self.spread_values.insert(name.to_string(), index.clone());
        index
    }
}

/// Instance `i` of a snapshot, as queries read it.
pub(super) struct InstanceRef<'a> {
    pub s: &'a Snapshot,
    pub i: usize,
}

impl Subjects for InstanceRef<'_> {
    fn agent_connected(&self) -> bool {
        self.s.state[self.i] & CONNECTED != 0
    }
    fn agent_version(&self) -> Option<&str> {
        self.s.fixed[self.i].agent_version.as_deref()
    }
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.s.attribute(self.i, name)
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.s.fixed[self.i].ec2_instance_id.as_deref()
    }
    fn registered_at(&self) -> Option<f64> {
        self.s.fixed[self.i].registered_at
    }
    fn running_tasks_count(&self) -> i64 {
        self.s.running[self.i]
    }
    fn any_task_group(&self, test: &mut dyn FnMut(&str) -> bool) -> bool {
        self.s.groups[self.i]
            .iter()
            .any(|(g, _)| test(&self.s.group_names[*g as usize]))
    }
}

impl InstanceInfo {
    /// The scheduler's view of a stored instance with nothing placed on it: all its registered
    /// resources left, running count and groups empty (what its tasks hold and run is the
    /// caller's to set).
    pub fn from_instance(ci: &ContainerInstance) -> Self {
        let arn = ci.container_instance_arn.clone().unwrap_or_default();
        let remaining = ci.registered_resources.as_deref().unwrap_or_default();
        Self {
            id: arn.rsplit('/').next().unwrap_or_default().to_string(),
            ec2_instance_id: ci.ec2_instance_id.clone(),
            status: ci.status,
            agent_connected: ci.agent_connected == Some(true),
            agent_version: ci
                .version_info
                .as_ref()
                .and_then(|v| v.agent_version.clone()),
            registered_at: ci.registered_at,
            attributes: ci
                .attributes
                .iter()
                .flatten()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
            cpu: integer(remaining, "CPU"),
            memory: integer(remaining, "MEMORY"),
            tcp_ports: ports(remaining, "PORTS"),
            udp_ports: ports(remaining, "PORTS_UDP"),
            running_tasks_count: 0,
            groups: Vec::new(),
            arn,
        }
    }
}

/// What a stored instance answers to queries (for ListContainerInstances `filter`): its own
/// fields plus the running count and task groups the caller worked out from its tasks.
pub struct StoredInstance<'a> {
    /// The instance.
    pub instance: &'a ContainerInstance,
    /// Tasks running on it.
    pub running_tasks_count: i64,
    /// Groups of its tasks.
    pub groups: &'a [String],
}

impl Subjects for StoredInstance<'_> {
    fn agent_connected(&self) -> bool {
        self.instance.agent_connected == Some(true)
    }
    fn agent_version(&self) -> Option<&str> {
        self.instance
            .version_info
            .as_ref()
            .and_then(|v| v.agent_version.as_deref())
    }
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.instance
            .attributes
            .iter()
            .flatten()
            .find(|a| a.name == name)
            .map(|a| a.value.as_deref())
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.instance.ec2_instance_id.as_deref()
    }
    fn registered_at(&self) -> Option<f64> {
        self.instance.registered_at
    }
    fn running_tasks_count(&self) -> i64 {
        self.running_tasks_count
    }
    fn any_task_group(&self, test: &mut dyn FnMut(&str) -> bool) -> bool {
        self.groups.iter().any(|g| test(g))
    }
}

fn integer(resources: &[Resource], name: &str) -> i64 {
    resources
        .iter()
        .find(|r| r.name.as_deref() == Some(name))
        .map_or(0, |r| {
            r.integer_value.map(i64::from).or(r.long_value).unwrap_or(0)
        })
}

fn ports(resources: &[Resource], name: &str) -> Vec<u16> {
    let mut out: Vec<u16> = resources
        .iter()
        .find(|r| r.name.as_deref() == Some(name))
        .and_then(|r| r.string_set_value.as_ref())
        .map(|set| set.iter().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default();
    out.sort_unstable();
    out.dedup();
    out
}

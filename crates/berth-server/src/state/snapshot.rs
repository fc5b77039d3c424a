//! One consistent picture of the store at a revision: every key with its value, the tasks,
//! instances and task definitions decoded once, and the indexes and counters kept from them.
//! Built of persistent maps, so cloning it is cheap and a reader holds a whole snapshot
//! without holding a lock.

use super::index::{scoped, Index};
use super::load::{counted_as, Counted, InstanceLoad};
use super::tasks::TaskEntry;
use berth_core::model::container_instance::ContainerInstance;
use berth_core::model::task::Task;
use berth_core::model::task_definition::TaskDefinitionRecord;
use berth_core::resources::{task_resources, TaskResources};
use berth_store::typed::Versioned;
use berth_store::{keys, Event, EventKind, KeyValue};
use imbl::OrdMap;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A stored value with its revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Arc<[u8]>,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub version: u64,
}

impl Entry {
    /// The entry as the store's `KeyValue` (copies the value).
    pub fn to_key_value(&self, key: &str) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value: self.value.to_vec(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
        }
    }
}

/// Which secondary index of tasks to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskIndex {
    /// By (cluster, desiredStatus).
    Desired,
    /// By (cluster, family of the task definition).
    Family,
    /// By (cluster, startedBy).
    StartedBy,
    /// By (cluster, service name): tasks its deployments started, STOPPED ones included.
    Service,
    /// By instance ARN: tasks not yet STOPPED.
    Instance,
}

/// The store as of one revision, decoded and indexed.
#[derive(Debug, Clone, Default)]
pub struct State {
    revision: u64,
    objects: OrdMap<String, Entry>,
    tasks: OrdMap<String, Arc<TaskEntry>>,
    definitions: OrdMap<String, Arc<TaskDefinitionRecord>>,
    instances: OrdMap<String, Arc<Versioned<ContainerInstance>>>,
    /// Status of each instance and service key, to keep `status_counts` on updates.
    statuses: OrdMap<String, String>,
    /// Instances and services by (kind and cluster, status).
    status_counts: OrdMap<String, i64>,
    by_desired: Index,
    by_family: Index,
    by_started_by: Index,
    by_service: Index,
    by_instance: Index,
    loads: OrdMap<String, Arc<InstanceLoad>>,
    /// (cluster, load version, instance ARN) of every load: which loads changed after a
    /// revision, in O(changed). A load whose tasks all left stays (empty) so its change shows.
    load_changes: imbl::OrdSet<(String, u64, String)>,
    /// Running and pending task counts by cluster.
    cluster_tasks: OrdMap<String, (i64, i64)>,
    /// By cluster: the revision of the last change to any of its instance records.
    instances_version: OrdMap<String, u64>,
}

/// What an applied batch changed that someone routes on: the instances whose agents have
/// something new to do, the services (by store key) whose record or tasks changed, and the
/// clusters whose instance records changed (which every service of the cluster may care about).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Touched {
    pub instances: BTreeSet<String>,
    pub services: BTreeSet<String>,
    pub clusters: BTreeSet<String>,
}

impl State {
    /// The state of a listing of the whole store at `revision`.
    pub fn from_items(items: Vec<KeyValue>, revision: u64) -> State {
        let mut state = State {
            revision,
            ..State::default()
        };
        // Task definitions first, so each task finds its own when it is decoded.
        let (definitions, rest): (Vec<KeyValue>, Vec<KeyValue>) = items
            .into_iter()
            .partition(|kv| kv.key.starts_with(keys::TASK_DEFINITIONS));
        let mut touched = Touched::default();
        for kv in definitions.into_iter().chain(rest) {
            let entry = Entry {
                value: Arc::from(kv.value),
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
                version: kv.version,
            };
            state.put(kv.key, entry, &mut touched);
        }
        state
    }

    /// The revision it reflects.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Applies one watch event, noting in `touched` what it changed for routing.
    pub fn apply(&mut self, event: berth_store::Event, touched: &mut Touched) {
        let Event {
            kind,
            key,
            value,
            revision,
        } = event;
        self.revision = self.revision.max(revision);
        match kind {
            EventKind::Put => {
                let previous = self.objects.get(&key);
                let entry = Entry {
                    value: Arc::from(value),
                    create_revision: previous.map_or(revision, |p| p.create_revision),
                    mod_revision: revision,
                    version: previous.map_or(1, |p| p.version + 1),
                };
                self.put(key, entry, touched);
            }
            EventKind::Delete => self.delete(&key, touched),
        }
    }

    fn put(&mut self, key: String, entry: Entry, touched: &mut Touched) {
        if key.starts_with(keys::TASKS) {
            let previous = self.tasks.get(&key).cloned();
            match serde_json::from_slice(&entry.value) {
                Ok(task) => {
                    let resources = self.resources_of(&task);
                    if resources.is_none() {
                        tracing::warn!(key = %key, "state: the task definition of a task is not stored");
                    }
                    let next = TaskEntry::new(
                        &key,
                        task,
                        entry.mod_revision,
                        resources,
                        previous.as_deref(),
                    );
                    self.set_task(&key, Some(next), touched);
                    // The decoded task is the copy kept: its JSON is made again when asked for.
                    let entry = Entry {
                        value: Arc::from(Vec::new()),
                        ..entry
                    };
                    self.objects.insert(key, entry);
                    return;
                }
                Err(e) => {
                    tracing::error!(key = %key, error = %e, "state: stored task does not decode");
                    self.set_task(&key, None, touched);
                }
            }
        } else if key.starts_with(keys::TASK_DEFINITIONS) {
            match serde_json::from_slice(&entry.value) {
                Ok(record) => {
                    self.definitions.insert(key.clone(), Arc::new(record));
                }
                Err(e) => {
                    tracing::error!(key = %key, error = %e, "state: stored task definition does not decode");
                    self.definitions.remove(&key);
                }
            }
        } else if key.starts_with(keys::INSTANCES) {
            match serde_json::from_slice::<ContainerInstance>(&entry.value) {
                Ok(instance) => {
                    let status = instance
                        .status
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    if self.statuses.get(&key) != Some(&status) {
                        // Its agent's stream ends when it is deregistered.
                        touched
                            .instances
                            .extend(instance.container_instance_arn.clone());
                    }
                    self.set_status(&key, Some(status));
                    self.instances.insert(
                        key.clone(),
                        Arc::new(Versioned {
                            value: instance,
                            mod_revision: entry.mod_revision,
                        }),
                    );
                }
                Err(e) => {
                    tracing::error!(key = %key, error = %e, "state: stored instance does not decode");
                    self.set_status(&key, None);
                    self.instances.remove(&key);
                }
            }
        } else if key.starts_with(keys::SERVICES) {
            self.set_status(&key, Some(status_field(&entry.value)));
            touched.services.insert(key.clone());
        }
        if let Some(cluster) = cluster_of_instance_key(&key) {
            touched.clusters.insert(cluster.to_string());
        }
        self.objects.insert(key, entry);
    }

    fn delete(&mut self, key: &str, touched: &mut Touched) {
        if self.objects.remove(key).is_none() {
            return;
        }
        if key.starts_with(keys::TASKS) {
            self.set_task(key, None, touched);
        } else if key.starts_with(keys::TASK_DEFINITIONS) {
            self.definitions.remove(key);
        } else if key.starts_with(keys::INSTANCES) {
            if let Some(old) = self.instances.remove(key) {
                touched
                    .instances
                    .extend(old.value.container_instance_arn.clone());
            }
            self.set_status(key, None);
        } else if key.starts_with(keys::SERVICES) {
            self.set_status(key, None);
            touched.services.insert(key.to_string());
        }
        if let Some(cluster) = cluster_of_instance_key(key) {
            touched.clusters.insert(cluster.to_string());
        }
    }

    /// What a task holds on its instance, from its task definition and overrides.
    fn resources_of(&self, task: &Task) -> Option<TaskResources> {
        let record = self.definition(task.task_definition_arn.as_deref()?)?;
        Some(task_resources(
            &record.task_definition,
            &task.overrides.clone().unwrap_or_default(),
        ))
    }

    fn set_task(&mut self, key: &str, next: Option<TaskEntry>, touched: &mut Touched) {
        let previous = self.tasks.remove(key);
        if let Some(old) = &previous {
            self.index_task(old, -1);
        }
        if let Some(next) = &next {
            self.index_task(next, 1);
        }
        // Route to the instances whose agents must act: the task arrived, left, or what it
        // asks of them changed.
        let before = previous
            .as_ref()
            .map(|t| (t.instance_arn.clone(), t.desired_revision));
        let after = next
            .as_ref()
            .map(|t| (t.instance_arn.clone(), t.desired_revision));
        if before != after {
            for arn in [before, after]
                .into_iter()
                .flatten()
                .filter_map(|(arn, _)| arn)
            {
                touched.instances.insert(arn);
            }
        }
        for task in previous.as_deref().into_iter().chain(next.as_ref()) {
            if let Some(service) = task.service() {
                touched
                    .services
                    .insert(keys::service(&task.cluster, service));
            }
        }
        if let Some(next) = next {
            self.tasks.insert(key.to_string(), Arc::new(next));
        }
    }

    fn index_task(&mut self, task: &TaskEntry, sign: i64) {
        let key = task.key.as_str();
        let cluster = task.cluster.as_str();
        let edit = |index: &mut Index, value: &str| {
            if sign > 0 {
                index.insert(value, key)
            } else {
                index.remove(value, key)
            }
        };
        edit(&mut self.by_desired, &scoped(cluster, desired_of(task)));
        if let Some(family) = task.family() {
            edit(&mut self.by_family, &scoped(cluster, family));
        }
        if let Some(started_by) = task.task.started_by.as_deref() {
            edit(&mut self.by_started_by, &scoped(cluster, started_by));
        }
        if let Some(service) = task.service() {
            edit(&mut self.by_service, &scoped(cluster, service));
        }
        if task.is_stopped() {
            return;
        }
        if let Some(arn) = task.instance_arn.as_deref() {
            edit(&mut self.by_instance, arn);
            let mut load = self.loads.get(arn).cloned().unwrap_or_default();
            let revision = self.revision;
            self.load_changes
                .remove(&(cluster.to_string(), load.version, arn.to_string()));
            let changed = Arc::make_mut(&mut load);
            changed.add(task, sign);
            changed.version = revision;
            self.load_changes
                .insert((cluster.to_string(), revision, arn.to_string()));
            self.loads.insert(arn.to_string(), load);
        }
        if let Some(counted) = counted_as(task.status) {
            let mut counts = self.cluster_tasks.get(cluster).copied().unwrap_or_default();
            match counted {
                Counted::Running => counts.0 += sign,
                Counted::Pending => counts.1 += sign,
            }
            if counts == (0, 0) {
                self.cluster_tasks.remove(cluster);
            } else {
                self.cluster_tasks.insert(cluster.to_string(), counts);
            }
        }
    }

    fn set_status(&mut self, key: &str, status: Option<String>) {
        let Some(scope) = status_scope(key) else {
            return;
        };
        if let Some(cluster) = cluster_of_instance_key(key) {
            self.instances_version
                .insert(cluster.to_string(), self.revision);
        }
        if let Some(old) = self.statuses.remove(key) {
            self.count_status(&scoped(&scope, &old), -1);
        }
        if let Some(status) = status {
            self.count_status(&scoped(&scope, &status), 1);
            self.statuses.insert(key.to_string(), status);
        }
    }

    fn count_status(&mut self, counter: &str, delta: i64) {
        let next = self.status_counts.get(counter).copied().unwrap_or(0) + delta;
        if next == 0 {
            self.status_counts.remove(counter);
        } else {
            self.status_counts.insert(counter.to_string(), next);
        }
    }

    /// The entry at `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.objects.get(key)
    }

    /// The entries under `prefix`, in key order.
    pub fn list<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a Entry)> {
        self.objects
            .range::<_, str>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(key, _)| key.starts_with(prefix))
    }

    /// The stored value at `key` with its revisions, as the store has it. Tasks keep only
    /// their decoded form (their entries carry revisions and an empty value): their JSON is
    /// made again here.
    pub fn key_value(&self, key: &str) -> Option<KeyValue> {
        let entry = self.objects.get(key)?;
        let mut kv = entry.to_key_value(key);
        if let Some(task) = self.tasks.get(key) {
            kv.value = berth_store::typed::encode(&task.task);
        }
        Some(kv)
    }

    /// The task at `key`.
    pub fn task(&self, key: &str) -> Option<&Arc<TaskEntry>> {
        self.tasks.get(key)
    }

    /// Every task, in key order.
    pub fn all_tasks(&self) -> impl Iterator<Item = &Arc<TaskEntry>> {
        self.tasks.values()
    }

    /// The tasks under `value` of `index`, in key order, from after `after`.
    pub fn tasks_by<'a>(
        &'a self,
        index: TaskIndex,
        value: &str,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<TaskEntry>> + 'a {
        self.index(index)
            .keys_after(value, after)
            .filter_map(|key| self.tasks.get(key))
    }

    /// How many tasks `index` files under `value`.
    pub fn count_tasks(&self, index: TaskIndex, value: &str) -> usize {
        self.index(index).count(value)
    }

    fn index(&self, index: TaskIndex) -> &Index {
        match index {
            TaskIndex::Desired => &self.by_desired,
            TaskIndex::Family => &self.by_family,
            TaskIndex::StartedBy => &self.by_started_by,
            TaskIndex::Service => &self.by_service,
            TaskIndex::Instance => &self.by_instance,
        }
    }

    /// Every task of `cluster` (STOPPED ones included), in key order, from after `after`.
    pub fn tasks_of<'a>(
        &'a self,
        cluster: &str,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<TaskEntry>> + 'a {
        let prefix = keys::tasks_of(cluster);
        let start = match after {
            Some(after) => std::ops::Bound::Excluded(after.to_string()),
            None => std::ops::Bound::Included(prefix.clone()),
        };
        self.tasks
            .range((start, std::ops::Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(&prefix))
            .map(|(_, task)| task)
    }

    /// The ARNs of the instances of `cluster` whose load changed after `revision`.
    pub fn loads_changed_since<'a>(
        &'a self,
        cluster: &str,
        revision: u64,
    ) -> impl Iterator<Item = &'a String> + 'a {
        let from = (
            cluster.to_string(),
            revision.saturating_add(1),
            String::new(),
        );
        let cluster = cluster.to_string();
        self.load_changes
            .range(from..)
            .take_while(move |(c, _, _)| *c == cluster)
            .map(|(_, _, arn)| arn)
    }

    /// What runs on the instance with this ARN.
    pub fn load(&self, instance_arn: &str) -> Option<&InstanceLoad> {
        self.loads.get(instance_arn).map(Arc::as_ref)
    }

    /// The stored container instances of `cluster`, in key (id) order.
    pub fn instances_of<'a>(
        &'a self,
        cluster: &str,
    ) -> impl Iterator<Item = &'a Arc<Versioned<ContainerInstance>>> + 'a {
        let prefix = keys::instances_of(cluster);
        self.instances
            .range::<_, str>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(key, _)| key.starts_with(&prefix))
            .map(|(_, instance)| instance)
    }

    /// The keys of the services of `cluster`.
    pub fn service_keys_of<'a>(&'a self, cluster: &str) -> Vec<&'a String> {
        let prefix = keys::services_of(cluster);
        self.objects
            .range::<_, str>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| key)
            .collect()
    }

    /// Every stored container instance with its key, in key order.
    pub fn all_instances(
        &self,
    ) -> impl Iterator<Item = (&String, &Arc<Versioned<ContainerInstance>>)> {
        self.instances.iter()
    }

    /// The container instance stored at `key`.
    pub fn instance(&self, key: &str) -> Option<&Arc<Versioned<ContainerInstance>>> {
        self.instances.get(key)
    }

    /// The task definition revision an ARN (`...:task-definition/FAMILY:REVISION`) names.
    pub fn definition(&self, arn: &str) -> Option<&Arc<TaskDefinitionRecord>> {
        let (family, revision) = arn.rsplit('/').next()?.rsplit_once(':')?;
        let revision = revision.parse::<u32>().ok()?;
        self.definitions
            .get(&keys::task_definition(family, revision))
    }

    /// The revision of the last change to an instance record of `cluster` (0 when none).
    pub fn instances_version(&self, cluster: &str) -> u64 {
        self.instances_version.get(cluster).copied().unwrap_or(0)
    }

    /// Running and pending task counts of `cluster`.
    pub fn cluster_task_counts(&self, cluster: &str) -> (i64, i64) {
        self.cluster_tasks.get(cluster).copied().unwrap_or_default()
    }

    /// How many instances (`kind` "instances") or services (`kind` "services") of `cluster`
    /// have `status`.
    pub fn status_count(&self, kind: &str, cluster: &str, status: &str) -> i64 {
        let scope = format!("/{kind}/{cluster}");
        self.status_counts
            .get(&scoped(&scope, status))
            .copied()
            .unwrap_or(0)
    }

    /// Every index and counter, for checks that they equal a rebuild from scratch.
    #[cfg(test)]
    pub fn derived(&self) -> Derived {
        Derived {
            indexes: [
                &self.by_desired,
                &self.by_family,
                &self.by_started_by,
                &self.by_service,
                &self.by_instance,
            ]
            .map(Index::pairs)
            .to_vec(),
            loads: self
                .loads
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| {
                    // The version is when it changed, which a rebuild cannot know.
                    let load = InstanceLoad {
                        version: 0,
                        ..(**v).clone()
                    };
                    (k.clone(), load)
                })
                .collect(),
            cluster_tasks: self
                .cluster_tasks
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            status_counts: self
                .status_counts
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            tasks: self.tasks.len(),
            definitions: self.definitions.len(),
            instances: self.instances.len(),
        }
    }
}

/// Everything a state derives from its objects, comparable.
#[cfg(test)]
#[derive(Debug, PartialEq)]
pub struct Derived {
    indexes: Vec<Vec<(String, String)>>,
    loads: Vec<(String, InstanceLoad)>,
    cluster_tasks: Vec<(String, (i64, i64))>,
    status_counts: Vec<(String, i64)>,
    tasks: usize,
    definitions: usize,
    instances: usize,
}

/// The cluster of an instance key.
fn cluster_of_instance_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(keys::INSTANCES)?;
    rest.split_once('/').map(|(cluster, _)| cluster)
}

/// The desiredStatus a task is listed under.
fn desired_of(task: &TaskEntry) -> &str {
    if task.desired_stopped {
        "STOPPED"
    } else {
        task.task
            .desired_status
            .map_or("RUNNING", |status| status.as_str())
    }
}

/// `/instances/{cluster}` or `/services/{cluster}` for a key of either kind.
fn status_scope(key: &str) -> Option<String> {
    let (kind, rest) = if let Some(rest) = key.strip_prefix(keys::INSTANCES) {
        ("instances", rest)
    } else {
        ("services", key.strip_prefix(keys::SERVICES)?)
    };
    let (cluster, _) = rest.split_once('/')?;
    Some(format!("/{kind}/{cluster}"))
}

/// The `status` field of a stored JSON object ("" when absent).
fn status_field(value: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Status {
        status: Option<String>,
    }
    serde_json::from_slice::<Status>(value)
        .ok()
        .and_then(|s| s.status)
        .unwrap_or_default()
}

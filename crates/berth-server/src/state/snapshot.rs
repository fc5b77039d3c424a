//! One consistent picture of the store at a revision: every key with its value, the tasks,
//! instances and task definitions decoded once, and the indexes and counters kept from them.
//! Built of persistent maps, so cloning it is cheap and a reader holds a whole snapshot
//! without holding a lock.

use super::index::{scoped, Index};
use super::load::{counted_as, Counted, InstanceLoad};
use super::tasks::{Key, TaskEntry};
use berth_core::model::container_instance::ContainerInstance;
use berth_core::model::task::Task;
use berth_core::model::task_definition::TaskDefinitionRecord;
use berth_core::model::Connectivity;
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
    /// By (cluster, service name): tasks its deployments started that are not STOPPED.
    Service,
    /// By (cluster, service name): its STOPPED tasks (kept out of the hot index above).
    ServiceStopped,
    /// By instance ARN: tasks not yet STOPPED.
    Instance,
}

/// The store as of one revision, decoded and indexed.
#[derive(Debug, Clone, Default)]
pub struct State {
    revision: u64,
    objects: OrdMap<Key, Entry>,
    tasks: OrdMap<Key, Arc<TaskEntry>>,
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
    by_service_stopped: Index,
    by_instance: Index,
    loads: OrdMap<Key, Arc<InstanceLoad>>,
    /// (cluster, load version, instance ARN) of every load: which loads changed after a
    /// revision, in O(changed). A load whose tasks all left stays (empty) so its change shows.
    load_changes: imbl::OrdSet<(Key, u64, Key)>,
    /// Running and pending task counts by cluster.
    cluster_tasks: OrdMap<Key, (i64, i64)>,
    /// Running and pending task counts of each service, by (cluster, service name), and of
    /// each service deployment, by (cluster, deployment id): what DescribeServices shows.
    service_tasks: OrdMap<String, (i64, i64)>,
    deployment_tasks: OrdMap<String, (i64, i64)>,
    /// By cluster: the revision of the last change to any of its instance records.
    instances_version: OrdMap<String, u64>,
    /// STOPPED tasks by (stoppedAt in ms, key): the ones past retention in O(due).
    stopped: imbl::OrdSet<(i64, Key)>,
    /// How many tasks not yet STOPPED use each task definition ARN.
    definition_users: OrdMap<Key, i64>,
    /// RunTask client tokens by (createdAt in ms, key).
    tokens: imbl::OrdSet<(i64, Key)>,
    /// Task definition revisions by (status, family, revision): ListTaskDefinitions pages
    /// from it in either order.
    definition_revisions: OrdMap<&'static str, imbl::OrdSet<(String, u32)>>,
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
            state.put(Key::from(kv.key), entry, &mut touched);
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
                let previous = self.objects.get(key.as_str());
                let entry = Entry {
                    value: Arc::from(value),
                    create_revision: previous.map_or(revision, |p| p.create_revision),
                    mod_revision: revision,
                    version: previous.map_or(1, |p| p.version + 1),
                };
                self.put(Key::from(key), entry, touched);
            }
            EventKind::Delete => self.delete(&key, touched),
        }
    }

    fn put(&mut self, key: Key, entry: Entry, touched: &mut Touched) {
        if key.starts_with(keys::TASKS) {
            let previous = self.tasks.get(&key).cloned();
            match serde_json::from_slice::<Task>(&entry.value) {
                Ok(task) => {
                    // A task's definition and overrides never change, nor so what it holds.
                    let resources = match previous.as_deref() {
                        Some(p)
                            if p.resources.is_some()
                                && p.task.task_definition_arn == task.task_definition_arn
                                && p.task.overrides == task.overrides =>
                        {
                            p.resources.clone()
                        }
                        _ => self.resources_of(&task),
                    };
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
                    self.set_definition(&key, Some(Arc::new(record)));
                }
                Err(e) => {
                    tracing::error!(key = %key, error = %e, "state: stored task definition does not decode");
                    self.set_definition(&key, None);
                }
            }
        } else if key.starts_with(keys::INSTANCES) {
            match serde_json::from_slice::<ContainerInstance>(&entry.value) {
                Ok(instance) => {
                    let status = instance
                        .status
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    if self.statuses.get(&*key) != Some(&status) {
                        // Its agent's stream ends when it is deregistered.
                        touched
                            .instances
                            .extend(instance.container_instance_arn.clone());
                    }
                    self.set_status(&key, Some(status));
                    self.instances.insert(
                        key.to_string(),
                        Arc::new(Versioned {
                            value: instance,
                            mod_revision: entry.mod_revision,
                        }),
                    );
                }
                Err(e) => {
                    tracing::error!(key = %key, error = %e, "state: stored instance does not decode");
                    self.set_status(&key, None);
                    self.instances.remove(&*key);
                }
            }
        } else if key.starts_with(keys::SERVICES) {
            self.set_status(&key, Some(status_field(&entry.value)));
            touched.services.insert(key.to_string());
        } else if key.starts_with(keys::CLIENT_TOKENS) {
            if let Some(old) = self.objects.get(&*key) {
                self.tokens
                    .remove(&(created_ms(&old.value), Arc::clone(&key)));
            }
            self.tokens
                .insert((created_ms(&entry.value), Arc::clone(&key)));
        }
        if let Some(cluster) = cluster_of_instance_key(&key) {
            touched.clusters.insert(cluster.to_string());
        }
        self.objects.insert(key, entry);
    }

    fn delete(&mut self, key: &str, touched: &mut Touched) {
        let Some(old) = self.objects.remove(key) else {
            return;
        };
        if key.starts_with(keys::CLIENT_TOKENS) {
            self.tokens
                .remove(&(created_ms(&old.value), Key::from(key)));
        }
        if key.starts_with(keys::TASKS) {
            self.set_task(&Key::from(key), None, touched);
        } else if key.starts_with(keys::TASK_DEFINITIONS) {
            self.set_definition(key, None);
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

    /// Stores (or with `None` forgets) the task definition revision at `key`, refiling it in
    /// the (status, family, revision) index.
    fn set_definition(&mut self, key: &str, record: Option<Arc<TaskDefinitionRecord>>) {
        let old = match &record {
            Some(record) => self.definitions.insert(key.to_string(), Arc::clone(record)),
            None => self.definitions.remove(key),
        };
        if let Some((status, family, revision)) = old.as_deref().and_then(revision_filing) {
            let emptied = self
                .definition_revisions
                .get_mut(status)
                .is_some_and(|set| {
                    set.remove(&(family, revision));
                    set.is_empty()
                });
            if emptied {
                self.definition_revisions.remove(status);
            }
        }
        if let Some((status, family, revision)) = record.as_deref().and_then(revision_filing) {
            self.definition_revisions
                .entry(status)
                .or_default()
                .insert((family, revision));
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

    fn set_task(&mut self, key: &Key, next: Option<TaskEntry>, touched: &mut Touched) {
        let next = next.map(Arc::new);
        let previous = match &next {
            Some(next) => self.tasks.insert(Arc::clone(key), Arc::clone(next)),
            None => self.tasks.remove(&**key),
        };
        self.refile(key, previous.as_deref(), next.as_deref());
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
                touched.instances.insert(arn.to_string());
            }
        }
        for task in previous.iter().chain(next.iter()) {
            if let Some(service) = task.service() {
                touched
                    .services
                    .insert(keys::service(&task.cluster, service));
            }
        }
    }

    /// Moves the task at `key` in the indexes and counters from what `old` was filed under
    /// to what `new` is. Only what changed is touched: a progress report usually moves a task
    /// between counters and leaves every index alone.
    fn refile(&mut self, key: &Key, old: Option<&TaskEntry>, new: Option<&TaskEntry>) {
        let scoped_by = |task: Option<&TaskEntry>, field: fn(&TaskEntry) -> Option<&str>| {
            task.and_then(|t| field(t).map(|value| scoped(&t.cluster, value)))
        };
        let indexes: [(&mut Index, Field); 5] = [
            (&mut self.by_desired, |t| Some(desired_of(t))),
            (&mut self.by_family, TaskEntry::family),
            (&mut self.by_started_by, |t| t.task.started_by.as_deref()),
            (&mut self.by_service, |t| {
                t.service().filter(|_| !t.is_stopped())
            }),
            (&mut self.by_service_stopped, |t| {
                t.service().filter(|_| t.is_stopped())
            }),
        ];
        for (index, field) in indexes {
            let (before, after) = (scoped_by(old, field), scoped_by(new, field));
            index.refile(key, before.as_deref(), after.as_deref());
        }
        self.by_instance.refile(key, placed_on(old), placed_on(new));
        let (before, after) = (stopped_ms(old), stopped_ms(new));
        if before != after {
            if let Some(at) = before {
                self.stopped.remove(&(at, Arc::clone(key)));
            }
            if let Some(at) = after {
                self.stopped.insert((at, Arc::clone(key)));
            }
        }
        let (before, after) = (definition_used(old), definition_used(new));
        if before != after {
            for (arn, sign) in [(before, -1), (after, 1)] {
                if let Some(arn) = arn {
                    let users = self.definition_users.get(arn).copied().unwrap_or(0) + sign;
                    if users == 0 {
                        self.definition_users.remove(arn);
                    } else {
                        self.definition_users.insert(Key::from(arn), users);
                    }
                }
            }
        }
        if load_facts(old) != load_facts(new) {
            for (task, sign) in [(old, -1), (new, 1)] {
                if let Some(task) = task.filter(|t| !t.is_stopped()) {
                    if let Some(arn) = &task.instance_arn {
                        self.add_load(&task.cluster, arn, task, sign);
                    }
                }
            }
        }
        let (before, after) = (cluster_count(old), cluster_count(new));
        if before != after {
            for (counted, sign) in [(before, -1), (after, 1)] {
                if let Some((cluster, counted)) = counted {
                    self.count_task(cluster, counted, sign);
                }
            }
        }
        for (counters, field) in [
            (&mut self.service_tasks, TaskEntry::service as Field),
            (&mut self.deployment_tasks, |t| {
                t.service().and(t.task.started_by.as_deref())
            }),
        ] {
            let (before, after) = (service_count(old, field), service_count(new, field));
            if before != after {
                for (counted, sign) in [(before, -1), (after, 1)] {
                    if let Some((key, counted)) = counted {
                        bump(counters, key, counted, sign);
                    }
                }
            }
        }
    }

    /// Counts `task` in (`sign` 1) or out (-1) of the load of the instance `arn`.
    fn add_load(&mut self, cluster: &Key, arn: &Key, task: &TaskEntry, sign: i64) {
        let mut load = self.loads.get(&**arn).cloned().unwrap_or_default();
        let revision = self.revision;
        if load.version != revision {
            self.load_changes
                .remove(&(Arc::clone(cluster), load.version, Arc::clone(arn)));
            self.load_changes
                .insert((Arc::clone(cluster), revision, Arc::clone(arn)));
        }
        let changed = Arc::make_mut(&mut load);
        changed.add(task, sign);
        changed.version = revision;
        self.loads.insert(Arc::clone(arn), load);
    }

    fn count_task(&mut self, cluster: &Key, counted: Counted, sign: i64) {
        let mut counts = self
            .cluster_tasks
            .get(&**cluster)
            .copied()
            .unwrap_or_default();
        match counted {
            Counted::Running => counts.0 += sign,
            Counted::Pending => counts.1 += sign,
        }
        if counts == (0, 0) {
            self.cluster_tasks.remove(&**cluster);
        } else {
            self.cluster_tasks.insert(Arc::clone(cluster), counts);
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
    pub fn list<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a Key, &'a Entry)> {
        self.list_after(prefix, None)
    }

    /// The entries under `prefix` in key order, from after `after` when given: a listing
    /// resumes there in O(page).
    pub fn list_after<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Key, &'a Entry)> {
        let start = match after {
            Some(after) if after >= prefix => std::ops::Bound::Excluded(after),
            _ => std::ops::Bound::Included(prefix),
        };
        self.objects
            .range::<_, str>((start, std::ops::Bound::Unbounded))
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

    /// Every task of the service `value` (cluster-scoped), STOPPED ones included, in key
    /// order from after `after`: its hot and cold indexes merged.
    pub fn service_tasks<'a>(
        &'a self,
        value: &str,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<TaskEntry>> + 'a {
        let mut live = self.tasks_by(TaskIndex::Service, value, after).peekable();
        let mut stopped = self
            .tasks_by(TaskIndex::ServiceStopped, value, after)
            .peekable();
        std::iter::from_fn(move || match (live.peek(), stopped.peek()) {
            (Some(a), Some(b)) if b.key < a.key => stopped.next(),
            (Some(_), _) => live.next(),
            (None, _) => stopped.next(),
        })
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
            TaskIndex::ServiceStopped => &self.by_service_stopped,
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
            Some(after) => std::ops::Bound::Excluded(after),
            None => std::ops::Bound::Included(prefix.as_str()),
        };
        self.tasks
            .range::<_, str>((start, std::ops::Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(&prefix))
            .map(|(_, task)| task)
    }

    /// The ARNs of the instances of `cluster` whose load changed after `revision`.
    pub fn loads_changed_since<'a>(
        &'a self,
        cluster: &str,
        revision: u64,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        let cluster = Key::from(cluster);
        let from = (
            Arc::clone(&cluster),
            revision.saturating_add(1),
            Key::from(""),
        );
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
        self.instances_after(cluster, None)
    }

    /// The stored container instances of `cluster` in key (id) order, from after the one
    /// with id `after` when given.
    pub fn instances_after<'a>(
        &'a self,
        cluster: &str,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<Versioned<ContainerInstance>>> + 'a {
        let prefix = keys::instances_of(cluster);
        let start = match after {
            Some(id) => std::ops::Bound::Excluded(keys::instance(cluster, id)),
            None => std::ops::Bound::Included(prefix.clone()),
        };
        self.instances
            .range((start, std::ops::Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(&prefix))
            .map(|(_, instance)| instance)
    }

    /// The keys of the services of `cluster`.
    pub fn service_keys_of<'a>(&'a self, cluster: &str) -> Vec<&'a Key> {
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

    /// The task definition revision stored at `key`.
    pub fn definition_at(&self, key: &str) -> Option<&Arc<TaskDefinitionRecord>> {
        self.definitions.get(key)
    }

    /// The task definition revisions under `prefix` (one family's), newest first.
    pub fn definitions_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a Arc<TaskDefinitionRecord>> + 'a {
        self.definitions
            .range::<_, str>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(key, _)| key.starts_with(prefix))
            .map(|(_, record)| record)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
    }

    /// The (family, revision) of the task definition revisions with `status`, of `family`
    /// only when given, in (family, revision) order from after `after`, or in reverse order
    /// from before it when `descending`: O(page).
    pub fn definition_revisions<'a>(
        &'a self,
        status: &str,
        family: Option<&str>,
        after: Option<(&str, u32)>,
        descending: bool,
    ) -> Box<dyn Iterator<Item = (&'a str, u32)> + 'a> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let Some(set) = self.definition_revisions.get(status) else {
            return Box::new(std::iter::empty());
        };
        let (mut low, mut high) = match family {
            Some(family) => (
                Included((family.to_string(), 0)),
                Included((family.to_string(), u32::MAX)),
            ),
            None => (Unbounded, Unbounded),
        };
        if let Some((family, revision)) = after {
            let last = (family.to_string(), revision);
            if descending {
                high = Excluded(last);
            } else {
                low = Excluded(last);
            }
        }
        let range = set.range((low, high)).map(|(f, r)| (f.as_str(), *r));
        if descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        }
    }

    /// Every stored task definition revision with its key and revision, in key order.
    pub fn all_definitions(
        &self,
    ) -> impl Iterator<Item = (&String, u64, &Arc<TaskDefinitionRecord>)> + '_ {
        self.definitions.iter().map(|(key, record)| {
            let revision = self.objects.get(key.as_str()).map_or(0, |e| e.mod_revision);
            (key, revision, record)
        })
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

    /// STOPPED tasks that stopped before `ms` (epoch ms), oldest first.
    pub fn stopped_before(&self, ms: i64) -> impl Iterator<Item = &Arc<TaskEntry>> + '_ {
        self.stopped
            .range(..(ms, Key::from("")))
            .filter_map(|(_, key)| self.tasks.get(&**key))
    }

    /// When the STOPPED task that stopped first did (epoch ms).
    pub fn first_stopped(&self) -> Option<i64> {
        self.stopped.get_min().map(|(at, _)| *at)
    }

    /// Whether any task not yet STOPPED uses the task definition `arn`.
    pub fn definition_in_use(&self, arn: &str) -> bool {
        self.definition_users.contains_key(arn)
    }

    /// The client tokens created before `ms` (epoch ms), with their revisions, oldest first.
    pub fn tokens_before(&self, ms: i64) -> impl Iterator<Item = (&Key, u64)> + '_ {
        self.tokens
            .range(..(ms, Key::from("")))
            .filter_map(|(_, key)| Some((key, self.objects.get(&**key)?.mod_revision)))
    }

    /// When the oldest client token was created (epoch ms).
    pub fn first_token(&self) -> Option<i64> {
        self.tokens.get_min().map(|(at, _)| *at)
    }

    /// The revision of the last change to an instance record of `cluster` (0 when none).
    pub fn instances_version(&self, cluster: &str) -> u64 {
        self.instances_version.get(cluster).copied().unwrap_or(0)
    }

    /// Running and pending task counts of the service `value` (cluster-scoped).
    pub fn service_task_counts(&self, value: &str) -> (i64, i64) {
        self.service_tasks.get(value).copied().unwrap_or_default()
    }

    /// Running and pending task counts of the service deployment `value` (cluster-scoped id).
    pub fn deployment_task_counts(&self, value: &str) -> (i64, i64) {
        self.deployment_tasks
            .get(value)
            .copied()
            .unwrap_or_default()
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
                &self.by_service_stopped,
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
                    (k.to_string(), load)
                })
                .collect(),
            cluster_tasks: self
                .cluster_tasks
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            status_counts: self
                .status_counts
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            stopped: self
                .stopped
                .iter()
                .map(|(at, k)| (*at, k.to_string()))
                .collect(),
            definition_users: self
                .definition_users
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            tokens: self
                .tokens
                .iter()
                .map(|(at, k)| (*at, k.to_string()))
                .collect(),
            service_tasks: self
                .service_tasks
                .iter()
                .chain(self.deployment_tasks.iter())
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            definition_revisions: self
                .definition_revisions
                .iter()
                .flat_map(|(s, set)| set.iter().map(move |(f, r)| (s.to_string(), f.clone(), *r)))
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
    stopped: Vec<(i64, String)>,
    definition_users: Vec<(String, i64)>,
    tokens: Vec<(i64, String)>,
    definition_revisions: Vec<(String, String, u32)>,
    service_tasks: Vec<(String, (i64, i64))>,
    tasks: usize,
    definitions: usize,
    instances: usize,
}

/// A field of a task that an index files it under.
type Field = fn(&TaskEntry) -> Option<&str>;

/// When a STOPPED task stopped, in ms since the epoch (none when it is not STOPPED or the
/// time is missing: such a task is never purged).
fn stopped_ms(task: Option<&TaskEntry>) -> Option<i64> {
    let task = task.filter(|t| t.is_stopped())?;
    Some(epoch_ms(task.task.stopped_at?))
}

/// The task definition ARN a task not yet STOPPED uses.
fn definition_used(task: Option<&TaskEntry>) -> Option<&str> {
    task.filter(|t| !t.is_stopped())?
        .task
        .task_definition_arn
        .as_deref()
}

/// Epoch seconds as whole milliseconds, for ordering.
pub fn epoch_ms(seconds: f64) -> i64 {
    (seconds * 1000.0).floor() as i64
}

/// The `createdAt` of a stored client token, in ms (0 when unreadable: purged at once).
fn created_ms(value: &[u8]) -> i64 {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Created {
        created_at: Option<f64>,
    }
    serde_json::from_slice::<Created>(value)
        .ok()
        .and_then(|c| c.created_at)
        .map_or(0, epoch_ms)
}

/// Where a task definition revision is filed: (status, family, revision).
fn revision_filing(record: &TaskDefinitionRecord) -> Option<(&'static str, String, u32)> {
    let td = &record.task_definition;
    Some((
        td.status?.as_str(),
        td.family.clone()?,
        u32::try_from(td.revision?).ok()?,
    ))
}

/// The instance a task is placed on, while it is not STOPPED.
fn placed_on(task: Option<&TaskEntry>) -> Option<&str> {
    task.filter(|t| !t.is_stopped())?.instance_arn.as_deref()
}

/// The (cluster, `field`) counter a service task counts in, and as what. ECS stops counting
/// a task the scheduler stopped on an instance whose agent is gone (it never reports STOPPED).
fn service_count(task: Option<&TaskEntry>, field: Field) -> Option<(String, Counted)> {
    let task = task?;
    let abandoned =
        task.task.connectivity == Some(Connectivity::Disconnected) && task.desired_stopped;
    if abandoned {
        return None;
    }
    Some((
        scoped(&task.cluster, field(task)?),
        counted_as(task.status)?,
    ))
}

/// Adds `sign` to the `counted` count of `key`; a pair that reaches zero is dropped.
fn bump(counters: &mut OrdMap<String, (i64, i64)>, key: String, counted: Counted, sign: i64) {
    let mut counts = counters.get(&key).copied().unwrap_or_default();
    match counted {
        Counted::Running => counts.0 += sign,
        Counted::Pending => counts.1 += sign,
    }
    if counts == (0, 0) {
        counters.remove(&key);
    } else {
        counters.insert(key, counts);
    }
}

/// The cluster whose running or pending count a task is in, and which.
fn cluster_count(task: Option<&TaskEntry>) -> Option<(&Key, Counted)> {
    let task = task?;
    Some((&task.cluster, counted_as(task.status)?))
}

/// What a task adds to its instance's load, while it is not STOPPED: the instance, how it
/// counts, what it holds and its group.
type LoadFacts<'a> = (
    &'a str,
    Option<Counted>,
    Option<&'a TaskResources>,
    Option<&'a str>,
);

fn load_facts(task: Option<&TaskEntry>) -> Option<LoadFacts<'_>> {
    let task = task.filter(|t| !t.is_stopped())?;
    Some((
        task.instance_arn.as_deref()?,
        counted_as(task.status),
        task.resources.as_ref(),
        task.placed_group(),
    ))
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

//! One consistent picture of the store at a revision: every key with its value, the tasks,
//! instances and task definitions decoded once, and the indexes and counters kept from them.
//! Built of persistent maps, so cloning it is cheap and a reader holds a whole snapshot
//! without holding a lock.

mod filing;
mod queries;

use super::index::{scoped, Index};
use super::load::InstanceLoad;
use super::tasks::{Key, TaskEntry};
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
            // Nothing changed; the revision above is all it says.
            EventKind::Progress => {}
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

/// The cluster of an instance key.
fn cluster_of_instance_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(keys::INSTANCES)?;
    rest.split_once('/').map(|(cluster, _)| cluster)
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

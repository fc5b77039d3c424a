//! Reading a state: lookups, index walks and counters, each O(answer).

use super::super::index::{scoped, Index};
use super::super::load::InstanceLoad;
use super::super::tasks::{Key, TaskEntry};
use super::{Entry, State, TaskIndex};
use berth_core::model::container_instance::ContainerInstance;
use berth_core::model::task_definition::TaskDefinitionRecord;
use berth_store::typed::Versioned;
use berth_store::{keys, KeyValue};
use std::sync::Arc;

impl State {
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

    /// Every task, in key order (for checks against a full scan, and `/metrics`).
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

    /// (running, pending) FARGATE tasks of `cluster`: a part of `cluster_task_counts`.
    pub fn cluster_fargate_counts(&self, cluster: &str) -> (i64, i64) {
        self.cluster_tasks
            .get(scoped(cluster, "FARGATE").as_str())
            .copied()
            .unwrap_or_default()
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
}

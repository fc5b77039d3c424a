//! Filing a task: where each write moves it in the indexes, loads and counters, touching only
//! what changed.

use super::super::index::{scoped, Index};
use super::super::load::{counted_as, Counted};
use super::super::tasks::{Key, TaskEntry};
use super::{epoch_ms, State, Touched};
use berth_core::model::Connectivity;
use berth_core::resources::TaskResources;
use berth_store::keys;
use imbl::OrdMap;
use std::sync::Arc;

impl State {
    pub(super) fn set_task(&mut self, key: &Key, next: Option<TaskEntry>, touched: &mut Touched) {
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
                if let Some((cluster, counted, fargate)) = counted {
                    if fargate {
                        // Fargate's own counts, under the cluster's name and FARGATE.
                        let key = Key::from(scoped(cluster, "FARGATE").as_str());
                        bump(&mut self.cluster_tasks, key, counted, sign);
                    }
                    bump(&mut self.cluster_tasks, Arc::clone(cluster), counted, sign);
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
fn bump<K: Ord + Clone>(counters: &mut OrdMap<K, (i64, i64)>, key: K, counted: Counted, sign: i64) {
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

/// The cluster whose running or pending count a task is in, which, and whether it is a
/// FARGATE task.
fn cluster_count(task: Option<&TaskEntry>) -> Option<(&Key, Counted, bool)> {
    let task = task?;
    let fargate = task.task.launch_type.as_deref() == Some("FARGATE");
    Some((&task.cluster, counted_as(task.status)?, fargate))
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

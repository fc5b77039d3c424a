//! The correctness check after the load: what the server lists as RUNNING, what the agents'
//! hollow runtimes actually run, and the tasks RunTask placed must all be the same set, each
//! task exactly once and on the instance it was placed on.

use super::api::{id_of, Api};
use super::load::Placed;
use berth_agent::runtime::hollow::HollowRuntime;
use berth_agent::runtime::ContainerRuntime;
use berth_agent::spec::{LABEL_CONTAINER_INSTANCE, LABEL_TASK_ARN};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the check found.
#[derive(Debug, Default, Clone)]
pub struct Verification {
    /// The ARNs ListTasks (desiredStatus RUNNING) answered, each once.
    pub listed: BTreeSet<String>,
    /// ARNs ListTasks answered more than once.
    pub listed_twice: usize,
    /// Placed tasks ListTasks does not list.
    pub placed_not_listed: usize,
    /// Running containers, over all agents.
    pub containers_running: usize,
    /// Tasks with more than one running container (each task has one container).
    pub run_twice: usize,
    /// Listed tasks no agent runs.
    pub listed_not_run: usize,
    /// Tasks an agent runs that ListTasks does not list.
    pub run_not_listed: usize,
    /// Placed tasks run by an agent other than the one they were placed on.
    pub misplaced: usize,
}

impl Verification {
    /// Tasks found twice, anywhere.
    pub fn duplicates(&self) -> usize {
        self.listed_twice + self.run_twice
    }
}

/// Compares ListTasks, the hollow runtimes and `placed`.
pub async fn verify(
    api: &Api,
    runtimes: &[Arc<HollowRuntime>],
    placed: &[Placed],
) -> anyhow::Result<Verification> {
    let mut check = Verification::default();
    for arn in api.running_task_arns().await? {
        if !check.listed.insert(arn) {
            check.listed_twice += 1;
        }
    }
    check.placed_not_listed = placed
        .iter()
        .filter(|p| !check.listed.contains(&p.task_arn))
        .count();

    // Task ARN -> instance ids of the containers running it.
    let mut running: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for runtime in runtimes {
        for container in runtime.list_containers(&BTreeMap::new()).await? {
            if !container.running {
                continue;
            }
            check.containers_running += 1;
            let label = |name: &str| container.labels.get(name).cloned().unwrap_or_default();
            running
                .entry(label(LABEL_TASK_ARN))
                .or_default()
                .push(label(LABEL_CONTAINER_INSTANCE));
        }
    }
    check.run_twice = running.values().filter(|on| on.len() > 1).count();
    check.listed_not_run = check
        .listed
        .iter()
        .filter(|arn| !running.contains_key(*arn))
        .count();
    check.run_not_listed = running
        .keys()
        .filter(|arn| !check.listed.contains(*arn))
        .count();
    check.misplaced = placed
        .iter()
        .filter(|p| {
            running
                .get(&p.task_arn)
                .is_some_and(|on| on.iter().any(|i| i != id_of(&p.instance_arn)))
        })
        .count();
    Ok(check)
}

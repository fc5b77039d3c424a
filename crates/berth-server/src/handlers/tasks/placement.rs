//! Placement against the stored cluster, for RunTask, StartTask and the service controller:
//! build the scheduler's snapshot from the state cache (the cluster's instances and the loads
//! kept from their live tasks), run the pure engine of `berth_core::scheduler`, and commit the
//! placed tasks in one transaction guarded by the instances' revisions (`None` from [`commit`]
//! means another writer won: plan again). Callers hold the cluster's placement turn
//! (`App::placement_turn`) from planning to commit.
//!
//! The service controller calls [`plan_batches`] with its own [`TaskRequest`]s (group
//! `service:<name>`, strategies from [`strategies`] with `default_service_strategies`,
//! constraints from [`constraints`]), builds a task per placement of the plan's one call, and
//! commits them guarded by the instances of [`Plan::placed_ids`]. RunTask places the calls
//! queued on a cluster together with [`plan_calls`] (see `run_queue`).

use crate::app::App;
use crate::error::ApiError;
use crate::state::State;
use berth_core::arn::id_of;
use berth_core::model::container_instance::ContainerInstance;
use berth_core::model::task::{PlacementConstraint, PlacementStrategy, Task};
use berth_core::model::task_definition::TaskDefinitionPlacementConstraint;
use berth_core::model::Attribute;
use berth_core::model::{ContainerInstanceStatus, Failure};
use berth_core::resources::Reservation;
use berth_core::scheduler::{
    parse_constraints, parse_strategies, required_attributes, Constraint, InstanceInfo, Occupancy,
    Outcome, Reason, RequiredAttribute, Snapshot, Strategy, TaskRequest,
};
use berth_store::typed::{encode, Versioned};
use berth_store::{keys, Compare, Txn};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A cluster's stored instances by id (INACTIVE ones included), with their revisions.
pub type Instances = BTreeMap<String, Arc<Versioned<ContainerInstance>>>;

/// The stored instances of `cluster` by id.
pub fn instances_of(state: &State, cluster: &str) -> Instances {
    state
        .instances_of(cluster)
        .filter_map(|v| {
            let id = v
                .value
                .container_instance_arn
                .as_deref()
                .and_then(|a| id_of(a, "container-instance"))?;
            Some((id, Arc::clone(v)))
        })
        .collect()
}

/// The turn of a cluster's placements, with the snapshot the last one left.
pub type Turn = tokio::sync::OwnedMutexGuard<Option<Kept>>;

/// A scheduler snapshot kept between placements on a cluster, and what it was made from: the
/// cluster's instance records as of `instances_version`, and the instances' loads as of state
/// revision `as_of`. The next placement refreshes only the instances whose load changed since
/// (and those it placed on), instead of building the snapshot again.
#[derive(Debug)]
pub struct Kept {
    instances_version: u64,
    as_of: u64,
    snapshot: Snapshot,
    instances: Instances,
    /// Snapshot index by instance ARN.
    index_of: HashMap<String, usize>,
    /// Instances to refresh whatever the loads say (the last placement's).
    stale: Vec<usize>,
}

/// The scheduler's snapshot of `cluster` (instances in id order, INACTIVE ones left out) and
/// the stored instances it was made from: remaining resources from what each instance's tasks
/// hold, running counts and task groups from the loads the state cache keeps (no task is
/// read). Starts from the snapshot the turn kept when the cluster's instances have not
/// changed since; the turn keeps nothing afterwards (see [`keep`]).
pub fn snapshot(app: &App, turn: &mut Turn, cluster: &str) -> (Snapshot, Instances) {
    let kept = refreshed(&app.snapshot(), turn.take(), cluster);
    (kept.snapshot, kept.instances)
}

fn refreshed(state: &State, kept: Option<Kept>, cluster: &str) -> Kept {
    let instances_version = state.instances_version(cluster);
    match kept {
        Some(mut kept) if kept.instances_version == instances_version => {
            let mut changed: Vec<usize> = std::mem::take(&mut kept.stale);
            changed.extend(
                state
                    .loads_changed_since(cluster, kept.as_of)
                    .filter_map(|arn| kept.index_of.get(&**arn).copied()),
            );
            changed.sort_unstable();
            changed.dedup();
            for i in changed {
                let arn = kept.snapshot.arn(i).to_string();
                if let Some(stored) = kept.instances.get(kept.snapshot.id(i)) {
                    set_load(&mut kept.snapshot, i, state, &arn, &stored.value);
                }
            }
            kept.as_of = state.revision();
            kept
        }
        _ => {
            let instances = instances_of(state, cluster);
            let snapshot = scheduler_snapshot(state, &instances);
            let index_of = (0..snapshot.len())
                .map(|i| (snapshot.arn(i).to_string(), i))
                .collect();
            Kept {
                instances_version,
                as_of: state.revision(),
                snapshot,
                instances,
                index_of,
                stale: Vec::new(),
            }
        }
    }
}

/// Refreshes instance `i` of `snapshot` from the load `state` keeps for it.
fn set_load(
    snapshot: &mut Snapshot,
    i: usize,
    state: &State,
    arn: &str,
    stored: &ContainerInstance,
) {
    let load = state.load(arn);
    let registered = stored.registered_resources.as_deref().unwrap_or_default();
    let left = load
        .map(|l| &l.reserved)
        .unwrap_or(&NOTHING_HELD)
        .remaining(registered);
    let groups = load.map(|l| l.group_list()).unwrap_or_default();
    snapshot.set_load(
        i,
        Occupancy {
            cpu: left.cpu,
            memory: left.memory,
            tcp_ports: left.tcp,
            udp_ports: left.udp,
            running_tasks_count: load.map_or(0, |l| l.running),
            groups: &groups,
        },
    );
}

/// Gives the snapshot of a committed plan back to the turn, for the next placement to start
/// from; the instances it placed on are refreshed then in any case.
pub fn keep(turn: &mut Turn, plan: Plan) {
    let Some(mut kept) = plan.kept else {
        return;
    };
    kept.snapshot = plan.snapshot;
    kept.instances = plan.instances;
    kept.stale = plan
        .calls
        .iter()
        .flat_map(|call| call.outcome.placements.iter().copied())
        .collect();
    **turn = Some(kept);
}

/// The reservation of an instance without tasks.
static NOTHING_HELD: Reservation = Reservation {
    cpu: 0,
    memory: 0,
    tcp: BTreeMap::new(),
    udp: BTreeMap::new(),
};

/// The scheduler's snapshot of `instances` as `state` has them: what each has left is its
/// registered resources less what its unstopped tasks hold.
pub fn scheduler_snapshot(state: &State, instances: &Instances) -> Snapshot {
    let infos = instances
        .values()
        .filter(|v| v.value.status != Some(ContainerInstanceStatus::Inactive))
        .map(|v| {
            let mut info = InstanceInfo::from_instance(&v.value);
            let load = state.load(&info.arn);
            if let Some(load) = load {
                info.running_tasks_count = load.running;
                info.groups = load.group_list();
            }
            let registered = v.value.registered_resources.as_deref().unwrap_or_default();
            let left = load
                .map(|l| &l.reserved)
                .unwrap_or(&NOTHING_HELD)
                .remaining(registered);
            info.cpu = left.cpu;
            info.memory = left.memory;
            info.tcp_ports = left.tcp;
            info.udp_ports = left.udp;
            info
        })
        .collect();
    Snapshot::new(infos)
}

/// What the scheduler decided for one call (a RunTask, a service's launch), and what it
/// decided it from.
#[derive(Debug)]
pub struct Plan {
    /// The snapshot, updated by the placements.
    pub snapshot: Snapshot,
    /// The stored instances the snapshot was made from.
    pub instances: Instances,
    /// What each call placed, in the order the calls were given (one for [`plan_batches`]).
    pub calls: Vec<Placed>,
    /// What the snapshot was made from (its snapshot and instances moved into the fields above).
    kept: Option<Kept>,
}

/// What the scheduler decided for one call's requests.
#[derive(Debug, Default)]
pub struct Placed {
    /// Where each task goes, or why none could go anywhere (the requests of a batched call
    /// one after another).
    pub outcome: Outcome,
    /// How many of `outcome.placements` each request of a batched call placed, in order.
    pub batches: Vec<usize>,
    /// The `detail` of each of `outcome.failures` (the missing attribute of an `ATTRIBUTE`).
    details: Vec<Option<String>>,
}

/// Places several requests of one call one after another on the same snapshot, each seeing
/// what the ones before it took (a capacity provider strategy: one request per provider). The
/// plan's one call holds them in order; [`Placed::batches`] says how many placements each made.
/// Hand the plan to [`keep`] once it is committed, so the next placement starts from its
/// snapshot.
pub fn plan_batches(
    app: &App,
    turn: &mut Turn,
    cluster: &str,
    requests: &[TaskRequest],
    seed: u64,
) -> Plan {
    plan_calls(app, turn, cluster, &[(requests, seed)])
}

/// Places several calls, each its requests and seed, one after another on the cluster as
/// stored now (nothing is written): each call sees what the calls before it took, and has
/// its own outcome and failures.
pub fn plan_calls(
    app: &App,
    turn: &mut Turn,
    cluster: &str,
    calls: &[(&[TaskRequest], u64)],
) -> Plan {
    let mut kept = refreshed(&app.snapshot(), turn.take(), cluster);
    let calls = calls
        .iter()
        .map(|&(requests, seed)| place_call(&mut kept.snapshot, requests, seed))
        .collect();
    Plan {
        snapshot: std::mem::take(&mut kept.snapshot),
        instances: std::mem::take(&mut kept.instances),
        calls,
        kept: Some(kept),
    }
}

fn place_call(snapshot: &mut Snapshot, requests: &[TaskRequest], seed: u64) -> Placed {
    let mut call = Placed::default();
    for (k, request) in requests.iter().enumerate() {
        let placed = snapshot.place(request, seed.wrapping_add(k as u64));
        call.batches.push(placed.placements.len());
        call.outcome.placements.extend(placed.placements);
        call.outcome.unplaced += placed.unplaced;
        for (i, reason) in placed.failures {
            if !call.outcome.failures.contains(&(i, reason)) {
                call.outcome.failures.push((i, reason));
                call.details.push(request.failure_detail(reason));
            }
        }
    }
    call
}

impl Plan {
    /// Whether the cluster has an ACTIVE instance at all.
    pub fn any_active(&self) -> bool {
        self.instances
            .values()
            .any(|i| i.value.status == Some(ContainerInstanceStatus::Active))
    }

    /// The container instance ARN of each task `call` placed, in order.
    pub fn placed_arns(&self, call: &Placed) -> Vec<String> {
        call.outcome
            .placements
            .iter()
            .map(|&i| self.snapshot.arn(i).to_string())
            .collect()
    }

    /// ECS's `failures` entries for the tasks `call` could not place: one per refusing
    /// instance, with its reason (and, for `ATTRIBUTE`, the missing attribute as `detail`).
    pub fn failures(&self, call: &Placed) -> Vec<Failure> {
        call.outcome
            .failures
            .iter()
            .zip(&call.details)
            .map(|(&(i, reason), detail)| {
                let mut failure = Failure::new(self.snapshot.arn(i), reason.code());
                failure.detail = detail.clone();
                failure
            })
            .collect()
    }

    /// The ids of the instances that receive tasks, of every call.
    pub fn placed_ids(&self) -> BTreeSet<String> {
        self.calls
            .iter()
            .flat_map(|call| &call.outcome.placements)
            .map(|&i| self.snapshot.id(i).to_string())
            .collect()
    }
}

/// Writes placed tasks (by task id), guarded by the revisions of the instances they go to
/// (an instance drained or deregistered meanwhile makes the caller plan again). Nothing is
/// written to the instances: what they have left derives from their tasks. Returns the new
/// revision, or `None` when another writer changed an instance (or a task id was taken).
pub async fn commit(
    app: &App,
    cluster: &str,
    tasks: &[(String, Task)],
    instances: &Instances,
    placed_on: &BTreeSet<String>,
) -> Result<Option<u64>, ApiError> {
    commit_with(app, cluster, tasks, instances, placed_on, Txn::new()).await
}

/// `commit`, adding the guards and writes of `txn` to the same transaction (RunTask's
/// clientToken record, for one).
pub async fn commit_with(
    app: &App,
    cluster: &str,
    tasks: &[(String, Task)],
    instances: &Instances,
    placed_on: &BTreeSet<String>,
    txn: Txn,
) -> Result<Option<u64>, ApiError> {
    let encoded: Vec<(String, Vec<u8>)> = tasks
        .iter()
        .map(|(task_id, task)| (task_id.clone(), encode(task)))
        .collect();
    commit_encoded(app, cluster, encoded, instances, placed_on, txn).await
}

/// `commit_with` of tasks already encoded, each with its task id.
pub async fn commit_encoded(
    app: &App,
    cluster: &str,
    tasks: Vec<(String, Vec<u8>)>,
    instances: &Instances,
    placed_on: &BTreeSet<String>,
    txn: Txn,
) -> Result<Option<u64>, ApiError> {
    let mut txn = txn;
    for id in placed_on {
        let revision = instances.get(id).map_or(0, |v| v.mod_revision);
        txn = txn.when(Compare::at(keys::instance(cluster, id), revision));
    }
    for (task_id, task) in tasks {
        let key = keys::task(cluster, &task_id);
        txn = txn.when(Compare::absent(&key)).put(key, task);
    }
    let result = app.commit(txn).await?;
    Ok(result.succeeded.then_some(result.revision))
}

/// The strategies of a call, or `default` when it names none; bad ones are
/// InvalidParameterException.
pub fn strategies(
    call: Option<&[PlacementStrategy]>,
    default: fn() -> Vec<Strategy>,
) -> Result<Vec<Strategy>, ApiError> {
    match call {
        Some(list) if !list.is_empty() => {
            parse_strategies(list).map_err(ApiError::invalid_parameter)
        }
        _ => Ok(default()),
    }
}

/// The constraints of a call together with its task definition's; a bad one (a memberOf
/// expression that does not parse: the message names the column) is InvalidParameterException.
pub fn constraints(
    call: Option<&[PlacementConstraint]>,
    task_definition: Option<&[TaskDefinitionPlacementConstraint]>,
) -> Result<Vec<Constraint>, ApiError> {
    parse_constraints(
        call.unwrap_or_default(),
        task_definition.unwrap_or_default(),
    )
    .map_err(ApiError::invalid_parameter)
}

/// The `failures` entry of an instance refused for `reason`: ECS's reason code, and for
/// `ATTRIBUTE` the first required attribute it lacks as `detail` (`name` or `name=value`).
pub fn failure(arn: &str, reason: Reason, required: &[RequiredAttribute]) -> Failure {
    let mut failure = Failure::new(arn, reason.code());
    if let Reason::Attribute(k) = reason {
        failure.detail = required.get(usize::from(k)).map(ToString::to_string);
    }
    failure
}

/// What a task definition's `requiresAttributes` asks of the instances its tasks go to.
pub fn requirements(requires_attributes: Option<&[Attribute]>) -> Vec<RequiredAttribute> {
    required_attributes(requires_attributes.unwrap_or_default())
}

/// A fresh seed for `random`.
pub fn seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}

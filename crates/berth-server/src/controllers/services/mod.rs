//! The service controller: reconciles each service that is not INACTIVE, driven by a keyed
//! work queue (`controllers::queue`) that the state cache's change events and a resync fill.
//! Each reconcile observes the service's tasks and the cluster's instances from the state
//! cache, lets the pure `berth_core::service::reconcile` decide, places the launches with the
//! scheduler, and commits the service, the stopped and new tasks and the deployment history in
//! one transaction guarded by every revision it read (the instances it places on included). A conflict just
//! means another writer won: the next pass decides again from what is stored, which is all the
//! controller needs, so a restarted controller continues where it was.

pub mod launch;
pub mod observe;

use crate::app::App;
use crate::controllers::queue::{spawn_workers, Action, WorkQueue};
use crate::elbv2::service_targets;
use crate::error::ApiError;
use crate::handlers::service_deployments::apply_history;
use crate::handlers::services::RandomIds;
use berth_core::model::service::ServiceDeployment;
use berth_core::model::ServiceStatus;
use berth_core::service::facts::TaskFact;
use berth_core::service::reconcile::{
    reconcile, record_started, record_unplaced, Launch, Observed,
};
use berth_core::service::record::parse_history_arn;
use berth_core::service::ServiceRecord;
use berth_core::task_state::{request_stop, stop_code};
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};
use std::sync::Arc;
use std::time::Duration;

/// How often every service is reconciled even when nothing changed (backoff expiry, grace
/// periods, missed events).
pub const RESYNC: Duration = Duration::from_secs(1);

/// Reconciles every service once; returns how many passes changed something.
pub async fn reconcile_all(app: &App) -> usize {
    let mut changed = 0;
    let records = match app.list::<ServiceRecord>(keys::SERVICES) {
        Ok(records) => records,
        Err(e) => {
            tracing::warn!(error = %e, "service controller: cannot list services");
            return 0;
        }
    };
    for stored in records {
        if stored.value.service.status == Some(ServiceStatus::Inactive) {
            continue;
        }
        let Some(cluster) = observe::cluster_of(&stored.value) else {
            continue;
        };
        let key = keys::service(&cluster, stored.value.name());
        match reconcile_service(app, &cluster, &key).await {
            Ok(pass) if pass.changed => changed += 1,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, service = key, "service controller: reconcile failed")
            }
        }
    }
    changed
}

/// What one reconcile of a service did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pass {
    /// Whether it committed a change (a lost race commits nothing: the next pass decides).
    pub changed: bool,
    /// When to reconcile again even if nothing changes: the scale-in protection of a task it
    /// held back ends then.
    pub wake_after: Option<Duration>,
}

impl Pass {
    /// The work queue's action after this pass.
    pub fn action(&self) -> Action {
        match self.wake_after {
            Some(delay) => Action::RequeueAfter(delay),
            None => Action::AwaitChange,
        }
    }
}

/// Reconciles the service stored at `key` once.
pub async fn reconcile_service(app: &App, cluster: &str, key: &str) -> Result<Pass, ApiError> {
    let mut turn = app.placement_turn(cluster).await;
    let Some(stored) = app.get::<ServiceRecord>(key)? else {
        return Ok(Pass::default());
    };
    if stored.value.service.status == Some(ServiceStatus::Inactive) {
        return Ok(Pass::default());
    }
    let name = stored.value.name().to_string();
    let tasks = observe::service_tasks(app, cluster, &name)?;
    let mut facts: Vec<TaskFact> = observe::task_facts(app, &tasks)?;
    service_targets::annotate(app, cluster, &stored.value, &tasks, &mut facts)?;
    let primary_td = stored
        .value
        .primary()
        .and_then(|p| p.task_definition.clone())
        .or_else(|| stored.value.service.task_definition.clone())
        .unwrap_or_default();
    let td = observe::task_definition(app, &primary_td)?;
    let constraints = stored
        .value
        .service
        .placement_constraints
        .clone()
        .unwrap_or_default();
    // A DAEMON service is placed on every eligible instance, so it looks at them all; a
    // replica service only asks whether the instances its tasks are on are lost.
    let instance_facts = if stored.value.is_daemon() {
        observe::instance_facts(
            app,
            cluster,
            &constraints,
            &td.as_ref()
                .map(|r| r.task_definition.clone())
                .unwrap_or_default(),
        )?
    } else {
        observe::facts_of_instances(
            app,
            cluster,
            facts.iter().filter_map(|t| t.instance_id.as_deref()),
        )
    };
    let now = app.now();
    let mut record = stored.value.clone();
    let mut ids = RandomIds;
    let plan = reconcile(
        &mut record,
        &Observed {
            tasks: &facts,
            instances: &instance_facts,
            now,
        },
        &mut ids,
    );

    let mut txn = Txn::new().when(Compare::at(key, stored.mod_revision));
    let mut writes = 0usize;
    // One pass stops and launches at most a store transaction's worth of tasks together
    // (launches take what the stops left, and at least one); the commit wakes the next pass
    // for the rest.
    let batch = app.write_limits().task_batch();
    // Tasks registered in a target group drain (DEACTIVATING) before their agents stop them.
    let owners = if plan.stops.is_empty() {
        Default::default()
    } else {
        service_targets::registered_owners(app)?
    };
    for stop in plan.stops.iter().take(batch) {
        let Some(task) = tasks.get(&stop.task_id) else {
            continue;
        };
        let mut updated = task.task.clone();
        if request_stop(
            &mut updated,
            stop_code::SERVICE_SCHEDULER_INITIATED,
            Some(stop.reason.clone()),
            now,
        ) {
            service_targets::deactivate_first(&mut updated, &owners);
            let task_key = keys::task(cluster, &stop.task_id);
            txn = txn
                .when(Compare::at(&task_key, task.mod_revision))
                .put(&task_key, encode(&updated));
            writes += 1;
        }
    }
    for update in &plan.history {
        let Some((c, s, id)) = parse_history_arn(&update.arn, "service-deployment") else {
            continue;
        };
        let sd_key = keys::service_deployment(&c, &s, &id);
        if let Some(sd) = app.get::<ServiceDeployment>(&sd_key)? {
            let mut changed = sd.value.clone();
            apply_history(&mut changed, update, now);
            txn = txn
                .when(Compare::at(&sd_key, sd.mod_revision))
                .put(&sd_key, encode(&changed));
            writes += 1;
        }
    }
    // The PRIMARY may have changed in this reconcile (a rollback): launch what it runs.
    let launch_td = match plan.task_definition.as_deref() {
        Some(arn) if arn != primary_td => observe::task_definition(app, arn)?,
        _ => td,
    };
    if plan.launch != Launch::None {
        if let (Some(td), Some(deployment)) = (launch_td.as_ref(), plan.deployment_id.as_deref()) {
            let launched = launch::launch(
                app,
                &mut turn,
                &launch::LaunchInput {
                    cluster,
                    service: &record,
                    deployment_id: deployment,
                    task_definition: td,
                    now,
                },
                &capped(&plan.launch, batch.saturating_sub(writes).max(1)),
            )?;
            let started: Vec<String> = launched.tasks.iter().map(|(id, _)| id.clone()).collect();
            record_started(&mut record, &mut ids, &started, now);
            if let Some(reason) = &launched.unplaced {
                record_unplaced(&mut record, &mut ids, reason, now);
            }
            for (id, revision) in &launched.instances {
                txn = txn.when(Compare::at(keys::instance(cluster, id), *revision));
            }
            for (id, task) in &launched.tasks {
                let task_key = keys::task(cluster, id);
                txn = txn
                    .when(Compare::absent(&task_key))
                    .put(&task_key, encode(task));
                writes += 1;
            }
        }
    }
    // A service running task sets launches for one set a pass: each placement must see the
    // tasks the previous one placed, which the next pass (woken by this commit) does.
    if let Some((set_id, count)) = plan.task_set_launches.first() {
        let set = record
            .service
            .task_sets
            .iter()
            .flatten()
            .find(|s| s.id.as_deref() == Some(set_id.as_str()))
            .cloned();
        let set_td = match set.as_ref().and_then(|s| s.task_definition.as_deref()) {
            Some(arn) => observe::task_definition(app, arn)?,
            None => None,
        };
        if let (Some(set), Some(td)) = (set, set_td) {
            let view = launch::as_task_set(&record, &set);
            let launched = launch::launch(
                app,
                &mut turn,
                &launch::LaunchInput {
                    cluster,
                    service: &view,
                    deployment_id: set_id,
                    task_definition: &td,
                    now,
                },
                &capped(
                    &Launch::Replicas(*count),
                    batch.saturating_sub(writes).max(1),
                ),
            )?;
            let started: Vec<String> = launched.tasks.iter().map(|(id, _)| id.clone()).collect();
            record_started(&mut record, &mut ids, &started, now);
            if let Some(reason) = &launched.unplaced {
                record_unplaced(&mut record, &mut ids, reason, now);
            }
            for (id, revision) in &launched.instances {
                txn = txn.when(Compare::at(keys::instance(cluster, id), *revision));
            }
            for (id, task) in &launched.tasks {
                let task_key = keys::task(cluster, id);
                txn = txn
                    .when(Compare::absent(&task_key))
                    .put(&task_key, encode(task));
                writes += 1;
            }
        }
    }
    // A held task's protection ends at `wake_at`: come back just after it, whatever else
    // happens (the resync is only a safety net).
    let wake_after = plan
        .wake_at
        .map(|at| Duration::from_secs_f64((at - now).max(0.0)) + WAKE_MARGIN);
    if record == stored.value && writes == 0 {
        return Ok(Pass {
            changed: false,
            wake_after,
        });
    }
    txn = txn.put(key, encode(&record));
    Ok(Pass {
        changed: app.commit(txn).await?.succeeded,
        wake_after,
    })
}

/// `launch` with at most `batch` tasks.
fn capped(launch: &Launch, batch: usize) -> Launch {
    match launch {
        Launch::Replicas(n) => Launch::Replicas((*n).min(u32::try_from(batch).unwrap_or(u32::MAX))),
        Launch::OnInstances(ids) => Launch::OnInstances(ids.iter().take(batch).cloned().collect()),
        Launch::None => Launch::None,
    }
}

/// How long after a protection's end the held task is looked at again, so the clock has
/// surely passed it.
const WAKE_MARGIN: Duration = Duration::from_millis(50);

/// How many services are reconciled at once (never one service twice at once).
pub const WORKERS: usize = 4;

/// Runs the controller for as long as the app lives, on a keyed work queue of service keys:
/// a service is queued when its record or one of its tasks changes, when an instance of its
/// cluster changes, and by a resync of every service each [`RESYNC`] (backoff expiry, grace
/// periods, missed events). The queue reconciles each service at most once at a time and
/// retries failures with backoff.
pub fn spawn(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(&app);
    let mut changes = app.state.changes();
    let queue: Arc<WorkQueue<String>> = Arc::default();
    {
        let queue = Arc::downgrade(&queue);
        app.metrics.register_queue(
            "services",
            Box::new(move || queue.upgrade().map_or(0, |q| q.len())),
        );
    }
    drop(app);
    let workers = spawn_workers(Arc::clone(&queue), WORKERS, {
        let weak = weak.clone();
        move |key: String| {
            let weak = weak.clone();
            async move {
                let app = weak.upgrade()?;
                let cluster = key
                    .strip_prefix(keys::SERVICES)
                    .and_then(|rest| rest.split_once('/'))
                    .map(|(cluster, _)| cluster.to_string())
                    .unwrap_or_default();
                Some(
                    reconcile_service(&app, &cluster, &key)
                        .await
                        .map(|pass| pass.action()),
                )
            }
        }
    });
    tokio::spawn(async move {
        let mut resync = tokio::time::interval(RESYNC);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                touched = changes.recv() => {
                    let Some(touched) = touched else { break };
                    let Some(app) = weak.upgrade() else { break };
                    let state = app.snapshot();
                    for key in &touched.services {
                        queue.add(key.clone());
                    }
                    for cluster in &touched.clusters {
                        for key in state.service_keys_of(cluster) {
                            queue.add(key.to_string());
                        }
                    }
                }
                _ = resync.tick() => {
                    let Some(app) = weak.upgrade() else { break };
                    let state = app.snapshot();
                    for (key, _) in state.list(keys::SERVICES) {
                        queue.add(key.to_string());
                    }
                }
            }
        }
        for worker in workers {
            worker.abort();
        }
    })
}

#[cfg(test)]
mod tests;

//! Instance health: an instance whose agent has not been heard from (heartbeat or
//! registration) for the configured grace becomes `agentConnected=false` — it receives no new
//! tasks, and its tasks show `connectivity: DISCONNECTED` rather than silently RUNNING. The
//! first heartbeat after that connects it again.

use crate::app::App;
use crate::state::TaskIndex;
use berth_core::model::container_instance::ContainerInstance;
use berth_core::model::{Connectivity, ContainerInstanceStatus};
use berth_store::typed::encode;
use berth_store::{keys, Compare, Txn};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether an agent last heard from at `last_seen` (or never since `baseline`, the server's
/// start) counts as connected at `now`.
pub fn is_connected(
    last_seen: Option<Instant>,
    baseline: Instant,
    now: Instant,
    grace: Duration,
) -> bool {
    let seen = last_seen.map_or(baseline, |s| s.max(baseline));
    now.saturating_duration_since(seen) < grace
}

/// Marks `instance` connected or not, with every unstopped task on it, in one transaction.
async fn set_connected(app: &App, cluster: &str, id: &str, connected: bool) {
    let key = keys::instance(cluster, id);
    let Ok(Some(current)) = app.get::<ContainerInstance>(&key) else {
        return;
    };
    let mut instance = current.value.without_derived();
    if instance.agent_connected == Some(connected)
        || instance.status == Some(ContainerInstanceStatus::Inactive)
    {
        return;
    }
    instance.agent_connected = Some(connected);
    let arn = instance.container_instance_arn.clone();
    let mut txn = Txn::new()
        .when(Compare::at(&key, current.mod_revision))
        .put(&key, encode(&instance));
    let state = if connected {
        Connectivity::Connected
    } else {
        Connectivity::Disconnected
    };
    let now = app.now();
    let snapshot = app.snapshot();
    for entry in snapshot.tasks_by(
        TaskIndex::Instance,
        arn.as_deref().unwrap_or_default(),
        None,
    ) {
        let mut task = entry.task.clone();
        task.connectivity = Some(state);
        task.connectivity_at = Some(now);
        txn = txn
            .when(Compare::at(&entry.key, entry.mod_revision))
            .put(&entry.key, encode(&task));
    }
    match app.commit(txn).await {
        Ok(result) if result.succeeded => {
            tracing::info!(instance = %arn.unwrap_or_default(), connected, "instance health: agent connectivity changed");
        }
        Ok(_) => {} // Something else wrote first; the next pass looks again.
        Err(e) => tracing::warn!(error = %e, "instance health: update failed"),
    }
}

/// One pass over every registered instance.
pub async fn check(app: &App, baseline: Instant) {
    let now = Instant::now();
    let snapshot = app.snapshot();
    for (key, stored) in snapshot.all_instances() {
        let instance = &stored.value;
        if instance.status == Some(ContainerInstanceStatus::Inactive) {
            continue;
        }
        let Some(arn) = instance.container_instance_arn.as_deref() else {
            continue;
        };
        let connected = is_connected(
            app.agents.last_seen(arn),
            baseline,
            now,
            app.config.agent_grace,
        );
        if instance.agent_connected != Some(connected) {
            let mut parts = key.trim_start_matches(keys::INSTANCES).splitn(2, '/');
            let (Some(cluster), Some(id)) = (parts.next(), parts.next()) else {
                continue;
            };
            set_connected(app, cluster, id, connected).await;
        }
    }
}

/// Checks every `every` for as long as the app lives.
pub fn spawn(app: Arc<App>, every: Duration) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(&app);
    drop(app);
    let baseline = Instant::now();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(app) = weak.upgrade() else { return };
            check(&app, baseline).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_connected_until_the_grace_passes_without_word_from_it() {
        let start = Instant::now();
        let grace = Duration::from_secs(20);
        let at = |s: u64| start + Duration::from_secs(s);
        assert!(is_connected(Some(at(0)), start, at(19), grace));
        assert!(!is_connected(Some(at(0)), start, at(20), grace));
        assert!(is_connected(Some(at(30)), start, at(40), grace));
    }

    #[test]
    fn after_a_server_restart_agents_get_a_full_grace_to_speak() {
        let start = Instant::now();
        let grace = Duration::from_secs(20);
        assert!(is_connected(
            None,
            start,
            start + Duration::from_secs(10),
            grace
        ));
        assert!(!is_connected(
            None,
            start,
            start + Duration::from_secs(25),
            grace
        ));
    }
}

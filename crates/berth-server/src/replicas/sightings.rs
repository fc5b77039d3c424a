//! Heartbeats counted cluster-wide: an agent heartbeats to whichever replica it is connected
//! to, but the leader's instance health decides whether it is connected. So every
//! [`PUBLISH_EVERY`] each replica writes the agents it heard from since its last record
//! (`/control/replicas/{name}/{part}`), and every replica follows the others' records,
//! counting each agent named there as heard at the record's time. A replica that becomes
//! leader has followed them all along, so a failover marks no healthy instance disconnected.

use crate::app::App;
use berth_store::{keys, EventKind, Txn};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a replica publishes the agents it heard from.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(2);

/// A record is written at least this often even when no agent spoke, so others see the
/// replica alive.
const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// Agents named per record part (each part is one store write well inside etcd's limit).
const PART: usize = 2_000;

/// What a replica heard lately.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sighting {
    /// The replica that heard them.
    pub replica: String,
    /// When the record was written (milliseconds since the epoch).
    pub at_ms: u64,
    /// Container instance ARNs of the agents heard since the replica's previous record.
    pub heard: Vec<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Starts publishing this replica's sightings and following the others' (shared store only).
pub fn spawn(app: Arc<App>) {
    if app.election.is_none() {
        return;
    }
    tokio::spawn(publish(Arc::clone(&app)));
    tokio::spawn(follow(app));
}

async fn publish(app: Arc<App>) {
    let mut closing = app.closing();
    let mut last = Instant::now() - REFRESH_EVERY;
    let mut parts_written = 0usize;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PUBLISH_EVERY) => {}
            _ = closing.wait_for(|closing| *closing) => return,
        }
        let heard = app.agents.take_heard_here();
        if heard.is_empty() && last.elapsed() < REFRESH_EVERY {
            continue;
        }
        let at_ms = now_ms();
        let mut parts: Vec<Vec<String>> = heard.chunks(PART).map(<[String]>::to_vec).collect();
        if parts.is_empty() {
            parts.push(Vec::new());
        }
        let mut txn = Txn::new();
        for (i, heard) in parts.iter().enumerate() {
            let record = Sighting {
                replica: app.leadership.name.clone(),
                at_ms,
                heard: heard.clone(),
            };
            let bytes = serde_json::to_vec(&record).unwrap_or_default();
            // Each part is a transaction of its own: they need not land together.
            let one = Txn::new().put(part_key(&app.leadership.name, i), bytes);
            if let Err(e) = app.store.txn(one).await {
                tracing::warn!(error = %e, "replicas: cannot publish the agents heard");
            }
        }
        // Parts a larger record had and this one has not: gone.
        for stale in parts.len()..parts_written {
            txn = txn.delete(part_key(&app.leadership.name, stale));
        }
        if !txn.ops.is_empty() {
            let _ = app.store.txn(txn).await;
        }
        parts_written = parts.len();
        last = Instant::now();
    }
}

fn part_key(replica: &str, part: usize) -> String {
    format!("{}/{part:04}", keys::replica(replica))
}

/// When, on this host's monotonic clock, a record written at `at_ms` was written (never in
/// the future).
fn instant_of(at_ms: u64) -> Instant {
    let age = Duration::from_millis(now_ms().saturating_sub(at_ms));
    Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
}

/// Counts what another replica heard as heard here.
fn apply(app: &App, value: &[u8]) {
    let Ok(record) = serde_json::from_slice::<Sighting>(value) else {
        return;
    };
    if record.replica == app.leadership.name {
        return;
    }
    let at = instant_of(record.at_ms);
    for arn in &record.heard {
        app.agents.saw_elsewhere(arn, at);
    }
}

async fn follow(app: Arc<App>) {
    let mut closing = app.closing();
    loop {
        let (records, revision) = match app.store.list(keys::REPLICAS).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::debug!(error = %e, "replicas: cannot list the others' records");
                tokio::time::sleep(PUBLISH_EVERY).await;
                continue;
            }
        };
        for record in &records {
            apply(&app, &record.value);
        }
        let mut stream = match app.store.watch(keys::REPLICAS, revision + 1).await {
            Ok(stream) => stream,
            Err(_) => continue,
        };
        loop {
            let batch = tokio::select! {
                batch = stream.recv() => batch,
                _ = closing.wait_for(|closing| *closing) => return,
            };
            match batch {
                Some(Ok(events)) => {
                    for event in events.iter().filter(|e| e.kind == EventKind::Put) {
                        apply(&app, &event.value);
                    }
                }
                // Compacted or broken: list again.
                _ => break,
            }
        }
    }
}

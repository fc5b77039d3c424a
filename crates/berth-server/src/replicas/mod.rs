//! Several servers over one shared store (etcd). Every replica serves the whole API from its
//! own cache; the controllers (services, instance health, GC, autoscaling, load balancer
//! targets and data plane, service discovery) run only on the elected leader, on a runtime of
//! their own that is shut down the moment the term ends, and every write they make is fenced
//! on the term, so a deposed leader's writes fail. Replicas tell each other which agents they
//! hear from ([`sightings`]), so heartbeats count cluster-wide, and hold the same keys
//! ([`files`]).
//!
//! With the embedded SQLite store there is one server: it leads for good and nothing is
//! fenced.

pub mod files;
pub mod sightings;

use crate::app::App;
use berth_store::{Compare, Elect};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// The name of the leader runtime's threads: a write made on one of them is a controller's.
const LEADER_THREAD: &str = "berth-leader";

/// Worker threads of the leader runtime.
const LEADER_WORKERS: usize = 2;

/// This replica's part in leadership.
#[derive(Debug)]
pub struct Leadership {
    /// This replica's name (`--replica-name`, by default host:port).
    pub name: String,
    /// The fence of the term this replica leads in, if it leads over a shared store.
    fence: RwLock<Option<Compare>>,
    /// Whether this replica leads now.
    leads: watch::Sender<bool>,
    /// The store's revision, read for requests that must see every committed write.
    pub head: HeadProbe,
}

impl Leadership {
    /// The leadership of a replica called `name`.
    pub fn new(name: String) -> Self {
        Self {
            name,
            fence: RwLock::new(None),
            leads: watch::channel(false).0,
            head: HeadProbe::default(),
        }
    }

    /// Whether this replica leads now.
    pub fn leads(&self) -> bool {
        *self.leads.borrow()
    }

    /// A receiver that follows whether this replica leads.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.leads.subscribe()
    }

    /// The guard a write made here must carry: the term's fence when the caller is one of
    /// the leader's controllers on a shared store, else none.
    pub fn fence_here(&self) -> Option<Compare> {
        if std::thread::current().name() != Some(LEADER_THREAD) {
            return None;
        }
        self.fence.read().ok().and_then(|fence| fence.clone())
    }

    fn begin(&self, fence: Option<Compare>) {
        if let Ok(mut current) = self.fence.write() {
            *current = fence;
        }
        self.leads.send_replace(true);
    }

    fn end(&self) {
        self.leads.send_replace(false);
        if let Ok(mut current) = self.fence.write() {
            *current = None;
        }
    }
}

/// Starts the leader-only controllers: at once with a store of its own (SQLite), else each
/// time this replica wins an election, for as long as its term lasts.
pub fn lead(app: Arc<App>, start: fn(&Arc<App>)) {
    match app.election.clone() {
        None => {
            app.leadership.begin(None);
            start(&app);
        }
        Some(election) => {
            tokio::spawn(campaign_forever(app, election, start));
        }
    }
}

async fn campaign_forever(app: Arc<App>, election: Arc<dyn Elect>, start: fn(&Arc<App>)) {
    let mut closing = app.closing();
    loop {
        let term = tokio::select! {
            term = election.campaign(&app.leadership.name) => term,
            _ = closing.wait_for(|closing| *closing) => return,
        };
        let mut term = match term {
            Ok(term) => term,
            Err(e) => {
                tracing::warn!(error = %e, "leader election: cannot campaign; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(LEADER_WORKERS)
            .thread_name(LEADER_THREAD)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                tracing::error!(error = %e, "leader election: cannot start the controllers' runtime");
                return;
            }
        };
        tracing::info!(replica = %app.leadership.name, "leader election: this replica leads");
        app.leadership.begin(Some(term.fence.clone()));
        {
            let _inside = runtime.enter();
            start(&app);
        }
        let closed = tokio::select! {
            _ = term.lost.wait_for(|lost| *lost) => false,
            _ = closing.wait_for(|closing| *closing) => true,
        };
        app.leadership.end();
        runtime.shutdown_background();
        if closed {
            // Hand over now rather than when the lease expires.
            if let Some(resign) = term.resign.take() {
                let _ = resign.send(());
            }
            return;
        }
        tracing::warn!(replica = %app.leadership.name, "leader election: this replica no longer leads");
    }
}

/// How long a request waits for this replica's cache to reach the store's revision.
const CATCH_UP_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// With a shared store, waits until this replica's cache holds every write the store had
/// committed when the request arrived (as Kubernetes' consistent reads from its watch cache
/// do): a write acknowledged by any replica is then seen by a request to any other, and a
/// key issued through one signs at once on all. One store round trip per request; when the
/// store cannot say, the request is served from the cache as it is.
pub async fn catch_up(app: &App) {
    if app.election.is_none() {
        return;
    }
    if let Some(head) = app.leadership.head.read(&app.store).await {
        if app.state.revision() < head {
            let _ = tokio::time::timeout(CATCH_UP_WITHIN, app.state.wait_for(head)).await;
        }
    }
}

/// Whether a request is an agent's own traffic (its stream, heartbeats, state reports; not
/// the secrets and credentials it fetches for tasks, which other replicas may have written), which
/// needs no [`catch_up`]: an agent reads and writes only its own instance's tasks, its writes
/// are guarded, and a guard that fails on a lagging cache is retried once the cache moves.
/// Skipping it spares the store a read per report (thousands a second in a large fleet).
pub fn agent_request(uri: &axum::http::Uri, headers: &axum::http::HeaderMap) -> bool {
    use berth_core::gateway::{DESIRED_PATH, HEARTBEAT_PATH, TASK_PROTECTION_PATH};
    if [DESIRED_PATH, HEARTBEAT_PATH, TASK_PROTECTION_PATH].contains(&uri.path()) {
        return true;
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let operation = target.rsplit('.').next().unwrap_or_default();
    matches!(
        operation,
        "SubmitTaskStateChange"
            | "SubmitContainerStateChange"
            | "SubmitAttachmentStateChanges"
            | "DiscoverPollEndpoint"
    )
}

/// The store's revision as requests need it: each needs one read after it arrived, and
/// concurrent requests share one read (one that started after they all arrived), so a
/// replica under load asks the store about once per round trip rather than once per request.
#[derive(Default)]
pub struct HeadProbe {
    current: std::sync::Mutex<Option<(std::time::Instant, SharedHead)>>,
}

type SharedHead =
    futures_util::future::Shared<futures_util::future::BoxFuture<'static, Option<u64>>>;

impl std::fmt::Debug for HeadProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeadProbe")
    }
}

impl HeadProbe {
    /// A revision the store had at some instant after this call began (None: it did not say
    /// within [`CATCH_UP_WITHIN`]).
    pub async fn read(&self, store: &Arc<dyn berth_store::Store>) -> Option<u64> {
        use futures_util::FutureExt;
        let arrived = std::time::Instant::now();
        let probe = {
            let Ok(mut current) = self.current.lock() else {
                return None;
            };
            match current.as_ref() {
                Some((started, probe)) if *started >= arrived => probe.clone(),
                _ => {
                    let store = Arc::clone(store);
                    let probe = async move {
                        tokio::time::timeout(CATCH_UP_WITHIN, store.revision())
                            .await
                            .ok()
                            .and_then(Result::ok)
                    }
                    .boxed()
                    .shared();
                    *current = Some((std::time::Instant::now(), probe.clone()));
                    probe
                }
            }
        };
        probe.await
    }
}

/// Who leads, as a line for people: this replica, another (by name), or nobody yet.
pub async fn leader_line(app: &App) -> String {
    match &app.election {
        None => format!("{} leads (single server)", app.leadership.name),
        Some(election) => match election.leader().await {
            Ok(Some(name)) if name == app.leadership.name => format!("{name} leads (this replica)"),
            Ok(Some(name)) => format!("{name} leads"),
            Ok(None) => "no replica leads yet".to_string(),
            Err(e) => format!("the leader cannot be read: {e}"),
        },
    }
}

#[cfg(all(test, feature = "etcd"))]
mod tests;

#[cfg(test)]
mod agent_traffic_tests {
    use super::agent_request;
    use axum::http::{HeaderMap, HeaderValue, Uri};

    fn ecs(operation: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let target = format!("AmazonEC2ContainerServiceV20141113.{operation}");
        headers.insert(
            "x-amz-target",
            HeaderValue::from_str(&target).expect("header"),
        );
        headers
    }

    #[test]
    fn only_an_agents_own_traffic_skips_the_catch_up() {
        let root = Uri::from_static("/");
        assert!(agent_request(&root, &ecs("SubmitTaskStateChange")));
        assert!(agent_request(
            &Uri::from_static("/v1/agent/heartbeat"),
            &HeaderMap::new()
        ));
        assert!(agent_request(
            &Uri::from_static("/v1/agent/desired?cluster=c"),
            &HeaderMap::new()
        ));
        // What a client asks, and what an agent fetches for a task, sees every write.
        assert!(!agent_request(&root, &ecs("DescribeServices")));
        assert!(!agent_request(&root, &ecs("RunTask")));
        assert!(!agent_request(
            &Uri::from_static("/v1/agent/task-secrets"),
            &HeaderMap::new()
        ));
    }
}

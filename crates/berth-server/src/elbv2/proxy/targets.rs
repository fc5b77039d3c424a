//! Target groups at run time: their targets' health, draining and in-flight counts, and the
//! choice of a target for a request or connection (round robin with slow start, least
//! outstanding requests, flow hash; healthy targets first, all of them when none is).

use super::config::{Algorithm, HealthCheckConfig, Stickiness, TargetConfig, TargetGroupConfig};
use super::health_check::{self, CheckClient, CheckPlan, Failure, Tracker};
use super::pattern::StatusMatcher;
use super::upstream::Connections;
use crate::elbv2::health::{HealthBoard, TargetHealth, TargetKey};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::task::AbortHandle;

/// How routing treats a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Health {
    /// Not yet through its checks: traffic only when no target is healthy.
    Initial = 0,
    /// Takes traffic.
    Healthy = 1,
    /// Traffic only when no target is healthy.
    Unhealthy = 2,
    /// Not checked (checks disabled): takes traffic as a healthy one does.
    Unchecked = 3,
}

impl Health {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Health::Healthy,
            2 => Health::Unhealthy,
            3 => Health::Unchecked,
            _ => Health::Initial,
        }
    }
}

/// What a target's checker shares with apply under one lock, so that a removed target's
/// checker can never write to the board after the removal.
#[derive(Debug, Default)]
struct Reporting {
    retired: bool,
    tracker: Tracker,
    reported: Option<TargetHealth>,
}

/// One registered target of one group.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) id: String,
    pub(super) port: u16,
    pub(super) addr: SocketAddr,
    /// Idle keep-alive connections to it.
    pub(super) connections: Connections,
    /// The value of the `AWSALB` cookie that sends a client back to it: a hash of its
    /// group, id and port, the same across applies and restarts.
    pub(super) cookie: String,
    group: String,
    draining: AtomicBool,
    health: AtomicU8,
    /// When the target last turned healthy, in ms since the data plane started, plus one;
    /// 0 if it has not (slow start).
    healthy_since: AtomicU64,
    in_flight: AtomicUsize,
    epoch: Instant,
    reporting: Mutex<Reporting>,
    checker: Mutex<Option<AbortHandle>>,
}

impl Target {
    fn new(group: &str, config: &TargetConfig, epoch: Instant) -> Self {
        Self {
            id: config.id.clone(),
            port: config.port,
            addr: config.addr,
            connections: Connections::default(),
            cookie: cookie_of(group, &config.id, config.port),
            group: group.to_owned(),
            draining: AtomicBool::new(config.draining),
            health: AtomicU8::new(Health::Initial as u8),
            healthy_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            epoch,
            reporting: Mutex::new(Reporting::default()),
            checker: Mutex::new(None),
        }
    }

    fn key(&self) -> TargetKey {
        (self.group.clone(), self.id.clone(), self.port)
    }

    pub(super) fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Acquire))
    }

    fn takes_traffic_when_others_do(&self) -> bool {
        matches!(self.health(), Health::Healthy | Health::Unchecked)
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Requests or connections this target is serving now.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn set_health(&self, health: Health) {
        let before = Health::from_u8(self.health.swap(health as u8, Ordering::AcqRel));
        if health == Health::Healthy && before != Health::Healthy {
            let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.healthy_since
                .store(now.saturating_add(1), Ordering::Release);
        }
    }

    /// Sets the routing state and tells the board, unless the target is gone. The routing
    /// state changes first, so whoever sees the board's word finds routing agreeing.
    fn publish(&self, health: Health, report: TargetHealth, board: &HealthBoard) {
        let mut reporting = self
            .reporting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if reporting.retired {
            return;
        }
        self.set_health(health);
        if reporting.reported.as_ref() != Some(&report) {
            board.set(self.key(), report.clone());
            reporting.reported = Some(report);
        }
    }

    /// Counts one check's outcome and publishes the verdict.
    pub(super) fn observe(
        &self,
        outcome: Result<(), Failure>,
        check: &HealthCheckConfig,
        board: &HealthBoard,
    ) {
        let verdict = {
            let mut reporting = self
                .reporting
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            reporting
                .tracker
                .observe(outcome, check.healthy_threshold, check.unhealthy_threshold);
            reporting.tracker.verdict
        };
        self.publish(verdict.health(), verdict.report(), board);
    }

    /// Starts checking per `plan`, or marks the target unchecked if checks are off; a check
    /// already running stops. The verdict so far carries over.
    fn start_checks(
        self: &Arc<Self>,
        plan: &Arc<CheckPlan>,
        client: &CheckClient,
        board: &Arc<HealthBoard>,
    ) {
        self.stop_checks();
        if !plan.config.enabled {
            self.publish(Health::Unchecked, health_check::disabled_report(), board);
            return;
        }
        let verdict = {
            let reporting = self
                .reporting
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            reporting.tracker.verdict
        };
        self.publish(verdict.health(), verdict.report(), board);
        let task = tokio::spawn(health_check::run(
            Arc::clone(self),
            Arc::clone(plan),
            client.clone(),
            Arc::clone(board),
        ));
        *self.checker.lock().unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
    }

    fn stop_checks(&self) {
        if let Some(task) = self
            .checker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }

    /// The target is no longer registered: no more checks, no board entry.
    fn retire(&self, board: &HealthBoard) {
        self.stop_checks();
        let mut reporting = self
            .reporting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        reporting.retired = true;
        board.remove(&self.key());
    }

    /// This target's share of new requests during slow start, in 1/1000 (1000 when out of it).
    fn slow_start_weight(&self, slow_start: Duration) -> u64 {
        let since = self.healthy_since.load(Ordering::Acquire);
        if since == 0 || slow_start.is_zero() {
            return 1000;
        }
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let elapsed = now.saturating_sub(since - 1);
        let window = u64::try_from(slow_start.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        // A target just out of its checks still gets a trickle, as ELB's slow start does.
        (elapsed.saturating_mul(1000) / window).clamp(50, 1000)
    }
}

/// Counts a request or connection against its target while alive.
#[derive(Debug)]
pub(super) struct InFlight(Arc<Target>);

impl InFlight {
    pub(super) fn target(&self) -> &Arc<Target> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The targets of a group as one apply left them.
#[derive(Debug, Default)]
struct TargetSet {
    targets: Vec<Arc<Target>>,
    algorithm: Algorithm,
    slow_start: Duration,
    stickiness: Stickiness,
}

/// One target group at run time; lives from the apply that adds it to the one that
/// removes it.
#[derive(Debug)]
pub(super) struct TargetGroup {
    pub(super) key: String,
    /// The value of the `AWSALBTG` cookie that sends a client back to it (target group
    /// stickiness of a forward to several groups).
    pub(super) cookie: String,
    set: RwLock<Arc<TargetSet>>,
    next: AtomicUsize,
    applied: Mutex<Option<TargetGroupConfig>>,
    epoch: Instant,
    /// HTTP requests routed to the group since [`TargetGroup::take_requests`] last ran.
    requests: AtomicU64,
}

/// How to pick a target.
#[derive(Debug, Clone, Copy)]
pub(super) enum Pick<'a> {
    /// A request: the group's algorithm; not `avoid` (a target that just failed).
    Request { avoid: Option<&'a Arc<Target>> },
    /// A connection: by a hash of the client's address; not `avoid`.
    Flow {
        hash: u64,
        avoid: Option<&'a Arc<Target>>,
    },
    /// A request whose stickiness cookie (`AWSALB` or `AWSALBAPP-0`) is `value`: the target
    /// it names, if that one may take it now.
    Cookie { value: &'a str },
}

impl TargetGroup {
    pub(super) fn new(key: &str, epoch: Instant) -> Self {
        Self {
            key: key.to_owned(),
            cookie: cookie_of(key, "", 0),
            set: RwLock::new(Arc::default()),
            next: AtomicUsize::new(0),
            applied: Mutex::new(None),
            epoch,
            requests: AtomicU64::new(0),
        }
    }

    /// Counts an HTTP request routed to the group (ELB's `RequestCount`).
    pub(super) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The requests counted since the last call.
    pub(super) fn take_requests(&self) -> u64 {
        self.requests.swap(0, Ordering::Relaxed)
    }

    /// Its sticky sessions now.
    pub(super) fn stickiness(&self) -> Stickiness {
        self.set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .stickiness
            .clone()
    }

    fn set(&self) -> Arc<TargetSet> {
        Arc::clone(&self.set.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes the group's targets and checks match `config`: known targets keep their health
    /// and counts, new ones start `initial` and get checked at once, removed ones stop
    /// taking traffic, stop being checked and leave the board. Nothing to do if `config`
    /// is what was applied last.
    pub(super) fn update(
        &self,
        config: &TargetGroupConfig,
        client: &CheckClient,
        board: &Arc<HealthBoard>,
    ) {
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        if applied.as_ref() == Some(config) {
            return;
        }
        let check_changed = applied.as_ref().map(|a| &a.health_check) != Some(&config.health_check);
        let plan = Arc::new(CheckPlan {
            config: config.health_check.clone(),
            matcher: StatusMatcher::parse(&config.health_check.matcher),
        });
        let old = self.set();
        let mut known: HashMap<(&str, u16, SocketAddr), &Arc<Target>> = old
            .targets
            .iter()
            .map(|t| ((t.id.as_str(), t.port, t.addr), t))
            .collect();
        let mut targets: Vec<Arc<Target>> = Vec::with_capacity(config.targets.len());
        for wanted in &config.targets {
            if targets
                .iter()
                .any(|t| t.id == wanted.id && t.port == wanted.port)
            {
                continue; // registered twice: once is enough
            }
            match known.remove(&(wanted.id.as_str(), wanted.port, wanted.addr)) {
                Some(target) => {
                    target.draining.store(wanted.draining, Ordering::Release);
                    if check_changed {
                        target.start_checks(&plan, client, board);
                    }
                    targets.push(Arc::clone(target));
                }
                None => {
                    let target = Arc::new(Target::new(&self.key, wanted, self.epoch));
                    target.start_checks(&plan, client, board);
                    targets.push(target);
                }
            }
        }
        *self.set.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(TargetSet {
            targets,
            algorithm: config.algorithm,
            slow_start: config.slow_start,
            stickiness: config.stickiness.clone(),
        });
        for gone in known.into_values() {
            gone.retire(board);
        }
        *applied = Some(config.clone());
    }

    /// The group is no longer configured: its targets stop being checked and leave the board.
    pub(super) fn retire(&self, board: &HealthBoard) {
        let set = std::mem::take(&mut *self.set.write().unwrap_or_else(PoisonError::into_inner));
        for target in &set.targets {
            target.retire(board);
        }
    }

    /// Stops every check (the data plane is going away).
    pub(super) fn stop_checks(&self) {
        for target in &self.set().targets {
            target.stop_checks();
        }
    }

    /// Requests or connections in flight to the targets at `addr`.
    pub(super) fn in_flight(&self, addr: SocketAddr) -> usize {
        self.set()
            .targets
            .iter()
            .filter(|t| t.addr == addr)
            .map(|t| t.in_flight())
            .sum()
    }

    /// Chooses a target and counts the request or connection against it: among the
    /// healthy targets that are not draining, or if none is healthy among all that are not
    /// draining (ELB fails open); `None` if no target is left.
    pub(super) fn pick(&self, how: Pick<'_>) -> Option<InFlight> {
        let set = self.set();
        let avoid = match how {
            Pick::Request { avoid } | Pick::Flow { avoid, .. } => avoid,
            Pick::Cookie { .. } => None,
        };
        let usable = |t: &&Arc<Target>| !t.draining() && avoid.is_none_or(|a| !Arc::ptr_eq(a, t));
        let any_healthy = set
            .targets
            .iter()
            .filter(usable)
            .any(|t| t.takes_traffic_when_others_do());
        let eligible =
            |t: &&Arc<Target>| usable(t) && (!any_healthy || t.takes_traffic_when_others_do());
        let count = set.targets.iter().filter(eligible).count();
        if count == 0 {
            return None;
        }
        let chosen = match how {
            Pick::Cookie { value } => set
                .targets
                .iter()
                .filter(eligible)
                .find(|t| t.cookie == value),
            Pick::Flow { hash, .. } => nth(&set, eligible, (hash % count as u64) as usize),
            Pick::Request { .. } => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed);
                match set.algorithm {
                    Algorithm::LeastOutstandingRequests => {
                        // Ties go round in turn, so idle targets share the load.
                        let start = turn % count;
                        set.targets
                            .iter()
                            .filter(eligible)
                            .enumerate()
                            .min_by_key(|(i, t)| (t.in_flight(), (i + count - start) % count))
                            .map(|(_, t)| t)
                    }
                    Algorithm::RoundRobin => {
                        let weights: Option<Vec<u64>> = (!set.slow_start.is_zero())
                            .then(|| {
                                set.targets
                                    .iter()
                                    .filter(eligible)
                                    .map(|t| t.slow_start_weight(set.slow_start))
                                    .collect::<Vec<_>>()
                            })
                            .filter(|w| w.iter().any(|&w| w < 1000));
                        match weights {
                            Some(weights) => {
                                let total: u64 = weights.iter().sum();
                                let mut point = mix(turn as u64) % total.max(1);
                                let index = weights
                                    .iter()
                                    .position(|&w| {
                                        let here = point < w;
                                        point = point.saturating_sub(w);
                                        here
                                    })
                                    .unwrap_or(0);
                                nth(&set, eligible, index)
                            }
                            None => nth(&set, eligible, turn % count),
                        }
                    }
                }
            }
        }?;
        chosen.in_flight.fetch_add(1, Ordering::AcqRel);
        Some(InFlight(Arc::clone(chosen)))
    }
}

/// The `AWSALB` cookie of target `id`:`port` of `group`: FNV-1a of the three, mixed, in hex.
fn cookie_of(group: &str, id: &str, port: u16) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in group
        .bytes()
        .chain([0])
        .chain(id.bytes())
        .chain([0])
        .chain(port.to_be_bytes())
    {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:016x}", mix(hash))
}

/// The `index`th target of `set` that is `eligible`.
fn nth(
    set: &TargetSet,
    eligible: impl Fn(&&Arc<Target>) -> bool,
    index: usize,
) -> Option<&Arc<Target>> {
    set.targets.iter().filter(eligible).nth(index)
}

/// SplitMix64's finaliser: spreads counters and addresses into well-mixed hashes.
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_of(algorithm: Algorithm, slow_start: Duration, count: u16) -> TargetGroup {
        let group = TargetGroup::new("tg", Instant::now());
        let targets = (0..count)
            .map(|i| {
                let config = TargetConfig {
                    id: format!("t{i}"),
                    port: 80,
                    addr: SocketAddr::from(([10, 0, 0, 1], 8000 + i)),
                    draining: false,
                };
                let target = Arc::new(Target::new("tg", &config, group.epoch));
                target.set_health(Health::Healthy);
                target
            })
            .collect();
        *group.set.write().expect("an unpoisoned lock") = Arc::new(TargetSet {
            targets,
            algorithm,
            slow_start,
            stickiness: Stickiness::Off,
        });
        group
    }

    fn target(group: &TargetGroup, index: usize) -> Arc<Target> {
        Arc::clone(&group.set().targets[index])
    }

    #[test]
    fn slow_start_gives_a_newly_healthy_target_a_trickle() {
        let group = group_of(Algorithm::RoundRobin, Duration::from_secs(3600), 2);
        // t0 is out of slow start; t1 just turned healthy.
        target(&group, 0).healthy_since.store(0, Ordering::Release);
        let mut picks = [0usize; 2];
        for _ in 0..1000 {
            let chosen = group.pick(Pick::Request { avoid: None }).expect("a target");
            picks[usize::from(chosen.target().id == "t1")] += 1;
        }
        assert!(picks[1] > 0 && picks[1] < 150, "{picks:?}");
    }

    #[test]
    fn least_outstanding_requests_skips_busy_targets_and_shares_ties() {
        let group = group_of(Algorithm::LeastOutstandingRequests, Duration::ZERO, 3);
        let busy = group.pick(Pick::Request { avoid: None }).expect("a target");
        let mut seen = HashMap::new();
        for _ in 0..4 {
            let chosen = group.pick(Pick::Request { avoid: None }).expect("a target");
            assert!(!Arc::ptr_eq(chosen.target(), busy.target()));
            *seen.entry(chosen.target().id.clone()).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(busy.target().in_flight(), 1);
        drop(busy);
        assert_eq!(
            target(&group, 0).in_flight() + target(&group, 1).in_flight(),
            0
        );
    }

    #[test]
    fn draining_targets_get_nothing_and_unhealthy_ones_only_when_all_are() {
        let group = group_of(Algorithm::RoundRobin, Duration::ZERO, 3);
        target(&group, 0).draining.store(true, Ordering::Release);
        target(&group, 1).set_health(Health::Unhealthy);
        for _ in 0..4 {
            let chosen = group.pick(Pick::Request { avoid: None }).expect("a target");
            assert_eq!(chosen.target().id, "t2");
        }
        target(&group, 2).set_health(Health::Unhealthy);
        for _ in 0..4 {
            let chosen = group
                .pick(Pick::Request { avoid: None })
                .expect("fails open");
            assert_ne!(chosen.target().id, "t0", "draining stays out");
        }
        target(&group, 1).draining.store(true, Ordering::Release);
        target(&group, 2).draining.store(true, Ordering::Release);
        assert!(group.pick(Pick::Request { avoid: None }).is_none());
    }
}

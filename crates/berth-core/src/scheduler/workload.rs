//! The synthetic cluster and task stream the scheduler benchmarks use (`berth bench
//! scheduler` and the criterion benchmark): instances of 2–16 vCPU and 4–16 GiB in three
//! zones, and batches of identical tasks from ten task groups, placed either by
//! binpack(memory) behind a memberOf constraint or by spread(attribute:zone) then
//! spread(instanceId).

use super::rng::Rng;
use super::{
    query, BinpackField, Constraint, InstanceInfo, Snapshot, SpreadField, Strategy, TaskRequest,
};
use crate::model::ContainerInstanceStatus;
use crate::resources::TaskResources;

/// Which placement the workload exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// binpack(memory) after `memberOf(attribute:tier in [web, api])`.
    Binpack,
    /// spread(attribute:zone), then spread(instanceId).
    Spread,
}

/// The memberOf expression of the binpack workload (about two instances in three pass).
pub const MEMBER_OF: &str = "attribute:tier in [web, api] and agentConnected == true";

/// A cluster and the task requests to place on it.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The instances.
    pub instances: Vec<InstanceInfo>,
    /// Request shapes, used in turn (each with `count` = the batch size).
    pub requests: Vec<TaskRequest>,
}

/// What a run placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Tasks placed.
    pub placed: usize,
    /// Tasks that fit nowhere.
    pub unplaced: usize,
}

impl Workload {
    /// `instances` instances (their sizes drawn from `seed`) and requests in batches of `batch`.
    pub fn new(instances: usize, placement: Placement, batch: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let instances = (0..instances)
            .map(|i| {
                let vcpus = 2 + rng.below(15) as i64;
                let gib = 4 + rng.below(13) as i64;
                let zone = ["a", "b", "c"][rng.below(3) as usize];
                let tier = ["web", "api", "batch"][rng.below(3) as usize];
                let id = format!("{i:032x}");
                InstanceInfo {
                    arn: format!(
                        "arn:aws:ecs:us-east-1:000000000000:container-instance/bench/{id}"
                    ),
                    ec2_instance_id: Some(format!("i-{i:017x}")),
                    id,
                    status: Some(ContainerInstanceStatus::Active),
                    agent_connected: true,
                    agent_version: Some("1.0.0".into()),
                    registered_at: Some(1.7e9),
                    attributes: vec![
                        (
                            "ecs.availability-zone".into(),
                            Some(format!("us-east-1{zone}")),
                        ),
                        ("zone".into(), Some(zone.into())),
                        ("tier".into(), Some(tier.into())),
                        ("ecs.os-type".into(), Some("linux".into())),
                    ],
                    cpu: vcpus * 1024,
                    memory: gib * 1024,
                    tcp_ports: vec![22, 2375, 2376, 51678, 51679],
                    ..InstanceInfo::default()
                }
            })
            .collect();
        let (strategies, constraints) = match placement {
            Placement::Binpack => (
                vec![Strategy::Binpack(BinpackField::Memory)],
                query::parse(MEMBER_OF)
                    .map(|e| vec![Constraint::MemberOf(e)])
                    .unwrap_or_default(),
            ),
            Placement::Spread => (
                vec![
                    Strategy::Spread(SpreadField::Attribute("zone".into())),
                    Strategy::Spread(SpreadField::InstanceId),
                ],
                Vec::new(),
            ),
        };
        let sizes = [(64, 128), (128, 256), (256, 384)];
        let requests = (0..10)
            .flat_map(|g| sizes.iter().map(move |s| (g, *s)))
            .map(|(g, (cpu, memory))| TaskRequest {
                resources: TaskResources {
                    cpu,
                    memory,
                    ..TaskResources::default()
                },
                group: format!("family:app{g}"),
                strategies: strategies.clone(),
                constraints: constraints.clone(),
                required_attributes: Vec::new(),
                count: batch,
            })
            .collect();
        Self {
            instances,
            requests,
        }
    }

    /// A fresh snapshot of the cluster.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.instances.clone())
    }

    /// Places `tasks` tasks in batches (the requests in turn) on `snapshot`.
    pub fn run(&self, snapshot: &mut Snapshot, tasks: usize, seed: u64) -> RunStats {
        let mut stats = RunStats::default();
        let mut left = tasks;
        let mut turn = 0usize;
        while left > 0 && !self.requests.is_empty() {
            let request = &self.requests[turn % self.requests.len()];
            let batch = request.count.max(1);
            let outcome = if left >= batch {
                snapshot.place(request, seed.wrapping_add(turn as u64))
            } else {
                let mut last = request.clone();
                last.count = left;
                snapshot.place(&last, seed.wrapping_add(turn as u64))
            };
            stats.placed += outcome.placements.len();
            stats.unplaced += outcome.unplaced;
            left -= batch.min(left);
            turn += 1;
        }
        stats
    }
}

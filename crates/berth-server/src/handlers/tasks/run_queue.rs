//! RunTask calls on one cluster placed together. Each call queues itself and waits for the
//! cluster's placement turn; whoever takes the turn places the calls queued by then (as many
//! as one store transaction holds) on one snapshot, one after another, commits all their
//! tasks in one transaction, and answers each call. Calls that arrive while a commit is in
//! flight ride the next one together instead of one commit each: on a store whose commit is a
//! network round (etcd's Raft), that is most of what RunTask throughput costs.
//!
//! Each call keeps its own answer: its tasks, its `failures`, its `clientToken` record. A
//! transaction that loses a race (an instance changed, a token recorded by a retry of the
//! same call) answers the calls whose token is now recorded and places the others again.

use super::placement::{self, Turn};
use super::{build_task, replay, ClientTokenRecord, Launch, TasksResponse};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::handlers::capacity_providers::strategy::Batch;
use crate::handlers::task_lookup::with_version;
use berth_core::model::task::Task;
use berth_core::model::Failure;
use berth_store::typed::encode;
use berth_store::{Compare, Txn, WriteLimits};
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// One RunTask call, validated and ready to place.
pub(super) struct Call {
    pub(super) launch: Launch,
    pub(super) batch: Batch,
    /// The store key of its `clientToken`, if it has one.
    pub(super) token: Option<String>,
    /// The seed of its `random` strategy.
    pub(super) seed: u64,
}

type Answer = Result<TasksResponse, ApiError>;

struct Pending {
    call: Call,
    reply: oneshot::Sender<Answer>,
}

impl Pending {
    fn tasks(&self) -> usize {
        self.call.batch.requests.iter().map(|r| r.count).sum()
    }

    fn answer(self, answer: Answer) {
        // The caller may be gone (its connection closed): nobody is left to tell.
        let _ = self.reply.send(answer);
    }
}

/// The RunTask calls of one cluster waiting for its placement turn, oldest first.
#[derive(Default)]
pub struct RunQueue {
    calls: Mutex<VecDeque<Pending>>,
}

impl std::fmt::Debug for RunQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunQueue")
            .field("calls", &self.waiting())
            .finish()
    }
}

impl RunQueue {
    fn queued(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many calls wait.
    pub fn waiting(&self) -> usize {
        self.queued().len()
    }

    /// The oldest calls whose tasks' guards one transaction within `limits` holds (the oldest
    /// one in any case; their bytes are counted once the tasks are made), leaving out calls whose caller is gone. A call whose `clientToken` is
    /// already among them (a retry of it) waits for a later turn, where its record answers it.
    fn take(&self, limits: WriteLimits) -> Vec<Pending> {
        let mut queued = self.queued();
        let mut group: Vec<Pending> = Vec::new();
        let mut tokens = BTreeSet::new();
        let mut tasks = 0usize;
        while let Some(next) = queued.front() {
            if next.reply.is_closed() {
                queued.pop_front();
                continue;
            }
            let more = tasks + next.tasks();
            let fits = fits(more, group.len() + 1, limits);
            let repeated = next.call.token.as_ref().is_some_and(|t| tokens.contains(t));
            if !group.is_empty() && (!fits || repeated) {
                break;
            }
            let Some(next) = queued.pop_front() else {
                break;
            };
            tasks = more;
            if let Some(token) = &next.call.token {
                tokens.insert(token.clone());
            }
            group.push(next);
        }
        group
    }
}

/// Whether one transaction within `limits` holds the guards of `tasks` new tasks of `calls`
/// calls: each task's key absent and its instance's revision, each call's token absent (and
/// as many writes, or fewer).
fn fits(tasks: usize, calls: usize, limits: WriteLimits) -> bool {
    tasks.saturating_mul(2).saturating_add(calls) <= limits.max_ops
}

/// Bytes counted for a task record's key beside its id (`/tasks/<cluster>/`, clusters' names
/// being at most 255 characters).
const TASK_KEY_BYTES: usize = 272;

/// Places `call` with the calls queued beside it on its cluster, and answers it.
pub(super) async fn run(ctx: &Ctx, call: Call) -> Answer {
    let cluster = call.launch.cluster.clone();
    let queue = ctx.run_queue(&cluster);
    let (reply, mut answer) = oneshot::channel();
    queue.queued().push_back(Pending { call, reply });
    loop {
        let turn = ctx.placement_turn(&cluster).await;
        if let Some(done) = answered(&mut answer) {
            return done;
        }
        // In a task of its own: the calls it takes wait on it, even if this caller goes away.
        let worker = tokio::spawn(place_queued(
            ctx.clone(),
            cluster.clone(),
            turn,
            Arc::clone(&queue),
        ));
        if worker.await.is_err() {
            return Err(ApiError::server("RunTask's placement failed."));
        }
        if let Some(done) = answered(&mut answer) {
            return done;
        }
    }
}

/// The answer of a call, once another turn's holder (or this one's) has placed it.
fn answered(answer: &mut oneshot::Receiver<Answer>) -> Option<Answer> {
    match answer.try_recv() {
        Ok(done) => Some(done),
        Err(oneshot::error::TryRecvError::Empty) => None,
        Err(oneshot::error::TryRecvError::Closed) => Some(Err(ApiError::server(
            "RunTask's placement ended without an answer.",
        ))),
    }
}

/// Takes the oldest queued calls and places them, again until none is left to place.
async fn place_queued(ctx: Ctx, cluster: String, mut turn: Turn, queue: Arc<RunQueue>) {
    let mut group = queue.take(ctx.write_limits());
    while !group.is_empty() {
        group = place_group(&ctx, &cluster, &mut turn, group).await;
    }
}

/// A call of a group that placed tasks: its tasks (by task id) and its failures.
type Placing = (Pending, Vec<(String, Task)>, Vec<Failure>);

/// Places `group` in one transaction and answers its calls; returns those to place again
/// (the transaction lost a race).
async fn place_group(
    ctx: &Ctx,
    cluster: &str,
    turn: &mut Turn,
    group: Vec<Pending>,
) -> Vec<Pending> {
    let calls: Vec<_> = group
        .iter()
        .map(|p| (p.call.batch.requests.as_slice(), p.call.seed))
        .collect();
    let plan = placement::plan_calls(ctx, turn, cluster, &calls);
    if !plan.any_active() {
        for pending in group {
            pending.answer(Err(ApiError::invalid_parameter(
                "No Container Instances were found in your cluster.",
            )));
        }
        return Vec::new();
    }
    let now = ctx.now();
    let max_bytes = ctx.write_limits().max_bytes;
    let mut bytes = 0usize;
    let mut tokens = Txn::new();
    // The tasks' records, and the calls that placed tasks with their tasks and failures.
    let mut writes: Vec<(String, Vec<u8>)> = Vec::new();
    let mut placing: Vec<Placing> = Vec::new();
    // Calls whose token records would take the transaction past the store's limit.
    let mut later = Vec::new();
    for (pending, placed) in group.into_iter().zip(&plan.calls) {
        let failures = plan.failures(placed);
        let mine: Vec<(String, Task)> = plan
            .placed_arns(placed)
            .iter()
            .zip(pending.call.batch.providers_of(&placed.batches))
            .enumerate()
            .map(|(i, (arn, provider))| {
                let (id, mut task) = build_task(ctx, &pending.call.launch, arn, now, i);
                task.capacity_provider_name = provider;
                (id, task)
            })
            .collect();
        if mine.is_empty() {
            pending.answer(Ok(TasksResponse {
                tasks: Vec::new(),
                failures,
            }));
            continue;
        }
        let record = pending.call.token.as_ref().map(|key| {
            let record = ClientTokenRecord {
                task_arns: mine
                    .iter()
                    .filter_map(|(_, t)| t.task_arn.clone())
                    .collect(),
                failures: failures.clone(),
                created_at: now,
            };
            (key.clone(), encode(&record))
        });
        let encoded: Vec<(String, Vec<u8>)> = mine
            .iter()
            .map(|(id, task)| (id.clone(), encode(task)))
            .collect();
        let more = encoded
            .iter()
            .map(|(id, task)| TASK_KEY_BYTES + id.len() + task.len())
            .chain(record.iter().map(|(key, record)| key.len() + record.len()))
            .fold(bytes, usize::saturating_add);
        if !placing.is_empty() && more > max_bytes {
            later.push(pending);
            continue;
        }
        bytes = more;
        if let Some((key, record)) = record {
            tokens = tokens.when(Compare::absent(&key)).put(key, record);
        }
        placing.push((pending, mine, failures));
        writes.extend(encoded);
    }
    if placing.is_empty() {
        return later;
    }
    let placed_on = plan.placed_ids();
    let committed =
        placement::commit_encoded(ctx, cluster, writes, &plan.instances, &placed_on, tokens).await;
    match committed {
        Ok(Some(revision)) => {
            // The snapshot holds the placements of `later` too: keep() has every instance
            // placed on refreshed from the store before the next placement.
            placement::keep(turn, plan);
            for (pending, mine, failures) in placing {
                let tasks = mine
                    .into_iter()
                    .map(|(_, task)| with_version(task, revision))
                    .collect();
                pending.answer(Ok(TasksResponse { tasks, failures }));
            }
            later
        }
        // Lost a race: perhaps to a retry of one of these calls, which then answered already.
        Ok(None) => {
            let mut again = later;
            for (pending, _, _) in placing {
                match replay(ctx, pending.call.token.as_deref()) {
                    Ok(None) => again.push(pending),
                    Ok(Some(done)) => pending.answer(Ok(done)),
                    Err(err) => pending.answer(Err(err)),
                }
            }
            again
        }
        Err(err) => {
            for (pending, _, _) in placing {
                pending.answer(Err(err.clone()));
            }
            later
        }
    }
}

#[cfg(test)]
mod tests;

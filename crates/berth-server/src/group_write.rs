//! Guarded one-key writes committed together. Agents report on their tasks one call per task,
//! and each report is one guarded write of the task's record: on a store whose commit is a
//! network round (etcd's Raft), one commit per report is most of what a busy fleet costs the
//! control plane. Each write queues; a worker (two at most, so that one commits while the
//! other takes what queued meanwhile) takes the writes queued by then (as many as one store
//! transaction holds, one per key), commits them in one transaction, and answers each; the
//! writes that arrive meanwhile ride the next transaction.
//!
//! A transaction in which a guard failed (or whose outcome the store could not tell) is
//! followed by each of its writes alone, so that each caller learns its own outcome. Every
//! write is guarded on its key's revision, so a write the group transaction applied fails its
//! guard when tried alone: none applies twice.
//!
//! The worker commits outside its callers' tasks, so API handlers use it, not controllers
//! (whose writes carry their replica's fence, which a task of its own would not).

use crate::app::App;
use crate::error::ApiError;
use berth_store::{Compare, Txn, WriteLimits};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// Workers committing at once: while one waits for its transaction, the next takes what
/// queued meanwhile.
const WORKERS: usize = 2;

/// The writes waiting for a worker, and how many workers are at work.
#[derive(Debug, Default)]
pub struct GroupWriter {
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<Write>,
    /// Workers at work.
    writers: usize,
}

#[derive(Debug)]
struct Write {
    key: String,
    revision: u64,
    value: Vec<u8>,
    reply: oneshot::Sender<Result<bool, ApiError>>,
}

impl Write {
    /// What it adds to a transaction's size: its key twice (guard and put), its value, and
    /// room for the store's framing and key prefix.
    fn bytes(&self) -> usize {
        2 * self.key.len() + self.value.len() + 64
    }

    fn alone(&self) -> Txn {
        Txn::new()
            .when(Compare::at(&self.key, self.revision))
            .put(&self.key, self.value.clone())
    }
}

impl GroupWriter {
    fn queued(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many writes wait.
    pub fn waiting(&self) -> usize {
        self.queued().waiting.len()
    }
}

/// Puts `value` at `key` if the key is still at `revision` (0: absent), in a transaction
/// with the other writes queued beside it; whether the guard held. Answers once the state
/// cache has the write, as [`App::commit`] does.
pub async fn put(
    app: &Arc<App>,
    key: String,
    revision: u64,
    value: Vec<u8>,
) -> Result<bool, ApiError> {
    let (reply, answer) = oneshot::channel();
    let start = {
        let mut queue = app.task_writes.queued();
        queue.waiting.push_back(Write {
            key,
            revision,
            value,
            reply,
        });
        let start = queue.writers < WORKERS;
        if start {
            queue.writers += 1;
        }
        start
    };
    if start {
        tokio::spawn(drain(Arc::clone(app)));
    }
    answer
        .await
        .unwrap_or_else(|_| Err(ApiError::server("a grouped write ended without an answer")))
}

/// Counts the worker out if it ends other than by finding the queue empty (a panic), so
/// that the next write starts another.
struct Writing<'a> {
    writer: &'a GroupWriter,
    armed: bool,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut queue = self.writer.queued();
            queue.writers = queue.writers.saturating_sub(1);
        }
    }
}

/// The worker: commits groups of queued writes until none is left.
async fn drain(app: Arc<App>) {
    let writer = &app.task_writes;
    let mut writing = Writing {
        writer,
        armed: true,
    };
    loop {
        let group = {
            let mut queue = writer.queued();
            let group = take(&mut queue.waiting, app.write_limits());
            if group.is_empty() {
                // Under the lock: a write queued after this starts a worker of its own.
                queue.writers = queue.writers.saturating_sub(1);
                writing.armed = false;
                return;
            }
            group
        };
        commit(&app, group).await;
    }
}

/// The oldest queued writes one transaction within `limits` holds, one per key (a later write
/// of a key already taken waits for the next group); the oldest one in any case.
fn take(waiting: &mut VecDeque<Write>, limits: WriteLimits) -> Vec<Write> {
    let mut group: Vec<Write> = Vec::new();
    let mut keys: HashSet<String> = HashSet::new();
    let mut bytes = 0usize;
    let mut left = VecDeque::new();
    while let Some(write) = waiting.pop_front() {
        let full = !group.is_empty()
            && (group.len() >= limits.max_ops || bytes + write.bytes() > limits.max_bytes);
        if full {
            left.push_back(write);
            break;
        }
        if keys.contains(&write.key) {
            left.push_back(write);
            continue;
        }
        keys.insert(write.key.clone());
        bytes += write.bytes();
        group.push(write);
    }
    // What was passed over goes back in front, in its order.
    while let Some(write) = left.pop_back() {
        waiting.push_front(write);
    }
    group
}

/// Commits `group` in one transaction and answers each write; when that fails, each write
/// alone.
async fn commit(app: &App, group: Vec<Write>) {
    if group.len() > 1 {
        let txn = group.iter().fold(Txn::new(), |txn, w| {
            txn.when(Compare::at(&w.key, w.revision))
                .put(&w.key, w.value.clone())
        });
        match app.commit(txn).await {
            Ok(result) if result.succeeded => {
                for write in group {
                    // The caller may be gone: nobody is left to tell.
                    let _ = write.reply.send(Ok(true));
                }
                return;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("a group of writes failed ({}); each goes alone", e.message),
        }
    }
    let alone = group.into_iter().map(|write| async move {
        let outcome = app.commit(write.alone()).await.map(|r| r.succeeded);
        let _ = write.reply.send(outcome);
    });
    futures_util::future::join_all(alone).await;
}

#[cfg(test)]
mod tests;

//! One container's follower: reads its output from where the server's position says, makes
//! events, and ships them while it reads.

use super::{Assembler, Buffer, LogShipper, Source};
use crate::backoff::Backoff;
use crate::runtime::{ContainerRuntime, RuntimeError};
use berth_core::telemetry::awslogs::{AwsLogs, Mode};
use berth_core::telemetry::{
    position_timestamp_ns, LogBatch, LogBatchAnswer, LOGS_PATH, MAX_BATCH_EVENTS,
};
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The largest batch body: under the server's 1 MiB request limit with room for JSON's
/// framing and escapes.
const BATCH_BYTES: usize = 640 * 1024;
/// How long a batch that is not full waits for more events.
const LINGER: Duration = Duration::from_millis(200);
/// The buffer of blocking mode (reading waits when it is full).
const BLOCKING_BUFFER_BYTES: usize = 8 * 1024 * 1024;

/// Follows `source` until its container has stopped for good and its output is shipped.
pub async fn follow(
    shipper: &Arc<LogShipper>,
    runtime: &dyn ContainerRuntime,
    source: &Source,
    options: &AwsLogs,
) {
    let limit = match options.mode {
        Mode::Blocking => BLOCKING_BUFFER_BYTES,
        Mode::NonBlocking => options.max_buffer_bytes,
    };
    let buffer = Arc::new(Buffer::new(options.mode, limit));
    let sending = tokio::spawn(ship(
        Arc::clone(shipper),
        shipper.batch(source),
        Arc::clone(&buffer),
    ));
    let mut read_after = resume_point(shipper, source).await;
    let mut backoff = Backoff::default();
    loop {
        let since = read_after.map_or(0, |p| position_timestamp_ns(p) / 1_000_000_000);
        let mut assembler = Assembler::new(options.event_start.clone(), read_after);
        match runtime.logs(&source.runtime_id, since, true).await {
            Ok(mut lines) => loop {
                let next = if assembler.has_pending() {
                    match tokio::time::timeout(options.flush_interval, lines.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            if let Some(event) = assembler.flush() {
                                keep(shipper, &buffer, event).await;
                            }
                            continue;
                        }
                    }
                } else {
                    lines.next().await
                };
                match next {
                    Some(Ok(line)) => {
                        for event in assembler.push(line) {
                            keep(shipper, &buffer, event).await;
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(container = %source.runtime_id, "container output broke off: {e}");
                        break;
                    }
                    None => break,
                }
            },
            Err(RuntimeError::NotFound(_)) => break,
            Err(e) => {
                tracing::warn!(container = %source.runtime_id, "cannot read container output: {e}")
            }
        }
        if let Some(event) = assembler.flush() {
            keep(shipper, &buffer, event).await;
        }
        read_after = assembler.last_position();
        // The output ends when the container stops; one restarted in place goes on.
        match runtime.inspect_container(&source.runtime_id).await {
            Ok(state) if state.running => {}
            Ok(_) | Err(RuntimeError::NotFound(_)) => break,
            Err(_) => {}
        }
        tokio::time::sleep(backoff.next_delay().min(Duration::from_secs(2))).await;
    }
    buffer.close();
    let _ = sending.await;
}

/// Puts `event` in the buffer; counts it when the buffer drops it.
async fn keep(shipper: &LogShipper, buffer: &Buffer, event: berth_core::telemetry::ShippedEvent) {
    if !buffer.push(event).await {
        let dropped = shipper
            .counters
            .events_dropped
            .fetch_add(1, Ordering::Relaxed);
        if dropped.is_power_of_two() {
            tracing::warn!(
                "awslogs buffer full: dropping log events (mode=non-blocking; {} so far)",
                dropped + 1
            );
        }
    }
}

/// The position the server holds for the stream, asked until it answers.
async fn resume_point(shipper: &LogShipper, source: &Source) -> Option<u64> {
    let mut backoff = Backoff::default();
    let mut warned = false;
    loop {
        match shipper.open(source).await {
            Ok(answer) => return answer.position,
            Err(e) => {
                if !warned {
                    tracing::warn!(container = %source.container, task = %source.task_arn, "cannot open the log stream yet: {e}");
                    warned = true;
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// Ships the buffer's events in batches until it is closed and empty. A batch the server
/// cannot take now is sent again; one it refuses is dropped (and counted).
async fn ship(shipper: Arc<LogShipper>, template: LogBatch, buffer: Arc<Buffer>) {
    let mut backoff = Backoff::default();
    let mut failing = false;
    loop {
        let mut events = buffer.peek(MAX_BATCH_EVENTS, BATCH_BYTES).await;
        if events.is_empty() {
            return;
        }
        if events.len() < MAX_BATCH_EVENTS / 2 {
            tokio::time::sleep(LINGER).await;
            events = buffer.peek(MAX_BATCH_EVENTS, BATCH_BYTES).await;
        }
        let count = events.len();
        let bytes: usize = events.iter().map(|e| e.message.len()).sum();
        let batch = LogBatch {
            events,
            ..template.clone()
        };
        match shipper
            .client
            .post::<_, LogBatchAnswer>(LOGS_PATH, &batch)
            .await
        {
            Ok(answer) => {
                buffer.commit(count);
                backoff.reset();
                if failing {
                    tracing::info!(stream = %answer.log_stream_name, "log events reach the server again");
                    failing = false;
                }
                let counters = &shipper.counters;
                counters
                    .events_shipped
                    .fetch_add(answer.accepted as u64, Ordering::Relaxed);
                counters
                    .bytes_shipped
                    .fetch_add(bytes as u64, Ordering::Relaxed);
            }
            Err(e) if e.is_retryable() => {
                if !failing {
                    tracing::warn!(container = %template.container, "cannot ship log events yet, keeping them: {e}");
                    failing = true;
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => {
                tracing::warn!(container = %template.container, task = %template.task, "the server refused {count} log events; dropping them: {e}");
                buffer.commit(count);
                shipper
                    .counters
                    .events_dropped
                    .fetch_add(count as u64, Ordering::Relaxed);
            }
        }
    }
}

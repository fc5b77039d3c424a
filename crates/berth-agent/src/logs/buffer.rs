//! The events of one container between reading and shipping. In blocking mode a full buffer
//! makes reading wait (the runtime keeps the output meanwhile, so nothing is lost); in
//! non-blocking mode events read while it is full are dropped and counted, as Docker's
//! `mode=non-blocking` drops them.

use berth_core::telemetry::awslogs::Mode;
use berth_core::telemetry::{ShippedEvent, EVENT_OVERHEAD_BYTES};
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

/// A bounded queue of events.
#[derive(Debug)]
pub struct Buffer {
    mode: Mode,
    /// Bytes (messages plus CloudWatch's per-event overhead) it holds at most.
    limit: usize,
    inner: Mutex<Inner>,
    /// Woken when events leave (space) and when events come or it closes (data).
    space: Notify,
    data: Notify,
}

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<ShippedEvent>,
    bytes: usize,
    closed: bool,
    dropped: u64,
}

fn size(event: &ShippedEvent) -> usize {
    event.message.len() + EVENT_OVERHEAD_BYTES
}

impl Buffer {
    pub fn new(mode: Mode, limit: usize) -> Buffer {
        Buffer {
            mode,
            limit,
            inner: Mutex::new(Inner::default()),
            space: Notify::new(),
            data: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `event`: in blocking mode once there is room (an event larger than the whole
    /// buffer goes in alone); in non-blocking mode now, or never (counted). Returns whether
    /// it went in.
    pub async fn push(&self, event: ShippedEvent) -> bool {
        loop {
            let waiting = self.space.notified();
            {
                let mut inner = self.lock();
                let fits = inner.events.is_empty() || inner.bytes + size(&event) <= self.limit;
                if fits {
                    inner.bytes += size(&event);
                    inner.events.push_back(event);
                    drop(inner);
                    self.data.notify_one();
                    return true;
                }
                if self.mode == Mode::NonBlocking {
                    inner.dropped += 1;
                    return false;
                }
            }
            waiting.await;
        }
    }

    /// The oldest events, up to `max_events` and `max_bytes`, left in place until
    /// [`Buffer::commit`]; empty once closed and drained. Waits for events.
    pub async fn peek(&self, max_events: usize, max_bytes: usize) -> Vec<ShippedEvent> {
        loop {
            let waiting = self.data.notified();
            {
                let inner = self.lock();
                if !inner.events.is_empty() || inner.closed {
                    let mut bytes = 0;
                    return inner
                        .events
                        .iter()
                        .take(max_events)
                        .take_while(|e| {
                            bytes += size(e);
                            bytes <= max_bytes
                        })
                        .cloned()
                        .collect();
                }
            }
            waiting.await;
        }
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the `count` oldest events (shipped, or given up).
    pub fn commit(&self, count: usize) {
        let mut inner = self.lock();
        for _ in 0..count {
            if let Some(event) = inner.events.pop_front() {
                inner.bytes -= size(&event);
            }
        }
        drop(inner);
        self.space.notify_waiters();
    }

    /// No more events will come.
    pub fn close(&self) {
        self.lock().closed = true;
        self.data.notify_one();
    }

    /// Events dropped because it was full (non-blocking mode).
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn event(position: u64, message: &str) -> ShippedEvent {
        ShippedEvent {
            position,
            timestamp: 0,
            message: message.into(),
        }
    }

    #[tokio::test]
    async fn non_blocking_mode_drops_and_counts_what_does_not_fit() {
        let buffer = Buffer::new(Mode::NonBlocking, 2 * (EVENT_OVERHEAD_BYTES + 4));
        assert!(buffer.push(event(1, "aaaa")).await);
        assert!(buffer.push(event(2, "bbbb")).await);
        assert!(!buffer.push(event(3, "cccc")).await);
        assert_eq!(buffer.dropped(), 1);
        let batch = buffer.peek(10, usize::MAX).await;
        assert_eq!(batch.len(), 2);
        buffer.commit(1);
        assert!(buffer.push(event(4, "dddd")).await);
        assert_eq!(buffer.len(), 2);
    }

    #[tokio::test]
    async fn blocking_mode_waits_for_room_and_loses_nothing() {
        let buffer = Arc::new(Buffer::new(Mode::Blocking, EVENT_OVERHEAD_BYTES + 4));
        assert!(buffer.push(event(1, "aaaa")).await);
        let pusher = {
            let buffer = Arc::clone(&buffer);
            tokio::spawn(async move { buffer.push(event(2, "bbbb")).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!pusher.is_finished(), "waits while full");
        buffer.commit(1);
        assert!(pusher.await.expect("joins"));
        assert_eq!(buffer.peek(10, usize::MAX).await[0].position, 2);
        assert_eq!(buffer.dropped(), 0);
    }

    #[tokio::test]
    async fn a_batch_stops_at_its_byte_limit_and_a_closed_buffer_drains() {
        let buffer = Buffer::new(Mode::Blocking, usize::MAX);
        for i in 0..5 {
            buffer.push(event(i, "xx")).await;
        }
        let per = EVENT_OVERHEAD_BYTES + 2;
        assert_eq!(buffer.peek(10, 3 * per).await.len(), 3);
        assert_eq!(buffer.peek(2, usize::MAX).await.len(), 2);
        buffer.commit(5);
        buffer.close();
        assert!(buffer.peek(10, usize::MAX).await.is_empty());
    }
}

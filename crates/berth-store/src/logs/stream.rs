//! One log stream: its segments, its sparse time index and the agent's source position.

use super::segment::{self, Backing, RecordRef, Segment, NO_POSITION};
use super::{lock, read_json, sync_dir, write_json, LogError, LogResult, SEGMENT_BYTES};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

/// A stream's identity and the facts that must outlive its segments, as kept in
/// `stream.json` (rewritten when segments are dropped, not on every append).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct StreamMeta {
    name: String,
    id: u64,
    creation_time: i64,
    /// The sequence number the next event gets, at least.
    #[serde(default)]
    next_seq: u64,
    #[serde(default)]
    position: Option<u64>,
    #[serde(default)]
    first_event_timestamp: Option<i64>,
    #[serde(default)]
    last_event_timestamp: Option<i64>,
    #[serde(default)]
    last_ingestion_time: Option<i64>,
}

/// A stream as described: names, times and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub name: String,
    /// Unique in the store for its lifetime (event ids carry it).
    pub id: u64,
    pub creation_time: i64,
    pub first_event_timestamp: Option<i64>,
    pub last_event_timestamp: Option<i64>,
    pub last_ingestion_time: Option<i64>,
    pub stored_bytes: u64,
    /// Sequence number of the next event.
    pub next_seq: u64,
    /// The agent's position of the last event it appended.
    pub position: Option<u64>,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its index in the stream, from 0; stable for its life.
    pub seq: u64,
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub message: String,
}

impl StoredEvent {
    fn of(seq: u64, r: &RecordRef<'_>) -> StoredEvent {
        StoredEvent {
            seq,
            timestamp: r.timestamp,
            ingestion_time: r.ingestion_time,
            message: r.message.to_string(),
        }
    }
}

/// Which events a read wants.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Inclusive, ms.
    pub start: Option<i64>,
    /// Exclusive, ms.
    pub end: Option<i64>,
    /// At most this many events.
    pub limit: usize,
    /// At most this many bytes, counting each event's message plus 26 as the service does.
    pub max_bytes: usize,
}

impl Window {
    fn contains(&self, ts: i64) -> bool {
        self.start.is_none_or(|s| ts >= s) && self.end.is_none_or(|e| ts < e)
    }
}

#[derive(Debug)]
struct State {
    meta: StreamMeta,
    segments: Vec<Segment>,
    deleted: bool,
}

/// One log stream.
#[derive(Debug)]
pub struct Stream {
    pub name: String,
    pub id: u64,
    dir: Option<PathBuf>,
    state: Mutex<State>,
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.seg"))
}

fn open_segment_file(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
}

impl Stream {
    /// Creates the stream (its directory and `stream.json` when it has a `dir`).
    pub(super) fn create(
        name: &str,
        id: u64,
        now: i64,
        dir: Option<PathBuf>,
    ) -> io::Result<Stream> {
        let meta = StreamMeta {
            name: name.to_string(),
            id,
            creation_time: now,
            next_seq: 0,
            position: None,
            first_event_timestamp: None,
            last_event_timestamp: None,
            last_ingestion_time: None,
        };
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
            write_json(&dir.join("stream.json"), &meta)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(Stream {
            name: name.to_string(),
            id,
            dir,
            state: Mutex::new(State {
                meta,
                segments: Vec::new(),
                deleted: false,
            }),
        })
    }

    /// Reopens the stream kept in `dir`, rebuilding its index from its segments and cutting
    /// off a torn tail; `None` when its creation never completed.
    pub(super) fn open_dir(dir: &Path) -> io::Result<Option<Stream>> {
        let mut meta: StreamMeta = match read_json(&dir.join("stream.json")) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut firsts = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("seg") {
                continue;
            }
            if let Some(first) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        let mut segments = Vec::new();
        for first in firsts {
            let path = segment_path(dir, first);
            let file = Arc::new(open_segment_file(&path)?);
            let bytes = std::fs::read(&path)?;
            let mut seg = Segment::new(
                first,
                Backing::File {
                    file: Some(Arc::clone(&file)),
                    path: path.clone(),
                },
            );
            let mut at = 0;
            while let Some(r) = segment::decode(&bytes[at..], true) {
                seg.note(r.timestamp, r.ingestion_time, r.size);
                absorb(&mut meta, first + seg.count - 1, &r);
                at += r.size;
            }
            if at < bytes.len() {
                tracing::warn!(path = %path.display(), kept = at, dropped = bytes.len() - at, "cutting off a torn log segment tail");
                file.set_len(at as u64)?;
                file.sync_all()?;
            }
            if let Some(previous) = segments.last_mut() {
                Segment::seal(previous);
            }
            segments.push(seg);
        }
        Ok(Some(Stream {
            name: meta.name.clone(),
            id: meta.id,
            dir: Some(dir.to_path_buf()),
            state: Mutex::new(State {
                meta,
                segments,
                deleted: false,
            }),
        }))
    }

    /// The stream's description.
    pub fn info(&self) -> io::Result<StreamInfo> {
        let state = lock(&self.state)?;
        let m = &state.meta;
        Ok(StreamInfo {
            name: m.name.clone(),
            id: m.id,
            creation_time: m.creation_time,
            first_event_timestamp: m.first_event_timestamp,
            last_event_timestamp: m.last_event_timestamp,
            last_ingestion_time: m.last_ingestion_time,
            stored_bytes: state.segments.iter().map(|s| s.len).sum(),
            next_seq: m.next_seq,
            position: m.position,
        })
    }

    /// Appends events `(timestamp, message, position)` ingested at `now`, durably, in one
    /// write and one fsync.
    pub fn append(&self, events: &[(i64, &str, u64)], now: i64) -> LogResult<()> {
        let mut state = lock(&self.state)?;
        self.append_locked(&mut state, events, now)
    }

    fn append_locked(
        &self,
        state: &mut State,
        events: &[(i64, &str, u64)],
        now: i64,
    ) -> LogResult<()> {
        if state.deleted {
            return Err(LogError::StreamNotFound {
                group: String::new(),
                stream: self.name.clone(),
            });
        }
        if events.is_empty() {
            return Ok(());
        }
        let needs_new = state.segments.last().is_none_or(|s| s.len >= SEGMENT_BYTES);
        if needs_new {
            let first = state.meta.next_seq;
            let backing = match &self.dir {
                Some(dir) => {
                    let path = segment_path(dir, first);
                    let file = open_segment_file(&path)?;
                    sync_dir(dir)?;
                    Backing::File {
                        file: Some(Arc::new(file)),
                        path,
                    }
                }
                None => Backing::Memory(Arc::new(RwLock::new(Vec::new()))),
            };
            if let Some(previous) = state.segments.last_mut() {
                Segment::seal(previous);
            }
            state.segments.push(Segment::new(first, backing));
        }
        let mut buf = Vec::with_capacity(events.iter().map(|e| e.1.len() + 32).sum());
        for &(ts, message, position) in events {
            segment::encode(&mut buf, ts, now, position, message);
        }
        let State { meta, segments, .. } = state;
        let active = segments.last_mut().expect("a segment was just ensured");
        active.backing.append(&buf, true)?;
        // Only now, with the bytes durable, do readers see them.
        for r in segment::records(&buf) {
            active.note(r.timestamp, r.ingestion_time, r.size);
            let seq = meta.next_seq;
            absorb(meta, seq, &r);
        }
        Ok(())
    }

    /// Appends agent events `(position, timestamp, message)`, skipping those at or before the
    /// stored position; returns (accepted, skipped, position after).
    pub fn append_sourced(
        &self,
        events: &[(u64, i64, &str)],
        now: i64,
    ) -> LogResult<(usize, usize, Option<u64>)> {
        let mut state = lock(&self.state)?;
        let mut last = state.meta.position;
        let mut fresh = Vec::with_capacity(events.len());
        for &(position, ts, message) in events {
            if last.is_some_and(|p| position <= p) {
                continue;
            }
            last = Some(position);
            fresh.push((ts, message, position));
        }
        self.append_locked(&mut state, &fresh, now)?;
        Ok((fresh.len(), events.len() - fresh.len(), state.meta.position))
    }

    fn snapshot(&self) -> io::Result<Vec<Segment>> {
        Ok(lock(&self.state)?.segments.clone())
    }

    /// Events with `seq >= from` in `window`, oldest first.
    pub fn read_forward(&self, from: u64, window: Window) -> io::Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for seg in self.snapshot()? {
            if seg.first_seq + seg.count <= from || !seg.overlaps(window.start, window.end) {
                continue;
            }
            let data = read_segment(&seg)?;
            for (i, r) in segment::records(&data).enumerate() {
                let seq = seg.first_seq + i as u64;
                if seq < from || !window.contains(r.timestamp) {
                    continue;
                }
                bytes += r.message.len() + 26;
                if out.len() >= window.limit || (bytes > window.max_bytes && !out.is_empty()) {
                    return Ok(out);
                }
                out.push(StoredEvent::of(seq, &r));
            }
        }
        Ok(out)
    }

    /// The newest events with `seq < before` (all when `None`) in `window`, oldest first.
    pub fn read_backward(
        &self,
        before: Option<u64>,
        window: Window,
    ) -> io::Result<Vec<StoredEvent>> {
        let before = before.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut bytes = 0;
        'segments: for seg in self.snapshot()?.iter().rev() {
            if seg.first_seq >= before || !seg.overlaps(window.start, window.end) {
                continue;
            }
            let data = read_segment(seg)?;
            let records: Vec<_> = segment::records(&data).collect();
            for (i, r) in records.iter().enumerate().rev() {
                let seq = seg.first_seq + i as u64;
                if seq >= before || !window.contains(r.timestamp) {
                    continue;
                }
                bytes += r.message.len() + 26;
                if out.len() >= window.limit || (bytes > window.max_bytes && !out.is_empty()) {
                    break 'segments;
                }
                out.push(StoredEvent::of(seq, r));
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Calls `visit(seq, record)` for every event with `seq >= from` in `[start, end)`,
    /// skipping whole segments outside it by the time index; stops when `visit` returns false.
    pub fn scan(
        &self,
        from: u64,
        start: Option<i64>,
        end: Option<i64>,
        mut visit: impl FnMut(u64, &RecordRef<'_>) -> bool,
    ) -> io::Result<()> {
        for seg in self.snapshot()? {
            if seg.first_seq + seg.count <= from || !seg.overlaps(start, end) {
                continue;
            }
            let data = read_segment(&seg)?;
            for (i, r) in segment::records(&data).enumerate() {
                let seq = seg.first_seq + i as u64;
                if seq < from
                    || start.is_some_and(|s| r.timestamp < s)
                    || end.is_some_and(|e| r.timestamp >= e)
                {
                    continue;
                }
                if !visit(seq, &r) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Deletes the segments whose newest event is older than `cutoff`; returns the bytes freed.
    pub(super) fn drop_segments_before(&self, cutoff: i64) -> io::Result<u64> {
        let mut state = lock(&self.state)?;
        let old = state
            .segments
            .iter()
            .take_while(|s| s.count > 0 && s.max_ts < cutoff)
            .count();
        if old == 0 {
            return Ok(0);
        }
        // The floors outlive the files: record them first.
        if let Some(dir) = &self.dir {
            write_json(&dir.join("stream.json"), &state.meta)?;
        }
        let mut freed = 0;
        for seg in state.segments.drain(..old) {
            seg.backing.remove()?;
            freed += seg.len;
        }
        Ok(freed)
    }

    pub(super) fn mark_deleted(&self) -> io::Result<()> {
        lock(&self.state)?.deleted = true;
        Ok(())
    }

    pub(super) fn remove_files(&self) -> io::Result<()> {
        if let Some(dir) = &self.dir {
            match std::fs::remove_dir_all(dir) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Folds one stored event into the stream's running facts.
fn absorb(meta: &mut StreamMeta, seq: u64, r: &RecordRef<'_>) {
    meta.next_seq = meta.next_seq.max(seq + 1);
    if r.position != NO_POSITION {
        meta.position = Some(meta.position.map_or(r.position, |p| p.max(r.position)));
    }
    meta.first_event_timestamp = Some(
        meta.first_event_timestamp
            .map_or(r.timestamp, |t| t.min(r.timestamp)),
    );
    meta.last_event_timestamp = Some(
        meta.last_event_timestamp
            .map_or(r.timestamp, |t| t.max(r.timestamp)),
    );
    meta.last_ingestion_time = Some(
        meta.last_ingestion_time
            .map_or(r.ingestion_time, |t| t.max(r.ingestion_time)),
    );
}

/// The bytes of `seg` as of the snapshot; a segment deleted meanwhile reads as empty.
fn read_segment(seg: &Segment) -> io::Result<Vec<u8>> {
    match seg.backing.read(seg.len) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
            ) =>
        {
            Ok(Vec::new())
        }
        other => other,
    }
}

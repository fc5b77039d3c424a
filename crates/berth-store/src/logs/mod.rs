//! The CloudWatch Logs store: log groups, their streams and the streams' events, kept as
//! append-only segment files (never one database row per line). Each stream is a directory
//! of segments that roll at [`SEGMENT_BYTES`]; a sparse index (first sequence number,
//! earliest/latest timestamp, length per segment) lives in memory and is rebuilt on open,
//! cutting off any record torn by a crash. Retention and deletion remove whole files.
//!
//! Layout under `<data dir>/logs/`: `g<id>/group.json`, `g<id>/s<id>/stream.json`,
//! `g<id>/s<id>/<first sequence number>.seg`. Names live inside the JSON files, so any valid
//! group or stream name maps to a short, safe path.

pub mod segment;
mod stream;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

pub use stream::{StoredEvent, Stream, StreamInfo, Window};

/// Size at which a stream's active segment is sealed and a new one started.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Errors of the log store.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// No group has this name.
    #[error("The specified log group does not exist.")]
    GroupNotFound { group: String },
    /// A group of this name exists already.
    #[error("The specified log group already exists.")]
    GroupExists { group: String },
    /// The group has no stream of this name (or it was deleted meanwhile).
    #[error("The specified log stream does not exist.")]
    StreamNotFound { group: String, stream: String },
    /// The group has a stream of this name already.
    #[error("The specified log stream already exists.")]
    StreamExists { group: String, stream: String },
    /// The files of the store failed.
    #[error("log store I/O: {0}")]
    Io(#[from] io::Error),
}

/// Result of log store operations.
pub type LogResult<T> = Result<T, LogError>;

/// A log group's settings, as kept in `group.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct GroupMeta {
    pub name: String,
    pub id: u64,
    /// Milliseconds since the epoch.
    pub creation_time: i64,
    pub retention_in_days: Option<i32>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A log group as listed: its settings and the bytes its streams hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub meta: GroupMeta,
    pub stored_bytes: u64,
}

/// One log group: settings and streams.
#[derive(Debug)]
pub struct Group {
    meta: Mutex<GroupMeta>,
    dir: Option<PathBuf>,
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
}

fn poisoned() -> io::Error {
    io::Error::other("a log store lock is poisoned (an earlier operation panicked)")
}

fn lock<T>(m: &Mutex<T>) -> io::Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| poisoned())
}

impl Group {
    /// The group's settings.
    pub fn meta(&self) -> io::Result<GroupMeta> {
        Ok(lock(&self.meta)?.clone())
    }

    /// The stream called `name`.
    pub fn stream(&self, name: &str) -> io::Result<Option<Arc<Stream>>> {
        Ok(self
            .streams
            .read()
            .map_err(|_| poisoned())?
            .get(name)
            .cloned())
    }

    /// All streams, by name.
    pub fn streams(&self) -> io::Result<Vec<Arc<Stream>>> {
        Ok(self
            .streams
            .read()
            .map_err(|_| poisoned())?
            .values()
            .cloned()
            .collect())
    }

    fn update_meta(&self, change: impl FnOnce(&mut GroupMeta)) -> io::Result<()> {
        let mut meta = lock(&self.meta)?;
        let mut next = meta.clone();
        change(&mut next);
        if let Some(dir) = &self.dir {
            write_json(&dir.join("group.json"), &next)?;
        }
        *meta = next;
        Ok(())
    }
}

/// Writes `value` as JSON to `path` atomically and durably (temporary file, fsync, rename,
/// fsync of the directory): a crash leaves the old or the new file, never a torn one.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let json = serde_json::to_vec(value).map_err(io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    io::Write::write_all(&mut file, &json)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Makes the entries of directory `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The log store of one server.
#[derive(Debug)]
pub struct LogStore {
    root: Option<PathBuf>,
    groups: RwLock<BTreeMap<String, Arc<Group>>>,
    next_id: AtomicU64,
}

impl LogStore {
    /// Opens the store kept under `data_dir/logs` (in memory without a data directory),
    /// rebuilding every stream's index and cutting off records torn by a crash.
    pub fn open(data_dir: Option<&Path>) -> io::Result<LogStore> {
        let store = LogStore {
            root: data_dir.map(|d| d.join("logs")),
            groups: RwLock::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
        };
        let Some(root) = &store.root else {
            return Ok(store);
        };
        std::fs::create_dir_all(root)?;
        let mut groups = BTreeMap::new();
        let mut max_id = 0;
        for entry in std::fs::read_dir(root)? {
            let dir = entry?.path();
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with(".trash-") {
                std::fs::remove_dir_all(&dir)?;
                continue;
            }
            if !dir.is_dir() || !name.starts_with('g') {
                continue;
            }
            let meta: GroupMeta = match read_json(&dir.join("group.json")) {
                Ok(meta) => meta,
                // A group whose creation never completed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::fs::remove_dir_all(&dir)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            max_id = max_id.max(meta.id);
            let mut streams = BTreeMap::new();
            for entry in std::fs::read_dir(&dir)? {
                let sdir = entry?.path();
                let sname = sdir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if !sdir.is_dir() || !sname.starts_with('s') {
                    continue;
                }
                match Stream::open_dir(&sdir)? {
                    Some(stream) => {
                        max_id = max_id.max(stream.id);
                        streams.insert(stream.name.clone(), Arc::new(stream));
                    }
                    None => std::fs::remove_dir_all(&sdir)?,
                }
            }
            groups.insert(
                meta.name.clone(),
                Arc::new(Group {
                    meta: Mutex::new(meta),
                    dir: Some(dir),
                    streams: RwLock::new(streams),
                }),
            );
        }
        store.next_id.store(max_id + 1, Ordering::SeqCst);
        *store.groups.write().map_err(|_| poisoned())? = groups;
        Ok(store)
    }

    fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst)
    }

    /// The group called `name`.
    pub fn group(&self, name: &str) -> LogResult<Arc<Group>> {
        self.groups
            .read()
            .map_err(|_| poisoned())?
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::GroupNotFound {
                group: name.to_string(),
            })
    }

    /// The stream `stream` of group `group`.
    pub fn stream(&self, group: &str, stream: &str) -> LogResult<Arc<Stream>> {
        self.group(group)?
            .stream(stream)?
            .ok_or_else(|| LogError::StreamNotFound {
                group: group.to_string(),
                stream: stream.to_string(),
            })
    }

    /// Every group, by name.
    pub fn groups(&self) -> io::Result<Vec<Arc<Group>>> {
        Ok(self
            .groups
            .read()
            .map_err(|_| poisoned())?
            .values()
            .cloned()
            .collect())
    }

    /// Creates group `name` at `now` (ms) with `tags`.
    pub fn create_group(
        &self,
        name: &str,
        now: i64,
        tags: BTreeMap<String, String>,
    ) -> LogResult<()> {
        let mut groups = self.groups.write().map_err(|_| poisoned())?;
        if groups.contains_key(name) {
            return Err(LogError::GroupExists {
                group: name.to_string(),
            });
        }
        let meta = GroupMeta {
            name: name.to_string(),
            id: self.new_id(),
            creation_time: now,
            retention_in_days: None,
            tags,
        };
        let dir = match &self.root {
            Some(root) => {
                let dir = root.join(format!("g{}", meta.id));
                std::fs::create_dir_all(&dir)?;
                write_json(&dir.join("group.json"), &meta)?;
                sync_dir(root)?;
                Some(dir)
            }
            None => None,
        };
        groups.insert(
            name.to_string(),
            Arc::new(Group {
                meta: Mutex::new(meta),
                dir,
                streams: RwLock::new(BTreeMap::new()),
            }),
        );
        Ok(())
    }

    /// Deletes group `name` with all its streams and events; their space is reclaimed.
    pub fn delete_group(&self, name: &str) -> LogResult<()> {
        let group = {
            let mut groups = self.groups.write().map_err(|_| poisoned())?;
            groups.remove(name).ok_or_else(|| LogError::GroupNotFound {
                group: name.to_string(),
            })?
        };
        for stream in group.streams()? {
            stream.mark_deleted()?;
        }
        if let (Some(root), Some(dir)) = (&self.root, &group.dir) {
            // One rename makes the deletion atomic; the files go after (or on the next open).
            let trash = root.join(format!(".trash-g{}", group.meta()?.id));
            std::fs::rename(dir, &trash)?;
            sync_dir(root)?;
            std::fs::remove_dir_all(&trash)?;
        }
        Ok(())
    }

    /// Sets (or with `None` removes) the retention of group `name`.
    pub fn set_retention(&self, name: &str, days: Option<i32>) -> LogResult<()> {
        self.group(name)?
            .update_meta(|m| m.retention_in_days = days)?;
        Ok(())
    }

    /// Adds or replaces `tags` on group `name`.
    pub fn tag_group(&self, name: &str, tags: &BTreeMap<String, String>) -> LogResult<()> {
        self.group(name)?.update_meta(|m| {
            m.tags
                .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())))
        })?;
        Ok(())
    }

    /// Removes the tags with `keys` from group `name`.
    pub fn untag_group(&self, name: &str, keys: &[String]) -> LogResult<()> {
        self.group(name)?.update_meta(|m| {
            for key in keys {
                m.tags.remove(key);
            }
        })?;
        Ok(())
    }

    /// Creates stream `stream` in group `group` at `now`.
    pub fn create_stream(&self, group: &str, stream: &str, now: i64) -> LogResult<Arc<Stream>> {
        let g = self.group(group)?;
        let mut streams = g.streams.write().map_err(|_| poisoned())?;
        if streams.contains_key(stream) {
            return Err(LogError::StreamExists {
                group: group.to_string(),
                stream: stream.to_string(),
            });
        }
        let id = self.new_id();
        let dir = g.dir.as_ref().map(|d| d.join(format!("s{id}")));
        let created = Arc::new(Stream::create(stream, id, now, dir)?);
        streams.insert(stream.to_string(), Arc::clone(&created));
        Ok(created)
    }

    /// The stream `stream` of `group`, created (and the group too when `create_group`) when
    /// missing.
    pub fn ensure_stream(
        &self,
        group: &str,
        stream: &str,
        create_group: bool,
        now: i64,
    ) -> LogResult<Arc<Stream>> {
        match self.group(group) {
            Err(LogError::GroupNotFound { .. }) if create_group => {
                match self.create_group(group, now, BTreeMap::new()) {
                    Ok(()) | Err(LogError::GroupExists { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        match self.stream(group, stream) {
            Err(LogError::StreamNotFound { .. }) => match self.create_stream(group, stream, now) {
                Err(LogError::StreamExists { .. }) => self.stream(group, stream),
                other => other,
            },
            other => other,
        }
    }

    /// Deletes stream `stream` of `group` and its events.
    pub fn delete_stream(&self, group: &str, stream: &str) -> LogResult<()> {
        let g = self.group(group)?;
        let removed = g
            .streams
            .write()
            .map_err(|_| poisoned())?
            .remove(stream)
            .ok_or_else(|| LogError::StreamNotFound {
                group: group.to_string(),
                stream: stream.to_string(),
            })?;
        removed.mark_deleted()?;
        removed.remove_files()?;
        Ok(())
    }

    /// The group's settings and stored bytes.
    pub fn group_info(&self, group: &Group) -> io::Result<GroupInfo> {
        let mut stored_bytes = 0;
        for stream in group.streams()? {
            stored_bytes += stream.info()?.stored_bytes;
        }
        Ok(GroupInfo {
            meta: group.meta()?,
            stored_bytes,
        })
    }

    /// Applies every group's retention at `now`: whole segments whose newest event is older
    /// than the retention are deleted. Returns the bytes reclaimed.
    pub fn sweep_retention(&self, now: i64) -> io::Result<u64> {
        let mut freed = 0;
        for group in self.groups()? {
            let Some(days) = group.meta()?.retention_in_days else {
                continue;
            };
            let cutoff = now - i64::from(days) * DAY_MS;
            for stream in group.streams()? {
                freed += stream.drop_segments_before(cutoff)?;
            }
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests;

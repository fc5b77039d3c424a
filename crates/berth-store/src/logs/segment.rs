//! One segment of a log stream: an append-only run of framed records. A record is
//! `[body length u32][checksum u32][timestamp i64][ingestion time i64][source position u64]
//! [message bytes]` (little-endian); the checksum covers the body, so a record torn by a crash
//! is recognised and cut off when the segment is reopened.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Bytes of a record before its message.
pub const HEADER_BYTES: usize = 8;
/// Bytes of a record body before its message.
const FIXED_BODY_BYTES: usize = 24;
/// The source position a record carries when it was not shipped by an agent.
pub const NO_POSITION: u64 = u64::MAX;

/// CRC-32 (IEEE) table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// Appends the framed record of one event to `out`.
pub fn encode(
    out: &mut Vec<u8>,
    timestamp: i64,
    ingestion_time: i64,
    position: u64,
    message: &str,
) {
    let body_len = FIXED_BODY_BYTES + message.len();
    let start = out.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&timestamp.to_le_bytes());
    out.extend_from_slice(&ingestion_time.to_le_bytes());
    out.extend_from_slice(&position.to_le_bytes());
    out.extend_from_slice(message.as_bytes());
    let sum = crc32(&out[start + HEADER_BYTES..]);
    out[start + 4..start + 8].copy_from_slice(&sum.to_le_bytes());
}

/// One decoded record, borrowing its message from the segment's bytes.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    pub timestamp: i64,
    pub ingestion_time: i64,
    /// The agent's position, or [`NO_POSITION`].
    pub position: u64,
    pub message: &'a str,
    /// Bytes the record takes in the segment.
    pub size: usize,
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Decodes the record at the start of `bytes`; `None` when it is incomplete or its checksum
/// (checked only when `verify`) does not hold — the end of the valid records.
pub fn decode(bytes: &[u8], verify: bool) -> Option<RecordRef<'_>> {
    if bytes.len() < HEADER_BYTES {
        return None;
    }
    let body_len = le_u32(bytes) as usize;
    if body_len < FIXED_BODY_BYTES || bytes.len() < HEADER_BYTES + body_len {
        return None;
    }
    let body = &bytes[HEADER_BYTES..HEADER_BYTES + body_len];
    if verify && crc32(body) != le_u32(&bytes[4..]) {
        return None;
    }
    let message = std::str::from_utf8(&body[FIXED_BODY_BYTES..]).ok()?;
    Some(RecordRef {
        timestamp: le_u64(body) as i64,
        ingestion_time: le_u64(&body[8..]) as i64,
        position: le_u64(&body[16..]),
        message,
        size: HEADER_BYTES + body_len,
    })
}

/// Iterates the records of a byte run written by [`encode`].
pub fn records(bytes: &[u8]) -> impl Iterator<Item = RecordRef<'_>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let record = decode(&bytes[at..], false)?;
        at += record.size;
        Some(record)
    })
}

/// Where a segment's bytes live.
#[derive(Debug, Clone)]
pub enum Backing {
    /// A file of the data directory; only the active segment keeps it open (for appending),
    /// so sealed segments cost no file descriptor.
    File {
        file: Option<Arc<File>>,
        path: PathBuf,
    },
    /// Memory, for a store without a data directory.
    Memory(Arc<RwLock<Vec<u8>>>),
}

impl Backing {
    /// Appends `bytes`; with `sync`, durable when it returns.
    pub fn append(&self, bytes: &[u8], sync: bool) -> io::Result<()> {
        match self {
            Backing::File { file, path } => {
                let file = file
                    .as_ref()
                    .ok_or_else(|| io::Error::other(format!("{} is sealed", path.display())))?;
                (&**file).write_all(bytes)?;
                if sync {
                    file.sync_data()?;
                }
                Ok(())
            }
            Backing::Memory(data) => {
                data.write()
                    .map_err(|_| io::Error::other("a segment's lock is poisoned"))?
                    .extend_from_slice(bytes);
                Ok(())
            }
        }
    }

    /// The first `len` bytes.
    pub fn read(&self, len: u64) -> io::Result<Vec<u8>> {
        match self {
            Backing::File { file, path } => {
                let mut buf = vec![0u8; len as usize];
                match file {
                    Some(file) => file.read_exact_at(&mut buf, 0)?,
                    None => File::open(path)?.read_exact_at(&mut buf, 0)?,
                }
                Ok(buf)
            }
            Backing::Memory(data) => {
                let data = data
                    .read()
                    .map_err(|_| io::Error::other("a segment's lock is poisoned"))?;
                Ok(data[..(len as usize).min(data.len())].to_vec())
            }
        }
    }

    /// Closes the file of a segment that will not be appended to again.
    pub fn seal(&mut self) {
        if let Backing::File { file, .. } = self {
            *file = None;
        }
    }

    /// Removes the segment's file, if it has one.
    pub fn remove(&self) -> io::Result<()> {
        match self {
            Backing::File { path, .. } => match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            Backing::Memory(_) => Ok(()),
        }
    }
}

/// A segment and its entry in the stream's sparse time index.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Sequence number (index in the stream) of its first event.
    pub first_seq: u64,
    /// Events it holds.
    pub count: u64,
    /// Bytes it holds.
    pub len: u64,
    /// Earliest and latest event timestamp in it.
    pub min_ts: i64,
    pub max_ts: i64,
    /// Latest ingestion time in it.
    pub max_ingestion: i64,
    pub backing: Backing,
}

impl Segment {
    /// Marks the segment as no longer appended to: its file is closed.
    pub fn seal(&mut self) {
        self.backing.seal();
    }

    /// An empty segment starting at `first_seq`.
    pub fn new(first_seq: u64, backing: Backing) -> Segment {
        Segment {
            first_seq,
            count: 0,
            len: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            max_ingestion: i64::MIN,
            backing,
        }
    }

    /// Whether any of its events may fall in `[start, end)`.
    pub fn overlaps(&self, start: Option<i64>, end: Option<i64>) -> bool {
        self.count > 0
            && start.is_none_or(|s| self.max_ts >= s)
            && end.is_none_or(|e| self.min_ts < e)
    }

    /// Notes one more event in the index.
    pub fn note(&mut self, timestamp: i64, ingestion_time: i64, size: usize) {
        self.count += 1;
        self.len += size as u64;
        self.min_ts = self.min_ts.min(timestamp);
        self.max_ts = self.max_ts.max(timestamp);
        self.max_ingestion = self.max_ingestion.max(ingestion_time);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_torn_one_is_refused() {
        let mut buf = Vec::new();
        encode(&mut buf, 5, 6, 7, "hello");
        encode(&mut buf, 8, 9, NO_POSITION, "world");
        let all: Vec<_> = records(&buf)
            .map(|r| (r.timestamp, r.message.to_string()))
            .collect();
        assert_eq!(
            all,
            vec![(5, "hello".to_string()), (8, "world".to_string())]
        );
        let first = decode(&buf, true).expect("first record is whole");
        assert_eq!((first.ingestion_time, first.position), (6, 7));
        assert!(decode(&buf[first.size..buf.len() - 1], true).is_none());
        let mut corrupt = buf.clone();
        corrupt[HEADER_BYTES + 3] ^= 1;
        assert!(decode(&corrupt, true).is_none());
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}

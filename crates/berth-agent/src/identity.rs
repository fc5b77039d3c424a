//! The agent's identity in its data dir: the container instance ARN it registered as, so a
//! restarted agent registers again as the same instance and re-adopts its containers.
//!
//! The identity is written durably (temp file, fsync, rename, fsync of the directory) and
//! twice: `agent-identity.json` and a backup `agent-identity.json.bak`. Reading falls back to
//! the backup when the main file is missing or unreadable. Every container the agent creates
//! also carries the agent's *home* (a stable hash of the canonical data dir path, see
//! [`home_id`]), so that with neither file readable the identity can still be recovered from
//! the containers themselves (`crate::recovery`).

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the identity in the data dir.
pub const IDENTITY_FILE: &str = "agent-identity.json";
/// File name of the backup copy of the identity.
pub const BACKUP_FILE: &str = "agent-identity.json.bak";

/// Errors reading or writing the identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not an identity.
    #[error("{path} is not a Berth agent identity ({message}): move it away to register as a new instance")]
    Corrupt { path: PathBuf, message: String },
}

/// Who this agent is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    /// The cluster it registered with.
    pub cluster: String,
    /// The ARN the server gave it (or, when recovered from container labels, the instance id,
    /// which the server accepts in its place).
    pub container_instance_arn: String,
}

impl Identity {
    /// The instance id: the last element of the ARN.
    pub fn instance_id(&self) -> &str {
        instance_id_of(&self.container_instance_arn)
    }
}

/// The id in a container instance ARN (`.../container-instance/{cluster}/{id}`).
pub fn instance_id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Where a kept identity was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `agent-identity.json`.
    Primary,
    /// `agent-identity.json.bak`, the main file being missing or unreadable.
    Backup,
}

/// What the data dir holds.
#[derive(Debug)]
pub enum Kept {
    /// A readable identity.
    Found { identity: Identity, source: Source },
    /// No readable identity. `unreadable` lists files that exist but cannot be read: evidence
    /// that this data dir registered before.
    Missing { unreadable: Vec<IdentityError> },
}

fn primary_path(dir: &Path) -> PathBuf {
    dir.join(IDENTITY_FILE)
}

fn backup_path(dir: &Path) -> PathBuf {
    dir.join(BACKUP_FILE)
}

/// Reads one identity file: `Ok(None)` when it does not exist.
fn read_file(path: &Path) -> Result<Option<Identity>, IdentityError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(IdentityError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let identity: Identity = serde_json::from_slice(&text).map_err(|e| IdentityError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if identity.cluster.is_empty() || identity.container_instance_arn.is_empty() {
        return Err(IdentityError::Corrupt {
            path: path.to_path_buf(),
            message: "the cluster or the container instance ARN is empty".into(),
        });
    }
    Ok(Some(identity))
}

/// What the data dir `dir` holds: the identity (from the main file, else the backup), or
/// why there is none.
pub fn read(dir: &Path) -> Kept {
    let mut unreadable = Vec::new();
    for (path, source) in [
        (primary_path(dir), Source::Primary),
        (backup_path(dir), Source::Backup),
    ] {
        match read_file(&path) {
            Ok(Some(identity)) => return Kept::Found { identity, source },
            Ok(None) => {}
            Err(err) => unreadable.push(err),
        }
    }
    Kept::Missing { unreadable }
}

/// The identity kept in `dir`, if there is a readable one (the backup when the main file is
/// missing or unreadable); an error when files exist but none can be read.
pub fn load(dir: &Path) -> Result<Option<Identity>, IdentityError> {
    match read(dir) {
        Kept::Found { identity, .. } => Ok(Some(identity)),
        Kept::Missing { mut unreadable } => match unreadable.pop() {
            None => Ok(None),
            Some(err) => Err(unreadable.into_iter().next().unwrap_or(err)),
        },
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one whole:
/// a temp file in the same directory, fsync, rename over `path`, fsync of the directory.
fn write_durably(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp"));
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)?;
    // The rename itself is durable only once the directory is synced.
    std::fs::File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` (its directory created if needed) readable by the agent's user
/// only, replacing it atomically and durably.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    write_durably(dir, path, bytes)
}

/// Keeps `identity` in `dir` (created if needed): the main file, then its backup, each
/// replaced atomically and synced to disk.
pub fn save(dir: &Path, identity: &Identity) -> Result<(), IdentityError> {
    let mut text = serde_json::to_vec_pretty(identity).unwrap_or_default();
    text.push(b'\n');
    std::fs::create_dir_all(dir).map_err(|source| IdentityError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for path in [primary_path(dir), backup_path(dir)] {
        write_durably(dir, &path, &text).map_err(|source| IdentityError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The agent's home: 16 hex digits of a stable hash (64-bit FNV-1a) of the canonical path of
/// its data dir (created if needed). Containers carry it as a label, so an agent that lost
/// its identity files finds the containers it created, and only those.
pub fn home_id(dir: &Path) -> Result<String, IdentityError> {
    let io = |source| IdentityError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let canonical = std::fs::canonicalize(dir).map_err(io)?;
    Ok(format!(
        "{:016x}",
        fnv1a(canonical.as_os_str().as_encoded_bytes())
    ))
}

/// 64-bit FNV-1a: tiny, and stable across Rust versions and machines (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Binds a listener on `addr`'s IP: first on the port kept in `dir/file` when `kept_first`
/// (a previous run's, so clients that were told it keep working), then on `addr`'s port, then
/// on any; the port bound is kept in `dir/file`.
pub async fn bind_kept_port(
    dir: &Path,
    file: &str,
    addr: std::net::SocketAddr,
    kept_first: bool,
) -> std::io::Result<tokio::net::TcpListener> {
    let kept = std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok());
    let mut ports: Vec<u16> = Vec::new();
    if kept_first {
        ports.extend(kept);
    }
    ports.extend([addr.port(), 0]);
    let mut last = None;
    for port in ports {
        match tokio::net::TcpListener::bind(std::net::SocketAddr::new(addr.ip(), port)).await {
            Ok(listener) => {
                let port = listener.local_addr()?.port();
                if kept != Some(port) {
                    write_private(&dir.join(file), port.to_string().as_bytes())?;
                }
                return Ok(listener);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port to listen on")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            cluster: "demo".into(),
            container_instance_arn:
                "arn:aws:ecs:us-east-1:000000000000:container-instance/demo/abc".into(),
        }
    }

    #[test]
    fn an_identity_survives_a_save_and_load() {
        let dir = tempfile::tempdir().expect("temp dir");
        let nested = dir.path().join("agent");
        assert_eq!(load(&nested).expect("load"), None);
        save(&nested, &identity()).expect("save");
        assert_eq!(load(&nested).expect("load"), Some(identity()));
        assert_eq!(identity().instance_id(), "abc");
        let leftovers: Vec<_> = std::fs::read_dir(&nested)
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    }

    #[test]
    fn a_deleted_or_corrupt_identity_is_read_back_from_its_backup() {
        let dir = tempfile::tempdir().expect("temp dir");
        save(dir.path(), &identity()).expect("save");
        std::fs::remove_file(dir.path().join(IDENTITY_FILE)).expect("delete");
        assert!(matches!(
            read(dir.path()),
            Kept::Found { source: Source::Backup, identity } if identity == self::identity()
        ));
        std::fs::write(dir.path().join(IDENTITY_FILE), "{\"cluster\": \"de").expect("corrupt");
        assert!(matches!(
            read(dir.path()),
            Kept::Found {
                source: Source::Backup,
                ..
            }
        ));
        std::fs::write(dir.path().join(IDENTITY_FILE), "").expect("truncate");
        assert_eq!(load(dir.path()).expect("load"), Some(identity()));
    }

    #[test]
    fn unreadable_files_are_evidence_of_a_previous_registration() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(matches!(read(dir.path()), Kept::Missing { unreadable } if unreadable.is_empty()));
        std::fs::write(dir.path().join(IDENTITY_FILE), "{not json").expect("write");
        std::fs::write(
            dir.path().join(BACKUP_FILE),
            "{\"cluster\":\"\",\"containerInstanceArn\":\"\"}",
        )
        .expect("write");
        let Kept::Missing { unreadable } = read(dir.path()) else {
            panic!("nothing readable");
        };
        assert_eq!(unreadable.len(), 2);
        let err = load(dir.path()).expect_err("corrupt");
        assert!(err.to_string().contains("move it away"), "{err}");
        assert!(err.to_string().contains(IDENTITY_FILE), "{err}");
    }

    #[test]
    fn the_home_id_is_stable_and_follows_the_canonical_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = home_id(dir.path()).expect("home");
        assert_eq!(home.len(), 16);
        assert!(home.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(home_id(&dir.path().join(".")).expect("home"), home);
        let other = tempfile::tempdir().expect("temp dir");
        assert_ne!(home_id(other.path()).expect("home"), home);
        // The hash itself never changes between builds.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

//! Access keys: their ids, their stored metadata, and their secrets, which are never stored.
//!
//! A secret is derived from the server's master key and the access key id (HMAC-SHA256), so
//! the store holds nothing that signs a request: reading the database, a backup of it or any
//! API answer gives no secret. The master key is 32 random bytes in `DATA_DIR/master.key`
//! (mode 0600), made on first start. Deleting an access key's record revokes it; its id is
//! never issued again (ids are random), so its secret never comes back.

use berth_core::sigv4::{hmac, Credentials};
use std::io::Write as _;
use std::path::Path;

/// File of the master key in the data dir.
pub const MASTER_KEY_FILE: &str = "master.key";
/// File of the root user's access key in the data dir, in AWS shared-credentials format.
pub const CREDENTIALS_FILE: &str = "credentials";
/// The profile of that file.
pub const PROFILE: &str = "berth";

pub use berth_core::model::iam::{AccessKey, KeyStatus};

/// The master key and what it derives.
#[derive(Clone)]
pub struct KeyRing {
    master: [u8; 32],
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing(<hidden>)")
    }
}

impl KeyRing {
    /// The master key of `data_dir`, made on first use; a fresh one when there is no data dir
    /// (an in-memory server, whose keys die with it).
    pub fn open(data_dir: Option<&Path>) -> std::io::Result<KeyRing> {
        let Some(dir) = data_dir else {
            return Ok(KeyRing {
                master: random_bytes()?,
            });
        };
        let path = dir.join(MASTER_KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let master: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::other(format!(
                        "{} is not a Berth master key (32 bytes); it holds {} bytes",
                        path.display(),
                        bytes.len()
                    ))
                })?;
                Ok(KeyRing { master })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let master = random_bytes()?;
                write_private(&path, &master)?;
                Ok(KeyRing { master })
            }
            Err(e) => Err(e),
        }
    }

    /// The secret of access key `access_key_id`: 40 characters, as AWS's.
    pub fn secret_of(&self, access_key_id: &str) -> String {
        use base64::Engine as _;
        let derived = hmac(
            &self.master,
            format!("berth access key secret v1\0{access_key_id}").as_bytes(),
        );
        base64::engine::general_purpose::STANDARD.encode(&derived[..30])
    }

    /// An HMAC of `data` under the master key, for what the server signs itself (session
    /// tokens).
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        hmac(&self.master, data)
    }

    /// The credentials of access key `access_key_id`.
    pub fn credentials_of(&self, access_key_id: &str) -> Credentials {
        Credentials {
            access_key_id: access_key_id.to_string(),
            secret_access_key: self.secret_of(access_key_id),
            session_token: None,
        }
    }
}

/// A new long-term access key id: `AKIA` and 16 random characters of AWS's alphabet.
pub fn new_access_key_id() -> std::io::Result<String> {
    new_id("AKIA")
}

/// A new IAM id: `prefix` (`AKIA` access key, `ASIA` temporary key, `AIDA` user, `AROA`
/// role) and 16 random characters of AWS's alphabet.
pub fn new_id(prefix: &str) -> std::io::Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bytes: [u8; 16] = random_bytes()?;
    let mut id = String::from(prefix);
    id.extend(bytes.iter().map(|b| ALPHABET[usize::from(b % 32)] as char));
    Ok(id)
}

/// A new secret token: 32 random bytes in hex.
pub fn random_token() -> std::io::Result<String> {
    let bytes: [u8; 32] = random_bytes()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| std::io::Error::other(format!("the OS random source failed: {e}")))?;
    Ok(bytes)
}

/// Writes `contents` to `path` readable by its owner only (0600), replacing it atomically.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

/// The shared-credentials text of `credentials` under profile [`PROFILE`].
pub fn credentials_file_text(credentials: &Credentials) -> String {
    format!(
        "# The Berth account's root user. Use it with:\n\
         #   export AWS_PROFILE={PROFILE} AWS_SHARED_CREDENTIALS_FILE=<this file>\n\
         [{PROFILE}]\n\
         aws_access_key_id = {}\n\
         aws_secret_access_key = {}\n",
        credentials.access_key_id, credentials.secret_access_key
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_derived_stable_and_distinct_and_the_master_key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let ring = KeyRing::open(Some(dir.path())).expect("open");
        let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let id = new_access_key_id().expect("id");
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        let secret = ring.secret_of(&id);
        assert_eq!(secret.len(), 40);
        assert_eq!(
            KeyRing::open(Some(dir.path()))
                .expect("reopen")
                .secret_of(&id),
            secret,
            "the same data dir derives the same secret"
        );
        assert_ne!(ring.secret_of(&new_access_key_id().expect("id")), secret);
        let other = tempfile::tempdir().expect("tempdir");
        assert_ne!(
            KeyRing::open(Some(other.path()))
                .expect("open")
                .secret_of(&id),
            secret,
            "another master key derives another secret"
        );
    }
}

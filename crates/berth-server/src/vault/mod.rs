//! Encryption at rest of secret values and SecureString parameters (envelope encryption).
//!
//! Every value is sealed with AES-256-GCM under a fresh random data key; the data key is
//! sealed in turn under the server's master key. The store keeps only the [`Sealed`]
//! envelope: ciphertext, nonce, wrapped data key and the id of the master key that wrapped
//! it. Both seals use the record's associated data (its ARN and version), so an envelope
//! copied onto another record or version fails to open instead of answering the wrong value.
//!
//! The master key is 32 random bytes in `DATA_DIR/vault.key` (mode 0600, made on first
//! start), or in the file the operator names with `BERTH_VAULT_KEY_FILE`; an in-memory
//! server gets a random one that dies with it. The file holds the current key first, then
//! keys being retired by a rotation (see [`rotation`]), 32 bytes each.

pub mod admin;
pub mod rotation;

use crate::auth::keys::write_private;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// File of the vault's master key in the data dir.
pub const VAULT_KEY_FILE: &str = "vault.key";
/// Environment variable naming an operator-provided master key file (32 raw bytes).
pub const VAULT_KEY_FILE_ENV: &str = "BERTH_VAULT_KEY_FILE";

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The envelope was wrapped by a master key this server does not hold.
    #[error("the value was encrypted under master key {key_id}, which this server does not hold")]
    UnknownKey { key_id: String },
    /// The envelope does not open: altered, moved to another record, or not an envelope.
    #[error("the encrypted value does not authenticate (altered or moved to another record)")]
    Corrupt,
    /// The OS random source or the key file failed.
    #[error("vault I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// A sealed value as the store keeps it; holds no plaintext and no usable key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sealed {
    /// Id of the master key that wrapped the data key.
    pub key_id: String,
    /// The data key, sealed under the master key: nonce then ciphertext, base64.
    pub wrapped_key: String,
    /// Nonce of the value's seal, base64.
    pub nonce: String,
    /// The value sealed under the data key (with its tag), base64.
    pub ciphertext: String,
}

impl Sealed {
    /// An opaque base64 blob standing for the value where AWS shows a KMS ciphertext (a
    /// SecureString read without decryption); it holds no plaintext and opens nothing.
    pub fn opaque(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut blob = Vec::new();
        for part in [&self.wrapped_key, &self.nonce, &self.ciphertext] {
            blob.extend(b64.decode(part).unwrap_or_default());
        }
        blob.extend(self.key_id.as_bytes());
        b64.encode(blob)
    }
}

/// One master key and its public id.
#[derive(Clone)]
struct MasterKey {
    id: String,
    key: [u8; KEY_LEN],
}

impl MasterKey {
    fn new(key: [u8; KEY_LEN]) -> MasterKey {
        // The id is a MAC of a constant: it names the key without revealing it.
        let mac = berth_core::sigv4::hmac(&key, b"berth vault master key id v1");
        let id = mac[..8].iter().map(|b| format!("{b:02x}")).collect();
        MasterKey { id, key }
    }
}

/// The current master key and those a rotation is retiring (still able to open).
struct Keys {
    current: MasterKey,
    retired: Vec<MasterKey>,
}

/// The server's vault: seals and opens values with the master key it holds.
pub struct Vault {
    keys: RwLock<Keys>,
    /// Where the keys are kept; `None` for an in-memory server.
    file: Option<PathBuf>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(<hidden>)")
    }
}

impl Vault {
    /// The vault of a server: the key file `BERTH_VAULT_KEY_FILE` names if set, else
    /// `DATA_DIR/vault.key` (made on first start), else (no data dir) a random key in memory.
    pub fn open(data_dir: Option<&Path>) -> std::io::Result<Vault> {
        let operator = std::env::var_os(VAULT_KEY_FILE_ENV).filter(|f| !f.is_empty());
        Vault::open_from(operator.map(PathBuf::from), data_dir)
    }

    /// [`Vault::open`] with the operator's key file, if any, given: it must exist.
    pub fn open_from(
        operator_file: Option<PathBuf>,
        data_dir: Option<&Path>,
    ) -> std::io::Result<Vault> {
        if let Some(file) = operator_file {
            let keys = read_keys(&file)?.ok_or_else(|| {
                std::io::Error::other(format!(
                    "{VAULT_KEY_FILE_ENV} names {}, which does not exist",
                    file.display()
                ))
            })?;
            return Ok(Vault::with(keys, Some(file)));
        }
        let Some(dir) = data_dir else {
            return Ok(Vault::in_memory(random_key()?));
        };
        let file = dir.join(VAULT_KEY_FILE);
        let keys = match read_keys(&file)? {
            Some(keys) => keys,
            None => {
                let key = random_key()?;
                write_private(&file, &key)?;
                vec![key]
            }
        };
        Ok(Vault::with(keys, Some(file)))
    }

    /// A vault whose master key is `key`, kept in memory only.
    pub fn in_memory(key: [u8; KEY_LEN]) -> Vault {
        Vault::with(vec![key], None)
    }

    fn with(mut keys: Vec<[u8; KEY_LEN]>, file: Option<PathBuf>) -> Vault {
        let current = MasterKey::new(keys.remove(0));
        let retired = keys.into_iter().map(MasterKey::new).collect();
        Vault {
            keys: RwLock::new(Keys { current, retired }),
            file,
        }
    }

    /// Id of the master key new values are sealed under.
    pub fn current_key_id(&self) -> String {
        self.read().current.id.clone()
    }

    /// Seals `plaintext` for the record `aad` names, under a new data key.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, VaultError> {
        let data_key = random_key()?;
        let (nonce, ciphertext) = encrypt(&data_key, plaintext, aad)?;
        let keys = self.read();
        let wrapped = wrap(&keys.current, &data_key, aad)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(Sealed {
            key_id: keys.current.id.clone(),
            wrapped_key: wrapped,
            nonce: b64.encode(nonce),
            ciphertext: b64.encode(ciphertext),
        })
    }

    /// Opens `sealed`, which must have been sealed for the record `aad` names.
    pub fn unseal(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        let data_key = self.unwrap_key(sealed, aad)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let nonce = b64.decode(&sealed.nonce).map_err(|_| VaultError::Corrupt)?;
        let ciphertext = b64
            .decode(&sealed.ciphertext)
            .map_err(|_| VaultError::Corrupt)?;
        decrypt(&data_key, &nonce, &ciphertext, aad)
    }

    /// Makes `new_key` the master key new values are sealed under. The old one is kept (in
    /// memory and in the key file, after the new one) so values wrapped under it still open
    /// until [`Vault::rewrap`] has moved them and [`Vault::retire`] dropped it: the server
    /// keeps serving throughout.
    pub fn rotate(&self, new_key: [u8; KEY_LEN]) -> std::io::Result<()> {
        let mut keys = self.write();
        let next = MasterKey::new(new_key);
        if next.id == keys.current.id {
            return Ok(());
        }
        let retired: Vec<MasterKey> = std::iter::once(keys.current.clone())
            .chain(keys.retired.iter().cloned())
            .filter(|k| k.id != next.id)
            .collect();
        let rotated = Keys {
            current: next,
            retired,
        };
        // The file first: a new key only in memory would die with the process, and every
        // value sealed under it with it.
        self.persist(&rotated)?;
        *keys = rotated;
        Ok(())
    }

    /// `sealed` with its data key wrapped under the current master key (the value's seal is
    /// unchanged); `None` when it already is.
    pub fn rewrap(&self, sealed: &Sealed, aad: &[u8]) -> Result<Option<Sealed>, VaultError> {
        if sealed.key_id == self.current_key_id() {
            return Ok(None);
        }
        let data_key = self.unwrap_key(sealed, aad)?;
        let keys = self.read();
        Ok(Some(Sealed {
            key_id: keys.current.id.clone(),
            wrapped_key: wrap(&keys.current, &data_key, aad)?,
            ..sealed.clone()
        }))
    }

    /// Forgets the master keys a rotation replaced, in memory and in the key file; call it
    /// once every record has been re-wrapped.
    pub fn retire(&self) -> std::io::Result<()> {
        let mut keys = self.write();
        let kept = Keys {
            current: keys.current.clone(),
            retired: Vec::new(),
        };
        self.persist(&kept)?;
        *keys = kept;
        Ok(())
    }

    fn unwrap_key(&self, sealed: &Sealed, aad: &[u8]) -> Result<[u8; KEY_LEN], VaultError> {
        let keys = self.read();
        let master = std::iter::once(&keys.current)
            .chain(&keys.retired)
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKey {
                key_id: sealed.key_id.clone(),
            })?;
        let wrapped = base64::engine::general_purpose::STANDARD
            .decode(&sealed.wrapped_key)
            .map_err(|_| VaultError::Corrupt)?;
        if wrapped.len() < NONCE_LEN {
            return Err(VaultError::Corrupt);
        }
        let (nonce, ciphertext) = wrapped.split_at(NONCE_LEN);
        let key = decrypt(&master.key, nonce, ciphertext, &wrap_aad(aad))?;
        key.as_slice().try_into().map_err(|_| VaultError::Corrupt)
    }

    fn persist(&self, keys: &Keys) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut bytes = keys.current.key.to_vec();
        for k in &keys.retired {
            bytes.extend_from_slice(&k.key);
        }
        write_private(file, &bytes)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().expect("vault keys lock poisoned")
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Keys> {
        self.keys.write().expect("vault keys lock poisoned")
    }
}

/// The keys of a key file (current first), or `None` when it does not exist.
fn read_keys(file: &Path) -> std::io::Result<Option<Vec<[u8; KEY_LEN]>>> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.is_empty() || !bytes.len().is_multiple_of(KEY_LEN) {
        return Err(std::io::Error::other(format!(
            "{} is not a Berth vault key file (32-byte keys); it holds {} bytes",
            file.display(),
            bytes.len()
        )));
    }
    let keys = bytes
        .chunks_exact(KEY_LEN)
        .map(|chunk| {
            let mut key = [0u8; KEY_LEN];
            key.copy_from_slice(chunk);
            key
        })
        .collect();
    Ok(Some(keys))
}

/// A new random 256-bit key (a master key for [`Vault::rotate`], or a data key).
pub fn random_key() -> std::io::Result<[u8; KEY_LEN]> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key)
        .map_err(|e| std::io::Error::other(format!("the OS random source failed: {e}")))?;
    Ok(key)
}

/// The data key's own associated data: the record's, marked so a value seal and a key seal
/// can never stand in for each other.
fn wrap_aad(aad: &[u8]) -> Vec<u8> {
    [b"berth vault data key\0".as_slice(), aad].concat()
}

/// The data key sealed under `master`: nonce then ciphertext, base64.
fn wrap(master: &MasterKey, data_key: &[u8; KEY_LEN], aad: &[u8]) -> Result<String, VaultError> {
    let (nonce, ciphertext) = encrypt(&master.key, data_key, &wrap_aad(aad))?;
    Ok(base64::engine::general_purpose::STANDARD.encode([nonce.as_slice(), &ciphertext].concat()))
}

type NonceAndCiphertext = ([u8; NONCE_LEN], Vec<u8>);

fn encrypt(key: &[u8; KEY_LEN], msg: &[u8], aad: &[u8]) -> Result<NonceAndCiphertext, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|e| std::io::Error::other(format!("the OS random source failed: {e}")))?;
    let cipher = Aes256Gcm::new(&(*key).into());
    let ciphertext = cipher
        .encrypt(&nonce.into(), Payload { msg, aad })
        .map_err(|_| VaultError::Corrupt)?;
    Ok((nonce, ciphertext))
}

fn decrypt(
    key: &[u8; KEY_LEN],
    nonce: &[u8],
    msg: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Corrupt)?;
    let cipher = Aes256Gcm::new(&(*key).into());
    cipher
        .decrypt(&nonce.into(), Payload { msg, aad })
        .map_err(|_| VaultError::Corrupt)
}

#[cfg(test)]
mod tests;

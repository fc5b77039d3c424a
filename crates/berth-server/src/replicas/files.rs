//! The files every replica must hold alike, kept in the shared store: the master key (access
//! key secrets derive from it, so a key issued through one replica signs requests to all),
//! the vault key (secrets written through one replica open on all) and the metrics token.
//! The first replica to start publishes its own; every later one adopts what the store holds,
//! overwriting its data dir's copy. Anyone who can read the store can read these, as anyone
//! who can read the SQLite database can read everything in it: secure etcd (TLS, auth).

use berth_store::{keys, Store, StoreError, Txn};
use std::path::Path;

/// The data dir files shared through the store.
const SHARED: [&str; 3] = [
    crate::auth::keys::MASTER_KEY_FILE,
    crate::vault::VAULT_KEY_FILE,
    crate::metrics::TOKEN_FILE,
];

/// Makes `dir`'s shared files the store's: adopts the store's copy of each, or publishes the
/// local one (made first if missing) when the store has none yet.
pub async fn share(store: &dyn Store, dir: &Path) -> Result<(), StoreError> {
    for name in SHARED {
        if name == crate::vault::VAULT_KEY_FILE
            && std::env::var_os(crate::vault::VAULT_KEY_FILE_ENV).is_some_and(|f| !f.is_empty())
        {
            // The operator keeps the vault key; every replica must be given the same one.
            continue;
        }
        let key = keys::shared_file(name);
        let path = dir.join(name);
        let fail =
            |e: std::io::Error| StoreError::Backend(format!("shared file {}: {e}", path.display()));
        loop {
            if let Some(stored) = store.get(&key).await? {
                if std::fs::read(&path).ok().as_deref() != Some(stored.value.as_slice()) {
                    crate::auth::keys::write_private(&path, &stored.value).map_err(fail)?;
                    tracing::info!(file = %path.display(), "replicas: adopted the shared copy");
                }
                break;
            }
            let local = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    make(name, dir).map_err(fail)?;
                    std::fs::read(&path).map_err(fail)?
                }
                Err(e) => return Err(fail(e)),
            };
            let publish = Txn::new()
                .when(berth_store::Compare::absent(&key))
                .put(&key, local);
            if store.txn(publish).await?.succeeded {
                break;
            }
            // Another replica published first: adopt its copy.
        }
    }
    Ok(())
}

/// Makes the file `name` in `dir` as a single server would on first start.
fn make(name: &str, dir: &Path) -> std::io::Result<()> {
    match name {
        crate::auth::keys::MASTER_KEY_FILE => crate::auth::KeyRing::open(Some(dir)).map(drop),
        crate::vault::VAULT_KEY_FILE => crate::vault::Vault::open_from(None, Some(dir)).map(drop),
        _ => crate::metrics::token(Some(dir)).map(drop),
    }
}

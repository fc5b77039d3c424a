//! Master key rotation over the whole store: the new key becomes current, every stored
//! envelope's data key is re-wrapped under it, then the old key is forgotten. Values never
//! leave their seal and the server keeps answering throughout, since the old key still opens
//! what has not been re-wrapped yet.

use super::{Sealed, Vault, VaultError};
use crate::app::App;
use crate::error::ApiError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A stored record holding sealed values. It lists them itself, since only it knows the
/// associated data each was sealed for.
pub trait SealedRecord: Serialize + DeserializeOwned {
    /// Each sealed value of the record, with the associated data it was sealed for.
    fn sealed_values(&mut self) -> Vec<(&mut Sealed, Vec<u8>)>;
}

/// Re-wraps every sealed value of `record` under the vault's current key; whether any moved.
pub fn rewrap_record<T: SealedRecord>(vault: &Vault, record: &mut T) -> Result<bool, VaultError> {
    let mut changed = false;
    for (sealed, aad) in record.sealed_values() {
        if let Some(rewrapped) = vault.rewrap(sealed, &aad)? {
            *sealed = rewrapped;
            changed = true;
        }
    }
    Ok(changed)
}

/// The error of a value the vault cannot open: a server fault, never the value.
pub fn vault_fault(e: VaultError) -> ApiError {
    tracing::error!(error = %e, "vault failure");
    ApiError::server(format!(
        "The server could not decrypt or encrypt the value: {e}"
    ))
}

/// Re-wraps every record of type `T` under `prefix`; how many changed and how many lost a
/// race with another writer (to be tried again). A record deleted meanwhile is skipped.
async fn rewrap_prefix<T: SealedRecord>(
    app: &App,
    prefix: &str,
) -> Result<(usize, usize), ApiError> {
    let (mut changed, mut raced) = (0, 0);
    for kv in app.state.list(prefix) {
        let Some(current) = app.get::<T>(&kv.key)? else {
            continue;
        };
        let mut record = current.value;
        if !rewrap_record(&app.vault, &mut record).map_err(vault_fault)? {
            continue;
        }
        // Compare on revision: a record another writer changed meanwhile is tried again.
        let txn = berth_store::Txn::new()
            .when(berth_store::Compare::at(&*kv.key, current.mod_revision))
            .put(&*kv.key, berth_store::typed::encode(&record));
        if app.commit(txn).await?.succeeded {
            changed += 1;
        } else {
            raced += 1;
        }
    }
    Ok((changed, raced))
}

/// Rotates the vault's master key to `new_key`: re-wraps the data key of every secret
/// version and parameter version, then forgets the old master key. Returns how many records
/// were rewritten. Safe to run again after a crash: the key file keeps the old key until the
/// end.
pub async fn rotate_master_key(app: &App, new_key: [u8; 32]) -> Result<usize, ApiError> {
    app.vault
        .rotate(new_key)
        .map_err(|e| ApiError::server(format!("cannot store the new vault key: {e}")))?;
    let mut changed = 0;
    // New writes are sealed under the new key; only records that lost a race need another
    // pass. The old key is forgotten only once none is left under it.
    for _ in 0..10 {
        let secrets =
            rewrap_prefix::<crate::secretsmanager::Secret>(app, crate::secretsmanager::SECRETS)
                .await?;
        let parameters =
            rewrap_prefix::<crate::ssm::Parameter>(app, crate::ssm::PARAMETERS).await?;
        changed += secrets.0 + parameters.0;
        if secrets.1 + parameters.1 == 0 {
            app.vault
                .retire()
                .map_err(|e| ApiError::server(format!("cannot store the vault key: {e}")))?;
            return Ok(changed);
        }
    }
    Err(ApiError::server(
        "the vault key rotation kept losing races with writers; the old key is kept, run it again",
    ))
}

//! `berth rotate-vault-key`: rotates the master key that encrypts every secret and SecureString
//! of a running server, which keeps answering throughout. Only the account's root user may.

use super::api::ApiArgs;
use anyhow::Context;
use berth_core::gateway::{VaultRotation, VAULT_ROTATE_PATH};
use clap::Args;

/// Options of `berth rotate-vault-key`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Rotates the key and says what changed.
pub async fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let done: VaultRotation = client
        .post(VAULT_ROTATE_PATH, &serde_json::json!({}))
        .await
        .with_context(|| format!("the vault key rotation on {} failed", client.base_url()))?;
    println!(
        "vault master key {} replaced by {}: {} secret and parameter records re-wrapped; \
         the old key is forgotten",
        done.previous_key_id, done.key_id, done.rewrapped
    );
    Ok(())
}

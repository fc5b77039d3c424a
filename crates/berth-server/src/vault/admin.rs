//! `POST /v1/admin/vault/rotate-key`: the operator's way to rotate the vault's master key on a
//! running server (`berth rotate-vault-key`). Only the account's root user may: the key guards
//! every secret of the account. A new random key is written to the key file, every data key
//! is re-wrapped under it while the server keeps answering, then the old key is forgotten.

use crate::app::App;
use crate::auth::Principal;
use crate::error::ApiError;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use berth_core::gateway::VaultRotation;
use std::sync::Arc;

/// One rotation at a time: a second would retire the first's key before its re-wrap ends.
static ROTATING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The route's handler.
pub async fn rotate_key(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
) -> Response {
    match rotate(&app, &caller).await {
        Ok(done) => axum::Json(done).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn rotate(app: &App, caller: &Principal) -> Result<VaultRotation, ApiError> {
    if !caller.is_root() {
        return Err(ApiError::new(
            "AccessDeniedException",
            format!(
                "{} is not authorized to rotate the vault's master key: only the account's \
                 root user may",
                caller.arn
            ),
        ));
    }
    let _one_at_a_time = ROTATING.lock().await;
    let previous_key_id = app.vault.current_key_id();
    let new_key = super::random_key().map_err(|e| ApiError::server(e.to_string()))?;
    let rewrapped = super::rotation::rotate_master_key(app, new_key).await?;
    let key_id = app.vault.current_key_id();
    tracing::info!(%key_id, %previous_key_id, rewrapped, "vault master key rotated");
    Ok(VaultRotation {
        key_id,
        previous_key_id,
        rewrapped,
    })
}

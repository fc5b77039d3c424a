//! Secrets Manager on the endpoint (AWS JSON 1.1, target prefix `secretsmanager`).

use crate::dispatch::Ctx;
use crate::error::ApiError;

/// Runs Secrets Manager operation `op` on the JSON `body`; returns the JSON answer.
// SKELETON: the Secrets Manager work fills this in.
pub async fn dispatch(_ctx: Ctx, op: &str, _body: &[u8]) -> Result<Vec<u8>, ApiError> {
    Err(ApiError::new(
        "UnknownOperationException",
        format!("'{op}' is not an operation of secretsmanager."),
    ))
}

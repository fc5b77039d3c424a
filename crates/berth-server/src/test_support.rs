//! Helpers for handler and controller tests: an in-memory server and the dispatcher driven
//! with the JSON an ECS client sends.

use crate::app::{App, ServerConfig};
use crate::dispatch::{dispatch, Caller, Ctx};
use crate::error::ApiError;
use serde_json::Value;
use std::sync::Arc;

/// A server on an in-memory store.
pub async fn app() -> Arc<App> {
    App::open(ServerConfig::default()).await.expect("app")
}

/// Calls operation `op` with `body`; the decoded answer or the ECS error.
pub async fn call(app: &Arc<App>, op: &str, body: Value) -> Result<Value, ApiError> {
    let ctx = Ctx {
        app: app.clone(),
        caller: Caller::default(),
    };
    let bytes = dispatch(ctx, op, body.to_string().as_bytes()).await?;
    Ok(serde_json::from_slice(&bytes).expect("json response"))
}

/// Calls operation `op`, which must succeed.
pub async fn ok(app: &Arc<App>, op: &str, body: Value) -> Value {
    match call(app, op, body).await {
        Ok(v) => v,
        Err(e) => panic!("{op} failed: {e}"),
    }
}

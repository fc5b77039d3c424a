//! The web console at `/console`.

use crate::app::App;
use axum::Router;
use std::sync::Arc;

/// The console's routes (outside SigV4: the console signs its users in itself).
pub fn router() -> Router<Arc<App>> {
    Router::new()
}

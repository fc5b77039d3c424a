//! Controllers: reconcile loops the server runs beside the API.

pub mod gc;
pub mod instance_health;
pub mod queue;
pub mod services;

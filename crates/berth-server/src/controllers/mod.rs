//! Controllers: reconcile loops the server runs beside the API.

pub mod instance_health;
pub mod services;
pub mod task_gc;

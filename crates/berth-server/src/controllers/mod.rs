//! Controllers: reconcile loops the server runs beside the API.

pub mod task_gc;

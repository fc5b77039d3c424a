//! AWS Cloud Map (service discovery), served on the ECS endpoint. [`model`] is what the store
//! keeps.

pub mod model;

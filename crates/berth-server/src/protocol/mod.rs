//! The wire protocols of the AWS APIs served on the one endpoint: AWS JSON 1.1 (ECS) and the
//! query protocol with XML answers (IAM, STS). Pure framing; no handler logic.

pub mod json;
pub mod query;

pub use json::{operation_of, parse_input, CONTENT_TYPE, MAX_BODY_BYTES, TARGET_PREFIX};

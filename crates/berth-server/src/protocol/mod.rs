//! The wire protocols of the AWS APIs served on the one endpoint: AWS JSON 1.1 (ECS) and the
//! query protocol with XML answers (IAM, STS, CloudWatch), and the
//! `smithy-rpc-v2-cbor` protocol (CloudWatch). Pure framing; no handler logic.

pub mod cbor;
pub mod json;
pub mod query;

pub use json::{
    operation_of, parse_input, JsonService, CONTENT_TYPE, MAX_BODY_BYTES, TARGET_PREFIX,
};

//! The `smithy-rpc-v2-cbor` protocol (CloudWatch, as current botocore speaks it):
//! `POST /service/<Service>/operation/<Operation>` with a CBOR body; answers in CBOR with the
//! `smithy-protocol: rpc-v2-cbor` header; errors as a CBOR map holding `__type` and `message`.
//! Pure framing; no handler logic.

use crate::error::ApiError;

/// Content type of CBOR requests and answers.
pub const CONTENT_TYPE: &str = "application/cbor";
/// The header every answer carries, and its value.
pub const PROTOCOL_HEADER: (&str, &str) = ("smithy-protocol", "rpc-v2-cbor");

/// The body of an error answer.
// SKELETON: the CloudWatch work replaces this with the real CBOR encoding.
pub fn error_body(error: &ApiError) -> Vec<u8> {
    serde_json::json!({"__type": error.name, "message": error.message})
        .to_string()
        .into_bytes()
}

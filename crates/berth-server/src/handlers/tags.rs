//! Placeholder until this resource is implemented.

use crate::dispatch::Ctx;
use crate::error::ApiError;
type Input = serde_json::Map<String, serde_json::Value>;

/// Not implemented yet.
pub async fn tag_resource(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("tag_resource"))
}

/// Not implemented yet.
pub async fn untag_resource(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("untag_resource"))
}

/// Not implemented yet.
pub async fn list_tags_for_resource(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("list_tags_for_resource"))
}

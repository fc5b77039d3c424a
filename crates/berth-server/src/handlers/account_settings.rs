//! Placeholder until this resource is implemented.

use crate::dispatch::Ctx;
use crate::error::ApiError;
type Input = serde_json::Map<String, serde_json::Value>;

/// Not implemented yet.
pub async fn put(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("put"))
}

/// Not implemented yet.
pub async fn put_default(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("put_default"))
}

/// Not implemented yet.
pub async fn list(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("list"))
}

/// Not implemented yet.
pub async fn delete(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("delete"))
}

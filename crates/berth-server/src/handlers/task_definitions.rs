//! Placeholder until this resource is implemented.

use crate::dispatch::Ctx;
use crate::error::ApiError;
type Input = serde_json::Map<String, serde_json::Value>;

/// Not implemented yet.
pub async fn register(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("register"))
}

/// Not implemented yet.
pub async fn describe(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("describe"))
}

/// Not implemented yet.
pub async fn list(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("list"))
}

/// Not implemented yet.
pub async fn list_families(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("list_families"))
}

/// Not implemented yet.
pub async fn deregister(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("deregister"))
}

/// Not implemented yet.
pub async fn delete(_ctx: Ctx, _req: Input) -> Result<Input, ApiError> {
    Err(ApiError::unsupported("delete"))
}

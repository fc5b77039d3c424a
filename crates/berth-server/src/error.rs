//! ECS API errors: every failure a handler returns becomes one of ECS's exception names with a
//! message that tells the caller what to fix. This is the one place errors map to HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_store::StoreError;

/// An error as an ECS client sees it: `{"__type": name, "message": message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct ApiError {
    /// ECS exception name, such as `InvalidParameterException`.
    pub name: &'static str,
    /// What went wrong and what to change.
    pub message: String,
}

impl ApiError {
    /// An error with the given ECS exception name.
    pub fn new(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            message: message.into(),
        }
    }

    /// A parameter is missing, malformed or outside its allowed values.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    /// The request is well-formed but cannot be carried out as asked.
    pub fn client(message: impl Into<String>) -> Self {
        Self::new("ClientException", message)
    }

    /// The body could not be read as the operation's input.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new("SerializationException", message)
    }

    /// The named cluster does not exist.
    pub fn cluster_not_found() -> Self {
        Self::new("ClusterNotFoundException", "Cluster not found.")
    }

    /// The operation name is not one ECS has.
    pub fn unknown_operation(operation: &str) -> Self {
        Self::new(
            "UnknownOperationException",
            format!("'{operation}' is not an operation of AmazonEC2ContainerServiceV20141113."),
        )
    }

    /// An ECS operation that Berth does not implement (yet).
    pub fn unsupported(operation: &str) -> Self {
        Self::new(
            "UnsupportedFeatureException",
            format!("Berth does not support {operation} yet."),
        )
    }

    /// A fault of the server itself: the only error that is a 500.
    pub fn server(message: impl Into<String>) -> Self {
        Self::new("ServerException", message)
    }

    /// The HTTP status AWS uses for this error: 500 for the server's faults, 403 for a
    /// request whose signature is missing, unknown, wrong or expired and for IAM's and STS's
    /// denials, 404 and 409 as IAM uses them, 400 for everything else.
    pub fn status(&self) -> StatusCode {
        match self.name {
            "ServerException" => StatusCode::INTERNAL_SERVER_ERROR,
            "MissingAuthenticationTokenException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "AccessDenied" => StatusCode::FORBIDDEN,
            "NoSuchEntity" => StatusCode::NOT_FOUND,
            "EntityAlreadyExists" | "DeleteConflict" | "LimitExceeded" => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::server(format!("The server could not complete the request: {e}"))
    }
}

impl From<berth_core::pagination::PageError> for ApiError {
    fn from(e: berth_core::pagination::PageError) -> Self {
        ApiError::invalid_parameter(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.name, "message": self.message });
        let mut response = (self.status(), body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(crate::protocol::CONTENT_TYPE),
        );
        if let Ok(value) = axum::http::HeaderValue::from_str(self.name) {
            headers.insert("x-amzn-ErrorType", value);
        }
        response
    }
}

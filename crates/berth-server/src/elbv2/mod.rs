//! Elastic Load Balancing v2, served on the ECS endpoint over the query protocol (XML
//! answers) so `aws elbv2` and boto3's `elbv2` client work unchanged. One file per resource.
//! [`proxy`] is the data plane that serves the listeners; [`health`] is where its health
//! checks leave what DescribeTargetHealth reports.

pub mod health;
pub mod proxy;

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{QueryRequest, Xml};

/// XML namespace of ELBv2 answers.
pub const NAMESPACE: &str = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";

/// Runs ELBv2 action `request.action`; the XML of its result, if it has one.
pub async fn dispatch(_ctx: Ctx, request: QueryRequest) -> Result<Option<Xml>, ApiError> {
    Err(ApiError::new(
        "InvalidAction",
        format!(
            "The action {} is not valid for this web service.",
            request.action
        ),
    ))
}

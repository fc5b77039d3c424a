//! CloudWatch metrics on the endpoint (`GraniteServiceVersion20100801`), in the three
//! protocols its clients speak: `smithy-rpc-v2-cbor`, AWS JSON 1.0 and query. Series are kept
//! per (namespace, metric, dimensions) at one-minute resolution.

use crate::dispatch::Ctx;
use crate::error::ApiError;
use crate::protocol::query::{QueryRequest, Xml};
use std::path::Path;

/// XML namespace of CloudWatch's query answers.
pub const NAMESPACE: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";

/// Statistics of the values seen in one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatisticSet {
    pub sample_count: f64,
    pub sum: f64,
    pub minimum: f64,
    pub maximum: f64,
}

/// One datapoint to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub namespace: String,
    pub metric_name: String,
    /// (Name, Value) pairs.
    pub dimensions: Vec<(String, String)>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub statistics: StatisticSet,
    /// CloudWatch's unit name (`Percent`, `Bytes`, `None`, …).
    pub unit: String,
}

/// The metric series of the server.
// SKELETON: the CloudWatch metrics work fills this in.
#[derive(Debug, Default)]
pub struct MetricStore {}

impl MetricStore {
    /// Opens the store under `data_dir` (in memory without one).
    pub fn open(_data_dir: Option<&Path>) -> std::io::Result<MetricStore> {
        Ok(MetricStore {})
    }

    /// Stores `data`.
    pub fn put(&self, _data: Vec<Datum>) -> Result<(), ApiError> {
        Ok(())
    }
}

fn unknown(op: &str) -> ApiError {
    ApiError::new(
        "UnknownOperationException",
        format!("'{op}' is not an operation of GraniteServiceVersion20100801."),
    )
}

/// Runs operation `op` on the AWS JSON 1.0 `body`; returns the JSON answer.
pub async fn dispatch_json(_ctx: Ctx, op: &str, _body: &[u8]) -> Result<Vec<u8>, ApiError> {
    Err(unknown(op))
}

/// Runs operation `op` on the CBOR `body`; returns the CBOR answer.
pub async fn dispatch_cbor(_ctx: Ctx, op: &str, _body: &[u8]) -> Result<Vec<u8>, ApiError> {
    Err(unknown(op))
}

/// Runs query action `request.action`; returns its result element.
pub async fn dispatch_query(_ctx: Ctx, request: QueryRequest) -> Result<Option<Xml>, ApiError> {
    Err(unknown(&request.action))
}

//! The console's API calls: ordinary ECS and CloudWatch Logs operations, dispatched in process
//! as the signed-in principal, so IAM authorises every read and every action.

use super::session::Viewer;
use crate::error::ApiError;
use serde_json::Value;

/// Runs ECS operation `op` with `body` as the viewer.
pub async fn ecs(viewer: &Viewer, op: &str, body: Value) -> Result<Value, ApiError> {
    let bytes =
        crate::dispatch::dispatch(viewer.ctx.clone(), op, body.to_string().as_bytes()).await?;
    decode(op, &bytes)
}

/// Runs CloudWatch Logs operation `op` with `body` as the viewer.
pub async fn logs(viewer: &Viewer, op: &str, body: Value) -> Result<Value, ApiError> {
    let bytes = crate::logs::dispatch(viewer.ctx.clone(), op, body.to_string().as_bytes()).await?;
    decode(op, &bytes)
}

fn decode(op: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::server(format!("{op} answered no JSON: {e}")))
}

/// Every string of the list `field` over all pages of a List operation.
pub async fn list_all(
    viewer: &Viewer,
    op: &str,
    mut body: Value,
    field: &str,
) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::new();
    loop {
        let page = ecs(viewer, op, body.clone()).await?;
        out.extend(strings(&page[field]));
        match page["nextToken"].as_str() {
            Some(token) if !token.is_empty() => body["nextToken"] = Value::from(token),
            _ => return Ok(out),
        }
    }
}

/// Describes `arns` in batches of `batch` with `op` (`{key: batch, ...extra}`); the objects of
/// `field` in order.
pub async fn describe_all(
    viewer: &Viewer,
    op: &str,
    extra: Value,
    key: &str,
    arns: &[String],
    batch: usize,
    field: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(arns.len());
    for chunk in arns.chunks(batch.max(1)) {
        let mut body = extra.clone();
        body[key] = Value::from(chunk.to_vec());
        let mut answer = ecs(viewer, op, body).await?;
        if let Value::Array(items) = answer[field].take() {
            out.extend(items);
        }
    }
    Ok(out)
}

/// The strings of a JSON array (nothing for anything else).
pub fn strings(value: &Value) -> impl Iterator<Item = String> + '_ {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
}

/// The text of a JSON scalar for a table cell: strings as they are, numbers and booleans
/// printed, anything missing as an empty cell.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The last segment of an ARN (`.../name`), for short names in tables.
pub fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// An ECS epoch-seconds timestamp as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time(value: &Value) -> String {
    let Some(secs) = value.as_f64() else {
        return String::new();
    };
    let secs = secs as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = berth_core::civil::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_print_as_utc_dates() {
        assert_eq!(time(&json!(0)), "1970-01-01 00:00:00");
        assert_eq!(time(&json!(1_798_158_295.5)), "2026-12-25 00:24:55");
        assert_eq!(time(&json!("x")), "");
    }

    #[test]
    fn cells_and_short_names() {
        assert_eq!(text(&json!("a")), "a");
        assert_eq!(text(&json!(3)), "3");
        assert_eq!(text(&Value::Null), "");
        assert_eq!(short("arn:aws:ecs:r:1:task/c/abc"), "abc");
    }
}

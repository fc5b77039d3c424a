//! `GET /metrics`: the server's figures in the Prometheus text format (0.0.4), for a scraper
//! holding the metrics token (`Authorization: Bearer TOKEN`; the token is made on first start
//! in `DATA_DIR/metrics.token`, 0600):
//!
//! - `berth_requests_total{service,operation,code}` and the latency histogram
//!   `berth_request_duration_seconds{service,operation}` of every signed request, refused ones
//!   included (operation `unknown` when it names none this server knows);
//! - `berth_store_commit_duration_seconds`: store transactions until the cache has them;
//! - `berth_tasks{status}`, `berth_container_instances{connected}`, `berth_agent_streams`,
//!   `berth_controller_queue_depth{controller}`, `berth_exec_sessions`.

use crate::app::App;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::prometheus::{escape, Histogram};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;

/// The token file in the data dir.
pub const TOKEN_FILE: &str = "metrics.token";
/// The most distinct (service, operation) series kept; later ones count as `other`.
const MAX_SERIES: usize = 512;

/// One series: counts by status class, and latency.
type Series = ([u64; 3], Histogram);

#[derive(Debug, Default)]
struct Requests {
    /// By service, then operation.
    series: HashMap<String, HashMap<String, Series>>,
    /// How many series there are.
    count: usize,
}

impl Requests {
    /// The series of (`service`, `operation`), made on first sight (as `other` once there are
    /// [`MAX_SERIES`]); allocates nothing for one seen before.
    fn series_mut(&mut self, service: &str, operation: &str) -> &mut Series {
        let known = self
            .series
            .get(service)
            .is_some_and(|ops| ops.contains_key(operation));
        let operation = if known || self.count < MAX_SERIES {
            operation
        } else {
            "other"
        };
        if !self.series.contains_key(service) {
            self.series.insert(service.to_string(), HashMap::new());
        }
        let ops = self.series.get_mut(service).expect("inserted above");
        if !ops.contains_key(operation) {
            ops.insert(operation.to_string(), Series::default());
            self.count += 1;
        }
        ops.get_mut(operation).expect("inserted above")
    }

    /// Every series, by service then operation.
    fn sorted(&self) -> Vec<(&str, &str, &Series)> {
        let mut all: Vec<(&str, &str, &Series)> = self
            .series
            .iter()
            .flat_map(|(service, ops)| {
                ops.iter()
                    .map(move |(op, series)| (service.as_str(), op.as_str(), series))
            })
            .collect();
        all.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        all
    }
}

/// How many keys a controller's work queue holds now.
pub type QueueDepth = Box<dyn Fn() -> usize + Send + Sync>;

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<Requests>,
    commits: Mutex<Histogram>,
    queues: Mutex<Vec<(&'static str, QueueDepth)>>,
    /// Log events stored from agents (`awslogs`).
    log_events: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish()
    }
}

/// `2xx`, `4xx` or `5xx` of a status.
fn class(status: u16) -> usize {
    match status {
        500.. => 2,
        400.. => 1,
        _ => 0,
    }
}

/// An operation name fit for a label: ASCII letters and digits, at most 64 of them.
fn operation_label(operation: Option<&str>) -> &str {
    match operation {
        Some(op)
            if !op.is_empty()
                && op.len() <= 64
                && op
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'/') =>
        {
            op
        }
        _ => "unknown",
    }
}

impl Metrics {
    /// Counts a request of `service`'s `operation` answered with `status` after `seconds`.
    pub fn observe_request(
        &self,
        service: &str,
        operation: Option<&str>,
        status: u16,
        seconds: f64,
    ) {
        let operation = operation_label(operation);
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let (codes, latency) = requests.series_mut(service, operation);
        codes[class(status)] += 1;
        latency.observe(seconds);
    }

    /// Counts `events` log events stored from an agent.
    pub fn observe_log_events(&self, events: usize) {
        self.log_events
            .fetch_add(events as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a store commit that took `seconds`.
    pub fn observe_commit(&self, seconds: f64) {
        self.commits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .observe(seconds);
    }

    /// Shows the depth of the work queue of `controller`.
    pub fn register_queue(
        &self,
        controller: &'static str,
        depth: Box<dyn Fn() -> usize + Send + Sync>,
    ) {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((controller, depth));
    }

    /// Everything, in the text format.
    pub fn render(&self, app: &App) -> String {
        let mut out = String::new();
        out.push_str("# HELP berth_requests_total Signed requests answered, by service, operation and status class.\n# TYPE berth_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let series = requests.sorted();
        for (service, operation, (codes, _)) in &series {
            for (i, code) in ["2xx", "4xx", "5xx"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "berth_requests_total{{service=\"{}\",operation=\"{}\",code=\"{code}\"}} {}",
                    escape(service),
                    escape(operation),
                    codes[i]
                );
            }
        }
        out.push_str("# HELP berth_request_duration_seconds Time to answer signed requests, by service and operation.\n# TYPE berth_request_duration_seconds histogram\n");
        for (service, operation, (_, latency)) in &series {
            let labels = format!(
                "service=\"{}\",operation=\"{}\"",
                escape(service),
                escape(operation)
            );
            latency.render(&mut out, "berth_request_duration_seconds", &labels);
        }
        drop(requests);
        out.push_str("# HELP berth_store_commit_duration_seconds Time from a store transaction to the cache holding it.\n# TYPE berth_store_commit_duration_seconds histogram\n");
        self.commits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .render(&mut out, "berth_store_commit_duration_seconds", "");

        let state = app.snapshot();
        let mut by_status: std::collections::BTreeMap<&str, u64> =
            std::collections::BTreeMap::new();
        for entry in state.all_tasks() {
            let status = entry.task.last_status.map_or("NONE", |s| s.as_str());
            *by_status.entry(status).or_default() += 1;
        }
        out.push_str(
            "# HELP berth_tasks Tasks stored, by last status.\n# TYPE berth_tasks gauge\n",
        );
        for (status, count) in by_status {
            let _ = writeln!(out, "berth_tasks{{status=\"{status}\"}} {count}");
        }
        let (mut connected, mut disconnected) = (0u64, 0u64);
        for (_, instance) in state.all_instances() {
            if instance.value.status == Some(berth_core::model::ContainerInstanceStatus::Inactive) {
                continue;
            }
            if instance.value.agent_connected == Some(true) {
                connected += 1;
            } else {
                disconnected += 1;
            }
        }
        drop(state);
        out.push_str("# HELP berth_container_instances Registered container instances (not INACTIVE), by whether their agent is connected.\n# TYPE berth_container_instances gauge\n");
        let _ = writeln!(
            out,
            "berth_container_instances{{connected=\"true\"}} {connected}"
        );
        let _ = writeln!(
            out,
            "berth_container_instances{{connected=\"false\"}} {disconnected}"
        );
        out.push_str("# HELP berth_agent_streams Desired-state streams open.\n# TYPE berth_agent_streams gauge\n");
        let _ = writeln!(out, "berth_agent_streams {}", app.streams.total());
        out.push_str("# HELP berth_controller_queue_depth Keys waiting in each controller's work queue.\n# TYPE berth_controller_queue_depth gauge\n");
        for (controller, depth) in self.queues.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "berth_controller_queue_depth{{controller=\"{controller}\"}} {}",
                depth()
            );
        }
        out.push_str("# HELP berth_exec_sessions Exec sessions issued and not ended.\n# TYPE berth_exec_sessions gauge\n");
        let _ = writeln!(out, "berth_exec_sessions {}", app.exec.len());
        out.push_str("# HELP berth_log_events_ingested_total Log events stored from agents' awslogs drivers.\n# TYPE berth_log_events_ingested_total counter\n");
        let _ = writeln!(
            out,
            "berth_log_events_ingested_total {}",
            self.log_events.load(std::sync::atomic::Ordering::Relaxed)
        );
        out
    }
}

/// `GET /metrics`: the server's figures in the Prometheus text format, for the holder of the
/// metrics token (`Authorization: Bearer TOKEN`, the token in `DATA_DIR/metrics.token`).
pub async fn serve(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !berth_core::sigv4::constant_time_eq(presented.as_bytes(), app.metrics_token.as_bytes()) {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            "metrics need the token in DATA_DIR/metrics.token as a bearer token\n",
        )
            .into_response();
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    let mut response = (StatusCode::OK, app.metrics.render(&app)).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The (service, operation) a request is counted under in `/metrics`: the signature scope's
/// service (`agent` for the agent gateway, `admin` for the operator's routes) and the `X-Amz-Target` operation, the query
/// `Action`, or the gateway route.
pub fn labels(parts: &axum::http::request::Parts, body: &[u8]) -> (String, Option<String>) {
    let path = parts.uri.path();
    if let Some(route) = path.strip_prefix("/v1/agent/") {
        let route = route.split('/').next().unwrap_or_default();
        return ("agent".into(), Some(route.to_string()));
    }
    if let Some(route) = path.strip_prefix("/v1/admin/") {
        return ("admin".into(), Some(route.to_string()));
    }
    // A request signed by no one is counted as such, whatever it claims to be.
    let service = if parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
        || parts
            .uri
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature="))
    {
        crate::http::wire_service(&parts.headers).to_string()
    } else {
        "anonymous".to_string()
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit_once('.'))
        .map(|(_, op)| op.to_string());
    // smithy-rpc-v2-cbor names its operation in the path.
    let target = target.or_else(|| {
        path.strip_prefix("/service/")
            .and_then(|rest| rest.split_once("/operation/"))
            .map(|(_, op)| op.to_string())
    });
    let action = || {
        std::str::from_utf8(body)
            .ok()?
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_string)
    };
    (service, target.or_else(action))
}

/// The metrics token: read from `DATA_DIR/metrics.token`, or made there (0600); a fresh one
/// in memory for a server without a data dir.
pub fn token(data_dir: Option<&std::path::Path>) -> std::io::Result<String> {
    if let Some(dir) = data_dir {
        let path = dir.join(TOKEN_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let text = text.trim();
            if text.len() >= 32 {
                return Ok(text.to_string());
            }
        }
        let token = crate::auth::keys::random_token()?;
        crate::auth::keys::write_private(&path, format!("{token}\n").as_bytes())?;
        return Ok(token);
    }
    crate::auth::keys::random_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_labels_are_bounded() {
        let metrics = Metrics::default();
        metrics.observe_request("ecs", Some("RunTask"), 200, 0.003);
        metrics.observe_request("ecs", Some("RunTask"), 400, 0.2);
        metrics.observe_request("ecs", Some("Bad\"Name\n"), 400, 0.001);
        let requests = metrics.requests.lock().expect("lock");
        let (codes, latency) = &requests.series["ecs"]["RunTask"];
        assert_eq!(codes, &[1, 1, 0]);
        assert_eq!(latency.count, 2);
        // 0.003 falls in every bucket from 0.005 up; 0.2 from 0.25 up.
        assert_eq!(latency.buckets[2], 0);
        assert_eq!(latency.buckets[3], 1);
        assert_eq!(latency.buckets[8], 2);
        assert!(requests.series["ecs"].contains_key("unknown"));
        let mut text = String::new();
        latency.render(&mut text, "x", "a=\"b\"");
        assert!(text.contains("x_bucket{a=\"b\",le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("x_count{a=\"b\"} 2\n"), "{text}");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn series_beyond_the_limit_count_as_other() {
        let metrics = Metrics::default();
        for i in 0..MAX_SERIES + 10 {
            metrics.observe_request("ecs", Some(&format!("Op{i}")), 200, 0.001);
        }
        let requests = metrics.requests.lock().expect("lock");
        assert_eq!(requests.count, MAX_SERIES + 1);
        assert_eq!(requests.series["ecs"].len(), MAX_SERIES + 1);
        let (codes, _) = &requests.series["ecs"]["other"];
        assert_eq!(codes[0], 10);
    }
}

//! The agent's `/metrics` in the Prometheus text format, for a scraper holding the token in
//! `DATA_DIR/metrics.token` (`Authorization: Bearer TOKEN`). It listens on loopback, on
//! ECS's introspection port 51678 unless it is taken (several agents on one host): then
//! another, written to `DATA_DIR/metrics.port`.
//!
//! - `berth_agent_containers{state}`: this instance's containers, running or not;
//! - `berth_agent_runtime_call_duration_seconds{call}` and
//!   `berth_agent_runtime_call_errors_total{call}`: calls to the container runtime;
//! - `berth_agent_log_events_shipped_total`, `berth_agent_log_bytes_shipped_total`,
//!   `berth_agent_log_events_dropped_total`, `berth_agent_log_streams_followed`: the awslogs
//!   driver.

use crate::logs::LogShipper;
use crate::runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, ExecProcess, ExecSpec, LogLines, Result,
    RuntimeEvent, RuntimeInfo,
};
use async_trait::async_trait;
use berth_core::prometheus::{escape, Histogram};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// ECS's agent introspection port, where `/metrics` listens by default.
pub const DEFAULT_PORT: u16 = 51678;
/// The token file in the data dir.
pub const TOKEN_FILE: &str = "metrics.token";
/// The port last served on, in the data dir.
pub const PORT_FILE: &str = "metrics.port";

/// Calls to the runtime: latency and errors, by call.
#[derive(Debug, Default)]
pub struct RuntimeCalls {
    calls: Mutex<BTreeMap<&'static str, (Histogram, u64)>>,
}

impl RuntimeCalls {
    fn observe<T>(&self, call: &'static str, began: Instant, result: &Result<T>) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let (latency, errors) = calls.entry(call).or_default();
        latency.observe(began.elapsed().as_secs_f64());
        if result.is_err() {
            *errors += 1;
        }
    }
}

/// A runtime whose calls are timed into [`RuntimeCalls`].
pub struct MeasuredRuntime {
    inner: Arc<dyn ContainerRuntime>,
    calls: Arc<RuntimeCalls>,
}

impl MeasuredRuntime {
    pub fn new(inner: Arc<dyn ContainerRuntime>, calls: Arc<RuntimeCalls>) -> MeasuredRuntime {
        MeasuredRuntime { inner, calls }
    }
}

macro_rules! measured {
    ($self:ident, $call:literal, $work:expr) => {{
        let began = Instant::now();
        let result = $work.await;
        $self.calls.observe($call, began, &result);
        result
    }};
}

#[async_trait]
impl ContainerRuntime for MeasuredRuntime {
    async fn ping(&self) -> Result<RuntimeInfo> {
        measured!(self, "ping", self.inner.ping())
    }
    async fn image_present(&self, image: &str) -> Result<bool> {
        measured!(self, "image_present", self.inner.image_present(image))
    }
    async fn pull_image(
        &self,
        image: &str,
        auth: Option<&crate::registry::RegistryAuth>,
    ) -> Result<()> {
        measured!(self, "pull_image", self.inner.pull_image(image, auth))
    }
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        measured!(self, "create_container", self.inner.create_container(spec))
    }
    async fn start_container(&self, id: &str) -> Result<()> {
        measured!(self, "start_container", self.inner.start_container(id))
    }
    async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        measured!(
            self,
            "stop_container",
            self.inner.stop_container(id, timeout)
        )
    }
    async fn kill_container(&self, id: &str) -> Result<()> {
        measured!(self, "kill_container", self.inner.kill_container(id))
    }
    async fn remove_container(&self, id: &str) -> Result<()> {
        measured!(self, "remove_container", self.inner.remove_container(id))
    }
    async fn remove_volume(&self, name: &str) -> Result<()> {
        measured!(self, "remove_volume", self.inner.remove_volume(name))
    }
    async fn inspect_container(&self, id: &str) -> Result<ContainerState> {
        measured!(self, "inspect_container", self.inner.inspect_container(id))
    }
    async fn list_containers(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<ContainerState>> {
        measured!(self, "list_containers", self.inner.list_containers(labels))
    }
    async fn exec_start(&self, id: &str, spec: &ExecSpec) -> Result<ExecProcess> {
        measured!(self, "exec_start", self.inner.exec_start(id, spec))
    }
    async fn bridge_gateway(&self) -> Option<std::net::IpAddr> {
        self.inner.bridge_gateway().await
    }
    async fn container_pid(&self, id: &str) -> Result<u32> {
        measured!(self, "container_pid", self.inner.container_pid(id))
    }
    async fn import_image(&self, reference: &str, rootfs: Vec<u8>) -> Result<()> {
        measured!(
            self,
            "import_image",
            self.inner.import_image(reference, rootfs)
        )
    }
    async fn stats(&self, id: &str) -> Result<serde_json::Value> {
        measured!(self, "stats", self.inner.stats(id))
    }
    async fn stats_with_previous(&self, id: &str) -> Result<serde_json::Value> {
        measured!(self, "stats", self.inner.stats_with_previous(id))
    }
    async fn logs(&self, id: &str, since: u64, follow: bool) -> Result<LogLines> {
        measured!(self, "logs", self.inner.logs(id, since, follow))
    }
    async fn exec_resize(&self, exec_id: &str, cols: u16, rows: u16) -> Result<()> {
        measured!(
            self,
            "exec_resize",
            self.inner.exec_resize(exec_id, cols, rows)
        )
    }
    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>> {
        measured!(self, "exec_exit_code", self.inner.exec_exit_code(exec_id))
    }
    async fn events(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> Result<mpsc::Receiver<RuntimeEvent>> {
        measured!(self, "events", self.inner.events(labels))
    }
}

/// What `/metrics` reads.
pub struct Sources {
    pub calls: Arc<RuntimeCalls>,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub logs: Arc<LogShipper>,
    /// This instance's container labels.
    pub labels: BTreeMap<String, String>,
    pub token: String,
}

/// The figures, in the text format.
pub async fn render(sources: &Sources) -> String {
    let mut out = String::new();
    if let Ok(containers) = sources.runtime.list_containers(&sources.labels).await {
        let running = containers.iter().filter(|c| c.running).count();
        out.push_str("# HELP berth_agent_containers Containers of this instance, by whether they run.\n# TYPE berth_agent_containers gauge\n");
        let _ = writeln!(out, "berth_agent_containers{{state=\"running\"}} {running}");
        let _ = writeln!(
            out,
            "berth_agent_containers{{state=\"stopped\"}} {}",
            containers.len() - running
        );
    }
    {
        let calls = sources
            .calls
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP berth_agent_runtime_call_duration_seconds Time of calls to the container runtime, by call.\n# TYPE berth_agent_runtime_call_duration_seconds histogram\n");
        for (call, (latency, _)) in calls.iter() {
            let labels = format!("call=\"{}\"", escape(call));
            latency.render(
                &mut out,
                "berth_agent_runtime_call_duration_seconds",
                &labels,
            );
        }
        out.push_str("# HELP berth_agent_runtime_call_errors_total Calls to the container runtime that failed, by call.\n# TYPE berth_agent_runtime_call_errors_total counter\n");
        for (call, (_, errors)) in calls.iter() {
            let _ = writeln!(
                out,
                "berth_agent_runtime_call_errors_total{{call=\"{}\"}} {errors}",
                escape(call)
            );
        }
    }
    let counters = &sources.logs.counters;
    for (name, help, kind, value) in [
        (
            "berth_agent_log_events_shipped_total",
            "Log events the server stored (awslogs).",
            "counter",
            counters.events_shipped.load(Ordering::Relaxed),
        ),
        (
            "berth_agent_log_bytes_shipped_total",
            "Message bytes of the log events the server stored (awslogs).",
            "counter",
            counters.bytes_shipped.load(Ordering::Relaxed),
        ),
        (
            "berth_agent_log_events_dropped_total",
            "Log events dropped: read while the buffer was full (non-blocking mode) or refused by the server.",
            "counter",
            counters.events_dropped.load(Ordering::Relaxed),
        ),
        (
            "berth_agent_log_streams_followed",
            "Containers whose output the awslogs driver follows now.",
            "gauge",
            counters.following.load(Ordering::Relaxed),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
    out
}

/// The metrics token from `dir`, made (0600) on first use.
pub fn load_token(dir: &Path) -> std::io::Result<String> {
    let path = dir.join(TOKEN_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim();
        if text.len() >= 32 {
            return Ok(text.to_string());
        }
    }
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    crate::identity::write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// Binds `/metrics` on `addr`: the port this data dir served on before (when `addr` names
/// the default port), else `addr`'s, else any; the port is kept in the data dir.
pub async fn bind(dir: &Path, addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    crate::identity::bind_kept_port(dir, PORT_FILE, addr, addr.port() == DEFAULT_PORT).await
}

/// Serves `/metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, sources: Arc<Sources>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let sources = Arc::clone(&sources);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let sources = Arc::clone(&sources);
                    async move { Ok::<_, std::convert::Infallible>(respond(&sources, &request).await) }
                },
            );
            let io = hyper_util::rt::TokioIo::new(tcp);
            let _ = hyper::server::conn::http1::Builder::new()
                .half_close(true)
                .serve_connection(io, service)
                .await;
        });
    }
}

async fn respond(
    sources: &Sources,
    request: &hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let answer = |status: u16, body: String, content_type: &str| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap_or_default()
    };
    if request.uri().path() != "/metrics" {
        return answer(404, "only /metrics is served here\n".into(), "text/plain");
    }
    let presented = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !berth_core::sigv4::constant_time_eq(presented.as_bytes(), sources.token.as_bytes()) {
        return answer(
            401,
            "metrics need the token in DATA_DIR/metrics.token as a bearer token\n".into(),
            "text/plain",
        );
    }
    answer(
        200,
        render(sources).await,
        "text/plain; version=0.0.4; charset=utf-8",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runtime_calls_are_timed_and_failures_counted() {
        let fake = Arc::new(crate::runtime::fake::FakeRuntime::new());
        let calls = Arc::new(RuntimeCalls::default());
        let measured = MeasuredRuntime::new(fake, Arc::clone(&calls));
        measured.ping().await.expect("pings");
        assert!(measured.inspect_container("nope").await.is_err());
        let recorded = calls.calls.lock().expect("lock");
        assert_eq!(recorded["ping"].0.count, 1);
        assert_eq!(recorded["ping"].1, 0);
        assert_eq!(recorded["inspect_container"].1, 1);
    }
}

//! `berth bench proxy` measures what Berth's load-balancer data plane costs next to a direct
//! connection to the same target, side by side in one run (issue 14's target: p50 added
//! latency ≤ 0.3 ms and throughput ≥ 60 % of direct at 64 connections), and next to nginx
//! (Debian's, always) and HAProxy (Debian's, when it can be installed) proxying to the same
//! target in the same run.
//!
//! # What runs where
//!
//! - **The upstream**: a hyper HTTP/1.1 server (keep-alive, Nagle off) answering every
//!   request with the same small body (`--body-bytes`, 64 by default, never copied). It runs
//!   on its own tokio runtime (`--upstream-threads` workers, 1 by default), so that it does
//!   not share an executor with the load generator or the proxy.
//! - **Berth's proxy**: a [`DataPlane`] on this process's main runtime (as in `berth server`,
//!   one worker per core) with one HTTP listener on 127.0.0.1:0 whose default rule forwards
//!   to one target group holding the upstream, with HTTP health checks every second; the
//!   bench waits until the health board says the target is healthy.
//! - **nginx**: Debian's `nginx` (installed with apt-get as `nginx-light` when missing; the
//!   bench fails if it cannot be), a child process with `worker_processes auto`,
//!   `proxy_pass` to an upstream block with `keepalive`, access log off.
//! - **HAProxy**: Debian's `haproxy` (installed when missing; skipped only if that fails),
//!   a child process in HTTP mode with connection reuse, threads on every core.
//! - **The load generator**: hyper's HTTP/1.1 client connection API, one handshake per
//!   connection, `--connections` keep-alive connections (64) each sending GET / in a closed
//!   loop, on its own runtime (`--client-threads` workers, 1 by default). Each connection
//!   records the latency of every request of the measured window into its own preallocated
//!   `Vec`; nothing else is allocated per request besides what hyper does.
//!
//! Each leg (direct, Berth, nginx, HAProxy, in that order) runs a warm-up (`--warmup-ms`),
//! then `--seconds` measured: requests per second, p50 and p99 latency. A second pass per leg
//! with a single connection (`--single-seconds`, 0 skips it) gives the unloaded latency: at
//! 64 connections in a closed loop p50 is mostly queueing (Little's law: about connections /
//! throughput), so the single-connection p50 is what one hop itself adds. The CPU time of the
//! generator's, the upstream's and the proxy's threads (or nginx's and HAProxy's processes)
//! is read from /proc around the measured window and printed per request.
//!
//! The machine this was written on has 2 cores: the generator, the upstream and the proxy
//! share them, so a proxy's throughput is bounded by the CPU it takes from the other two —
//! the printed figures say so, and the CPU per request is the figure that does not depend on
//! it. Any request error (connection failure, status other than 200, short body) in any leg
//! is counted and printed, and fails the bench.

use anyhow::{bail, Context};
use berth_server::elbv2::health::HealthBoard;
use berth_server::elbv2::proxy::{
    ActionConfig, Algorithm, DataPlane, HealthCheckConfig, ListenerConfig, Protocol, ProxyConfig,
    RuleConfig, TargetConfig, TargetGroupConfig,
};
use clap::Args;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, HOST};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

mod load;
mod others;
use load::*;
use others::*;

/// Options of `berth bench proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Seconds measured per leg, after the warm-up.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Warm-up per leg, in milliseconds (connections open, requests not recorded).
    #[arg(long, default_value_t = 1000)]
    pub warmup_ms: u64,
    /// Seconds per leg of the single-connection pass (unloaded latency); 0 skips it.
    #[arg(long, default_value_t = 3)]
    pub single_seconds: u64,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Worker threads of the upstream's runtime.
    #[arg(long, default_value_t = 1)]
    pub upstream_threads: usize,
    /// Bytes of the upstream's answer.
    #[arg(long, default_value_t = 64)]
    pub body_bytes: usize,
    /// Leave HAProxy out even if it is installed.
    #[arg(long)]
    pub no_haproxy: bool,
}

/// Issue 14's targets.
const TARGET_ADDED_P50: Duration = Duration::from_micros(300);
const TARGET_THROUGHPUT_SHARE: f64 = 0.60;
/// Latency samples preallocated per connection (it grows past this only on a long leg).
const SAMPLES_PER_CONNECTION: usize = 1 << 14;
/// How long connections may take to finish their last request after a leg's end.
const LEG_GRACE: Duration = Duration::from_secs(10);
/// How long a proxy may take to start answering, or a target to turn healthy.
const STARTUP: Duration = Duration::from_secs(15);
/// Request errors printed per leg (all are counted).
const ERRORS_SHOWN: usize = 5;
const TARGET_GROUP: &str = "bench-proxy-tg";
const LISTENER: &str = "bench-proxy-listener";
const TARGET_ID: &str = "upstream";
/// Thread names of the generator's and the upstream's runtimes (at most 15 bytes: /proc
/// shows no more); every other thread of this process is the proxy's runtime.
const CLIENT_THREAD: &str = "bench-client";
const UPSTREAM_THREAD: &str = "bench-upstream";

/// Runs the benchmark and prints its figures.
pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    if args.connections == 0 || args.seconds == 0 {
        bail!("--connections and --seconds must be at least 1");
    }
    if args.client_threads == 0 || args.upstream_threads == 0 {
        bail!("--client-threads and --upstream-threads must be at least 1");
    }
    let nginx = ensure_program("nginx", &["nginx-light", "nginx"]).context(
        "nginx is required to compare with (install Debian's nginx-light as root: \
         apt-get install -y nginx-light)",
    )?;
    let haproxy = if args.no_haproxy {
        None
    } else {
        match ensure_program("haproxy", &["haproxy"]) {
            Ok(path) => Some(path),
            Err(e) => {
                println!("HAProxy skipped: {e:#}");
                None
            }
        }
    };
    let dir = tempfile::tempdir().context("temp dir")?;

    let upstream_rt = runtime(UPSTREAM_THREAD, args.upstream_threads)?;
    let client_rt = runtime(CLIENT_THREAD, args.client_threads)?;
    let board = Arc::new(HealthBoard::default());
    let plane = DataPlane::new(Arc::clone(&board));
    let outcome = async {
        let body = Bytes::from(vec![b'x'; args.body_bytes]);
        let upstream = start_upstream(&upstream_rt, body).await?;
        let berth = start_berth(&plane, &board, upstream).await?;
        let nginx_child = start_nginx(&nginx, dir.path(), upstream)?;
        let haproxy_child = match &haproxy {
            Some(program) => Some(start_haproxy(program, dir.path(), upstream)?),
            None => None,
        };
        let mut legs: Vec<(String, SocketAddr, Option<&ProxyProcess>)> = vec![
            ("direct".to_owned(), upstream, None),
            ("berth".to_owned(), berth, None),
            (
                nginx_child.name.clone(),
                nginx_child.addr,
                Some(&nginx_child),
            ),
        ];
        if let Some(child) = &haproxy_child {
            legs.push((child.name.clone(), child.addr, Some(child)));
        }
        let mut results = Vec::with_capacity(legs.len());
        for (name, addr, child) in legs {
            if let Some(child) = child {
                child.wait_ready().await?;
            }
            let pid = child.map(ProxyProcess::pid);
            results.push(measure_leg(&client_rt, &args, name, addr, pid).await);
        }
        anyhow::Ok(results)
    }
    .await;
    plane.shutdown().await;
    client_rt.shutdown_background();
    upstream_rt.shutdown_background();
    let results = outcome?;
    report(&args, &results);
    let errors: u64 = results
        .iter()
        .map(|r| r.loaded.errors + r.single.errors)
        .sum();
    if errors > 0 {
        bail!("{errors} request errors (listed above)");
    }
    Ok(())
}

/// A multi-thread runtime of its own, so the upstream and the generator do not share the
/// proxy's executor (or each other's).
fn runtime(name: &str, threads: usize) -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("the {name} runtime"))
}

/// Starts the upstream on `rt`: every request gets 200 and `body`.
async fn start_upstream(rt: &Runtime, body: Bytes) -> anyhow::Result<SocketAddr> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").context("the upstream's port")?;
    socket.set_nonblocking(true)?;
    let addr = socket.local_addr()?;
    rt.spawn(async move {
        let socket = match TcpListener::from_std(socket) {
            Ok(socket) => socket,
            Err(e) => {
                eprintln!("upstream: {e}");
                return;
            }
        };
        while let Ok((tcp, _)) = socket.accept().await {
            let _ = tcp.set_nodelay(true);
            let body = body.clone();
            let service = hyper::service::service_fn(move |_request: Request<Incoming>| {
                let body = body.clone();
                async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service),
            );
        }
    });
    Ok(addr)
}

/// Applies a listener forwarding to a group holding `upstream`, waits for the target to be
/// healthy and returns where the listener accepts.
async fn start_berth(
    plane: &Arc<DataPlane>,
    board: &HealthBoard,
    upstream: SocketAddr,
) -> anyhow::Result<SocketAddr> {
    let config = ProxyConfig {
        listeners: vec![ListenerConfig {
            key: LISTENER.to_owned(),
            bind: "127.0.0.1:0".parse()?,
            protocol: Protocol::Http,
            rules: vec![RuleConfig {
                path_patterns: Vec::new(),
                host_headers: Vec::new(),
                action: ActionConfig::Forward(vec![(TARGET_GROUP.to_owned(), 1)], None),
            }],
            idle_timeout: Duration::from_secs(60),
        }],
        target_groups: vec![TargetGroupConfig {
            key: TARGET_GROUP.to_owned(),
            protocol: Protocol::Http,
            algorithm: Algorithm::RoundRobin,
            health_check: HealthCheckConfig {
                enabled: true,
                protocol: Protocol::Http,
                port: None,
                path: "/".to_owned(),
                interval: Duration::from_secs(1),
                timeout: Duration::from_millis(900),
                healthy_threshold: 2,
                unhealthy_threshold: 2,
                matcher: "200".to_owned(),
            },
            slow_start: Duration::ZERO,
            stickiness: Default::default(),
            targets: vec![TargetConfig {
                id: TARGET_ID.to_owned(),
                port: upstream.port(),
                addr: upstream,
                draining: false,
            }],
        }],
    };
    if let Some(error) = plane.apply(config).await.into_iter().next() {
        return Err(error).context("Berth's listener");
    }
    let addr = plane
        .local_addr(LISTENER)
        .await
        .context("Berth's listener is not running")?;
    let key = (
        TARGET_GROUP.to_owned(),
        TARGET_ID.to_owned(),
        upstream.port(),
    );
    let deadline = Instant::now() + STARTUP;
    loop {
        let health = board.get(&key);
        if health.as_ref().is_some_and(|h| h.state == "healthy") {
            return Ok(addr);
        }
        if Instant::now() > deadline {
            bail!("the upstream did not turn healthy in Berth's target group: {health:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints every leg's figures, then Berth's against direct and against nginx.
fn report(args: &ProxyArgs, results: &[LegResult]) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "{} keep-alive connections, {} s per leg after a {} ms warm-up, {}-byte answers; \
         {cores} cores shared by the load generator ({} thread), the upstream ({} thread) and \
         the proxy under test",
        args.connections,
        args.seconds,
        args.warmup_ms,
        args.body_bytes,
        args.client_threads,
        args.upstream_threads
    );
    println!(
        "{:<16} {:>10} {:>9} {:>9} {:>12} {:>7}   {:>28} {:>8}",
        "leg",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "1-conn p50",
        "errors",
        "CPU µs/request: gen/up/proxy",
        "machine"
    );
    for leg in results {
        let requests = leg.loaded.latencies.len().max(1) as f64;
        let cpu = leg.cpu.as_ref().map_or_else(
            || "-".to_owned(),
            |cpu| {
                let per = |s: f64| s * 1e6 / requests;
                let mut text = format!("{:.1} / {:.1} / ", per(cpu.client), per(cpu.upstream));
                match cpu.proxy {
                    Some(proxy) => {
                        let _ = write!(text, "{:.1}", per(proxy));
                    }
                    None => text.push('-'),
                }
                text
            },
        );
        let busy = leg.cpu.as_ref().map_or_else(
            || "-".to_owned(),
            |c| format!("{:.0} %", c.machine_busy * 100.0),
        );
        let single = if leg.single.latencies.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.3}", ms(leg.single.quantile(0.5)))
        };
        println!(
            "{:<16} {:>10.0} {:>9.3} {:>9.3} {:>12} {:>7}   {:>28} {:>8}",
            leg.name,
            leg.loaded.rate(),
            ms(leg.loaded.quantile(0.5)),
            ms(leg.loaded.quantile(0.99)),
            single,
            leg.loaded.errors + leg.single.errors,
            cpu,
            busy
        );
    }
    for leg in results {
        for (pass, what) in [(&leg.loaded, "loaded"), (&leg.single, "1 connection")] {
            if pass.errors > 0 {
                println!("{} ({what}): {} request errors", leg.name, pass.errors);
                for shown in &pass.shown {
                    println!("  {shown}");
                }
            }
        }
    }
    let find = |name: &str| results.iter().find(|leg| leg.name.starts_with(name));
    let (Some(direct), Some(berth)) = (find("direct"), find("berth")) else {
        return;
    };
    let added = ms(berth.loaded.quantile(0.5)) - ms(direct.loaded.quantile(0.5));
    let share = berth.loaded.rate() / direct.loaded.rate().max(f64::MIN_POSITIVE);
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    println!(
        "berth vs direct at {} connections: p50 added {added:+.3} ms (target <= {:.1} ms: {}), \
         throughput {:.0} % of direct (target >= {:.0} %: {})",
        args.connections,
        ms(TARGET_ADDED_P50),
        verdict(added <= ms(TARGET_ADDED_P50)),
        share * 100.0,
        TARGET_THROUGHPUT_SHARE * 100.0,
        verdict(share >= TARGET_THROUGHPUT_SHARE)
    );
    if !berth.single.latencies.is_empty() && !direct.single.latencies.is_empty() {
        println!(
            "berth vs direct on 1 connection: p50 added {:+.3} ms",
            ms(berth.single.quantile(0.5)) - ms(direct.single.quantile(0.5))
        );
    }
    for other in ["nginx", "haproxy"] {
        let Some(leg) = find(other) else { continue };
        let single = if berth.single.latencies.is_empty() || leg.single.latencies.is_empty() {
            String::new()
        } else {
            format!(
                ", on 1 connection {:+.3} ms",
                ms(berth.single.quantile(0.5)) - ms(leg.single.quantile(0.5))
            )
        };
        println!(
            "berth vs {}: throughput ratio {:.2} (berth/{other}), p50 {:+.3} ms \
             (berth - {other}){single}; {other} is {:.0} % of direct",
            leg.name,
            berth.loaded.rate() / leg.loaded.rate().max(f64::MIN_POSITIVE),
            ms(berth.loaded.quantile(0.5)) - ms(leg.loaded.quantile(0.5)),
            leg.loaded.rate() / direct.loaded.rate().max(f64::MIN_POSITIVE) * 100.0
        );
    }
}

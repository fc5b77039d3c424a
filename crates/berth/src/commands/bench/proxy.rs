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
                action: ActionConfig::Forward(vec![(TARGET_GROUP.to_owned(), 1)]),
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

/// A proxy running as a child process, stopped when dropped.
struct ProxyProcess {
    name: String,
    addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl ProxyProcess {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a request through it succeeds.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            match get_once(self.addr).await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    bail!(
                        "{} does not answer at {}: {e:#}\n{log}",
                        self.name,
                        self.addr
                    );
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master then stops its workers too.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts nginx proxying to `upstream` with a config written in `dir`.
fn start_nginx(program: &Path, dir: &Path, upstream: SocketAddr) -> anyhow::Result<ProxyProcess> {
    let port = free_port()?;
    let home = dir.join("nginx");
    std::fs::create_dir_all(&home)?;
    let d = home.display();
    let conf = format!(
        "worker_processes auto;\n\
         daemon off;\n\
         master_process on;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 client_body_temp_path {d}/client_body;\n\
         \x20 proxy_temp_path {d}/proxy;\n\
         \x20 keepalive_timeout 75s;\n\
         \x20 keepalive_requests 100000000;\n\
         \x20 upstream bench {{\n\
         \x20   server {upstream};\n\
         \x20   keepalive 256;\n\
         \x20   keepalive_requests 100000000;\n\
         \x20 }}\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{port};\n\
         \x20   location / {{\n\
         \x20     proxy_pass http://bench;\n\
         \x20     proxy_http_version 1.1;\n\
         \x20     proxy_set_header Connection \"\";\n\
         \x20     proxy_set_header Host $http_host;\n\
         \x20     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20   }}\n\
         \x20 }}\n\
         }}\n"
    );
    let conf_path = home.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let log = home.join("stderr.log");
    let child = Command::new(program)
        .arg("-p")
        .arg(&home)
        .arg("-e")
        .arg(home.join("error.log"))
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let version = version_of(program, "-v", "nginx/").unwrap_or_default();
    Ok(ProxyProcess {
        name: format!("nginx {version}").trim().to_owned(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        child,
        log,
    })
}

/// Starts HAProxy proxying to `upstream` with a config written in `dir`.
fn start_haproxy(program: &Path, dir: &Path, upstream: SocketAddr) -> anyhow::Result<ProxyProcess> {
    let port = free_port()?;
    let home = dir.join("haproxy");
    std::fs::create_dir_all(&home)?;
    let conf = format!(
        "global\n\
         \x20 maxconn 4096\n\
         defaults\n\
         \x20 mode http\n\
         \x20 timeout connect 5s\n\
         \x20 timeout client 60s\n\
         \x20 timeout server 60s\n\
         \x20 option forwardfor\n\
         \x20 http-reuse always\n\
         frontend bench\n\
         \x20 bind 127.0.0.1:{port}\n\
         \x20 default_backend upstream\n\
         backend upstream\n\
         \x20 server upstream {upstream}\n"
    );
    let conf_path = home.join("haproxy.cfg");
    std::fs::write(&conf_path, conf)?;
    let log = home.join("stderr.log");
    let child = Command::new(program)
        .arg("-db")
        .arg("-f")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let version = version_of(program, "-v", "version ").unwrap_or_default();
    Ok(ProxyProcess {
        name: format!("haproxy {version}").trim().to_owned(),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        child,
        log,
    })
}

/// A port free on loopback now (the child binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").context("a free port")?;
    Ok(socket.local_addr()?.port())
}

/// The version word after `marker` in what `program flag` prints, without a Debian
/// revision.
fn version_of(program: &Path, flag: &str, marker: &str) -> Option<String> {
    let output = Command::new(program).arg(flag).output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let rest = &text[text.find(marker)? + marker.len()..];
    let word = rest.split_whitespace().next()?;
    Some(word.split('-').next().unwrap_or(word).to_owned())
}

/// Where `name` is installed: the PATH, then the sbin directories (not always on a PATH).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `name`, installed from the first of Debian's `packages` that installs when missing.
fn ensure_program(name: &str, packages: &[&str]) -> anyhow::Result<PathBuf> {
    if let Some(path) = find_program(name) {
        return Ok(path);
    }
    println!("{name} is missing: installing it with apt-get");
    let install = |package: &str| {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("NEEDRESTART_SUSPEND", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let mut updated = false;
    for package in packages {
        if install(package) {
            break;
        }
        if !updated {
            updated = true;
            let _ = Command::new("apt-get")
                .args(["update", "-qq"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status();
            if install(package) {
                break;
            }
        }
    }
    find_program(name).with_context(|| {
        format!(
            "{name} is not installed and `apt-get install {}` did not install it",
            packages.join("` or `")
        )
    })
}

/// One GET / on a new connection, answered 200.
async fn get_once(addr: SocketAddr) -> anyhow::Result<()> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    let driver = tokio::spawn(connection);
    let mut request = Request::new(Empty::<Bytes>::new());
    *request.uri_mut() = Uri::from_static("/");
    request
        .headers_mut()
        .insert(HOST, HeaderValue::from_str(&addr.to_string())?);
    let response = tokio::time::timeout(Duration::from_secs(2), sender.send_request(request))
        .await
        .context("no answer in 2 s")??;
    let status = response.status();
    let _ = response.into_body().collect().await;
    drop(sender);
    driver.abort();
    if status != StatusCode::OK {
        bail!("answered {status}");
    }
    Ok(())
}

/// When a pass's requests count: started after `from`, finished by `to`.
#[derive(Clone, Copy)]
struct Window {
    from: Instant,
    to: Instant,
}

/// What one pass of the generator saw.
#[derive(Default)]
struct Pass {
    /// Latencies in nanoseconds, sorted.
    latencies: Vec<u64>,
    seconds: f64,
    errors: u64,
    shown: Vec<String>,
}

impl Pass {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }

    /// The `q` quantile by nearest rank, as [`super::quantile`].
    fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank =
            ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        Duration::from_nanos(self.latencies[rank - 1])
    }

    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.shown.len() < ERRORS_SHOWN {
            self.shown.push(what);
        }
    }
}

/// One leg's figures.
struct LegResult {
    name: String,
    loaded: Pass,
    single: Pass,
    cpu: Option<CpuUse>,
}

/// CPU seconds spent during a leg's measured window.
struct CpuUse {
    client: f64,
    upstream: f64,
    /// The proxy's: this process's other threads (Berth), or the child's process tree.
    proxy: Option<f64>,
    /// Of all the machine's cores (0 to 1).
    machine_busy: f64,
}

/// Runs one leg: the loaded pass (with CPU accounting) then the single-connection pass.
async fn measure_leg(
    rt: &Runtime,
    args: &ProxyArgs,
    name: String,
    addr: SocketAddr,
    child: Option<u32>,
) -> LegResult {
    let warmup = Duration::from_millis(args.warmup_ms);
    let seconds = Duration::from_secs(args.seconds);
    let direct = name == "direct";
    let start = Instant::now();
    let window = Window {
        from: start + warmup,
        to: start + warmup + seconds,
    };
    let handles = (0..args.connections)
        .map(|_| {
            rt.spawn(connection(
                addr,
                window,
                args.body_bytes,
                SAMPLES_PER_CONNECTION,
            ))
        })
        .collect();
    tokio::time::sleep_until(window.from.into()).await;
    let before = CpuTicks::read(child);
    tokio::time::sleep_until(window.to.into()).await;
    let after = CpuTicks::read(child);
    let loaded = gather(handles, window, seconds).await;
    let cpu = match (before, after) {
        (Some(before), Some(after)) => Some(after.since(&before, direct, child.is_some())),
        _ => None,
    };
    let single = if args.single_seconds > 0 {
        let seconds = Duration::from_secs(args.single_seconds);
        let start = Instant::now();
        let window = Window {
            from: start + warmup.min(Duration::from_millis(200)),
            to: start + warmup.min(Duration::from_millis(200)) + seconds,
        };
        let handle = rt.spawn(connection(
            addr,
            window,
            args.body_bytes,
            SAMPLES_PER_CONNECTION * 4,
        ));
        gather(vec![handle], window, seconds).await
    } else {
        Pass::default()
    };
    LegResult {
        name,
        loaded,
        single,
        cpu,
    }
}

/// Waits for the connections of a pass and merges what they saw.
async fn gather(
    handles: Vec<tokio::task::JoinHandle<Pass>>,
    window: Window,
    seconds: Duration,
) -> Pass {
    let deadline = tokio::time::Instant::from(window.to + LEG_GRACE);
    let mut merged = Pass {
        seconds: seconds.as_secs_f64(),
        ..Pass::default()
    };
    for mut handle in handles {
        match tokio::time::timeout_at(deadline, &mut handle).await {
            Ok(Ok(pass)) => {
                merged.latencies.extend_from_slice(&pass.latencies);
                merged.errors += pass.errors - pass.shown.len() as u64;
                for shown in pass.shown {
                    merged.error(shown);
                }
            }
            Ok(Err(e)) => merged.error(format!("connection task failed: {e}")),
            Err(_) => {
                handle.abort();
                merged.error(format!(
                    "a request was still unanswered {} s after the leg ended",
                    LEG_GRACE.as_secs()
                ));
            }
        }
    }
    merged.latencies.sort_unstable();
    merged
}

/// One keep-alive connection sending GET / in a closed loop until `window.to`, recording
/// the latency of each request inside `window`; reconnects after an error.
async fn connection(addr: SocketAddr, window: Window, body_bytes: usize, capacity: usize) -> Pass {
    let mut pass = Pass {
        latencies: Vec::with_capacity(capacity),
        ..Pass::default()
    };
    let host = HeaderValue::from_str(&addr.to_string()).unwrap_or(HeaderValue::from_static("x"));
    'connect: while Instant::now() < window.to {
        let tcp = match TcpStream::connect(addr).await {
            Ok(tcp) => tcp,
            Err(e) => {
                pass.error(format!("connect: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (mut sender, driver) =
            match hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await {
                Ok(handshake) => handshake,
                Err(e) => {
                    pass.error(format!("handshake: {e}"));
                    continue;
                }
            };
        tokio::spawn(driver);
        loop {
            if let Err(e) = sender.ready().await {
                pass.error(format!("connection: {e}"));
                continue 'connect;
            }
            let started = Instant::now();
            if started >= window.to {
                break 'connect;
            }
            let mut request = Request::new(Empty::<Bytes>::new());
            *request.uri_mut() = Uri::from_static("/");
            request.headers_mut().insert(HOST, host.clone());
            let response = match sender.send_request(request).await {
                Ok(response) => response,
                Err(e) => {
                    pass.error(format!("request: {e}"));
                    continue 'connect;
                }
            };
            let status = response.status();
            let mut body = response.into_body();
            let mut received = 0;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(frame) => received += frame.data_ref().map_or(0, Bytes::len),
                    Err(e) => {
                        pass.error(format!("response body: {e}"));
                        continue 'connect;
                    }
                }
            }
            let finished = Instant::now();
            if status != StatusCode::OK || received != body_bytes {
                pass.error(format!("answer: {status} with {received} bytes"));
                continue;
            }
            if started >= window.from && finished <= window.to {
                pass.latencies
                    .push(u64::try_from((finished - started).as_nanos()).unwrap_or(u64::MAX));
            }
        }
    }
    pass
}

/// CPU clock ticks (utime + stime) from /proc.
struct CpuTicks {
    client: u64,
    upstream: u64,
    /// This process's other threads: the main runtime, where Berth's proxy runs.
    rest: u64,
    child_tree: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl CpuTicks {
    fn read(child: Option<u32>) -> Option<CpuTicks> {
        let mut ticks = CpuTicks {
            client: 0,
            upstream: 0,
            rest: 0,
            child_tree: 0,
            machine_busy: 0,
            machine_total: 0,
        };
        for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            let Some((comm, _, used)) = stat_of(&entry.path().join("stat")) else {
                continue;
            };
            if comm.starts_with(CLIENT_THREAD) {
                ticks.client += used;
            } else if comm.starts_with(UPSTREAM_THREAD) {
                ticks.upstream += used;
            } else {
                ticks.rest += used;
            }
        }
        if let Some(pid) = child {
            for entry in std::fs::read_dir("/proc").ok()?.flatten() {
                let name = entry.file_name();
                let Some(this) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                if let Some((_, parent, used)) = stat_of(&entry.path().join("stat")) {
                    if this == pid || parent == pid {
                        ticks.child_tree += used;
                    }
                }
            }
        }
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        ticks.machine_total = cpu.iter().take(8).sum();
        ticks.machine_busy = ticks.machine_total
            - cpu.get(3).copied().unwrap_or(0)
            - cpu.get(4).copied().unwrap_or(0);
        Some(ticks)
    }

    fn since(&self, before: &CpuTicks, direct: bool, child: bool) -> CpuUse {
        let hz = clock_ticks_per_second();
        let secs = |after: u64, before: u64| after.saturating_sub(before) as f64 / hz;
        CpuUse {
            client: secs(self.client, before.client),
            upstream: secs(self.upstream, before.upstream),
            proxy: match (direct, child) {
                (true, _) => None,
                (false, true) => Some(secs(self.child_tree, before.child_tree)),
                (false, false) => Some(secs(self.rest, before.rest)),
            },
            machine_busy: secs(self.machine_busy, before.machine_busy)
                / secs(self.machine_total, before.machine_total).max(f64::MIN_POSITIVE),
        }
    }
}

/// (comm, parent pid, utime + stime) of a /proc stat file.
fn stat_of(path: &Path) -> Option<(String, u32, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    // After the comm: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    // cmajflt utime stime ...
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, parent, utime + stime))
}

/// USER_HZ, the unit of /proc's CPU times (100 on Linux unless `getconf` says otherwise).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|hz| *hz > 0.0)
        .unwrap_or(100.0)
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

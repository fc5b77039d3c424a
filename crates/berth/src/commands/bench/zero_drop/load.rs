//! The load generator of `berth bench zero-drop`: GET / at a fixed rate, open loop (a ticker
//! hands out one request every 1/rate seconds, catching up on missed ticks, whatever the
//! answers take), spread over a few keep-alive connections made with hyper's HTTP/1.1 client
//! connection API, on a runtime of its own. Every request is counted once: answered 2xx,
//! answered otherwise, failed on its connection (refused, reset, closed mid-answer), or not
//! answered within the per-request timeout.

use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONNECTION, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

use http_body_util::{BodyExt, Empty};

/// How long a request may take, connection included, before it counts as timed out.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Errors kept with their text (all are counted).
const ERRORS_SHOWN: usize = 10;

/// What the load saw.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) sent: u64,
    pub(super) succeeded: u64,
    /// Answered with a status other than 2xx.
    pub(super) failed: u64,
    /// Failed on the connection: refused, reset, closed before the answer ended.
    pub(super) connection_errors: u64,
    /// Of those, the ones that were a reset (ECONNRESET or an answer cut short).
    pub(super) resets: u64,
    pub(super) timeouts: u64,
    /// Connections opened (a new one after an error, or after the far side closed one).
    pub(super) connections: u64,
    pub(super) latencies: Vec<Duration>,
    /// 2xx answers by the first word of their body (the task definition's version).
    pub(super) by_version: BTreeMap<String, u64>,
    /// The first errors: seconds since the load started, and what happened.
    pub(super) shown: Vec<(f64, String)>,
    /// How long the load ran.
    pub(super) seconds: f64,
}

impl Stats {
    fn error(&mut self, at: f64, what: String) {
        if self.shown.len() < ERRORS_SHOWN {
            self.shown.push((at, what));
        }
    }

    fn merge(&mut self, other: Stats) {
        self.sent += other.sent;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.connection_errors += other.connection_errors;
        self.resets += other.resets;
        self.timeouts += other.timeouts;
        self.connections += other.connections;
        self.latencies.extend(other.latencies);
        for (version, n) in other.by_version {
            *self.by_version.entry(version).or_default() += n;
        }
        self.shown.extend(other.shown);
        self.shown
            .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        self.shown.truncate(ERRORS_SHOWN);
    }

    /// 2xx answers per second over the run.
    pub(super) fn rate(&self) -> f64 {
        self.succeeded as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }
}

/// A running load; [`Load::stop`] ends it and gathers the figures.
pub(super) struct Load {
    stop: Arc<AtomicBool>,
    ticker: JoinHandle<()>,
    workers: Vec<JoinHandle<Stats>>,
    started: Instant,
}

impl Load {
    /// Starts `connections` connections to `addr` on `rt`, sharing `rate` requests/s.
    pub(super) fn start(rt: &Runtime, addr: SocketAddr, rate: f64, connections: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        // Room for a second of backlog: past it the ticker waits, and the rate achieved shows it.
        let (tx, rx) = mpsc::channel::<()>((rate as usize).max(1));
        let rx = Arc::new(Mutex::new(rx));
        let period = Duration::from_secs_f64(1.0 / rate);
        let ticking = Arc::clone(&stop);
        let ticker = rt.spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while !ticking.load(Ordering::Relaxed) {
                interval.tick().await;
                if tx.send(()).await.is_err() {
                    break;
                }
            }
        });
        let workers = (0..connections.max(1))
            .map(|_| rt.spawn(worker(addr, Arc::clone(&rx), started)))
            .collect();
        Load {
            stop,
            ticker,
            workers,
            started,
        }
    }

    /// Stops handing out requests, waits for those under way and merges what every
    /// connection saw.
    pub(super) async fn stop(mut self) -> Stats {
        self.stop.store(true, Ordering::Relaxed);
        let _ = (&mut self.ticker).await;
        let seconds = self.started.elapsed().as_secs_f64();
        let mut stats = Stats::default();
        for handle in std::mem::take(&mut self.workers) {
            match handle.await {
                Ok(one) => stats.merge(one),
                Err(e) => {
                    stats.connection_errors += 1;
                    stats.error(seconds, format!("a connection's task failed: {e}"));
                }
            }
        }
        stats.seconds = seconds;
        stats
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        // Interrupted: the ticker stops, and with it the workers.
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One connection: takes the ticker's requests one at a time until it stops.
async fn worker(addr: SocketAddr, rx: Arc<Mutex<mpsc::Receiver<()>>>, started: Instant) -> Stats {
    let mut stats = Stats::default();
    let host = HeaderValue::from_str(&addr.to_string()).unwrap_or(HeaderValue::from_static("x"));
    let mut sender: Option<SendRequest<Empty<Bytes>>> = None;
    loop {
        let next = rx.lock().await.recv().await;
        if next.is_none() {
            break;
        }
        stats.sent += 1;
        let began = Instant::now();
        let at = started.elapsed().as_secs_f64();
        let outcome = tokio::time::timeout(
            REQUEST_TIMEOUT,
            request(&mut sender, addr, &host, &mut stats.connections),
        )
        .await;
        match outcome {
            Err(_) => {
                stats.timeouts += 1;
                sender = None;
                stats.error(
                    at,
                    format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
                );
            }
            Ok(Err(e)) => {
                stats.connection_errors += 1;
                if e.reset {
                    stats.resets += 1;
                }
                sender = None;
                stats.error(at, e.what);
            }
            Ok(Ok((status, body))) => {
                stats.latencies.push(began.elapsed());
                if (200..300).contains(&status) {
                    stats.succeeded += 1;
                    let version = body.split_whitespace().next().unwrap_or("-").to_owned();
                    *stats.by_version.entry(version).or_default() += 1;
                } else {
                    stats.failed += 1;
                    stats.error(at, format!("answered {status}: {}", body.trim()));
                }
            }
        }
    }
    stats
}

/// A request that failed on its connection.
struct ConnError {
    what: String,
    reset: bool,
}

impl ConnError {
    fn new(stage: &str, e: &(dyn std::error::Error + 'static)) -> ConnError {
        let mut what = format!("{stage}: {e}");
        let mut reset = false;
        let mut next = Some(e);
        let mut first = true;
        while let Some(error) = next {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                reset |= matches!(
                    io.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                );
            }
            if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
                reset |= hyper.is_incomplete_message();
            }
            if !first {
                let _ = write!(what, ": {error}");
            }
            first = false;
            next = error.source();
        }
        ConnError { what, reset }
    }
}

/// One GET / on the kept-alive connection (a new one if there is none or it was closed):
/// the status and body of the answer.
async fn request(
    sender: &mut Option<SendRequest<Empty<Bytes>>>,
    addr: SocketAddr,
    host: &HeaderValue,
    connections: &mut u64,
) -> Result<(u16, String), ConnError> {
    // A connection the far side closed between requests is replaced before anything is sent
    // on it: that is keep-alive ending, not a request failing.
    if let Some(open) = sender.as_mut() {
        if open.is_closed() || open.ready().await.is_err() {
            *sender = None;
        }
    }
    let open = match sender {
        Some(open) => open,
        None => {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| ConnError::new("connect", &e))?;
            let _ = tcp.set_nodelay(true);
            let (made, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| ConnError::new("handshake", &e))?;
            tokio::spawn(connection);
            *connections += 1;
            sender.insert(made)
        }
    };
    let mut get = Request::new(Empty::<Bytes>::new());
    *get.uri_mut() = Uri::from_static("/");
    get.headers_mut().insert(HOST, host.clone());
    let response = open
        .send_request(get)
        .await
        .map_err(|e| ConnError::new("request", &e))?;
    let status = response.status().as_u16();
    let closing = response
        .headers()
        .get(CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| ConnError::new("answer's body", &e))?
        .to_bytes();
    if closing {
        // The far side says it closes this connection after the answer: the next request
        // opens a new one.
        *sender = None;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

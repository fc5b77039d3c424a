//! The data plane against real sockets on 127.0.0.1: small hyper servers as targets, a
//! pooled hyper client as the user, short health check intervals, waits with deadlines.

use super::*;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

mod retries;
mod stickiness;
mod upgrades;

/// How long a test waits for something that should happen promptly.
const PATIENCE: Duration = Duration::from_secs(10);

/// A target: answers its name (`/login` also sets cookie `SESSION`); `/health` answers `health`'s code after `health_delay_ms`;
/// `/slow` answers once released; `/headers` answers the request's headers.
struct Backend {
    name: String,
    addr: SocketAddr,
    health: AtomicU16,
    health_delay_ms: AtomicU64,
    hits: AtomicUsize,
    release: Semaphore,
}

impl Backend {
    async fn start(name: &str) -> Arc<Backend> {
        let socket = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for a target");
        let backend = Arc::new(Backend {
            name: name.to_owned(),
            addr: socket.local_addr().expect("the target's address"),
            health: AtomicU16::new(200),
            health_delay_ms: AtomicU64::new(0),
            hits: AtomicUsize::new(0),
            release: Semaphore::new(0),
        });
        let serving = Arc::clone(&backend);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = socket.accept().await {
                let backend = Arc::clone(&serving);
                let service = hyper::service::service_fn(move |request| {
                    let backend = Arc::clone(&backend);
                    async move { Ok::<_, std::convert::Infallible>(backend.answer(request).await) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service),
                );
            }
        });
        backend
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let text = match request.uri().path() {
            "/health" => {
                let delay = self.health_delay_ms.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let status = StatusCode::from_u16(self.health.load(Ordering::SeqCst))
                    .expect("a valid status");
                let mut response = Response::new(Full::new(Bytes::from("health")));
                *response.status_mut() = status;
                return response;
            }
            "/slow" => {
                self.hits.fetch_add(1, Ordering::SeqCst);
                self.release
                    .acquire()
                    .await
                    .expect("the semaphore stays open")
                    .forget();
                self.name.clone()
            }
            "/login" => {
                self.hits.fetch_add(1, Ordering::SeqCst);
                let mut response = Response::new(Full::new(Bytes::from(self.name.clone())));
                response
                    .headers_mut()
                    .insert("set-cookie", HeaderValue::from_static("SESSION=s1; Path=/"));
                return response;
            }
            "/headers" => {
                self.hits.fetch_add(1, Ordering::SeqCst);
                request
                    .headers()
                    .iter()
                    .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("?")))
                    .collect()
            }
            _ => {
                self.hits.fetch_add(1, Ordering::SeqCst);
                let _ = request.into_body().collect().await;
                self.name.clone()
            }
        };
        Response::new(Full::new(Bytes::from(text)))
    }

    fn target(&self) -> TargetConfig {
        TargetConfig {
            id: self.name.clone(),
            port: self.addr.port(),
            addr: self.addr,
            draining: false,
        }
    }

    fn key(&self, group: &str) -> TargetKey {
        (group.to_owned(), self.name.clone(), self.addr.port())
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// An address nothing listens on.
async fn dead_addr() -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    socket.local_addr().expect("its address")
}

fn dead_target(id: &str, addr: SocketAddr) -> TargetConfig {
    TargetConfig {
        id: id.to_owned(),
        port: addr.port(),
        addr,
        draining: false,
    }
}

fn check() -> HealthCheckConfig {
    HealthCheckConfig {
        enabled: true,
        protocol: Protocol::Http,
        port: None,
        path: "/health".to_owned(),
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(500),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        matcher: "200".to_owned(),
    }
}

fn group(key: &str, algorithm: Algorithm, targets: Vec<TargetConfig>) -> TargetGroupConfig {
    TargetGroupConfig {
        key: key.to_owned(),
        protocol: Protocol::Http,
        algorithm,
        health_check: check(),
        slow_start: Duration::ZERO,
        stickiness: Stickiness::Off,
        targets,
    }
}

fn rule(paths: &[&str], hosts: &[&str], action: ActionConfig) -> RuleConfig {
    RuleConfig {
        path_patterns: paths.iter().map(|p| (*p).to_owned()).collect(),
        host_headers: hosts.iter().map(|h| (*h).to_owned()).collect(),
        action,
    }
}

fn forward(group: &str) -> ActionConfig {
    ActionConfig::Forward(vec![(group.to_owned(), 1)], None)
}

fn fixed(status: u16, body: &str) -> ActionConfig {
    ActionConfig::FixedResponse {
        status,
        content_type: Some("text/plain".to_owned()),
        body: Some(body.to_owned()),
    }
}

fn listener(key: &str, rules: Vec<RuleConfig>) -> ListenerConfig {
    ListenerConfig {
        key: key.to_owned(),
        bind: "127.0.0.1:0".parse().expect("an address"),
        protocol: Protocol::Http,
        rules,
        idle_timeout: Duration::from_secs(5),
    }
}

/// One listener `web` forwarding everything to `groups[0]`.
fn simple(groups: Vec<TargetGroupConfig>) -> ProxyConfig {
    ProxyConfig {
        listeners: vec![listener(
            "web",
            vec![rule(&[], &[], forward(&groups[0].key))],
        )],
        target_groups: groups,
    }
}

async fn start(config: ProxyConfig) -> (Arc<DataPlane>, Arc<HealthBoard>, SocketAddr) {
    let board = Arc::new(HealthBoard::default());
    let plane = DataPlane::new(Arc::clone(&board));
    let errors = plane.apply(config).await;
    assert!(errors.is_empty(), "bind errors: {errors:?}");
    let addr = plane.local_addr("web").await.expect("listener web runs");
    (plane, board, addr)
}

type UserClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

fn user() -> UserClient {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn call(client: &UserClient, method: Method, url: String, host: Option<&str>) -> Answer {
    let mut request = Request::builder().method(method).uri(url);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    let request = request
        .body(Full::new(Bytes::from_static(b"payload")))
        .expect("a valid request");
    answer(client, request).await
}

/// Sends `request` as the user and reads the whole answer.
async fn answer(client: &UserClient, request: Request<Full<Bytes>>) -> Answer {
    let response = tokio::time::timeout(PATIENCE, client.request(request))
        .await
        .expect("an answer in time")
        .expect("an answer");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the whole body")
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(client: &UserClient, addr: SocketAddr, path: &str) -> Answer {
    call(client, Method::GET, format!("http://{addr}{path}"), None).await
}

/// Waits until `condition` holds, failing the test after [`PATIENCE`].
/// Starts a `/slow` request through the listener at `addr` and waits until `a` or `b` (of
/// group `tg`) holds it: the request, the target holding it and the other one.
async fn hold_one_slow<'t>(
    plane: &DataPlane,
    client: &UserClient,
    addr: SocketAddr,
    a: &'t Arc<Backend>,
    b: &'t Arc<Backend>,
) -> (
    tokio::task::JoinHandle<Answer>,
    &'t Arc<Backend>,
    &'t Arc<Backend>,
) {
    let slow = tokio::spawn({
        let client = client.clone();
        async move { get(&client, addr, "/slow").await }
    });
    eventually("the slow request is in flight", || {
        plane.in_flight("tg", a.addr) + plane.in_flight("tg", b.addr) == 1
    })
    .await;
    if plane.in_flight("tg", a.addr) == 1 {
        (slow, a, b)
    } else {
        (slow, b, a)
    }
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until_state(board: &HealthBoard, key: &TargetKey, state: &str) {
    eventually(&format!("{key:?} {state}"), || {
        board.get(key).is_some_and(|h| h.state == state)
    })
    .await;
}

#[tokio::test]
async fn round_robin_spreads_requests_evenly_across_healthy_targets() {
    let backends = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let targets = backends.iter().map(|b| b.target()).collect();
    let (_plane, board, addr) =
        start(simple(vec![group("tg", Algorithm::RoundRobin, targets)])).await;
    for backend in &backends {
        until_state(&board, &backend.key("tg"), "healthy").await;
    }
    let client = user();
    for _ in 0..30 {
        assert_eq!(get(&client, addr, "/").await.status, StatusCode::OK);
    }
    let hits: Vec<usize> = backends.iter().map(|b| b.hits()).collect();
    assert_eq!(hits, [10, 10, 10]);
}

#[tokio::test]
async fn least_outstanding_requests_prefers_the_idle_target() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let config = simple(vec![group(
        "tg",
        Algorithm::LeastOutstandingRequests,
        vec![a.target(), b.target()],
    )]);
    let (plane, board, addr) = start(config).await;
    until_state(&board, &a.key("tg"), "healthy").await;
    until_state(&board, &b.key("tg"), "healthy").await;
    let client = user();
    let (slow, busy, idle) = hold_one_slow(&plane, &client, addr, &a, &b).await;
    for _ in 0..6 {
        assert_eq!(get(&client, addr, "/").await.body, idle.name);
    }
    busy.release.add_permits(1);
    let slow = slow.await.expect("the slow request ends");
    assert_eq!(slow.body, busy.name);
}

#[tokio::test]
async fn host_and_path_rules_route_to_different_groups_first_match_first() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let config = ProxyConfig {
        listeners: vec![listener(
            "web",
            vec![
                rule(&[], &["*.example.com"], forward("tg-a")),
                rule(&["/api/*"], &[], forward("tg-b")),
                rule(&[], &[], fixed(404, "nothing here")),
            ],
        )],
        target_groups: vec![
            group("tg-a", Algorithm::RoundRobin, vec![a.target()]),
            group("tg-b", Algorithm::RoundRobin, vec![b.target()]),
        ],
    };
    let (_plane, _board, addr) = start(config).await;
    let client = user();
    let url = |path: &str| format!("http://{addr}{path}");
    let ask = |path: &'static str, host: &'static str| {
        let client = client.clone();
        let url = url(path);
        async move { call(&client, Method::GET, url, Some(host)).await }
    };
    assert_eq!(ask("/", "www.EXAMPLE.com:8080").await.body, "a");
    assert_eq!(ask("/api/users", "other.test").await.body, "b");
    assert_eq!(ask("/api/users", "www.example.com").await.body, "a");
    let miss = ask("/API/users", "other.test").await;
    assert_eq!(miss.status, StatusCode::NOT_FOUND);
    assert_eq!(miss.body, "nothing here");
}

#[tokio::test]
async fn fixed_responses_and_redirects_are_answered_by_the_load_balancer() {
    let config = ProxyConfig {
        listeners: vec![listener(
            "web",
            vec![
                rule(&["/teapot"], &[], fixed(418, "short and stout")),
                rule(
                    &["/old/*"],
                    &[],
                    ActionConfig::Redirect(RedirectConfig {
                        protocol: Some("HTTPS".to_owned()),
                        host: None,
                        port: Some("443".to_owned()),
                        path: Some("/new/#{path}".to_owned()),
                        query: None,
                        status: 301,
                    }),
                ),
                rule(&[], &[], fixed(200, "default")),
            ],
        )],
        target_groups: Vec::new(),
    };
    let (_plane, _board, addr) = start(config).await;
    let client = user();
    let teapot = get(&client, addr, "/teapot").await;
    assert_eq!(teapot.status.as_u16(), 418);
    assert_eq!(teapot.body, "short and stout");
    assert_eq!(
        teapot.headers.get("content-type"),
        Some(&HeaderValue::from_static("text/plain"))
    );
    let moved = call(
        &client,
        Method::GET,
        format!("http://{addr}/old/page?q=1"),
        Some("a.test"),
    )
    .await;
    assert_eq!(moved.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        moved.headers.get("location"),
        Some(&HeaderValue::from_static("https://a.test/new/old/page?q=1"))
    );
    assert_eq!(get(&client, addr, "/elsewhere").await.body, "default");
}

#[tokio::test]
async fn targets_see_x_forwarded_headers_and_the_original_host() {
    let a = Backend::start("a").await;
    let config = simple(vec![group("tg", Algorithm::RoundRobin, vec![a.target()])]);
    let (_plane, _board, addr) = start(config).await;
    let request = Request::get(format!("http://{addr}/headers"))
        .header("host", "app.test")
        .header("x-forwarded-for", "203.0.113.9")
        .body(Full::new(Bytes::new()))
        .expect("a valid request");
    let response = user().request(request).await.expect("an answer");
    let seen = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.contains("host: app.test\n"), "{seen}");
    assert!(
        seen.contains("x-forwarded-for: 203.0.113.9, 127.0.0.1\n"),
        "{seen}"
    );
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(
        seen.contains(&format!("x-forwarded-port: {}\n", addr.port())),
        "{seen}"
    );
}

#[tokio::test]
async fn a_target_failing_checks_gets_no_traffic_until_it_passes_again() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    b.health.store(503, Ordering::SeqCst);
    let config = simple(vec![group(
        "tg",
        Algorithm::RoundRobin,
        vec![a.target(), b.target()],
    )]);
    let (_plane, board, addr) = start(config).await;
    until_state(&board, &a.key("tg"), "healthy").await;
    until_state(&board, &b.key("tg"), "unhealthy").await;
    let report = board.get(&b.key("tg")).expect("b is on the board");
    assert_eq!(report.reason, Some("Target.ResponseCodeMismatch"));
    assert_eq!(
        report.description.as_deref(),
        Some("Health checks failed with these codes: [503]")
    );
    let client = user();
    for _ in 0..10 {
        assert_eq!(get(&client, addr, "/").await.body, "a");
    }
    assert_eq!(b.hits(), 0);

    b.health.store(200, Ordering::SeqCst);
    until_state(&board, &b.key("tg"), "healthy").await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(get(&client, addr, "/").await.body);
    }
    assert!(answers.iter().any(|name| name == "b"), "{answers:?}");
}

#[tokio::test]
async fn failed_checks_report_timeouts_and_refused_connections_in_elb_terms() {
    let (slow, healthy) = (Backend::start("slow").await, Backend::start("ok").await);
    slow.health_delay_ms.store(2_000, Ordering::SeqCst);
    let dead = dead_addr().await;
    let mut config = simple(vec![group(
        "tg",
        Algorithm::RoundRobin,
        vec![slow.target(), dead_target("dead", dead), healthy.target()],
    )]);
    config.target_groups[0].health_check.timeout = Duration::from_millis(150);
    let board = Arc::new(HealthBoard::default());
    let plane = DataPlane::new(Arc::clone(&board));
    assert!(plane.apply(config.clone()).await.is_empty());
    let dead_key = ("tg".to_owned(), "dead".to_owned(), dead.port());
    assert_eq!(
        board.get(&dead_key).map(|h| h.reason),
        Some(Some("Elb.RegistrationInProgress")),
        "a new target starts initial"
    );
    until_state(&board, &slow.key("tg"), "unhealthy").await;
    until_state(&board, &dead_key, "unhealthy").await;
    until_state(&board, &healthy.key("tg"), "healthy").await;
    let timed_out = board.get(&slow.key("tg")).expect("slow is on the board");
    assert_eq!(timed_out.reason, Some("Target.Timeout"));
    assert_eq!(timed_out.description.as_deref(), Some("Request timed out"));
    let refused = board.get(&dead_key).expect("dead is on the board");
    assert_eq!(refused.reason, Some("Target.FailedHealthChecks"));
    assert_eq!(refused.description.as_deref(), Some("Health checks failed"));

    // Deregistered targets leave the board.
    config.target_groups[0].targets = vec![healthy.target()];
    assert!(plane.apply(config).await.is_empty());
    assert_eq!(board.get(&dead_key), None);
    assert_eq!(board.get(&slow.key("tg")), None);
    assert!(board.get(&healthy.key("tg")).is_some());
}

#[tokio::test]
async fn tcp_checks_connect_and_disabled_checks_report_unavailable() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let mut tcp_checked = group("tcp", Algorithm::RoundRobin, vec![a.target()]);
    tcp_checked.health_check.protocol = Protocol::Tcp;
    let mut unchecked = group("off", Algorithm::RoundRobin, vec![b.target()]);
    unchecked.health_check.enabled = false;
    let (_plane, board, _addr) = start(simple(vec![tcp_checked, unchecked])).await;
    until_state(&board, &a.key("tcp"), "healthy").await;
    let off = board.get(&b.key("off")).expect("b is on the board");
    assert_eq!(off.state, "unavailable");
    assert_eq!(off.reason, Some("Target.HealthCheckDisabled"));
}

#[tokio::test]
async fn when_every_target_is_unhealthy_traffic_fails_open() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    a.health.store(500, Ordering::SeqCst);
    b.health.store(500, Ordering::SeqCst);
    let config = simple(vec![group(
        "tg",
        Algorithm::RoundRobin,
        vec![a.target(), b.target()],
    )]);
    let (_plane, board, addr) = start(config).await;
    until_state(&board, &a.key("tg"), "unhealthy").await;
    until_state(&board, &b.key("tg"), "unhealthy").await;
    let client = user();
    for _ in 0..4 {
        assert_eq!(get(&client, addr, "/").await.status, StatusCode::OK);
    }
    assert_eq!((a.hits(), b.hits()), (2, 2));
}

#[tokio::test]
async fn a_draining_target_finishes_its_request_while_new_ones_go_elsewhere() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let mut config = simple(vec![group(
        "tg",
        Algorithm::RoundRobin,
        vec![a.target(), b.target()],
    )]);
    let (plane, board, addr) = start(config.clone()).await;
    until_state(&board, &a.key("tg"), "healthy").await;
    until_state(&board, &b.key("tg"), "healthy").await;
    let client = user();
    let (slow, busy, other) = hold_one_slow(&plane, &client, addr, &a, &b).await;
    for target in &mut config.target_groups[0].targets {
        target.draining = target.id == busy.name;
    }
    assert!(plane.apply(config).await.is_empty());
    for _ in 0..6 {
        assert_eq!(get(&client, addr, "/").await.body, other.name);
    }
    assert_eq!(plane.in_flight("tg", busy.addr), 1);
    busy.release.add_permits(1);
    let slow = slow.await.expect("the slow request ends");
    assert_eq!(
        (slow.status, slow.body.as_str()),
        (StatusCode::OK, busy.name.as_str())
    );
    eventually("the drained target is idle", || {
        plane.in_flight("tg", busy.addr) == 0
    })
    .await;
}

#[tokio::test]
async fn a_target_that_answers_too_late_gets_a_504() {
    let a = Backend::start("a").await;
    let mut config = simple(vec![group("tg", Algorithm::RoundRobin, vec![a.target()])]);
    config.listeners[0].idle_timeout = Duration::from_millis(300);
    let (_plane, _board, addr) = start(config).await;
    let client = user();
    assert_eq!(
        get(&client, addr, "/slow").await.status,
        StatusCode::GATEWAY_TIMEOUT
    );
    a.release.add_permits(1);
}

#[tokio::test]
async fn a_group_without_targets_answers_503() {
    let config = simple(vec![group("tg", Algorithm::RoundRobin, Vec::new())]);
    let (_plane, _board, addr) = start(config).await;
    assert_eq!(
        get(&user(), addr, "/").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn a_tcp_listener_splices_bytes_to_a_target() {
    let echo = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let echo_addr = echo.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut reader, mut writer) = tcp.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    let mut tg = group(
        "tg",
        Algorithm::RoundRobin,
        vec![dead_target("echo", echo_addr)],
    );
    tg.protocol = Protocol::Tcp;
    tg.health_check.protocol = Protocol::Tcp;
    let mut config = simple(vec![tg]);
    config.listeners[0].protocol = Protocol::Tcp;
    let (plane, _board, addr) = start(config).await;
    let mut flow = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the listener accepts");
    flow.write_all(b"ping").await.expect("bytes go out");
    let mut back = [0u8; 4];
    tokio::time::timeout(PATIENCE, flow.read_exact(&mut back))
        .await
        .expect("an echo in time")
        .expect("the echo");
    assert_eq!(&back, b"ping");
    assert_eq!(plane.in_flight("tg", echo_addr), 1);
    drop(flow);
    eventually("the flow ends", || plane.in_flight("tg", echo_addr) == 0).await;
}

#[tokio::test]
async fn applying_again_keeps_keep_alive_connections_and_swaps_routes() {
    let a = Backend::start("a").await;
    let mut config = simple(vec![group("tg", Algorithm::RoundRobin, vec![a.target()])]);
    let (plane, _board, addr) = start(config.clone()).await;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the listener accepts");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("an HTTP connection");
    tokio::spawn(connection);
    let mut ask = |path: &'static str| {
        let request = Request::get(path)
            .header("host", "app.test")
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        let response = sender.send_request(request);
        async move {
            let response = response.await.expect("an answer on the same connection");
            let body = response.into_body().collect().await.expect("the body");
            String::from_utf8_lossy(&body.to_bytes()).into_owned()
        }
    };
    assert_eq!(ask("/").await, "a");
    assert!(plane.apply(config.clone()).await.is_empty());
    assert_eq!(ask("/").await, "a");
    config.listeners[0]
        .rules
        .insert(0, rule(&["/fixed"], &[], fixed(200, "new rule")));
    assert!(plane.apply(config).await.is_empty());
    assert_eq!(ask("/fixed").await, "new rule");
    assert_eq!(ask("/").await, "a");
}

#[tokio::test]
async fn removing_a_listener_frees_its_port() {
    let config = ProxyConfig {
        listeners: vec![listener("web", vec![rule(&[], &[], fixed(200, "hi"))])],
        target_groups: Vec::new(),
    };
    let (plane, _board, addr) = start(config).await;
    assert!(plane.apply(ProxyConfig::default()).await.is_empty());
    assert_eq!(plane.local_addr("web").await, None);
    std::net::TcpListener::bind(addr).expect("the port is free again");
}

#[tokio::test]
async fn binding_an_occupied_port_is_reported_and_retried_by_the_next_apply() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let taken = holder.local_addr().expect("its address");
    let mut blocked = listener("blocked", vec![rule(&[], &[], fixed(200, "blocked"))]);
    blocked.bind = taken;
    let config = ProxyConfig {
        listeners: vec![
            blocked,
            listener("web", vec![rule(&[], &[], fixed(200, "web"))]),
        ],
        target_groups: Vec::new(),
    };
    let plane = DataPlane::new(Arc::new(HealthBoard::default()));
    let errors = plane.apply(config.clone()).await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].listener.as_str(), errors[0].bind),
        ("blocked", taken)
    );
    let web = plane
        .local_addr("web")
        .await
        .expect("the other listener runs");
    assert_eq!(get(&user(), web, "/").await.body, "web");

    drop(holder);
    assert!(plane.apply(config).await.is_empty());
    assert_eq!(plane.local_addr("blocked").await, Some(taken));
    plane.shutdown().await;
    std::net::TcpListener::bind(taken).expect("shutdown frees the port");
}

#[tokio::test]
async fn an_http2_client_is_served_and_its_authority_reaches_the_target_as_host() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let config = simple(vec![group(
        "tg",
        Algorithm::RoundRobin,
        vec![a.target(), b.target()],
    )]);
    let (_plane, _board, addr) = start(config).await;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the listener accepts");
    // h2c with prior knowledge: the connection opens with HTTP/2's preface.
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await
    .expect("an HTTP/2 connection");
    tokio::spawn(connection);
    let mut served = Vec::new();
    for path in ["/", "/", "/headers"] {
        let request = Request::get(format!("http://app.test{path}"))
            .version(hyper::Version::HTTP_2)
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        let response = sender
            .send_request(request)
            .await
            .expect("an answer on the HTTP/2 connection");
        assert_eq!(response.version(), hyper::Version::HTTP_2);
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.expect("the body");
        served.push(String::from_utf8_lossy(&body.to_bytes()).into_owned());
    }
    // Round robin over both targets on one HTTP/2 connection.
    assert_eq!(
        {
            let mut two = served[..2].to_vec();
            two.sort();
            two
        },
        ["a", "b"]
    );
    let headers = &served[2];
    assert!(headers.contains("host: app.test\n"), "{headers}");
    assert!(headers.contains("x-forwarded-proto: http\n"), "{headers}");
}

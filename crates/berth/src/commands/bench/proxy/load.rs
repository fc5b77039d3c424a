//! The load generator: keep-alive connections on hyper's client, latencies per request, and
//! the CPU each part of the run used.

use super::*;

/// One GET / on a new connection, answered 200.
pub(super) async fn get_once(addr: SocketAddr) -> anyhow::Result<()> {
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
pub(super) struct Window {
    pub(super) from: Instant,
    pub(super) to: Instant,
}

/// What one pass of the generator saw.
#[derive(Default)]
pub(super) struct Pass {
    /// Latencies in nanoseconds, sorted.
    pub(super) latencies: Vec<u64>,
    pub(super) seconds: f64,
    pub(super) errors: u64,
    pub(super) shown: Vec<String>,
}

impl Pass {
    pub(super) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }

    /// The `q` quantile by nearest rank, as [`super::quantile`].
    pub(super) fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank =
            ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        Duration::from_nanos(self.latencies[rank - 1])
    }

    pub(super) fn error(&mut self, what: String) {
        self.errors += 1;
        if self.shown.len() < ERRORS_SHOWN {
            self.shown.push(what);
        }
    }
}

/// One leg's figures.
pub(super) struct LegResult {
    pub(super) name: String,
    pub(super) loaded: Pass,
    pub(super) single: Pass,
    pub(super) cpu: Option<CpuUse>,
}

/// CPU seconds spent during a leg's measured window.
pub(super) struct CpuUse {
    pub(super) client: f64,
    pub(super) upstream: f64,
    /// The proxy's: this process's other threads (Berth), or the child's process tree.
    pub(super) proxy: Option<f64>,
    /// Of all the machine's cores (0 to 1).
    pub(super) machine_busy: f64,
}

/// Runs one leg: the loaded pass (with CPU accounting) then the single-connection pass.
pub(super) async fn measure_leg(
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
pub(super) async fn gather(
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
pub(super) async fn connection(
    addr: SocketAddr,
    window: Window,
    body_bytes: usize,
    capacity: usize,
) -> Pass {
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
pub(super) struct CpuTicks {
    pub(super) client: u64,
    pub(super) upstream: u64,
    /// This process's other threads: the main runtime, where Berth's proxy runs.
    pub(super) rest: u64,
    pub(super) child_tree: u64,
    pub(super) machine_busy: u64,
    pub(super) machine_total: u64,
}

impl CpuTicks {
    pub(super) fn read(child: Option<u32>) -> Option<CpuTicks> {
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

    pub(super) fn since(&self, before: &CpuTicks, direct: bool, child: bool) -> CpuUse {
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
pub(super) fn stat_of(path: &Path) -> Option<(String, u32, u64)> {
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
pub(super) fn clock_ticks_per_second() -> f64 {
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

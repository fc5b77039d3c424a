//! The server under test, as a child process of the benchmark so that its memory is its own.
//! The child is `berth bench fleet-server` (hidden): `berth server` with one addition, it
//! stops when its stdin closes. The benchmark holds the other end of that pipe, so however the
//! benchmark ends (an error, Ctrl-C, even `kill -9`) no server is left behind.

use crate::commands::server::ServerArgs;
use anyhow::{bail, Context};
use clap::Args;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// What the child prints once it serves, followed by `http://ADDR`.
const READY_LINE: &str = "fleet server listening on ";
/// How long the child may take to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the child may take to stop once asked.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long in-flight requests get at shutdown; desired-state streams never finish by
/// themselves, so the graceful shutdown is cut short after this.
const DRAIN: Duration = Duration::from_secs(3);

/// Options of the hidden `berth bench fleet-server`.
#[derive(Debug, Args)]
pub struct FleetServerArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Runs `berth server` until stdin closes (or Ctrl-C / SIGTERM).
pub async fn serve(args: FleetServerArgs) -> anyhow::Result<()> {
    let server = berth_server::serve(args.server.config()?)
        .await
        .context("berth server could not start")?;
    println!("{READY_LINE}http://{}", server.addr());
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = closed.send(());
    });
    tokio::select! {
        _ = stdin_closed => {}
        _ = crate::commands::shutdown_signal() => {}
    }
    match tokio::time::timeout(DRAIN, server.shutdown()).await {
        Ok(result) => result.context("server stopped with an error"),
        // Agents' streams are still open, and an overloaded server may have store writes
        // queued for clients that gave up: waiting for them could take minutes. Every write
        // acknowledged to a client is durable already (SQLite WAL, synchronous=FULL; etcd
        // answers a write once its members committed it), so leave at once, as after a crash,
        // which the server is built to survive.
        Err(_) => std::process::exit(0),
    }
}

/// A running server child process; killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl ServerProcess {
    /// Starts a server on `data_dir`, listening on `listen` (port 0: any free port), and waits
    /// until it serves.
    pub async fn start(data_dir: &Path, listen: SocketAddr) -> anyhow::Result<ServerProcess> {
        Self::start_on(data_dir, None, listen).await
    }

    /// [`ServerProcess::start`] with the store at `store` (a `--store` URL such as
    /// `etcd://127.0.0.1:2379/prefix`; `None`: the data dir's SQLite database).
    pub async fn start_on(
        data_dir: &Path,
        store: Option<&str>,
        listen: SocketAddr,
    ) -> anyhow::Result<ServerProcess> {
        let exe = std::env::current_exe().context("cannot find the berth binary")?;
        let mut command = Command::new(exe);
        command
            .args(["bench", "fleet-server", "--listen", &listen.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .args(store.map(|url| ["--store", url]).into_iter().flatten())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("BERTH_LOG").is_none() {
            command.env("BERTH_LOG", "warn");
        }
        let mut child = command.spawn().context("cannot start the server process")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let mut process = ServerProcess {
            child,
            stdin,
            addr: listen,
        };
        let Some(stdout) = stdout else {
            bail!("the server process has no stdout");
        };
        let (line_tx, line_rx) = tokio::sync::oneshot::channel::<String>();
        std::thread::spawn(move || {
            let mut first = String::new();
            let mut reader = BufReader::new(stdout);
            if reader.read_line(&mut first).is_ok() {
                let _ = line_tx.send(first);
            }
            // Keep reading so the child never blocks on a full pipe.
            let mut rest = String::new();
            while matches!(reader.read_line(&mut rest), Ok(n) if n > 0) {
                rest.clear();
            }
        });
        let line = match tokio::time::timeout(START_TIMEOUT, line_rx).await {
            Ok(Ok(line)) => line,
            Ok(Err(_)) => bail!("the server process exited before serving (see its log above)"),
            Err(_) => bail!("the server process did not serve within {START_TIMEOUT:?}"),
        };
        let addr = line
            .trim()
            .strip_prefix(READY_LINE)
            .and_then(|url| url.strip_prefix("http://"))
            .and_then(|addr| addr.parse().ok())
            .with_context(|| format!("unexpected first line from the server: {line:?}"))?;
        process.addr = addr;
        Ok(process)
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `VmRSS` and `VmHWM` (peak) of the process, in MiB.
    pub fn rss_mib(&self) -> anyhow::Result<(f64, f64)> {
        rss_mib(&format!("/proc/{}/status", self.child.id()))
    }

    /// Asks it to stop (closes its stdin) and waits until it has exited; kills it when it
    /// takes longer than [`STOP_TIMEOUT`].
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stdin.take();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if self
                .child
                .try_wait()
                .context("cannot wait for the server process")?
                .is_some()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server process did not stop within {STOP_TIMEOUT:?}; killed it");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
pub fn own_rss_mib() -> anyhow::Result<(f64, f64)> {
    rss_mib("/proc/self/status")
}

fn rss_mib(status_file: &str) -> anyhow::Result<(f64, f64)> {
    let text = std::fs::read_to_string(status_file)
        .with_context(|| format!("cannot read {status_file}"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let kib: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("{status_file} has no {name}"))?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

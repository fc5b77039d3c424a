//! etcd clusters on loopback for tests and benchmarks: members of Debian's `etcd-server`
//! started on free ports in a temporary directory, which a test may kill -9 and restart, and
//! which are all killed when the cluster is dropped.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The etcd binary: `$BERTH_ETCD_BIN`, else `etcd` on the PATH.
fn etcd_binary() -> io::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("BERTH_ETCD_BIN") {
        return Ok(PathBuf::from(bin));
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("etcd"))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "etcd is not installed: scripts/ensure-build-tools installs Debian's etcd-server",
            )
        })
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One member of a local cluster.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP `/health` and `/metrics` (the client port speaks TLS when the cluster does).
    metrics_port: u16,
    child: Option<Child>,
}

/// The PEM files of a cluster that serves its clients over TLS and asks them for a
/// certificate signed by `ca`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// A local etcd cluster of one or more members.
#[derive(Debug)]
pub struct LocalEtcd {
    members: Vec<Member>,
    dir: tempfile::TempDir,
    binary: PathBuf,
    tls: Option<TlsFiles>,
}

impl LocalEtcd {
    /// Starts a cluster of `size` members and waits until it has a leader.
    pub fn start(size: usize) -> io::Result<Self> {
        Self::start_with(size, None)
    }

    /// Starts a one-member cluster whose clients must speak TLS and present a certificate
    /// `tls.ca` signed (its URL is `etcds://`).
    pub fn start_tls(tls: TlsFiles) -> io::Result<Self> {
        Self::start_with(1, Some(tls))
    }

    fn start_with(size: usize, tls: Option<TlsFiles>) -> io::Result<Self> {
        let binary = etcd_binary()?;
        let dir = tempfile::Builder::new().prefix("berth-etcd-").tempdir()?;
        let mut members = Vec::new();
        for i in 0..size.max(1) {
            members.push(Member {
                name: format!("m{i}"),
                client_port: free_port()?,
                peer_port: free_port()?,
                metrics_port: free_port()?,
                child: None,
            });
        }
        let mut cluster = Self {
            members,
            dir,
            binary,
            tls,
        };
        for i in 0..cluster.members.len() {
            cluster.spawn(i, "new")?;
        }
        cluster.wait_ready(Duration::from_secs(30))?;
        Ok(cluster)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.members[i].name)
    }

    fn spawn(&mut self, i: usize, state: &str) -> io::Result<()> {
        let initial_cluster = self.initial_cluster();
        let data_dir = self.data_dir(i);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(
            self.dir
                .path()
                .join(format!("{}.log", self.members[i].name)),
        )?;
        let member = &mut self.members[i];
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let metrics = format!("http://127.0.0.1:{}", member.metrics_port);
        let mut command = Command::new(&self.binary);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.cert)
                .arg("--key-file")
                .arg(&tls.key)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let child = command
            .args(["--listen-metrics-urls", &metrics])
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", "berth-local"])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        member.child = Some(child);
        Ok(())
    }

    /// Waits until every running member answers on its client port.
    fn wait_ready(&mut self, within: Duration) -> io::Result<()> {
        let deadline = Instant::now() + within;
        for i in 0..self.members.len() {
            if self.members[i].child.is_none() {
                continue;
            }
            let address = format!("127.0.0.1:{}", self.members[i].metrics_port);
            let health = format!("GET /health HTTP/1.0\r\nHost: {address}\r\n\r\n");
            loop {
                if let Some(child) = self.members[i].child.as_mut() {
                    if let Some(status) = child.try_wait()? {
                        return Err(io::Error::other(format!(
                            "etcd member {} exited ({status}); see {}",
                            self.members[i].name,
                            self.dir.path().display()
                        )));
                    }
                }
                if healthy(&address, &health) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("etcd member {} is not healthy", self.members[i].name),
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// The `--store` URL of the cluster (every member), under `prefix` (may be empty).
    pub fn url(&self, prefix: &str) -> String {
        let hosts = self
            .members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",");
        let scheme = if self.tls.is_some() { "etcds" } else { "etcd" };
        format!("{scheme}://{hosts}/{}", prefix.trim_start_matches('/'))
    }

    /// How many members the cluster has.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Kills member `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) -> io::Result<()> {
        if let Some(mut child) = self.members[i].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts member `i` again on its data and waits until it answers.
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        self.kill(i)?;
        self.spawn(i, "existing")?;
        self.wait_ready(Duration::from_secs(30))
    }

    /// The directory of the members' data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Whether etcd's `/health` on `address` says the member is healthy (it has a leader).
fn healthy(address: &str, request: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"") || answer.contains("\"health\": \"true\"")
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        for member in &mut self.members {
            if let Some(mut child) = member.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

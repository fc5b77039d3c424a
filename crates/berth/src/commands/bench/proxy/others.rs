//! The proxies Berth's is compared with: nginx and HAProxy from Debian, run as children.

use super::*;

/// A proxy running as a child process, stopped when dropped.
pub(super) struct ProxyProcess {
    pub(super) name: String,
    pub(super) addr: SocketAddr,
    pub(super) child: Child,
    pub(super) log: PathBuf,
}

impl ProxyProcess {
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a request through it succeeds.
    pub(super) async fn wait_ready(&self) -> anyhow::Result<()> {
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
pub(super) fn start_nginx(
    program: &Path,
    dir: &Path,
    upstream: SocketAddr,
) -> anyhow::Result<ProxyProcess> {
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
pub(super) fn start_haproxy(
    program: &Path,
    dir: &Path,
    upstream: SocketAddr,
) -> anyhow::Result<ProxyProcess> {
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
pub(super) fn free_port() -> anyhow::Result<u16> {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").context("a free port")?;
    Ok(socket.local_addr()?.port())
}

/// The version word after `marker` in what `program flag` prints, without a Debian
/// revision.
pub(super) fn version_of(program: &Path, flag: &str, marker: &str) -> Option<String> {
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
pub(super) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `name`, installed from the first of Debian's `packages` that installs when missing.
pub(super) fn ensure_program(name: &str, packages: &[&str]) -> anyhow::Result<PathBuf> {
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

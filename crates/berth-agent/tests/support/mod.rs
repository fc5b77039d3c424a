//! What the Docker tests of `DockerRuntime` share: the test image, and a fixture whose
//! containers and volumes carry a label unique to the test and are removed at the end, even
//! when a test fails. Each test binary uses part of it.
#![allow(dead_code)]

use berth_agent::runtime::docker::DockerRuntime;
use berth_agent::runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, MountSpec, RuntimeEvent,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub const IMAGE: &str = "berth-test/busybox:latest";
pub const RUN_LABEL: &str = "com.berth.test-run";

/// Builds the test image once per test binary; panics with the script's output on failure.
pub fn ensure_test_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-test-image");
        let output = Command::new(&script)
            .output()
            .expect("scripts/build-test-image runs");
        assert!(
            output.status.success(),
            "scripts/build-test-image failed (is Docker running? try scripts/ensure-docker):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
}

/// A connected runtime and a label unique to one test; removes the test's containers on drop.
pub struct Fixture {
    pub runtime: DockerRuntime,
    pub run_id: String,
}

impl Fixture {
    pub async fn new() -> Self {
        ensure_test_image();
        let runtime = DockerRuntime::connect()
            .await
            .expect("a Docker daemon must answer for the Docker tests (see scripts/ensure-docker)");
        Fixture {
            runtime,
            run_id: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(RUN_LABEL.to_string(), self.run_id.clone())])
    }

    /// A busybox container spec named after the test run, running `script` with `sh -c`.
    pub fn spec(&self, suffix: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            name: format!("berth-test-{}-{suffix}", &self.run_id[..12]),
            image: IMAGE.to_string(),
            command: Some(vec!["/bin/sh".into(), "-c".into(), script.into()]),
            network_mode: "bridge".into(),
            labels: self.labels(),
            memory_mib: Some(32),
            ..ContainerSpec::default()
        }
    }

    /// Creates and starts `spec`, then waits (up to 20 s) for it to exit.
    pub async fn run_to_exit(&self, spec: &ContainerSpec) -> (String, ContainerState) {
        let id = self.runtime.create_container(spec).await.expect("created");
        self.runtime.start_container(&id).await.expect("started");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = self.runtime.inspect_container(&id).await.expect("inspect");
            if !state.running || Instant::now() > deadline {
                return (id, state);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A named volume mount labelled with the test run (so that it is removed at the end).
    pub fn volume(&self, suffix: &str, path: &str) -> (String, MountSpec) {
        let name = format!("berth-test-{}-{suffix}", &self.run_id[..12]);
        let mount = MountSpec::Volume {
            name: name.clone(),
            container_path: path.into(),
            read_only: false,
            driver: None,
            driver_opts: BTreeMap::new(),
            labels: self.labels(),
        };
        (name, mount)
    }

    pub async fn events(&self) -> mpsc::Receiver<RuntimeEvent> {
        self.runtime
            .events(&self.labels())
            .await
            .expect("event stream opens")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let filter = format!("label={RUN_LABEL}={}", self.run_id);
        let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .arg("rm")
                .arg("-f")
                .args(&ids)
                .output();
        }
        let Ok(out) = Command::new("docker")
            .args(["volume", "ls", "-q", "--filter", &filter])
            .output()
        else {
            return;
        };
        let names = String::from_utf8_lossy(&out.stdout);
        let names: Vec<&str> = names.split_whitespace().collect();
        if !names.is_empty() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f"])
                .args(&names)
                .output();
        }
    }
}

/// The next event matching `pick` within `limit`; panics naming `what` otherwise.
pub async fn wait_for<T>(
    events: &mut mpsc::Receiver<RuntimeEvent>,
    limit: Duration,
    what: &str,
    mut pick: impl FnMut(&RuntimeEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => {
                if let Some(found) = pick(&event) {
                    return found;
                }
            }
            Ok(None) => panic!("event stream closed while waiting for {what}"),
            Err(_) => panic!("no {what} within {limit:?}"),
        }
    }
}

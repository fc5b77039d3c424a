//! Docker tests of `DockerRuntime` against the real daemon. They fail (never skip) when no
//! Docker daemon answers; `scripts/ensure-docker` starts one. The busybox test image is built
//! by `scripts/build-test-image` on first use (`support`).
//! This file: a container's output, as the awslogs driver reads it.

mod support;

use berth_agent::runtime::{ContainerRuntime, LogLine, RuntimeError};
use futures_util::StreamExt;
use std::time::Duration;
use support::*;

async fn read_all(fx: &Fixture, id: &str, since: u64, follow: bool) -> Vec<LogLine> {
    let lines = fx.runtime.logs(id, since, follow).await.expect("logs open");
    tokio::time::timeout(
        Duration::from_secs(20),
        lines.map(|l| l.expect("a line")).collect(),
    )
    .await
    .expect("the output ends")
}

#[tokio::test]
async fn output_comes_line_by_line_with_nanosecond_timestamps_from_stdout_and_stderr() {
    let fx = Fixture::new().await;
    // Apart in time: Docker stamps stdout and stderr as it copies each, so lines of both
    // written together may be stored in either order.
    let mut spec = fx.spec(
        "logs",
        "echo one; sleep 0.2; echo two >&2; sleep 0.2; printf 'no newline'",
    );
    spec.log_driver = Some("json-file".into());
    let (id, state) = fx.run_to_exit(&spec).await;
    assert!(!state.running);
    let lines = read_all(&fx, &id, 0, false).await;
    let texts: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(&l.text).into_owned())
        .collect();
    assert_eq!(texts, ["one\n", "two\n", "no newline"]);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64;
    for line in &lines {
        assert!(line.timestamp_ns > now_ns - 120_000_000_000 && line.timestamp_ns <= now_ns);
    }
    assert!(lines
        .windows(2)
        .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns));
    // Following a stopped container gives what it wrote, then ends.
    assert_eq!(read_all(&fx, &id, 0, true).await.len(), 3);
    // From a second on: nothing it wrote before.
    let later = lines[2].timestamp_ns / 1_000_000_000 + 1;
    assert!(read_all(&fx, &id, later, false).await.is_empty());
}

#[tokio::test]
async fn following_a_running_container_gives_lines_as_they_come_and_ends_when_it_stops() {
    let fx = Fixture::new().await;
    let spec = fx.spec("follow", "for i in 1 2 3; do echo line$i; sleep 0.3; done");
    let id = fx.runtime.create_container(&spec).await.expect("created");
    fx.runtime.start_container(&id).await.expect("started");
    let lines = read_all(&fx, &id, 0, true).await;
    let texts: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(&l.text).trim().to_string())
        .collect();
    assert_eq!(texts, ["line1", "line2", "line3"]);
    let gap = lines[2].timestamp_ns - lines[0].timestamp_ns;
    assert!(gap >= 500_000_000, "written 0.3 s apart: {gap} ns");
}

#[tokio::test]
async fn the_output_of_no_container_is_not_found() {
    let fx = Fixture::new().await;
    let lines = fx.runtime.logs("berth-no-such-container", 0, false).await;
    let first = match lines {
        Ok(mut lines) => lines.next().await.expect("an error item").map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(matches!(first, Err(RuntimeError::NotFound(_))), "{first:?}");
}

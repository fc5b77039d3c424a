//! Docker tests of `DockerRuntime` against the real daemon. They fail (never skip) when no
//! Docker daemon answers; `scripts/ensure-docker` starts one. The busybox test image is built
//! by `scripts/build-test-image` on first use (`support`).
//! This file: commands run in running containers (ExecuteCommand), with and without a
//! terminal.

mod support;

use berth_agent::runtime::{ContainerRuntime, RuntimeError};
use std::time::Duration;
use support::*;

/// Reads an exec's output to its end (at most 20 s).
async fn exec_output(process: &mut berth_agent::runtime::ExecProcess) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    let read = async {
        while let Some(chunk) = process.output.next().await {
            out.extend_from_slice(&chunk.expect("output"));
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the command's output ends");
    out
}

/// The exit code of an exec whose output ended (the daemon may take a moment to record it).
async fn exec_exit(fx: &Fixture, exec_id: &str) -> i64 {
    for _ in 0..100 {
        if let Some(code) = fx
            .runtime
            .exec_exit_code(exec_id)
            .await
            .expect("inspect exec")
        {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("exec {exec_id} has no exit code");
}

#[tokio::test]
async fn exec_runs_commands_in_a_running_container_with_and_without_a_terminal() {
    use berth_agent::runtime::ExecSpec;
    use tokio::io::AsyncWriteExt;
    let fx = Fixture::new().await;
    let spec = fx.spec("exec", "trap 'exit 0' TERM; sleep 300 & wait");
    let id = fx.runtime.create_container(&spec).await.expect("created");
    fx.runtime.start_container(&id).await.expect("started");

    // Without a terminal: stdout and stderr as written, the exit code kept.
    let plain = ExecSpec {
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo out; echo err >&2; exit 7".into(),
        ],
        tty: false,
    };
    let mut process = fx.runtime.exec_start(&id, &plain).await.expect("exec");
    let out = String::from_utf8(exec_output(&mut process).await).expect("text");
    // Two streams: their order between each other is the daemon's.
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["err", "out"], "{out:?}");
    assert_eq!(exec_exit(&fx, &process.id).await, 7);

    // With a terminal: input typed in, the size set, output with the terminal's line ends.
    let shell = ExecSpec {
        command: vec!["sh".into()],
        tty: true,
    };
    let mut process = fx.runtime.exec_start(&id, &shell).await.expect("exec");
    fx.runtime
        .exec_resize(&process.id, 101, 33)
        .await
        .expect("resize");
    process
        .input
        .write_all(b"stty size; exit 4\n")
        .await
        .expect("typed");
    process.input.flush().await.expect("flushed");
    let out = String::from_utf8_lossy(&exec_output(&mut process).await).into_owned();
    assert!(out.contains("33 101\r\n"), "{out:?}");
    assert_eq!(exec_exit(&fx, &process.id).await, 4);

    // A container that is gone is NotFound.
    fx.runtime.kill_container(&id).await.expect("killed");
    fx.runtime.remove_container(&id).await.expect("removed");
    assert!(matches!(
        fx.runtime.exec_start(&id, &plain).await,
        Err(RuntimeError::NotFound(_))
    ));
}

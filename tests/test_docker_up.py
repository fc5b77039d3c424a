"""`berth up` itself on the real Docker daemon: what it says when no daemon answers, and
stopped-task retention with a short `--stopped-task-retention`."""

from __future__ import annotations

import subprocess
import time

from harness import berth_bin, free_port, subprocess_env, wait_until

# The server sweeps expired stopped tasks once at start and then every 60 s
# (crates/berth-server/src/http.rs, controllers/task_gc.rs); there is no flag to shorten it.
GC_INTERVAL = 60


def test_berth_up_without_a_docker_daemon_says_how_to_start_one_and_exits_non_zero(tmp_path):
    port = free_port()
    done = subprocess.run(
        [str(berth_bin()), "up", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=subprocess_env(DOCKER_HOST="unix:///nonexistent.sock"),
    )
    said = done.stdout + done.stderr
    assert done.returncode != 0, f"berth up exited 0 without Docker:\n{said}"
    assert "Docker" in said and "/nonexistent.sock" in said, f"berth up does not say Docker is missing:\n{said}"
    assert "start" in said.lower() and ("dockerd" in said or "systemctl start docker" in said), (
        f"berth up does not say how to start Docker:\n{said}"
    )
    assert "panicked" not in said


def test_a_server_with_a_short_stopped_task_retention_purges_stopped_tasks(docker_ready, short_retention_up):
    # The fixture started `berth up --stopped-task-retention 2s` with the first Docker test and
    # saw its task STOPPED and describable; this test runs last, so the sweep is due by now or soon.
    fixture = short_retention_up
    up, task_arn = fixture.up, fixture.task_arn
    assert fixture.stopped["lastStatus"] == "STOPPED"
    assert fixture.stopped["taskArn"] == task_arn
    # Gone at the first sweep after the 2 s retention: at most one GC interval after the server
    # started (the first sweep ran at start, before the task existed), plus slack.
    budget = max(GC_INTERVAL + 15 - (time.monotonic() - fixture.started), 5)

    def purged() -> bool:
        out = up.ecs.describe_tasks(cluster="default", tasks=[task_arn])
        return not out["tasks"] and out["failures"] == [{"arn": task_arn, "reason": "MISSING"}]

    wait_until(purged, budget, "the stopped task to be purged after its 2 s retention", interval=1)
    assert task_arn not in up.ecs.list_tasks(cluster="default", desiredStatus="STOPPED")["taskArns"]

"""Issue 12's awslogs driver on real containers: a server and real `berth agent` processes on
the machine's Docker daemon (fault_helpers.FaultCluster), tasks whose containers log with
`logDriver: awslogs`, and their output read back as ECS users read it — boto3's
GetLogEvents and FilterLogEvents, the AWS CLI's `aws logs get-log-events` and
`filter-log-events`, and `berth logs`. The agent is killed -9 and the server restarted while
a container logs: nothing may be lost or stored twice. In non-blocking mode with a small
buffer and the server away, what is dropped is counted on the agent's /metrics."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fault_helpers import FaultCluster
from harness import REGION, aws_cli, berth_bin, boto3_client, wait_until


@pytest.fixture(scope="module")
def cluster(docker_ready: None, tmp_path_factory: pytest.TempPathFactory):
    running = FaultCluster(tmp_path_factory.mktemp("awslogs"), "logs", agents=1).start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def logs(cluster: FaultCluster):
    return boto3_client(cluster.server.url, cluster.server.credentials, service="logs")


def awslogs_task(cluster: FaultCluster, family: str, script: str, **options: str) -> str:
    """Registers `family` (one container `app` running `script` under awslogs with `options`)
    and runs a task of it; its ARN."""
    container = {
        "name": "app",
        "image": "busybox",
        "memory": 32,
        "command": ["sh", "-c", script],
        "logConfiguration": {"logDriver": "awslogs", "options": options},
    }
    cluster.ecs.register_task_definition(family=family, containerDefinitions=[container])
    out = cluster.ecs.run_task(cluster=cluster.name, taskDefinition=family)
    assert out["failures"] == [], out["failures"]
    return out["tasks"][0]["taskArn"]


def task_status(cluster: FaultCluster, arn: str) -> dict:
    return cluster.ecs.describe_tasks(cluster=cluster.name, tasks=[arn])["tasks"][0]


def all_events(logs: Any, group: str, stream: str) -> list[dict]:
    """Every event of the stream, oldest first, paging forward until the token repeats."""
    events: list[dict] = []
    token = None
    while True:
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        page = logs.get_log_events(**kwargs)
        events += page["events"]
        if page["nextForwardToken"] == token:
            return events
        token = page["nextForwardToken"]


def numbered(events: list[dict], prefix: str) -> list[int]:
    return [int(e["message"][len(prefix) :]) for e in events if e["message"].startswith(prefix)]


def aws(cluster: FaultCluster, *args: str) -> Any:
    cmd = [*aws_cli(), *args, "--endpoint-url", cluster.server.url, "--region", REGION, "--output", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=cluster.server.credentials.env(), timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def agent_metrics(cluster: FaultCluster) -> dict[str, float]:
    """The agent's /metrics, parsed by Prometheus' own parser: sample name -> value."""
    data_dir = cluster.agents[0].data_dir
    port = (data_dir / "metrics.port").read_text().strip()
    token = (data_dir / "metrics.token").read_text().strip()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        text = answer.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels:
                found[sample.name] = sample.value
    return found


def test_a_tasks_output_reaches_its_log_stream_in_order_and_reads_back_with_every_client(
    cluster: FaultCluster, logs: Any, unique
):
    group = f"/ecs/{unique('web')}"
    # stderr's line a second later: Docker stamps each stream as it copies it, so lines of
    # stdout and stderr written close together may be stored in either order.
    script = "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line$i; done; sleep 1; echo ERROR boom >&2; sleep 3600"
    arn = awslogs_task(
        cluster,
        unique("web"),
        script,
        **{"awslogs-group": group, "awslogs-stream-prefix": "web", "awslogs-create-group": "true", "awslogs-region": REGION},
    )
    stream = f"web/app/{arn.rsplit('/', 1)[-1]}"

    def complete() -> list[dict] | None:
        try:
            events = all_events(logs, group, stream)
        except logs.exceptions.ResourceNotFoundException:
            return None
        return events if len(events) >= 301 else None

    events = wait_until(complete, 60, "the task's 301 lines in CloudWatch Logs", diagnose=cluster.logs)
    assert numbered(events, "line") == list(range(1, 301))
    # stderr's line: once, wherever Docker stored it among stdout's (it stamps each stream as
    # it copies it, as the awslogs driver on ECS sees it too).
    assert [e["message"] for e in events].count("ERROR boom") == 1
    assert len(events) == 301, "nothing stored twice"
    # The group was created by the driver, and the stream is named as ECS names it.
    [found] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert found["logGroupName"] == group
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [stream]

    # FilterLogEvents with a term, from boto3 and from the AWS CLI.
    hits = logs.filter_log_events(logGroupName=group, filterPattern="ERROR")["events"]
    assert [e["message"] for e in hits] == ["ERROR boom"]
    cli = aws(cluster, "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", '"line30"')
    assert sorted(e["message"] for e in cli["events"]) == ["line30", "line300"]
    cli = aws(cluster, "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--limit", "5", "--start-from-head")
    assert [e["message"] for e in cli["events"]] == [f"line{i}" for i in range(1, 6)]

    # berth logs, as a person reads it.
    done = subprocess.run(
        [str(berth_bin()), "logs", arn, "--cluster", cluster.name, "--endpoint", cluster.server.url],
        capture_output=True,
        text=True,
        env=cluster.server.credentials.env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 301, done.stdout[-500:]
    assert lines[0].endswith(" app  line1"), lines[:2]
    assert sum(line.endswith(" app  ERROR boom") for line in lines) == 1
    cluster.ecs.stop_task(cluster=cluster.name, task=arn)


def test_a_group_that_does_not_exist_and_may_not_be_created_keeps_the_container_from_starting(
    cluster: FaultCluster, unique
):
    arn = awslogs_task(cluster, unique("nogroup"), "echo hi; sleep 3600", **{"awslogs-group": f"/missing/{unique('g')}"})
    task = wait_until(
        lambda: (t := task_status(cluster, arn))["lastStatus"] == "STOPPED" and t,
        60,
        "the task to stop",
        diagnose=cluster.logs,
    )
    assert task["stopCode"] == "TaskFailedToStart"
    [container] = task["containers"]
    assert "CannotStartContainerError" in container["reason"], container
    assert "ResourceNotFoundException" in container["reason"], container


def test_lines_survive_an_agent_killed_and_a_server_restarted_without_loss_or_duplicates(
    cluster: FaultCluster, logs: Any, unique
):
    group = f"/ecs/{unique('steady')}"
    count = 1500
    script = f"i=0; while [ $i -lt {count} ]; do i=$((i+1)); echo tick$i; sleep 0.01; done; sleep 3600"
    arn = awslogs_task(
        cluster,
        unique("steady"),
        script,
        **{"awslogs-group": group, "awslogs-stream-prefix": "s", "awslogs-create-group": "true", "mode": "blocking"},
    )
    stream = f"s/app/{arn.rsplit('/', 1)[-1]}"

    def stored() -> list[dict]:
        try:
            return all_events(logs, group, stream)
        except logs.exceptions.ResourceNotFoundException:
            return []

    wait_until(lambda: len(stored()) >= 100, 60, "the first lines", diagnose=cluster.logs)
    agent = cluster.agents[0]
    agent.kill9()
    time.sleep(2)
    agent.start()
    wait_until(lambda: len(stored()) >= 600, 60, "lines after the agent's restart", diagnose=cluster.logs)
    cluster.server.kill9()
    time.sleep(2)
    cluster.server.restart()
    events = wait_until(lambda: (e := stored()) and len(e) >= count and e, 120, "every line", diagnose=cluster.logs)
    time.sleep(2)
    events = stored()
    ticks = numbered(events, "tick")
    assert ticks == list(range(1, count + 1)), f"lost or repeated: {sorted(set(range(1, count + 1)) - set(ticks))[:10]} / {len(ticks)} stored"
    assert agent_metrics(cluster)["berth_agent_log_events_dropped_total"] == 0
    cluster.ecs.stop_task(cluster=cluster.name, task=arn)


def test_non_blocking_mode_drops_what_overflows_its_buffer_while_the_server_is_away_and_counts_it(
    cluster: FaultCluster, logs: Any, unique
):
    group = f"/ecs/{unique('lossy')}"
    count = 400
    # Waits for a go file, so the lines are written while the server is away.
    script = f"while [ ! -e /tmp/go ]; do sleep 0.1; done; i=0; while [ $i -lt {count} ]; do i=$((i+1)); echo drop$i-$(printf '%080d' 0); done; sleep 3600"
    arn = awslogs_task(
        cluster,
        unique("lossy"),
        script,
        **{"awslogs-group": group, "awslogs-stream-prefix": "n", "awslogs-create-group": "true", "mode": "non-blocking", "max-buffer-size": "4k"},
    )
    stream = f"n/app/{arn.rsplit('/', 1)[-1]}"
    task = wait_until(lambda: (t := task_status(cluster, arn))["lastStatus"] == "RUNNING" and t, 60, "the task to run", diagnose=cluster.logs)
    before = agent_metrics(cluster)["berth_agent_log_events_dropped_total"]
    cluster.server.kill9()
    try:
        container_id = task["containers"][0]["runtimeId"]
        subprocess.run(["docker", "exec", container_id, "touch", "/tmp/go"], check=True, timeout=30)
        wait_until(
            lambda: subprocess.run(["docker", "logs", container_id], capture_output=True, text=True).stdout.count("drop") >= count,
            30,
            "the container to write its lines",
        )
        time.sleep(2)
    finally:
        cluster.server.restart()

    def settled() -> tuple[list[dict], float] | None:
        try:
            events = all_events(logs, group, stream)
        except logs.exceptions.ResourceNotFoundException:
            return None
        dropped = agent_metrics(cluster)["berth_agent_log_events_dropped_total"] - before
        return (events, dropped) if len(events) + dropped == count else None

    events, dropped = wait_until(settled, 60, "every line stored or counted as dropped", diagnose=cluster.logs)
    assert dropped > 0, "a 4 KiB buffer cannot hold 400 lines of 90 bytes"
    assert len(events) > 0
    kept = [int(e["message"][4:].split("-")[0]) for e in events]
    assert kept == sorted(set(kept)), "what was kept is in order, once"
    cluster.ecs.stop_task(cluster=cluster.name, task=arn)


def test_a_datetime_format_groups_a_stack_trace_into_one_event(cluster: FaultCluster, logs: Any, unique):
    group = f"/ecs/{unique('trace')}"
    script = (
        "echo '2026-12-01 10:00:00 ERROR boom'; echo '  at a.b(C.java:1)'; echo '  at d.e(F.java:2)'; "
        "echo '2026-12-01 10:00:01 INFO next'; sleep 3600"
    )
    arn = awslogs_task(
        cluster,
        unique("trace"),
        script,
        **{
            "awslogs-group": group,
            "awslogs-stream-prefix": "t",
            "awslogs-create-group": "true",
            "awslogs-datetime-format": "%Y-%m-%d %H:%M:%S",
            "awslogs-force-flush-interval-seconds": "1",
        },
    )
    stream = f"t/app/{arn.rsplit('/', 1)[-1]}"

    def grouped() -> list[dict] | None:
        try:
            events = all_events(logs, group, stream)
        except logs.exceptions.ResourceNotFoundException:
            return None
        return events if len(events) >= 2 else None

    events = wait_until(grouped, 60, "two events", diagnose=cluster.logs)
    assert [e["message"] for e in events] == [
        "2026-12-01 10:00:00 ERROR boom\n  at a.b(C.java:1)\n  at d.e(F.java:2)",
        "2026-12-01 10:00:01 INFO next",
    ]
    cluster.ecs.stop_task(cluster=cluster.name, task=arn)

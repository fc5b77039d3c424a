"""Issue 3's Docker acceptance: tasks on real containers. `berth up` (server and agent in one
process) on the machine's Docker daemon, driven with the official AWS CLI and boto3 through the
recording proxy; what the tasks report is checked against what `docker` itself says."""

from __future__ import annotations

import http.client
import time
from datetime import datetime, timezone
from typing import Any

from helpers import expect_error
from harness import (
    LABEL_CLUSTER,
    LABEL_CONTAINER_INSTANCE,
    LABEL_CONTAINER_NAME,
    LABEL_TASK_ARN,
    BerthUp,
    containers_with,
    docker,
    status_is,
    wait_for_task,
)

CLUSTER = "default"
# A sleeper that leaves at once on SIGTERM (PID 1 ignores signals it has no handler for, so a
# bare `sleep` would hold every stop for the whole stopTimeout).
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
# Generous bounds: a local image, no pull; RUNNING takes well under a second on this machine.
START_TIMEOUT = 30
STOP_TIMEOUT = 30


def register(up: BerthUp, family: str, containers: list[dict], **extra: Any) -> str:
    """Registers a task definition and returns its ARN."""
    out = up.ecs.register_task_definition(family=family, containerDefinitions=containers, **extra)
    return out["taskDefinition"]["taskDefinitionArn"]


def run_one(up: BerthUp, task_definition: str) -> dict:
    """RunTask of one task with boto3; the placement must succeed."""
    out = up.ecs.run_task(cluster=CLUSTER, taskDefinition=task_definition)
    assert out["failures"] == [], f"RunTask did not place the task: {out['failures']}"
    assert len(out["tasks"]) == 1
    return out["tasks"][0]


def wait(up: BerthUp, task_arn: str, *statuses: str, timeout: float = START_TIMEOUT) -> dict:
    return wait_for_task(
        up.ecs, CLUSTER, task_arn, status_is(*statuses), timeout, f"task to be {'/'.join(statuses)}", up.server.log_tail
    )


def container(task: dict, name: str) -> dict:
    found = [c for c in task["containers"] if c["name"] == name]
    assert len(found) == 1, f"task has no single container {name}: {task['containers']}"
    return found[0]


def epoch(value: Any) -> float:
    """A timestamp as epoch seconds, whether boto3 (datetime) or the CLI (number) gave it."""
    return value.timestamp() if isinstance(value, datetime) else float(value)


def in_order(task: dict, *names: str) -> None:
    """The task's timestamps `names` are in that order (server and agent share this machine's
    clock; 5 ms of slack for rounding)."""
    times = [epoch(task[name]) for name in names]
    for (a, ta), (b, tb) in zip(zip(names, times), zip(names[1:], times[1:])):
        assert ta <= tb + 0.005, f"{a} ({ta}) comes after {b} ({tb})"


def docker_time(text: str) -> float:
    """Docker's RFC 3339 timestamps (nanoseconds, Z) as epoch seconds; the zero time is 0."""
    if text.startswith("0001-01-01"):
        return 0.0
    main, _, rest = text.rstrip("Z").partition(".")
    fraction = (rest[:6] or "0").ljust(6, "0")
    return datetime.fromisoformat(f"{main}.{fraction}").replace(tzinfo=timezone.utc).timestamp()


def test_run_task_reaches_running_with_a_labelled_container_and_bindings_that_match_docker_port(
    berth_up: BerthUp, unique
):
    family = unique("web")
    berth_up.cli(
        "register-task-definition",
        "--family",
        family,
        "--network-mode",
        "bridge",
        "--container-definitions",
        '[{"name":"web","image":"busybox","memory":64,"essential":true,'
        '"command":["httpd","-f","-p","80"],'
        '"portMappings":[{"containerPort":80,"hostPort":0,"protocol":"tcp"}]}]',
    )
    out = berth_up.cli("run-task", "--cluster", CLUSTER, "--task-definition", family).json
    assert out["failures"] == []
    accepted = out["tasks"][0]
    task_arn = accepted["taskArn"]
    assert accepted["lastStatus"] == "PROVISIONING"
    assert accepted["desiredStatus"] == "RUNNING"
    assert accepted["containerInstanceArn"] == berth_up.instance_arn

    task = wait(berth_up, task_arn, "RUNNING", "STOPPED")
    assert task["lastStatus"] == "RUNNING", f"the task stopped: {task.get('stoppedReason')}"
    # The official CLI's waiter agrees (it returns at once on a RUNNING task).
    berth_up.cli("wait", "tasks-running", "--cluster", CLUSTER, "--tasks", task_arn)
    described = berth_up.cli("describe-tasks", "--cluster", CLUSTER, "--tasks", task_arn).json
    assert described["failures"] == []
    task = described["tasks"][0]

    # docker ps shows exactly one running container for the task, with Berth's labels.
    ids = docker("ps", "-q", "--no-trunc", "--filter", f"label={LABEL_TASK_ARN}={task_arn}").split()
    assert len(ids) == 1, f"docker ps shows {len(ids)} containers for {task_arn}"
    [inspected] = containers_with(f"{LABEL_TASK_ARN}={task_arn}")
    labels = inspected["Config"]["Labels"]
    assert labels[LABEL_TASK_ARN] == task_arn
    assert labels[LABEL_CLUSTER] == CLUSTER
    assert labels[LABEL_CONTAINER_INSTANCE] == berth_up.instance_id
    assert labels[LABEL_CONTAINER_NAME] == "web"
    assert inspected["State"]["Running"] is True

    web = container(task, "web")
    assert web["lastStatus"] == "RUNNING"
    assert web["runtimeId"] == inspected["Id"] == ids[0]

    # networkBindings are exactly what `docker port` says, and the port really answers.
    published = set()
    for line in docker("port", inspected["Id"], "80/tcp").split():
        host, _, port = line.rpartition(":")
        published.add((host.strip("[]"), int(port)))
    assert published, "docker port shows no binding for 80/tcp"
    bindings = {(b["bindIP"], b["hostPort"]) for b in web["networkBindings"]}
    assert bindings == published, f"networkBindings {web['networkBindings']} != docker port {published}"
    for b in web["networkBindings"]:
        assert (b["containerPort"], b.get("protocol", "tcp")) == (80, "tcp")
        assert b["hostPort"] >= 1024, "hostPort 0 must become an ephemeral port"
    conn = http.client.HTTPConnection("127.0.0.1", web["networkBindings"][0]["hostPort"], timeout=10)
    try:
        conn.request("GET", "/")
        assert conn.getresponse().status in (200, 403, 404), "busybox httpd did not answer"
    finally:
        conn.close()

    # Lifecycle fields as ECS shows them on a RUNNING task.
    for name in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "version"):
        assert name in task, f"a RUNNING task lacks {name}"
    in_order(task, "createdAt", "pullStartedAt", "pullStoppedAt", "startedAt")
    assert task["version"] > accepted["version"], "version must grow as the task moves on"
    for name in ("stoppingAt", "stoppedAt", "executionStoppedAt", "stopCode", "stoppedReason"):
        assert name not in task, f"a RUNNING task shows {name}"
    assert task["desiredStatus"] == "RUNNING"
    assert task["containerInstanceArn"] == berth_up.instance_arn


def test_stop_task_ends_it_user_initiated_after_the_stop_timeout_with_sigkill(berth_up: BerthUp, unique):
    family = unique("stubborn")
    register(
        berth_up,
        family,
        [
            {
                "name": "stubborn",
                "image": "busybox",
                "memory": 32,
                "essential": True,
                "command": ["sh", "-c", "trap '' TERM; sleep 3600"],
                "stopTimeout": 5,
            }
        ],
    )
    task_arn = berth_up.cli("run-task", "--cluster", CLUSTER, "--task-definition", family).json["tasks"][0]["taskArn"]
    running = wait(berth_up, task_arn, "RUNNING", "STOPPED")
    assert running["lastStatus"] == "RUNNING", running.get("stoppedReason")

    reason = "berth test: stopping a task that ignores SIGTERM"
    asked = time.monotonic()
    stopped = berth_up.cli("stop-task", "--cluster", CLUSTER, "--task", task_arn, "--reason", reason).json["task"]
    assert stopped["taskArn"] == task_arn
    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated"

    task = wait(berth_up, task_arn, "STOPPED", timeout=5 + STOP_TIMEOUT)
    took = time.monotonic() - asked
    assert took >= 5, f"the task was STOPPED after {took:.1f}s: SIGKILL came before stopTimeout 5"
    assert took < 5 + 10, f"the task took {took:.1f}s to stop with stopTimeout 5"
    berth_up.cli("wait", "tasks-stopped", "--cluster", CLUSTER, "--tasks", task_arn)

    assert task["desiredStatus"] == "STOPPED"
    assert task["stopCode"] == "UserInitiated"
    assert task["stoppedReason"] == reason
    for name in ("stoppingAt", "stoppedAt", "executionStoppedAt"):
        assert name in task, f"a STOPPED task lacks {name}"
    in_order(task, "startedAt", "stoppingAt", "executionStoppedAt", "stoppedAt")
    assert epoch(task["executionStoppedAt"]) - epoch(task["stoppingAt"]) >= 4.5, "SIGKILL came before the stop timeout"
    stubborn = container(task, "stubborn")
    assert stubborn["lastStatus"] == "STOPPED"
    assert stubborn["exitCode"] == 137, "SIGKILL after the stop timeout exits 137"
    [inspected] = containers_with(f"{LABEL_TASK_ARN}={task_arn}")
    assert inspected["State"]["Running"] is False
    assert inspected["State"]["ExitCode"] == 137


def test_a_task_whose_essential_container_exits_3_stops_with_essential_container_exited(berth_up: BerthUp, unique):
    family = unique("exit3")
    register(
        berth_up,
        family,
        [{"name": "main", "image": "busybox", "memory": 32, "essential": True, "command": ["sh", "-c", "exit 3"]}],
    )
    task_arn = run_one(berth_up, family)["taskArn"]
    task = wait(berth_up, task_arn, "STOPPED", timeout=STOP_TIMEOUT)
    assert task["stopCode"] == "EssentialContainerExited", task.get("stoppedReason")
    assert task["desiredStatus"] == "STOPPED"
    assert "Essential container in task exited" in task["stoppedReason"]
    main = container(task, "main")
    assert main["lastStatus"] == "STOPPED"
    assert main["exitCode"] == 3
    for name in ("stoppedAt", "executionStoppedAt"):
        assert name in task, f"a STOPPED task lacks {name}"
    [inspected] = containers_with(f"{LABEL_TASK_ARN}={task_arn}")
    assert inspected["State"]["ExitCode"] == 3


def test_a_stopped_task_stays_describable_and_listed_under_the_default_retention(berth_up: BerthUp, unique):
    family = unique("brief")
    register(berth_up, family, [{"name": "main", "image": "busybox", "memory": 32, "command": ["true"]}])
    task_arn = run_one(berth_up, family)["taskArn"]
    wait(berth_up, task_arn, "STOPPED", timeout=STOP_TIMEOUT)
    described = berth_up.cli("describe-tasks", "--cluster", CLUSTER, "--tasks", task_arn).json
    assert described["failures"] == []
    assert described["tasks"][0]["lastStatus"] == "STOPPED"
    assert described["tasks"][0]["containers"][0]["exitCode"] == 0
    listed = berth_up.cli("list-tasks", "--cluster", CLUSTER, "--desired-status", "STOPPED", "--family", family).json
    assert listed["taskArns"] == [task_arn]
    assert berth_up.ecs.list_tasks(cluster=CLUSTER, family=family)["taskArns"] == []


def test_a_non_essential_container_exiting_leaves_the_task_running(berth_up: BerthUp, unique):
    family = unique("sidecar")
    register(
        berth_up,
        family,
        [
            {"name": "main", "image": "busybox", "memory": 32, "essential": True, "command": SLEEPER},
            {
                "name": "once",
                "image": "busybox",
                "memory": 32,
                "essential": False,
                "command": ["sh", "-c", "sleep 1; exit 0"],
            },
        ],
    )
    task_arn = run_one(berth_up, family)["taskArn"]

    def once_stopped(task: dict) -> bool:
        return task["lastStatus"] == "STOPPED" or container(task, "once")["lastStatus"] == "STOPPED"

    task = wait_for_task(
        berth_up.ecs, CLUSTER, task_arn, once_stopped, START_TIMEOUT, "the non-essential container to stop"
    )
    once = container(task, "once")
    assert once["exitCode"] == 0
    # The task stays RUNNING well after its non-essential container is gone.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        task = berth_up.ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
        assert (task["lastStatus"], task["desiredStatus"]) == ("RUNNING", "RUNNING"), (
            f"a non-essential container's exit stopped the task: {task.get('stopCode')} {task.get('stoppedReason')}"
        )
        assert container(task, "main")["lastStatus"] == "RUNNING"
        time.sleep(0.5)
    assert container(task, "once")["lastStatus"] == "STOPPED"
    assert container(task, "once")["exitCode"] == 0
    inspected = containers_with(f"{LABEL_TASK_ARN}={task_arn}")
    states = {c["Config"]["Labels"][LABEL_CONTAINER_NAME]: c["State"] for c in inspected}
    assert states["main"]["Running"] is True
    assert (states["once"]["Running"], states["once"]["ExitCode"]) == (False, 0)


def test_depends_on_healthy_holds_the_dependent_container_until_the_health_check_passes(berth_up: BerthUp, unique):
    family = unique("healthy")
    register(
        berth_up,
        family,
        [
            {
                "name": "db",
                "image": "busybox",
                "memory": 32,
                "essential": True,
                "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 4; touch /tmp/ready; sleep 3600 & wait"],
                "healthCheck": {
                    "command": ["CMD-SHELL", "test -f /tmp/ready"],
                    "interval": 5,
                    "timeout": 2,
                    "retries": 3,
                },
            },
            {
                "name": "app",
                "image": "busybox",
                "memory": 32,
                "essential": True,
                "command": SLEEPER,
                "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
            },
        ],
    )
    task_arn = run_one(berth_up, family)["taskArn"]
    label = f"{LABEL_TASK_ARN}={task_arn}"

    # Watch Docker itself: while db is not healthy, app must not have started, nor the task
    # be RUNNING.
    deadline = time.monotonic() + 30
    seen_unhealthy_db = False
    while True:
        by_name = {c["Config"]["Labels"][LABEL_CONTAINER_NAME]: c for c in containers_with(label)}
        db = by_name.get("db")
        health = ((db or {}).get("State", {}).get("Health") or {}).get("Status")
        if health == "healthy":
            break
        app = by_name.get("app")
        if db is not None:
            seen_unhealthy_db = True
            assert app is None or docker_time(app["State"]["StartedAt"]) == 0.0, (
                f"app started while db was {health}"
            )
            task = berth_up.ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
            assert task["lastStatus"] != "RUNNING", f"the task was RUNNING while db was {health}"
            assert task["lastStatus"] != "STOPPED", f"the task stopped: {task.get('stoppedReason')}"
        assert time.monotonic() < deadline, f"db never became healthy (last: {health})"
        time.sleep(0.3)
    assert seen_unhealthy_db, "db was healthy at once: the test saw nothing being held"

    task = wait(berth_up, task_arn, "RUNNING", "STOPPED")
    assert task["lastStatus"] == "RUNNING", task.get("stoppedReason")
    by_name = {c["Config"]["Labels"][LABEL_CONTAINER_NAME]: c for c in containers_with(label)}
    passed = [h for h in by_name["db"]["State"]["Health"]["Log"] if h["ExitCode"] == 0]
    assert passed, "docker logged no passing health check of db"
    first_pass = min(docker_time(h["End"]) for h in passed)
    app_started = docker_time(by_name["app"]["State"]["StartedAt"])
    assert app_started >= first_pass, (
        f"app started {first_pass - app_started:.2f}s before db's first passing health check"
    )
    db_started = docker_time(by_name["db"]["State"]["StartedAt"])
    assert app_started - db_started >= 4, "app started before db could have been healthy"

    task = wait_for_task(
        berth_up.ecs,
        CLUSTER,
        task_arn,
        lambda t: t.get("healthStatus") == "HEALTHY" and container(t, "db").get("healthStatus") == "HEALTHY",
        15,
        "the task and db to show healthStatus HEALTHY",
    )
    assert task["lastStatus"] == "RUNNING"
    assert container(task, "app")["lastStatus"] == "RUNNING"
    assert container(task, "app")["runtimeId"] == by_name["app"]["Id"]


def test_an_image_that_does_not_exist_stops_the_task_as_failed_to_start_naming_the_image(berth_up: BerthUp, unique):
    family = unique("noimage")
    image = f"berth-test/no-such-image-{unique.tag}:latest"
    register(berth_up, family, [{"name": "main", "image": image, "memory": 32, "essential": True}])
    task_arn = run_one(berth_up, family)["taskArn"]
    task = wait(berth_up, task_arn, "STOPPED", timeout=60)
    assert task["stopCode"] == "TaskFailedToStart", task.get("stoppedReason")
    assert task["desiredStatus"] == "STOPPED"
    assert image in task["stoppedReason"] or image.rsplit(":", 1)[0] in task["stoppedReason"], (
        f"stoppedReason does not name the image: {task['stoppedReason']!r}"
    )
    main = container(task, "main")
    assert main["lastStatus"] == "STOPPED"
    assert image.rsplit(":", 1)[0] in main.get("reason", ""), f"the container's reason does not name the image: {main}"
    assert "startedAt" not in task, "a task that never started shows startedAt"
    assert containers_with(f"{LABEL_TASK_ARN}={task_arn}") == []


def test_a_task_needing_more_memory_than_any_instance_is_a_resource_memory_failure(berth_up: BerthUp, unique):
    family = unique("huge")
    register(berth_up, family, [{"name": "main", "image": "busybox", "memory": 4_000_000, "command": SLEEPER}])
    out = berth_up.cli("run-task", "--cluster", CLUSTER, "--task-definition", family).json
    assert out["tasks"] == []
    assert out["failures"] == [{"arn": berth_up.instance_arn, "reason": "RESOURCE:MEMORY"}]
    assert berth_up.ecs.list_tasks(cluster=CLUSTER, family=family, desiredStatus="RUNNING")["taskArns"] == []


def test_run_task_on_an_unknown_cluster_is_cluster_not_found(berth_up: BerthUp, unique):
    family = unique("lost")
    register(berth_up, family, [{"name": "main", "image": "busybox", "memory": 32}])
    expect_error("ClusterNotFoundException", berth_up.ecs.run_task, cluster=unique("nowhere"), taskDefinition=family)
    out = berth_up.cli(
        "run-task", "--cluster", unique("nowhere"), "--task-definition", family, check=False
    )
    assert out.returncode != 0 and "ClusterNotFoundException" in out.stderr, str(out)


def test_run_task_of_an_inactive_task_definition_is_a_client_exception(berth_up: BerthUp, unique):
    family = unique("retired")
    arn = register(berth_up, family, [{"name": "main", "image": "busybox", "memory": 32}])
    berth_up.ecs.deregister_task_definition(taskDefinition=arn)
    expect_error("ClientException", berth_up.ecs.run_task, cluster=CLUSTER, taskDefinition=arn)
    expect_error("ClientException", berth_up.ecs.run_task, cluster=CLUSTER, taskDefinition=f"{family}:1")
    assert berth_up.ecs.list_tasks(cluster=CLUSTER, family=family)["taskArns"] == []

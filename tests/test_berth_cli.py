"""Issue 17's human commands: `berth ps`, `berth services`, `berth instances`, `berth events`,
`berth logs`, `berth run`, `berth deploy`/`scale`, as a person runs them after `berth up` (keys
and endpoint from the AWS environment), checked against what boto3 describes; `--output json`
gives the API's objects themselves (a JSON array, or JSON Lines for what comes as it happens)."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time

from pathlib import Path

from harness import BerthUp, berth_bin, boto3_client, wait_for_task, wait_until, status_is

CLUSTER = "default"


def berth(up: BerthUp, *args: str) -> str:
    env = {**up.server.credentials.env(), "AWS_ENDPOINT_URL": up.server.url, "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run([str(berth_bin()), *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done
    return done.stdout


def rows(text: str) -> list[list[str]]:
    lines = text.splitlines()
    return [line.split() for line in lines[1:]]


def test_ps_services_and_instances_show_the_cluster(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, service, failing = unique("cli-web"), unique("cli-web"), unique("cli-fails")
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "web", "image": "busybox", "memory": 32, "command": ["httpd", "-f", "-p", "80"],
                               "portMappings": [{"containerPort": 80, "hostPort": 0}]}],
    )
    ecs.register_task_definition(family=failing, containerDefinitions=[{"name": "x", "image": "busybox", "memory": 16, "command": ["false"]}])
    ecs.create_service(cluster=CLUSTER, serviceName=service, taskDefinition=family, desiredCount=2)
    try:
        ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=[service], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        stopped = ecs.run_task(cluster=CLUSTER, taskDefinition=failing)["tasks"][0]["taskArn"]
        wait_for_task(ecs, CLUSTER, stopped, status_is("STOPPED"), 60, "the failing task to stop")
        service_tasks = ecs.list_tasks(cluster=CLUSTER, serviceName=service)["taskArns"]
        described = ecs.describe_tasks(cluster=CLUSTER, tasks=service_tasks)["tasks"]

        # ps: the service's two tasks with their host ports; the stopped one only with -a.
        table = berth(berth_up, "ps", "--service", service)
        assert table.splitlines()[0].split() == ["TASK", "DEFINITION", "STATUS", "HEALTH", "PORTS", "AGE", "STOPPED"]
        by_id = {r[0]: r for r in rows(table)}
        assert set(by_id) == {t["taskArn"].rsplit("/", 1)[-1] for t in described}, table
        for task in described:
            row = by_id[task["taskArn"].rsplit("/", 1)[-1]]
            assert row[1] == f"{family}:1" and row[2] == "RUNNING", row
            port = task["containers"][0]["networkBindings"][0]["hostPort"]
            assert f":{port}->80/tcp" in row[4], row
        stopped_id = stopped.rsplit("/", 1)[-1]
        assert stopped_id not in berth(berth_up, "ps")
        [line] = [line for line in berth(berth_up, "ps", "-a").splitlines() if line.startswith(stopped_id)]
        assert "STOPPED" in line and "EssentialContainerExited: Essential container in task exited" in line, line

        # services: counts and rollout state.
        [row] = [r for r in rows(berth(berth_up, "services")) if r[0] == service]
        assert row[1:7] == ["ACTIVE", "2", "2", "0", f"{family}:1", "COMPLETED"], row

        # instances: berth up's one instance, connected, with what DescribeContainerInstances says.
        [arn] = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
        [instance] = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])["containerInstances"]
        [row] = rows(berth(berth_up, "instances"))
        memory = {r["name"]: r["integerValue"] for r in instance["remainingResources"] if r["type"] == "INTEGER"}["MEMORY"]
        assert row[0] == arn.rsplit("/", 1)[-1] and row[1:3] == ["ACTIVE", "true"], row
        assert row[6].startswith(f"{memory}/"), (row, memory)

        # --output json: the objects DescribeTasks gives.
        listed = json.loads(berth(berth_up, "ps", "--service", service, "--output", "json"))
        assert sorted(t["taskArn"] for t in listed) == sorted(service_tasks)
        assert all(t["lastStatus"] == "RUNNING" and t["containers"][0]["name"] == "web" for t in listed)
    finally:
        ecs.update_service(cluster=CLUSTER, service=service, desiredCount=0)
        ecs.delete_service(cluster=CLUSTER, service=service, force=True)


def test_a_command_without_keys_says_what_to_do(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    done = subprocess.run([str(berth_bin()), "ps"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "AWS_ACCESS_KEY_ID" in done.stderr and "credentials" in done.stderr, done.stderr


def is_task_line(line: str) -> bool:
    """A task state change in `berth events` text (`TIME  task ID STATUS[: reason]`)."""
    return line.split("  ", 1)[1].startswith("task ")


def test_inspect_shows_any_resource_and_events_follow_a_service(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, service = unique("cli-events"), unique("cli-events")
    ecs.register_task_definition(family=family, containerDefinitions=[{"name": "web", "image": "busybox", "memory": 16, "command": ["sleep", "3600"]}])
    arn = ecs.create_service(cluster=CLUSTER, serviceName=service, taskDefinition=family, desiredCount=1)["service"]["serviceArn"]
    env = {**berth_up.server.credentials.env(), "AWS_ENDPOINT_URL": berth_up.server.url, "AWS_DEFAULT_REGION": "us-east-1"}
    follower = None
    try:
        ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=[service], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        # inspect: the service, one of its tasks, the task definition by family:revision.
        shown = json.loads(berth(berth_up, "inspect", arn))
        assert shown["serviceArn"] == arn and shown["desiredCount"] == 1
        [task] = ecs.list_tasks(cluster=CLUSTER, serviceName=service)["taskArns"]
        assert json.loads(berth(berth_up, "inspect", task))["taskArn"] == task
        assert json.loads(berth(berth_up, "inspect", f"{family}:1"))["family"] == family
        missing = subprocess.run([str(berth_bin()), "inspect", task[:-4] + "0000"], env=env, capture_output=True, text=True, timeout=30)
        assert missing.returncode != 0 and "MISSING" in missing.stderr, missing

        # events: what DescribeServices shows, oldest first, and its tasks' state changes;
        # --follow prints new ones.
        printed = berth(berth_up, "events", "--service", service).splitlines()
        messages = [e["message"] for e in reversed(ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]["events"])]
        assert [line.split("  ", 1)[1] for line in printed if not is_task_line(line)] == messages
        assert f"task {task.rsplit('/', 1)[1]} RUNNING" in [line.split("  ", 1)[1] for line in printed], printed
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line.split("  ", 1)[0]) for line in printed), printed
        # --output json: JSON Lines, each the ServiceEvent object DescribeServices gives, and
        # each task change.
        lines = [json.loads(line) for line in berth(berth_up, "events", "--service", service, "--output", "json").splitlines()]
        objects = [o for o in lines if "taskArn" not in o]
        assert {"taskArn": task, "lastStatus": "RUNNING"}.items() <= next(o for o in lines if "taskArn" in o).items(), lines
        events = list(reversed(ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]["events"]))
        assert [(o["id"], o["message"]) for o in objects] == [(e["id"], e["message"]) for e in events], objects
        assert all(abs(o["createdAt"] - e["createdAt"].timestamp()) < 0.001 for o, e in zip(objects, events)), objects
        assert json.loads(berth(berth_up, "inspect", arn, "--output", "json")) == shown
        follower = subprocess.Popen([str(berth_bin()), "events", "--service", service, "-f"], env=env, stdout=subprocess.PIPE)
        before = ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]["events"]
        time.sleep(1)
        ecs.update_service(cluster=CLUSTER, service=service, desiredCount=2)
        ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=[service], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        after = ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]["events"]
        new = [e["message"] for e in reversed(after) if e["id"] not in {b["id"] for b in before}]
        assert new, "scaling made no event"
        printed_bytes = b""
        deadline = time.monotonic() + 30

        def event_lines() -> list[str]:
            return [line for line in printed_bytes.decode().splitlines() if not is_task_line(line)]

        def running_tasks() -> int:
            return sum(1 for line in printed_bytes.decode().splitlines() if is_task_line(line) and line.endswith(" RUNNING"))

        while len(event_lines()) < len(after) or running_tasks() < 2:
            left = deadline - time.monotonic()
            assert left > 0, f"--follow printed only {printed_bytes!r}"
            ready, _, _ = select.select([follower.stdout], [], [], left)
            if ready:
                printed_bytes += os.read(follower.stdout.fileno(), 65536)
        lines = event_lines()
        assert [line.split("  ", 1)[1] for line in lines[-len(new):]] == new, (lines, new)
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
        ecs.update_service(cluster=CLUSTER, service=service, desiredCount=0)
        ecs.delete_service(cluster=CLUSTER, service=service, force=True)


def berth_exit(up: BerthUp, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**up.server.credentials.env(), "AWS_ENDPOINT_URL": up.server.url, "AWS_DEFAULT_REGION": "us-east-1"}
    return subprocess.run([str(berth_bin()), *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_run_starts_an_image_like_docker_run_and_says_where_it_listens(berth_up: BerthUp, unique):
    name = unique("runweb")
    done = berth_exit(berth_up, "run", "busybox", "--name", name, "-p", "80", "-e", "GREETING=hi", "--", "httpd", "-f", "-p", "80")
    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    assert any(line.endswith("  RUNNING") for line in lines), done.stdout
    bound = [line for line in lines if "container port 80/tcp at" in line]
    assert bound, done.stdout
    task_id = bound[0].split()[0]
    task = berth_up.ecs.describe_tasks(cluster=CLUSTER, tasks=[task_id])["tasks"][0]
    assert task["taskDefinitionArn"].endswith(f"task-definition/{name}:1")
    # One line per binding (Docker may give IPv4 and IPv6 different host ports).
    ports = {f":{b['hostPort']}" for b in task["containers"][0]["networkBindings"]}
    assert {line[line.rindex(":"):] for line in bound} == ports, (bound, ports)
    definition = berth_up.ecs.describe_task_definition(taskDefinition=name)["taskDefinition"]
    [container] = definition["containerDefinitions"]
    assert container["environment"] == [{"name": "GREETING", "value": "hi"}]
    assert container["command"] == ["httpd", "-f", "-p", "80"]
    assert container["memoryReservation"] == 128
    berth_up.ecs.stop_task(cluster=CLUSTER, task=task_id)

    # A task that cannot run: exit 1, and why.
    done = berth_exit(berth_up, "run", "busybox", "--name", unique("runfail"), "--", "false")
    assert done.returncode == 1, done
    assert "stopped: Essential container in task exited" in done.stdout, done.stdout
    # --output json: only the tasks DescribeTasks gives, as one array, once they run.
    done = berth_exit(berth_up, "run", "busybox", "--name", name, "-p", "80", "--output", "json", "--", "httpd", "-f", "-p", "80")
    assert done.returncode == 0, done
    [task] = json.loads(done.stdout)
    assert task["lastStatus"] == "RUNNING" and task["taskDefinitionArn"].endswith(f"task-definition/{name}:2"), task
    [described] = berth_up.ecs.describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"]
    bindings = task["containers"][0]["networkBindings"]
    assert bindings and all(b["containerPort"] == 80 for b in bindings), task
    assert bindings == described["containers"][0]["networkBindings"]
    berth_up.ecs.stop_task(cluster=CLUSTER, task=task["taskArn"])
    # ... and a task that stops: exit 1, why on stderr, the stopped task in the JSON.
    done = berth_exit(berth_up, "run", "busybox", "--name", unique("runfail"), "--output", "json", "--", "false")
    assert done.returncode == 1, done
    assert "stopped: Essential container in task exited" in done.stderr, done
    [task] = json.loads(done.stdout)
    assert task["lastStatus"] == "STOPPED" and task["stoppedReason"] == "Essential container in task exited", task
    # A bad -p says what to write instead.
    done = berth_exit(berth_up, "run", "busybox", "-p", "web")
    assert done.returncode != 0 and "is not a port" in done.stderr, done


# An empty tar archive: an image with no files at all.
_EMPTY_TAR = bytes(10240)


def test_deploy_and_scale_follow_the_rollout_and_exit_with_its_outcome(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, service = unique("dep"), unique("dep")
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "app", "image": "busybox", "memory": 16, "command": ["sleep", "3600"]}],
    )
    ecs.create_service(
        cluster=CLUSTER,
        serviceName=service,
        taskDefinition=family,
        desiredCount=1,
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
    )
    try:
        ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=[service], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        done = berth_exit(berth_up, "scale", service, "2")
        assert done.returncode == 0, done
        assert done.stdout.strip().endswith(f"deployment of {service} completed"), done.stdout
        assert "desired   2  pending   0  running   2" in done.stdout, done.stdout
        assert len(ecs.list_tasks(cluster=CLUSTER, serviceName=service)["taskArns"]) == 2

        # A new image (the same one under another tag) rolls out: a new revision, exit 0.
        subprocess.run(["docker", "tag", "busybox:latest", f"busybox:{service}"], check=True)
        done = berth_exit(berth_up, "deploy", service, "--image", f"app=busybox:{service}")
        assert done.returncode == 0, done
        assert f"registered {family}:2" in done.stdout
        assert f"{family}:2" in done.stdout and "COMPLETED" in done.stdout, done.stdout
        described = ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]
        assert described["taskDefinition"].endswith(f"{family}:2")

        # An image without the command's program fails every task; the breaker rolls back: exit 1.
        empty = f"berth-test/empty:{service}"
        subprocess.run(["docker", "import", "-", empty], input=_EMPTY_TAR, check=True, capture_output=True)
        done = berth_exit(berth_up, "deploy", service, "--image", f"app={empty}", "--timeout", "4m", timeout=300)
        assert done.returncode == 1, done
        assert "failed and was rolled back" in done.stdout.splitlines()[-1], done.stdout
        assert "event:" in done.stdout, "the service's events are shown as they come"
    finally:
        ecs.delete_service(cluster=CLUSTER, service=service, force=True)
        subprocess.run(["docker", "rmi", f"busybox:{service}", f"berth-test/empty:{service}"], capture_output=True)


def test_scale_with_json_output_prints_progress_lines_and_the_outcome(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, service = unique("jscale"), unique("jscale")
    ecs.register_task_definition(family=family, containerDefinitions=[{"name": "app", "image": "busybox", "memory": 16, "command": ["sleep", "3600"]}])
    ecs.create_service(cluster=CLUSTER, serviceName=service, taskDefinition=family, desiredCount=0)
    try:
        done = berth_exit(berth_up, "scale", service, "1", "--output", "json", timeout=120)
        assert done.returncode == 0, done
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        *progress, last = lines
        assert progress and all(set(p) == {"deployments", "events"} for p in progress), lines
        assert all(d["status"] in ("PRIMARY", "ACTIVE") and "runningCount" in d for p in progress for d in p["deployments"]), lines
        # New events are ServiceEvent objects (the start may come before the first look, so it
        # is only sure to be in the final service's events).
        assert all(set(e) == {"id", "createdAt", "message"} for p in progress for e in p["events"]), lines
        assert any("has started 1 tasks" in e["message"] for e in last["service"]["events"]), last
        assert last["outcome"] == "completed", last
        assert last["service"]["serviceName"] == service and last["service"]["desiredCount"] == 1, last
        assert last["service"]["runningCount"] == 1 and last["service"]["deployments"][0]["rolloutState"] == "COMPLETED", last
    finally:
        ecs.delete_service(cluster=CLUSTER, service=service, force=True)


def test_logs_with_json_output_are_the_log_events_of_cloudwatch(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, group = unique("jlogs"), f"/ecs/{unique('jlogs')}"
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{
            "name": "app", "image": "busybox", "memory": 16, "command": ["sh", "-c", "echo one; echo two; sleep 3600"],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-stream-prefix": "j", "awslogs-create-group": "true", "awslogs-region": "us-east-1"}},
        }],
    )
    arn = ecs.run_task(cluster=CLUSTER, taskDefinition=family)["tasks"][0]["taskArn"]
    try:
        def two_lines() -> list[dict] | None:
            done = berth_exit(berth_up, "logs", arn, "--output", "json", timeout=30)
            assert done.returncode == 0, done
            lines = [json.loads(line) for line in done.stdout.splitlines()]
            return lines if len(lines) >= 2 else None

        lines = wait_until(two_lines, 60, "the task's two lines through `berth logs --output json`")
        assert [line["message"] for line in lines] == ["one", "two"], lines
        stream = f"j/app/{arn.rsplit('/', 1)[-1]}"
        logs = boto3_client(berth_up.server.url, berth_up.server.credentials, service="logs")
        stored = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
        assert [(line["logStreamName"], line["timestamp"], line["message"], line["ingestionTime"]) for line in lines] == [
            (stream, e["timestamp"], e["message"], e["ingestionTime"]) for e in stored
        ], (lines, stored)
    finally:
        ecs.stop_task(cluster=CLUSTER, task=arn)


def test_compose_convert_with_json_output_is_the_ecs_inputs():
    example = Path(__file__).resolve().parent.parent / "examples" / "compose" / "compose.yaml"
    done = subprocess.run([str(berth_bin()), "compose", "convert", "-f", str(example), "--output", "json"],
                          cwd=example.parent, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done
    plan = json.loads(done.stdout)
    assert plan["project"] == "hello"
    assert [t["family"] for t in plan["taskDefinitions"]] == ["hello-api", "hello-web"], "dependencies first"
    assert [s["serviceName"] for s in plan["services"]] == ["hello-api", "hello-web"]
    assert all(s["cluster"] == CLUSTER and s["taskDefinition"] for s in plan["services"]), plan["services"]
    assert plan["taskDefinitions"][1]["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 8080
    assert plan["unsupported"] == []

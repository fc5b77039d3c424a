"""Issue 17's first human commands: `berth ps`, `berth services`, `berth instances`, as a person
runs them after `berth up` (keys and endpoint from the AWS environment), checked against what
boto3 describes; `--output json` gives the described objects themselves."""

from __future__ import annotations

import json
import subprocess

from harness import BerthUp, berth_bin, wait_for_task, status_is

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

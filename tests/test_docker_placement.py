"""Issue 4's multi-agent acceptance: three `berth agent`s (zone=a, b, c) on one `berth server`
and the machine's one Docker daemon; placement strategies and constraints through the official
AWS CLI, checked against where the containers really run."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Iterator

import pytest

from harness import (
    LABEL_CLUSTER,
    LABEL_CONTAINER_INSTANCE,
    LABEL_TASK_ARN,
    Berth,
    BerthAgent,
    HarnessError,
    containers_with,
    remove_containers,
    wait_until,
)

ZONES = ("a", "b", "c")
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


class Cluster:
    """A cluster with one agent per zone; `zone_of` maps instance ARN -> zone."""

    def __init__(self, berth: Berth, name: str, agents: list[BerthAgent]) -> None:
        self.berth = berth
        self.name = name
        self.agents = agents
        self.zone_of: dict[str, str] = {}

    def instance(self, zone: str) -> str:
        return next(arn for arn, z in self.zone_of.items() if z == zone)

    def logs(self) -> str:
        return "\n".join(f"--- agent {a.attributes}:\n{a.log_tail(15)}" for a in self.agents)


@pytest.fixture(scope="module")
def cluster(berth: Berth, docker_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh cluster with three agents on the module's server, zone=a/b/c. Teardown stops the
    agents and removes every container of the cluster, whatever happened."""
    name = f"berth-place-{uuid.uuid4().hex[:8]}"
    berth.ecs.create_cluster(clusterName=name)
    root = tmp_path_factory.mktemp("agents")
    agents = [
        BerthAgent(berth.server, name, root / f"agent-{zone}", attributes=[f"zone={zone}"]) for zone in ZONES
    ]
    errors: list[str] = []
    try:
        for agent in agents:
            agent.start()
        result = Cluster(berth, name, agents)

        def all_connected() -> bool:
            arns = berth.ecs.list_container_instances(cluster=name)["containerInstanceArns"]
            if len(arns) != len(ZONES):
                return False
            described = berth.ecs.describe_container_instances(cluster=name, containerInstances=arns)
            instances = described["containerInstances"]
            if not all(i.get("agentConnected") and i["status"] == "ACTIVE" for i in instances):
                return False
            for i in instances:
                zone = {a["name"]: a.get("value") for a in i.get("attributes", [])}.get("zone")
                result.zone_of[i["containerInstanceArn"]] = zone
            return True

        wait_until(all_connected, 30, "three agents to register and connect", diagnose=result.logs)
        assert sorted(result.zone_of.values()) == list(ZONES), f"zone attributes: {result.zone_of}"
        yield result
    finally:
        for agent in agents:
            try:
                agent.stop()
            except HarnessError as e:
                errors.append(str(e))
        remove_containers(f"{LABEL_CLUSTER}={name}")
    if errors:
        raise HarnessError("\n".join(errors))


def register(cluster: Cluster, family: str, memory: int = 32) -> None:
    cluster.berth.ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "main", "image": "busybox", "memory": memory, "command": SLEEPER}],
    )


def wait_all_running(cluster: Cluster, task_arns: list[str]) -> list[dict]:
    last: list[dict] = []

    def probe() -> bool:
        nonlocal last
        last = cluster.berth.ecs.describe_tasks(cluster=cluster.name, tasks=task_arns)["tasks"]
        stopped = [t for t in last if t["lastStatus"] == "STOPPED"]
        assert not stopped, f"tasks stopped: {[t.get('stoppedReason') for t in stopped]}"
        return len(last) == len(task_arns) and all(t["lastStatus"] == "RUNNING" for t in last)

    wait_until(probe, 30, f"{len(task_arns)} tasks to be RUNNING", diagnose=cluster.logs)
    return last


def stop_all(cluster: Cluster, task_arns: list[str]) -> None:
    for arn in task_arns:
        cluster.berth.ecs.stop_task(cluster=cluster.name, task=arn, reason="berth test cleanup")


def test_run_task_count_6_spread_over_attribute_zone_puts_2_tasks_in_each_zone(cluster: Cluster, unique):
    family = unique("spread")
    register(cluster, family)
    out = cluster.berth.cli(
        "run-task",
        "--cluster",
        cluster.name,
        "--task-definition",
        family,
        "--count",
        "6",
        "--placement-strategy",
        "type=spread,field=attribute:zone",
    ).json
    arns = [t["taskArn"] for t in out["tasks"]]
    try:
        assert out["failures"] == []
        assert len(out["tasks"]) == 6
        per_zone = Counter(cluster.zone_of[t["containerInstanceArn"]] for t in out["tasks"])
        assert per_zone == Counter({"a": 2, "b": 2, "c": 2}), f"spread over zone gave {dict(per_zone)}"
        tasks = wait_all_running(cluster, arns)
        # The containers really run on the agents the tasks were placed on.
        for task in tasks:
            [inspected] = containers_with(f"{LABEL_TASK_ARN}={task['taskArn']}")
            instance_id = task["containerInstanceArn"].rsplit("/", 1)[-1]
            assert inspected["Config"]["Labels"][LABEL_CONTAINER_INSTANCE] == instance_id
            assert inspected["State"]["Running"] is True
    finally:
        stop_all(cluster, arns)


def test_member_of_attribute_zone_b_puts_every_task_on_the_zone_b_instance(cluster: Cluster, unique):
    family = unique("only-b")
    register(cluster, family)
    out = cluster.berth.cli(
        "run-task",
        "--cluster",
        cluster.name,
        "--task-definition",
        family,
        "--count",
        "3",
        "--placement-constraints",
        'type=memberOf,expression="attribute:zone == b"',
    ).json
    arns = [t["taskArn"] for t in out["tasks"]]
    try:
        assert out["failures"] == []
        assert len(out["tasks"]) == 3
        zones = [cluster.zone_of[t["containerInstanceArn"]] for t in out["tasks"]]
        assert zones == ["b", "b", "b"], f"memberOf(attribute:zone == b) placed tasks in zones {zones}"
        for task in wait_all_running(cluster, arns):
            [inspected] = containers_with(f"{LABEL_TASK_ARN}={task['taskArn']}")
            assert inspected["Config"]["Labels"][LABEL_CONTAINER_INSTANCE] == cluster.instance("b").rsplit("/", 1)[-1]
    finally:
        stop_all(cluster, arns)


def test_a_task_that_fits_on_no_instance_gives_a_resource_memory_failure_per_instance(cluster: Cluster, unique):
    family = unique("huge")
    register(cluster, family, memory=4_000_000)
    out = cluster.berth.cli("run-task", "--cluster", cluster.name, "--task-definition", family, "--count", "2").json
    assert out["tasks"] == []
    assert out["failures"], "a task that fits nowhere must be a failures entry"
    assert {f["reason"] for f in out["failures"]} == {"RESOURCE:MEMORY"}, out["failures"]
    assert {f["arn"] for f in out["failures"]} == set(cluster.zone_of), (
        f"expected one RESOURCE:MEMORY failure naming each instance: {out['failures']}"
    )


def test_an_unmet_member_of_constraint_gives_member_of_failures_and_no_task(cluster: Cluster, unique):
    family = unique("nowhere")
    register(cluster, family)
    out = cluster.berth.cli(
        "run-task",
        "--cluster",
        cluster.name,
        "--task-definition",
        family,
        "--placement-constraints",
        'type=memberOf,expression="attribute:zone == z"',
    ).json
    arns = [t["taskArn"] for t in out["tasks"]]
    try:
        placed_on = [t["containerInstanceArn"] for t in out["tasks"]]
        assert arns == [], f"memberOf(attribute:zone == z) placed tasks on {placed_on}"
        assert out["failures"], "an unmet constraint must be a failures entry"
        for failure in out["failures"]:
            assert "MemberOf" in failure["reason"], f"failure does not name MemberOf: {failure}"
    finally:
        stop_all(cluster, arns)

"""Issue 5's Docker acceptance: services on real containers. `berth up` (server and agent in one
process) on the machine's Docker daemon for REPLICA services, and a cluster of `berth agent`s on
the same server for DAEMON services; driven with the official AWS CLI and boto3 through the
recording proxy, and checked against what `docker` itself says.

Backoff documented in crates/berth-core/src/service/backoff.rs: after the n-th consecutive
failed task the next launch waits min(1 s x 2^(n-1), 300 s)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest

from harness import (
    LABEL_CLUSTER,
    LABEL_TASK_ARN,
    Berth,
    BerthAgent,
    BerthUp,
    HarnessError,
    containers_with,
    docker,
    remove_containers,
    wait_until,
)

CLUSTER = "default"
# A sleeper that leaves at once on SIGTERM (PID 1 ignores signals it has no handler for).
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
# An image no registry has; the registry at 127.0.0.1:1 refuses at once, so the pull fails
# fast and names the image.
MISSING_IMAGE = "127.0.0.1:1/berth-missing/nothing:latest"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def register(
    ecs: Any, family: str, command: list[str] = SLEEPER, image: str = "busybox", **container_extra: Any
) -> str:
    container = {"name": "main", "image": image, "memory": 32, "essential": True, "command": command}
    container.update(container_extra)
    out = ecs.register_task_definition(family=family, containerDefinitions=[container])
    return out["taskDefinition"]["taskDefinitionArn"]


def service_tasks(ecs: Any, cluster: str, service: str) -> list[dict]:
    """Every task of the service, STOPPED ones included."""
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        pages = ecs.get_paginator("list_tasks").paginate(cluster=cluster, serviceName=service, desiredStatus=desired)
        for page in pages:
            arns += page["taskArns"]
    # A task asked to stop between the two listings is in both: count it once.
    arns = list(dict.fromkeys(arns))
    tasks: list[dict] = []
    for i in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100])["tasks"]
    return tasks


def live(tasks: list[dict]) -> list[dict]:
    return [t for t in tasks if t["lastStatus"] != "STOPPED"]


def running(tasks: list[dict]) -> list[dict]:
    return [t for t in tasks if t["lastStatus"] == "RUNNING"]


def describe(ecs: Any, cluster: str, service: str) -> dict:
    out = ecs.describe_services(cluster=cluster, services=[service])
    assert out["services"], f"DescribeServices lost {service}: {out['failures']}"
    return out["services"][0]


def messages(service: dict) -> list[str]:
    return [e["message"] for e in service.get("events", [])]


def wait_stable(ecs: Any, cluster: str, service: str, timeout: int = 60) -> None:
    """boto3's services_stable waiter, polling every second (the CLI's waits 15 s a poll)."""
    ecs.get_waiter("services_stable").wait(
        cluster=cluster, services=[service], WaiterConfig={"Delay": 1, "MaxAttempts": timeout}
    )


def family_revision(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def delete(ecs: Any, cluster: str, service: str) -> None:
    """Best-effort cleanup: delete the service with force (its tasks stop)."""
    try:
        ecs.delete_service(cluster=cluster, service=service, force=True)
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's own failure
        pass


def diagnose(berth: Berth, ecs: Any, cluster: str, service: str) -> str:
    try:
        s = describe(ecs, cluster, service)
        summary = {k: s.get(k) for k in ("status", "desiredCount", "runningCount", "pendingCount")}
        deployments = [
            {k: d.get(k) for k in ("id", "status", "rolloutState", "failedTasks", "runningCount", "taskDefinition")}
            for d in s.get("deployments", [])
        ]
        return f"service: {summary}\ndeployments: {deployments}\nevents: {messages(s)[:8]}\n{berth.server.log_tail(20)}"
    except Exception as e:  # noqa: BLE001 - diagnosis only
        return f"<could not describe the service: {e}>"


# ---------------------------------------------------------------------------------------------
# REPLICA services on `berth up`
# ---------------------------------------------------------------------------------------------


def test_create_service_with_3_tasks_is_stable_and_a_killed_container_is_replaced(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, name = unique("svc-kill"), unique("web")
    register(ecs, family)
    try:
        created = berth_up.cli(
            "create-service", "--cluster", CLUSTER, "--service-name", name,
            "--task-definition", family, "--desired-count", "3",
        ).json["service"]
        assert created["status"] == "ACTIVE" and created["desiredCount"] == 3
        assert [d["status"] for d in created["deployments"]] == ["PRIMARY"]
        berth_up.cli("wait", "services-stable", "--cluster", CLUSTER, "--services", name, timeout=120)
        tasks = running(service_tasks(ecs, CLUSTER, name))
        assert len(tasks) == 3
        # Three containers really run, one per task.
        for task in tasks:
            [inspected] = containers_with(f"{LABEL_TASK_ARN}={task['taskArn']}")
            assert inspected["State"]["Running"] is True
        service = describe(ecs, CLUSTER, name)
        assert service["runningCount"] == 3
        assert service["deployments"][0]["rolloutState"] == "COMPLETED"
        assert messages(service)[0] == f"(service {name}) has reached a steady state."

        victim = tasks[0]
        [container] = containers_with(f"{LABEL_TASK_ARN}={victim['taskArn']}")
        killed_at = time.monotonic()
        docker("kill", container["Id"])

        def replaced() -> bool:
            now = service_tasks(ecs, CLUSTER, name)
            fresh = [t for t in running(now) if t["taskArn"] not in {x["taskArn"] for x in tasks}]
            return len(running(now)) == 3 and len(fresh) == 1

        wait_until(replaced, 10, "a replacement task RUNNING", diagnose=lambda: diagnose(berth_up, ecs, CLUSTER, name))
        assert time.monotonic() - killed_at <= 10
        stopped = ecs.describe_tasks(cluster=CLUSTER, tasks=[victim["taskArn"]])["tasks"][0]
        assert stopped["lastStatus"] == "STOPPED"
        assert stopped["stopCode"] == "EssentialContainerExited"
        wait_stable(ecs, CLUSTER, name)
        service = describe(ecs, CLUSTER, name)
        assert service["runningCount"] == 3
        assert any(m.startswith(f"(service {name}) has started 1 tasks: (task ") for m in messages(service))
    finally:
        delete(ecs, CLUSTER, name)


class Sampler(threading.Thread):
    """Samples the service's tasks every 200 ms: (RUNNING, not yet STOPPED) per sample."""

    def __init__(self, berth: Berth, service: str) -> None:
        super().__init__(daemon=True)
        self.ecs = berth.new_client()
        self.service = service
        self.samples: list[tuple[int, int]] = []
        self.error: Exception | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            while not self.done.is_set():
                tasks = service_tasks(self.ecs, CLUSTER, self.service)
                self.samples.append((len(running(tasks)), len(live(tasks))))
                self.done.wait(0.2)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def test_update_service_rolls_out_within_min_100_max_200(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, name = unique("svc-roll"), unique("web")
    old = register(ecs, family)
    # The new revision has a health check: its tasks count as healthy only once HEALTHY, which
    # keeps the old ones running a few seconds longer (and the sampler busy).
    health = {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 1}
    new = register(ecs, family, healthCheck=health)
    try:
        ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=old, desiredCount=3)
        wait_stable(ecs, CLUSTER, name)
        sampler = Sampler(berth_up, name)
        sampler.start()
        try:
            updated_at = datetime.now(timezone.utc)
            berth_up.cli(
                "update-service", "--cluster", CLUSTER, "--service", name, "--task-definition", new,
                "--deployment-configuration", "minimumHealthyPercent=100,maximumPercent=200",
            )

            def rolled_out() -> bool:
                service = describe(ecs, CLUSTER, name)
                return (
                    len(service["deployments"]) == 1
                    and service["deployments"][0]["rolloutState"] == "COMPLETED"
                    and service["runningCount"] == 3
                    and service["taskDefinition"] == new
                )

            wait_until(rolled_out, 60, "the rollout to complete", diagnose=lambda: diagnose(berth_up, ecs, CLUSTER, name))
            time.sleep(0.5)
        finally:
            sampler.done.set()
            sampler.join(timeout=10)
        assert sampler.error is None, f"sampling failed: {sampler.error}"
        assert len(sampler.samples) >= 10, f"too few samples: {sampler.samples}"
        assert any(n > 3 for _, n in sampler.samples), f"the rollout was not sampled: {sampler.samples}"
        fewest_running = min(r for r, _ in sampler.samples)
        most_live = max(n for _, n in sampler.samples)
        assert fewest_running >= 3, f"only {fewest_running} tasks RUNNING at one point: {sampler.samples}"
        assert most_live <= 6, f"{most_live} tasks RUNNING or PENDING at one point: {sampler.samples}"
        tasks = live(service_tasks(ecs, CLUSTER, name))
        assert len(tasks) == 3
        assert {t["taskDefinitionArn"] for t in tasks} == {new}
        assert {t["healthStatus"] for t in tasks} == {"HEALTHY"}
        history = ecs.list_service_deployments(cluster=CLUSTER, service=name)["serviceDeployments"]
        assert [d["status"] for d in history] == ["SUCCESSFUL", "SUCCESSFUL"]
        # What Terraform's `wait_for_steady_state` does: the service deployment of the PRIMARY
        # deployment is the one created after the update whose target revision ARN holds the
        # deployment id's number.
        primary = next(d for d in describe(ecs, CLUSTER, name)["deployments"] if d["status"] == "PRIMARY")
        number = primary["id"].split("/")[1]
        since = ecs.list_service_deployments(cluster=CLUSTER, service=name, createdAt={"after": updated_at})
        matching = [d for d in since["serviceDeployments"] if number in d["targetServiceRevisionArn"]]
        assert len(matching) == 1, (primary["id"], since["serviceDeployments"])
        found = ecs.describe_service_deployments(serviceDeploymentArns=[matching[0]["serviceDeploymentArn"]])
        assert found["serviceDeployments"][0]["status"] == "SUCCESSFUL"
    finally:
        delete(ecs, CLUSTER, name)


def test_a_broken_revision_trips_the_circuit_breaker_and_rolls_back(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, name = unique("svc-breaker"), unique("web")
    good = register(ecs, family)
    broken = register(ecs, family, image=MISSING_IMAGE)
    try:
        ecs.create_service(
            cluster=CLUSTER, serviceName=name, taskDefinition=good, desiredCount=3,
            deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
        )
        wait_stable(ecs, CLUSTER, name)
        completed = describe(ecs, CLUSTER, name)["deployments"][0]["id"]
        updated = ecs.update_service(cluster=CLUSTER, service=name, taskDefinition=broken)["service"]
        failing = updated["deployments"][0]["id"]
        sd_arn = updated["currentServiceDeployment"]
        seen_failed: list[dict] = []

        def rolled_back() -> bool:
            service = describe(ecs, CLUSTER, name)
            seen_failed.extend(d for d in service["deployments"] if d["id"] == failing and d["rolloutState"] == "FAILED")
            return (
                len(service["deployments"]) == 1
                and service["deployments"][0]["rolloutState"] == "COMPLETED"
                and service["deployments"][0]["id"] != completed
                and service["runningCount"] == 3
            )

        wait_until(rolled_back, 60, "the rollback to finish", interval=0.1, diagnose=lambda: diagnose(berth_up, ecs, CLUSTER, name))
        service = describe(ecs, CLUSTER, name)
        assert service["taskDefinition"] == good
        assert {t["taskDefinitionArn"] for t in live(service_tasks(ecs, CLUSTER, name))} == {good}
        # The breaker fails the deployment at exactly its threshold: clamp(0.5 x 3, 3, 200) = 3.
        for failed in seen_failed:
            assert failed["failedTasks"] == 3, failed
            assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
        broken_tasks = ecs.list_tasks(cluster=CLUSTER, startedBy=failing, desiredStatus="STOPPED")["taskArns"]
        assert len(broken_tasks) == 3, "exactly the threshold's tasks of the broken revision were started"
        for task in ecs.describe_tasks(cluster=CLUSTER, tasks=broken_tasks)["tasks"]:
            assert task["stopCode"] == "TaskFailedToStart", task
            assert MISSING_IMAGE in task["stoppedReason"] or MISSING_IMAGE in str(task["containers"]), task
        events = messages(service)
        failed_at = events.index(f"(service {name}) (deployment {failing}) deployment failed: tasks failed to start.")
        rolling_at = events.index(f"(service {name}) rolling back to deployment {completed}.")
        assert events[0] == f"(service {name}) has reached a steady state."
        assert rolling_at < failed_at, "newest first: the rollback follows the failure"
        [sd] = ecs.describe_service_deployments(serviceDeploymentArns=[sd_arn])["serviceDeployments"]
        assert sd["status"] == "ROLLBACK_SUCCESSFUL"
        assert sd["deploymentCircuitBreaker"] == {"status": "TRIGGERED", "failureCount": 3, "threshold": 3}
        assert sd["rollback"]["serviceRevisionArn"]
    finally:
        delete(ecs, CLUSTER, name)


def test_a_service_whose_container_keeps_exiting_backs_off(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, name = unique("svc-crash"), unique("crash")
    register(ecs, family, command=["sh", "-c", "sleep 2; exit 1"])
    window = 40.0
    try:
        began = time.time()
        ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=family, desiredCount=1)
        time.sleep(window)
        tasks = service_tasks(ecs, CLUSTER, name)
        starts = sorted(t["createdAt"].timestamp() - began for t in tasks)
        starts = [s for s in starts if s <= window]
        # With the documented backoff a task lives ~2 s and the n-th failure waits 2^(n-1) s:
        # launches at about 0, 3, 7, 13, 23 (and 41) s. Without backoff a task every ~2.5 s
        # would make about 16 in the window.
        assert 3 <= len(starts) <= 6, f"{len(starts)} tasks started in {window:.0f} s: {starts}"
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert gaps[-1] > gaps[0], f"the delays do not grow: {gaps}"
        service = describe(ecs, CLUSTER, name)
        assert f"(service {name}) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide." in messages(service)
        assert service["deployments"][0]["failedTasks"] >= 3
    finally:
        delete(ecs, CLUSTER, name)


# ---------------------------------------------------------------------------------------------
# DAEMON services on a cluster of `berth agent`s
# ---------------------------------------------------------------------------------------------


class Agents:
    """A cluster of `berth agent`s on the berth_up server (agents talk to the server directly)."""

    def __init__(self, berth: BerthUp, name: str, root) -> None:
        self.berth = berth
        self.name = name
        self.root = root
        self.agents: list[BerthAgent] = []

    def add(self) -> BerthAgent:
        agent = BerthAgent(self.berth.server, self.name, self.root / f"agent-{len(self.agents)}")
        self.agents.append(agent)
        return agent.start()

    def instances(self) -> list[dict]:
        arns = self.berth.ecs.list_container_instances(cluster=self.name)["containerInstanceArns"]
        if not arns:
            return []
        return self.berth.ecs.describe_container_instances(cluster=self.name, containerInstances=arns)["containerInstances"]

    def wait_connected(self, count: int) -> list[dict]:
        def ready() -> list[dict] | None:
            found = self.instances()
            connected = [i for i in found if i.get("agentConnected") and i["status"] == "ACTIVE"]
            return found if len(connected) == count else None

        return wait_until(ready, 30, f"{count} agents to register and connect", diagnose=self.logs)

    def logs(self) -> str:
        return "\n".join(f"--- agent {i}:\n{a.log_tail(10)}" for i, a in enumerate(self.agents))


@pytest.fixture
def agents(berth_up: BerthUp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agents]:
    """A new cluster for the test with no agents yet; teardown stops every agent started and
    removes every container of the cluster, whatever happened."""
    name = f"berth-daemon-{uuid.uuid4().hex[:8]}"
    berth_up.ecs.create_cluster(clusterName=name)
    group = Agents(berth_up, name, tmp_path_factory.mktemp("daemon-agents"))
    errors: list[str] = []
    try:
        yield group
    finally:
        for agent in group.agents:
            try:
                agent.stop()
            except HarnessError as e:
                errors.append(str(e))
        remove_containers(f"{LABEL_CLUSTER}={name}")
    if errors:
        raise HarnessError("\n".join(errors))


def test_a_daemon_service_runs_one_task_per_agent_joiners_included_and_leaves_drained_ones(agents: Agents, unique):
    ecs = agents.berth.ecs
    cluster = agents.name
    family, name = unique("svc-daemon"), unique("daemon")
    register(ecs, family)
    for _ in range(3):
        agents.add()
    agents.wait_connected(3)
    diag = lambda: diagnose(agents.berth, ecs, cluster, name) + "\n" + agents.logs()  # noqa: E731
    try:
        refused = agents.berth.cli(
            "create-service", "--cluster", cluster, "--service-name", name, "--task-definition", family,
            "--scheduling-strategy", "DAEMON", "--placement-strategy", "type=spread,field=instanceId",
            check=False,
        )
        assert refused.returncode != 0 and "InvalidParameterException" in refused.stderr, str(refused)
        created = agents.berth.cli(
            "create-service", "--cluster", cluster, "--service-name", name, "--task-definition", family,
            "--scheduling-strategy", "DAEMON",
        ).json["service"]
        assert created["schedulingStrategy"] == "DAEMON" and created["desiredCount"] == 3

        def one_per_instance(count: int):
            def probe() -> list[dict] | None:
                tasks = running(service_tasks(ecs, cluster, name))
                on = [t["containerInstanceArn"] for t in tasks]
                return tasks if len(on) == count and len(set(on)) == count and len(live(service_tasks(ecs, cluster, name))) == count else None

            return probe

        wait_until(one_per_instance(3), 30, "one RUNNING task on each of three instances", diagnose=diag)
        wait_stable(ecs, cluster, name)

        agents.add()
        agents.wait_connected(4)
        # From the moment the fourth agent is connected, its task is RUNNING within 10 s.
        tasks = wait_until(one_per_instance(4), 10, "the fourth agent's task", diagnose=diag)
        assert describe(ecs, cluster, name)["desiredCount"] == 4

        drained = tasks[0]["containerInstanceArn"]
        ecs.update_container_instances_state(cluster=cluster, containerInstances=[drained], status="DRAINING")

        def drained_task_stopped() -> bool:
            now = service_tasks(ecs, cluster, name)
            on_drained = [t for t in now if t["containerInstanceArn"] == drained]
            return bool(on_drained) and all(t["lastStatus"] == "STOPPED" for t in on_drained) and len(running(now)) == 3

        wait_until(drained_task_stopped, 30, "the drained instance's task to stop", diagnose=diag)
        stopped = [t for t in service_tasks(ecs, cluster, name) if t["containerInstanceArn"] == drained]
        assert all(t["stopCode"] == "ServiceSchedulerInitiated" for t in stopped)
        instance_id = drained.rsplit("/", 1)[-1]
        still = [c for c in containers_with(f"{LABEL_CLUSTER}={cluster}", all_states=False)
                 if c["Config"]["Labels"].get("com.berth.container-instance") == instance_id]
        assert still == [], "no container of the service runs on the drained instance"
        wait_stable(ecs, cluster, name)
        assert describe(ecs, cluster, name)["desiredCount"] == 3
    finally:
        delete(ecs, cluster, name)

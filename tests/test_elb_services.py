"""ECS services behind a load balancer on `berth up`, with real containers: a service whose
`loadBalancers` name a target group registers each task (its instance id and dynamic host
port) once it is RUNNING, a rolling deployment under steady traffic drops no request (new
tasks take traffic once healthy, old ones drain — DEACTIVATING — before they are stopped), a
scale-in and a StopTask drain the same way, UpdateService can take the load balancer away,
and bad `loadBalancers` are refused with ECS's errors. boto3 and the AWS CLI drive it."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from pathlib import Path

import pytest

from harness import BerthUp, boto3_client, free_port, wait_until
from iam_helpers import aws, error_of
from test_elb_proxy import FAST_CHECKS, answer_of, get

CLUSTER = "default"

# Serves its revision (the VERSION variable) and its hostname at /. `exec`: httpd is PID 1.
SERVE = r"""mkdir -p /www
echo "$VERSION $HOSTNAME" > /www/index.html
exec httpd -f -p 8080 -h /www"""


@pytest.fixture(scope="module")
def elbv2(berth_up: BerthUp):
    return boto3_client(berth_up.endpoint, berth_up.server.credentials, service="elbv2")


def register(berth_up: BerthUp, family: str, version: str) -> str:
    return berth_up.ecs.register_task_definition(
        family=family,
        networkMode="bridge",
        containerDefinitions=[{
            "name": "web",
            "image": "busybox",
            "memory": 32,
            "essential": True,
            "command": ["sh", "-c", SERVE],
            "environment": [{"name": "VERSION", "value": version}],
            "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
            "stopTimeout": 2,
        }],
    )["taskDefinition"]["taskDefinitionArn"]


def targets(elbv2, group: str) -> dict[tuple[str, int], str]:
    """The group's targets: (id, port) → state."""
    described = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"]["State"] for d in described}


def running_tasks(ecs, service: str) -> list[dict]:
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=service, desiredStatus="RUNNING")["taskArns"]
    return ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []


def host_port(task: dict) -> int:
    [port] = {b["hostPort"] for b in task["containers"][0]["networkBindings"]
              if b["containerPort"] == 8080 and ":" not in b.get("bindIP", "")}
    return port


def settled(ecs, elbv2, service: str, group: str, count: int, version_td: str) -> list[dict]:
    """Tasks of the service once it has `count` RUNNING tasks of `version_td`, each a healthy
    target, and nothing else registered or draining; [] until then."""
    tasks = running_tasks(ecs, service)
    if len(tasks) != count or any(t["lastStatus"] != "RUNNING" or t["taskDefinitionArn"] != version_td for t in tasks):
        return []
    wanted = {(t["_instance"], host_port(t)) for t in with_instances(ecs, tasks)}
    seen = targets(elbv2, group)
    return tasks if seen == {w: "healthy" for w in wanted} else []


def with_instances(ecs, tasks: list[dict]) -> list[dict]:
    """`tasks`, each with `_instance`: the ec2InstanceId of its container instance."""
    arns = sorted({t["containerInstanceArn"] for t in tasks})
    if not arns:
        return []
    described = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)["containerInstances"]
    ids = {i["containerInstanceArn"]: i["ec2InstanceId"] for i in described}
    return [{**t, "_instance": ids[t["containerInstanceArn"]]} for t in tasks]


class Load:
    """GETs through the listener, one after another on a keep-alive connection, until
    stopped: every answer's status and body, and every error."""

    def __init__(self, port: int):
        self.port = port
        self.answers: list[tuple[int, str]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            try:
                status, _, body = get(self.port, "/", conn=conn)
                self.answers.append((status, body.strip()))
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            time.sleep(0.01)
        conn.close()


def test_a_service_behind_a_load_balancer_registers_drains_and_deploys_without_dropping_a_request(
    berth_up: BerthUp, elbv2, unique, tmp_path: Path
):
    ecs = berth_up.ecs
    name = unique("lbsvc")
    family = unique("lbweb")
    v1 = register(berth_up, family, "v1")
    with contextlib.ExitStack() as cleanup:
        group = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, TargetType="instance",
                                          HealthCheckPath="/", **FAST_CHECKS)["TargetGroups"][0]["TargetGroupArn"]
        cleanup.callback(elbv2.delete_target_group, TargetGroupArn=group)
        elbv2.modify_target_group_attributes(
            TargetGroupArn=group, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "3"}])
        lb = elbv2.create_load_balancer(Name=name, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
        cleanup.callback(elbv2.delete_load_balancer, LoadBalancerArn=lb)
        # A group no load balancer uses yet: ECS refuses it.
        assert error_of(ecs.create_service, cluster=CLUSTER, serviceName=name, taskDefinition=v1, desiredCount=1,
                        loadBalancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 8080}]) == (
            "InvalidParameterException", 400)
        port = free_port()
        elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])

        # Bad loadBalancers, each refused with what is wrong, and no service made.
        def refused(lbs: list[dict]) -> str:
            with pytest.raises(ecs.exceptions.InvalidParameterException) as caught:
                ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=v1, desiredCount=1,
                                   loadBalancers=lbs)
            return caught.value.response["Error"]["Message"]

        assert refused([{"targetGroupArn": group, "containerName": "web", "containerPort": 80}]) == (
            "The container web did not have a container port 80 defined.")
        assert refused([{"targetGroupArn": group, "containerName": "api", "containerPort": 8080}]) == (
            "The container api does not exist in the task definition.")
        assert "does not exist" in refused([{"targetGroupArn": group + "x", "containerName": "web",
                                             "containerPort": 8080}])
        ip_group = elbv2.create_target_group(Name=f"{name}-ip", Protocol="HTTP", Port=8080,
                                             TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        cleanup.callback(elbv2.delete_target_group, TargetGroupArn=ip_group)
        rule = elbv2.create_rule(
            ListenerArn=elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"][0]["ListenerArn"],
            Priority=1, Conditions=[{"Field": "path-pattern", "Values": ["/ip/*"]}],
            Actions=[{"Type": "forward", "TargetGroupArn": ip_group}])["Rules"][0]["RuleArn"]
        assert "target type ip, which is incompatible with the bridge network mode" in refused(
            [{"targetGroupArn": ip_group, "containerName": "web", "containerPort": 8080}])
        # awsvpc tasks take ip target groups only (as ECS), and Berth does not register their
        # addresses yet: both refused, rather than accepted and left unregistered.
        vpc_td = ecs.register_task_definition(
            family=f"{name}-vpc", networkMode="awsvpc",
            containerDefinitions=[{"name": "web", "image": "busybox", "memory": 32,
                                   "portMappings": [{"containerPort": 8080}]}],
        )["taskDefinition"]["taskDefinitionArn"]
        for target, says in ((group, "target type instance, which is incompatible with the awsvpc"),
                             (ip_group, "does not yet register awsvpc tasks' addresses")):
            with pytest.raises(ecs.exceptions.InvalidParameterException) as caught:
                ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=vpc_td, desiredCount=1,
                                   networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
                                   loadBalancers=[{"targetGroupArn": target, "containerName": "web",
                                                   "containerPort": 8080}])
            assert says in caught.value.response["Error"]["Message"]
        elbv2.delete_rule(RuleArn=rule)
        assert ecs.describe_services(cluster=CLUSTER, services=[name])["failures"][0]["reason"] == "MISSING"

        # 1. Created with the AWS CLI: two tasks, registered as their instance and host port,
        # healthy, and the listener reaches both.
        created = aws(berth_up.server, berth_up.server.credentials, tmp_path, "ecs", "create-service",
                      "--cluster", CLUSTER, "--service-name", name, "--task-definition", v1, "--desired-count", "2",
                      "--health-check-grace-period-seconds", "10",
                      "--deployment-configuration", "minimumHealthyPercent=100,maximumPercent=200",
                      "--load-balancers", f"targetGroupArn={group},containerName=web,containerPort=8080")
        assert created.returncode == 0, created.stderr
        service = json.loads(created.stdout)["service"]
        cleanup.callback(ecs.delete_service, cluster=CLUSTER, service=name, force=True)
        assert service["loadBalancers"] == [{"targetGroupArn": group, "containerName": "web", "containerPort": 8080}]
        # Each task is a target within a second of RUNNING (its startedAt, on this machine's clock).
        registered_after: dict[str, float] = {}

        def registration() -> bool:
            seen = targets(elbv2, group)
            now = time.time()
            for task in with_instances(ecs, [t for t in running_tasks(ecs, name) if t["lastStatus"] == "RUNNING"]):
                key = (task["_instance"], host_port(task))
                if key in seen and task["taskArn"] not in registered_after:
                    registered_after[task["taskArn"]] = now - task["startedAt"].timestamp()
            return len(registered_after) == 2

        wait_until(registration, 60, "both tasks registered", interval=0.05)
        print(f"target registration after RUNNING: {sorted(round(v, 3) for v in registered_after.values())} s")
        assert all(v <= 1.0 for v in registered_after.values()), registered_after
        first = wait_until(lambda: settled(ecs, elbv2, name, group, 2, v1), 60, "two healthy targets",
                           diagnose=lambda: f"targets: {targets(elbv2, group)}")
        assert all(i.startswith("mi-") for i, _ in targets(elbv2, group))
        served = {get(port, "/")[2].strip() for _ in range(10)}
        assert {s.split()[0] for s in served} == {"v1"} and len(served) == 2, served
        events = [e["message"] for e in ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]["events"]]
        assert any(f"registered" in m and f"(target-group {group})" in m for m in events), events
        revision = ecs.list_service_deployments(cluster=CLUSTER, service=name)["serviceDeployments"][0]
        described = ecs.describe_service_revisions(serviceRevisionArns=[revision["targetServiceRevisionArn"]])
        assert described["serviceRevisions"][0]["loadBalancers"][0]["targetGroupArn"] == group

        # 2. A rolling deployment under steady traffic: no request fails, an old task drains
        # (DEACTIVATING, its target draining) before it stops, and v2 serves at the end.
        v2 = register(berth_up, family, "v2")
        old = {t["taskArn"] for t in first}
        seen_deactivating: set[str] = set()

        def watch_old() -> list[dict]:
            described = ecs.describe_tasks(cluster=CLUSTER, tasks=sorted(old))["tasks"]
            seen_deactivating.update(t["taskArn"] for t in described
                                     if t["lastStatus"] == "DEACTIVATING" and t["desiredStatus"] == "STOPPED")
            return settled(ecs, elbv2, name, group, 2, v2)

        with Load(port) as load:
            ecs.update_service(cluster=CLUSTER, service=name, taskDefinition=v2)
            second = wait_until(watch_old, 120, "the deployment to v2 to settle", interval=0.3,
                                diagnose=lambda: f"targets: {targets(elbv2, group)}")
            time.sleep(1)
        assert load.errors == [], load.errors[:5]
        assert len(load.answers) > 50 and {s for s, _ in load.answers} == {200}, collections_of(load.answers)
        assert load.answers[-1][1].startswith("v2"), load.answers[-1]
        assert seen_deactivating, "an old task was seen DEACTIVATING while its target drained"
        stopped = ecs.describe_tasks(cluster=CLUSTER, tasks=sorted(old))["tasks"]
        wait_until(lambda: all(t["lastStatus"] == "STOPPED"
                               for t in ecs.describe_tasks(cluster=CLUSTER, tasks=sorted(old))["tasks"]),
                   30, "the old tasks to be STOPPED")
        [primary] = deployment_ids(ecs, name)
        assert {t["stoppedReason"] for t in stopped} == {f"Scaling activity initiated by (deployment {primary})"}

        # 3. Scale-in to one, under traffic: the task going away drains first.
        with Load(port) as load:
            ecs.update_service(cluster=CLUSTER, service=name, desiredCount=1)
            [remaining] = wait_until(lambda: settled(ecs, elbv2, name, group, 1, v2), 60, "one task left",
                                     diagnose=lambda: f"targets: {targets(elbv2, group)}")
            time.sleep(1)
        assert load.errors == [] and {s for s, _ in load.answers} == {200}, (load.errors[:5], collections_of(load.answers))

        # 4. StopTask of a registered task: it drains (DEACTIVATING), then stops, and the
        # service replaces it.
        ecs.stop_task(cluster=CLUSTER, task=remaining["taskArn"], reason="test: stop a registered task")
        task = ecs.describe_tasks(cluster=CLUSTER, tasks=[remaining["taskArn"]])["tasks"][0]
        assert (task["lastStatus"], task["desiredStatus"]) == ("DEACTIVATING", "STOPPED"), task["lastStatus"]
        key = (with_instances(ecs, [remaining])[0]["_instance"], host_port(remaining))
        wait_until(lambda: targets(elbv2, group).get(key) == "draining", 2, "its target to be draining", interval=0.05)
        assert ecs.describe_tasks(cluster=CLUSTER, tasks=[remaining["taskArn"]])["tasks"][0]["lastStatus"] in (
            "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED")
        wait_until(lambda: ecs.describe_tasks(cluster=CLUSTER, tasks=[remaining["taskArn"]])["tasks"][0]["lastStatus"]
                   == "STOPPED", 30, "the stopped task to be STOPPED")
        wait_until(lambda: settled(ecs, elbv2, name, group, 1, v2), 60, "a replacement behind the load balancer")

        # 5. UpdateService without load balancers: a new deployment whose task is not
        # registered; the old one is deregistered as it goes.
        updated = ecs.update_service(cluster=CLUSTER, service=name, loadBalancers=[])["service"]
        assert updated["loadBalancers"] == [] and len(updated["deployments"]) == 2
        wait_until(lambda: len(running_tasks(ecs, name)) == 1 and targets(elbv2, group) == {}
                   and len(ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]["deployments"]) == 1,
                   60, "the service to leave the load balancer", diagnose=lambda: f"targets: {targets(elbv2, group)}")


def collections_of(answers: list[tuple[int, str]]) -> dict:
    counts: dict = {}
    for status, body in answers:
        key = (status, body.split()[0] if body else "")
        counts[key] = counts.get(key, 0) + 1
    return counts


def deployment_ids(ecs, service: str) -> list[str]:
    return [d["id"] for d in ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]["deployments"]]

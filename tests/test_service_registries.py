"""ECS services with `serviceRegistries` on `berth up`, with real containers: each RUNNING task
is an instance of the registry's Cloud Map service (its task id, the host's address and the
host port of the registry's container port, ECS's attributes), DiscoverInstances finds it, a
task asked to stop is deregistered within 2 s, and bad registries are refused with what to
fix. boto3 drives ECS and Cloud Map (CBOR)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

import harness
from harness import BerthUp, boto3_client, docker, wait_until

CLUSTER = "default"

SERVE = "mkdir -p /www && echo $HOSTNAME > /www/index.html && exec httpd -f -p 8080 -h /www"


@pytest.fixture(scope="module")
def berth_up(docker_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BerthUp]:
    """`berth up` answering DNS for containers on the Docker bridge's port 53 (the other
    modules' servers leave it free)."""
    up = harness.start_berth_up(tmp_path_factory.mktemp("berth-up-sd"), container_dns=True)
    try:
        yield up
    finally:
        harness.stop_berth_up(up)


def bridge_gateway() -> str:
    """The Docker bridge's address on this host (docker0), where `berth up` also answers DNS."""
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True, check=True)
    found = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", shown.stdout)
    assert found, shown.stdout
    return found.group(1)


@pytest.fixture(scope="module")
def discovery(berth_up: BerthUp):
    # DiscoverInstances has the host prefix `data-`, which a custom endpoint does not have.
    return boto3_client(berth_up.endpoint, berth_up.server.credentials, service="servicediscovery",
                        inject_host_prefix=False)


def register(berth_up: BerthUp, family: str) -> str:
    return berth_up.ecs.register_task_definition(
        family=family,
        networkMode="bridge",
        containerDefinitions=[{
            "name": "web", "image": "busybox", "memory": 32, "essential": True,
            "command": ["sh", "-c", SERVE],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
            "stopTimeout": 2,
        }],
    )["taskDefinition"]["taskDefinitionArn"]


def srv_records(berth_up: BerthUp, name: str) -> list[tuple[int, str]]:
    """`dig SRV name` against the server's DNS: (port, target) of each record."""
    binary = shutil.which("dig")
    assert binary, "dig is missing: run scripts/ensure-test-tools (it installs dnsutils)"
    done = subprocess.run([binary, "@127.0.0.1", "-p", str(berth_up.server.dns_port), "+short", "+time=2",
                           name, "SRV"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    records = []
    for line in done.stdout.splitlines():
        _priority, _weight, port, target = line.split()
        records.append((int(port), target))
    return sorted(records)


def discovered(discovery, namespace: str, service: str) -> dict[str, dict]:
    found = discovery.discover_instances(NamespaceName=namespace, ServiceName=service)["Instances"]
    return {i["InstanceId"]: i["Attributes"] for i in found}


def test_a_service_registers_its_tasks_in_cloud_map_and_deregisters_them_when_they_stop(
    berth_up: BerthUp, discovery, unique
):
    ecs = berth_up.ecs
    name = unique("sdsvc")
    namespace = f"{unique('ns')}.local"
    td = register(berth_up, unique("sdweb"))
    ns_op = discovery.create_private_dns_namespace(Name=namespace, Vpc="vpc-berth")["OperationId"]
    ns_id = discovery.get_operation(OperationId=ns_op)["Operation"]["Targets"]["NAMESPACE"]
    srv = discovery.create_service(
        Name="web", NamespaceId=ns_id,
        DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "SRV", "TTL": 10}]},
        HealthCheckCustomConfig={"FailureThreshold": 1},
    )["Service"]
    a_only = discovery.create_service(
        Name="a-only", NamespaceId=ns_id,
        DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 10}]},
    )["Service"]
    try:
        # Bad registries: each refused, nothing made.
        def refused(registries: list[dict]) -> str:
            with pytest.raises(ecs.exceptions.InvalidParameterException) as caught:
                ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=td, desiredCount=1,
                                   serviceRegistries=registries)
            return caught.value.response["Error"]["Message"]

        assert "SRV records" in refused([{"registryArn": srv["Arn"]}])
        assert "awsvpc" in refused([{"registryArn": a_only["Arn"], "containerName": "web", "containerPort": 8080}])
        assert "does not exist" in refused([{"registryArn": srv["Arn"] + "0", "containerName": "web",
                                             "containerPort": 8080}])
        assert refused([{"registryArn": srv["Arn"], "containerName": "web", "containerPort": 80}]) == (
            "The container web did not have a container port 80 defined.")
        assert "only one" in refused([{"registryArn": srv["Arn"], "containerName": "web", "containerPort": 8080}] * 2)

        registry = {"registryArn": srv["Arn"], "containerName": "web", "containerPort": 8080}
        created = ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=td, desiredCount=2,
                                     serviceRegistries=[registry])["service"]
        assert created["serviceRegistries"] == [registry]

        def running() -> dict[str, dict]:
            arns = ecs.list_tasks(cluster=CLUSTER, serviceName=name, desiredStatus="RUNNING")["taskArns"]
            tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
            return {t["taskArn"].rsplit("/", 1)[1]: t for t in tasks if t["lastStatus"] == "RUNNING"}

        tasks = wait_until(lambda: r if len(r := running()) == 2 else None, 60, "two RUNNING tasks")
        found = wait_until(lambda: d if set(d := discovered(discovery, namespace, "web")) == set(tasks) else None,
                           5, "both tasks registered in Cloud Map",
                           diagnose=lambda: str(discovered(discovery, namespace, "web")))
        for task_id, attributes in found.items():
            [port] = {b["hostPort"] for b in tasks[task_id]["containers"][0]["networkBindings"]
                      if b["containerPort"] == 8080 and ":" not in b.get("bindIP", "")}
            assert attributes["AWS_INSTANCE_PORT"] == str(port)
            assert attributes["ECS_CLUSTER_NAME"] == CLUSTER and attributes["ECS_SERVICE_NAME"] == name
            assert attributes["AWS_INSTANCE_IPV4"].count(".") == 3, attributes
        listed = discovery.list_instances(ServiceId=srv["Id"])["Instances"]
        assert {i["Id"] for i in listed} == set(tasks)

        # DNS: the SRV records of web.NAMESPACE are the tasks, at their host ports.
        ports = sorted(int(a["AWS_INSTANCE_PORT"]) for a in found.values())
        records = srv_records(berth_up, f"web.{namespace}")
        assert [p for p, _ in records] == ports, records
        assert {t for _, t in records} == {f"{task_id}.web.{namespace}." for task_id in tasks}
        # From inside a container: a task resolves the service by name through the DNS server
        # `berth up` serves on the Docker bridge.
        gateway = bridge_gateway()
        family = unique("sdlookup")
        ecs.register_task_definition(family=family, containerDefinitions=[{
            "name": "lookup", "image": "busybox", "memory": 16, "essential": True,
            # Until it answers: `berth up` takes the bridge's port 53 once a server that held
            # it before (another module's) has let it go.
            "command": ["sh", "-c", f"for i in $(seq 60); do nslookup -type=srv web.{namespace} {gateway} "
                                    f"| grep -q service && break; sleep 1; done; "
                                    f"nslookup -type=srv web.{namespace} {gateway}; sleep 600"],
            "dnsServers": [gateway],
        }])
        lookup = ecs.run_task(cluster=CLUSTER, taskDefinition=family)["tasks"][0]["taskArn"]
        try:
            def looked_up() -> str:
                described = ecs.describe_tasks(cluster=CLUSTER, tasks=[lookup])["tasks"][0]
                runtime = described["containers"][0].get("runtimeId")
                if described["lastStatus"] != "RUNNING" or not runtime:
                    return ""
                out = docker("logs", runtime, check=False)
                return out if all(str(p) in out for p in ports) else ""

            out = wait_until(looked_up, 90, "the container's SRV lookup to show both tasks")
            print(f"nslookup in a container:\n{out}")
            assert f"web.{namespace}" in out, out
        finally:
            ecs.stop_task(cluster=CLUSTER, task=lookup, reason="test done")

        # Scale-in: the task asked to stop leaves Cloud Map within 2 s.
        ecs.update_service(cluster=CLUSTER, service=name, desiredCount=1)
        asked = wait_until(
            lambda: [t["taskArn"] for t in ecs.describe_tasks(cluster=CLUSTER, tasks=[t["taskArn"] for t in tasks.values()])["tasks"]
                     if t["desiredStatus"] == "STOPPED"],
            30, "a task to be asked to stop", interval=0.05)
        at = time.monotonic()
        gone = asked[0].rsplit("/", 1)[1]
        wait_until(lambda: gone not in discovered(discovery, namespace, "web")
                   and all(gone not in target for _, target in srv_records(berth_up, f"web.{namespace}")),
                   2, "the stopped task to leave Cloud Map and DNS", interval=0.05)
        assert time.monotonic() - at <= 2.0
        assert set(discovered(discovery, namespace, "web")) == set(tasks) - {gone}
    finally:
        try:
            ecs.delete_service(cluster=CLUSTER, service=name, force=True)
        except ecs.exceptions.ServiceNotFoundException:
            pass
        wait_until(lambda: discovery.list_instances(ServiceId=srv["Id"])["Instances"] == [], 60,
                   "the service's instances to be deregistered")
        discovery.delete_service(Id=srv["Id"])
        discovery.delete_service(Id=a_only["Id"])
        discovery.delete_namespace(Id=ns_id)

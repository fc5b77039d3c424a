"""awsvpc and FARGATE on real containers: the ECS documentation's Fargate web-server sample
(image replaced by the local test image) runs unchanged with `--launch-type FARGATE
--network-configuration ...` through the AWS CLI; each task has its own address on a Berth
network (two tasks both serve port 80, each on its own IP, reachable from the host and from
other tasks), its containers share `localhost`, DescribeTasks shows the ElasticNetworkInterface
attachment as ECS does, and every address, pause container and veth is released when the task
stops — also after the agent is killed -9 in the middle of setting a task up."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from fault_helpers import FaultAgent
from harness import BerthUp, describe_task, docker, remove_containers, status_is, wait_for_task, wait_until

IPAM_DIR = Path("/var/lib/berth/cni-ipam/berth-net0")
NETWORK_LABEL = "com.berth.task-network"

# The ECS Developer Guide's "Example: Fargate web server" task definition (its httpd image
# swapped for the local busybox, which serves with `httpd -f`); nothing else is changed.
SERVE = (
    "mkdir -p /www && ip -4 -o addr show eth0 > /www/index.html && "
    "echo '<html><body><h1>Amazon ECS Sample App</h1></body></html>' >> /www/index.html && "
    "exec httpd -f -p 80 -h /www"
)


def fargate_sample(family: str) -> dict:
    return {
        "family": family,
        "networkMode": "awsvpc",
        "containerDefinitions": [
            {
                "name": "fargate-app",
                "image": "busybox",
                "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
                "essential": True,
                "entryPoint": ["sh", "-c"],
                "command": [SERVE],
            }
        ],
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
    }


def detail(task: dict, name: str) -> str | None:
    eni = [a for a in task.get("attachments", []) if a["type"] == "ElasticNetworkInterface"]
    assert len(eni) == 1, task.get("attachments")
    return next((d["value"] for d in eni[0]["details"] if d["name"] == name), None)


# Task addresses are on a bridge of this host: asked directly, not through the harness's dead
# proxy for addresses beyond loopback.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, timeout: float = 2.0) -> str:
    assert url.startswith("http://10.200."), url
    with DIRECT.open(url, timeout=timeout) as response:
        return response.read().decode()


def pause_containers(instance_id: str) -> list[str]:
    out = docker("ps", "-aq", "--filter", f"label={NETWORK_LABEL}",
                 "--filter", f"label=com.berth.container-instance={instance_id}")
    return out.split()


def veths_on_bridge() -> list[str]:
    shown = subprocess.run(["ip", "-o", "link", "show", "master", "berth-net0"],
                           capture_output=True, text=True)
    return [line.split(":")[1].strip() for line in shown.stdout.splitlines() if line.strip()]


def held_addresses() -> dict[str, str]:
    """host-local's reservations on the default network: address -> pause container id."""
    if not IPAM_DIR.is_dir():
        return {}
    held = {}
    for entry in IPAM_DIR.iterdir():
        if entry.name.count(".") == 3:
            held[entry.name] = entry.read_text().split()[0]
    return held


def task_limits(task_id: str) -> tuple[int, int]:
    """(memory limit in bytes, CPU quota in µs per 100 ms) of a task's own cgroup."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        task = root / "berth" / task_id
        quota, period = (task / "cpu.max").read_text().split()
        assert period == "100000"
        return int((task / "memory.max").read_text()), int(quota)
    memory = root / "memory" / "berth" / task_id / "memory.limit_in_bytes"
    cpu = root / "cpu" / "berth" / task_id
    assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
    return int(memory.read_text()), int((cpu / "cpu.cfs_quota_us").read_text())


def running_pauses() -> set[str]:
    return set(docker("ps", "-q", "--no-trunc", "--filter", f"label={NETWORK_LABEL}").split())


# What the host had before this module: the bridge is the host's, and a host may have been
# used before (a veth lives as long as any container in its namespace does).
BEFORE: dict[str, set[str]] = {}


def assert_nothing_leaked() -> None:
    """Every held address belongs to a running pause container, and every veth the module's
    tasks added to the bridge belongs to one that is still running."""
    running = running_pauses()
    for address, owner in held_addresses().items():
        assert owner in running, f"{address} is held by {owner[:12]}, which is not a running pause container"
    added_veths = set(veths_on_bridge()) - BEFORE["veths"]
    added_pauses = running - BEFORE["pauses"]
    assert len(added_veths) == len(added_pauses), (added_veths, added_pauses)


@pytest.fixture(scope="module")
def up(berth_up: BerthUp) -> BerthUp:
    BEFORE["veths"] = set(veths_on_bridge())
    BEFORE["pauses"] = running_pauses()
    return berth_up


def test_the_fargate_sample_runs_unchanged_with_its_own_address_per_task(up: BerthUp, unique, tmp_path):
    ecs = up.ecs
    family = unique("sample-fargate")
    spec = tmp_path / "taskdef.json"
    spec.write_text(json.dumps(fargate_sample(family)))
    registered = up.cli("register-task-definition", "--cli-input-json", f"file://{spec}").json["taskDefinition"]
    assert "FARGATE" in registered["compatibilities"]
    ran = up.cli(
        "run-task", "--cluster", "default", "--task-definition", family, "--count", "2",
        "--launch-type", "FARGATE", "--platform-version", "LATEST",
        "--network-configuration",
        "awsvpcConfiguration={subnets=[subnet-0abc1234],securityGroups=[sg-0abc1234],assignPublicIp=ENABLED}",
    ).json
    assert ran["failures"] == [], ran["failures"]
    arns = [t["taskArn"] for t in ran["tasks"]]
    for task in ran["tasks"]:
        assert task["launchType"] == "FARGATE"
        assert task["platformVersion"] == "1.4.0"
        assert (task["cpu"], task["memory"]) == ("256", "512")
        assert task["attachments"][0]["status"] == "PRECREATED"
        assert detail(task, "subnetId") == "subnet-0abc1234"

    running = [wait_for_task(ecs, "default", arn, status_is("RUNNING"), 60, "the Fargate task to run",
                             up.server.log_tail) for arn in arns]
    addresses = []
    for task in running:
        ip = detail(task, "privateIPv4Address")
        assert ip and ip.startswith("10.200."), task["attachments"]
        assert task["attachments"][0]["status"] == "ATTACHED"
        assert detail(task, "subnetId") == "subnet-0abc1234"
        assert detail(task, "networkInterfaceId").startswith("eni-")
        assert detail(task, "macAddress").count(":") == 5
        assert detail(task, "privateDnsName") == f"ip-{ip.replace('.', '-')}.ec2.internal"
        container = task["containers"][0]
        assert container["networkBindings"] == []
        assert container["networkInterfaces"] == [
            {"attachmentId": task["attachments"][0]["id"], "privateIpv4Address": ip}
        ]
        addresses.append(ip)
    assert len(set(addresses)) == 2, addresses

    stats = ecs.describe_clusters(clusters=["default"], include=["STATISTICS"])["clusters"][0]["statistics"]
    stats = {s["name"]: int(s["value"]) for s in stats}
    assert stats["runningFargateTasksCount"] == 2, stats
    assert stats["pendingFargateTasksCount"] == 0, stats

    # The task-level cpu and memory are its cgroup's limits, its containers made under it.
    for task in running:
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        inspected = json.loads(docker("inspect", task["containers"][0]["runtimeId"]))[0]
        assert inspected["HostConfig"]["CgroupParent"] == f"/berth/{task_id}"
        assert task_limits(task_id) == (512 * 1024 * 1024, 25_000), task_limits(task_id)

    # Both serve port 80, each on its own address, reachable from the host.
    for ip in addresses:
        page = wait_until(lambda: _try_fetch(f"http://{ip}/"), 20, f"the task on {ip} to answer")
        assert f"inet {ip}/" in page and "Amazon ECS Sample App" in page, page

    # And from another task on the same network.
    probe = unique("probe")
    ecs.register_task_definition(
        family=probe, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{
            "name": "probe", "image": "busybox", "essential": True,
            "command": ["sh", "-c", 'wget -qO- "http://$TARGET/" | grep -q "inet $TARGET/"'],
        }],
    )
    out = ecs.run_task(
        cluster="default", taskDefinition=probe, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-0abc1234"]}},
        overrides={"containerOverrides": [{"name": "probe", "environment": [{"name": "TARGET", "value": addresses[0]}]}]},
    )
    assert out["failures"] == [], out["failures"]
    done = wait_for_task(ecs, "default", out["tasks"][0]["taskArn"], status_is("STOPPED"), 60,
                         "the probe task to finish", up.server.log_tail)
    assert done["containers"][0].get("exitCode") == 0, done["containers"][0]
    assert done["attachments"][0]["status"] == "DELETED"

    for arn in arns:
        ecs.stop_task(cluster="default", task=arn, reason="test over")
    for arn in arns:
        stopped = wait_for_task(ecs, "default", arn, status_is("STOPPED"), 60, "the task to stop", up.server.log_tail)
        assert stopped["attachments"][0]["status"] == "DELETED"
    for ip in addresses:
        assert ip not in held_addresses(), f"{ip} is still held after its task stopped"
    assert pause_containers(up.instance_id) == []
    assert_nothing_leaked()


def _try_fetch(url: str) -> str | None:
    try:
        return fetch(url)
    except OSError:
        return None


def test_containers_of_an_awsvpc_task_share_localhost(up: BerthUp, unique):
    ecs = up.ecs
    family = unique("pod")
    ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["EC2"],
        containerDefinitions=[
            {"name": "web", "image": "busybox", "memory": 32, "essential": True,
             # Listens on loopback only: only a container in the same namespace reaches it.
             "command": ["sh", "-c", "mkdir -p /www && echo shared > /www/index.html && "
                                     "exec httpd -f -p 127.0.0.1:8080 -h /www"]},
            {"name": "sidecar", "image": "busybox", "memory": 32, "essential": False,
             "command": ["sh", "-c", "for i in $(seq 100); do wget -qO- http://localhost:8080/ | grep -q shared "
                                     "&& exit 0; sleep 0.2; done; exit 1"]},
        ],
    )
    out = ecs.run_task(cluster="default", taskDefinition=family, launchType="EC2",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-elsewhere"]}})
    assert out["failures"] == [], out["failures"]
    arn = out["tasks"][0]["taskArn"]

    def sidecar_done(task: dict) -> bool:
        return any(c["name"] == "sidecar" and c.get("exitCode") is not None for c in task["containers"])

    task = wait_for_task(ecs, "default", arn, sidecar_done, 60, "the sidecar to reach localhost", up.server.log_tail)
    sidecar = next(c for c in task["containers"] if c["name"] == "sidecar")
    assert sidecar["exitCode"] == 0, sidecar
    assert task["lastStatus"] == "RUNNING"
    # An unknown subnet id joins the default network, and the attachment shows the id given.
    assert detail(task, "subnetId") == "subnet-elsewhere"
    ecs.stop_task(cluster="default", task=arn)
    wait_for_task(ecs, "default", arn, status_is("STOPPED"), 60, "the task to stop", up.server.log_tail)
    assert_nothing_leaked()


def test_awsvpc_requests_are_checked_as_ecs_checks_them(up: BerthUp, unique):
    ecs = up.ecs
    family = unique("checked")
    ecs.register_task_definition(**fargate_sample(family))
    bridge = unique("bridged")
    ecs.register_task_definition(family=bridge, containerDefinitions=[
        {"name": "c", "image": "busybox", "memory": 32, "command": ["true"]}])
    vpc = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    cases = [
        (dict(taskDefinition=family, launchType="FARGATE"), "Network Configuration must be provided"),
        (dict(taskDefinition=family, launchType="FARGATE",
              networkConfiguration={"awsvpcConfiguration": {"subnets": []}}), "subnets can not be empty"),
        (dict(taskDefinition=bridge, networkConfiguration=vpc), "not valid for the given networkMode"),
        (dict(taskDefinition=bridge, launchType="FARGATE"), "does not support launch_type FARGATE"),
        (dict(taskDefinition=family, launchType="EC2", networkConfiguration={
            "awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "ENABLED"}}), "Assign public IP"),
        (dict(taskDefinition=family, launchType="FARGATE", networkConfiguration=vpc,
              platformVersion="1.2.0"), "1.2.0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ecs.exceptions.ClientError) as raised:
            ecs.run_task(cluster="default", **kwargs)
        error = raised.value.response["Error"]
        assert error["Code"] in ("InvalidParameterException", "ClientException"), error
        assert message in error["Message"], (kwargs, error)
    # A service takes the same configuration and shows it.
    service = ecs.create_service(
        cluster="default", serviceName=unique("svc"), taskDefinition=family, desiredCount=0,
        launchType="FARGATE", networkConfiguration=vpc,
    )["service"]
    assert service["networkConfiguration"] == {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    assert service["platformVersion"] == "LATEST"
    assert service["deployments"][0]["networkConfiguration"] == service["networkConfiguration"]
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.create_service(cluster="default", serviceName=unique("svc"), taskDefinition=family,
                           desiredCount=0, launchType="FARGATE")
    ecs.delete_service(cluster="default", service=service["serviceName"], force=True)


def test_an_agent_killed_while_setting_up_a_task_network_leaks_nothing(up: BerthUp, unique, tmp_path):
    ecs = up.ecs
    cluster = unique("awsvpc-kill")
    ecs.create_cluster(clusterName=cluster)
    agent = FaultAgent(up.server, cluster, tmp_path / "agent").start()
    instance_id = ""
    try:
        instance = wait_until(lambda: ecs.list_container_instances(cluster=cluster)["containerInstanceArns"], 30,
                              "the agent to register", diagnose=agent.log_tail)[0]
        instance_id = instance.rsplit("/", 1)[-1]
        family = unique("kill-setup")
        ecs.register_task_definition(
            family=family, networkMode="awsvpc",
            containerDefinitions=[{"name": "main", "image": "busybox", "memory": 32, "essential": True,
                                   "command": ["sleep", "600"], "stopTimeout": 2}],
        )
        vpc = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
        out = ecs.run_task(cluster=cluster, taskDefinition=family, networkConfiguration=vpc)
        assert out["failures"] == [], out["failures"]
        doomed = out["tasks"][0]["taskArn"]
        # Killed as soon as the task's pause container exists: its network is being set up.
        wait_until(lambda: pause_containers(instance_id), 30, "the pause container", interval=0.01,
                   diagnose=agent.log_tail)
        agent.kill9()
        ecs.stop_task(cluster=cluster, task=doomed, reason="stopped while its agent was away")

        # A task that was running before a kill keeps its address across it.
        agent.start()
        out = ecs.run_task(cluster=cluster, taskDefinition=family, networkConfiguration=vpc)
        keeper = out["tasks"][0]["taskArn"]
        kept = wait_for_task(ecs, cluster, keeper, status_is("RUNNING"), 60, "the task to run", agent.log_tail)
        address = detail(kept, "privateIPv4Address")
        wait_until(lambda: len(pause_containers(instance_id)) == 1, 30, "the doomed task's pause container to go",
                   diagnose=agent.log_tail)
        agent.kill9()
        agent.start()
        time.sleep(3)
        again = describe_task(ecs, cluster, keeper)
        assert again["lastStatus"] == "RUNNING" and detail(again, "privateIPv4Address") == address
        assert held_addresses().get(address) in set(
            docker("ps", "-q", "--no-trunc", "--filter", f"label={NETWORK_LABEL}").split())

        ecs.stop_task(cluster=cluster, task=keeper)
        wait_for_task(ecs, cluster, keeper, status_is("STOPPED"), 60, "the task to stop", agent.log_tail)
        wait_until(lambda: not pause_containers(instance_id), 30, "every pause container of the agent to go",
                   diagnose=agent.log_tail)
        assert address not in held_addresses()
        assert_nothing_leaked()
    finally:
        agent.close()
        for arn in ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]:
            ecs.deregister_container_instance(cluster=cluster, containerInstance=arn, force=True)
        if instance_id:
            remove_containers(f"com.berth.container-instance={instance_id}")

"""Issue 12's task metadata endpoint (v4) on real containers: `berth up` on the machine's Docker
daemon, tasks run with boto3, and containers that read their own metadata from inside, as SDKs
and log routers do: `${ECS_CONTAINER_METADATA_URI_V4}`, `/task`, `/stats`, and a made-up token
that must show nothing. The busybox image's `wget` crashes (a static build), so the container
speaks HTTP/1.0 with `nc`."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from harness import BerthUp, describe_task, docker, status_is, wait_for_task, wait_until

CLUSTER = "default"

# Reads its metadata and prints each answer's body after a marker line, then sleeps.
READER = r"""
u=${ECS_CONTAINER_METADATA_URI_V4#http://}; hp=${u%%/*}; p=/${u#*/}
get() { printf 'GET %s HTTP/1.0\r\n\r\n' "$1" | nc "${hp%:*}" "${hp#*:}" | sed '1,/^\r$/d'; echo; }
echo "==URI $ECS_CONTAINER_METADATA_URI_V4"; echo "==V3 $ECS_CONTAINER_METADATA_URI"
echo "==CONTAINER"; get "$p"
echo "==TASK"; get "$p/task"
echo "==STATS"; get "$p/stats"
echo "==OTHER"; get "/v4/0123456789abcdef0123456789abcdef01234567/task"
echo "==END"
trap 'exit 0' TERM; sleep 3600 & wait
"""


def run_reader(ecs: Any, family: str, **td: Any) -> str:
    containers = [
        {"name": "reader", "image": "busybox", "memory": 32, "command": ["sh", "-c", READER]},
        {
            "name": "sidecar",
            "image": "busybox",
            "memory": 16,
            "essential": False,
            "command": ["sleep", "3600"],
            "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5},
        },
    ]
    ecs.register_task_definition(family=family, containerDefinitions=containers, **td)
    out = ecs.run_task(cluster=CLUSTER, taskDefinition=family)
    assert out["failures"] == [], out["failures"]
    return out["tasks"][0]["taskArn"]


def sections(up: BerthUp, task: dict) -> dict[str, str]:
    """What the reader container printed, by marker, once it printed everything."""
    [reader] = [c for c in task["containers"] if c["name"] == "reader"]
    assert reader.get("runtimeId"), task
    container_id = reader["runtimeId"]

    def printed() -> str | None:
        logs = docker("logs", container_id)
        return logs if "==END" in logs else None

    logs = wait_until(printed, 30, "the reader to print its metadata", diagnose=up.server.log_tail)
    out: dict[str, str] = {}
    for block in re.split(r"^==", logs, flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        key, _, value = head.partition(" ")
        out[key] = value if value else body.strip()
    return out


def stop(ecs: Any, arn: str) -> None:
    try:
        ecs.stop_task(cluster=CLUSTER, task=arn)
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's own failure
        pass


def test_a_container_reads_its_own_metadata_from_inside(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family = unique("meta")
    arn = run_reader(ecs, family)
    try:
        task = wait_for_task(ecs, CLUSTER, arn, status_is("RUNNING"), 60, "the task to run", berth_up.server.log_tail)
        task = describe_task(ecs, CLUSTER, arn)
        out = sections(berth_up, task)
        [reader] = [c for c in task["containers"] if c["name"] == "reader"]

        uri = out["URI"]
        assert re.fullmatch(r"http://[0-9.]+:[0-9]+/v4/[0-9a-f]{40}", uri), uri
        assert out["V3"] == uri.replace("/v4/", "/v3/"), out["V3"]

        me = json.loads(out["CONTAINER"])
        assert me["DockerId"] == reader["runtimeId"]
        assert me["Name"] == "reader" and me["Image"] == "busybox" and me["Type"] == "NORMAL"
        assert me["DockerName"] == docker("inspect", "-f", "{{.Name}}", reader["runtimeId"]).strip().lstrip("/")
        assert (me["DesiredStatus"], me["KnownStatus"]) == ("RUNNING", "RUNNING"), me
        assert me["Limits"] == {"CPU": 0, "Memory": 32}, me["Limits"]
        assert me["ContainerARN"] == reader["containerArn"]
        assert me["Labels"]["com.amazonaws.ecs.task-arn"] == arn, me["Labels"]
        assert me["Labels"]["com.amazonaws.ecs.container-name"] == "reader"
        ip = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", reader["runtimeId"]).strip()
        assert me["Networks"] == [{"NetworkMode": "bridge", "IPv4Addresses": [ip]}], me["Networks"]
        for key in ("CreatedAt", "StartedAt"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", me[key]), me[key]

        whole = json.loads(out["TASK"])
        assert whole["TaskARN"] == arn and whole["Cluster"] == CLUSTER
        assert whole["Family"] == family and whole["Revision"] == "1"
        assert whole["LaunchType"] == "EC2"
        assert whole["DesiredStatus"] == "RUNNING"
        # The reader asked while the task was starting or running, never later.
        assert whole["KnownStatus"] in ("ACTIVATING", "RUNNING"), whole["KnownStatus"]
        names = sorted(c["Name"] for c in whole["Containers"])
        assert names == ["reader", "sidecar"], whole["Containers"]
        [mine] = [c for c in whole["Containers"] if c["Name"] == "reader"]
        assert mine["DockerId"] == me["DockerId"]
        # Health only for a container with a health check, as ECS shows it.
        [sidecar] = [c for c in whole["Containers"] if c["Name"] == "sidecar"]
        assert sidecar["Health"]["status"] in ("UNKNOWN", "HEALTHY"), sidecar
        assert "Health" not in mine, mine

        stats = json.loads(out["STATS"])
        assert "memory_stats" in stats and "cpu_stats" in stats, sorted(stats)

        other = json.loads(out["OTHER"])
        assert set(other) == {"Error"}, other
    finally:
        stop(ecs, arn)


def test_a_host_network_container_keeps_reading_its_metadata_across_an_agent_restart(berth_up: BerthUp, unique, tmp_path):
    """A host-network container reaches the endpoint too (on the host's bridge address). The
    token and the port are kept in the agent's data dir: a container started before an agent
    restart (kill -9) reads its metadata after it with the URI it was given."""
    from fault_helpers import FaultAgent

    ecs = berth_up.ecs
    cluster = unique("meta-restart")
    ecs.create_cluster(clusterName=cluster, tags=[{"key": "berth:allow-host-network", "value": "true"}])
    agent = FaultAgent(
        berth_up.server, cluster, tmp_path / "agent", extra_args=("--task-cleanup-wait", "30s", "--allow-host-network", "--availability-zone", "lab-1b"),
    ).start()
    try:
        wait_until(lambda: ecs.list_container_instances(cluster=cluster)["containerInstanceArns"], 30, "the agent to register", diagnose=agent.log_tail)
        family = unique("meta-restart")
        # Reads its task's metadata every second, forever.
        loop = r"""u=${ECS_CONTAINER_METADATA_URI_V4#http://}; hp=${u%%/*}; p=/${u#*/}
while true; do printf 'GET %s/task HTTP/1.0\r\n\r\n' "$p" | nc "${hp%:*}" "${hp#*:}" | tail -n 1; echo; sleep 1; done"""
        ecs.register_task_definition(
            family=family,
            containerDefinitions=[{"name": "loop", "image": "busybox", "memory": 32, "command": ["sh", "-c", loop]}],
            networkMode="host",
        )
        arn = ecs.run_task(cluster=cluster, taskDefinition=family)["tasks"][0]["taskArn"]
        task = wait_for_task(ecs, cluster, arn, status_is("RUNNING"), 60, "the task to run", agent.log_tail)
        container_id = task["containers"][0]["runtimeId"]
        answered = lambda: docker("logs", container_id).count('"KnownStatus":"RUNNING"')  # noqa: E731
        wait_until(lambda: answered() >= 1, 20, "a first answer")
        first = json.loads(docker("logs", container_id).splitlines()[-1])
        assert first["AvailabilityZone"] == "lab-1b", first
        [loop_container] = first["Containers"]
        assert loop_container["Name"] == "loop" and loop_container["Networks"] == [{"NetworkMode": "host"}], first
        agent.kill9()
        time.sleep(2)
        agent.start()
        before = answered()
        wait_until(lambda: answered() >= before + 3, 30, "answers after the agent restart", diagnose=agent.log_tail)
        ecs.stop_task(cluster=cluster, task=arn)
    finally:
        agent.close()
        from harness import LABEL_CLUSTER, remove_containers

        remove_containers(f"{LABEL_CLUSTER}={cluster}")


# Sets its own scale-in protection through ${ECS_AGENT_URI}, reads it back, prints both.
PROTECT = r"""
u=${ECS_AGENT_URI#http://}; hp=${u%%/*}; p=/${u#*/}/task-protection/v1/state
call() { printf '%s %s HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n%s' "$1" "$p" "${#2}" "$2" | nc "${hp%:*}" "${hp#*:}" | sed '1,/^\r$/d'; echo; }
echo "==PUT"; call PUT '{"ProtectionEnabled":true,"ExpiresInMinutes":30}'
echo "==GET"; call GET ''
echo "==BAD"; call PUT '{"ExpiresInMinutes":30}'
echo "==END"
trap 'exit 0' TERM; sleep 3600 & wait
"""


def test_a_service_task_protects_itself_through_the_agent_uri(berth_up: BerthUp, unique):
    """`${ECS_AGENT_URI}/task-protection/v1/state` as ECS documents it: PUT sets the task's
    scale-in protection, GET reads it, answers in the ECS agent's shapes; the protection is the
    one GetTaskProtection shows."""
    ecs = berth_up.ecs
    family, service = unique("self-protect"), unique("self-protect")
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "reader", "image": "busybox", "memory": 32, "command": ["sh", "-c", PROTECT]}],
    )
    ecs.create_service(cluster=CLUSTER, serviceName=service, taskDefinition=family, desiredCount=1)
    try:
        ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=[service], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        [arn] = ecs.list_tasks(cluster=CLUSTER, serviceName=service)["taskArns"]
        out = sections(berth_up, describe_task(ecs, CLUSTER, arn))
        put, got = json.loads(out["PUT"])["protection"], json.loads(out["GET"])["protection"]
        assert put["TaskArn"] == arn and put["ProtectionEnabled"] is True, put
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", put["ExpirationDate"]), put
        assert got == put, (got, put)
        bad = json.loads(out["BAD"])["error"]
        assert bad["Arn"] == arn and bad["Code"] == "InvalidRequest", bad
        [shown] = ecs.get_task_protection(cluster=CLUSTER, tasks=[arn])["protectedTasks"]
        assert shown["protectionEnabled"] is True
        assert 29 * 60 <= shown["expirationDate"].timestamp() - time.time() <= 30 * 60
    finally:
        ecs.update_service(cluster=CLUSTER, service=service, desiredCount=0)
        ecs.delete_service(cluster=CLUSTER, service=service, force=True)

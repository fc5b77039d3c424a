"""Security groups on awsvpc tasks, on real containers: groups made with the EC2 API
(boto3's `ec2` client on Berth's endpoint) are enforced on each task's own interface — a task
in a Berth group accepts connections from its host, from tasks that share one of its groups,
and from what its groups' ingress rules allow (here: port 8080 from the tasks of another
group, port 9090 from a CIDR block), and nothing else; a group id Berth does not know (written
for AWS) filters nothing. Each check is a probe task that fetches from the web task and exits
0 or 1 (busybox's `wget -T` crashes, so `timeout` bounds the wait)."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from harness import BerthUp, boto3_client, docker, status_is, wait_for_task, wait_until

# Serves the same page on ports 80, 8080 and 9090.
SERVE = (
    "mkdir -p /www && echo web > /www/index.html && "
    "(httpd -f -p 8080 -h /www &) && (httpd -f -p 9090 -h /www &) && exec httpd -f -p 80 -h /www"
)
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str) -> str | None:
    assert url.startswith("http://10.200."), url
    try:
        with DIRECT.open(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def eni_address(task: dict) -> str:
    details = task["attachments"][0]["details"]
    return next(d["value"] for d in details if d["name"] == "privateIPv4Address")


def input_chain(task_arn: str) -> str:
    """`iptables -S INPUT` in the network namespace of the task's pause container."""
    pause = docker("ps", "-q", "--filter", "label=com.berth.task-network",
                   "--filter", f"label=com.berth.task-arn={task_arn}").split()
    assert len(pause) == 1, pause
    pid = json.loads(docker("inspect", pause[0]))[0]["State"]["Pid"]
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", "iptables", "-S", "INPUT"],
                          capture_output=True, text=True, check=True).stdout


def awsvpc(groups: list[str]) -> dict:
    return {"awsvpcConfiguration": {"subnets": ["subnet-0abc1234"], "securityGroups": groups}}


@pytest.fixture(scope="module")
def ec2(berth_up: BerthUp):
    return boto3_client(berth_up.endpoint, berth_up.server.credentials, service="ec2")


def test_tasks_in_berth_groups_accept_only_their_host_their_group_and_their_rules(berth_up: BerthUp, ec2, unique):
    ecs = berth_up.ecs
    web_group = ec2.create_security_group(GroupName=unique("web"), Description="web tasks")["GroupId"]
    client_group = ec2.create_security_group(GroupName=unique("client"), Description="may call 8080")["GroupId"]
    other_group = ec2.create_security_group(GroupName=unique("other"), Description="no rule names it")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": client_group}]},
        {"IpProtocol": "tcp", "FromPort": 9090, "ToPort": 9090, "IpRanges": [{"CidrIp": "10.200.0.0/16"}]},
    ])

    family = unique("sg-web")
    ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "web", "image": "busybox", "essential": True,
                               "entryPoint": ["sh", "-c"], "command": [SERVE]}],
    )
    ran = ecs.run_task(cluster="default", taskDefinition=family, launchType="FARGATE",
                       networkConfiguration=awsvpc([web_group]))
    assert ran["failures"] == [], ran["failures"]
    web_arn = ran["tasks"][0]["taskArn"]
    web = wait_for_task(ecs, "default", web_arn, status_is("RUNNING"), 60, "the web task to run",
                        berth_up.server.log_tail)
    ip = eni_address(web)

    # The host always gets in (the load balancer's proxy and health checks come from it).
    assert wait_until(lambda: fetch(f"http://{ip}/"), 20, "the web task to answer the host") == "web\n"

    # The filter is the task namespace's own iptables table: drop unless accepted.
    table = input_chain(web_arn)
    assert "-P INPUT DROP" in table, table

    probe = unique("sg-probe")
    ecs.register_task_definition(
        family=probe, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "probe", "image": "busybox", "essential": True,
                               "command": ["sh", "-c", 'timeout 5 wget -qO- "http://$TARGET/" | grep -q web']}],
    )
    # (groups of the probe, port it calls, whether it gets in)
    cases = [
        ([web_group], 80, True),            # shares the web task's group
        ([client_group], 8080, True),       # the rule for the client group's tasks
        ([client_group], 80, False),        # ... names port 8080 only
        ([other_group], 80, False),         # no rule names this group
        ([other_group], 8080, False),
        ([other_group], 9090, True),        # the CIDR rule covers every task address
        (["sg-0abc1234"], 80, False),       # an unknown group: the probe is unfiltered, not let in
    ]
    started = []
    for groups, port, _ in cases:
        out = ecs.run_task(
            cluster="default", taskDefinition=probe, launchType="FARGATE", networkConfiguration=awsvpc(groups),
            overrides={"containerOverrides": [{"name": "probe", "environment": [
                {"name": "TARGET", "value": f"{ip}:{port}"}]}]},
        )
        assert out["failures"] == [], out["failures"]
        started.append(out["tasks"][0]["taskArn"])
    for (groups, port, allowed), arn in zip(cases, started):
        done = wait_for_task(ecs, "default", arn, status_is("STOPPED"), 90, "a probe to finish",
                             berth_up.server.log_tail)
        code = done["containers"][0].get("exitCode")
        assert code == (0 if allowed else 1), f"probe in {groups} to port {port}: exit {code}, {done.get('stoppedReason')}"

    # As EC2 refuses to delete a group a network interface is in, while the web task runs.
    try:
        ec2.delete_security_group(GroupId=web_group)
        raise AssertionError("a group in use was deleted")
    except ec2.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "DependencyViolation", e.response["Error"]
        assert web_arn in e.response["Error"]["Message"], e.response["Error"]

    ecs.stop_task(cluster="default", task=web_arn, reason="test over")
    wait_for_task(ecs, "default", web_arn, status_is("STOPPED"), 60, "the web task to stop", berth_up.server.log_tail)
    for group in (web_group, client_group, other_group):
        # The web group's rule names the client group: it goes first.
        ec2.delete_security_group(GroupId=group)


def test_a_task_whose_groups_berth_does_not_know_is_not_filtered(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family = unique("sg-open")
    ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "web", "image": "busybox", "essential": True,
                               "entryPoint": ["sh", "-c"], "command": [SERVE]}],
    )
    ran = ecs.run_task(cluster="default", taskDefinition=family, launchType="FARGATE",
                       networkConfiguration=awsvpc(["sg-0abc1234"]))
    arn = ran["tasks"][0]["taskArn"]
    task = wait_for_task(ecs, "default", arn, status_is("RUNNING"), 60, "the task to run", berth_up.server.log_tail)
    table = input_chain(arn)
    assert "-P INPUT ACCEPT" in table, table
    assert wait_until(lambda: fetch(f"http://{eni_address(task)}:9090/"), 20, "the task to answer") == "web\n"
    ecs.stop_task(cluster="default", task=arn, reason="test over")
    wait_for_task(ecs, "default", arn, status_is("STOPPED"), 60, "the task to stop", berth_up.server.log_tail)

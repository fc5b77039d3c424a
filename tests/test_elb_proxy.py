"""Elastic Load Balancing v2's data plane on `berth up`, with real containers: busybox httpd
tasks run with ECS RunTask (bridge network, dynamic host ports) and registered as `ip`
targets, behind listeners the server itself serves on 127.0.0.1, driven from boto3's `elbv2`
client and the AWS CLI.

An application load balancer: targets `initial` right after registration, then `healthy`
by their checks; requests spread round robin over a group's two tasks, each seeing
`X-Forwarded-For` (appended to), `-Proto`, `-Port` and its `Host` kept; rules on a path and a
host forward to a second group, a fixed response is answered by the load balancer itself; a
task stopped without being deregistered turns `unhealthy` with ELB's reason and its traffic
goes to the other task; a deregistered target `draining` gets no requests and is gone once
the deregistration delay (5 s) has passed; sticky sessions (the AWSALB cookie) keep a client
on one task; deleting the listener frees its port. A network
load balancer passes a TCP connection through to a task, untouched, and deleting it frees its
listener's port. A WebSocket goes through an application load balancer to a WebSocket server
on the host. Each test deletes what it made, whether it passes or not."""

from __future__ import annotations

import collections
import contextlib
import errno
import http.client
import json
import socket
import threading
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Optional

import pytest
import websockets.sync.client
import websockets.sync.server

from harness import BerthUp, boto3_client, free_port, status_is, wait_for_task, wait_until
from iam_helpers import aws, error_of

CLUSTER = "default"

# Each task serves its own identity (its container's hostname) at / and /api/x, and a CGI
# script that prints its environment: busybox httpd hands every request header to CGI as
# HTTP_<NAME>, which is how a test sees what the load balancer sent. `exec` makes httpd PID 1,
# so the task stops on its stopTimeout rather than on Docker's default 10 s.
SERVE = r"""mkdir -p /www/cgi-bin /www/api
echo "$HOSTNAME" > /www/index.html
cp /www/index.html /www/api/x
printf '#!/bin/sh\necho Content-Type: text/plain\necho\nenv\n' > /www/cgi-bin/env
chmod +x /www/cgi-bin/env
exec httpd -f -p 8080 -h /www"""

# Short health checks: a target is healthy 5 s after its first check, unhealthy 5-10 s after
# it dies.
FAST_CHECKS = {
    "HealthCheckIntervalSeconds": 5,
    "HealthCheckTimeoutSeconds": 2,
    "HealthyThresholdCount": 2,
    "UnhealthyThresholdCount": 2,
}


@pytest.fixture(scope="module")
def elbv2(berth_up: BerthUp):
    """ELBv2 through the recording proxy."""
    return boto3_client(berth_up.endpoint, berth_up.server.credentials, service="elbv2")


@dataclass(frozen=True)
class Task:
    arn: str
    port: int  # the dynamic host port of its container's 8080
    name: str  # what it serves: its container's hostname


def register_web(berth_up: BerthUp, family: str) -> None:
    berth_up.ecs.register_task_definition(
        family=family,
        networkMode="bridge",
        containerDefinitions=[
            {
                "name": "web",
                "image": "busybox",
                "memory": 32,
                "essential": True,
                "command": ["sh", "-c", SERVE],
                "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
                "stopTimeout": 2,
            }
        ],
    )


def run_web(berth_up: BerthUp, family: str, count: int, cleanup: contextlib.ExitStack) -> list[Task]:
    """`count` tasks of `family`, RUNNING and answering on their host ports (they are stopped
    when `cleanup` closes)."""
    ecs = berth_up.ecs
    out = ecs.run_task(cluster=CLUSTER, taskDefinition=family, count=count)
    assert out["failures"] == [], out["failures"]
    arns = [t["taskArn"] for t in out["tasks"]]
    assert len(arns) == count
    for arn in arns:
        cleanup.callback(ecs.stop_task, cluster=CLUSTER, task=arn, reason="test_elb_proxy cleanup")
    tasks = []
    for arn in arns:
        task = wait_for_task(ecs, CLUSTER, arn, status_is("RUNNING", "STOPPED"), 60, "the task to run",
                             berth_up.server.log_tail)
        assert task["lastStatus"] == "RUNNING", task.get("stoppedReason")
        [port] = {b["hostPort"] for b in task["containers"][0]["networkBindings"]
                  if b["containerPort"] == 8080 and ":" not in b.get("bindIP", "")}
        answer = wait_until(lambda: answer_of(port, "/"), 20, f"httpd of {arn} to answer on {port}")
        assert answer[0] == 200, answer
        tasks.append(Task(arn, port, answer[2].strip()))
    assert len({t.name for t in tasks}) == count, tasks
    return tasks


def get(port: int, path: str = "/", headers: Optional[dict] = None,
        conn: Optional[http.client.HTTPConnection] = None, method: str = "GET",
        body: Optional[bytes] = None) -> tuple[int, dict[str, str], str]:
    """GET (or `method`) `path` on 127.0.0.1:`port` (on `conn`, kept open, if given): status,
    headers (lower-case names), body."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        text = response.read().decode(errors="replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, text
    finally:
        if own:
            conn.close()


def answer_of(port: int, path: str) -> Optional[tuple[int, dict[str, str], str]]:
    """get(), or None while nothing accepts connections on the port."""
    try:
        return get(port, path)
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        return None


def served_by(port: int, path: str = "/", headers: Optional[dict] = None) -> str:
    """Which task answered a GET of `path` through the listener on `port` (it must be 200)."""
    status, _, body = get(port, path, headers)
    assert status == 200, (status, body)
    return body.strip()


def cgi_env(port: int, headers: Optional[dict] = None) -> dict[str, str]:
    """The environment of the CGI script of the task a request through `port` reached: the
    headers it received, as HTTP_<NAME>."""
    status, _, body = get(port, "/cgi-bin/env", headers)
    assert status == 200, (status, body)
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


def health(elbv2, group: str) -> dict[int, tuple[str, str]]:
    """The group's targets (all on 127.0.0.1) by port: (state, reason)."""
    described = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    assert all(d["Target"]["Id"] == "127.0.0.1" for d in described), described
    return {d["Target"]["Port"]: (d["TargetHealth"]["State"], d["TargetHealth"].get("Reason", "")) for d in described}


def wait_health(elbv2, group: str, wanted: dict[int, str], timeout: float, what: str) -> None:
    last: dict = {}

    def probe() -> bool:
        nonlocal last
        last = health(elbv2, group)
        return {port: state for port, (state, _) in last.items()} == wanted

    wait_until(probe, timeout, what, interval=0.5, diagnose=lambda: f"last seen: {last}")


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:`port` any more: a connection is refused and the
    port can be bound and listened on (SO_REUSEADDR: connections of the past may linger in
    TIME_WAIT, a listening socket may not)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def cli(berth_up: BerthUp, tmp_path: Path, *args: str) -> dict:
    """`aws elbv2 <args>` against the server; its JSON output."""
    done = aws(berth_up.server, berth_up.server.credentials, tmp_path, "elbv2", *args)
    assert done.returncode == 0, f"aws elbv2 {' '.join(args)}: {done.stderr}"
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_an_application_load_balancer_balances_routes_checks_and_drains_real_tasks(
    berth_up: BerthUp, elbv2, unique, tmp_path: Path
):
    ecs = berth_up.ecs
    name = unique("alb")
    family = unique("web")
    register_web(berth_up, family)
    with contextlib.ExitStack() as cleanup:
        first, second, api = run_web(berth_up, family, 3, cleanup)

        checks = [f"--health-check-interval-seconds={FAST_CHECKS['HealthCheckIntervalSeconds']}",
                  f"--health-check-timeout-seconds={FAST_CHECKS['HealthCheckTimeoutSeconds']}",
                  f"--healthy-threshold-count={FAST_CHECKS['HealthyThresholdCount']}",
                  f"--unhealthy-threshold-count={FAST_CHECKS['UnhealthyThresholdCount']}"]
        web_group = cli(berth_up, tmp_path, "create-target-group", "--name", f"{name}-web", "--protocol", "HTTP",
                        "--port", "8080", "--target-type", "ip", "--health-check-path", "/",
                        *checks)["TargetGroups"][0]["TargetGroupArn"]
        cleanup.callback(elbv2.delete_target_group, TargetGroupArn=web_group)
        api_group = elbv2.create_target_group(Name=f"{name}-api", Protocol="HTTP", Port=8080, TargetType="ip",
                                              **FAST_CHECKS)["TargetGroups"][0]["TargetGroupArn"]
        cleanup.callback(elbv2.delete_target_group, TargetGroupArn=api_group)
        lb_arn = elbv2.create_load_balancer(Name=name, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
        cleanup.callback(elbv2.delete_load_balancer, LoadBalancerArn=lb_arn)

        port = free_port()
        listener = cli(berth_up, tmp_path, "create-listener", "--load-balancer-arn", lb_arn, "--protocol", "HTTP",
                       "--port", str(port), "--default-actions",
                       f"Type=forward,TargetGroupArn={web_group}")["Listeners"][0]["ListenerArn"]
        # The listener serves within the data plane's tick; its group has no targets yet: 503
        # from the load balancer itself.
        status, _, body = wait_until(lambda: answer_of(port, "/"), 10, f"the listener to accept on {port}")
        assert status == 503, (status, body)

        elbv2.create_rule(
            ListenerArn=listener, Priority=10,
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": api_group}],
        )
        elbv2.create_rule(
            ListenerArn=listener, Priority=20,
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com"]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": api_group}],
        )
        cli(berth_up, tmp_path, "create-rule", "--listener-arn", listener, "--priority", "5",
            "--conditions", json.dumps([{"Field": "path-pattern", "Values": ["/health"]}]),
            "--actions", json.dumps([{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "ok"}}]))

        # 1. Registered, the targets are `initial` until their checks pass, then `healthy`.
        elbv2.register_targets(TargetGroupArn=web_group, Targets=[{"Id": "127.0.0.1", "Port": t.port} for t in (first, second)])
        elbv2.register_targets(TargetGroupArn=api_group, Targets=[{"Id": "127.0.0.1", "Port": api.port}])
        registering = ("initial", "Elb.RegistrationInProgress")
        assert health(elbv2, web_group) == {first.port: registering, second.port: registering}
        assert health(elbv2, api_group) == {api.port: registering}
        wait_health(elbv2, web_group, {first.port: "healthy", second.port: "healthy"}, 30, "the web targets to be healthy")
        wait_health(elbv2, api_group, {api.port: "healthy"}, 30, "the api target to be healthy")
        assert health(elbv2, web_group)[first.port] == ("healthy", "")

        # Round robin over the two web tasks, on one keep-alive connection.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            answers = [get(port, "/", conn=conn) for _ in range(20)]
        finally:
            conn.close()
        assert {status for status, _, _ in answers} == {200}, answers
        counts = collections.Counter(body.strip() for _, _, body in answers)
        assert set(counts) == {first.name, second.name}, counts
        assert min(counts.values()) >= 5, counts

        # What a target sees: X-Forwarded-For (the client's own appended), -Proto, -Port; Host kept.
        env = cgi_env(port)
        assert env["HOSTNAME"] in (first.name, second.name), env
        assert (env.get("HTTP_X_FORWARDED_FOR"), env.get("HTTP_X_FORWARDED_PROTO"), env.get("HTTP_X_FORWARDED_PORT")) == (
            "127.0.0.1", "http", str(port)), env
        assert env.get("HTTP_HOST") == f"127.0.0.1:{port}", env
        env = cgi_env(port, {"X-Forwarded-For": "203.0.113.7"})
        assert env.get("HTTP_X_FORWARDED_FOR") == "203.0.113.7, 127.0.0.1", env

        # 2. Rules: a path and a host go to the api group; /health is the load balancer's own answer.
        assert [served_by(port, "/api/x") for _ in range(4)] == [api.name] * 4
        assert {served_by(port, "/") for _ in range(4)} == {first.name, second.name}
        assert served_by(port, "/", {"Host": "api.example.com"}) == api.name
        assert served_by(port, "/", {"Host": "API.Example.com:8443"}) == api.name
        status, headers, body = get(port, "/health")
        assert (status, body) == (200, "ok"), (status, headers, body)
        assert headers["content-type"].startswith("text/plain"), headers
        status, _, _ = get(port, "/healthz")  # no rule: the default action, to httpd, which has no such file
        assert status == 404

        # Sticky sessions (lb_cookie), set with the AWS CLI: the AWSALB cookie of the first
        # answer keeps a client on its task; without it requests still spread.
        cli(berth_up, tmp_path, "modify-target-group-attributes", "--target-group-arn", web_group, "--attributes",
            "Key=stickiness.enabled,Value=true", "Key=stickiness.lb_cookie.duration_seconds,Value=300")

        def sticky_answer() -> Optional[tuple[str, str]]:
            status, headers, body = get(port, "/")
            cookie = headers.get("set-cookie", "")
            return (cookie.split(";")[0], body.strip()) if status == 200 and cookie.startswith("AWSALB=") else None

        cookie, stuck_to = wait_until(sticky_answer, 10, "the AWSALB cookie once stickiness is on")
        assert {served_by(port, "/", {"Cookie": cookie}) for _ in range(6)} == {stuck_to}
        assert {served_by(port, "/") for _ in range(4)} == {first.name, second.name}
        cli(berth_up, tmp_path, "modify-target-group-attributes", "--target-group-arn", web_group, "--attributes",
            "Key=stickiness.enabled,Value=false")
        wait_until(lambda: "set-cookie" not in get(port, "/")[1], 10, "no AWSALB cookie once stickiness is off")

        # 3. A task stopped without being deregistered turns unhealthy; its share of the
        # traffic goes to the other task, also while its checks are still failing.
        ecs.stop_task(cluster=CLUSTER, task=second.arn, reason="the load balancer must notice")
        meanwhile: list[tuple[int, str]] = []

        def second_unhealthy() -> Optional[tuple[str, str]]:
            status, _, body = get(port, "/")
            meanwhile.append((status, body.strip()))
            state = health(elbv2, web_group)[second.port]
            return state if state[0] == "unhealthy" else None

        state = wait_until(second_unhealthy, 30, "the stopped task's target to turn unhealthy", interval=0.3,
                           diagnose=lambda: f"health: {health(elbv2, web_group)}")
        assert state[1] in ("Target.FailedHealthChecks", "Target.Timeout"), state
        assert health(elbv2, web_group)[first.port] == ("healthy", "")
        assert {s for s, _ in meanwhile} == {200}, meanwhile
        answers = [get(port, "/") for _ in range(20)]
        assert [(s, b.strip()) for s, _, b in answers] == [(200, first.name)] * 20, answers
        # Not a retry that hides it: a POST, which the load balancer never sends twice, also
        # goes to the live task only.
        for _ in range(6):
            status, _, body = get(port, "/cgi-bin/env", method="POST", body=b"n=1",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert status == 200 and f"HOSTNAME={first.name}" in body.splitlines(), (status, body)
        wait_for_task(ecs, CLUSTER, second.arn, status_is("STOPPED"), 30, "the stopped task to be STOPPED")

        # 4. Draining: a second target in the api group (the first web task), then the api
        # task deregistered with a 5-s delay.
        changed = cli(berth_up, tmp_path, "modify-target-group-attributes", "--target-group-arn", api_group,
                      "--attributes", "Key=deregistration_delay.timeout_seconds,Value=5")["Attributes"]
        assert {"Key": "deregistration_delay.timeout_seconds", "Value": "5"} in changed
        elbv2.register_targets(TargetGroupArn=api_group, Targets=[{"Id": "127.0.0.1", "Port": first.port}])
        wait_health(elbv2, api_group, {api.port: "healthy", first.port: "healthy"}, 30, "both api targets to be healthy")
        assert {served_by(port, "/api/x") for _ in range(6)} == {api.name, first.name}

        elbv2.deregister_targets(TargetGroupArn=api_group, Targets=[{"Id": "127.0.0.1", "Port": api.port}])
        assert health(elbv2, api_group) == {
            api.port: ("draining", "Target.DeregistrationInProgress"),
            first.port: ("healthy", ""),
        }
        # The data plane takes the change within its one-second tick: from then on no request
        # reaches the draining target (round robin over two would alternate).
        recent: list[str] = []

        def only_first() -> bool:
            recent.append(served_by(port, "/api/x"))
            return recent[-6:] == [first.name] * 6

        wait_until(only_first, 5, "the draining target to get no more requests", interval=0.05,
                   diagnose=lambda: f"served by: {recent}")
        assert [served_by(port, "/api/x") for _ in range(20)] == [first.name] * 20
        wait_until(lambda: api.port not in health(elbv2, api_group), 12, "the drained target to be gone", interval=0.5,
                   diagnose=lambda: f"health: {health(elbv2, api_group)}")
        assert health(elbv2, api_group) == {first.port: ("healthy", "")}
        assert served_by(port, "/api/x") == first.name

        # 6. Deleting the listener frees its port.
        assert answer_of(port, "/health") is not None
        elbv2.delete_listener(ListenerArn=listener)
        assert elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"] == []
        wait_until(lambda: port_is_free(port), 5, f"port {port} to be free after DeleteListener")

    # Nothing is left behind: the load balancer and groups are gone, the tasks stopped.
    assert error_of(elbv2.describe_load_balancers, Names=[name]) == ("LoadBalancerNotFound", 400)
    assert error_of(elbv2.describe_target_groups, Names=[f"{name}-web", f"{name}-api"]) == ("TargetGroupNotFound", 400)
    all_stopped(berth_up, first, second, api)


def all_stopped(berth_up: BerthUp, *tasks: Task) -> None:
    for task in tasks:
        wait_for_task(berth_up.ecs, CLUSTER, task.arn, status_is("STOPPED"), 30, "the task to be stopped")


def test_a_network_load_balancer_passes_a_connection_through_to_a_task(berth_up: BerthUp, elbv2, unique, tmp_path: Path):
    name = unique("nlb")
    family = unique("tcp")
    register_web(berth_up, family)
    with contextlib.ExitStack() as cleanup:
        [task] = run_web(berth_up, family, 1, cleanup)
        group = elbv2.create_target_group(Name=name, Protocol="TCP", Port=8080, TargetType="ip", **FAST_CHECKS)[
            "TargetGroups"][0]
        cleanup.callback(elbv2.delete_target_group, TargetGroupArn=group["TargetGroupArn"])
        assert group["HealthCheckProtocol"] == "TCP"
        lb_arn = cli(berth_up, tmp_path, "create-load-balancer", "--name", name, "--type", "network")[
            "LoadBalancers"][0]["LoadBalancerArn"]
        cleanup.callback(elbv2.delete_load_balancer, LoadBalancerArn=lb_arn)
        port = free_port()
        elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="TCP", Port=port,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}])
        elbv2.register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": "127.0.0.1", "Port": task.port}])
        wait_health(elbv2, group["TargetGroupArn"], {task.port: "healthy"}, 30, "the TCP target to be healthy")

        # The bytes go through as they are: the task answers, and sees no X-Forwarded-* (a
        # layer-4 load balancer adds nothing) and the Host the client sent.
        assert [served_by(port, "/") for _ in range(3)] == [task.name] * 3
        env = cgi_env(port)
        assert env["HOSTNAME"] == task.name
        assert env.get("HTTP_HOST") == f"127.0.0.1:{port}", env
        assert not [k for k in env if k.startswith("HTTP_X_FORWARDED")], env

        # Deleting the load balancer deletes its listener: the port is free.
        deleted = cli(berth_up, tmp_path, "delete-load-balancer", "--load-balancer-arn", lb_arn)
        assert deleted == {}
        wait_until(lambda: port_is_free(port), 5, f"port {port} to be free after DeleteLoadBalancer")
    assert error_of(elbv2.describe_target_groups, Names=[name]) == ("TargetGroupNotFound", 400)
    all_stopped(berth_up, task)


def test_a_websocket_goes_through_an_application_load_balancer(berth_up: BerthUp, elbv2, unique):
    """A WebSocket client (the `websockets` library) talks to a WebSocket echo server on this
    host, registered as an `ip` target, through an HTTP listener: the handshake is passed on
    (with X-Forwarded-For) and messages flow both ways until the client closes."""
    seen: list[dict[str, str]] = []

    def echo(connection) -> None:
        seen.append({k.lower(): v for k, v in connection.request.headers.raw_items()})
        for message in connection:
            connection.send(message)

    def health(connection, request):
        return connection.respond(HTTPStatus.OK, "ok\n") if request.path == "/health" else None

    name = unique("ws")
    target_port = free_port()
    with contextlib.ExitStack() as cleanup:
        server = websockets.sync.server.serve(echo, "127.0.0.1", target_port, process_request=health)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        cleanup.callback(server.shutdown)
        group = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=target_port, TargetType="ip",
                                          HealthCheckPath="/health", **FAST_CHECKS)["TargetGroups"][0]
        cleanup.callback(elbv2.delete_target_group, TargetGroupArn=group["TargetGroupArn"])
        lb_arn = elbv2.create_load_balancer(Name=name, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
        cleanup.callback(elbv2.delete_load_balancer, LoadBalancerArn=lb_arn)
        port = free_port()
        elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}])
        elbv2.register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
        wait_health(elbv2, group["TargetGroupArn"], {target_port: "healthy"}, 30, "the WebSocket server to be healthy")

        with websockets.sync.client.connect(f"ws://127.0.0.1:{port}/chat", open_timeout=10) as client:
            for message in ["hello", "x" * 100_000, "bye"]:
                client.send(message)
                assert client.recv(timeout=10) == message
        assert len(seen) == 1, seen
        assert seen[0]["upgrade"].lower() == "websocket"
        assert seen[0]["x-forwarded-for"] == "127.0.0.1"
        assert seen[0]["host"] == f"127.0.0.1:{port}"

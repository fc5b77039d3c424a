"""ExecuteCommand on real containers: `berth up` on the machine's Docker daemon, driven with
boto3, and the Session Manager data channel spoken by tests/ssm_channel.py, an independent
client that behaves as the open-source session-manager-plugin (what `aws ecs
execute-command` runs) does.

What is tested:
  a. ExecuteCommand on a task run with enableExecuteCommand answers with a session (id,
     stream URL, token) and the task's and container's identity; on the data channel the
     server sends a HandshakeRequest (a SessionType action) as message 0, waits for the
     answer, sends HandshakeComplete as message 1, then runs /bin/sh on a terminal of the
     size the client sent (`stty size` says "40 120"), relays keystrokes and output, numbers
     its output 0, 1, 2, ... without a gap, acknowledges every input message by its sequence
     number and id, and ends with channel_closed when the shell exits. The task keeps
     running.
  b. A task run without enableExecuteCommand: InvalidParameterException naming execute
     command as not enabled.
  c. interactive=False: InvalidParameterException (ECS runs interactive sessions only).
  d. A session's token opens one data channel only: presented again (while the first is open,
     and after it ended), a wrong token, or another session's token gets no output and the
     connection is closed (or the upgrade refused).
  e. A user whose policy allows only ecs:DescribeTasks gets AccessDeniedException.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
import uuid
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from harness import BerthUp, assert_loopback, berth_bin, describe_task, status_is, wait_for_task
from iam_helpers import allow, delete_user, make_user
from ssm_channel import (
    ACKNOWLEDGE,
    CHANNEL_CLOSED,
    HANDSHAKE_COMPLETE,
    HANDSHAKE_REQUEST,
    HANDSHAKE_RESPONSE,
    INPUT_STREAM_DATA,
    KNOWN_SESSION_TYPES,
    OUTPUT,
    OUTPUT_STREAM_DATA,
    SIZE,
    DataChannelClient,
    InvalidHandshake,
)
from test_docker_services import CLUSTER, register

CONTAINER = "main"
SHELL = "/bin/sh"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def start_task(up: BerthUp, family: str, **run: Any) -> str:
    """Registers the sleeper (busybox, memory 32) as `family`, runs one task of it with `run`
    added to RunTask, and waits until it is RUNNING; returns its ARN."""
    register(up.ecs, family)
    out = up.ecs.run_task(cluster=CLUSTER, taskDefinition=family, **run)
    assert out["failures"] == [], out["failures"]
    arn = out["tasks"][0]["taskArn"]
    wait_for_task(up.ecs, CLUSTER, arn, status_is("RUNNING"), 60, "the task to run", up.server.log_tail)
    return arn


def stop_quietly(up: BerthUp, arn: str) -> None:
    try:
        up.ecs.stop_task(cluster=CLUSTER, task=arn)
    except Exception:  # noqa: BLE001 - cleanup must not hide the test's own failure
        pass


@pytest.fixture(scope="module")
def exec_task(berth_up: BerthUp) -> Iterator[str]:
    """A sleeper task run with enableExecuteCommand=True, shared by the module."""
    arn = start_task(berth_up, f"exec-{uuid.uuid4().hex[:8]}", enableExecuteCommand=True)
    try:
        yield arn
    finally:
        stop_quietly(berth_up, arn)


def execute(ecs: Any, task: str, **overrides: Any) -> dict:
    """ExecuteCommand of /bin/sh in the task's container, interactive."""
    return ecs.execute_command(
        **{"cluster": CLUSTER, "task": task, "container": CONTAINER, "interactive": True, "command": SHELL, **overrides}
    )


def new_session(berth_up: BerthUp, task: str) -> dict:
    """A fresh session on `task`; checks the parts of it the tests rely on. Its stream URL
    names the address boto3 called (the recording proxy); it is opened on the server itself,
    since the proxy, which buffers whole bodies, cannot carry a WebSocket."""
    session = execute(berth_up.ecs, task)["session"]
    assert session["streamUrl"].startswith(f"ws://127.0.0.1:{berth_up.proxy.port}/v1/data-channel/"), session
    assert_loopback(session["streamUrl"])
    assert session["tokenValue"] and session["sessionId"], session
    session["streamUrl"] = session["streamUrl"].replace(f":{berth_up.proxy.port}/", f":{berth_up.server.port}/", 1)
    return session


def refused(stream_url: str, token: str, what: str) -> None:
    """Asserts that presenting `token` on `stream_url` gets nothing: the upgrade is refused,
    or the connection is closed without a single output_stream_data message."""
    client = DataChannelClient(stream_url, token)
    try:
        client.connect()
    except InvalidHandshake:
        return
    try:
        client.wait_for_disconnect(15)
        assert client.output_stream() == [], f"{what}: output came on a refused channel\n{client.describe()}"
        assert client.output == b"" and client.handshake_request is None, what
    finally:
        client.close()


def error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = caught.value.response
    return response["Error"]["Code"], response["Error"].get("Message", ""), response["ResponseMetadata"]["HTTPStatusCode"]


# ---------------------------------------------------------------------------------------------
# a. A shell over the data channel
# ---------------------------------------------------------------------------------------------


def test_execute_command_answers_with_a_session_for_the_task_and_container(berth_up: BerthUp, exec_task: str):
    ecs = berth_up.ecs
    task = describe_task(ecs, CLUSTER, exec_task)
    assert task.get("enableExecuteCommand") is True, task
    [container] = [c for c in task["containers"] if c["name"] == CONTAINER]
    # As ECS shows it: the container's ExecuteCommandAgent runs while the container does.
    [agent] = container["managedAgents"]
    assert (agent["name"], agent["lastStatus"]) == ("ExecuteCommandAgent", "RUNNING"), agent
    assert agent["lastStartedAt"].timestamp() == task["startedAt"].timestamp(), (agent, task["startedAt"])

    out = execute(ecs, exec_task)
    assert out["clusterArn"] == task["clusterArn"]
    assert out["taskArn"] == exec_task
    assert out["containerName"] == CONTAINER
    assert out["containerArn"] == container["containerArn"]
    assert out["interactive"] is True
    session = out["session"]
    assert set(session) >= {"sessionId", "streamUrl", "tokenValue"}, session
    assert session["streamUrl"].startswith(("ws://", "wss://"))
    other = execute(ecs, exec_task)["session"]
    assert other["sessionId"] != session["sessionId"]
    assert other["tokenValue"] != session["tokenValue"]


def test_shell_session_over_the_data_channel(berth_up: BerthUp, exec_task: str):
    ecs = berth_up.ecs
    session = new_session(berth_up, exec_task)
    client = DataChannelClient(session["streamUrl"], session["tokenValue"], auto_handshake=False)
    with client:
        # Handshake: HandshakeRequest as message 0 with a SessionType action; nothing more
        # until it is answered (our message 0); then HandshakeComplete as message 1.
        request = client.wait_for_handshake_request(30)
        actions = request["RequestedClientActions"]
        assert "SessionType" in [a["ActionType"] for a in actions], actions
        time.sleep(1.0)
        stream = client.output_stream()
        assert [(r.sequence_number, r.payload_type) for r in stream] == [(0, HANDSHAKE_REQUEST)], client.describe()
        assert client.acks_sent == [(OUTPUT_STREAM_DATA, 0)]
        assert client.answer_handshake() == 0
        complete = client.wait_for_handshake(30)
        assert client.session_type in KNOWN_SESSION_TYPES, request
        assert client.handshake_response["ProcessedClientActions"][0]["ActionStatus"] == 1
        [completed] = [r for r in client.output_stream() if r.payload_type == HANDSHAKE_COMPLETE]
        assert completed.sequence_number == 1
        # The plugin reads HandshakeTimeToComplete as a Go duration (a JSON number): anything
        # else fails its handshake and the session never starts.
        assert isinstance(complete.get("HandshakeTimeToComplete"), int), complete
        assert isinstance(complete.get("CustomerMessage", ""), str), complete

        # What the plugin does next: the terminal size, then keystrokes.
        size_seq = client.send_size(120, 40)
        assert size_seq == 1
        typed = client.send_input(b"echo hello-$((6*7))\n")
        client.wait_for_output(b"hello-42", 30)
        client.wait_acknowledged([0, size_seq, *typed], 15)

        mark = len(client.output)
        stty = client.send_input(b"stty size\n")
        client.wait_for_output(b"40 120", 30, after=mark)
        client.wait_acknowledged(stty, 15)

        leave = client.send_input(b"exit 3\n")
        closed = client.wait_for_channel_closed(30)

    assert isinstance(closed, dict) and isinstance(closed.get("Output", ""), str), closed
    # The exit code goes only to clients that ask for it (`berth exec`): the plugin would print it.
    assert client.exit_code is None, client.exit_code
    assert client.errors == [], client.describe()

    # Every input message was acknowledged, by its sequence number and its id.
    mine = {s.sequence_number: s for s in client.sent if not s.resend}
    assert sorted(mine) == list(range(len(mine)))
    assert set(leave) <= client.acknowledged, client.describe()
    assert client.acknowledged == set(mine), client.describe()
    for ack in client.ack_contents:
        assert ack["AcknowledgedMessageType"] == INPUT_STREAM_DATA, ack
        assert ack["AcknowledgedMessageId"] == str(mine[ack["AcknowledgedMessageSequenceNumber"]].message_id), ack
        assert ack["IsSequentialMessage"] is True, ack
    assert [mine[n].payload_type for n in (0, 1, 2)] == [HANDSHAKE_RESPONSE, SIZE, OUTPUT]

    # The server's stream: 0, 1, 2, ... handled in order, none missing, each acknowledged.
    handled = client.handled_sequence_numbers
    assert handled == list(range(len(handled))), handled
    before_close = [r for r in client.output_stream() if r.disposition != "after_close"]
    assert {r.sequence_number for r in before_close} == set(handled)
    assert {seq for kind, seq in client.acks_sent if kind == OUTPUT_STREAM_DATA} == set(handled)
    until_closed = [r.message_type for r in client.received if r.disposition != "after_close"]
    assert until_closed[-1] == CHANNEL_CLOSED and until_closed.count(CHANNEL_CLOSED) == 1, until_closed
    assert set(until_closed) <= {OUTPUT_STREAM_DATA, ACKNOWLEDGE, CHANNEL_CLOSED}, until_closed

    # The shell ended; the container did not.
    time.sleep(1)
    assert describe_task(ecs, CLUSTER, exec_task)["lastStatus"] == "RUNNING"


# ---------------------------------------------------------------------------------------------
# b, c. Refused requests
# ---------------------------------------------------------------------------------------------


def test_execute_command_on_a_task_run_without_it_is_refused(berth_up: BerthUp, unique):
    arn = start_task(berth_up, unique("noexec"))
    try:
        described = describe_task(berth_up.ecs, CLUSTER, arn)
        assert described.get("enableExecuteCommand", False) is False
        assert all("managedAgents" not in c for c in described["containers"]), described["containers"]
        with pytest.raises(ClientError) as caught:
            execute(berth_up.ecs, arn)
        code, message, status = error(caught)
        assert (code, status) == ("InvalidParameterException", 400), caught.value.response
        assert "execute command" in message.lower() and "not enabled" in message.lower(), message
    finally:
        stop_quietly(berth_up, arn)


def test_non_interactive_execute_command_is_refused(berth_up: BerthUp, exec_task: str):
    with pytest.raises(ClientError) as caught:
        execute(berth_up.ecs, exec_task, interactive=False)
    code, message, status = error(caught)
    assert (code, status) == ("InvalidParameterException", 400), caught.value.response
    assert "interactive" in message.lower(), message


# ---------------------------------------------------------------------------------------------
# d. Tokens
# ---------------------------------------------------------------------------------------------


def test_a_token_opens_one_data_channel_only(berth_up: BerthUp, exec_task: str):
    session = new_session(berth_up, exec_task)
    url, token = session["streamUrl"], session["tokenValue"]
    first = DataChannelClient(url, token)
    with first:
        first.wait_for_handshake(30)
        refused(url, token, "the token presented a second time while its channel is open")
        # The refused attempt did not disturb the first channel.
        first.send_size(80, 24)
        first.send_input(b"echo still-$((40+2))\n")
        first.wait_for_output(b"still-42", 30)
        first.send_input(b"exit\n")
        first.wait_for_channel_closed(30)
    assert first.errors == [], first.describe()
    refused(url, token, "the token presented again after its session ended")


def test_wrong_tokens_are_refused(berth_up: BerthUp, exec_task: str):
    one = new_session(berth_up, exec_task)
    other = new_session(berth_up, exec_task)
    assert one["streamUrl"] != other["streamUrl"], "each session has its own stream URL"
    token = one["tokenValue"]
    tampered = token[:-1] + ("B" if token[-1] != "B" else "C")
    refused(one["streamUrl"], f"not-a-token-{uuid.uuid4().hex}", "a made-up token")
    refused(one["streamUrl"], tampered, "a token with its last character changed")
    refused(one["streamUrl"], other["tokenValue"], "another session's token")
    refused(one["streamUrl"], "", "an empty token")


# ---------------------------------------------------------------------------------------------
# e. Authorisation
# ---------------------------------------------------------------------------------------------


def test_execute_command_needs_the_ecs_execute_command_permission(berth_up: BerthUp, exec_task: str, unique):
    name = unique("no-exec")
    keys = make_user(berth_up.server, name, allow("ecs:DescribeTasks"))
    try:
        ecs = berth_up.new_client(keys)
        assert describe_task(ecs, CLUSTER, exec_task)["taskArn"] == exec_task, "the user's keys work"
        with pytest.raises(ClientError) as caught:
            execute(ecs, exec_task)
        code, message, status = error(caught)
        assert (code, status) == ("AccessDeniedException", 400), caught.value.response
        assert "ecs:ExecuteCommand" in message, message
    finally:
        delete_user(berth_up.server, name)


# ---------------------------------------------------------------------------------------------
# f. `berth exec`: the same sessions from Berth's own CLI
# ---------------------------------------------------------------------------------------------


def berth_exec_env(berth_up: BerthUp) -> dict[str, str]:
    """`berth exec` finds its keys as the AWS CLI does, and the server through
    AWS_ENDPOINT_URL (the server itself: the recording proxy cannot carry a WebSocket)."""
    return {**berth_up.server.credentials.env(), "AWS_ENDPOINT_URL": berth_up.server.url, "AWS_DEFAULT_REGION": "us-east-1"}


def berth_exec(berth_up: BerthUp, task: str, *command: str, flags: tuple[str, ...] = ("--no-tty",)) -> subprocess.CompletedProcess:
    args = [str(berth_bin()), "exec", task, "--container", CONTAINER, *flags, "--", *command]
    return subprocess.run(args, env=berth_exec_env(berth_up), capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def test_berth_exec_runs_a_command_and_returns_its_output_and_exit_code(berth_up: BerthUp, exec_task: str):
    done = berth_exec(berth_up, exec_task, "echo", "hello from", "berth exec")
    assert (done.returncode, done.stdout) == (0, b"hello from berth exec\n"), done
    done = berth_exec(berth_up, exec_task, "sh", "-c", "echo to-stderr >&2; exit 7")
    assert done.returncode == 7, done
    assert done.stdout == b"to-stderr\n", "stderr comes through the session too"
    # Audited in the server log: who, which task and container, what command.
    log = berth_up.server.log_tail(400)
    audit = [line for line in log.splitlines() if "ExecuteCommand" in line and "exit 7" in line]
    assert audit, log
    assert "principal=arn:aws:iam::000000000000:root" in audit[-1] and exec_task in audit[-1], audit[-1]
    assert "container=main" in audit[-1], audit[-1]


def test_berth_exec_on_a_task_without_execute_command_says_why(berth_up: BerthUp, unique):
    arn = start_task(berth_up, unique("noexec-cli"))
    try:
        done = berth_exec(berth_up, arn, "true")
        assert done.returncode != 0
        assert b"InvalidParameterException" in done.stderr and b"not enabled" in done.stderr, done
    finally:
        stop_quietly(berth_up, arn)


def set_window(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def read_until(fd: int, needle: bytes, timeout: float, seen: bytearray) -> None:
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {needle!r} within {timeout}s; the terminal shows {bytes(seen)!r}"
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    assert needle in seen, bytes(seen)


def test_berth_exec_interactive_session_on_a_pseudo_terminal(berth_up: BerthUp, exec_task: str):
    """A shell on a terminal: keystrokes in, output out, the window's size followed as it
    changes, the shell's exit code returned."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: berth exec on the pseudo-terminal
        try:
            os.execve(str(berth_bin()), [str(berth_bin()), "exec", exec_task, "--", "/bin/sh"], berth_exec_env(berth_up))
        finally:
            os._exit(127)
    try:
        set_window(fd, 33, 101)
        seen = bytearray()
        read_until(fd, b"# ", 30, seen)
        os.write(fd, b"stty size; echo hi-$((6*7))\r")
        read_until(fd, b"hi-42", 30, seen)
        assert b"33 101" in seen, bytes(seen)
        set_window(fd, 40, 132)
        os.kill(pid, signal.SIGWINCH)
        time.sleep(0.5)
        del seen[:]
        os.write(fd, b"stty size\r")
        read_until(fd, b"40 132", 30, seen)
        os.write(fd, b"exit 5\r")
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 5
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def test_an_exec_session_into_a_service_task_is_an_event_of_the_service(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    family, name = unique("exec-svc"), unique("exec-svc")
    register(ecs, family)
    ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=family, desiredCount=1, enableExecuteCommand=True)
    try:
        ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=[name], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        [arn] = ecs.list_tasks(cluster=CLUSTER, serviceName=name)["taskArns"]
        done = berth_exec(berth_up, arn, "true")
        assert done.returncode == 0, done
        events = ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]["events"]
        started = [e["message"] for e in events if "execute command session" in e["message"]]
        assert len(started) == 1, events
        assert f"(service {name})" in started[0] and "arn:aws:iam::000000000000:root" in started[0], started
        assert arn.rsplit("/", 1)[-1] in started[0] and "container main" in started[0], started
    finally:
        ecs.update_service(cluster=CLUSTER, service=name, desiredCount=0)
        ecs.delete_service(cluster=CLUSTER, service=name, force=True)

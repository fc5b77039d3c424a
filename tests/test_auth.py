"""Authentication: every ECS request and every agent gateway call must be SigV4-signed with a
key the server knows. On its first start a server writes the account's root key to
`<data_dir>/credentials` (profile `berth`, mode 0600) and keeps it across restarts.

Driven with real clients, boto3 and the AWS CLI (raw signed HTTP only for what no client
sends: a broken Authorization header and the agent gateway). Each refusal is asserted by its
exact error name and HTTP status, and each refused write must have written nothing."""

from __future__ import annotations

import re
import secrets
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator
from unittest import mock

import botocore
import pytest

import harness
from harness import CONTENT_TYPE, TARGET_PREFIX, Berth, BerthServer, Credentials
from helpers import all_pages, assert_refused, cluster_arn, expect_auth_error, register_instance

# The shape of the keys a server makes (as AWS's: AKIA and 16 characters; a 40-character secret).
ACCESS_KEY_ID = re.compile(r"AKIA[A-Z0-9]{16}")
SECRET_LENGTH = 40
# How far a request's time may be from the server's clock.
SKEW_LIMIT = timedelta(minutes=15)


def new_name(base: str) -> str:
    return f"{base}-{uuid.uuid4().hex[:8]}"


def cluster_names(berth: Berth) -> set[str]:
    """Every cluster, read with the server's own keys."""
    return {arn.rsplit("/", 1)[-1] for arn in all_pages(berth.ecs.list_clusters, "clusterArns")}


def assert_not_created(berth: Berth, name: str) -> None:
    assert name not in cluster_names(berth), f"a refused CreateCluster created {name}"


def unknown_key(berth: Berth) -> Credentials:
    """An access key id the server never issued, with the server's own secret."""
    return Credentials("AKIA" + secrets.token_hex(8).upper(), berth.credentials.secret_key)


def wrong_secret(berth: Berth) -> Credentials:
    """The server's access key id with a secret that is not its own."""
    return berth.credentials.with_secret(secrets.token_urlsafe(30))


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------------------------------
# The credentials file
# ---------------------------------------------------------------------------------------------


def test_the_server_writes_its_root_key_to_a_private_credentials_file(berth: Berth):
    path = berth.server.credentials_path
    assert path.stat().st_mode & 0o777 == 0o600, f"{path} has mode {oct(path.stat().st_mode & 0o777)}"
    credentials = Credentials.read(path, "berth")
    assert ACCESS_KEY_ID.fullmatch(credentials.access_key), credentials.access_key
    assert len(credentials.secret_key) == SECRET_LENGTH


def test_a_restarted_server_keeps_its_key_and_another_data_dir_gets_another(berth: Berth, tmp_path: Path):
    name = new_name("kept")
    first = harness.start_berth(tmp_path / "data")
    try:
        kept = first.credentials
        first.ecs.create_cluster(clusterName=name)
    finally:
        harness.stop_berth(first)
    assert kept.access_key != berth.credentials.access_key, "two data dirs got the same key"
    assert kept.secret_key != berth.credentials.secret_key
    again = harness.start_berth(tmp_path / "data")
    try:
        assert again.credentials == kept, "the restarted server wrote new keys"
        assert again.server.credentials_path.stat().st_mode & 0o777 == 0o600
        # The key of before the restart still works, and is still the only one that does.
        assert name in cluster_names(again)
        expect_auth_error("UnrecognizedClientException", again.new_client(berth.credentials).list_clusters)
    finally:
        harness.stop_berth(again)


# ---------------------------------------------------------------------------------------------
# boto3 and the AWS CLI
# ---------------------------------------------------------------------------------------------


def test_boto3_with_the_servers_keys_works(berth: Berth):
    name = new_name("boto3")
    client = harness.boto3_client(berth.endpoint, Credentials.read(berth.server.credentials_path))
    created = client.create_cluster(clusterName=name)["cluster"]
    assert created["clusterArn"] == cluster_arn(name)
    assert name in cluster_names(berth)


def test_the_cli_with_the_servers_credentials_file_and_profile_works(berth: Berth):
    # As a user would: AWS_SHARED_CREDENTIALS_FILE=<data dir>/credentials AWS_PROFILE=berth.
    name = new_name("cli")
    created = berth.cli("create-cluster", "--cluster-name", name).json["cluster"]
    assert created["clusterArn"] == cluster_arn(name)
    listed = berth.cli("list-clusters").json["clusterArns"]
    assert cluster_arn(name) in listed


def test_a_wrong_secret_is_an_invalid_signature(berth: Berth):
    name = new_name("wrong-secret")
    error = expect_auth_error(
        "InvalidSignatureException", berth.new_client(wrong_secret(berth)).create_cluster, clusterName=name
    )
    assert berth.credentials.secret_key not in str(error.response)
    assert_not_created(berth, name)


def test_an_unknown_access_key_is_an_unrecognized_client(berth: Berth):
    name = new_name("unknown-key")
    expect_auth_error("UnrecognizedClientException", berth.new_client(unknown_key(berth)).create_cluster, clusterName=name)
    assert_not_created(berth, name)


def test_an_unsigned_request_is_missing_its_authentication_token(berth: Berth):
    name = new_name("unsigned")
    client = harness.boto3_client(berth.endpoint, None, signature_version=botocore.UNSIGNED)
    expect_auth_error("MissingAuthenticationTokenException", client.create_cluster, clusterName=name)
    expect_auth_error("MissingAuthenticationTokenException", client.list_clusters)
    assert_not_created(berth, name)


@pytest.mark.parametrize(
    ("credentials", "code"),
    [(wrong_secret, "InvalidSignatureException"), (unknown_key, "UnrecognizedClientException")],
    ids=["wrong secret", "unknown key"],
)
def test_the_cli_with_bad_keys_in_its_profile_is_refused(berth: Berth, tmp_path: Path, credentials, code):
    name = new_name("cli-refused")
    bad = credentials(berth).write(tmp_path / "credentials")
    result = berth.cli("create-cluster", "--cluster-name", name, check=False, credentials=bad)
    assert result.returncode != 0, str(result)
    assert f"An error occurred ({code})" in result.stderr, str(result)
    assert_not_created(berth, name)


def test_a_body_changed_after_signing_is_an_invalid_signature(berth: Berth):
    name = new_name("tamper-a")
    tampered = name[:-1] + ("b" if name[-1] != "b" else "c")
    client = berth.new_client()

    def tamper(request, **_: object) -> None:
        # After botocore signed the request, before it goes out: same length, another name.
        assert name.encode() in request.body
        request.body = request.body.replace(name.encode(), tampered.encode())

    client.meta.events.register("before-send.ecs.CreateCluster", tamper)
    expect_auth_error("InvalidSignatureException", client.create_cluster, clusterName=name)
    names = cluster_names(berth)
    assert name not in names and tampered not in names, "a tampered CreateCluster created a cluster"


def signing_clock(offset: timedelta):
    """Makes botocore's SigV4 signer read a clock `offset` away from now (naive UTC, as it
    reads the time)."""
    signing_time = (now_utc() + offset).replace(tzinfo=None)
    return mock.patch("botocore.auth.get_current_datetime", return_value=signing_time)


@pytest.mark.parametrize(
    ("offset", "says"),
    # AWS's words: a time too far back has expired; one too far ahead is not yet current.
    [(timedelta(minutes=-20), "Signature expired"), (timedelta(minutes=20), "Signature not yet current")],
    ids=["20 min ago", "in 20 min"],
)
def test_a_request_signed_more_than_15_minutes_off_is_an_invalid_signature(berth: Berth, offset: timedelta, says: str):
    assert abs(offset) > SKEW_LIMIT
    name = new_name("skewed")
    client = berth.new_client()
    with signing_clock(offset):
        error = expect_auth_error("InvalidSignatureException", client.create_cluster, clusterName=name)
    message = error.response["Error"]["Message"]
    assert message.startswith(says), message
    assert_not_created(berth, name)


def test_a_request_signed_5_minutes_ago_is_accepted(berth: Berth):
    name = new_name("five-minutes")
    with signing_clock(timedelta(minutes=-5)):
        berth.new_client().create_cluster(clusterName=name)
    assert name in cluster_names(berth)


# ---------------------------------------------------------------------------------------------
# What no client sends: broken signatures (raw HTTP)
# ---------------------------------------------------------------------------------------------


def signed_create_cluster(berth: Berth, name: str) -> tuple[bytes, dict[str, str]]:
    """The body and the signed headers of a correct CreateCluster for `name`."""
    body = f'{{"clusterName": "{name}"}}'.encode()
    headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET_PREFIX + "CreateCluster"}
    return body, harness.sign_request(berth.credentials, "POST", f"{berth.endpoint}/", headers, body)


def authorization_edited(pattern: str, replacement: str) -> Callable[[dict[str, str]], dict[str, str]]:
    """A breakage: the signed headers with `pattern` of their Authorization replaced."""
    return lambda headers: {**headers, "Authorization": re.sub(pattern, replacement, headers["Authorization"])}


INCOMPLETE = {
    "garbled Authorization": authorization_edited(r" .*", " garbage"),
    "no Credential": authorization_edited(r"Credential=[^,]*, ", ""),
    "host not signed": authorization_edited(r"(?<=[=;])host;", ""),
    "no X-Amz-Date": lambda headers: {k: v for k, v in headers.items() if k.lower() != "x-amz-date"},
}


@pytest.mark.parametrize("breakage", list(INCOMPLETE), ids=list(INCOMPLETE))
def test_an_incomplete_signature_is_refused(berth: Berth, breakage: str):
    name = new_name("incomplete")
    body, headers = signed_create_cluster(berth, name)
    sent = INCOMPLETE[breakage](headers)
    assert sent != headers
    response = berth.raw(body, content_type=None, credentials=None, extra_headers=sent)
    assert_refused(response, "IncompleteSignatureException")
    assert_not_created(berth, name)


def test_the_same_request_correctly_signed_by_hand_is_accepted(berth: Berth):
    # The control of the test above: its requests fail for what was broken, nothing else.
    name = new_name("by-hand")
    body, headers = signed_create_cluster(berth, name)
    response = berth.raw(body, content_type=None, credentials=None, extra_headers=headers)
    assert response.status == 200, response.body
    assert name in cluster_names(berth)


# ---------------------------------------------------------------------------------------------
# The agent gateway: the desired-state stream and heartbeats
# ---------------------------------------------------------------------------------------------

GRACE = 3  # --agent-grace of the gateway server: how long an instance may go without a heartbeat


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BerthServer, str, str]]:
    """A server with a short agent grace, a cluster and a container instance registered
    (with boto3) but no agent: (server, cluster, instance ARN)."""
    server = BerthServer(tmp_path_factory.mktemp("gateway") / "data", extra_args=["--agent-grace", f"{GRACE}s"]).start()
    try:
        client = server.client()
        cluster = new_name("gateway")
        client.create_cluster(clusterName=cluster)
        instance = register_instance(client, cluster)["containerInstanceArn"]
        yield server, cluster, instance
    finally:
        server.stop()


def gateway_refusals(server: BerthServer) -> dict[str, tuple[dict, str]]:
    """raw_request arguments that get a gateway call refused, and the refusal's name."""
    secret = server.credentials.secret_key
    return {
        "unsigned": ({"credentials": None}, "MissingAuthenticationTokenException"),
        "wrong secret": ({"credentials": server.credentials.with_secret(secret[::-1])}, "InvalidSignatureException"),
        "unknown key": (
            {"credentials": Credentials("AKIA" + secrets.token_hex(8).upper(), secret)},
            "UnrecognizedClientException",
        ),
        "signed 20 min ago": ({"signed_at": now_utc() - timedelta(minutes=20)}, "InvalidSignatureException"),
    }


def test_the_desired_state_stream_needs_a_good_signature(gateway):
    server, cluster, instance = gateway
    for case, (kwargs, code) in gateway_refusals(server).items():
        refused = harness.desired_stream(server, cluster, instance, **kwargs)
        body = assert_refused(refused, code)
        assert "revision" not in body, f"{case}: the stream answered: {body}"
    opened = harness.desired_stream(server, cluster, instance)
    assert opened.status == 200, opened.body
    first = opened.json()
    assert isinstance(first["revision"], int) and first["assigned"] == [], first


def test_heartbeats_need_a_good_signature_and_refused_ones_keep_nothing_alive(gateway):
    server, cluster, instance = gateway
    client = server.client()

    def connected() -> bool:
        described = client.describe_container_instances(cluster=cluster, containerInstances=[instance])
        return described["containerInstances"][0].get("agentConnected") is True

    refusals = gateway_refusals(server)
    body = '{"cluster": "%s", "containerInstance": "%s"}' % (cluster, instance)
    tampered = body.replace(cluster, cluster.upper()).encode()
    refusals["body changed after signing"] = ({"signed_body": tampered}, "InvalidSignatureException")
    # Only refused heartbeats for longer than the grace: the instance must go disconnected.
    deadline = time.monotonic() + GRACE + 15
    while True:
        for case, (kwargs, code) in refusals.items():
            assert_refused(harness.heartbeat(server, cluster, instance, **kwargs), code)
        if not connected():
            break
        assert time.monotonic() < deadline, "refused heartbeats kept the instance connected"
        time.sleep(0.5)
    # A signed one reconnects it.
    beat = harness.heartbeat(server, cluster, instance)
    assert beat.status == 200, beat.body
    harness.wait_until(connected, GRACE + 5, "a signed heartbeat to reconnect the instance", diagnose=server.log_tail)


# ---------------------------------------------------------------------------------------------
# `berth agent` without credentials, and secrets in logs
# ---------------------------------------------------------------------------------------------


def test_an_agent_without_credentials_refuses_to_start(gateway, docker_ready, tmp_path: Path):
    server, cluster, _ = gateway
    before = server.client().list_container_instances(cluster=cluster)["containerInstanceArns"]
    # No keys in the environment and an empty shared-credentials file (the harness's).
    env = harness.subprocess_env(BERTH_LOG="info")
    assert Path(env["AWS_SHARED_CREDENTIALS_FILE"]).read_text() == ""
    args = [str(harness.berth_bin()), "agent", "--server", server.url, "--cluster", cluster]
    args += ["--data-dir", str(tmp_path / "agent")]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"berth agent kept running for 30 s without credentials: {e.stdout!r} {e.stderr!r}") from None
    said = done.stdout + done.stderr
    assert done.returncode != 0, f"berth agent started without credentials:\n{said}"
    assert "credentials" in said.lower(), f"berth agent does not say credentials are missing:\n{said}"
    assert "panicked" not in said
    assert server.client().list_container_instances(cluster=cluster)["containerInstanceArns"] == before


def test_the_secret_never_appears_in_the_server_log(berth: Berth, gateway):
    # Last in the module: by now both servers saw good, bad and unsigned requests.
    for server in (berth.server, gateway[0]):
        log = server.log_path.read_text(errors="replace")
        assert log.strip(), f"{server.log_path} is empty"
        assert server.credentials.secret_key not in log, f"{server.log_path} holds the secret access key"

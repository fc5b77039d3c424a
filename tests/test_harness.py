"""Self-tests of the harness: it never lets a client leave the machine, it records what goes
through its proxy (passing on what clients signed unchanged), no AWS keys reach a client but
those a server gave, and it fails loudly when the binary is missing."""

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore
import botocore.exceptions
import pytest
from botocore.config import Config

import harness
from harness import RECORDER, Berth, Credentials


def test_a_client_without_a_loopback_endpoint_cannot_reach_aws():
    client = boto3.session.Session().client(
        "ecs",
        config=Config(
            signature_version=botocore.UNSIGNED,
            retries={"total_max_attempts": 1},
            connect_timeout=2,
            read_timeout=2,
        ),
    )
    with pytest.raises((botocore.exceptions.ProxyConnectionError, botocore.exceptions.EndpointConnectionError)):
        client.list_clusters()


def test_non_loopback_endpoints_are_refused():
    with pytest.raises(harness.HarnessError):
        harness.boto3_client("https://ecs.us-east-1.amazonaws.com", Credentials("AKIDNOTUSED", "not-used"))
    with pytest.raises(harness.HarnessError):
        harness.raw_request("http://10.0.0.1:80")


def test_a_missing_binary_is_a_loud_error(monkeypatch, tmp_path):
    monkeypatch.setenv("BERTH_BIN", str(tmp_path / "no-such-berth"))
    with pytest.raises(harness.HarnessError, match="cargo build"):
        harness.berth_bin()


def test_no_aws_credentials_come_from_the_environment():
    assert boto3.session.Session().get_credentials() is None, "a client without keys of its own found some"
    with pytest.raises(botocore.exceptions.NoCredentialsError):
        boto3.session.Session().client("ecs", endpoint_url="http://127.0.0.1:9").list_clusters()


def test_subprocesses_get_the_credentials_file_and_no_keys(monkeypatch, tmp_path):
    # Keys in the environment would beat the profile: even when some are there, none is passed on.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMTHEENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")
    monkeypatch.setenv("AWS_PROFILE", "other")
    credentials = Credentials("AKIDWRITTEN000000000", "written-secret").write(tmp_path / "credentials")
    env = credentials.env()
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == str(tmp_path / "credentials")
    assert env["AWS_PROFILE"] == "berth"
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} & set(env)
    assert Credentials.read(tmp_path / "credentials") == credentials
    assert (tmp_path / "credentials").stat().st_mode & 0o777 == 0o600


def test_a_missing_credentials_profile_is_a_loud_error(tmp_path):
    (tmp_path / "credentials").write_text("[default]\naws_access_key_id = A\naws_secret_access_key = B\n")
    with pytest.raises(harness.HarnessError, match=r"\[berth\]"):
        Credentials.read(tmp_path / "credentials")
    with pytest.raises(harness.HarnessError, match="cannot read"):
        Credentials.read(tmp_path / "missing")


class _Upstream(BaseHTTPRequestHandler):
    """Keeps every request it receives (method, path, headers, body) and answers `{}`."""

    protocol_version = "HTTP/1.1"
    server: "ThreadingHTTPServer"

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def do_POST(self):  # noqa: N802 - stdlib name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.command, self.path, dict(self.headers.items()), body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", harness.CONTENT_TYPE)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def signature_holds(credentials: Credentials, method: str, path: str, headers: dict, body: bytes) -> bool:
    """Whether the Authorization of a received request is what SigV4 gives for what was
    received: the signed headers, the path and the body, at the request's X-Amz-Date."""
    authorization = headers["Authorization"]
    names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    lower = {k.lower(): v for k, v in headers.items()}
    at = datetime.strptime(lower["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    signed = {name: lower[name] for name in names if name not in ("host", "x-amz-date")}
    url = f"http://{lower['host']}{path}"
    return harness.sign_request(credentials, method, url, signed, body, at)["Authorization"] == authorization


def test_the_proxy_passes_on_what_clients_signed_unchanged():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    upstream.received = []  # type: ignore[attr-defined]
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy = harness.RecordingProxy(upstream.server_address[1], recorder=harness.Recorder())
    credentials = Credentials("AKIDPROXYTEST", "proxy-test-secret")
    try:
        body = b'{"clusterName": "h\xc3\xa9", "pad": "  \\u0000 "}'
        harness.raw_request(proxy.url, body, operation="CreateCluster", credentials=credentials)
        harness.boto3_client(proxy.url, credentials).list_clusters(maxResults=5)
        received = upstream.received  # type: ignore[attr-defined]
        assert len(received) == 2
        for method, path, headers, got in received:
            assert headers["Host"] == f"127.0.0.1:{proxy.port}", "the proxy replaced the Host the client signed"
            assert signature_holds(credentials, method, path, headers, got), f"signature broken on the way: {headers}"
        assert received[0][3] == body
        assert json.loads(received[1][3]) == {"maxResults": 5}
    finally:
        proxy.stop()
        upstream.shutdown()
        upstream.server_close()


def test_the_proxy_records_every_exchange(berth: Berth):
    before = len(RECORDER.snapshot())
    berth.ecs.list_clusters()
    berth.raw(b"{", operation="ListClusters")
    recorded = RECORDER.snapshot()[before:]
    assert [(e.operation, e.status) for e in recorded] == [("ListClusters", 200), ("ListClusters", 400)]
    assert recorded[0].test.endswith("test_the_proxy_records_every_exchange")


def test_the_xml_walker_finds_unknown_members_bad_enums_and_bad_scalars() -> None:
    import xml_conformance

    def answer(member: str) -> bytes:
        return (
            '<DescribeLoadBalancersResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
            f"<DescribeLoadBalancersResult><LoadBalancers><member>{member}</member></LoadBalancers>"
            "</DescribeLoadBalancersResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
            "</DescribeLoadBalancersResponse>"
        ).encode()

    good = "<LoadBalancerName>web</LoadBalancerName><CreatedTime>2026-12-01T10:00:00.000Z</CreatedTime><State><Code>active</Code></State>"
    assert xml_conformance.check_answer("elbv2", "DescribeLoadBalancers", 200, answer(good)) == []
    bad = "<Bogus>1</Bogus><State><Code>sideways</Code></State><CreatedTime>yesterday</CreatedTime>"
    found = [v.where for v in xml_conformance.check_answer("elbv2", "DescribeLoadBalancers", 200, answer(bad))]
    assert found == [
        "DescribeLoadBalancers(output).LoadBalancers[0].Bogus",
        "DescribeLoadBalancers(output).LoadBalancers[0].State.Code",
        "DescribeLoadBalancers(output).LoadBalancers[0].CreatedTime",
    ], found
    assert xml_conformance.check_answer("elbv2", "DescribeLoadBalancers", 400, b"<ErrorResponse><Error><Code>X</Code></Error></ErrorResponse>")
    assert xml_conformance.check_answer("iam", "GetUser", 200, b"not xml")

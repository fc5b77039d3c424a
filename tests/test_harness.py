"""Self-tests of the harness: it never lets a client leave the machine, it records what goes
through its proxy, and it fails loudly when the binary is missing."""

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

import harness
from harness import RECORDER, Berth


def test_a_client_without_a_loopback_endpoint_cannot_reach_aws():
    client = boto3.session.Session().client(
        "ecs", config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=2)
    )
    with pytest.raises((botocore.exceptions.ProxyConnectionError, botocore.exceptions.EndpointConnectionError)):
        client.list_clusters()


def test_non_loopback_endpoints_are_refused():
    with pytest.raises(harness.HarnessError):
        harness.boto3_client("https://ecs.us-east-1.amazonaws.com")
    with pytest.raises(harness.HarnessError):
        harness.raw_request("http://10.0.0.1:80")


def test_a_missing_binary_is_a_loud_error(monkeypatch, tmp_path):
    monkeypatch.setenv("BERTH_BIN", str(tmp_path / "no-such-berth"))
    with pytest.raises(harness.HarnessError, match="cargo build"):
        harness.berth_bin()


def test_the_proxy_records_every_exchange(berth: Berth):
    before = len(RECORDER.snapshot())
    berth.ecs.list_clusters()
    berth.raw(b"{", operation="ListClusters")
    recorded = RECORDER.snapshot()[before:]
    assert [(e.operation, e.status) for e in recorded] == [("ListClusters", 200), ("ListClusters", 400)]
    assert recorded[0].test.endswith("test_the_proxy_records_every_exchange")

"""The external hollow fleet (bench/hollow_fleet.py) against a real `berth server`: 50 hollow
agents, 500 tasks. Correctness only (every task RUNNING, none duplicated, nothing failed, a few
stopped again); the figures it measures are not asserted. Every call of the
fleet, the desired-state streams and heartbeats included, is signed with the keys of the
server's credentials file. Needs aiohttp (bench/requirements.txt)."""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import json
import sys
from unittest import mock
from urllib.parse import urlencode

import pytest

import harness

_PATH = harness.REPO / "bench" / "hollow_fleet.py"


@pytest.fixture(scope="module")
def hollow_fleet():
    """bench/hollow_fleet.py as a module. It needs aiohttp: missing is a loud error, never a
    skip (loaded here rather than at import, so the rest of the suite still collects)."""
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise harness.HarnessError(
            "the hollow fleet needs aiohttp: `.venv/bin/pip install -r tests/requirements.txt` (make venv does)"
        ) from None
    # Importable by name, here and in the reader process it spawns (which gets this sys.path).
    if str(_PATH.parent) not in sys.path:
        sys.path.insert(0, str(_PATH.parent))
    return importlib.import_module("hollow_fleet")


def test_the_hollow_fleet_runs_500_tasks_on_50_agents(berth: harness.Berth, hollow_fleet) -> None:
    # Straight to the server: the recording proxy buffers whole bodies, so it cannot carry the
    # agents' desired-state streams.
    config = hollow_fleet.Config(
        endpoint=berth.server.url,
        agents=50,
        tasks=500,
        access_key=berth.credentials.access_key,
        secret_key=berth.credentials.secret_key,
        callers=8,
        stop_tasks=20,
        timeout=150,
        quiet=True,
    )
    result = asyncio.run(hollow_fleet.run(config))
    summary = hollow_fleet.report(config, result)
    print("\n" + summary)
    assert not result.timed_out and not result.aborted, summary + "\n" + berth.server.log_tail()
    assert result.agents_registered == 50 and result.agents_connected == 50, summary
    assert result.placed == 500, summary
    assert result.running_confirmed == 500 and result.not_running == 0, summary
    assert result.duplicates == 0, summary
    assert result.failures == 0 and not result.placement_failures, summary
    assert result.stopped_confirmed == result.stopped_requested == 20, summary
    assert result.describe_tasks_calls > 0 and result.describe_clusters_calls > 0, summary
    assert result.ok, summary


def test_the_fleet_takes_its_keys_from_the_servers_credentials_file(berth: harness.Berth, hollow_fleet) -> None:
    path = str(berth.server.credentials_path)
    config, _ = hollow_fleet.parse_args(["--endpoint", berth.server.url, "--credentials-file", path])
    assert (config.access_key, config.secret_key) == (berth.credentials.access_key, berth.credentials.secret_key)
    with pytest.raises(SystemExit):
        hollow_fleet.parse_args(["--endpoint", berth.server.url])  # no keys at all: refused


# Made-up keys: this test compares signatures and sends nothing.
KEY_ID, SECRET = "AKIDHOLLOWFLEETTEST0", "hollow-fleet-test-secret"


def test_the_sigv4_signatures_are_those_botocore_computes(hollow_fleet) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    now = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc)
    signer = hollow_fleet.SigV4Signer(KEY_ID, SECRET, "us-east-1", "ecs")

    def botocore_signature(method: str, url: str, headers: dict, body: bytes) -> str:
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        with mock.patch("botocore.auth.get_current_datetime", return_value=now):
            SigV4Auth(Credentials(KEY_ID, SECRET), "ecs", "us-east-1").add_auth(request)
        return request.headers["Authorization"]

    body = json.dumps({"cluster": "fleet", "reason": "é & ü"}).encode()
    headers = {"Content-Type": hollow_fleet.AMZ_JSON, "X-Amz-Target": hollow_fleet.TARGET_PREFIX + "RunTask"}
    ours = signer.sign("POST", "127.0.0.1:7700", "/", {}, headers, body, now)
    assert ours["Authorization"] == botocore_signature("POST", "http://127.0.0.1:7700/", headers, body)

    query = {"cluster": "fleet", "containerInstance": "arn:aws:ecs:us-east-1:000000000000:container-instance/fleet/0a", "since": "42"}
    headers = {"Accept": "application/x-ndjson"}
    ours = signer.sign("GET", "127.0.0.1:7700", hollow_fleet.DESIRED_PATH, query, headers, b"", now)
    url = f"http://127.0.0.1:7700{hollow_fleet.DESIRED_PATH}?{urlencode(query)}"
    assert ours["Authorization"] == botocore_signature("GET", url, headers, b"")


def test_the_stream_request_sends_the_query_it_signed(hollow_fleet) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class Recording:
        """Stands in for the aiohttp session: keeps what get() was asked to send."""

        def get(self, url, headers, timeout):
            self.url, self.headers = url, headers

    session = Recording()
    signer = hollow_fleet.SigV4Signer(KEY_ID, SECRET, "us-east-1", "ecs")
    client = hollow_fleet.Client(session, "http://127.0.0.1:7700", signer, 5.0)
    instance = "arn:aws:ecs:us-east-1:000000000000:container-instance/fleet/0a"
    client.desired_request("fleet", instance, 42)
    sent = str(session.url)  # what goes on the wire: no re-encoding by yarl
    assert "containerInstance=arn%3Aaws%3Aecs%3A" in sent and "%2Ffleet%2F0a" in sent, sent
    # botocore signs the query string as given: the same signature for the URL sent.
    amz_date = session.headers["X-Amz-Date"]
    now = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    request = AWSRequest(method="GET", url=sent, headers={"Accept": "application/x-ndjson"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=now):
        SigV4Auth(Credentials(KEY_ID, SECRET), "ecs", "us-east-1").add_auth(request)
    assert session.headers["Authorization"] == request.headers["Authorization"]

"""The external hollow fleet (bench/hollow_fleet.py) against a real `berth server`: 50 hollow
agents, 500 tasks. Correctness only (every task RUNNING, none duplicated, nothing failed, a few
stopped again); the figures it measures are not asserted. Needs aiohttp
(bench/requirements.txt)."""

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
        access_key=harness.ACCESS_KEY,
        secret_key=harness.SECRET_KEY,
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


def test_the_sigv4_signatures_are_those_botocore_computes(hollow_fleet) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    now = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.timezone.utc)
    signer = hollow_fleet.SigV4Signer(harness.ACCESS_KEY, harness.SECRET_KEY, "us-east-1", "ecs")

    def botocore_signature(method: str, url: str, headers: dict, body: bytes) -> str:
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        with mock.patch("botocore.auth.get_current_datetime", return_value=now):
            SigV4Auth(Credentials(harness.ACCESS_KEY, harness.SECRET_KEY), "ecs", "us-east-1").add_auth(request)
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

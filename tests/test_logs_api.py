"""CloudWatch Logs on Berth's endpoint, driven by boto3 and the official AWS CLI: log groups,
streams, PutLogEvents / GetLogEvents with their tokens, FilterLogEvents with every kind of
filter pattern, retention, tags, IAM refusals, the call pattern of `aws logs tail --follow`
(CLI v2), and the conformance walker applied to Logs answers."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from typing import Any

import pytest

import conformance
import harness
from harness import ACCOUNT, REGION, RECORDER, Berth, Exchange
from iam_helpers import allow, error_of, make_user


@pytest.fixture(scope="module")
def logs(berth: Berth):
    """A boto3 CloudWatch Logs client of the module's server, through the recording proxy."""
    return harness.boto3_client(berth.endpoint, berth.credentials, service="logs")


def now_ms() -> int:
    return int(time.time() * 1000)


def cli(berth: Berth, *args: str, check: bool = True) -> harness.CliResult:
    """`aws logs <args>` against the server (the CLI finds the server's keys as a user's would)."""
    cmd = [*harness.aws_cli(), "logs", *args, "--endpoint-url", berth.endpoint, "--region", REGION, "--output", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=berth.credentials.env())
    result = harness.CliResult(cmd, done.returncode, done.stdout, done.stderr)
    if check and done.returncode != 0:
        raise AssertionError(f"aws CLI failed: {result}")
    return result


def code_of(call, *args: Any, **kwargs: Any) -> str:
    return error_of(call, *args, **kwargs)[0]


def put(logs, group: str, stream: str, messages: list[str], start: int) -> dict:
    events = [{"timestamp": start + i, "message": m} for i, m in enumerate(messages)]
    return logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def test_groups_are_created_described_and_deleted_with_boto3_and_the_cli(berth: Berth, logs):
    logs.create_log_group(logGroupName="/test/groups/a", tags={"team": "a"})
    cli(berth, "create-log-group", "--log-group-name", "/test/groups/b")
    assert code_of(logs.create_log_group, logGroupName="/test/groups/a") == "ResourceAlreadyExistsException"
    assert code_of(logs.create_log_group, logGroupName="bad name!") == "InvalidParameterException"

    found = logs.describe_log_groups(logGroupNamePrefix="/test/groups/")["logGroups"]
    assert [g["logGroupName"] for g in found] == ["/test/groups/a", "/test/groups/b"]
    group = found[0]
    assert group["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/test/groups/a:*"
    assert group["logGroupArn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/test/groups/a"
    assert group["storedBytes"] == 0 and group["creationTime"] > now_ms() - 60_000
    by_pattern = logs.describe_log_groups(logGroupNamePattern="GROUPS/B")["logGroups"]
    assert [g["logGroupName"] for g in by_pattern] == ["/test/groups/b"]

    # Paging: the paginator follows nextToken one group at a time.
    pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="/test/groups/", limit=1)
    assert [g["logGroupName"] for page in pages for g in page["logGroups"]] == ["/test/groups/a", "/test/groups/b"]

    listed = cli(berth, "describe-log-groups", "--log-group-name-prefix", "/test/groups/").json
    assert len(listed["logGroups"]) == 2
    cli(berth, "delete-log-group", "--log-group-name", "/test/groups/b")
    refused = cli(berth, "delete-log-group", "--log-group-name", "/test/groups/b", check=False)
    assert refused.returncode != 0 and "ResourceNotFoundException" in refused.stderr
    logs.delete_log_group(logGroupName="/test/groups/a")
    assert logs.describe_log_groups(logGroupNamePrefix="/test/groups/")["logGroups"] == []


def test_streams_are_described_by_prefix_and_by_last_event_time(berth: Berth, logs):
    group = "/test/streams"
    assert code_of(logs.create_log_stream, logGroupName=group, logStreamName="s") == "ResourceNotFoundException"
    logs.create_log_group(logGroupName=group)
    start = now_ms() - 60_000
    for i, name in enumerate(["web/1", "web/2", "worker/1"]):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        put(logs, group, name, [f"hello {name}"], start + (10 - i) * 1000)
    assert code_of(logs.create_log_stream, logGroupName=group, logStreamName="web/1") == "ResourceAlreadyExistsException"
    assert code_of(logs.create_log_stream, logGroupName=group, logStreamName="a:b") == "InvalidParameterException"

    web = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix="web/")["logStreams"]
    assert [s["logStreamName"] for s in web] == ["web/1", "web/2"]
    assert web[0]["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:web/1"
    assert web[0]["firstEventTimestamp"] == web[0]["lastEventTimestamp"] == start + 10_000
    assert web[0]["storedBytes"] > 0 and "lastIngestionTime" in web[0]
    newest_first = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True)["logStreams"]
    assert [s["logStreamName"] for s in newest_first] == ["web/1", "web/2", "worker/1"]
    assert code_of(logs.describe_log_streams, logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="w") == "InvalidParameterException"
    pages = logs.get_paginator("describe_log_streams").paginate(logGroupName=group, limit=2)
    assert len([s for page in pages for s in page["logStreams"]]) == 3

    by_cli = cli(berth, "describe-log-streams", "--log-group-name", group, "--log-stream-name-prefix", "worker").json
    assert [s["logStreamName"] for s in by_cli["logStreams"]] == ["worker/1"]
    cli(berth, "delete-log-stream", "--log-group-name", group, "--log-stream-name", "worker/1")
    assert code_of(logs.delete_log_stream, logGroupName=group, logStreamName="worker/1") == "ResourceNotFoundException"


def test_25000_events_are_paged_forward_and_backward_with_the_tokens(berth: Berth, logs):
    group, stream = "/test/paging", "app"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = now_ms() - 3_600_000
    for batch in range(3):
        count = 10_000 if batch < 2 else 5_000
        answer = put(logs, group, stream, [f"event {batch * 10_000 + i:05d}" for i in range(count)], start + batch * 10_000)
        assert answer["nextSequenceToken"] and "rejectedLogEventsInfo" not in answer

    forward: list[str] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True, "limit": 4_000}
    while True:
        page = logs.get_log_events(**kwargs)
        forward += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == kwargs.get("nextToken"):
            assert page["events"] == []
            break
        kwargs["nextToken"] = page["nextForwardToken"]
    assert forward == [f"event {i:05d}" for i in range(25_000)]

    backward: list[str] = []
    kwargs = {"logGroupName": group, "logStreamName": stream, "limit": 6_000}
    while True:
        page = logs.get_log_events(**kwargs)
        backward = [e["message"] for e in page["events"]] + backward
        if page["nextBackwardToken"] == kwargs.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextBackwardToken"]
    assert backward == forward

    window = logs.get_log_events(logGroupName=group, logStreamName=stream, startTime=start + 100, endTime=start + 110, startFromHead=True)
    assert [e["message"] for e in window["events"]] == [f"event {i:05d}" for i in range(100, 110)]
    assert all(e["ingestionTime"] >= e["timestamp"] for e in window["events"])

    # The CLI reads the same stream: by default, its newest events.
    tail = cli(berth, "get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--limit", "3").json
    assert [e["message"] for e in tail["events"]] == [f"event {i:05d}" for i in (24_997, 24_998, 24_999)]


def test_put_log_events_follows_the_service_rules(logs):
    group, stream = "/test/rules", "s"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = now_ms()
    out_of_order = [{"timestamp": now, "message": "b"}, {"timestamp": now - 5, "message": "a"}]
    assert code_of(logs.put_log_events, logGroupName=group, logStreamName=stream, logEvents=out_of_order) == "InvalidParameterException"
    too_wide = [{"timestamp": now - 25 * 3_600_000, "message": "a"}, {"timestamp": now, "message": "b"}]
    assert code_of(logs.put_log_events, logGroupName=group, logStreamName=stream, logEvents=too_wide) == "InvalidParameterException"
    # (The 1,048,576-byte batch limit is tested at unit level: over HTTP the server's body
    # limit answers first.)
    missing = [{"timestamp": now, "message": "x"}]
    assert code_of(logs.put_log_events, logGroupName=group, logStreamName="nope", logEvents=missing) == "ResourceNotFoundException"

    # A stale sequence token is ignored, as the service now does; too new events are reported.
    answer = logs.put_log_events(
        logGroupName=group, logStreamName=stream, sequenceToken="49039859",
        logEvents=[{"timestamp": now - 1000, "message": "kept"}, {"timestamp": now + 3 * 3_600_000, "message": "future"}],
    )
    assert answer["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    old = logs.put_log_events(
        logGroupName=group, logStreamName=stream,
        logEvents=[{"timestamp": now - 15 * 86_400_000, "message": "ancient"}, {"timestamp": now - 15 * 86_400_000 + 1, "message": "ancient 2"}],
    )
    assert old["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    got = logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
    assert [e["message"] for e in got] == ["kept"]


@pytest.fixture(scope="module")
def filter_group(logs) -> str:
    group = "/test/filter"
    logs.create_log_group(logGroupName=group)
    start = now_ms() - 600_000
    messages = {
        "api": ["INFO GET /health 200", "ERROR Exception occurred in handler", "WARN slow request", "ERROR timeout, Retry later"],
        "json": [
            json.dumps({"level": "error", "latency": 250, "user": {"name": "ana"}, "tags": ["a", "b"], "ok": False}),
            json.dumps({"level": "info", "latency": 20, "user": {"name": "bob"}, "tags": ["c"], "gone": None}),
        ],
    }
    for i, (stream, lines) in enumerate(messages.items()):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        put(logs, group, stream, lines, start + i * 100)
    return group


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("", 6),
        ("ERROR", 2),
        ("ERROR Exception", 1),
        ('"Exception occurred"', 1),
        ("?WARN ?Exception", 2),
        ("ERROR -Retry", 1),
        ('{ $.level = "error" }', 1),
        ('{ $.user.name = "b*" }', 1),
        ("{ $.latency > 100 }", 1),
        ("{ $.latency <= 20 }", 1),
        ('{ $.latency > 10 && $.level != "error" }', 1),
        ('{ ($.level = "error") || ($.level = "info") }', 2),
        ("{ $.gone IS NULL }", 1),
        ("{ $.gone NOT EXISTS }", 1),
        ("{ $.ok IS FALSE }", 1),
        ('{ $.tags[0] = "c" }', 1),
    ],
)
def test_filter_log_events_matches_each_kind_of_pattern(logs, filter_group, pattern, expected):
    answer = logs.filter_log_events(logGroupName=filter_group, filterPattern=pattern)
    assert len(answer["events"]) == expected, answer["events"]
    assert {s["logStreamName"] for s in answer["searchedLogStreams"]} == {"api", "json"}
    for event in answer["events"]:
        assert set(event) >= {"logStreamName", "timestamp", "message", "ingestionTime", "eventId"}


def test_filter_log_events_by_streams_time_and_pages_with_the_cli_too(berth: Berth, logs, filter_group):
    only_api = logs.filter_log_events(logGroupName=filter_group, logStreamNames=["api"])["events"]
    assert {e["logStreamName"] for e in only_api} == {"api"} and len(only_api) == 4
    by_arn = logs.filter_log_events(logGroupIdentifier=f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{filter_group}", logStreamNamePrefix="js")
    assert len(by_arn["events"]) == 2
    later = logs.filter_log_events(logGroupName=filter_group, startTime=only_api[2]["timestamp"])["events"]
    assert len(later) == 4  # two api events at and after startTime and both json ones
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName=filter_group, limit=2))
    assert len(pages) == 3 and sum(len(p["events"]) for p in pages) == 6
    assert code_of(logs.filter_log_events, logGroupName=filter_group, filterPattern="{ $.level = ") == "InvalidParameterException"
    assert code_of(logs.filter_log_events, logGroupName="/test/none") == "ResourceNotFoundException"

    found = cli(berth, "filter-log-events", "--log-group-name", filter_group, "--filter-pattern", "?WARN ?timeout").json
    assert sorted(e["message"] for e in found["events"]) == ["ERROR timeout, Retry later", "WARN slow request"]


def test_put_and_get_with_the_cli(berth: Berth):
    group, stream = "/test/cli", "one"
    cli(berth, "create-log-group", "--log-group-name", group)
    cli(berth, "create-log-stream", "--log-group-name", group, "--log-stream-name", stream)
    start = now_ms() - 1000
    events = json.dumps([{"timestamp": start, "message": "first"}, {"timestamp": start + 1, "message": "second"}])
    answer = cli(berth, "put-log-events", "--log-group-name", group, "--log-stream-name", stream, "--log-events", events).json
    assert answer["nextSequenceToken"]
    got = cli(berth, "get-log-events", "--log-group-name", group, "--log-stream-name", stream, "--start-from-head").json
    assert [e["message"] for e in got["events"]] == ["first", "second"]
    assert got["nextForwardToken"].startswith("f/") and got["nextBackwardToken"].startswith("b/")


def test_retention_takes_the_documented_values_only(berth: Berth, logs):
    group = "/test/retention"
    logs.create_log_group(logGroupName=group)
    for days in (1, 14, 3653):
        logs.put_retention_policy(logGroupName=group, retentionInDays=days)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["retentionInDays"] == 3653
    for days in (2, 0, 4000):
        assert code_of(logs.put_retention_policy, logGroupName=group, retentionInDays=days) == "InvalidParameterException"
    refused = cli(berth, "put-retention-policy", "--log-group-name", group, "--retention-in-days", "8", check=False)
    assert refused.returncode != 0 and "InvalidParameterException" in refused.stderr
    cli(berth, "delete-retention-policy", "--log-group-name", group)
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]
    assert code_of(logs.put_retention_policy, logGroupName="/test/nope", retentionInDays=1) == "ResourceNotFoundException"


def test_tags_on_log_groups_by_arn_and_by_name(logs):
    group = "/test/tags"
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
    logs.create_log_group(logGroupName=group, tags={"team": "core"})
    logs.tag_resource(resourceArn=arn, tags={"env": "prod"})
    assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "core", "env": "prod"}
    logs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"env": "prod"}
    logs.tag_log_group(logGroupName=group, tags={"b": "2"})
    logs.untag_log_group(logGroupName=group, tags=["env"])
    assert logs.list_tags_for_resource(resourceArn=arn + ":*")["tags"] == {"b": "2"}
    assert code_of(logs.tag_resource, resourceArn=arn, tags={"aws:x": "y"}) == "InvalidParameterException"
    too_many = {f"k{i}": "v" for i in range(51)}
    assert code_of(logs.tag_resource, resourceArn=arn, tags=too_many) == "TooManyTagsException"
    missing = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/test/none"
    assert code_of(logs.list_tags_for_resource, resourceArn=missing) == "ResourceNotFoundException"


def test_an_iam_user_without_logs_permissions_is_refused(berth: Berth, logs):
    logs.create_log_group(logGroupName="/test/iam")
    nobody = make_user(berth.server, "logs-nobody")
    client = harness.boto3_client(berth.endpoint, nobody, service="logs")
    assert error_of(client.describe_log_groups) == ("AccessDeniedException", 400)
    assert error_of(client.create_log_group, logGroupName="/test/iam-2")[0] == "AccessDeniedException"
    assert error_of(client.filter_log_events, logGroupName="/test/iam")[0] == "AccessDeniedException"
    reader = make_user(
        berth.server, "logs-reader",
        allow(["logs:Describe*", "logs:FilterLogEvents"], f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/test/iam*"),
    )
    client = harness.boto3_client(berth.endpoint, reader, service="logs")
    assert client.filter_log_events(logGroupName="/test/iam")["events"] == []
    assert error_of(client.delete_log_group, logGroupName="/test/iam")[0] == "AccessDeniedException"
    assert logs.describe_log_groups(logGroupNamePrefix="/test/iam")["logGroups"]


def test_the_calls_of_aws_logs_tail_follow_see_every_event_once(logs):
    """CLI v2's `aws logs tail --follow`: FilterLogEvents with interleaved and startTime, then
    follow nextToken; at the end of the pages, poll again from the newest timestamp seen and
    drop events already shown, by eventId."""
    group = "/test/tail"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="app/1")
    base = now_ms() - 10_000
    put(logs, group, "app/1", [f"before {i}" for i in range(5)], base)

    kwargs: dict[str, Any] = {"logGroupName": group, "interleaved": True, "startTime": base, "logStreamNamePrefix": "app/", "limit": 3}
    seen_per_timestamp: dict[int, set[str]] = {}
    shown: list[str] = []

    def poll_until_caught_up() -> None:
        nonlocal seen_per_timestamp
        while True:
            response = logs.filter_log_events(**kwargs)
            for event in response["events"]:
                ids = seen_per_timestamp.setdefault(event["timestamp"], set())
                if event["eventId"] not in ids:
                    ids.add(event["eventId"])
                    shown.append(event["message"])
            if seen_per_timestamp:
                newest = max(seen_per_timestamp)
                seen_per_timestamp = {newest: seen_per_timestamp[newest]}
            if "nextToken" in response:
                kwargs["nextToken"] = response["nextToken"]
            else:
                if seen_per_timestamp:
                    kwargs["startTime"] = max(seen_per_timestamp)
                kwargs.pop("nextToken", None)
                return

    poll_until_caught_up()
    assert shown == [f"before {i}" for i in range(5)]
    poll_until_caught_up()  # nothing new: nothing shown twice
    assert len(shown) == 5
    # Two events at the same millisecond as the last one seen, then newer ones.
    logs.put_log_events(logGroupName=group, logStreamName="app/1", logEvents=[
        {"timestamp": base + 4, "message": "same millisecond"},
        {"timestamp": base + 5, "message": "after 1"},
        {"timestamp": base + 6, "message": "after 2"},
    ])
    poll_until_caught_up()
    assert shown[5:] == ["same millisecond", "after 1", "after 2"]


def test_an_unknown_operation_is_refused_by_name(berth: Berth):
    client = harness.boto3_client(berth.endpoint, berth.credentials, service="logs")

    def rename(request, **_: Any) -> None:
        del request.headers["X-Amz-Target"]  # (assigning would add a second header)
        request.headers["X-Amz-Target"] = "Logs_20140328.Frobnicate"

    # Renamed before signing, so the signature covers the unknown target.
    client.meta.events.register("before-sign.logs.DescribeLogGroups", rename)
    assert code_of(client.describe_log_groups) == "UnknownOperationException"


def test_acknowledged_events_survive_sigkill_of_the_server(tmp_path):
    data = tmp_path / "data"
    first = harness.start_berth(data)
    try:
        client = harness.boto3_client(first.endpoint, first.credentials, service="logs")
        client.create_log_group(logGroupName="/test/durable", tags={"keep": "yes"})
        client.put_retention_policy(logGroupName="/test/durable", retentionInDays=7)
        client.create_log_stream(logGroupName="/test/durable", logStreamName="s")
        start = now_ms() - 60_000
        for batch in range(20):
            put(client, "/test/durable", "s", [f"durable {batch * 500 + i}" for i in range(500)], start + batch * 500)
    finally:
        first.server.kill()
        first.proxy.stop()
    second = harness.start_berth(data)
    try:
        client = harness.boto3_client(second.endpoint, second.credentials, service="logs")
        group = client.describe_log_groups(logGroupNamePrefix="/test/durable")["logGroups"][0]
        assert group["retentionInDays"] == 7 and group["storedBytes"] > 0
        assert client.list_tags_log_group(logGroupName="/test/durable")["tags"] == {"keep": "yes"}
        messages: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": "/test/durable", "logStreamName": "s", "startFromHead": True}
        while True:
            page = client.get_log_events(**kwargs)
            messages += [e["message"] for e in page["events"]]
            if not page["events"]:
                break
            kwargs["nextToken"] = page["nextForwardToken"]
        assert messages == [f"durable {i}" for i in range(10_000)]
    finally:
        harness.stop_berth(second)


def test_logs_answers_are_checked_against_the_logs_model_and_cbor_is_skipped(logs):
    logs.describe_log_groups(limit=1)
    recorded = [e for e in RECORDER.snapshot() if (e.target or "").startswith("Logs_20140328.")]
    assert recorded and all(e.service == "logs" for e in recorded)
    checked, violations = conformance.check_exchanges(recorded)
    assert checked == len(recorded)
    assert not violations, conformance.report(violations)

    def exchange(target, status, body, path="/", content_type="application/x-amz-json-1.1") -> Exchange:
        return Exchange("t", "POST", path, target, status, b"{}", json.dumps(body).encode() if not isinstance(body, bytes) else body,
                        response_content_type=content_type)

    bad = [
        exchange("Logs_20140328.DescribeLogGroups", 200, {"logGroups": [{"logGroupName": "a", "colour": "red"}]}),
        exchange("Logs_20140328.GetLogEvents", 200, {"events": [{"timestamp": "yesterday"}]}),
        exchange("Logs_20140328.CreateLogGroup", 400, {"__type": "ClusterNotFoundException", "message": "x"}),
    ]
    checked, violations = conformance.check_exchanges(bad)
    assert checked == 3 and len(violations) == 3
    good = [
        exchange("Logs_20140328.CreateLogGroup", 400, {"__type": "ResourceAlreadyExistsException", "message": "x"}),
        exchange("GraniteServiceVersion20100801.ListMetrics", 200, {"Metrics": []}, content_type="application/x-amz-json-1.0"),
        exchange("AmazonEC2ContainerServiceV20141113.ListClusters", 200, {"clusterArns": []}),
    ]
    assert conformance.check_exchanges(good) == (3, [])
    skipped = [
        exchange(None, 200, b"\xa0", path="/service/GraniteServiceVersion20100801/operation/ListMetrics", content_type="application/cbor"),
        exchange(None, 200, b"<ListUsersResponse/>", content_type="text/xml"),
    ]
    assert conformance.check_exchanges(skipped) == (0, [])
    assert conformance.skipped(skipped) == 2


AWS_CLI_V2 = "/usr/bin/aws"  # Debian's awscli package (2.x); the venv's `aws` is CLI v1


def test_aws_cli_v2_logs_tail_follow_shows_old_and_new_events_once(berth: Berth, logs):
    """The real `aws logs tail GROUP --follow` of AWS CLI v2 (installed by
    scripts/ensure-test-tools): it prints the events already there, then new ones as they
    are put, each once."""
    assert os.access(AWS_CLI_V2, os.X_OK), "AWS CLI v2 missing: run scripts/ensure-test-tools"
    group = "/test/tail-v2"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="web/1")
    put(logs, group, "web/1", [f"old {i}" for i in range(3)], now_ms() - 5_000)
    cmd = [AWS_CLI_V2, "logs", "tail", group, "--follow", "--since", "10m", "--format", "short",
           "--endpoint-url", berth.endpoint, "--region", REGION]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=berth.credentials.env())
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        harness.wait_until(lambda: sum("old " in l for l in lines) == 3, 30, "the old events", diagnose=lambda: "".join(lines))
        put(logs, group, "web/1", [f"new {i}" for i in range(2)], now_ms())
        harness.wait_until(lambda: sum("new " in l for l in lines) == 2, 30, "the new events", diagnose=lambda: "".join(lines))
        time.sleep(6)  # at least one more poll: nothing is shown again
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    messages = [line.split(" ", 1)[1].strip() for line in lines if line.strip()]
    assert messages == ["old 0", "old 1", "old 2", "new 0", "new 1"], lines

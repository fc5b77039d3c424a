"""CloudWatch metrics on Berth's endpoint: PutMetricData, GetMetricStatistics, GetMetricData
and ListMetrics from boto3 made to speak smithy-rpc-v2-cbor (each answer checked against the
model by botocore's own CBOR parser), from boto3 as it comes (botocore 1.44 ranks `json` before
`smithy-rpc-v2-cbor` in its protocol priority, so it speaks AWS JSON 1.0), made to speak
query, and from the AWS CLI; the data outlives a restart; a user without
`cloudwatch:*` permissions is refused. Clients talk to the server directly: the recording
proxy's conformance check reads no CBOR."""

from __future__ import annotations

import copy
import datetime
import gzip
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import cbor_check
import harness
from harness import REGION, Berth, BerthServer, Credentials
from iam_helpers import allow, error_of, make_user

UTC = datetime.timezone.utc


def now() -> datetime.datetime:
    return datetime.datetime.now(UTC).replace(microsecond=0)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def cloudwatch(url: str, credentials: Credentials, session: botocore.session.Session | None = None):
    """A CloudWatch client of `url`; `session` chooses the model (and so the protocol)."""
    if session is None:
        return harness.boto3_client(url, credentials, service="cloudwatch")
    harness.assert_loopback(url)
    boto = boto3.session.Session(
        botocore_session=session,
        region_name=REGION,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
    )
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return boto.client("cloudwatch", endpoint_url=url, config=config)


def session_speaking(protocol: str, data_path: Path) -> botocore.session.Session:
    """A botocore session whose CloudWatch model lists only `protocol`: a copy of the shipped
    model in a data path searched before botocore's own."""
    source = Path(botocore.__file__).parent / "data" / "cloudwatch" / "2010-08-01" / "service-2.json.gz"
    model = json.loads(gzip.decompress(source.read_bytes()))
    model = copy.deepcopy(model)
    model["metadata"]["protocol"] = protocol
    model["metadata"]["protocols"] = [protocol]
    target = data_path / protocol / "cloudwatch" / "2010-08-01"
    target.mkdir(parents=True, exist_ok=True)
    (target / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(data_path / protocol))
    return session


class Wire:
    """Records the raw answers of a client: (operation, status, headers, body)."""

    def __init__(self, client) -> None:
        self.answers: list[tuple[str, int, dict, bytes]] = []
        client.meta.events.register("before-parse.cloudwatch.*", self._record)

    def _record(self, operation_model, response_dict, **_: Any) -> None:
        self.answers.append(
            (operation_model.name, response_dict["status_code"], dict(response_dict["headers"]), response_dict["body"])
        )

    def last(self, operation: str) -> tuple[int, dict, bytes]:
        for name, status, headers, body in reversed(self.answers):
            if name == operation:
                return status, headers, body
        raise AssertionError(f"no {operation} answer recorded")


@pytest.fixture(scope="module")
def cw(berth: Berth, tmp_path_factory: pytest.TempPathFactory):
    """A CBOR-speaking client and the record of its raw answers."""
    session = session_speaking("smithy-rpc-v2-cbor", tmp_path_factory.mktemp("models"))
    client = cloudwatch(berth.server.url, berth.credentials, session)
    assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return client, Wire(client)


def put_and_read_back(client, namespace: str) -> dict:
    """Puts three values a minute apart with a dimension, and reads their statistics."""
    start = now() - datetime.timedelta(minutes=10)
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": "Latency",
                "Dimensions": [{"Name": "Host", "Value": "a"}],
                "Timestamp": start + datetime.timedelta(minutes=i, seconds=5),
                "Value": value,
                "Unit": "Milliseconds",
            }
            for i, value in enumerate([10.0, 20.0, 60.0])
        ],
    )
    return client.get_metric_statistics(
        Namespace=namespace,
        MetricName="Latency",
        Dimensions=[{"Name": "Host", "Value": "a"}],
        StartTime=start,
        EndTime=start + datetime.timedelta(minutes=5),
        Period=300,
        Statistics=["Average", "Sum", "SampleCount", "Minimum", "Maximum"],
    )


def test_cbor_client_puts_and_reads_statistics_checked_against_the_model(cw):
    client, wire = cw
    namespace = unique("App")
    stats = put_and_read_back(client, namespace)
    status, headers, body = wire.last("GetMetricStatistics")
    assert headers.get("smithy-protocol") == "rpc-v2-cbor"
    assert headers.get("content-type") == "application/cbor"
    raw = cbor_check.check("cloudwatch", "GetMetricStatistics", body)
    assert isinstance(raw["Datapoints"][0]["Timestamp"], datetime.datetime), "times go out as CBOR tag 1"
    assert stats["Label"] == "Latency"
    [point] = stats["Datapoints"]
    assert point["Average"] == 30.0 and point["Sum"] == 90.0 and point["SampleCount"] == 3.0
    assert (point["Minimum"], point["Maximum"], point["Unit"]) == (10.0, 60.0, "Milliseconds")
    # Exact dimension match: the same metric without the dimension is another metric.
    other = client.get_metric_statistics(
        Namespace=namespace, MetricName="Latency", StartTime=now() - datetime.timedelta(hours=1),
        EndTime=now(), Period=60, Statistics=["Sum"],
    )
    assert other["Datapoints"] == []


def test_cbor_get_metric_data_scans_newest_first_and_pages(cw):
    client, wire = cw
    namespace = unique("App")
    base = now().replace(second=0) - datetime.timedelta(minutes=30)
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "Queue", "Timestamp": base + datetime.timedelta(minutes=i), "Values": [i, i + 2], "Counts": [1, 1]}
            for i in range(4)
        ],
    )
    query = {"Id": "q", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Queue"}, "Period": 60, "Stat": "Maximum"}}
    answer = client.get_metric_data(
        MetricDataQueries=[query], StartTime=base, EndTime=base + datetime.timedelta(minutes=10), MaxDatapoints=3
    )
    cbor_check.check("cloudwatch", "GetMetricData", wire.last("GetMetricData")[2])
    [result] = answer["MetricDataResults"]
    assert result["Values"] == [5.0, 4.0, 3.0] and result["StatusCode"] == "PartialData"
    assert result["Timestamps"][0] == base + datetime.timedelta(minutes=3)
    rest = client.get_metric_data(
        MetricDataQueries=[query], StartTime=base, EndTime=base + datetime.timedelta(minutes=10),
        MaxDatapoints=3, NextToken=answer["NextToken"],
    )
    assert rest["MetricDataResults"][0]["Values"] == [2.0]
    assert "NextToken" not in rest
    ascending = client.get_metric_data(
        MetricDataQueries=[query], StartTime=base, EndTime=base + datetime.timedelta(minutes=10), ScanBy="TimestampAscending"
    )
    assert ascending["MetricDataResults"][0]["Values"] == [2.0, 3.0, 4.0, 5.0]


def test_cbor_list_metrics_filters_by_dimension(cw):
    client, wire = cw
    namespace = unique("App")
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "Hits", "Dimensions": [{"Name": "Host", "Value": h}], "Value": 1}
            for h in ("a", "b")
        ]
        + [{"MetricName": "Errors", "Value": 0}],
    )
    listed = client.list_metrics(Namespace=namespace)
    cbor_check.check("cloudwatch", "ListMetrics", wire.last("ListMetrics")[2])
    assert sorted(m["MetricName"] for m in listed["Metrics"]) == ["Errors", "Hits", "Hits"]
    only_b = client.list_metrics(Namespace=namespace, Dimensions=[{"Name": "Host", "Value": "b"}])["Metrics"]
    assert only_b == [{"Namespace": namespace, "MetricName": "Hits", "Dimensions": [{"Name": "Host", "Value": "b"}]}]
    recent = client.list_metrics(Namespace=namespace, MetricName="Errors", RecentlyActive="PT3H")["Metrics"]
    assert [m["MetricName"] for m in recent] == ["Errors"]


def test_cbor_errors_name_the_query_code_and_the_model_exception(cw):
    client, wire = cw
    with pytest.raises(client.exceptions.InvalidParameterValueException) as refused:
        client.put_metric_data(Namespace="AWS/ECS", MetricData=[{"MetricName": "M", "Value": 1}])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    status, headers, body = wire.last("PutMetricData")
    assert status == 400 and headers.get("x-amzn-query-error") == "InvalidParameterValue;Sender"
    assert cbor_check.decode(body)["__type"] == "InvalidParameterValueException"
    code = error_of(
        client.put_metric_data,
        Namespace="App",
        MetricData=[{"MetricName": "M", "Value": 1, "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}],
    )
    assert code == ("InvalidParameterCombination", 400)
    code = error_of(
        client.get_metric_statistics, Namespace="App", MetricName="M", StartTime=now() - datetime.timedelta(hours=1),
        EndTime=now(), Period=90, Statistics=["Sum"],
    )
    assert code == ("InvalidParameterValue", 400)
    code = error_of(
        client.get_metric_statistics, Namespace="App", MetricName="M", StartTime=now() - datetime.timedelta(days=3),
        EndTime=now(), Period=60, Statistics=["Sum"],
    )
    assert code == ("InvalidParameterCombination", 400)
    code = error_of(
        client.get_metric_data, StartTime=now() - datetime.timedelta(hours=1), EndTime=now(),
        MetricDataQueries=[{"Id": "e", "Expression": "SUM(METRICS())"}],
    )
    assert code == ("InvalidParameterValue", 400)
    code = error_of(
        client.get_metric_data, StartTime=now() - datetime.timedelta(hours=1), EndTime=now(), NextToken="bogus",
        MetricDataQueries=[{"Id": "a", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "M"}, "Period": 60, "Stat": "Sum"}}],
    )
    assert code == ("InvalidNextToken", 400)


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_json_and_query_clients_put_read_and_list(berth: Berth, tmp_path: Path, protocol: str):
    if protocol == "json":
        # boto3 as it comes: it picks json from the model's protocols.
        client = cloudwatch(berth.server.url, berth.credentials)
    else:
        client = cloudwatch(berth.server.url, berth.credentials, session_speaking(protocol, tmp_path))
    assert client.meta.service_model.resolved_protocol == protocol
    seen: list[dict] = []
    client.meta.events.register("before-send.cloudwatch.*", lambda request, **_: seen.append(dict(request.headers)))
    namespace = unique(f"App-{protocol}")
    stats = put_and_read_back(client, namespace)
    if protocol == "json":
        assert any(h.get("X-Amz-Target", b"").endswith(b"GetMetricStatistics") for h in seen)
    else:
        assert any(b"x-www-form-urlencoded" in h.get("Content-Type", b"") for h in seen)
    [point] = stats["Datapoints"]
    assert (point["Average"], point["SampleCount"], point["Unit"]) == (30.0, 3.0, "Milliseconds")
    assert isinstance(point["Timestamp"], datetime.datetime)
    data = client.get_metric_data(
        MetricDataQueries=[{"Id": "s", "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": "Latency",
                            "Dimensions": [{"Name": "Host", "Value": "a"}]}, "Period": 60, "Stat": "Sum"}}],
        StartTime=now() - datetime.timedelta(minutes=15), EndTime=now(),
    )
    assert sorted(data["MetricDataResults"][0]["Values"]) == [10.0, 20.0, 60.0]
    listed = client.list_metrics(Namespace=namespace)["Metrics"]
    assert listed == [{"Namespace": namespace, "MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}]}]
    with pytest.raises(ClientError) as refused:
        client.put_metric_data(Namespace=namespace, MetricData=[{"MetricName": "M", "Value": 1, "Unit": "Parsecs"}])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"


def aws_cloudwatch(url: str, credentials: Credentials, *args: str) -> harness.CliResult:
    harness.assert_loopback(url)
    cmd = [*harness.aws_cli(), "cloudwatch", *args, "--endpoint-url", url, "--region", REGION, "--output", "json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=credentials.env())
    return harness.CliResult(cmd, done.returncode, done.stdout, done.stderr)


def test_aws_cli_puts_reads_and_lists(berth: Berth):
    namespace = unique("Cli")
    url, keys = berth.server.url, berth.credentials
    put = aws_cloudwatch(url, keys, "put-metric-data", "--namespace", namespace, "--metric-name", "Jobs",
                         "--dimensions", "Queue=q1", "--value", "7", "--unit", "Count")
    assert put.returncode == 0, put
    start = (now() - datetime.timedelta(minutes=5)).isoformat()
    end = (now() + datetime.timedelta(minutes=1)).isoformat()
    got = aws_cloudwatch(url, keys, "get-metric-statistics", "--namespace", namespace, "--metric-name", "Jobs",
                         "--dimensions", "Name=Queue,Value=q1", "--start-time", start, "--end-time", end,
                         "--period", "3600", "--statistics", "Sum", "SampleCount")
    assert got.returncode == 0, got
    assert [(p["Sum"], p["SampleCount"], p["Unit"]) for p in got.json["Datapoints"]] == [(7.0, 1.0, "Count")]
    listed = aws_cloudwatch(url, keys, "list-metrics", "--namespace", namespace)
    assert listed.returncode == 0, listed
    assert listed.json["Metrics"] == [{"Namespace": namespace, "MetricName": "Jobs", "Dimensions": [{"Name": "Queue", "Value": "q1"}]}]
    bad = aws_cloudwatch(url, keys, "put-metric-data", "--namespace", "AWS/ECS", "--metric-name", "Jobs", "--value", "1")
    assert bad.returncode != 0 and "InvalidParameterValue" in bad.stderr, bad


def test_a_restarted_server_keeps_its_metrics(tmp_path: Path):
    server = BerthServer(tmp_path / "data").start()
    namespace = unique("Kept")
    try:
        client = cloudwatch(server.url, server.credentials)
        stats = put_and_read_back(client, namespace)
        assert stats["Datapoints"][0]["Sum"] == 90.0
    finally:
        server.stop()
    server.start()
    try:
        client = cloudwatch(server.url, server.credentials)
        again = client.get_metric_statistics(
            Namespace=namespace, MetricName="Latency", Dimensions=[{"Name": "Host", "Value": "a"}],
            StartTime=now() - datetime.timedelta(minutes=20), EndTime=now(), Period=1200, Statistics=["Sum", "SampleCount"],
        )
        assert [(p["Sum"], p["SampleCount"]) for p in again["Datapoints"]] == [(90.0, 3.0)]
        assert client.list_metrics(Namespace=namespace)["Metrics"][0]["MetricName"] == "Latency"
    finally:
        server.stop()


def test_a_user_without_cloudwatch_permissions_is_refused(berth: Berth):
    nobody = make_user(berth.server, unique("nocw"))
    reader = make_user(berth.server, unique("cwread"), allow(["cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics"]))
    deadline = time.monotonic() + 10
    client = cloudwatch(berth.server.url, nobody)
    for call, kwargs in [
        (client.put_metric_data, {"Namespace": "App", "MetricData": [{"MetricName": "M", "Value": 1}]}),
        (client.list_metrics, {}),
    ]:
        assert error_of(call, **kwargs) == ("AccessDenied", 403)
    readonly = cloudwatch(berth.server.url, reader)
    # A new key can take a moment to be known everywhere.
    while True:
        try:
            readonly.list_metrics(Namespace="App")
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert error_of(readonly.put_metric_data, Namespace="App", MetricData=[{"MetricName": "M", "Value": 1}]) == ("AccessDenied", 403)


def test_the_cbor_check_catches_untagged_times_and_unknown_members():
    # {"Label": "x", "Datapoints": [{"Timestamp": 60, "Bogus": 1}]}: a time without tag 1.
    body = bytes.fromhex("a2654c6162656c61786a44617461706f696e747381a26954696d657374616d70183c65426f67757301")
    found = cbor_check.violations(cbor_check.output_shape("cloudwatch", "GetMetricStatistics"), cbor_check.decode(body))
    assert any("Timestamp: expected timestamp" in v for v in found), found
    assert any("Bogus is not a member" in v for v in found), found

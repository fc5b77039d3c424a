"""CloudWatch metric alarms on Berth's endpoint, from boto3 in each protocol its clients speak
(smithy-rpc-v2-cbor with each answer checked against the model, AWS JSON 1.0 as boto3 comes,
and query) and from the AWS CLI: an alarm is created, described, filtered, paged, set, updated
(its state kept), and deleted (all or none); its history lists each change; an alarm on a
metric whose datapoints cross its threshold goes to ALARM by itself within seconds, with AWS's
reason, and back to OK; alarms outlive a restart; a user without `cloudwatch:*` rights is
refused. Clients talk to the server directly (the recording proxy reads no CBOR)."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import cbor_check
from harness import Berth, BerthServer, wait_until
from iam_helpers import error_of, make_user
from test_cloudwatch_metrics import Wire, aws_cloudwatch, cloudwatch, now, session_speaking, unique


def alarm_input(name: str, namespace: str, **changes) -> dict:
    return {
        "AlarmName": name,
        "AlarmDescription": "CPU above half",
        "Namespace": namespace,
        "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "ServiceName", "Value": "web"}, {"Name": "ClusterName", "Value": "default"}],
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "Threshold": 50.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": ["arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:abc:resource/ecs/service/default/web:policyName/up"],
        "Tags": [{"Key": "team", "Value": "web"}],
        **changes,
    }


def put_cpu(client, namespace: str, value: float) -> None:
    """`value` now and in each of the three minutes before: whichever three complete minutes an
    evaluation reads in the next minute, each has it."""
    client.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName", "Value": "web"}],
                "Timestamp": now() - datetime.timedelta(minutes=i),
                "Value": value,
                "Unit": "Percent",
            }
            for i in range(4)
        ],
    )


def state_of(client, name: str) -> dict:
    return client.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "json", "query"])
def test_alarm_lifecycle_in_each_protocol(berth: Berth, tmp_path: Path, protocol: str):
    if protocol == "json":
        client = cloudwatch(berth.server.url, berth.credentials)
    else:
        client = cloudwatch(berth.server.url, berth.credentials, session_speaking(protocol, tmp_path))
    assert client.meta.service_model.resolved_protocol == protocol
    wire = Wire(client)
    namespace = unique(f"Alarms-{protocol}")
    name = unique("cpu-high")
    client.put_metric_alarm(**alarm_input(name, namespace))
    client.put_metric_alarm(**alarm_input(unique("zz-other"), namespace))
    alarm = state_of(client, name)
    if protocol == "smithy-rpc-v2-cbor":
        raw = cbor_check.check("cloudwatch", "DescribeAlarms", wire.last("DescribeAlarms")[2])
        assert isinstance(raw["MetricAlarms"][0]["StateUpdatedTimestamp"], datetime.datetime)
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:000000000000:alarm:{name}"
    assert alarm["Dimensions"] == [{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName", "Value": "web"}]
    assert (alarm["Threshold"], alarm["Period"], alarm["DatapointsToAlarm"], alarm["ActionsEnabled"]) == (50.0, 60, 2, True)
    assert isinstance(alarm["StateUpdatedTimestamp"], datetime.datetime)
    assert alarm["AlarmActions"] == alarm_input(name, namespace)["AlarmActions"]

    arn_of = alarm["AlarmArn"]
    client.tag_resource(ResourceARN=arn_of, Tags=[{"Key": "env", "Value": "prod"}])
    client.untag_resource(ResourceARN=arn_of, TagKeys=["team"])
    assert client.list_tags_for_resource(ResourceARN=arn_of)["Tags"] == [{"Key": "env", "Value": "prod"}]

    client.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="testing the action")
    client.put_metric_alarm(**alarm_input(name, namespace, Threshold=70.0))
    kept = state_of(client, name)
    assert (kept["StateValue"], kept["StateReason"], kept["Threshold"]) == ("ALARM", "testing the action", 70.0)
    assert [a["AlarmName"] for a in client.describe_alarms(StateValue="ALARM", AlarmNamePrefix=name)["MetricAlarms"]] == [name]
    client.disable_alarm_actions(AlarmNames=[name])
    assert state_of(client, name)["ActionsEnabled"] is False

    history = client.describe_alarm_history(AlarmName=name, ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [h["HistoryItemType"] for h in history] == ["ConfigurationUpdate", "StateUpdate", "ConfigurationUpdate"]
    assert history[1]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"
    assert json.loads(history[1]["HistoryData"])["newState"]["stateValue"] == "ALARM"

    with pytest.raises(ClientError) as missing:
        client.delete_alarms(AlarmNames=[name, unique("never-made")])
    assert missing.value.response["Error"]["Code"] == "ResourceNotFound"
    assert state_of(client, name)["AlarmName"] == name, "none deleted"
    with pytest.raises(ClientError) as bad:
        client.put_metric_alarm(**alarm_input(unique("bad"), namespace, Period=45))
    assert bad.value.response["Error"]["Code"] == "InvalidParameterValue"
    client.delete_alarms(AlarmNames=[name])
    assert client.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_an_alarm_follows_its_metric_by_itself(berth: Berth):
    client = cloudwatch(berth.server.url, berth.credentials)
    namespace = unique("Evaluated")
    name = unique("cpu")
    client.put_metric_alarm(**alarm_input(name, namespace))
    put_cpu(client, namespace, 90.0)
    alarmed = wait_until(
        lambda: (a := state_of(client, name))["StateValue"] == "ALARM" and a, 20, "the alarm to go to ALARM"
    )
    assert alarmed["StateReason"].startswith("Threshold Crossed: 3 out of the last 3 datapoints [90.0"), alarmed["StateReason"]
    assert "greater than the threshold (50.0)" in alarmed["StateReason"]
    data = json.loads(alarmed["StateReasonData"])
    assert data["statistic"] == "Average" and data["period"] == 60 and data["recentDatapoints"] == [90.0, 90.0, 90.0]
    actions = client.describe_alarm_history(AlarmName=name, HistoryItemType="Action")["AlarmHistoryItems"]
    assert actions and "scalingPolicy:abc" in actions[0]["HistorySummary"]

    # The AWS CLI sees it too.
    listed = aws_cloudwatch(berth.server.url, berth.credentials, "describe-alarms", "--state-value", "ALARM", "--alarm-name-prefix", name)
    assert listed.returncode == 0, listed
    assert [a["AlarmName"] for a in listed.json["MetricAlarms"]] == [name]

    # Datapoints of 10 % join each of those minutes: the averages fall below the threshold.
    for _ in range(8):
        put_cpu(client, namespace, 10.0)
    ok = wait_until(lambda: (a := state_of(client, name))["StateValue"] == "OK" and a, 20, "the alarm to go back to OK")
    assert "not greater than the threshold (50.0)" in ok["StateReason"], ok["StateReason"]


def test_alarms_outlive_a_restart(tmp_path: Path):
    server = BerthServer(tmp_path / "data").start()
    name = unique("kept")
    try:
        client = cloudwatch(server.url, server.credentials)
        client.put_metric_alarm(**alarm_input(name, unique("Kept")))
        client.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="set before the restart")
        server.stop()
        server.start()
        client = cloudwatch(server.url, server.credentials)
        alarm = state_of(client, name)
        # No datapoints: the first evaluation after the restart may already have moved it.
        assert (alarm["StateValue"], alarm["StateReason"]) in (
            ("OK", "set before the restart"),
            ("INSUFFICIENT_DATA", "Insufficient Data: 3 datapoints were unknown."),
        ), alarm
        assert alarm["Threshold"] == 50.0 and alarm["AlarmDescription"] == "CPU above half"
    finally:
        server.stop()


def test_a_user_without_alarm_permissions_is_refused(berth: Berth):
    nobody = make_user(berth.server, unique("noalarms"))
    client = cloudwatch(berth.server.url, nobody)
    deadline = time.monotonic() + 10
    while True:
        code = error_of(client.describe_alarms)
        if code == ("AccessDenied", 403) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == ("AccessDenied", 403)
    assert error_of(client.put_metric_alarm, **alarm_input(unique("x"), "App")) == ("AccessDenied", 403)

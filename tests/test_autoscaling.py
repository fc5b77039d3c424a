"""Application Auto Scaling on Berth's endpoint, from boto3 and the AWS CLI, on `berth up` with
real containers: a scalable target on a service's desired count, a target tracking policy on
its average CPU (the alarms it makes are CloudWatch alarms anyone can describe), bounds kept,
errors in the service's own words, and a service whose task burns CPU scaled out by itself to
the target's maximum, with the activity saying which alarm triggered which policy. (Scale-in
and cooldowns run on a fake clock in the server's unit suite: ECS's scale-in alarm needs 15
periods below the target.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from harness import BerthUp, boto3_client, wait_until
from iam_helpers import aws, cli_error

CLUSTER = "default"
DIMENSION = "ecs:service:DesiredCount"


@pytest.fixture(scope="module")
def scaling(berth_up: BerthUp):
    """Application Auto Scaling through the recording proxy (its answers are checked against
    the botocore model)."""
    return boto3_client(berth_up.endpoint, berth_up.server.credentials, service="application-autoscaling")


@pytest.fixture(scope="module")
def cloudwatch(berth_up: BerthUp):
    return boto3_client(berth_up.server.url, berth_up.server.credentials, service="cloudwatch")


def service(berth_up: BerthUp, name: str, command: list[str], desired: int = 1) -> str:
    berth_up.ecs.register_task_definition(
        family=name,
        cpu="256",
        memory="64",
        containerDefinitions=[{"name": "app", "image": "busybox", "essential": True, "command": command}],
    )
    berth_up.ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=name, desiredCount=desired)
    return f"service/{CLUSTER}/{name}"


def desired_count(berth_up: BerthUp, name: str) -> int:
    return berth_up.ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]["desiredCount"]


def test_targets_and_policies_with_boto3_and_the_cli(berth_up: BerthUp, scaling, cloudwatch, unique, tmp_path: Path):
    name = unique("idle")
    resource = service(berth_up, name, ["sleep", "3600"])
    arn = scaling.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION, MinCapacity=2, MaxCapacity=4
    )["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/")
    # The minimum is kept: the service goes from 1 to 2 by itself.
    wait_until(lambda: desired_count(berth_up, name) == 2, 20, "the minimum capacity to be applied")
    activities = scaling.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]
    assert activities[0]["StatusCode"] == "Successful" and "minimum capacity was set to 2" in activities[0]["Cause"]

    put = scaling.put_scaling_policy(
        PolicyName="cpu50",
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 50.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
            "ScaleOutCooldown": 60,
            "ScaleInCooldown": 120,
        },
    )
    names = [a["AlarmName"] for a in put["Alarms"]]
    assert len(names) == 2 and names[0].startswith(f"TargetTracking-{resource}-AlarmHigh-")
    alarms = cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
    assert {a["AlarmActions"][0] for a in alarms} == {put["PolicyARN"]}
    assert {(a["MetricName"], a["Namespace"]) for a in alarms} == {("CPUUtilization", "AWS/ECS")}

    listed = aws(berth_up.server, berth_up.server.credentials, tmp_path, "application-autoscaling",
                 "describe-scaling-policies", "--service-namespace", "ecs", "--resource-id", resource)
    assert listed.returncode == 0, listed.stderr
    [policy] = json.loads(listed.stdout)["ScalingPolicies"]
    assert policy["PolicyName"] == "cpu50" and policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 50.0

    missing = aws(berth_up.server, berth_up.server.credentials, tmp_path, "application-autoscaling",
                  "register-scalable-target", "--service-namespace", "ecs", "--resource-id", f"service/{CLUSTER}/{unique('none')}",
                  "--scalable-dimension", DIMENSION, "--min-capacity", "1", "--max-capacity", "2")
    assert cli_error(missing) == "ValidationException"
    with pytest.raises(ClientError) as bad:
        scaling.put_scaling_policy(PolicyName="p", ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION,
                                   PolicyType="PredictiveScaling", PredictiveScalingPolicyConfiguration={"MetricSpecifications": []})
    assert bad.value.response["Error"]["Code"] == "ValidationException"

    # Deregistering removes the policy and its alarms.
    scaling.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION)
    assert scaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource)["ScalingPolicies"] == []
    assert cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"] == []
    berth_up.ecs.delete_service(cluster=CLUSTER, service=name, force=True)


def test_a_service_burning_cpu_scales_out_by_itself(berth_up: BerthUp, scaling, unique):
    name = unique("burn")
    # Each task burns a core (about 400 % of its 256 CPU units) for 90 s, then idles.
    burn = "end=$(($(date +%s)+90)); while [ $(date +%s) -lt $end ]; do :; done; sleep 3600"
    resource = service(berth_up, name, ["sh", "-c", burn])
    scaling.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=3
    )
    scaling.put_scaling_policy(
        PolicyName="cpu50",
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 50.0,
            # 10-second periods: the high alarm needs 30 s above the target, not 3 minutes.
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilizationHighResolution"},
            "ScaleOutCooldown": 30,
        },
    )
    try:
        wait_until(lambda: desired_count(berth_up, name) == 3, 150, "the service to scale out to its maximum",
                   diagnose=berth_up.server.log_tail)
        [activity] = scaling.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]
        assert activity["Description"] == "Setting desired count to 3 (from 1).", activity
        assert "AlarmHigh" in activity["Cause"] and "triggered policy cpu50" in activity["Cause"], activity["Cause"]
        # The deployment controller does the rest: three tasks run.
        wait_until(
            lambda: len(berth_up.ecs.list_tasks(cluster=CLUSTER, serviceName=name, desiredStatus="RUNNING")["taskArns"]) == 3,
            60, "three tasks",
        )
    finally:
        scaling.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION)
        berth_up.ecs.delete_service(cluster=CLUSTER, service=name, force=True)

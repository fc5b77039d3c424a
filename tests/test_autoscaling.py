"""Application Auto Scaling on Berth's endpoint, from boto3 and the AWS CLI, on `berth up` with
real containers: a scalable target on a service's desired count, a target tracking policy on
its average CPU (the alarms it makes are CloudWatch alarms anyone can describe), a scheduled
action in a time zone firing within 10 s of its time, bounds kept,
errors in the service's own words, and a service whose task burns CPU scaled out by itself to
the target's maximum, with the activity saying which alarm triggered which policy, and a
fixed load shared by a service's tasks scaled out to its level and back in when it stops,
on step scaling policies whose alarms have 20-s windows. (Target tracking's own scale-in
needs 15 periods below the target: the unit suite runs it on a fake clock and `berth bench
autoscaling-soak` on real containers.)"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError

from harness import REPO, BerthUp, boto3_client, docker, wait_until
from iam_helpers import aws, cli_error

pytestmark = pytest.mark.waits

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
    # The activity is InProgress before the count moves and ends with UpdateService's answer.
    activities = wait_until(
        lambda: [
            a
            for a in scaling.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]
            if a["StatusCode"] != "InProgress"
        ],
        10,
        "the activity to end",
    )
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
    # Each task burns all it may for 90 s, then idles: its task-level cpu (256 units) is a
    # hard limit, as on ECS, so that is 100 % of its reservation; a target of 50 % asks for
    # ceil(1 × 100 ÷ 50) = 2 tasks.
    burn = "end=$(($(date +%s)+90)); while [ $(date +%s) -lt $end ]; do :; done; sleep 3600"
    resource = service(berth_up, name, ["sh", "-c", burn])
    scaling.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=2
    )
    scaling.put_scaling_policy(
        PolicyName="cpu50",
        ServiceNamespace="ecs",
        ResourceId=resource,
        ScalableDimension=DIMENSION,
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 50.0,
            # 20-second periods (as on ECS): the high alarm needs a minute above the target, not 3.
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilizationHighResolution"},
            "ScaleOutCooldown": 30,
        },
    )
    try:
        wait_until(lambda: desired_count(berth_up, name) == 2, 150, "the service to scale out",
                   diagnose=berth_up.server.log_tail)
        [activity] = scaling.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]
        assert activity["Description"] == "Setting desired count to 2 (from 1).", activity
        assert "AlarmHigh" in activity["Cause"] and "triggered policy cpu50" in activity["Cause"], activity["Cause"]
        # The deployment controller does the rest: two tasks run, each held to its limit.
        wait_until(
            lambda: len(berth_up.ecs.list_tasks(cluster=CLUSTER, serviceName=name, desiredStatus="RUNNING")["taskArns"]) == 2,
            60, "two tasks",
        )
        arns = berth_up.ecs.list_tasks(cluster=CLUSTER, serviceName=name, desiredStatus="RUNNING")["taskArns"]
        running = wait_until(
            lambda: (tasks := berth_up.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"])
            and all(t["lastStatus"] == "RUNNING" for t in tasks) and tasks,
            60, "both tasks RUNNING",
        )
        for task in running:
            runtime_id = task["containers"][0]["runtimeId"]
            assert docker("inspect", "-f", "{{.HostConfig.NanoCpus}}", runtime_id).strip() == "250000000", "256 units = 0.25 CPU"
    finally:
        scaling.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION)
        berth_up.ecs.delete_service(cluster=CLUSTER, service=name, force=True)


def test_a_scheduled_action_fires_within_ten_seconds_of_its_time(berth_up: BerthUp, scaling, unique, tmp_path: Path):
    name = unique("scheduled")
    resource = service(berth_up, name, ["sleep", "3600"])
    scaling.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=2
    )
    try:
        at = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=15)
        # The time is read in the action's zone: 15 s from now in Paris.
        paris = at.astimezone(ZoneInfo("Europe/Paris")).replace(tzinfo=None)
        put = aws(berth_up.server, berth_up.server.credentials, tmp_path, "application-autoscaling",
                  "put-scheduled-action", "--service-namespace", "ecs", "--resource-id", resource,
                  "--scalable-dimension", DIMENSION, "--scheduled-action-name", "burst",
                  "--schedule", f"at({paris.isoformat()})", "--timezone", "Europe/Paris",
                  "--scalable-target-action", "MinCapacity=2,MaxCapacity=3")
        assert put.returncode == 0, put.stderr
        [action] = scaling.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=resource)["ScheduledActions"]
        assert action["Timezone"] == "Europe/Paris" and action["ScalableTargetAction"] == {"MinCapacity": 2, "MaxCapacity": 3}

        def bounds() -> tuple[int, int]:
            [target] = scaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[resource])["ScalableTargets"]
            return target["MinCapacity"], target["MaxCapacity"]

        wait_until(lambda: bounds() == (2, 3), 40, "the scheduled action to fire")
        fired = datetime.datetime.now(datetime.timezone.utc)
        assert (fired - at).total_seconds() <= 10.5, f"fired {fired - at} after its time"
        wait_until(lambda: desired_count(berth_up, name) == 2, 20, "the new minimum to be applied")
        causes = [a["Cause"] for a in scaling.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]]
        assert any(c.startswith("scheduled action name burst was triggered") for c in causes), causes
    finally:
        scaling.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION)
        assert scaling.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=resource)["ScheduledActions"] == []
        berth_up.ecs.delete_service(cluster=CLUSTER, service=name, force=True)


# A task's share of a fixed load: the script `berth bench autoscaling-soak` runs.
SHARED_LOAD = (REPO / "crates/berth/src/commands/bench/shared-load.sh").read_text()


def test_a_shared_load_scales_out_to_its_level_and_back_in_when_it_stops(berth_up: BerthUp, scaling, cloudwatch, unique):
    """One task's worth of CPU shared by the service's tasks (a task holding the one token
    burns its whole limit; the others wait): at 1 task the average is 100 %, at 2 it is 50 %,
    between the alarms' thresholds, so the service settles at 2; when the load stops it goes
    back to 1, with one reversal of direction in the whole run."""
    name = unique("shared")
    volume = f"berth-test-{name}"
    berth_up.ecs.register_task_definition(
        family=name,
        cpu="256",
        memory="64",
        volumes=[{"name": volume, "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True, "driver": "local"}}],
        containerDefinitions=[{
            "name": "app", "image": "busybox", "essential": True, "command": ["sh", "-c", SHARED_LOAD],
            "environment": [{"name": "TOKENS", "value": "1"}],
            "mountPoints": [{"sourceVolume": volume, "containerPath": "/load"}],
            "stopTimeout": 5,
        }],
    )
    berth_up.ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=name, desiredCount=1)
    resource = f"service/{CLUSTER}/{name}"
    scaling.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=4
    )

    def step_policy(policy: str, step: dict, cooldown: int) -> str:
        return scaling.put_scaling_policy(
            PolicyName=policy, ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION,
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration={"AdjustmentType": "ChangeInCapacity", "Cooldown": cooldown,
                                            "MetricAggregationType": "Average", "StepAdjustments": [step]},
        )["PolicyARN"]

    # The out policy's cooldown outlasts the datapoints from before the new task ran.
    out_arn = step_policy("out", {"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}, 120)
    in_arn = step_policy("in", {"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -1}, 60)
    alarms = {"high": (75.0, "GreaterThanThreshold", out_arn), "low": (25.0, "LessThanThreshold", in_arn)}
    for suffix, (threshold, operator, arn) in alarms.items():
        cloudwatch.put_metric_alarm(
            AlarmName=f"{name}-{suffix}", Namespace="AWS/ECS", MetricName="CPUUtilization",
            Dimensions=[{"Name": "ClusterName", "Value": CLUSTER}, {"Name": "ServiceName", "Value": name}],
            Statistic="Average", Period=20, EvaluationPeriods=2, Threshold=threshold,
            ComparisonOperator=operator, AlarmActions=[arn],
        )
    counts = [1]

    def watch(wanted: int) -> bool:
        now = desired_count(berth_up, name)
        if now != counts[-1]:
            counts.append(now)
        return now == wanted

    try:
        wait_until(lambda: watch(2), 150, "the service to scale out to 2", interval=1, diagnose=berth_up.server.log_tail)
        # It holds there: 50 % is between the thresholds, and the first task's datapoints from
        # before the second ran are behind the cooldown.
        for _ in range(40):
            watch(2)
            time.sleep(1)
        assert counts == [1, 2], f"desired counts seen: {counts}"
        [high] = cloudwatch.describe_alarms(AlarmNames=[f"{name}-high"])["MetricAlarms"]
        assert high["StateValue"] == "OK", high["StateReason"]

        docker("run", "--rm", "-v", f"{volume}:/load", "berth-test/busybox:latest", "touch", "/load/stop")
        wait_until(lambda: watch(1), 120, "the service to scale back in to 1", interval=1, diagnose=berth_up.server.log_tail)
        assert counts == [1, 2, 1], f"one reversal of direction, no more: {counts}"
        activities = scaling.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]
        assert [a["Description"] for a in activities[:2]] == [
            "Setting desired count to 1 (from 2).", "Setting desired count to 2 (from 1)."
        ], activities
        assert f"alarm {name}-low" in activities[0]["Cause"] and "triggered policy in" in activities[0]["Cause"], activities[0]
        # The load is gone, not moved: the task left holds no token and idles.
        wait_until(
            lambda: len(berth_up.ecs.list_tasks(cluster=CLUSTER, serviceName=name, desiredStatus="RUNNING")["taskArns"]) == 1,
            60, "one task",
        )
        assert docker("run", "--rm", "-v", f"{volume}:/load", "berth-test/busybox:latest", "ls", "/load").split() == ["stop"]
    finally:
        scaling.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=resource, ScalableDimension=DIMENSION)
        cloudwatch.delete_alarms(AlarmNames=[f"{name}-high", f"{name}-low"])
        berth_up.ecs.delete_service(cluster=CLUSTER, service=name, force=True)
        # The shared volume outlives the service, as on ECS; containers the agent has not
        # removed yet still hold it.
        wait_until(lambda: not docker("ps", "-q", "--filter", f"volume={volume}").strip(), 60, "the service's tasks to stop")
        holders = docker("ps", "-aq", "--filter", f"volume={volume}", check=False).split()
        if holders:
            docker("rm", "-f", *holders, check=False)
        docker("volume", "rm", "-f", volume, check=False)

"""Elastic Load Balancing v2's control plane on Berth's endpoint, from boto3's `elbv2` client
and the AWS CLI, on `berth up`: a load balancer, a target group, a listener forwarding to it, a
rule on a path, targets registered (unused before a listener forwards to their group, initial
after), drained on deregistration, tags, deletes in the order ELB requires; errors in ELB's own
words; and an IAM user without elasticloadbalancing permissions refused."""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import botocore
import pytest
from botocore.exceptions import ClientError

from harness import BerthUp, boto3_client, free_port, wait_until
from iam_helpers import allow, aws, cli_error, delete_user, error_of, make_user

ARN_PREFIX = "arn:aws:elasticloadbalancing:us-east-1:000000000000:"


@pytest.fixture(scope="module")
def elbv2(berth_up: BerthUp):
    """ELBv2 through the recording proxy."""
    return boto3_client(berth_up.endpoint, berth_up.server.credentials, service="elbv2")


def health(elbv2, group: str) -> list[tuple[str, int, str, str]]:
    described = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    return [
        (d["Target"]["Id"], d["Target"]["Port"], d["TargetHealth"]["State"], d["TargetHealth"].get("Reason", ""))
        for d in described
    ]


def test_a_load_balancer_forwards_to_a_target_group_whose_targets_register_and_drain(elbv2, unique):
    name = unique("web")
    lb = elbv2.create_load_balancer(Name=name, Subnets=["subnet-1", "subnet-2"], Tags=[{"Key": "team", "Value": "blue"}])[
        "LoadBalancers"
    ][0]
    lb_arn = lb["LoadBalancerArn"]
    assert lb_arn.startswith(f"{ARN_PREFIX}loadbalancer/app/{name}/")
    assert lb["Type"] == "application" and lb["Scheme"] == "internet-facing"
    assert lb["State"]["Code"] == "active" and lb["IpAddressType"] == "ipv4"
    assert lb["DNSName"].startswith(f"{name}-") and lb["DNSName"].endswith(".us-east-1.elb.localhost")
    assert [z["SubnetId"] for z in lb["AvailabilityZones"]] == ["subnet-1", "subnet-2"]
    assert elbv2.describe_load_balancers(Names=[name])["LoadBalancers"][0]["LoadBalancerArn"] == lb_arn
    attributes = {
        a["Key"]: a["Value"] for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]
    }
    assert attributes["idle_timeout.timeout_seconds"] == "60"
    assert attributes["deletion_protection.enabled"] == "false"

    group = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, TargetType="ip", VpcId="vpc-1")[
        "TargetGroups"
    ][0]
    group_arn = group["TargetGroupArn"]
    assert group_arn.startswith(f"{ARN_PREFIX}targetgroup/{name}/")
    assert (group["HealthCheckPath"], group["HealthCheckPort"], group["Matcher"]["HttpCode"]) == ("/", "traffic-port", "200")
    assert group["HealthCheckIntervalSeconds"] == 30 and group["HealthyThresholdCount"] == 5
    assert group["LoadBalancerArns"] == []
    # The same group again is the same group.
    again = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, TargetType="ip", VpcId="vpc-1")
    assert again["TargetGroups"][0]["TargetGroupArn"] == group_arn

    elbv2.register_targets(TargetGroupArn=group_arn, Targets=[{"Id": "10.1.0.1"}, {"Id": "10.1.0.2", "Port": 9090}])
    assert health(elbv2, group_arn) == [
        ("10.1.0.1", 8080, "unused", "Target.NotInUse"),
        ("10.1.0.2", 9090, "unused", "Target.NotInUse"),
    ]

    listener = elbv2.create_listener(
        LoadBalancerArn=lb_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group_arn}],
    )["Listeners"][0]
    listener_arn = listener["ListenerArn"]
    assert listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"] == [{"TargetGroupArn": group_arn, "Weight": 1}]
    described = elbv2.describe_target_groups(LoadBalancerArn=lb_arn)["TargetGroups"]
    assert [g["TargetGroupArn"] for g in described] == [group_arn]
    assert described[0]["LoadBalancerArns"] == [lb_arn]
    assert [s for _, _, s, _ in health(elbv2, group_arn)] == ["initial", "initial"]
    assert health(elbv2, group_arn)[0][3] == "Elb.RegistrationInProgress"
    described = elbv2.describe_target_health(TargetGroupArn=group_arn, Targets=[{"Id": "10.1.0.2", "Port": 9090}])
    assert described["TargetHealthDescriptions"][0]["HealthCheckPort"] == "9090"

    rule = elbv2.create_rule(
        ListenerArn=listener_arn,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*"]}}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain"}}],
    )["Rules"][0]
    assert rule["Priority"] == "10" and rule["IsDefault"] is False
    assert rule["Conditions"][0]["PathPatternConfig"]["Values"] == ["/api/*"]
    rules = elbv2.describe_rules(ListenerArn=listener_arn)["Rules"]
    assert [(r["Priority"], r["IsDefault"]) for r in rules] == [("10", False), ("default", True)]
    assert rules[1]["Actions"][0]["TargetGroupArn"] == group_arn

    elbv2.deregister_targets(TargetGroupArn=group_arn, Targets=[{"Id": "10.1.0.1"}])
    assert health(elbv2, group_arn)[0] == ("10.1.0.1", 8080, "draining", "Target.DeregistrationInProgress")
    # Registered again while draining, it is registered again.
    elbv2.register_targets(TargetGroupArn=group_arn, Targets=[{"Id": "10.1.0.1"}])
    assert health(elbv2, group_arn)[0][2] == "initial"

    elbv2.add_tags(ResourceArns=[group_arn, listener_arn, rule["RuleArn"]], Tags=[{"Key": "env", "Value": "test"}])
    tags = elbv2.describe_tags(ResourceArns=[lb_arn, group_arn, rule["RuleArn"]])["TagDescriptions"]
    env = [{"Key": "env", "Value": "test"}]
    assert [d["Tags"] for d in tags] == [[{"Key": "team", "Value": "blue"}], env, env]
    elbv2.remove_tags(ResourceArns=[group_arn], TagKeys=["env"])
    assert elbv2.describe_tags(ResourceArns=[group_arn])["TagDescriptions"][0].get("Tags", []) == []

    code, status = error_of(elbv2.delete_target_group, TargetGroupArn=group_arn)
    assert (code, status) == ("ResourceInUse", 400)
    elbv2.delete_rule(RuleArn=rule["RuleArn"])
    elbv2.delete_listener(ListenerArn=listener_arn)
    assert elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"] == []
    elbv2.delete_target_group(TargetGroupArn=group_arn)
    elbv2.delete_load_balancer(LoadBalancerArn=lb_arn)
    # Deleting again is no error, as on AWS.
    elbv2.delete_load_balancer(LoadBalancerArn=lb_arn)
    assert error_of(elbv2.describe_load_balancers, LoadBalancerArns=[lb_arn]) == ("LoadBalancerNotFound", 400)


def test_errors_come_in_elbs_own_words(elbv2, unique):
    name = unique("err")
    assert error_of(elbv2.create_load_balancer, Name="internal-x") == ("ValidationError", 400)
    assert error_of(elbv2.create_load_balancer, Name="bad_name") == ("ValidationError", 400)
    lb_arn = elbv2.create_load_balancer(Name=name)["LoadBalancers"][0]["LoadBalancerArn"]
    assert error_of(elbv2.create_load_balancer, Name=name, Scheme="internal") == ("DuplicateLoadBalancerName", 400)

    assert error_of(elbv2.create_target_group, Name=name, Protocol="HTTPS", Port=443) == ("ValidationError", 400)
    assert error_of(elbv2.create_target_group, Name=name, Protocol="UDP", Port=53) == ("ValidationError", 400)
    assert error_of(elbv2.create_target_group, Name=name, TargetType="lambda") == ("ValidationError", 400)
    group_arn = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80)["TargetGroups"][0]["TargetGroupArn"]
    assert error_of(elbv2.create_target_group, Name=name, Protocol="HTTP", Port=81) == ("DuplicateTargetGroupName", 400)
    assert error_of(elbv2.register_targets, TargetGroupArn=group_arn, Targets=[{"Id": "10.0.0.1"}]) == ("InvalidTarget", 400)

    forward = [{"Type": "forward", "TargetGroupArn": group_arn}]
    assert error_of(elbv2.create_listener, LoadBalancerArn=lb_arn, Protocol="HTTPS", Port=443, DefaultActions=forward) == (
        "UnsupportedProtocol",
        400,
    )
    listener_arn = elbv2.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80, DefaultActions=forward)[
        "Listeners"
    ][0]["ListenerArn"]
    fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}]
    assert error_of(elbv2.create_listener, LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80, DefaultActions=fixed) == (
        "DuplicateListener",
        400,
    )
    condition = [{"Field": "host-header", "Values": ["a.example.com"]}]
    elbv2.create_rule(ListenerArn=listener_arn, Priority=1, Conditions=condition, Actions=fixed)
    assert error_of(elbv2.create_rule, ListenerArn=listener_arn, Priority=1, Conditions=condition, Actions=fixed) == (
        "PriorityInUse",
        400,
    )
    assert error_of(elbv2.delete_target_group, TargetGroupArn=group_arn) == ("ResourceInUse", 400)

    missing_lb = lb_arn.rsplit("/", 1)[0] + "/0000000000000000"
    assert error_of(elbv2.describe_listeners, LoadBalancerArn=missing_lb) == ("LoadBalancerNotFound", 400)
    missing_group = group_arn.rsplit("/", 1)[0] + "/0000000000000000"
    assert error_of(elbv2.describe_target_health, TargetGroupArn=missing_group) == ("TargetGroupNotFound", 400)
    missing_listener = listener_arn.rsplit("/", 1)[0] + "/0000000000000000"
    assert error_of(elbv2.describe_rules, ListenerArn=missing_listener) == ("ListenerNotFound", 400)
    assert error_of(elbv2.delete_rule, RuleArn=missing_listener.replace(":listener/", ":listener-rule/") + "/0") == (
        "RuleNotFound",
        400,
    )
    too_many = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    assert error_of(elbv2.add_tags, ResourceArns=[lb_arn], Tags=too_many) == ("TooManyTags", 400)

    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=lb_arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}]
    )
    assert error_of(elbv2.delete_load_balancer, LoadBalancerArn=lb_arn) == ("OperationNotPermitted", 400)
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=lb_arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}]
    )
    elbv2.delete_load_balancer(LoadBalancerArn=lb_arn)
    elbv2.delete_target_group(TargetGroupArn=group_arn)


def test_target_group_attributes_are_kept_and_checked(elbv2, unique):
    group_arn = elbv2.create_target_group(Name=unique("attrs"), Protocol="TCP", Port=5432)["TargetGroups"][0][
        "TargetGroupArn"
    ]
    attributes = {a["Key"]: a["Value"] for a in elbv2.describe_target_group_attributes(TargetGroupArn=group_arn)["Attributes"]}
    assert attributes["deregistration_delay.timeout_seconds"] == "300"
    assert attributes["stickiness.type"] == "source_ip"
    changed = elbv2.modify_target_group_attributes(
        TargetGroupArn=group_arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}]
    )["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "30"} in changed
    bad = [{"Key": "deregistration_delay.timeout_seconds", "Value": "4000"}]
    assert error_of(elbv2.modify_target_group_attributes, TargetGroupArn=group_arn, Attributes=bad) == ("ValidationError", 400)
    elbv2.delete_target_group(TargetGroupArn=group_arn)


def test_the_aws_cli_drives_load_balancers(berth_up: BerthUp, unique, tmp_path: Path):
    name = unique("cli")
    credentials = berth_up.server.credentials
    made = aws(berth_up.server, credentials, tmp_path, "elbv2", "create-load-balancer", "--name", name, "--type", "network")
    assert made.returncode == 0, made.stderr
    lb_arn = json.loads(made.stdout)["LoadBalancers"][0]["LoadBalancerArn"]
    assert f":loadbalancer/net/{name}/" in lb_arn
    listed = aws(berth_up.server, credentials, tmp_path, "elbv2", "describe-load-balancers", "--names", name)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["LoadBalancers"][0]["Type"] == "network"
    group = aws(berth_up.server, credentials, tmp_path, "elbv2", "create-target-group", "--name", name,
                "--protocol", "TCP", "--port", "6379", "--target-type", "ip")
    assert group.returncode == 0, group.stderr
    group_arn = json.loads(group.stdout)["TargetGroups"][0]["TargetGroupArn"]
    listener = aws(berth_up.server, credentials, tmp_path, "elbv2", "create-listener", "--load-balancer-arn", lb_arn,
                   "--protocol", "TCP", "--port", "6379",
                   "--default-actions", f"Type=forward,TargetGroupArn={group_arn}")
    assert listener.returncode == 0, listener.stderr
    described = aws(berth_up.server, credentials, tmp_path, "elbv2", "describe-listeners", "--load-balancer-arn", lb_arn)
    assert [l["Port"] for l in json.loads(described.stdout)["Listeners"]] == [6379]
    missing = aws(berth_up.server, credentials, tmp_path, "elbv2", "describe-load-balancers", "--names", unique("none"))
    assert cli_error(missing) == "LoadBalancerNotFound"
    duplicate = aws(berth_up.server, credentials, tmp_path, "elbv2", "create-load-balancer", "--name", name)
    assert cli_error(duplicate) == "DuplicateLoadBalancerName"
    deleted = aws(berth_up.server, credentials, tmp_path, "elbv2", "delete-load-balancer", "--load-balancer-arn", lb_arn)
    assert deleted.returncode == 0, deleted.stderr
    deleted = aws(berth_up.server, credentials, tmp_path, "elbv2", "delete-target-group", "--target-group-arn", group_arn)
    assert deleted.returncode == 0, deleted.stderr


def test_a_user_without_elasticloadbalancing_permissions_is_denied(berth_up: BerthUp, elbv2, unique):
    nobody_name, reader_name = unique("noelb"), unique("elbread")
    nobody = make_user(berth_up.server, nobody_name)
    reader = make_user(berth_up.server, reader_name, allow("elasticloadbalancing:Describe*"))
    try:
        as_nobody = boto3_client(berth_up.server.url, nobody, service="elbv2")
        assert error_of(as_nobody.describe_load_balancers) == ("AccessDenied", 403)
        assert error_of(as_nobody.create_load_balancer, Name=unique("denied")) == ("AccessDenied", 403)
        as_reader = boto3_client(berth_up.server.url, reader, service="elbv2")
        as_reader.describe_load_balancers()
        assert error_of(as_reader.create_target_group, Name=unique("denied"), Protocol="HTTP", Port=80) == (
            "AccessDenied",
            403,
        )
        assert error_of(elbv2.describe_load_balancers, Names=[unique("denied")]) == ("LoadBalancerNotFound", 400)
    finally:
        delete_user(berth_up.server, nobody_name)
        delete_user(berth_up.server, reader_name)


def garbage_inputs(model, shape_name: str, depth: int = 0) -> Iterator[dict]:
    """Inputs for an operation whose input shape is `shape_name`: none, then each member in
    turn set to values of the wrong kind or out of range (botocore's own checks are off)."""
    shape = model.shape_for(shape_name) if isinstance(shape_name, str) else shape_name
    yield {}
    for name, member in shape.members.items():
        if member.type_name == "string":
            values = ["", "x" * 3000, "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app//", "\u00e9\u0000", "-1"]
        elif member.type_name in ("integer", "long"):
            values = [-1, 0, 2**31, 2**63 - 1]
        elif member.type_name == "boolean":
            values = [True, False]
        elif member.type_name == "list":
            item = {} if member.member.type_name == "structure" else ""
            values = [[], [item] * 101, [item]]
        elif member.type_name == "structure":
            values = [{}, {m: "" for m in member.members if member.members[m].type_name == "string"}]
        else:
            # Timestamps, maps, blobs: botocore itself cannot send a wrong kind of these.
            values = []
        for value in values:
            yield {name: value}


def test_bad_input_to_every_action_gets_a_clear_error_and_never_a_server_fault(berth_up: BerthUp):
    """Every ELBv2 action of the model, with each of its parameters in turn empty, huge, of the
    wrong form or out of range: each answer is a success or a 4xx with an error code and
    message, never a 5xx."""
    # Straight to the server: the recording proxy checks JSON answers only, and these are XML.
    client = boto3_client(berth_up.server.url, berth_up.server.credentials, service="elbv2", parameter_validation=False)
    model = client.meta.service_model
    faults = []
    calls = 0
    for operation in model.operation_names:
        op = model.operation_model(operation)
        if op.input_shape is None:
            continue
        method = getattr(client, botocore_method(operation))
        for params in garbage_inputs(model, op.input_shape):
            calls += 1
            try:
                method(**params)
            except ClientError as error:
                status = error.response["ResponseMetadata"]["HTTPStatusCode"]
                code = error.response["Error"].get("Code")
                if status >= 500 or not code or not error.response["Error"].get("Message"):
                    faults.append((operation, params, status, code))
    assert calls > 300
    assert not faults, faults[:10]
    assert berth_up.server.healthy()


def botocore_method(operation: str) -> str:
    """boto3's method name of an operation (`CreateLoadBalancer` → `create_load_balancer`)."""
    return botocore.xform_name(operation)


def test_requests_through_a_listener_are_counted_and_can_drive_target_tracking(berth_up: BerthUp, elbv2, unique):
    """Requests the proxy routes to a target group become ELB's `RequestCount` and
    `RequestCountPerTarget` in CloudWatch, and a target tracking policy on
    `ALBRequestCountPerTarget` (with the group's ResourceLabel) alarms on that metric."""
    name = unique("count")
    lb = elbv2.create_load_balancer(Name=name)["LoadBalancers"][0]["LoadBalancerArn"]
    group = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    # Nothing listens on the target's port: every request is a 502, and still a request.
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": "127.0.0.1", "Port": free_port()}])
    port = free_port()
    elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
    lb_dim = lb.split(":loadbalancer/")[1]
    tg_dim = "targetgroup/" + group.split(":targetgroup/")[1]
    cloudwatch = boto3_client(berth_up.server.url, berth_up.server.credentials, service="cloudwatch")
    scaling = boto3_client(berth_up.endpoint, berth_up.server.credentials, service="application-autoscaling")
    berth_up.ecs.register_task_definition(family=name, containerDefinitions=[
        {"name": "app", "image": "busybox", "memory": 16, "essential": True, "command": ["sleep", "3600"]}])
    berth_up.ecs.create_service(cluster="default", serviceName=name, taskDefinition=name, desiredCount=0)
    resource = f"service/default/{name}"
    try:
        def status() -> int:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as answer:
                    return answer.status
            except urllib.error.HTTPError as error:
                return error.code
            except OSError:
                return 0

        wait_until(lambda: status() == 502, 10, "the listener to serve")
        statuses = [status() for _ in range(24)]
        assert statuses == [502] * 24, statuses

        def counted(metric: str, dimensions: list[dict]) -> float:
            now = datetime.datetime.now(datetime.timezone.utc)
            points = cloudwatch.get_metric_statistics(
                Namespace="AWS/ApplicationELB", MetricName=metric, Dimensions=dimensions,
                StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1),
                Period=300, Statistics=["Sum"],
            )["Datapoints"]
            return sum(p["Sum"] for p in points)

        both = [{"Name": "LoadBalancer", "Value": lb_dim}, {"Name": "TargetGroup", "Value": tg_dim}]
        wait_until(lambda: counted("RequestCount", both) >= 25, 30, "the requests to be counted")
        # One target (not healthy, so all of them count): per target is the whole count.
        assert counted("RequestCountPerTarget", both) == counted("RequestCount", both)
        assert counted("RequestCount", [{"Name": "LoadBalancer", "Value": lb_dim}]) >= 25

        scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=resource,
                                         ScalableDimension="ecs:service:DesiredCount", MinCapacity=0, MaxCapacity=2)
        put = scaling.put_scaling_policy(
            PolicyName="requests", ServiceNamespace="ecs", ResourceId=resource,
            ScalableDimension="ecs:service:DesiredCount", PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={"TargetValue": 1000.0, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": f"{lb_dim}/{tg_dim}"}},
        )
        alarms = cloudwatch.describe_alarms(AlarmNames=[a["AlarmName"] for a in put["Alarms"]])["MetricAlarms"]
        assert {(a["Namespace"], a["MetricName"], a["Statistic"]) for a in alarms} == {
            ("AWS/ApplicationELB", "RequestCountPerTarget", "Sum")}
        assert sorted((d["Name"], d["Value"]) for d in alarms[0]["Dimensions"]) == [
            ("LoadBalancer", lb_dim), ("TargetGroup", tg_dim)]
        with pytest.raises(ClientError) as bad:
            scaling.put_scaling_policy(
                PolicyName="unlabelled", ServiceNamespace="ecs", ResourceId=resource,
                ScalableDimension="ecs:service:DesiredCount", PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={"TargetValue": 10.0, "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ALBRequestCountPerTarget"}},
            )
        assert bad.value.response["Error"]["Code"] == "ValidationException"
    finally:
        scaling.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=resource,
                                           ScalableDimension="ecs:service:DesiredCount")
        berth_up.ecs.delete_service(cluster="default", service=name, force=True)
        elbv2.delete_load_balancer(LoadBalancerArn=lb)
        wait_until(lambda: not elbv2.describe_target_groups(TargetGroupArns=[group])["TargetGroups"][0]["LoadBalancerArns"],
                   10, "the group to be free")
        elbv2.delete_target_group(TargetGroupArn=group)

"""A corpus of unauthorised attempts, every one refused, nothing written: every ECS operation
and every IAM action by a user without permissions (and unsigned, and with a wrong secret),
every agent-gateway route and agent report with another agent's keys, and re-registration of
another agent's instances. boto3 for every API call; botocore-signed raw HTTP for the gateway."""

from __future__ import annotations

import datetime
import json
from typing import Any

import botocore
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import Credentials, boto3_client, desired_stream, heartbeat
from iam_helpers import allow, ecs, iam, make_user

IAM_ACTIONS = [
    "CreateUser", "GetUser", "ListUsers", "DeleteUser", "CreateAccessKey", "ListAccessKeys", "UpdateAccessKey",
    "DeleteAccessKey", "PutUserPolicy", "GetUserPolicy", "DeleteUserPolicy", "ListUserPolicies", "CreateRole",
    "GetRole", "ListRoles", "DeleteRole", "PutRolePolicy", "GetRolePolicy", "DeleteRolePolicy", "ListRolePolicies",
]
AGENT = allow(["ecs:RegisterContainerInstance", "ecs:Poll", "ecs:SubmitTaskStateChange", "ecs:SubmitContainerStateChange"])
RESOURCES = [
    {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
    {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096},
]


def placeholder(shape: botocore.model.Shape, depth: int = 0) -> Any:
    """A value of `shape` that botocore's own validation accepts: required members only."""
    kind = shape.type_name
    if kind == "structure":
        if depth >= 6:
            return {}
        if getattr(shape, "is_tagged_union", False):
            first = next(iter(shape.members))
            return {first: placeholder(shape.members[first], depth + 1)}
        return {name: placeholder(shape.members[name], depth + 1) for name in shape.required_members}
    if kind == "list":
        return [placeholder(shape.member, depth + 1)] if depth < 6 else []
    if kind == "map":
        return {}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        low = shape.metadata.get("min", 1)
        return ("policy" if "policy" in shape.name.lower() else "x" * max(low, 2))[: max(low, 2) + 10]
    if kind in ("integer", "long"):
        return max(shape.metadata.get("min", 1), 1)
    if kind in ("double", "float"):
        return 1.0
    if kind == "boolean":
        return False
    if kind == "blob":
        return b"x"
    if kind == "timestamp":
        return datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    raise AssertionError(f"no placeholder for {shape.name} ({kind})")


def params_of(service: str, operation: str) -> dict[str, Any]:
    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    return placeholder(model.input_shape) if model.input_shape is not None else {}


def snake(name: str) -> str:
    return botocore.xform_name(name)


class Tally:
    def __init__(self) -> None:
        self.attempts: list[str] = []
        self.accepted: list[str] = []

    def refused(self, what: str, call, expected: set[str], **kwargs: Any) -> None:
        self.attempts.append(what)
        try:
            result = call(**kwargs)
        except ClientError as e:
            code = e.response["Error"]["Code"]
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            assert code in expected and status < 500, f"{what}: {code} (HTTP {status}), expected {expected}"
            return
        self.accepted.append(f"{what}: {result}")

    def raw_refused(self, what: str, response, expected: str) -> None:
        self.attempts.append(what)
        if response.status == 200:
            self.accepted.append(what)
            return
        assert json.loads(response.body)["__type"] == expected and response.status < 500, f"{what}: {response}"


def snapshot(server) -> dict[str, Any]:
    root = server.client()
    return {
        "clusters": sorted(root.list_clusters()["clusterArns"]),
        "families": sorted(root.list_task_definition_families()["families"]),
        "users": sorted(u["UserName"] for u in iam(server).list_users(MaxItems=1000)["Users"]),
        "roles": sorted(r["RoleName"] for r in iam(server).list_roles(MaxItems=1000)["Roles"]),
    }


def test_two_hundred_unauthorised_attempts_and_none_accepted(berth, unique) -> None:
    server = berth.server
    tally = Tally()
    cluster = unique("corpus")
    server.client().create_cluster(clusterName=cluster)
    nobody = make_user(server, unique("nobody"))
    agent_a = make_user(server, unique("agent-a"), AGENT)
    agent_b = make_user(server, unique("agent-b"), AGENT)
    wrong = Credentials(nobody.access_key, "0" * 40)
    a_ecs = ecs(server, agent_a)
    instances = [
        a_ecs.register_container_instance(cluster=cluster, totalResources=RESOURCES)["containerInstance"]["containerInstanceArn"]
        for _ in range(10)
    ]
    root = server.client()
    root.register_task_definition(
        family=unique("corpus-td"), containerDefinitions=[{"name": "app", "image": "busybox", "memory": 64, "essential": True}]
    )
    family = root.list_task_definition_families(familyPrefix="corpus-td")["families"][0]
    tasks = root.run_task(cluster=cluster, taskDefinition=family, count=10)["tasks"]
    assert len(tasks) == 10, "tasks placed on agent A's instances"
    before = snapshot(server)

    # Every ECS operation: without permissions, unsigned, and with a wrong secret.
    operations = botocore.session.get_session().get_service_model("ecs").operation_names
    unsigned = boto3_client(server.url, None, signature_version=botocore.UNSIGNED)
    for operation in operations:
        params = params_of("ecs", operation)
        method = snake(operation)
        tally.refused(f"ecs:{operation} without permission", getattr(ecs(server, nobody), method), {"AccessDeniedException"}, **params)
        tally.refused(f"ecs:{operation} unsigned", getattr(unsigned, method), {"MissingAuthenticationTokenException"}, **params)
        tally.refused(f"ecs:{operation} wrong secret", getattr(ecs(server, wrong), method), {"InvalidSignatureException"}, **params)

    # Every IAM action without permissions.
    nobody_iam = iam(server, nobody)
    for action in IAM_ACTIONS:
        tally.refused(f"iam:{action}", getattr(nobody_iam, snake(action)), {"AccessDenied"}, **params_of("iam", action))

    # Agent B against agent A's instances and tasks: its policy allows the actions, the
    # binding does not.
    b_ecs = ecs(server, agent_b)
    for arn in instances:
        instance = arn.rsplit("/", 1)[1]
        tally.raw_refused(f"stream of {instance} as B", desired_stream(server, cluster, instance, credentials=agent_b), "AccessDeniedException")
        tally.raw_refused(f"heartbeat of {instance} as B", heartbeat(server, cluster, instance, credentials=agent_b), "AccessDeniedException")
        tally.refused(
            f"re-registering {instance} as B",
            b_ecs.register_container_instance,
            {"AccessDeniedException"},
            cluster=cluster,
            containerInstanceArn=arn,
            totalResources=RESOURCES,
        )
    for task in tasks:
        tally.refused(
            f"forged STOPPED report of {task['taskArn']}",
            b_ecs.submit_task_state_change,
            {"AccessDeniedException"},
            cluster=cluster,
            task=task["taskArn"],
            status="STOPPED",
            reason="forged",
        )
        tally.refused(
            f"forged container report of {task['taskArn']}",
            b_ecs.submit_container_state_change,
            {"AccessDeniedException"},
            cluster=cluster,
            task=task["taskArn"],
            containerName="app",
            status="STOPPED",
            exitCode=0,
        )

    print(f"\nauthorisation corpus: {len(tally.attempts)} unauthorised attempts, {len(tally.accepted)} accepted")
    assert len(tally.attempts) >= 200, len(tally.attempts)
    assert tally.accepted == []
    assert snapshot(server) == before, "a refused call wrote something"
    described = root.describe_tasks(cluster=cluster, tasks=[t["taskArn"] for t in tasks])["tasks"]
    assert {t["desiredStatus"] for t in described} == {"RUNNING"}, "no forged report stopped a task"

"""A corpus of unauthorised attempts, every one refused, nothing written: every ECS operation
and every IAM action by a user without permissions, by a role session without permissions,
unsigned, with a wrong secret and with an unknown key; AssumeRole by whom no trust policy
allows; every agent-gateway route with another agent's keys, without permission, unsigned and
mis-signed; agent reports of tasks on another agent's instance, and re-registration of another
agent's instances. boto3 for every API call; botocore-signed raw HTTP for the gateway."""

from __future__ import annotations

import datetime
import json
from typing import Any

import botocore
import botocore.session
from botocore.exceptions import ClientError

from harness import Credentials, boto3_client, desired_stream, heartbeat
from iam_helpers import ACCOUNT_ROOT, allow, assume, ecs, iam, make_role, make_user, role_arn, session, user_arn

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
    """Everything a refused call could have written, as the root user reads it."""
    root, root_iam = server.client(), iam(server)
    clusters = sorted(root.list_clusters()["clusterArns"])
    users = sorted(u["UserName"] for u in root_iam.list_users(MaxItems=1000)["Users"])
    roles = sorted(r["RoleName"] for r in root_iam.list_roles(MaxItems=1000)["Roles"])
    return {
        "clusters": clusters,
        "cluster details": root.describe_clusters(clusters=clusters, include=["TAGS", "SETTINGS"])["clusters"] if clusters else [],
        "families": sorted(root.list_task_definition_families()["families"]),
        "task definitions": sorted(root.list_task_definitions(maxResults=100)["taskDefinitionArns"]),
        "services": {c: sorted(root.list_services(cluster=c)["serviceArns"]) for c in clusters},
        "instances": {c: sorted(root.list_container_instances(cluster=c)["containerInstanceArns"]) for c in clusters},
        "tasks": {c: sorted(root.list_tasks(cluster=c)["taskArns"]) for c in clusters},
        "attributes": {c: root.list_attributes(cluster=c, targetType="container-instance")["attributes"] for c in clusters},
        "account settings": root.list_account_settings()["settings"],
        "users": users,
        "access keys": {u: sorted(k["AccessKeyId"] + k["Status"] for k in root_iam.list_access_keys(UserName=u)["AccessKeyMetadata"]) for u in users},
        "user policies": {u: root_iam.list_user_policies(UserName=u)["PolicyNames"] for u in users},
        "roles": roles,
        "role policies": {r: root_iam.list_role_policies(RoleName=r)["PolicyNames"] for r in roles},
    }


def statuses(root, cluster: str, tasks: list[dict]) -> dict[str, tuple]:
    described = root.describe_tasks(cluster=cluster, tasks=[t["taskArn"] for t in tasks])["tasks"]
    assert len(described) == len(tasks)
    return {t["taskArn"]: (t["lastStatus"], t["desiredStatus"], [c["lastStatus"] for c in t["containers"]]) for t in described}


def test_two_hundred_unauthorised_attempts_and_none_accepted(berth, unique) -> None:
    server = berth.server
    tally = Tally()
    cluster = unique("corpus")
    server.client().create_cluster(clusterName=cluster)
    nobody_name = unique("nobody")
    nobody = make_user(server, nobody_name)
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
    # A role no policy of which allows anything, assumed by the user it trusts.
    powerless_role = make_role(server, unique("powerless"), user_arn(nobody_name))
    as_role = session(server, assume(server, nobody, powerless_role, "corpus")["Credentials"])
    # Roles the user without permissions may not assume: one trusting another user, one
    # trusting the account (the caller's own policies would have to allow it).
    others_role = make_role(server, unique("others"), user_arn(unique("agent-a")), allow("*"))  # agent A's
    account_role = make_role(server, unique("account"), ACCOUNT_ROOT, allow("*"))
    before = snapshot(server)
    task_states = statuses(root, cluster, tasks)

    unknown = Credentials("AKIA" + "Q" * 16, "0" * 40)
    # Every ECS operation: by a user and a role session without permissions, unsigned, with a
    # wrong secret, with an unknown key.
    operations = botocore.session.get_session().get_service_model("ecs").operation_names
    ecs_callers = {
        "without permission": (ecs(server, nobody), {"AccessDeniedException"}),
        "as a role session without permission": (as_role.client("ecs"), {"AccessDeniedException"}),
        "unsigned": (boto3_client(server.url, None, signature_version=botocore.UNSIGNED), {"MissingAuthenticationTokenException"}),
        "wrong secret": (ecs(server, wrong), {"InvalidSignatureException"}),
        "unknown key": (ecs(server, unknown), {"UnrecognizedClientException"}),
    }
    for operation in operations:
        params = params_of("ecs", operation)
        for how, (client, expected) in ecs_callers.items():
            tally.refused(f"ecs:{operation} {how}", getattr(client, snake(operation)), expected, **params)

    # Lists naming nothing are judged too, not let through for want of a resource.
    empty_lists = (("describe_tasks", "tasks"), ("describe_container_instances", "containerInstances"), ("describe_services", "services"))
    for method, field in empty_lists:
        call = getattr(ecs(server, nobody), method)
        tally.refused(f"{method} of an empty list", call, {"AccessDeniedException"}, cluster=cluster, **{field: []})

    # Every IAM action, the same ways.
    iam_callers = {
        "without permission": (iam(server, nobody), {"AccessDenied"}),
        "as a role session without permission": (as_role.client("iam"), {"AccessDenied"}),
        "unsigned": (boto3_client(server.url, None, service="iam", signature_version=botocore.UNSIGNED), {"MissingAuthenticationToken"}),
        "wrong secret": (iam(server, wrong), {"SignatureDoesNotMatch"}),
        "unknown key": (iam(server, unknown), {"InvalidClientTokenId"}),
    }
    for action in IAM_ACTIONS:
        for how, (client, expected) in iam_callers.items():
            tally.refused(f"iam:{action} {how}", getattr(client, snake(action)), expected, **params_of("iam", action))

    # AssumeRole by whom no trust policy (or no policy of their own) allows. The user without
    # permissions is trusted by the powerless role, so it tries a role that does not exist.
    missing_role = role_arn(unique("missing"))
    sts_attempts = {
        "without permission": (boto3_client(server.url, nobody, service="sts"), [others_role, account_role, missing_role]),
        "as agent B": (boto3_client(server.url, agent_b, service="sts"), [others_role, account_role, powerless_role]),
        "as a role session": (as_role.client("sts"), [others_role, account_role, powerless_role]),
    }
    for how, (client, roles) in sts_attempts.items():
        for role in roles:
            tally.refused(f"sts:AssumeRole of {role} {how}", client.assume_role, {"AccessDenied"}, RoleArn=role, RoleSessionName="corpus")
    unsigned_sts = boto3_client(server.url, None, service="sts", signature_version=botocore.UNSIGNED)
    tally.refused("sts:AssumeRole unsigned", unsigned_sts.assume_role, {"MissingAuthenticationToken"}, RoleArn=account_role, RoleSessionName="corpus")
    forged = as_role.with_token("x" + as_role.token[1:])
    tally.refused("sts:GetCallerIdentity with a forged session token", forged.client("sts").get_caller_identity, {"InvalidClientTokenId"})

    # Agent A's instances: agent B (its policy allows the actions, the binding does not), a
    # user without permission, unsigned and mis-signed requests.
    b_ecs = ecs(server, agent_b)
    gateway_callers = {
        "as agent B": (agent_b, "AccessDeniedException"),
        "without permission": (nobody, "AccessDeniedException"),
        "unsigned": (None, "MissingAuthenticationTokenException"),
        "with A's key and a wrong secret": (agent_a.with_secret("0" * 40), "InvalidSignatureException"),
    }
    for arn in instances:
        instance = arn.rsplit("/", 1)[1]
        for how, (credentials, expected) in gateway_callers.items():
            tally.raw_refused(f"stream of {instance} {how}", desired_stream(server, cluster, instance, credentials=credentials), expected)
            tally.raw_refused(f"heartbeat of {instance} {how}", heartbeat(server, cluster, instance, credentials=credentials), expected)
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
    assert statuses(root, cluster, tasks) == task_states, "no forged report changed a task"

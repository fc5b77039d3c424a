"""IAM, STS and the authorisation of every call, with the AWS CLI and boto3: users, access
keys and inline policies; roles; a read-only user on one cluster; a Deny on a resource tag
beating an Allow; request tags and tag keys; the principal's condition keys; roles assumed and
refused; agents bound to their instances. The last section holds the ways around a Deny that
an earlier build let through: other spellings of an ARN, names in other cases, a trust policy
naming the caller, role sessions' and pathed users' ARNs, external ids, session tags, and a
user made again under an old name."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
from datetime import datetime

import pytest

from harness import ACCOUNT, Credentials, aws_cli, desired_stream, heartbeat
from iam_helpers import (
    ACCOUNT_ROOT,
    ECS_ARN,
    allow,
    assume,
    aws,
    cli_error,
    cluster_arn,
    delete_user,
    deny,
    document,
    ecs,
    ecs_arn,
    error_of,
    iam,
    make_role,
    make_user,
    role_arn,
    session,
    sts,
    unvalidated,
    user_arn,
)


@pytest.fixture(scope="module")
def server(berth):
    return berth.server


def test_iam_users_keys_and_policies_with_the_cli(server, unique) -> None:
    name = unique("cli-user")
    env = server.credentials.env()

    def aws(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [*aws_cli(), "iam", *args, "--endpoint-url", server.url, "--output", "json"]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert not check or done.returncode == 0, done.stderr
        return done

    user = json.loads(aws("create-user", "--user-name", name, "--tags", "Key=team,Value=ops").stdout)["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    assert user["UserId"].startswith("AIDA")
    assert json.loads(aws("get-user", "--user-name", name).stdout)["User"]["Tags"] == [{"Key": "team", "Value": "ops"}]
    key = json.loads(aws("create-access-key", "--user-name", name).stdout)["AccessKey"]
    assert len(key["SecretAccessKey"]) == 40 and key["Status"] == "Active"
    listed = json.loads(aws("list-access-keys", "--user-name", name).stdout)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    assert "SecretAccessKey" not in listed[0], "a secret is shown once, by CreateAccessKey"
    policy = document(allow("ecs:ListClusters"))
    aws("put-user-policy", "--user-name", name, "--policy-name", "list", "--policy-document", policy)
    got = json.loads(aws("get-user-policy", "--user-name", name, "--policy-name", "list").stdout)
    assert got["PolicyDocument"] == json.loads(policy)
    refused = aws("delete-user", "--user-name", name, check=False)
    assert refused.returncode != 0 and "DeleteConflict" in refused.stderr
    aws("delete-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"])
    aws("delete-user-policy", "--user-name", name, "--policy-name", "list")
    aws("delete-user", "--user-name", name)
    gone = aws("get-user", "--user-name", name, check=False)
    assert gone.returncode != 0 and "NoSuchEntity" in gone.stderr


def test_iam_errors_with_boto3(server, unique) -> None:
    root = iam(server)
    name = unique("errors")
    root.create_user(UserName=name)
    assert error_of(root.create_user, UserName=name.upper()) == ("EntityAlreadyExists", 409)
    assert error_of(root.get_user, UserName=unique("nobody")) == ("NoSuchEntity", 404)
    assert error_of(root.create_user, UserName="bad name!") == ("ValidationError", 400)
    bad = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]}'
    assert error_of(root.put_user_policy, UserName=name, PolicyName="p", PolicyDocument=bad)[0] == "MalformedPolicyDocument"
    boundary = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    assert error_of(root.create_user, UserName=unique("bounded"), PermissionsBoundary=boundary)[0] == "ValidationError"
    no_principal = document({"Effect": "Allow", "Action": "sts:AssumeRole"})
    try:
        root.create_role(RoleName=unique("no-principal"), AssumeRolePolicyDocument=no_principal)
        raise AssertionError("a trust policy without a principal was accepted")
    except root.exceptions.MalformedPolicyDocumentException as refused:
        assert "Principal" in refused.response["Error"]["Message"], refused.response
    first = root.create_access_key(UserName=name)["AccessKey"]
    root.create_access_key(UserName=name)
    assert error_of(root.create_access_key, UserName=name) == ("LimitExceeded", 409)
    # An inactive key signs nothing; made active again, it does.
    keys = Credentials(first["AccessKeyId"], first["SecretAccessKey"])
    root.update_access_key(UserName=name, AccessKeyId=first["AccessKeyId"], Status="Inactive")
    assert error_of(sts(server, keys).get_caller_identity)[0] == "InvalidClientTokenId"
    root.update_access_key(UserName=name, AccessKeyId=first["AccessKeyId"], Status="Active")
    assert sts(server, keys).get_caller_identity()["Arn"].endswith(f":user/{name}")
    root.create_user(UserName=unique("second"))
    page = root.list_users(MaxItems=1)
    assert page["IsTruncated"] and len(page["Users"]) == 1
    rest = root.list_users(Marker=page["Marker"], MaxItems=1000)
    names = [u["UserName"] for u in page["Users"] + rest["Users"]]
    assert name in names and len(names) == len(set(names))


def test_a_user_allowed_only_to_read_one_cluster_is_denied_everything_else(server, unique) -> None:
    dev, prod = unique("dev"), unique("prod")
    root = server.client()
    for cluster in (dev, prod):
        root.create_cluster(clusterName=cluster)
    reads = [cluster_arn(dev), f"{ECS_ARN}:task/{dev}/*", f"{ECS_ARN}:container-instance/{dev}/*", f"{ECS_ARN}:service/{dev}/*"]
    reader = ecs(server, make_user(server, unique("reader"), allow(["ecs:Describe*", "ecs:List*"], reads)))
    assert reader.describe_clusters(clusters=[dev])["clusters"][0]["clusterName"] == dev
    reader.list_services(cluster=dev)
    reader.list_tasks(cluster=dev)
    reader.list_container_instances(cluster=dev)
    denied = [
        (reader.describe_clusters, {"clusters": [prod]}),
        (reader.list_services, {"cluster": prod}),
        (reader.list_tasks, {"cluster": prod}),
        (reader.list_container_instances, {"cluster": prod}),
        (reader.create_cluster, {"clusterName": unique("new")}),
        (reader.delete_cluster, {"cluster": dev}),
        (reader.run_task, {"cluster": dev, "taskDefinition": "anything"}),
        (reader.register_task_definition, {"family": "f", "containerDefinitions": [{"name": "c", "image": "busybox", "memory": 64}]}),
        (reader.tag_resource, {"resourceArn": cluster_arn(dev), "tags": [{"key": "k", "value": "v"}]}),
        (reader.list_clusters, {}),
    ]
    for call, kwargs in denied:
        assert error_of(call, **kwargs) == ("AccessDeniedException", 400), call
    assert error_of(iam(server, credentials_of(reader)).list_users) == ("AccessDenied", 403)
    assert [c["status"] for c in root.describe_clusters(clusters=[dev, prod])["clusters"]] == ["ACTIVE", "ACTIVE"]


def credentials_of(client) -> Credentials:
    frozen = client._request_signer._credentials.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key)


def test_a_deny_on_a_resource_tag_wins_over_an_allow(server, unique) -> None:
    tagged_prod, tagged_dev = unique("tagged-prod"), unique("tagged-dev")
    root = server.client()
    root.create_cluster(clusterName=tagged_prod, tags=[{"key": "env", "value": "prod"}])
    root.create_cluster(clusterName=tagged_dev, tags=[{"key": "env", "value": "dev"}])
    guarded = ecs(
        server,
        make_user(
            server,
            unique("guarded"),
            allow("ecs:*"),
            deny("ecs:*", Condition={"StringEquals": {"aws:ResourceTag/env": "prod"}}),
        ),
    )
    assert guarded.describe_clusters(clusters=[tagged_dev])["clusters"][0]["clusterName"] == tagged_dev
    assert error_of(guarded.describe_clusters, clusters=[tagged_prod]) == ("AccessDeniedException", 400)
    assert error_of(guarded.delete_cluster, cluster=tagged_prod) == ("AccessDeniedException", 400)
    guarded.delete_cluster(cluster=tagged_dev)
    assert root.describe_clusters(clusters=[tagged_prod])["clusters"][0]["status"] == "ACTIVE"


def test_request_tags_and_policy_variables_condition_what_a_user_may_create(server, unique) -> None:
    name = unique("tagger")
    tagger = ecs(
        server,
        make_user(
            server,
            name,
            allow("ecs:CreateCluster", Condition={"StringEquals": {"aws:RequestTag/owner": "${aws:username}"}}),
        ),
    )
    assert error_of(tagger.create_cluster, clusterName=unique("untagged")) == ("AccessDeniedException", 400)
    assert error_of(tagger.create_cluster, clusterName=unique("other"), tags=[{"key": "owner", "value": "someone"}])[0] == "AccessDeniedException"
    made = tagger.create_cluster(clusterName=unique("own"), tags=[{"key": "owner", "value": name}])
    assert made["cluster"]["status"] == "ACTIVE"


def test_a_role_is_assumed_by_whom_its_trust_policy_names_only(server, unique) -> None:
    root = iam(server)
    trusted, stranger = unique("trusted"), unique("stranger")
    trusted_keys = make_user(server, trusted)
    stranger_keys = make_user(server, stranger, allow("sts:AssumeRole"))
    role_name = unique("deployer")
    trust = document({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{trusted}"}, "Action": "sts:AssumeRole"})
    role = root.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)["Role"]
    assert json.loads(urllib.parse.unquote(json.dumps(root.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]))) == json.loads(trust)
    root.put_role_policy(RoleName=role_name, PolicyName="ecs", PolicyDocument=document(allow("ecs:ListClusters")))
    assumed = sts(server, trusted_keys).assume_role(RoleArn=role["Arn"], RoleSessionName="ci", DurationSeconds=900)
    session = assumed["Credentials"]
    assert session["AccessKeyId"].startswith("ASIA")
    import boto3

    as_role = boto3.session.Session(
        region_name="us-east-1",
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
    )
    identity = as_role.client("sts", endpoint_url=server.url).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/ci"
    role_ecs = as_role.client("ecs", endpoint_url=server.url)
    assert "clusterArns" in role_ecs.list_clusters()
    assert error_of(role_ecs.create_cluster, clusterName=unique("x"))[0] == "AccessDeniedException"
    assert error_of(sts(server, stranger_keys).assume_role, RoleArn=role["Arn"], RoleSessionName="xx") == ("AccessDenied", 403)
    assert error_of(sts(server, trusted_keys).assume_role, RoleArn=role["Arn"], RoleSessionName="ci", DurationSeconds=7200)[0] == "ValidationError"
    mfa = error_of(sts(server, trusted_keys).assume_role, RoleArn=role["Arn"], RoleSessionName="ci", SerialNumber="arn:aws:iam::000000000000:mfa/x", TokenCode="123456")
    assert mfa[0] == "ValidationError", "an MFA code is refused, never ignored"
    narrower = document(allow("ecs:DescribeClusters"))
    refused = error_of(sts(server, trusted_keys).assume_role, RoleArn=role["Arn"], RoleSessionName="ci", Policy=narrower)
    assert refused[0] == "ValidationError", "a session policy is refused, never ignored"
    forged = boto3.session.Session(
        region_name="us-east-1",
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"][:-2] + "xx",
    )
    assert error_of(forged.client("ecs", endpoint_url=server.url).list_clusters)[0] == "UnrecognizedClientException"


AGENT = allow(["ecs:RegisterContainerInstance", "ecs:Poll", "ecs:SubmitTaskStateChange", "ecs:SubmitContainerStateChange"])
RESOURCES = [
    {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
    {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024},
]


def test_an_instance_belongs_to_the_agent_that_registered_it(server, unique) -> None:
    cluster = unique("agents")
    server.client().create_cluster(clusterName=cluster)
    mine, theirs = make_user(server, unique("agent-a"), AGENT), make_user(server, unique("agent-b"), AGENT)
    registered = ecs(server, mine).register_container_instance(cluster=cluster, totalResources=RESOURCES)
    arn = registered["containerInstance"]["containerInstanceArn"]
    instance = arn.rsplit("/", 1)[1]
    assert error_of(
        ecs(server, theirs).register_container_instance, cluster=cluster, containerInstanceArn=arn, totalResources=RESOURCES
    ) == ("AccessDeniedException", 400)
    for call in (heartbeat, desired_stream):
        other = call(server, cluster, instance, credentials=theirs)
        assert other.status == 400 and json.loads(other.body)["__type"] == "AccessDeniedException", other
        own = call(server, cluster, instance, credentials=mine)
        assert own.status == 200, own
        assert call(server, cluster, instance).status == 200, "the root user may act for any instance"
    again = ecs(server, mine).register_container_instance(cluster=cluster, containerInstanceArn=arn, totalResources=RESOURCES)
    assert again["containerInstance"]["containerInstanceArn"] == arn


# ---------------------------------------------------------------------------------------------
# Users, access keys and inline policies with boto3
# ---------------------------------------------------------------------------------------------


def all_users(root, page_size: int) -> list[list[str]]:
    """ListUsers walked page by page with MaxItems and Marker: the user names of each page."""
    pages, marker = [], None
    while True:
        page = root.list_users(MaxItems=page_size, **({"Marker": marker} if marker else {}))
        pages.append([u["UserName"] for u in page["Users"]])
        if not page["IsTruncated"]:
            assert "Marker" not in page, page
            return pages
        marker = page["Marker"]


def test_a_user_its_keys_and_its_policies_from_creation_to_deletion_with_boto3(server, unique) -> None:
    root = iam(server)
    name = unique("lifecycle")
    made = root.create_user(UserName=name, Tags=[{"Key": "team", "Value": "ops"}])["User"]
    assert made["Arn"] == user_arn(name) and made["UserId"].startswith("AIDA")
    got = root.get_user(UserName=name)["User"]
    assert (got["UserId"], got["Tags"]) == (made["UserId"], [{"Key": "team", "Value": "ops"}])

    # ListUsers pages: every user once, no page longer than MaxItems.
    others = [unique(f"page{i}") for i in range(4)]
    for other in others:
        root.create_user(UserName=other)
    pages = all_users(root, page_size=2)
    walked = [user for page in pages for user in page]
    assert all(len(page) <= 2 for page in pages) and len(pages) >= 3, pages
    assert len(walked) == len(set(walked)), walked
    assert {name, *others} <= set(walked)
    assert sorted(walked) == sorted(u["UserName"] for u in root.list_users(MaxItems=1000)["Users"])

    # An access key: its secret shown by CreateAccessKey only.
    key = root.create_access_key(UserName=name)["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40 and key["Status"] == "Active"
    listed = root.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in listed] == [(key["AccessKeyId"], "Active")]
    assert all("SecretAccessKey" not in k for k in listed)
    keys = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    assert sts(server, keys).get_caller_identity()["Arn"] == user_arn(name)

    # Inactive, the key signs nothing: ECS names it an unrecognized client, STS an invalid token.
    root.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert root.list_access_keys(UserName=name)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    assert error_of(ecs(server, keys).list_clusters) == ("UnrecognizedClientException", 403)
    assert error_of(sts(server, keys).get_caller_identity) == ("InvalidClientTokenId", 403)

    # An inline policy: the document comes back as the same JSON, whatever its layout.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Read",
                "Effect": "Allow",
                "Action": ["ecs:List*", "ecs:Describe*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:username": name}},
            }
        ],
    }
    root.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=json.dumps(policy, indent=4))
    stored = root.get_user_policy(UserName=name, PolicyName="read")
    assert (stored["UserName"], stored["PolicyName"], stored["PolicyDocument"]) == (name, "read", policy)
    assert root.list_user_policies(UserName=name)["PolicyNames"] == ["read"]

    # A user goes only once its keys and policies have.
    assert error_of(root.delete_user, UserName=name) == ("DeleteConflict", 409)
    root.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    assert root.list_access_keys(UserName=name)["AccessKeyMetadata"] == []
    assert error_of(sts(server, keys).get_caller_identity) == ("InvalidClientTokenId", 403)
    assert error_of(root.delete_user, UserName=name) == ("DeleteConflict", 409), "its policy remains"
    root.delete_user_policy(UserName=name, PolicyName="read")
    assert root.list_user_policies(UserName=name)["PolicyNames"] == []
    root.delete_user(UserName=name)
    for call, kwargs in (
        (root.get_user, {}),
        (root.list_access_keys, {}),
        (root.list_user_policies, {}),
        (root.get_user_policy, {"PolicyName": "read"}),
        (root.delete_user, {}),
    ):
        assert error_of(call, UserName=name, **kwargs) == ("NoSuchEntity", 404), call
    assert name not in [u["UserName"] for u in root.list_users(MaxItems=1000)["Users"]]


MALFORMED = {
    "not JSON": "not json",
    "no Statement": '{"Version": "2012-10-17"}',
    "an Effect other than Allow or Deny": document({"Effect": "Maybe", "Action": "ecs:*", "Resource": "*"}),
    "no Resource": document({"Effect": "Allow", "Action": "ecs:*"}),
    "no Action": document({"Effect": "Allow", "Resource": "*"}),
    "an action without a service": document(allow("ListClusters")),
    "an unknown Version": json.dumps({"Version": "2099-01-01", "Statement": [allow("ecs:*")]}),
    "a Principal in an identity policy": document(allow("ecs:*", Principal="*")),
    "an unknown condition operator": document(allow("ecs:*", Condition={"NoSuchOperator": {"aws:username": "x"}})),
}


def test_iam_refuses_with_the_errors_iam_names(server, unique) -> None:
    root = iam(server)
    name, other = unique("refusals"), unique("neighbour")
    root.create_user(UserName=name)
    root.create_user(UserName=other)
    # Names are unique whatever their case.
    assert error_of(root.create_user, UserName=name.upper()) == ("EntityAlreadyExists", 409)
    assert error_of(root.create_user, UserName="has space") == ("ValidationError", 400)
    for what, bad in MALFORMED.items():
        assert error_of(root.put_user_policy, UserName=name, PolicyName="bad", PolicyDocument=bad) == (
            "MalformedPolicyDocument",
            400,
        ), what
    assert root.list_user_policies(UserName=name)["PolicyNames"] == [], "no malformed document was stored"
    # Nothing that is not there.
    missing = unique("missing")
    assert error_of(root.get_user, UserName=missing) == ("NoSuchEntity", 404)
    assert error_of(root.put_user_policy, UserName=missing, PolicyName="p", PolicyDocument=document(allow("ecs:*"))) == ("NoSuchEntity", 404)
    assert error_of(root.create_access_key, UserName=missing) == ("NoSuchEntity", 404)
    assert error_of(root.get_user_policy, UserName=name, PolicyName="none") == ("NoSuchEntity", 404)
    assert error_of(root.delete_user_policy, UserName=name, PolicyName="none") == ("NoSuchEntity", 404)
    assert error_of(root.delete_access_key, UserName=name, AccessKeyId="AKIAAAAAAAAAAAAAAAAA") == ("NoSuchEntity", 404)
    # Two keys a user; a key is found only under its own user.
    first = root.create_access_key(UserName=name)["AccessKey"]
    root.create_access_key(UserName=name)
    assert error_of(root.create_access_key, UserName=name) == ("LimitExceeded", 409)
    assert len(root.list_access_keys(UserName=name)["AccessKeyMetadata"]) == 2
    assert error_of(root.update_access_key, UserName=other, AccessKeyId=first["AccessKeyId"], Status="Inactive") == ("NoSuchEntity", 404)
    assert error_of(root.delete_access_key, UserName=other, AccessKeyId=first["AccessKeyId"]) == ("NoSuchEntity", 404)
    assert {k["Status"] for k in root.list_access_keys(UserName=name)["AccessKeyMetadata"]} == {"Active"}
    # Keys alone hold a user back too.
    assert error_of(root.delete_user, UserName=name) == ("DeleteConflict", 409)
    delete_user(server, name)
    assert error_of(root.get_user, UserName=name) == ("NoSuchEntity", 404)


def test_a_role_and_its_policies_from_creation_to_deletion_with_boto3(server, unique) -> None:
    root = iam(server)
    name = unique("lifecycle-role")
    trusted = user_arn(unique("someone"))
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}]}
    made = root.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(trust),
        Description="deploys",
        MaxSessionDuration=7200,
        Tags=[{"Key": "team", "Value": "ops"}],
    )["Role"]
    assert made["Arn"] == role_arn(name) and made["RoleId"].startswith("AROA")
    got = root.get_role(RoleName=name)["Role"]
    assert got["AssumeRolePolicyDocument"] == trust
    assert (got["Description"], got["MaxSessionDuration"], got["Tags"]) == ("deploys", 7200, [{"Key": "team", "Value": "ops"}])
    assert error_of(root.create_role, RoleName=name.upper(), AssumeRolePolicyDocument=json.dumps(trust)) == ("EntityAlreadyExists", 409)
    assert error_of(root.create_role, RoleName=unique("bad-trust"), AssumeRolePolicyDocument="not json") == ("MalformedPolicyDocument", 400)
    with_resource = document({"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole", "Resource": "*"})
    assert error_of(root.create_role, RoleName=unique("bad-trust"), AssumeRolePolicyDocument=with_resource) == ("MalformedPolicyDocument", 400)

    second = unique("second-role")
    root.create_role(RoleName=second, AssumeRolePolicyDocument=json.dumps(trust))
    pages, marker = [], None
    while True:
        page = root.list_roles(MaxItems=1, **({"Marker": marker} if marker else {}))
        pages.append([r["RoleName"] for r in page["Roles"]])
        if not page["IsTruncated"]:
            break
        marker = page["Marker"]
    listed = [r for p in pages for r in p]
    assert all(len(p) <= 1 for p in pages) and {name, second} <= set(listed) and len(listed) == len(set(listed))

    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}]}
    root.put_role_policy(RoleName=name, PolicyName="list", PolicyDocument=json.dumps(policy))
    assert root.get_role_policy(RoleName=name, PolicyName="list")["PolicyDocument"] == policy
    assert root.list_role_policies(RoleName=name)["PolicyNames"] == ["list"]
    assert error_of(root.put_role_policy, RoleName=name, PolicyName="bad", PolicyDocument=MALFORMED["no Resource"]) == ("MalformedPolicyDocument", 400)
    assert error_of(root.get_role_policy, RoleName=name, PolicyName="none") == ("NoSuchEntity", 404)
    assert error_of(root.delete_role, RoleName=name) == ("DeleteConflict", 409)
    root.delete_role_policy(RoleName=name, PolicyName="list")
    assert root.list_role_policies(RoleName=name)["PolicyNames"] == []
    root.delete_role(RoleName=name)
    root.delete_role(RoleName=second)
    for call, kwargs in (
        (root.get_role, {}),
        (root.delete_role, {}),
        (root.list_role_policies, {}),
        (root.get_role_policy, {"PolicyName": "list"}),
        (root.delete_role_policy, {"PolicyName": "list"}),
    ):
        assert error_of(call, RoleName=name, **kwargs) == ("NoSuchEntity", 404), call


# ---------------------------------------------------------------------------------------------
# The AWS CLI as root and as a user
# ---------------------------------------------------------------------------------------------


def test_iam_and_sts_with_the_cli_as_root_and_as_a_user(server, unique, tmp_path) -> None:
    root = server.credentials

    def ok(*args: str) -> dict:
        done = aws(server, root, tmp_path, *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    names = [unique(f"cli-page{i}") for i in range(3)]
    for name in names:
        ok("iam", "create-user", "--user-name", name)
    # The CLI pages with --max-items and --starting-token (IAM's MaxItems and Marker).
    seen, token = [], None
    while True:
        page = ok("iam", "list-users", "--max-items", "2", *(["--starting-token", token] if token else []))
        assert len(page["Users"]) <= 2
        seen += [u["UserName"] for u in page["Users"]]
        token = page.get("NextToken")
        if not token:
            break
    assert set(names) <= set(seen) and len(seen) == len(set(seen))

    name = names[0]
    first = ok("iam", "create-access-key", "--user-name", name)["AccessKey"]
    second = ok("iam", "create-access-key", "--user-name", name)["AccessKey"]
    assert cli_error(aws(server, root, tmp_path, "iam", "create-access-key", "--user-name", name)) == "LimitExceeded"
    listed = ok("iam", "list-access-keys", "--user-name", name)["AccessKeyMetadata"]
    assert sorted(k["AccessKeyId"] for k in listed) == sorted([first["AccessKeyId"], second["AccessKeyId"]])
    assert all("SecretAccessKey" not in k for k in listed)
    ok("iam", "update-access-key", "--user-name", name, "--access-key-id", second["AccessKeyId"], "--status", "Inactive")
    inactive = Credentials(second["AccessKeyId"], second["SecretAccessKey"])
    assert cli_error(aws(server, inactive, tmp_path, "ecs", "list-clusters")) == "UnrecognizedClientException"
    assert cli_error(aws(server, inactive, tmp_path, "sts", "get-caller-identity")) == "InvalidClientTokenId"

    user = Credentials(first["AccessKeyId"], first["SecretAccessKey"])
    identity = json.loads(aws(server, user, tmp_path, "sts", "get-caller-identity").stdout)
    assert identity["Arn"] == user_arn(name) and identity["Account"] == ACCOUNT
    assert cli_error(aws(server, user, tmp_path, "ecs", "list-clusters")) == "AccessDeniedException"
    ok("iam", "put-user-policy", "--user-name", name, "--policy-name", "list", "--policy-document", document(allow("ecs:ListClusters")))
    assert "clusterArns" in json.loads(aws(server, user, tmp_path, "ecs", "list-clusters").stdout)
    assert cli_error(aws(server, user, tmp_path, "ecs", "create-cluster", "--cluster-name", unique("no"))) == "AccessDeniedException"
    assert cli_error(aws(server, user, tmp_path, "iam", "list-users")) == "AccessDenied"

    role = unique("cli-role")
    ok("iam", "create-role", "--role-name", role, "--assume-role-policy-document", document(
        {"Effect": "Allow", "Principal": {"AWS": user_arn(name)}, "Action": "sts:AssumeRole"}
    ))
    before = time.time()
    assumed = json.loads(
        aws(server, user, tmp_path, "sts", "assume-role", "--role-arn", role_arn(role), "--role-session-name", "cli", "--duration-seconds", "900").stdout
    )
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/cli"
    expires = datetime.fromisoformat(assumed["Credentials"]["Expiration"].replace("Z", "+00:00")).timestamp()
    assert before + 900 - 2 <= expires <= time.time() + 900 + 2, assumed["Credentials"]["Expiration"]
    stranger = unique("cli-stranger")
    ok("iam", "create-user", "--user-name", stranger)
    stranger_key = ok("iam", "create-access-key", "--user-name", stranger)["AccessKey"]
    stranger_keys = Credentials(stranger_key["AccessKeyId"], stranger_key["SecretAccessKey"])
    refused = aws(server, stranger_keys, tmp_path, "sts", "assume-role", "--role-arn", role_arn(role), "--role-session-name", "cli")
    assert cli_error(refused) == "AccessDenied"

    assert cli_error(aws(server, root, tmp_path, "iam", "get-user", "--user-name", unique("nobody"))) == "NoSuchEntity"
    assert cli_error(aws(server, root, tmp_path, "iam", "create-user", "--user-name", name.upper())) == "EntityAlreadyExists"
    bad = aws(server, root, tmp_path, "iam", "put-user-policy", "--user-name", name, "--policy-name", "bad", "--policy-document", MALFORMED["no Resource"])
    assert cli_error(bad) == "MalformedPolicyDocument"
    assert cli_error(aws(server, root, tmp_path, "iam", "delete-user", "--user-name", name)) == "DeleteConflict"


# ---------------------------------------------------------------------------------------------
# What policies allow
# ---------------------------------------------------------------------------------------------


def busybox_family(server, unique, base: str) -> str:
    family = unique(base)
    server.client().register_task_definition(
        family=family, containerDefinitions=[{"name": "app", "image": "busybox", "memory": 64, "essential": True}]
    )
    return family


def test_the_reader_of_one_cluster_reads_its_tasks_instances_and_services_and_changes_nothing(server, unique) -> None:
    dev, prod = unique("read-dev"), unique("read-prod")
    root = server.client()
    family = busybox_family(server, unique, "reader-td")
    placed = {}
    for cluster in (dev, prod):
        root.create_cluster(clusterName=cluster)
        instance = root.register_container_instance(cluster=cluster, totalResources=RESOURCES)["containerInstance"]["containerInstanceArn"]
        task = root.run_task(cluster=cluster, taskDefinition=family)["tasks"][0]["taskArn"]
        service = root.create_service(cluster=cluster, serviceName="web", taskDefinition=family, desiredCount=0)["service"]["serviceArn"]
        placed[cluster] = (instance, task, service)
    reads = [cluster_arn(dev), ecs_arn("task", dev, "*"), ecs_arn("container-instance", dev, "*"), ecs_arn("service", dev, "*")]
    reader = ecs(server, make_user(server, unique("deep-reader"), allow(["ecs:Describe*", "ecs:List*"], reads)))

    instance, task, service = placed[dev]
    assert reader.describe_tasks(cluster=dev, tasks=[task])["tasks"][0]["taskArn"] == task
    assert reader.describe_container_instances(cluster=dev, containerInstances=[instance])["containerInstances"][0]["containerInstanceArn"] == instance
    assert reader.describe_services(cluster=dev, services=[service])["services"][0]["serviceArn"] == service
    assert reader.list_tasks(cluster=dev, containerInstance=instance)["taskArns"] == [task]
    assert reader.list_tags_for_resource(resourceArn=task)["tags"] == []

    instance, task, service = placed[prod]
    for call, kwargs in (
        (reader.describe_tasks, {"cluster": prod, "tasks": [task]}),
        (reader.describe_container_instances, {"cluster": prod, "containerInstances": [instance]}),
        (reader.describe_services, {"cluster": prod, "services": [service]}),
        (reader.list_tasks, {"cluster": prod, "containerInstance": instance}),
        (reader.list_tags_for_resource, {"resourceArn": task}),
    ):
        assert error_of(call, **kwargs) == ("AccessDeniedException", 400), call

    instance, task, service = placed[dev]
    for call, kwargs in (
        (reader.stop_task, {"cluster": dev, "task": task}),
        (reader.update_service, {"cluster": dev, "service": service, "desiredCount": 2}),
        (reader.delete_service, {"cluster": dev, "service": service, "force": True}),
        (reader.create_service, {"cluster": dev, "serviceName": unique("svc"), "taskDefinition": family}),
        (reader.update_container_instances_state, {"cluster": dev, "containerInstances": [instance], "status": "DRAINING"}),
        (reader.deregister_container_instance, {"cluster": dev, "containerInstance": instance, "force": True}),
        (reader.put_attributes, {"cluster": dev, "attributes": [{"name": "a", "targetType": "container-instance", "targetId": instance}]}),
        (reader.tag_resource, {"resourceArn": task, "tags": [{"key": "k", "value": "v"}]}),
        (reader.update_cluster, {"cluster": dev, "settings": [{"name": "containerInsights", "value": "enabled"}]}),
    ):
        assert error_of(call, **kwargs) == ("AccessDeniedException", 400), call
    assert root.describe_tasks(cluster=dev, tasks=[task])["tasks"][0]["desiredStatus"] == "RUNNING"
    described = root.describe_services(cluster=dev, services=[service])["services"][0]
    assert (described["status"], described["desiredCount"]) == ("ACTIVE", 0)
    assert root.describe_container_instances(cluster=dev, containerInstances=[instance])["containerInstances"][0]["status"] == "ACTIVE"
    assert root.list_tags_for_resource(resourceArn=task)["tags"] == []


def test_tag_keys_and_request_tags_decide_what_a_user_may_tag(server, unique) -> None:
    name = unique("team-tagger")
    tagging = ["ecs:CreateCluster", "ecs:TagResource", "ecs:UntagResource"]
    tagger = ecs(
        server,
        make_user(
            server,
            name,
            allow(["ecs:CreateCluster", "ecs:TagResource"], Condition={"StringEquals": {"aws:RequestTag/team": "${aws:username}"}}),
            allow("ecs:UntagResource"),
            deny(tagging, Condition={"ForAnyValue:StringLike": {"aws:TagKeys": "berth:*"}}),
        ),
    )
    own = unique("team-own")
    team = {"key": "team", "value": name}
    assert tagger.create_cluster(clusterName=own, tags=[team])["cluster"]["status"] == "ACTIVE"
    refused = {
        "no team tag": (tagger.create_cluster, {"clusterName": unique("untagged")}),
        "another team": (tagger.create_cluster, {"clusterName": unique("theirs"), "tags": [{"key": "team", "value": "other"}]}),
        "a berth: tag key beside the team": (
            tagger.create_cluster,
            {"clusterName": unique("privileged"), "tags": [team, {"key": "berth:allow-privileged", "value": "true"}]},
        ),
        "tagging without the team tag": (tagger.tag_resource, {"resourceArn": cluster_arn(own), "tags": [{"key": "note", "value": "x"}]}),
        "tagging a berth: key": (
            tagger.tag_resource,
            {"resourceArn": cluster_arn(own), "tags": [team, {"key": "berth:allow-host-network", "value": "true"}]},
        ),
        "untagging a berth: key": (tagger.untag_resource, {"resourceArn": cluster_arn(own), "tagKeys": ["berth:allow-privileged"]}),
    }
    for what, (call, kwargs) in refused.items():
        assert error_of(call, **kwargs) == ("AccessDeniedException", 400), what
    tagger.tag_resource(resourceArn=cluster_arn(own), tags=[team, {"key": "note", "value": "x"}])
    tagger.untag_resource(resourceArn=cluster_arn(own), tagKeys=["note"])
    root = server.client()
    assert root.list_tags_for_resource(resourceArn=cluster_arn(own))["tags"] == [team]
    never = [kwargs["clusterName"] for call, kwargs in refused.values() if "clusterName" in kwargs]
    assert [f["reason"] for f in root.describe_clusters(clusters=never)["failures"]] == ["MISSING"] * len(never)


def test_the_principals_own_condition_keys(server, unique) -> None:
    blue, red = unique("blue"), unique("red")
    root = iam(server)
    for name, team in ((blue, "blue"), (red, "red")):
        root.create_user(UserName=name, Tags=[{"Key": "team", "Value": team}])
    blue_id = root.get_user(UserName=blue)["User"]["UserId"]
    statements = [
        allow("ecs:ListClusters", Condition={"StringEquals": {"aws:username": blue}}),
        allow("ecs:ListTaskDefinitions", Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}),
        allow("ecs:ListTaskDefinitionFamilies", Condition={"StringEquals": {"aws:PrincipalArn": user_arn(blue)}}),
        allow("ecs:ListAccountSettings", Condition={"StringEquals": {"aws:userid": blue_id}}),
    ]
    clients = {}
    for name in (blue, red):
        root.put_user_policy(UserName=name, PolicyName="keys", PolicyDocument=document(*statements))
        key = root.create_access_key(UserName=name)["AccessKey"]
        clients[name] = ecs(server, Credentials(key["AccessKeyId"], key["SecretAccessKey"]))
    calls = ("list_clusters", "list_task_definitions", "list_task_definition_families", "list_account_settings")
    for call in calls:
        getattr(clients[blue], call)()
        assert error_of(getattr(clients[red], call)) == ("AccessDeniedException", 400), call


# ---------------------------------------------------------------------------------------------
# Roles and their sessions
# ---------------------------------------------------------------------------------------------


def test_assume_role_durations_and_expiration(server, unique) -> None:
    user = unique("durations")
    keys = make_user(server, user)
    role_name = unique("durable")
    role = make_role(server, role_name, user_arn(user), allow("ecs:ListClusters"), MaxSessionDuration=7200)
    role_id = iam(server).get_role(RoleName=role_name)["Role"]["RoleId"]
    for duration in (900, None, 7200):
        before = time.time()
        got = assume(server, keys, role, "timed", **({"DurationSeconds": duration} if duration else {}))
        expires = got["Credentials"]["Expiration"].timestamp()
        lasts = duration or 3600
        assert before + lasts - 2 <= expires <= time.time() + lasts + 2, (duration, got["Credentials"]["Expiration"])
        assert got["AssumedRoleUser"] == {"AssumedRoleId": f"{role_id}:timed", "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/timed"}
    # What botocore would refuse itself, sent anyway: the server's own ValidationError.
    raw = unvalidated(server, keys, "sts")
    for duration in (800, 899, 7201, 43200):
        assert error_of(raw.assume_role, RoleArn=role, RoleSessionName="timed", DurationSeconds=duration) == ("ValidationError", 400), duration
    assert error_of(raw.assume_role, RoleArn=role, RoleSessionName="x") == ("ValidationError", 400), "a session name of 1 character"
    assert error_of(sts(server, keys).assume_role, RoleArn=role, RoleSessionName="has space") == ("ValidationError", 400)


def test_a_role_trusting_the_account_needs_the_callers_own_permission_too(server, unique) -> None:
    role_name = unique("account-role")
    role = make_role(server, role_name, ACCOUNT_ROOT, allow("ecs:ListClusters"))
    other = make_role(server, unique("other-role"), ACCOUNT_ROOT)
    may = make_user(server, unique("may"), allow("sts:AssumeRole", role))
    elsewhere = make_user(server, unique("elsewhere"), allow("sts:AssumeRole", other))
    nothing = make_user(server, unique("nothing"))
    denied = make_user(server, unique("denied"), allow("sts:AssumeRole"), deny("sts:AssumeRole", role))
    got = assume(server, may, role, "mine")
    assert got["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/mine"
    assert "clusterArns" in session(server, got["Credentials"]).client("ecs").list_clusters()
    for keys in (elsewhere, nothing, denied):
        assert error_of(sts(server, keys).assume_role, RoleArn=role, RoleSessionName="theirs") == ("AccessDenied", 403)
    assert error_of(sts(server, may).assume_role, RoleArn=role_arn(unique("no-such-role")), RoleSessionName="none") == ("AccessDenied", 403)


def test_a_session_has_its_roles_permissions_and_tags_and_nothing_else(server, unique) -> None:
    user = unique("session-user")
    keys = make_user(server, user, allow("ecs:*"), allow("iam:*"))
    role_name = unique("session-role")
    role = make_role(
        server,
        role_name,
        user_arn(user),
        allow("ecs:ListClusters"),
        allow("ecs:ListTaskDefinitions", Condition={"StringEquals": {"aws:PrincipalTag/team": "ops"}}),
        allow("ecs:ListTaskDefinitionFamilies", Condition={"StringEquals": {"aws:PrincipalTag/team": "dev"}}),
        Tags=[{"Key": "team", "Value": "ops"}],
    )
    temporary = assume(server, keys, role, "work")["Credentials"]
    assert temporary["AccessKeyId"].startswith("ASIA")
    as_role = session(server, temporary)
    role_id = iam(server).get_role(RoleName=role_name)["Role"]["RoleId"]
    identity = as_role.client("sts").get_caller_identity()
    assert (identity["Arn"], identity["UserId"], identity["Account"]) == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/work",
        f"{role_id}:work",
        ACCOUNT,
    )
    role_ecs = as_role.client("ecs")
    role_ecs.list_clusters()
    role_ecs.list_task_definitions()
    # The role's permissions, not the user's who assumed it.
    assert error_of(role_ecs.list_task_definition_families) == ("AccessDeniedException", 400)
    assert error_of(role_ecs.create_cluster, clusterName=unique("by-role")) == ("AccessDeniedException", 400)
    assert error_of(as_role.client("iam").list_users) == ("AccessDenied", 403)
    assert error_of(as_role.client("sts").assume_role, RoleArn=role, RoleSessionName="again") == ("AccessDenied", 403)
    # Its token belongs to its key: without it, or altered, the key is unknown.
    for token in ("", temporary["SessionToken"][:-4] + "AAAA", "x" + temporary["SessionToken"][1:]):
        forged = as_role.with_token(token) if token else session(server, {**temporary, "SessionToken": None})
        assert error_of(forged.client("ecs").list_clusters) == ("UnrecognizedClientException", 403), token
        assert error_of(forged.client("sts").get_caller_identity) == ("InvalidClientTokenId", 403), token
    other = assume(server, keys, role, "other")["Credentials"]
    swapped = session(server, {**temporary, "SessionToken": other["SessionToken"]})
    assert error_of(swapped.client("ecs").list_clusters) == ("UnrecognizedClientException", 403), "another session's token"
    # Once the role's policy is gone, so is what the session may do.
    iam(server).delete_role_policy(RoleName=role_name, PolicyName="policy")
    assert error_of(role_ecs.list_clusters) == ("AccessDeniedException", 400)


# ---------------------------------------------------------------------------------------------
# Agents bound to their instances
# ---------------------------------------------------------------------------------------------


def test_an_agent_reports_only_the_tasks_on_its_own_instance(server, unique) -> None:
    cluster = unique("reports")
    root = server.client()
    root.create_cluster(clusterName=cluster)
    mine, theirs = make_user(server, unique("reporter-a"), AGENT), make_user(server, unique("reporter-b"), AGENT)
    a, b = ecs(server, mine), ecs(server, theirs)
    instance = a.register_container_instance(cluster=cluster, totalResources=RESOURCES)["containerInstance"]["containerInstanceArn"]
    b.register_container_instance(cluster=cluster, totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1}, {"name": "MEMORY", "type": "INTEGER", "integerValue": 1}])
    task = root.run_task(cluster=cluster, taskDefinition=busybox_family(server, unique, "reported"))["tasks"][0]
    assert task["containerInstanceArn"] == instance, "only A's instance has room for it"
    arn = task["taskArn"]
    assert a.submit_task_state_change(cluster=cluster, task=arn, status="RUNNING")["acknowledgment"] == "ACK"
    assert a.submit_container_state_change(cluster=cluster, task=arn, containerName="app", status="RUNNING")["acknowledgment"] == "ACK"
    assert root.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING"
    for call, kwargs in (
        (b.submit_task_state_change, {"status": "STOPPED", "reason": "forged"}),
        (b.submit_task_state_change, {"status": "STOPPED", "reason": "forged", "task": arn.rsplit("/", 1)[1]}),
        (b.submit_container_state_change, {"containerName": "app", "status": "STOPPED", "exitCode": 1}),
    ):
        assert error_of(call, **{"cluster": cluster, "task": arn, **kwargs}) == ("AccessDeniedException", 400), kwargs
    described = root.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    assert (described["lastStatus"], described["desiredStatus"]) == ("RUNNING", "RUNNING")
    assert described["containers"][0]["lastStatus"] == "RUNNING"


def test_the_gateway_wants_ecs_poll_a_signature_and_the_instances_own_agent(server, unique) -> None:
    cluster = unique("gateway")
    server.client().create_cluster(clusterName=cluster)
    mine = make_user(server, unique("gw-a"), AGENT)
    instance = ecs(server, mine).register_container_instance(cluster=cluster, totalResources=RESOURCES)["containerInstance"]["containerInstanceArn"]
    instance_id = instance.rsplit("/", 1)[1]
    no_poll = make_user(server, unique("gw-no-poll"), AGENT, deny("ecs:Poll"))
    own = ecs(server, no_poll).register_container_instance(cluster=cluster, totalResources=RESOURCES)["containerInstance"]["containerInstanceArn"]
    nobody = make_user(server, unique("gw-nobody"))
    for call in (heartbeat, desired_stream):
        cases = {
            "an explicit Deny on ecs:Poll, its own instance": (own.rsplit("/", 1)[1], no_poll, 400, "AccessDeniedException"),
            "no policy at all": (instance_id, nobody, 400, "AccessDeniedException"),
            "unsigned": (instance_id, None, 403, "MissingAuthenticationTokenException"),
            "the wrong secret": (instance_id, mine.with_secret("0" * 40), 403, "InvalidSignatureException"),
            "an unknown key": (instance_id, Credentials("AKIAAAAAAAAAAAAAAAAA", "0" * 40), 403, "UnrecognizedClientException"),
        }
        for what, (target, credentials, status, code) in cases.items():
            answer = call(server, cluster, target, credentials=credentials)
            assert (answer.status, answer.json()["__type"]) == (status, code), (call.__name__, what, answer)
        assert call(server, cluster, instance_id, credentials=mine).status == 200
        assert call(server, cluster, instance, credentials=mine).status == 200, "the instance named by its ARN"
    # The root user may register the instance again, and then it is the root user's.
    server.client().register_container_instance(cluster=cluster, containerInstanceArn=instance, totalResources=RESOURCES)
    taken = heartbeat(server, cluster, instance_id, credentials=mine)
    assert (taken.status, taken.json()["__type"]) == (400, "AccessDeniedException")


# ---------------------------------------------------------------------------------------------
# Ways around a Deny that an earlier build let through (found by these tests, then fixed): each
# test asserts the refusal AWS gives.
# ---------------------------------------------------------------------------------------------


def accepted(attempts: dict[str, tuple]) -> list[str]:
    """The attempts (name: (call, kwargs)) that the server carried out rather than refused:
    every success but a read that found nothing."""
    from botocore.exceptions import ClientError

    done = []
    for what, (call, kwargs) in attempts.items():
        try:
            result = call(**kwargs)
        except ClientError:
            continue
        result.pop("ResponseMetadata", None)
        listed = [result[field] for field in ("tasks", "containerInstances", "taskArns", "tags") if field in result]
        # A read that found nothing (MISSING) refused nothing but gave nothing away either.
        if not listed or any(listed):
            done.append(what)
    return done


def aliases(arn: str) -> dict[str, str]:
    """Other spellings of an ECS ARN that the server resolves to the same resource."""
    kind, rest = arn.split(":", 5)[5].split("/", 1)
    return {
        "another region": arn.replace(":us-east-1:", ":eu-west-1:"),
        "another account": arn.replace(f":{ACCOUNT}:", ":111111111111:"),
        "the old format without the cluster": f"{ECS_ARN}:{kind}/{rest.rsplit('/', 1)[-1]}",
    }


def test_a_deny_on_a_resources_arn_covers_every_spelling_of_it(server, unique) -> None:
    guarded = unique("spelled")
    root = server.client()
    root.create_cluster(clusterName=guarded)
    instance = root.register_container_instance(cluster=guarded, totalResources=RESOURCES)["containerInstance"]["containerInstanceArn"]
    task = root.run_task(cluster=guarded, taskDefinition=busybox_family(server, unique, "spelled"))["tasks"][0]["taskArn"]
    root.tag_resource(resourceArn=cluster_arn(guarded), tags=[{"key": "env", "value": "prod"}])
    user = ecs(
        server,
        make_user(
            server,
            unique("spelling"),
            allow("ecs:*"),
            deny("ecs:*", [cluster_arn(guarded), ecs_arn("task", guarded, "*"), ecs_arn("container-instance", guarded, "*")]),
        ),
    )
    assert error_of(user.describe_tasks, cluster=guarded, tasks=[task]) == ("AccessDeniedException", 400)
    attempts = {}
    for how, alias in aliases(task).items():
        attempts[f"DescribeTasks, {how}"] = (user.describe_tasks, {"cluster": guarded, "tasks": [alias]})
    for how, alias in aliases(instance).items():
        attempts[f"DescribeContainerInstances, {how}"] = (user.describe_container_instances, {"cluster": guarded, "containerInstances": [alias]})
    for how, alias in list(aliases(cluster_arn(guarded)).items())[:2]:
        attempts[f"TagResource, {how}"] = (user.tag_resource, {"resourceArn": alias, "tags": [{"key": "by", "value": "alias"}]})
        attempts[f"UntagResource, {how}"] = (user.untag_resource, {"resourceArn": alias, "tagKeys": ["env"]})
        attempts[f"ListTagsForResource, {how}"] = (user.list_tags_for_resource, {"resourceArn": alias})
    carried_out = accepted(attempts)
    assert carried_out == [], carried_out
    assert root.list_tags_for_resource(resourceArn=cluster_arn(guarded))["tags"] == [{"key": "env", "value": "prod"}]


def test_list_tasks_by_instance_stays_in_the_cluster_the_policy_allows(server, unique) -> None:
    dev, prod = unique("lt-dev"), unique("lt-prod")
    root = server.client()
    for cluster in (dev, prod):
        root.create_cluster(clusterName=cluster)
    instance = root.register_container_instance(cluster=prod, totalResources=RESOURCES)["containerInstance"]["containerInstanceArn"]
    task = root.run_task(cluster=prod, taskDefinition=busybox_family(server, unique, "lt"))["tasks"][0]["taskArn"]
    reader = ecs(server, make_user(server, unique("lt-reader"), allow("ecs:List*", [cluster_arn(dev), ecs_arn("container-instance", dev, "*")])))
    relabelled = ecs_arn("container-instance", dev, instance.rsplit("/", 1)[1])
    try:
        listed = reader.list_tasks(cluster=prod, containerInstance=relabelled)["taskArns"]
    except Exception as refused:  # noqa: BLE001 - any refusal is right
        listed = [f"refused: {refused}"]
    assert task not in listed, listed


def test_a_deny_on_a_user_or_role_covers_its_name_in_any_case(server, unique) -> None:
    admin, admins = unique("admin"), unique("admins-role")
    make_user(server, admin, allow("*"))
    make_role(server, admins, ACCOUNT_ROOT, allow("*"))
    manager = iam(server, make_user(server, unique("manager"), allow("iam:*"), deny("iam:*", [user_arn(admin), role_arn(admins)])))
    assert error_of(manager.create_access_key, UserName=admin) == ("AccessDenied", 403)
    assert error_of(manager.put_role_policy, RoleName=admins, PolicyName="x", PolicyDocument=document(allow("*"))) == ("AccessDenied", 403)
    attempts = {
        "CreateAccessKey": (manager.create_access_key, {"UserName": admin.upper()}),
        "PutUserPolicy": (manager.put_user_policy, {"UserName": admin.upper(), "PolicyName": "x", "PolicyDocument": document(allow("*"))}),
        "GetUser": (manager.get_user, {"UserName": admin.upper()}),
        "PutRolePolicy": (manager.put_role_policy, {"RoleName": admins.upper(), "PolicyName": "x", "PolicyDocument": document(allow("*"))}),
        "DeleteRolePolicy": (manager.delete_role_policy, {"RoleName": admins.upper(), "PolicyName": "policy"}),
    }
    carried_out = accepted(attempts)
    assert carried_out == [], carried_out
    assert len(iam(server).list_access_keys(UserName=admin)["AccessKeyMetadata"]) == 1


def test_an_explicit_deny_of_assume_role_wins_over_a_trust_naming_the_caller(server, unique) -> None:
    user = unique("deny-assume")
    keys = make_user(server, user, deny("sts:AssumeRole"))
    role = make_role(server, unique("names-caller"), user_arn(user), allow("ecs:ListClusters"))
    assert error_of(sts(server, keys).assume_role, RoleArn=role, RoleSessionName="denied") == ("AccessDenied", 403)


def test_the_principal_arn_of_a_session_is_its_roles_arn(server, unique) -> None:
    user = unique("pa-user")
    keys = make_user(server, user)
    name = unique("pa-role")
    role = make_role(server, name, user_arn(user), allow("ecs:ListClusters", Condition={"StringEquals": {"aws:PrincipalArn": role_arn(name)}}))
    role_ecs = session(server, assume(server, keys, role)["Credentials"]).client("ecs")
    assert "clusterArns" in role_ecs.list_clusters()


def test_a_user_with_a_path_is_its_arn_everywhere(server, unique) -> None:
    name = unique("pathed")
    root = iam(server)
    arn = root.create_user(UserName=name, Path="/eng/")["User"]["Arn"]
    assert arn == user_arn(name, "/eng/")
    policy = document(
        allow("iam:GetUser", user_arn("*", "/eng/")),
        allow("ecs:ListClusters", Condition={"StringEquals": {"aws:PrincipalArn": arn}}),
    )
    root.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    key = root.create_access_key(UserName=name)["AccessKey"]
    keys = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    role = make_role(server, unique("for-pathed"), arn)
    problems = []
    if sts(server, keys).get_caller_identity()["Arn"] != arn:
        problems.append("GetCallerIdentity")
    for what, call, kwargs in (
        ("GetUser on user/eng/*", iam(server, keys).get_user, {"UserName": name}),
        ("aws:PrincipalArn", ecs(server, keys).list_clusters, {}),
        ("a trust naming the ARN", sts(server, keys).assume_role, {"RoleArn": role, "RoleSessionName": "pathed"}),
    ):
        try:
            call(**kwargs)
        except Exception as refused:  # noqa: BLE001
            problems.append(f"{what}: {refused}")
    assert problems == []


def test_a_trust_policy_may_require_an_external_id(server, unique) -> None:
    user = unique("external")
    keys = make_user(server, user)
    name = unique("external-role")
    role = iam(server).create_role(RoleName=name, AssumeRolePolicyDocument=trust_with_external_id(user_arn(user), "ticket-4711"))["Role"]["Arn"]
    assert error_of(sts(server, keys).assume_role, RoleArn=role, RoleSessionName="ext", ExternalId="wrong-0000") == ("AccessDenied", 403)
    assert assume(server, keys, role, "ext", ExternalId="ticket-4711")["AssumedRoleUser"]["Arn"].endswith(f"/{name}/ext")


def trust_with_external_id(principal: str, external_id: str) -> str:
    return document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
        }
    )


def test_session_tags_are_refused_or_honoured_never_ignored(server, unique) -> None:
    user = unique("tagged-session")
    keys = make_user(server, user)
    role = make_role(server, unique("tag-role"), user_arn(user), allow("ecs:ListClusters"))
    # The trust policy does not allow sts:TagSession: AWS refuses the tags.
    assert error_of(sts(server, keys).assume_role, RoleArn=role, RoleSessionName="tags", Tags=[{"Key": "team", "Value": "x"}])[0] in {
        "AccessDenied",
        "ValidationError",
    }


def test_a_user_made_again_under_the_same_name_does_not_inherit_instances(server, unique) -> None:
    cluster = unique("reborn")
    server.client().create_cluster(clusterName=cluster)
    name = unique("reborn-agent")
    first = make_user(server, name, AGENT)
    instance = ecs(server, first).register_container_instance(cluster=cluster, totalResources=RESOURCES)["containerInstance"]["containerInstanceArn"]
    delete_user(server, name)
    second = make_user(server, name, AGENT)
    answer = heartbeat(server, cluster, instance.rsplit("/", 1)[1], credentials=second)
    assert (answer.status, answer.json().get("__type")) == (400, "AccessDeniedException"), answer

"""IAM, STS and the authorisation of every call, with the AWS CLI and boto3: users, access
keys and inline policies; roles; a read-only user on one cluster; a Deny on a resource tag
beating an Allow; request tags and tag keys; the principal's condition keys; roles assumed and
refused; agents bound to their instances. The last section holds the server's known defects,
each a strict xfail that turns into a failure once the server is fixed."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse

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
    from datetime import datetime

    expires = datetime.fromisoformat(assumed["Credentials"]["Expiration"].replace("Z", "+00:00")).timestamp()
    assert before + 900 - 2 <= expires <= time.time() + 900 + 2, assumed["Credentials"]["Expiration"]
    stranger = unique("cli-stranger")
    ok("iam", "create-user", "--user-name", stranger)
    stranger_key = ok("iam", "create-access-key", "--user-name", stranger)["AccessKey"]
    refused = aws(server, Credentials(stranger_key["AccessKeyId"], stranger_key["SecretAccessKey"]), tmp_path,
                  "sts", "assume-role", "--role-arn", role_arn(role), "--role-session-name", "cli")
    assert cli_error(refused) == "AccessDenied"

    assert cli_error(aws(server, root, tmp_path, "iam", "get-user", "--user-name", unique("nobody"))) == "NoSuchEntity"
    assert cli_error(aws(server, root, tmp_path, "iam", "create-user", "--user-name", name.upper())) == "EntityAlreadyExists"
    bad = aws(server, root, tmp_path, "iam", "put-user-policy", "--user-name", name, "--policy-name", "bad", "--policy-document", MALFORMED["no Resource"])
    assert cli_error(bad) == "MalformedPolicyDocument"
    assert cli_error(aws(server, root, tmp_path, "iam", "delete-user", "--user-name", name)) == "DeleteConflict"

"""IAM, STS and the authorisation of every call, with the AWS CLI and boto3: users, access
keys and inline policies; a read-only user on one cluster; a Deny on a resource tag beating an
Allow; request tags; roles assumed and refused; agents bound to their instances."""

from __future__ import annotations

import json
import subprocess
import urllib.parse

import pytest

from harness import ACCOUNT, Credentials, aws_cli, desired_stream, heartbeat
from iam_helpers import allow, cluster_arn, deny, document, ecs, error_of, iam, make_user, sts, ECS_ARN


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

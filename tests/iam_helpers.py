"""IAM as the tests use it: root IAM/STS clients of a server, users made with a policy and an
access key of their own, roles and the sessions assumed from them, the AWS CLI run as a user,
and the ARNs policies name."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Optional

from harness import ACCOUNT, REGION, BerthServer, Credentials, assert_loopback, aws_cli, boto3_client

ECS_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}"


def cluster_arn(name: str) -> str:
    return f"{ECS_ARN}:cluster/{name}"


def iam(server: BerthServer, credentials: Optional[Credentials] = None):
    """An IAM client straight to the server (IAM exchanges stay out of the ECS recording)."""
    return boto3_client(server.url, credentials or server.credentials, service="iam")


def sts(server: BerthServer, credentials: Optional[Credentials] = None):
    return boto3_client(server.url, credentials or server.credentials, service="sts")


def ecs(server: BerthServer, credentials: Credentials):
    return boto3_client(server.url, credentials)


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def make_user(server: BerthServer, name: str, *statements: dict[str, Any], tags: Optional[dict] = None) -> Credentials:
    """A new IAM user with `statements` as its inline policy (none: no permissions at all) and
    an access key; returns the key."""
    root = iam(server)
    kwargs: dict[str, Any] = {"UserName": name}
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    root.create_user(**kwargs)
    if statements:
        root.put_user_policy(UserName=name, PolicyName="policy", PolicyDocument=document(*statements))
    key = root.create_access_key(UserName=name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def error_of(call, *args: Any, **kwargs: Any) -> tuple[str, int]:
    """The (code, HTTP status) a refused call answers; an AssertionError if it succeeds."""
    from botocore.exceptions import ClientError

    try:
        result = call(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"expected a refusal, the call succeeded: {result}")


# ---------------------------------------------------------------------------------------------
# ARNs, roles and sessions, the CLI as a user, and tearing users down
# ---------------------------------------------------------------------------------------------


def ecs_arn(kind: str, *path: str) -> str:
    """`arn:aws:ecs:us-east-1:000000000000:<kind>/<path...>` (task/CLUSTER/ID, ...)."""
    return f"{ECS_ARN}:{kind}/{'/'.join(path)}"


def user_arn(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{ACCOUNT}:user{path}{name}"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


ACCOUNT_ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def trust(principal: Any, **extra: Any) -> str:
    """A trust policy letting `principal` (an ARN or a list of them) assume the role."""
    return document({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole", **extra})


def make_role(server: BerthServer, name: str, principal: Any, *statements: dict[str, Any], **create: Any) -> str:
    """A new role `principal` may assume, with `statements` as its inline policy; its ARN.
    `create` adds CreateRole parameters (Tags, MaxSessionDuration, ...)."""
    root = iam(server)
    made = root.create_role(RoleName=name, AssumeRolePolicyDocument=trust(principal), **create)["Role"]
    if statements:
        root.put_role_policy(RoleName=name, PolicyName="policy", PolicyDocument=document(*statements))
    return made["Arn"]


def session(server: BerthServer, temporary: dict[str, Any], **config: Any) -> "Session":
    """Clients signed with temporary credentials (AssumeRole's `Credentials`)."""
    return Session(server.url, temporary["AccessKeyId"], temporary["SecretAccessKey"], temporary["SessionToken"], config)


class Session:
    """boto3 clients for one endpoint with one set of temporary credentials, one attempt
    per call, like harness.boto3_client."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, token: str, config: dict[str, Any]) -> None:
        import boto3

        assert_loopback(endpoint)
        self.endpoint = endpoint
        self.access_key, self.secret_key, self.token = access_key, secret_key, token
        self.config = config
        self._session = boto3.session.Session(
            region_name=REGION, aws_access_key_id=access_key, aws_secret_access_key=secret_key, aws_session_token=token
        )

    def client(self, service: str):
        from botocore.config import Config

        options = {"retries": {"total_max_attempts": 1, "mode": "standard"}, **self.config}
        return self._session.client(service, endpoint_url=self.endpoint, config=Config(**options))

    def with_token(self, token: str) -> "Session":
        return Session(self.endpoint, self.access_key, self.secret_key, token, self.config)


def assume(server: BerthServer, credentials: Credentials, role: str, name: str = "session", **kwargs: Any) -> dict[str, Any]:
    """AssumeRole of `role` (an ARN) signed with `credentials`; the whole answer."""
    return sts(server, credentials).assume_role(RoleArn=role, RoleSessionName=name, **kwargs)


def unvalidated(server: BerthServer, credentials: Credentials, service: str):
    """A client that sends what botocore would refuse itself (DurationSeconds=800, ...), so
    the server's own validation answers."""
    return boto3_client(server.url, credentials, service=service, parameter_validation=False)


def delete_user(server: BerthServer, name: str) -> None:
    """Deletes a user as IAM requires: its keys and policies first."""
    root = iam(server)
    for key in root.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        root.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    for policy in root.list_user_policies(UserName=name)["PolicyNames"]:
        root.delete_user_policy(UserName=name, PolicyName=policy)
    root.delete_user(UserName=name)


def aws(server: BerthServer, credentials: Credentials, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`aws <args>` against the server as the owner of `credentials` would run it: the keys in
    a shared-credentials file of its own (profile berth), nothing in the environment."""
    if credentials.path is None:
        credentials = credentials.write(tmp_path / f"credentials-{credentials.access_key}")
    cmd = [*aws_cli(), *args, "--endpoint-url", server.url, "--region", REGION, "--output", "json"]
    return subprocess.run(cmd, capture_output=True, text=True, env=credentials.env(), timeout=120)


def cli_error(done: subprocess.CompletedProcess) -> str:
    """The error code an `aws` run that failed printed ("An error occurred (Code) when ...")."""
    assert done.returncode != 0, f"expected the CLI to fail: {done.stdout}"
    found = re.search(r"An error occurred \(([A-Za-z]+)\)", done.stderr)
    assert found, done.stderr
    return found.group(1)

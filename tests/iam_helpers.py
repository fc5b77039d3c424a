"""IAM as the tests use it: root IAM/STS clients of a server, users made with a policy and an
access key of their own, and the ARNs policies name."""

from __future__ import annotations

import json
from typing import Any, Optional

from harness import ACCOUNT, REGION, BerthServer, Credentials, boto3_client

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

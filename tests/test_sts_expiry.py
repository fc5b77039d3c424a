"""Temporary credentials end when STS said they would: AssumeRole's credentials (the shortest
AWS allows, 900 s) work, then — the same server restarted with its clock 15 min 10 s ahead
(libfaketime), the session's end behind it — are refused with ExpiredTokenException, while
the role and a fresh AssumeRole still work. boto3 only."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from harness import ACCOUNT, REGION, BerthServer, HarnessError, boto3_client

TRUST_ACCOUNT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}],
}
LIST_CLUSTERS = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}],
}


def server_ahead(data_dir: Path, seconds: int) -> BerthServer:
    """The same server, its clock `seconds` ahead of the machine's: libfaketime preloaded into
    the server process itself (the `faketime` wrapper would stand between it and signals)."""
    libraries = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not libraries:
        raise HarnessError("libfaketime is not installed: run scripts/ensure-test-tools (make test does).")
    env = {"LD_PRELOAD": str(libraries[0]), "FAKETIME": f"+{seconds}s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    return BerthServer(data_dir, log_path=data_dir.parent / "ahead.log", env=env)


def temporary_client(endpoint: str, credentials: dict, service: str = "ecs"):
    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return session.client(service, endpoint_url=endpoint, config=config)


def test_assumed_role_credentials_expire_at_their_expiration(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = BerthServer(data).start()
    try:
        iam = boto3_client(server.url, server.credentials, service="iam")
        sts = boto3_client(server.url, server.credentials, service="sts")
        role = iam.create_role(RoleName="short-lived", AssumeRolePolicyDocument=json.dumps(TRUST_ACCOUNT))["Role"]
        iam.put_role_policy(RoleName="short-lived", PolicyName="list", PolicyDocument=json.dumps(LIST_CLUSTERS))
        assumed = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="ci", DurationSeconds=900)
        credentials = assumed["Credentials"]
        issued = credentials["Expiration"].timestamp() - 900
        assert abs(issued - time.time()) < 60, credentials["Expiration"]
        temporary = temporary_client(server.url, credentials)
        assert "clusterArns" in temporary.list_clusters()
        caller = temporary_client(server.url, credentials, "sts").get_caller_identity()
        assert caller["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/short-lived/ci"
        with pytest.raises(ClientError) as denied:
            temporary.create_cluster(clusterName="not-allowed")
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    finally:
        server.stop()

    later = server_ahead(data, seconds=910).start()
    try:
        with pytest.raises(ClientError) as expired:
            temporary_client(later.url, credentials).list_clusters()
        assert expired.value.response["Error"]["Code"] == "ExpiredTokenException", expired.value.response
        assert expired.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        # The server kept its root key; signed at this machine's time it is now outside the
        # 15 minutes SigV4 allows, which is another refusal than an ended session.
        assert later.credentials.access_key == server.credentials.access_key
        with pytest.raises(ClientError) as skewed:
            later.client().list_clusters()
        assert skewed.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert "Signature expired" in skewed.value.response["Error"]["Message"]
    finally:
        later.stop()

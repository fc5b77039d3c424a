"""Issue 13's task roles on real containers: `berth up` on the machine's Docker daemon, a role
made with the IAM API whose trust policy lets `ecs-tasks.amazonaws.com` assume it, and a task
with that `taskRoleArn`. Its container finds `AWS_CONTAINER_CREDENTIALS_FULL_URI` (on ECS's
169.254.170.2) in its environment and reads its role's credentials there with `nc` (the busybox
image's `wget` crashes); the test then uses them as an SDK in the task would: allowed by the
role's policy, denied beyond it. A container of another task cannot read them, and a role that
does not trust the ECS tasks service gives none."""

from __future__ import annotations

import json
import re
from typing import Any

from harness import BerthUp, docker, status_is, wait_for_task, wait_until
from iam_helpers import allow, document, iam, session

CLUSTER = "default"

# Prints the credentials URI, then the answer's body, then sleeps.
READER = r"""
u=${AWS_CONTAINER_CREDENTIALS_FULL_URI#http://}; hp=${u%%/*}; p=/${u#*/}
get() { printf 'GET %s HTTP/1.0\r\n\r\n' "$1" | nc "${hp%:*}" "${hp#*:}" | sed '1,/^\r$/d'; echo; }
echo "==URI $AWS_CONTAINER_CREDENTIALS_FULL_URI"
echo "==MINE"; get "$p"
echo "==OTHER"; get "/v2/credentials/0123456789abcdef0123456789abcdef01234567"
echo "==END"
trap 'exit 0' TERM; sleep 3600 & wait
"""

TRUST_ECS_TASKS = document({"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"})


def printed(up: BerthUp, task: dict) -> dict[str, str]:
    container_id = task["containers"][0]["runtimeId"]

    def done() -> str | None:
        logs = docker("logs", container_id)
        return logs if "==END" in logs else None

    logs = wait_until(done, 30, "the reader to print", diagnose=up.server.log_tail)
    out: dict[str, str] = {}
    for block in re.split(r"^==", logs, flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        key, _, value = head.partition(" ")
        out[key] = value if value else body.strip()
    return out


def run_reader(up: BerthUp, family: str, role_arn: str) -> dict:
    up.ecs.register_task_definition(
        family=family,
        taskRoleArn=role_arn,
        containerDefinitions=[{"name": "app", "image": "busybox", "memory": 32, "command": ["sh", "-c", READER]}],
    )
    arn = up.ecs.run_task(cluster=CLUSTER, taskDefinition=family)["tasks"][0]["taskArn"]
    return wait_for_task(up.ecs, CLUSTER, arn, status_is("RUNNING"), 60, "the reader to run")


def test_a_task_reads_its_role_credentials_and_they_carry_the_roles_rights(berth_up: BerthUp, unique):
    server = berth_up.server
    role = unique("task-role")
    made = iam(server).create_role(RoleName=role, AssumeRolePolicyDocument=TRUST_ECS_TASKS)["Role"]
    iam(server).put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=document(allow("ecs:ListClusters")))
    task = run_reader(berth_up, unique("reader"), made["Arn"])
    try:
        out = printed(berth_up, task)
        assert out["URI"].startswith("http://169.254.170.2:"), out
        credentials = json.loads(out["MINE"])
        assert set(credentials) == {"RoleArn", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"}, credentials
        assert credentials["RoleArn"] == made["Arn"]
        assert credentials["AccessKeyId"].startswith("ASIA")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", credentials["Expiration"]), credentials
        # Another task's path shows nothing.
        assert "Error" in json.loads(out["OTHER"]), out["OTHER"]

        as_task = session(
            server,
            {
                "AccessKeyId": credentials["AccessKeyId"],
                "SecretAccessKey": credentials["SecretAccessKey"],
                "SessionToken": credentials["Token"],
            },
        )
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        identity = as_task.client("sts").get_caller_identity()
        assert identity["Arn"].endswith(f":assumed-role/{role}/{task_id}"), identity
        assert "clusterArns" in as_task.client("ecs").list_clusters()
        ecs = as_task.client("ecs")
        try:
            ecs.create_cluster(clusterName=unique("nope"))
            raise AssertionError("the role's policy allows only ecs:ListClusters")
        except ecs.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "AccessDeniedException", e.response
    finally:
        berth_up.ecs.stop_task(cluster=CLUSTER, task=task["taskArn"])


def test_a_role_that_does_not_trust_ecs_tasks_gives_no_credentials(berth_up: BerthUp, unique):
    server = berth_up.server
    role = unique("untrusting")
    made = iam(server).create_role(
        RoleName=role,
        AssumeRolePolicyDocument=document({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}),
    )["Role"]
    task = run_reader(berth_up, unique("reader"), made["Arn"])
    try:
        out = printed(berth_up, task)
        answer: dict[str, Any] = json.loads(out["MINE"])
        assert "AccessKeyId" not in answer
        assert "ecs-tasks.amazonaws.com" in answer["Error"], answer
    finally:
        berth_up.ecs.stop_task(cluster=CLUSTER, task=task["taskArn"])

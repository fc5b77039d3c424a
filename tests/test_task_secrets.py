"""Issue 13's secrets in tasks on real containers: `berth up` on the machine's Docker daemon, a
secret in Secrets Manager and a SecureString in Parameter Store, an execution role allowed to
read them, and a task whose `secrets` name them. The container sees them as environment
variables (or, labelled `com.berth.secret-files=true`, as files under /run/secrets); no
Describe answer and no file of the server's data dir holds them; a role that may not read a
secret keeps the task from starting, with ECS's ResourceInitializationError naming it."""

from __future__ import annotations

import json
from pathlib import Path

from harness import BerthUp, boto3_client, docker, status_is, wait_for_task, wait_until
from leaks import secret_value
from iam_helpers import allow, document, iam

CLUSTER = "default"
TRUST_ECS_TASKS = document({"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"})


def printed(up: BerthUp, container_id: str) -> str:
    return wait_until(
        lambda: (logs := docker("logs", container_id)) and "==END" in logs and logs,
        30,
        "the container to print",
        diagnose=up.server.log_tail,
    )


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def test_secrets_reach_the_container_and_nothing_else(berth_up: BerthUp, unique):
    server = berth_up.server
    secrets = boto3_client(server.url, server.credentials, service="secretsmanager")
    ssm = boto3_client(server.url, server.credentials, service="ssm")
    password = secret_value("Password")
    api_key = secret_value("ApiKey")
    secret = secrets.create_secret(Name=unique("db"), SecretString=json.dumps({"user": "app", "password": password}))
    parameter = f"/{unique('app')}/api-key"
    ssm.put_parameter(Name=parameter, Value=api_key, Type="SecureString")
    role = unique("exec")
    role_arn = iam(server).create_role(RoleName=role, AssumeRolePolicyDocument=TRUST_ECS_TASKS)["Role"]["Arn"]
    iam(server).put_role_policy(
        RoleName=role,
        PolicyName="read",
        PolicyDocument=document(
            allow("secretsmanager:GetSecretValue", secret["ARN"]),
            allow("ssm:GetParameters", f"arn:aws:ssm:us-east-1:000000000000:parameter{parameter}"),
        ),
    )
    wanted = [
        {"name": "DB_PASSWORD", "valueFrom": f"{secret['ARN']}:password::"},
        {"name": "API_KEY", "valueFrom": parameter},
    ]
    family = unique("secrets")
    berth_up.ecs.register_task_definition(
        family=family,
        executionRoleArn=role_arn,
        containerDefinitions=[
            {
                "name": "env",
                "image": "busybox",
                "memory": 16,
                "secrets": wanted,
                "command": ["sh", "-c", "echo ==DB $DB_PASSWORD; echo ==API $API_KEY; echo ==END; sleep 3600"],
            },
            {
                "name": "files",
                "image": "busybox",
                "memory": 16,
                "essential": False,
                "secrets": wanted,
                "dockerLabels": {"com.berth.secret-files": "true"},
                "command": [
                    "sh",
                    "-c",
                    "echo ==FILE $(cat /run/secrets/API_KEY); echo ==ENV ${API_KEY:-unset}; "
                    "echo ==MODE $(stat -c %a /run/secrets/DB_PASSWORD); echo ==END; sleep 3600",
                ],
            },
        ],
    )
    arn = berth_up.ecs.run_task(cluster=CLUSTER, taskDefinition=family)["tasks"][0]["taskArn"]
    task = wait_for_task(berth_up.ecs, CLUSTER, arn, status_is("RUNNING"), 60, "the task to run")
    try:
        by_name = {c["name"]: c["runtimeId"] for c in task["containers"]}
        env_out = printed(berth_up, by_name["env"])
        assert f"==DB {password}" in env_out and f"==API {api_key}" in env_out, env_out
        files_out = printed(berth_up, by_name["files"])
        assert f"==FILE {api_key}" in files_out, files_out
        assert "==ENV unset" in files_out, "as files, not in the environment"
        assert "==MODE 400" in files_out, files_out

        # Nothing an API answers, and no file of the server, holds a value.
        described = json.dumps(berth_up.ecs.describe_tasks(cluster=CLUSTER, tasks=[arn]), default=str)
        described += json.dumps(berth_up.ecs.describe_task_definition(taskDefinition=family), default=str)
        assert password not in described and api_key not in described
        for path in files_under(server.data_dir):
            data = path.read_bytes()
            assert password.encode() not in data and api_key.encode() not in data, f"plaintext in {path}"
        assert password not in server.log_tail(100000)
    finally:
        berth_up.ecs.stop_task(cluster=CLUSTER, task=arn)
    gone = wait_for_task(berth_up.ecs, CLUSTER, arn, status_is("STOPPED"), 60, "the task to stop")
    task_id = gone["taskArn"].rsplit("/", 1)[-1]
    assert not Path(f"/dev/shm/berth-secrets/{task_id}").exists(), "secret files removed with the task"


def test_a_secret_the_execution_role_may_not_read_keeps_the_task_from_starting(berth_up: BerthUp, unique):
    server = berth_up.server
    secrets = boto3_client(server.url, server.credentials, service="secretsmanager")
    secret = secrets.create_secret(Name=unique("locked"), SecretString="v")
    role = unique("exec-none")
    role_arn = iam(server).create_role(RoleName=role, AssumeRolePolicyDocument=TRUST_ECS_TASKS)["Role"]["Arn"]
    family = unique("denied")
    berth_up.ecs.register_task_definition(
        family=family,
        executionRoleArn=role_arn,
        containerDefinitions=[
            {"name": "app", "image": "busybox", "memory": 16, "command": ["sleep", "3600"], "secrets": [{"name": "S", "valueFrom": secret["ARN"]}]}
        ],
    )
    arn = berth_up.ecs.run_task(cluster=CLUSTER, taskDefinition=family)["tasks"][0]["taskArn"]
    task = wait_for_task(berth_up.ecs, CLUSTER, arn, status_is("STOPPED"), 60, "the task to stop")
    assert task["stopCode"] == "TaskFailedToStart"
    reason = task["containers"][0].get("reason", "") + task.get("stoppedReason", "")
    assert "ResourceInitializationError" in reason, task
    assert secret["ARN"] in reason and "secretsmanager:GetSecretValue" in reason, reason

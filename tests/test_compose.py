"""Issue 17's `berth compose`: a Compose file (the Compose specification's example, and a
two-service app of the local busybox image) converted to task definitions and services, brought
up on real containers reachable from here (with a secret as a file under /run/secrets), brought
up again without change, changed in one service and in a secret, rolled back, and brought down."""

from __future__ import annotations

import json
import subprocess
import textwrap
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from harness import BerthUp, berth_bin, boto3_client, docker, free_port, wait_until
from iam_helpers import iam
from leaks import secret_value
from test_berth_cli import berth_exit

CLUSTER = "default"

# The example at the top of the Compose specification, with a health check, a dependency and
# a port of each syntax added.
SPEC_EXAMPLE = """
services:
  frontend:
    image: example/webapp
    ports:
      - "443:8043"
      - target: 80
        published: "8080"
    networks:
      - front-tier
      - back-tier
    configs:
      - httpd-config
    secrets:
      - server-certificate
    depends_on:
      backend:
        condition: service_healthy

  backend:
    image: example/database
    volumes:
      - db-data:/etc/data
    networks:
      - back-tier
    healthcheck:
      test: ["CMD", "pg_isready"]
      interval: 10s
      retries: 3

volumes:
  db-data:
    driver: flocker
    driver_opts:
      size: "10GiB"

configs:
  httpd-config:
    external: true

secrets:
  server-certificate:
    external: true

networks:
  # The presence of these objects is sufficient to define them
  front-tier: {}
  back-tier: {}
"""


def run_berth(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """berth without a server (convert needs none)."""
    return subprocess.run([str(berth_bin()), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_convert_prints_the_plan_of_the_spec_example_and_lists_what_does_not_map(tmp_path: Path):
    project_dir = tmp_path / "webshop"
    project_dir.mkdir()
    (project_dir / "compose.yaml").write_text(SPEC_EXAMPLE)
    done = run_berth("compose", "convert", cwd=project_dir)
    assert done.returncode == 0, done
    plan = json.loads(done.stdout)
    assert plan["project"] == "webshop", "the project is the directory's name"
    backend, frontend = plan["services"]
    assert [backend["name"], frontend["name"]] == ["backend", "frontend"], "dependencies first"
    assert frontend["dependsOn"] == [{"service": "backend", "condition": "service_healthy"}]

    td = frontend["registerTaskDefinition"]
    [container] = td["containerDefinitions"]
    assert td["family"] == "webshop-frontend" and container["name"] == "frontend"
    assert container["image"] == "example/webapp"
    assert container["portMappings"] == [
        {"containerPort": 8043, "hostPort": 443, "protocol": "tcp"},
        {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
    ]
    service = frontend["createService"]
    assert service["serviceName"] == "webshop-frontend" and service["cluster"] == CLUSTER
    assert service["desiredCount"] == 1
    assert {"key": "com.docker.compose.project", "value": "webshop"} in service["tags"]

    td = backend["registerTaskDefinition"]
    [container] = td["containerDefinitions"]
    assert container["healthCheck"] == {"command": ["CMD", "pg_isready"], "interval": 10, "timeout": 30, "retries": 3}
    assert container["mountPoints"] == [{"sourceVolume": "webshop_db-data", "containerPath": "/etc/data"}]
    [volume] = td["volumes"]
    assert volume["name"] == "webshop_db-data"
    config = volume["dockerVolumeConfiguration"]
    assert (config["scope"], config["autoprovision"], config["driver"], config["driverOpts"]) == (
        "shared", True, "flocker", {"size": "10GiB"})

    assert plan["unsupported"] == [
        "configs", "networks",
        "services.frontend.networks", "services.frontend.configs",
        "services.backend.networks",
        "secrets.server-certificate.external",
        "services.frontend.secrets[0]: 'server-certificate' has no `file:` or `environment:` "
        "(external secrets are not supported)",
    ]
    assert plan["secrets"] == [] and plan["executionRole"] is None

    # -p names the project; -f a file elsewhere.
    done = run_berth("compose", "convert", "-f", str(project_dir / "compose.yaml"), "-p", "Other", cwd=tmp_path)
    assert done.returncode == 0, done
    assert json.loads(done.stdout)["services"][0]["createService"]["serviceName"] == "other-backend"


def test_the_readme_example_converts_with_nothing_left_out():
    example = Path(__file__).resolve().parent.parent / "examples" / "compose" / "compose.yaml"
    done = run_berth("compose", "convert", "-f", str(example), cwd=example.parent)
    assert done.returncode == 0, done
    plan = json.loads(done.stdout)
    assert plan["project"] == "hello" and plan["unsupported"] == []
    assert [s["createService"]["serviceName"] for s in plan["services"]] == ["hello-api", "hello-web"]
    ports = [s["registerTaskDefinition"]["containerDefinitions"][0]["portMappings"][0]["hostPort"] for s in plan["services"]]
    assert ports == [8081, 8080]


def test_a_bad_file_is_an_error_that_names_the_key_and_line(tmp_path: Path):
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n    deploy:\n      replicas: many\n")
    done = run_berth("compose", "convert", cwd=tmp_path)
    assert done.returncode == 1, done
    assert "services.web.deploy.replicas" in done.stderr and "line 5" in done.stderr, done.stderr
    assert done.stdout == ""

    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n    depends_on: [db]\n")
    done = run_berth("compose", "convert", cwd=tmp_path)
    assert done.returncode == 1 and "services.web.depends_on: there is no service 'db'" in done.stderr, done

    done = run_berth("compose", "convert", cwd=tmp_path / "..")
    assert done.returncode == 1 and "no Compose file here" in done.stderr, done


def app(web_port: int, api_text: str) -> str:
    """Two services of busybox httpd: `web` serves a page on a fixed host port and waits for
    `api` to be healthy; `api` serves a file it writes into a named volume, with the secret
    from greeting.txt appended, on a port Docker picks. (Bind mounts need the cluster's and
    agent's allowance: convert covers them.)"""
    return textwrap.dedent(f"""\
        services:
          web:
            image: busybox
            command: sh -c 'mkdir -p /site && echo hello from web > /site/index.html && exec httpd -f -p 80 -h /site'
            ports: ["{web_port}:80"]
            depends_on:
              api: {{condition: service_healthy}}
            environment: {{MODE: demo}}
            labels: {{tier: front}}
            deploy:
              resources: {{limits: {{memory: 32M, cpus: "0.1"}}}}
            stop_grace_period: 2s
            networks: [default]
          api:
            image: busybox
            command: ["sh", "-c", "echo {api_text} > /data/index.html && cat /run/secrets/greeting >> /data/index.html && exec httpd -f -p 8000 -h /data"]
            ports: ["8000"]
            volumes: ["data:/data"]
            secrets: [{{source: greeting_file, target: greeting}}]
            healthcheck:
              test: ["CMD-SHELL", "test -s /data/index.html"]
              interval: 5s
              timeout: 2s
              retries: 2
            restart: always
            stop_grace_period: 2s
        volumes:
          data: {{}}
        secrets:
          greeting_file: {{file: ./greeting.txt}}
        """)


def fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=3) as answer:
        return answer.read().decode()


def served(port: int, text: str) -> bool:
    try:
        return text in fetch(port)
    except OSError:
        return False


def api_ports(up: BerthUp, service: str) -> list[int]:
    """The host ports of the api service's RUNNING tasks' container port 8000."""
    arns = up.ecs.list_tasks(cluster=CLUSTER, serviceName=service, desiredStatus="RUNNING")["taskArns"]
    tasks = up.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
    return [b["hostPort"] for t in tasks if t["lastStatus"] == "RUNNING"
            for c in t["containers"] for b in c.get("networkBindings", []) if b["containerPort"] == 8000]


def services(up: BerthUp, *names: str) -> dict[str, dict]:
    described = up.ecs.describe_services(cluster=CLUSTER, services=list(names))["services"]
    return {s["serviceName"]: s for s in described}


def test_up_runs_two_services_reachable_then_changes_only_what_changed_and_down_removes_them(
        berth_up: BerthUp, unique, tmp_path: Path):
    project = unique("shop")
    web, api = f"{project}-web", f"{project}-api"
    compose = tmp_path / "compose.yaml"
    greeting = secret_value("Greeting")
    (tmp_path / "greeting.txt").write_text(greeting)
    web_port = free_port()
    compose.write_text(app(web_port, "api-one"))
    args = ("compose", "up", "-f", str(compose), "-p", project, "--timeout", "90s")
    try:
        # First up: api (depended on) is created and healthy before web starts.
        done = berth_exit(berth_up, *args)
        assert done.returncode == 0, done
        out = done.stdout
        assert out.index(f"api: creating service {api} with {api}:1") < out.index(f"deployment of {api} completed"), out
        assert out.index(f"deployment of {api} completed") < out.index(f"web: creating service {web} with {web}:1"), out
        assert f"deployment of {web} completed" in out, out
        assert "not supported, ignored: services.web.networks" in done.stderr, done.stderr
        first = services(berth_up, web, api)
        for name in (web, api):
            assert (first[name]["status"], first[name]["runningCount"]) == ("ACTIVE", 1), first[name]
        [api_task] = berth_up.ecs.describe_tasks(
            cluster=CLUSTER, tasks=berth_up.ecs.list_tasks(cluster=CLUSTER, serviceName=api)["taskArns"])["tasks"]
        assert api_task["healthStatus"] == "HEALTHY", api_task
        td = berth_up.ecs.describe_task_definition(taskDefinition=f"{web}:1")["taskDefinition"]
        [container] = td["containerDefinitions"]
        assert container["memory"] == 32 and container["cpu"] == 102, container
        assert container["environment"] == [{"name": "MODE", "value": "demo"}]
        assert container["dockerLabels"]["tier"] == "front"

        # Reachable from here: web on its fixed port, api where Docker put it.
        wait_until(lambda: served(web_port, "hello from web"), 15, f"web on port {web_port}")
        wait_until(lambda: any(served(p, f"api-one\n{greeting}") for p in api_ports(berth_up, api)), 15,
                   "api, with its secret read from /run/secrets, on its host port")
        assert f"secret greeting_file: stored as {project}/greeting_file" in out, out
        secretsmanager = boto3_client(berth_up.endpoint, berth_up.credentials, service="secretsmanager")
        stored = secretsmanager.describe_secret(SecretId=f"{project}/greeting_file")
        api_td = berth_up.ecs.describe_task_definition(taskDefinition=f"{api}:1")["taskDefinition"]
        assert api_td["executionRoleArn"].endswith(f":role/{project}-compose-execution"), api_td
        assert api_td["containerDefinitions"][0]["secrets"] == [{"name": "greeting", "valueFrom": stored["ARN"]}]

        # Second up with no change: nothing registered, no deployment.
        done = berth_exit(berth_up, *args)
        assert done.returncode == 0, done
        assert f"web: unchanged ({web}, {web}:1)" in done.stdout and f"api: unchanged ({api}, {api}:1)" in done.stdout, done.stdout
        assert "deployment of" not in done.stdout, done.stdout
        again = services(berth_up, web, api)
        for name in (web, api):
            assert again[name]["taskDefinition"] == first[name]["taskDefinition"]
            assert [d["id"] for d in again[name]["deployments"]] == [d["id"] for d in first[name]["deployments"]]
        assert berth_up.ecs.list_task_definitions(familyPrefix=api)["taskDefinitionArns"][-1].endswith(f"{api}:1")

        # A change to api rolls api only.
        compose.write_text(app(web_port, "api-two"))
        done = berth_exit(berth_up, *args)
        assert done.returncode == 0, done
        assert f"api: updating service {api} to {api}:2" in done.stdout, done.stdout
        assert f"deployment of {api} completed" in done.stdout and f"web: unchanged ({web}, {web}:1)" in done.stdout, done.stdout
        changed = services(berth_up, web, api)
        assert changed[api]["taskDefinition"].endswith(f"{api}:2")
        assert [d["id"] for d in changed[web]["deployments"]] == [d["id"] for d in first[web]["deployments"]]
        wait_until(lambda: any(served(p, "api-two") for p in api_ports(berth_up, api)), 15, "the new api")
        assert served(web_port, "hello from web")

        # A new secret value is stored and redeploys the service that reads it, only that one.
        new_greeting = secret_value("Greeting")
        (tmp_path / "greeting.txt").write_text(new_greeting)
        done = berth_exit(berth_up, *args)
        assert done.returncode == 0, done
        assert "secret greeting_file: new value stored" in done.stdout, done.stdout
        assert f"api: a secret changed, redeploying {api}" in done.stdout, done.stdout
        assert f"web: unchanged ({web}, {web}:1)" in done.stdout, done.stdout
        assert services(berth_up, api)[api]["taskDefinition"].endswith(f"{api}:2"), "same revision"
        wait_until(lambda: any(served(p, new_greeting) for p in api_ports(berth_up, api)), 15, "the new secret")
        changed = services(berth_up, web, api)

        # A change that cannot run is rolled back: exit 1, and the services after it untouched.
        compose.write_text(app(web_port, "api-three").replace("exec httpd", "exit 3; httpd"))
        done = berth_exit(berth_up, *args)
        assert done.returncode == 1, done
        assert f"deployment of {api} failed and was rolled back" in done.stdout, done.stdout
        assert "stopped at api: the services after it were not changed" in done.stderr, done.stderr
        assert "web:" not in done.stdout, done.stdout
        rolled_back = services(berth_up, api)[api]
        assert [d["taskDefinition"] for d in rolled_back["deployments"] if d["status"] == "PRIMARY"] == [
            changed[api]["taskDefinition"]], rolled_back["deployments"]

        # Down: the services deleted, their task definitions deregistered.
        done = berth_exit(berth_up, "compose", "down", "-p", project)
        assert done.returncode == 0, done
        assert f"project {project} removed" in done.stdout, done.stdout
        gone = services(berth_up, web, api)
        assert {s["status"] for s in gone.values()} == {"INACTIVE"}, gone
        for family in (web, api):
            assert berth_up.ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"] == []
        assert not served(web_port, "hello from web")
        assert f"deleted secret {project}/greeting_file" in done.stdout, done.stdout
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            secretsmanager.describe_secret(SecretId=f"{project}/greeting_file")
        with pytest.raises(ClientError, match="NoSuchEntity"):
            iam(berth_up.server).get_role(RoleName=f"{project}-compose-execution")
        done = berth_exit(berth_up, "compose", "down", "-p", project)
        assert done.returncode == 0 and "has no services" in done.stdout, done
    finally:
        berth_exit(berth_up, "compose", "down", "-p", project)
        # The named volume outlives the project, as with Compose; containers the agent has not
        # removed yet still hold it.
        volume = f"{project}_data"
        holders = docker("ps", "-aq", "--filter", f"volume={volume}", check=False).split()
        if holders:
            docker("rm", "-f", *holders, check=False)
        docker("volume", "rm", "-f", volume, check=False)
        assert volume not in docker("volume", "ls", "-q").split()

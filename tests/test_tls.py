"""TLS as a user meets it: `berth server --tls` makes its own CA in DATA_DIR/tls; boto3 and
the AWS CLI that trust that CA are served over https, clients that do not are refused, and a
`berth agent` given `--ca` registers its instance over https."""

from __future__ import annotations

import http.client
import ssl
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import SSLError

from harness import LABEL_CONTAINER_INSTANCE, REGION, BerthServer, aws_cli, berth_bin, remove_containers


class TlsServer(BerthServer):
    """`berth server --tls`: https on loopback with the server's own CA."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, extra_args=["--tls"])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.data_dir / "tls" / "ca.pem"

    def healthy(self, timeout: float = 2.0) -> bool:
        if not self.ca.exists():
            return False
        try:
            context = ssl.create_default_context(cafile=str(self.ca))
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=context)
            try:
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        except (OSError, http.client.HTTPException, ssl.SSLError):
            return False


def client(server: TlsServer, verify) -> object:
    keys = server.credentials
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id=keys.access_key, aws_secret_access_key=keys.secret_key
    )
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return session.client("ecs", endpoint_url=server.url, verify=verify, config=config)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory):
    server = TlsServer(tmp_path_factory.mktemp("tls") / "data").start()
    try:
        yield server
    finally:
        server.stop()


def test_clients_trusting_the_servers_ca_are_served_over_https(tls_server: TlsServer) -> None:
    ecs = client(tls_server, str(tls_server.ca))
    assert ecs.create_cluster(clusterName="secure")["cluster"]["status"] == "ACTIVE"
    cli = subprocess.run(
        [*aws_cli(), "--endpoint-url", tls_server.url, "--ca-bundle", str(tls_server.ca), "ecs", "list-clusters"],
        capture_output=True,
        text=True,
        env=tls_server.credentials.env(),
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert "cluster/secure" in cli.stdout


def test_a_client_that_does_not_trust_the_ca_and_plain_http_are_refused(tls_server: TlsServer) -> None:
    with pytest.raises(SSLError):
        client(tls_server, True).list_clusters()
    plain = http.client.HTTPConnection("127.0.0.1", tls_server.port, timeout=10)
    try:
        plain.request("GET", "/healthz")
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.getresponse()
    finally:
        plain.close()


def test_an_agent_given_the_ca_registers_over_https(docker_ready: None, tls_server: TlsServer, tmp_path: Path) -> None:
    ecs = client(tls_server, str(tls_server.ca))
    ecs.create_cluster(clusterName="default")
    agent = subprocess.Popen(
        [str(berth_bin()), "agent", "--server", tls_server.url, "--ca", str(tls_server.ca),
         "--cluster", "default", "--data-dir", str(tmp_path / "agent")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=tls_server.credentials.env(),
    )
    instance_id = ""
    try:
        deadline = time.monotonic() + 60
        while not ecs.list_container_instances(cluster="default")["containerInstanceArns"]:
            assert agent.poll() is None, "the agent exited"
            assert time.monotonic() < deadline, "no instance registered over https within 60 s"
            time.sleep(0.2)
        [instance] = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
        instance_id = instance.rsplit("/", 1)[-1]

        # An exec session over TLS: ExecuteCommand over https, the data channel over wss, the
        # agent's relay over https with its --ca.
        ecs.register_task_definition(
            family="tls-exec",
            containerDefinitions=[{"name": "main", "image": "busybox", "memory": 32,
                                   "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}],
        )
        arn = ecs.run_task(cluster="default", taskDefinition="tls-exec", enableExecuteCommand=True)["tasks"][0]["taskArn"]
        deadline = time.monotonic() + 60
        while ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]["lastStatus"] != "RUNNING":
            assert time.monotonic() < deadline, "the exec task did not run within 60 s"
            time.sleep(0.2)
        session = ecs.execute_command(cluster="default", task=arn, container="main", interactive=True, command="sh")
        assert session["session"]["streamUrl"].startswith(f"wss://127.0.0.1:{tls_server.port}/v1/data-channel/")
        done = subprocess.run(
            [str(berth_bin()), "exec", arn, "--endpoint", tls_server.url, "--ca", str(tls_server.ca), "-T",
             "--", "sh", "-c", "echo over-tls; exit 4"],
            env=tls_server.credentials.env(), capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        assert (done.returncode, done.stdout) == (4, b"over-tls\n"), done
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        if instance_id:
            remove_containers(f"{LABEL_CONTAINER_INSTANCE}={instance_id}")


def test_requests_over_tls_meet_aws_secure_transport(tls_server: TlsServer, unique) -> None:
    from iam_helpers import allow, document

    keys = tls_server.credentials
    root = boto3.session.Session(
        region_name=REGION, aws_access_key_id=keys.access_key, aws_secret_access_key=keys.secret_key
    )
    iam = root.client("iam", endpoint_url=tls_server.url, verify=str(tls_server.ca))
    name = unique("secure")
    iam.create_user(UserName=name)
    only_tls = allow("ecs:ListClusters", Condition={"Bool": {"aws:SecureTransport": "true"}})
    iam.put_user_policy(UserName=name, PolicyName="tls", PolicyDocument=document(only_tls))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )
    ecs = session.client("ecs", endpoint_url=tls_server.url, verify=str(tls_server.ca))
    assert "clusterArns" in ecs.list_clusters()

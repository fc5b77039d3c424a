"""The DNS server that answers for Cloud Map's DNS namespaces, asked with `dig` (Debian's
dnsutils, installed by scripts/ensure-test-tools) on the port the harness gives the server
(`--dns-listen`): a namespace, a service with A and SRV records and instances made through the
Cloud Map API with boto3, then A records of the healthy instances with the service's TTL, SRV
records naming each instance with its address in the additional section, the same over TCP,
NXDOMAIN for a name that does not exist, REFUSED outside every namespace, and a deregistered
or unhealthy instance gone from the answers within 2 s."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from harness import Berth, boto3_client, wait_until

# Berth's promise: DNS answers reflect a change within 2 s.
FRESH = 2.0


@pytest.fixture(scope="module")
def discovery(berth: Berth):
    # DiscoverInstances has the host prefix `data-`, which a custom endpoint does not have.
    return boto3_client(berth.endpoint, berth.server.credentials, service="servicediscovery", inject_host_prefix=False)


def dig(berth: Berth, *args: str) -> str:
    """`dig @127.0.0.1 -p DNS_PORT ARGS`'s output."""
    binary = shutil.which("dig")
    assert binary, "dig is missing: run scripts/ensure-test-tools (it installs dnsutils)"
    command = [binary, "@127.0.0.1", "-p", str(berth.server.dns_port), "+time=2", "+tries=2", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
    return done.stdout


def short(berth: Berth, name: str, kind: str, *args: str) -> list[str]:
    """The records `dig +short` prints, sorted."""
    return sorted(line for line in dig(berth, "+short", *args, name, kind).splitlines() if line)


def section(berth: Berth, name: str, kind: str, part: str) -> list[list[str]]:
    """The records of one section (`answer`, `authority`, `additional`), split in fields."""
    out = dig(berth, "+noall", f"+{part}", name, kind)
    return sorted(line.split() for line in out.splitlines() if line and not line.startswith(";"))


def status(berth: Berth, name: str, kind: str = "A") -> str:
    """The answer's status (NOERROR, NXDOMAIN, REFUSED, ...)."""
    for line in dig(berth, "+noall", "+comments", name, kind).splitlines():
        if "status:" in line:
            return line.split("status:")[1].split(",")[0].strip()
    raise AssertionError(f"dig printed no status for {name} {kind}")


def namespace(discovery, name: str) -> str:
    """Creates private DNS namespace `name`; its id."""
    operation = discovery.create_private_dns_namespace(Name=name, Vpc="vpc-berth")["OperationId"]
    return discovery.get_operation(OperationId=operation)["Operation"]["Targets"]["NAMESPACE"]


def register(discovery, service_id: str, instance_id: str, ip: str, port: int) -> None:
    discovery.register_instance(
        ServiceId=service_id,
        InstanceId=instance_id,
        Attributes={"AWS_INSTANCE_IPV4": ip, "AWS_INSTANCE_PORT": str(port)},
    )


def test_dns_answers_a_and_srv_for_the_instances_and_forgets_a_deregistered_one(berth: Berth, discovery, unique):
    ns = f"{unique('dns')}.local"
    ns_id = namespace(discovery, ns)
    # Cloud Map takes A, AAAA, A and AAAA, SRV or CNAME: one service of A records, one of SRV.
    web = discovery.create_service(
        Name="web", NamespaceId=ns_id, DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 30}]}
    )["Service"]
    grpc = discovery.create_service(
        Name="grpc", NamespaceId=ns_id, DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "SRV", "TTL": 45}]}
    )["Service"]
    for service in (web, grpc):
        register(discovery, service["Id"], "one", "10.1.0.1", 8080)
        register(discovery, service["Id"], "two", "10.1.0.2", 8081)
    a_name, srv_name = f"web.{ns}", f"grpc.{ns}"

    wait_until(lambda: short(berth, a_name, "A") == ["10.1.0.1", "10.1.0.2"], FRESH, f"A records of {a_name}")
    assert section(berth, a_name, "A", "answer") == [
        [f"{a_name}.", "30", "IN", "A", "10.1.0.1"],
        [f"{a_name}.", "30", "IN", "A", "10.1.0.2"],
    ]
    assert short(berth, a_name, "A", "+tcp") == ["10.1.0.1", "10.1.0.2"]

    # SRV as Cloud Map writes it: priority 1, weight 1, the port, `{instance}.{service}.{ns}`,
    # whose address comes in the additional section and answers A itself.
    srvs = [f"1 1 8080 one.{srv_name}.", f"1 1 8081 two.{srv_name}."]
    assert short(berth, srv_name, "SRV") == srvs
    assert short(berth, f"_grpc._tcp.{ns}", "SRV") == srvs
    assert section(berth, srv_name, "SRV", "answer")[0][:4] == [f"{srv_name}.", "45", "IN", "SRV"]
    assert section(berth, srv_name, "SRV", "additional") == [
        [f"one.{srv_name}.", "45", "IN", "A", "10.1.0.1"],
        [f"two.{srv_name}.", "45", "IN", "A", "10.1.0.2"],
    ]
    assert short(berth, f"one.{srv_name}", "A") == ["10.1.0.1"]
    assert short(berth, srv_name, "A") == []  # an SRV service has no A records of its own

    for service in (web, grpc):
        discovery.deregister_instance(ServiceId=service["Id"], InstanceId="one")
    wait_until(lambda: short(berth, a_name, "A") == ["10.1.0.2"], FRESH, f"{a_name} without the deregistered instance")
    wait_until(
        lambda: short(berth, srv_name, "SRV") == [f"1 1 8081 two.{srv_name}."],
        FRESH,
        f"{srv_name} without the deregistered instance",
    )
    assert status(berth, f"one.{srv_name}") == "NXDOMAIN"


def test_dns_says_what_does_not_exist_and_refuses_what_is_not_its_own(berth: Berth, discovery, unique):
    ns = f"{unique('dns')}.local"
    ns_id = namespace(discovery, ns)
    discovery.create_service(
        Name="api", NamespaceId=ns_id, DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 10}]}
    )
    assert status(berth, f"nope.{ns}") == "NXDOMAIN"
    assert status(berth, f"api.{ns}") == "NOERROR"  # the service, with no instance yet
    assert short(berth, f"api.{ns}", "A") == []
    assert status(berth, f"api.{ns}", "TXT") == "NOERROR"
    assert status(berth, "example.com") == "REFUSED"
    soa = short(berth, ns, "SOA")
    assert len(soa) == 1 and soa[0].split()[-1] == "15", soa  # Cloud Map's default SOA TTL


def test_dns_leaves_out_an_instance_reported_unhealthy(berth: Berth, discovery, unique):
    ns = f"{unique('dns')}.local"
    ns_id = namespace(discovery, ns)
    service = discovery.create_service(
        Name="db",
        NamespaceId=ns_id,
        DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 5}]},
        HealthCheckCustomConfig={"FailureThreshold": 1},
    )["Service"]
    register(discovery, service["Id"], "primary", "10.2.0.1", 5432)
    register(discovery, service["Id"], "replica", "10.2.0.2", 5432)
    name = f"db.{ns}"
    wait_until(lambda: short(berth, name, "A") == ["10.2.0.1", "10.2.0.2"], FRESH, f"A records of {name}")

    discovery.update_instance_custom_health_status(ServiceId=service["Id"], InstanceId="replica", Status="UNHEALTHY")
    wait_until(lambda: short(berth, name, "A") == ["10.2.0.1"], FRESH, f"{name} without the unhealthy instance")

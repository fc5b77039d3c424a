"""AWS Cloud Map on Berth's endpoint: namespaces of both kinds (private DNS and HTTP),
services, instances, discovery with attribute and health filters, operations, tags and the
errors in the model's own names, from boto3 as it comes (botocore 1.44 ranks `json` first, so it
speaks AWS JSON 1.1 through the recording proxy, whose conformance check reads its answers),
from boto3 made to speak smithy-rpc-v2-cbor (each answer checked by botocore's own CBOR parser
against the model), and from the AWS CLI (/usr/bin/aws, v2, which speaks JSON 1.1)."""

from __future__ import annotations

import copy
import gzip
import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import cbor_check
import harness
from harness import REGION, BerthUp, boto3_client
from iam_helpers import aws, cli_error

ARN_PREFIX = "arn:aws:servicediscovery:us-east-1:000000000000:"


@pytest.fixture(scope="module")
def sd(berth_up: BerthUp):
    """Cloud Map in AWS JSON 1.1 through the recording proxy. botocore prefixes the host of
    DiscoverInstances with `data-` (the model's hostPrefix), which no loopback endpoint
    answers: inject_host_prefix=False keeps every call on the endpoint given."""
    return boto3_client(berth_up.endpoint, berth_up.server.credentials, service="servicediscovery", inject_host_prefix=False)


class Wire:
    """Records the raw answers of a client: operation -> (status, body), the last of each."""

    def __init__(self, client) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        client.meta.events.register("before-parse.servicediscovery.*", self._record)

    def _record(self, operation_model, response_dict, **_: Any) -> None:
        self.answers[operation_model.name] = (response_dict["status_code"], response_dict["body"])

    def body(self, operation: str) -> bytes:
        return self.answers[operation][1]


@pytest.fixture(scope="module")
def sd_cbor(berth_up: BerthUp, tmp_path_factory: pytest.TempPathFactory):
    """Cloud Map in smithy-rpc-v2-cbor (the model's first protocol, made its only one), straight
    to the server (the proxy's conformance check reads no CBOR), and the record of its answers."""
    source = Path(botocore.__file__).parent / "data" / "servicediscovery" / "2017-03-14" / "service-2.json.gz"
    model = copy.deepcopy(json.loads(gzip.decompress(source.read_bytes())))
    model["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    data = tmp_path_factory.mktemp("models")
    target = data / "servicediscovery" / "2017-03-14"
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(data))
    credentials = berth_up.server.credentials
    harness.assert_loopback(berth_up.server.url)
    boto = boto3.session.Session(
        botocore_session=session,
        region_name=REGION,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
    )
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, inject_host_prefix=False)
    client = boto.client("servicediscovery", endpoint_url=berth_up.server.url, config=config)
    assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    return client, Wire(client)


def code_of(error: pytest.ExceptionInfo) -> str:
    return error.value.response["Error"]["Code"]


def namespace_of(client, operation_id: str) -> str:
    operation = client.get_operation(OperationId=operation_id)["Operation"]
    assert operation["Status"] == "SUCCESS"
    return operation["Targets"]["NAMESPACE"]


def test_a_private_dns_namespace_its_services_and_instances_from_boto3(sd, unique):
    name = f"{unique('corp')}.local"
    op = sd.create_private_dns_namespace(
        Name=name, Vpc="vpc-berth", CreatorRequestId=unique("req"),
        Properties={"DnsProperties": {"SOA": {"TTL": 60}}}, Tags=[{"Key": "team", "Value": "core"}],
    )["OperationId"]
    ns_id = namespace_of(sd, op)
    assert re.fullmatch(r"ns-[a-z0-9]{16}", ns_id)
    namespace = sd.get_namespace(Id=ns_id)["Namespace"]
    assert namespace["Arn"] == f"{ARN_PREFIX}namespace/{ns_id}" and namespace["Type"] == "DNS_PRIVATE"
    assert namespace["Properties"]["DnsProperties"]["SOA"]["TTL"] == 60
    listed = sd.list_namespaces(Filters=[{"Name": "NAME", "Values": [name], "Condition": "EQ"}])["Namespaces"]
    assert [n["Id"] for n in listed] == [ns_id]

    service = sd.create_service(
        Name="web", NamespaceId=ns_id,
        DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 10}]},
        HealthCheckCustomConfig={"FailureThreshold": 1},
    )["Service"]
    assert re.fullmatch(r"srv-[a-z0-9]{16}", service["Id"]) and service["Type"] == "DNS_HTTP"
    with pytest.raises(ClientError) as missing_ip:
        sd.register_instance(ServiceId=service["Id"], InstanceId="web-1", Attributes={"AWS_INSTANCE_PORT": "80"})
    assert code_of(missing_ip) == "InvalidInput"
    for i, zone in [(1, "a"), (2, "b"), (3, "b")]:
        op = sd.register_instance(
            ServiceId=service["Id"], InstanceId=f"web-{i}",
            Attributes={"AWS_INSTANCE_IPV4": f"10.1.0.{i}", "AWS_INSTANCE_PORT": "80", "zone": zone},
        )["OperationId"]
    assert sd.get_operation(OperationId=op)["Operation"]["Type"] == "REGISTER_INSTANCE"
    assert sd.get_instance(ServiceId=service["Id"], InstanceId="web-2")["Instance"]["Attributes"]["zone"] == "b"
    assert len(sd.list_instances(ServiceId=service["Id"])["Instances"]) == 3

    revision = sd.discover_instances_revision(NamespaceName=name, ServiceName="web")["InstancesRevision"]
    sd.update_instance_custom_health_status(ServiceId=service["Id"], InstanceId="web-3", Status="UNHEALTHY")
    assert sd.discover_instances_revision(NamespaceName=name, ServiceName="web")["InstancesRevision"] > revision
    healthy = sd.discover_instances(NamespaceName=name, ServiceName="web", QueryParameters={"zone": "b"})["Instances"]
    assert [i["InstanceId"] for i in healthy] == ["web-2"] and healthy[0]["HealthStatus"] == "HEALTHY"
    everything = sd.discover_instances(NamespaceName=name, ServiceName="web", HealthStatus="ALL")["Instances"]
    assert {i["InstanceId"]: i["HealthStatus"] for i in everything} == {"web-1": "HEALTHY", "web-2": "HEALTHY", "web-3": "UNHEALTHY"}
    health = sd.get_instances_health_status(ServiceId=service["Id"])["Status"]
    assert health == {"web-1": "HEALTHY", "web-2": "HEALTHY", "web-3": "UNHEALTHY"}

    # Nothing is deleted while something depends on it.
    with pytest.raises(ClientError) as in_use:
        sd.delete_namespace(Id=ns_id)
    assert code_of(in_use) == "ResourceInUse" and in_use.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(ClientError) as in_use:
        sd.delete_service(Id=service["Id"])
    assert code_of(in_use) == "ResourceInUse"
    for i in (1, 2, 3):
        sd.deregister_instance(ServiceId=service["Id"], InstanceId=f"web-{i}")
    with pytest.raises(ClientError) as gone:
        sd.get_instance(ServiceId=service["Id"], InstanceId="web-1")
    assert code_of(gone) == "InstanceNotFound" and gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    deregistered = sd.list_operations(Filters=[
        {"Name": "SERVICE_ID", "Values": [service["Id"]]}, {"Name": "TYPE", "Values": ["DEREGISTER_INSTANCE"]}])
    assert len(deregistered["Operations"]) == 3
    sd.delete_service(Id=service["Id"])
    deleted = sd.delete_namespace(Id=ns_id)["OperationId"]
    assert sd.get_operation(OperationId=deleted)["Operation"]["Type"] == "DELETE_NAMESPACE"
    with pytest.raises(ClientError) as gone:
        sd.get_namespace(Id=ns_id)
    assert code_of(gone) == "NamespaceNotFound"


def test_an_http_namespace_tags_attributes_and_the_errors_from_boto3(sd, unique):
    name = unique("apps")
    ns_id = namespace_of(sd, sd.create_http_namespace(Name=name, Description="apps")["OperationId"])
    with pytest.raises(ClientError) as taken:
        sd.create_http_namespace(Name=name)
    assert code_of(taken) == "NamespaceAlreadyExists"
    with pytest.raises(ClientError) as public:
        sd.create_public_dns_namespace(Name="example.com")
    assert code_of(public) == "InvalidInput" and "public DNS" in public.value.response["Error"]["Message"]
    sd.update_http_namespace(Id=ns_id, Namespace={"Description": "renamed"})
    assert sd.get_namespace(Id=ns_id)["Namespace"]["Description"] == "renamed"
    assert ns_id in [n["Id"] for n in sd.list_namespaces(Filters=[{"Name": "TYPE", "Values": ["HTTP"]}])["Namespaces"]]

    with pytest.raises(ClientError) as no_dns:
        sd.create_service(Name="jobs", NamespaceId=ns_id, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]})
    assert code_of(no_dns) == "InvalidInput"
    service = sd.create_service(Name="jobs", NamespaceId=ns_id, Tags=[{"Key": "tier", "Value": "1"}])["Service"]
    assert service["Type"] == "HTTP"
    with pytest.raises(ClientError) as twice:
        sd.create_service(Name="jobs", NamespaceId=ns_id)
    assert code_of(twice) == "ServiceAlreadyExists"
    assert [s["Id"] for s in sd.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [ns_id]}])["Services"]] == [service["Id"]]

    namespace_arn = f"{ARN_PREFIX}namespace/{ns_id}"
    sd.tag_resource(ResourceARN=namespace_arn, Tags=[{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "a"}])
    sd.untag_resource(ResourceARN=namespace_arn, TagKeys=["team"])
    assert sd.list_tags_for_resource(ResourceARN=namespace_arn)["Tags"] == [{"Key": "env", "Value": "dev"}]
    assert sd.list_tags_for_resource(ResourceARN=service["Arn"])["Tags"] == [{"Key": "tier", "Value": "1"}]
    with pytest.raises(ClientError) as unknown:
        sd.list_tags_for_resource(ResourceARN=f"{ARN_PREFIX}service/srv-aaaaaaaaaaaaaaaa")
    assert code_of(unknown) == "ResourceNotFoundException"

    sd.update_service_attributes(ServiceId=service["Id"], Attributes={"owner": "ops"})
    assert sd.get_service_attributes(ServiceId=service["Id"])["ServiceAttributes"]["Attributes"] == {"owner": "ops"}
    sd.register_instance(ServiceId=service["Id"], InstanceId="job-1", Attributes={"url": "http://10.0.0.1:8080"})
    found = sd.discover_instances(NamespaceName=name, ServiceName="jobs")["Instances"]
    assert [(i["InstanceId"], i["HealthStatus"]) for i in found] == [("job-1", "UNKNOWN")]
    with pytest.raises(ClientError) as no_custom:
        sd.update_instance_custom_health_status(ServiceId=service["Id"], InstanceId="job-1", Status="UNHEALTHY")
    assert code_of(no_custom) == "CustomHealthNotFound"
    with pytest.raises(ClientError) as no_ns:
        sd.discover_instances(NamespaceName=unique("none"), ServiceName="jobs")
    assert code_of(no_ns) == "NamespaceNotFound"
    with pytest.raises(ClientError) as no_op:
        sd.get_operation(OperationId="nope")
    assert code_of(no_op) == "OperationNotFound"
    sd.deregister_instance(ServiceId=service["Id"], InstanceId="job-1")
    sd.delete_service(Id=service["Arn"])
    sd.delete_namespace(Id=namespace_arn)


def test_a_cbor_client_gets_answers_that_fit_the_model(sd_cbor, unique):
    client, wire = sd_cbor
    name = unique("cbor")
    op = client.create_http_namespace(Name=name)["OperationId"]
    cbor_check.check("servicediscovery", "CreateHttpNamespace", wire.body("CreateHttpNamespace"))
    operation = client.get_operation(OperationId=op)["Operation"]
    cbor_check.check("servicediscovery", "GetOperation", wire.body("GetOperation"))
    ns_id = operation["Targets"]["NAMESPACE"]
    namespace = client.get_namespace(Id=ns_id)["Namespace"]
    raw = cbor_check.check("servicediscovery", "GetNamespace", wire.body("GetNamespace"))
    assert hasattr(raw["Namespace"]["CreateDate"], "year"), "CreateDate must be a tagged time"
    assert namespace["Name"] == name
    service = client.create_service(Name="api", NamespaceId=ns_id, HealthCheckCustomConfig={"FailureThreshold": 1})["Service"]
    cbor_check.check("servicediscovery", "CreateService", wire.body("CreateService"))
    client.register_instance(ServiceId=service["Id"], InstanceId="api-1", Attributes={"AWS_INSTANCE_IPV4": "10.2.0.1"})
    found = client.discover_instances(NamespaceName=name, ServiceName="api", HealthStatus="HEALTHY_OR_ELSE_ALL")
    cbor_check.check("servicediscovery", "DiscoverInstances", wire.body("DiscoverInstances"))
    assert [i["InstanceId"] for i in found["Instances"]] == ["api-1"]
    for operation_name, call in [
        ("ListNamespaces", lambda: client.list_namespaces()),
        ("ListServices", lambda: client.list_services()),
        ("ListInstances", lambda: client.list_instances(ServiceId=service["Id"])),
        ("ListOperations", lambda: client.list_operations(MaxResults=5)),
        ("GetInstancesHealthStatus", lambda: client.get_instances_health_status(ServiceId=service["Id"])),
        ("ListTagsForResource", lambda: client.list_tags_for_resource(ResourceARN=service["Arn"])),
    ]:
        call()
        cbor_check.check("servicediscovery", operation_name, wire.body(operation_name))
    with pytest.raises(ClientError) as gone:
        client.get_service(Id="srv-aaaaaaaaaaaaaaaa")
    assert code_of(gone) == "ServiceNotFound" and gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert cbor_check.decode(wire.body("GetService"))["__type"] == "ServiceNotFound"
    client.deregister_instance(ServiceId=service["Id"], InstanceId="api-1")
    client.delete_service(Id=service["Id"])
    client.delete_namespace(Id=ns_id)


def test_the_aws_cli_speaks_json_to_cloud_map(berth_up: BerthUp, unique, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The CLI v2 at /usr/bin/aws carries a model whose protocol is json (1.1); the venv's CLI v1
    # runs botocore 1.44, which also picks json. Prefer the v2 binary when it is there.
    if os.path.exists("/usr/bin/aws"):
        monkeypatch.setenv("BERTH_AWS_CLI", "/usr/bin/aws")
    server, credentials = berth_up.server, berth_up.server.credentials
    name = unique("cli")
    created = aws(server, credentials, tmp_path, "servicediscovery", "create-http-namespace", "--name", name)
    assert created.returncode == 0, created.stderr
    op = json.loads(created.stdout)["OperationId"]
    got = aws(server, credentials, tmp_path, "servicediscovery", "get-operation", "--operation-id", op)
    assert got.returncode == 0, got.stderr
    ns_id = json.loads(got.stdout)["Operation"]["Targets"]["NAMESPACE"]
    listed = aws(server, credentials, tmp_path, "servicediscovery", "list-namespaces",
                 "--filters", "Name=TYPE,Values=HTTP,Condition=EQ")
    assert listed.returncode == 0, listed.stderr
    assert ns_id in [n["Id"] for n in json.loads(listed.stdout)["Namespaces"]]
    service = aws(server, credentials, tmp_path, "servicediscovery", "create-service", "--name", "web", "--namespace-id", ns_id)
    assert service.returncode == 0, service.stderr
    service_id = json.loads(service.stdout)["Service"]["Id"]
    registered = aws(server, credentials, tmp_path, "servicediscovery", "register-instance", "--service-id", service_id,
                     "--instance-id", "w-1", "--attributes", "AWS_INSTANCE_IPV4=10.3.0.1,color=blue")
    assert registered.returncode == 0, registered.stderr
    instances = aws(server, credentials, tmp_path, "servicediscovery", "list-instances", "--service-id", service_id)
    assert json.loads(instances.stdout)["Instances"][0]["Attributes"]["color"] == "blue"
    missing = aws(server, credentials, tmp_path, "servicediscovery", "get-namespace", "--id", "ns-aaaaaaaaaaaaaaaa")
    assert cli_error(missing) == "NamespaceNotFound"
    in_use = aws(server, credentials, tmp_path, "servicediscovery", "delete-service", "--id", service_id)
    assert cli_error(in_use) == "ResourceInUse"
    for args in (["deregister-instance", "--service-id", service_id, "--instance-id", "w-1"],
                 ["delete-service", "--id", service_id], ["delete-namespace", "--id", ns_id]):
        done = aws(server, credentials, tmp_path, "servicediscovery", *args)
        assert done.returncode == 0, done.stderr

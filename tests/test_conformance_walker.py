"""Unit tests of the conformance walker itself: it must catch what it is there to catch."""

import json

from conformance import Violation, check_exchanges, check_response, ecs_model


def body(value) -> bytes:
    return json.dumps(value).encode()


CLUSTER = {
    "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/demo",
    "clusterName": "demo",
    "status": "ACTIVE",
    "registeredContainerInstancesCount": 0,
    "runningTasksCount": 0,
    "pendingTasksCount": 0,
    "activeServicesCount": 0,
    "statistics": [{"name": "runningEC2TasksCount", "value": "0"}],
    "tags": [{"key": "team", "value": "a"}],
    "settings": [{"name": "containerInsights", "value": "disabled"}],
}


def problems(operation, status, value) -> list[str]:
    return [str(v) for v in check_response(operation, status, body(value))]


def test_a_well_formed_describe_clusters_response_passes():
    assert problems("DescribeClusters", 200, {"clusters": [CLUSTER], "failures": [{"arn": "x", "reason": "MISSING"}]}) == []


def test_an_unknown_member_is_caught_with_its_path():
    found = problems("DescribeClusters", 200, {"clusters": [{**CLUSTER, "clusterColour": "red"}]})
    assert len(found) == 1
    assert "clusters[0].clusterColour" in found[0] and "not in shape Cluster" in found[0]


def test_an_unknown_top_level_member_is_caught():
    assert len(problems("ListClusters", 200, {"clusterArns": [], "NextToken": "x"})) == 1


def test_a_string_where_an_integer_belongs_is_caught():
    found = problems("DescribeClusters", 200, {"clusters": [{**CLUSTER, "runningTasksCount": "0"}]})
    assert len(found) == 1 and "runningTasksCount" in found[0] and "integer" in found[0]


def test_a_boolean_is_not_an_integer_and_an_integer_is_not_a_boolean():
    assert problems("DescribeClusters", 200, {"clusters": [{**CLUSTER, "pendingTasksCount": True}]})
    instance = {"containerInstanceArn": "arn:x", "agentConnected": 1}
    assert problems("DescribeContainerInstances", 200, {"containerInstances": [instance]})


def test_an_integer_outside_32_bits_is_caught_but_a_long_accepts_it():
    assert problems("DescribeClusters", 200, {"clusters": [{**CLUSTER, "runningTasksCount": 2**31}]})
    resource = {"name": "MEMORY", "type": "LONG", "longValue": 2**40}
    instance = {"containerInstanceArn": "arn:x", "registeredResources": [resource]}
    assert problems("DescribeContainerInstances", 200, {"containerInstances": [instance]}) == []


def test_wrong_container_types_are_caught_for_lists_structures_and_maps():
    assert problems("ListClusters", 200, {"clusterArns": "arn:x"})
    assert problems("DescribeClusters", 200, {"clusters": [["not", "an", "object"]]})
    definition = {"family": "web", "containerDefinitions": [{"name": "web", "dockerLabels": ["a"]}]}
    assert problems("DescribeTaskDefinition", 200, {"taskDefinition": definition})
    good = {"family": "web", "containerDefinitions": [{"name": "web", "dockerLabels": {"a": "b"}}]}
    assert problems("DescribeTaskDefinition", 200, {"taskDefinition": good}) == []
    bad_value = {"family": "web", "containerDefinitions": [{"name": "web", "dockerLabels": {"a": 1}}]}
    assert problems("DescribeTaskDefinition", 200, {"taskDefinition": bad_value})


def test_timestamps_must_be_numbers_and_enums_must_hold_model_values():
    good = {"family": "web", "revision": 1, "status": "ACTIVE", "registeredAt": 1700000000.123}
    assert problems("DescribeTaskDefinition", 200, {"taskDefinition": good}) == []
    as_text = {**good, "registeredAt": "2024-01-01T00:00:00Z"}
    assert problems("DescribeTaskDefinition", 200, {"taskDefinition": as_text})
    bad_enum = {**good, "status": "Active"}
    found = problems("DescribeTaskDefinition", 200, {"taskDefinition": bad_enum})
    assert len(found) == 1 and "enum" in found[0]


def test_null_values_are_caught():
    assert problems("ListClusters", 200, {"clusterArns": [], "nextToken": None})


def test_doubles_accept_integers_and_fractions_but_not_strings():
    resource = {"name": "CPU", "type": "DOUBLE", "doubleValue": 1}
    ok = {"containerInstances": [{"registeredResources": [resource, {**resource, "doubleValue": 0.5}]}]}
    assert problems("DescribeContainerInstances", 200, ok) == []
    bad = {"containerInstances": [{"registeredResources": [{**resource, "doubleValue": "1"}]}]}
    assert problems("DescribeContainerInstances", 200, bad)


def test_error_bodies_need_a_known_exception_name():
    assert problems("DeleteCluster", 400, {"__type": "ClusterNotFoundException", "message": "Cluster not found."}) == []
    assert problems("DeleteCluster", 400, {"__type": "com.amazonaws.ecs#ClientException", "message": "x"}) == []
    assert problems("DeleteCluster", 400, {"__type": "NoSuchThingException", "message": "x"})
    assert problems("DeleteCluster", 400, {"message": "no type"})
    assert problems("DeleteCluster", 400, {"__type": "ClientException", "message": 5})
    assert problems("DeleteCluster", 400, {"__type": "ClientException", "message": "x", "hint": "y"})


def test_protocol_errors_are_accepted_without_an_operation():
    assert problems(None, 400, {"__type": "MissingAction", "message": "x"}) == []
    assert problems("Bogus", 400, {"__type": "UnknownOperationException", "message": "x"}) == []
    assert problems("CreateCluster", 400, {"__type": "SerializationException", "message": "x"}) == []
    assert problems(None, 400, {"__type": "SerializationException", "extra": 1})


def test_non_json_bodies_and_successes_without_an_operation_are_caught():
    assert check_response("ListClusters", 200, b"<html>")
    assert check_response(None, 405, b"")
    assert check_response("NotAnEcsOperation", 200, b"{}")
    assert check_response("ListClusters", 200, b"") == []


def test_exchanges_are_counted_and_proxy_failures_reported():
    class Fake:
        def __init__(self, operation, status, payload, proxy_error=None):
            self.operation, self.status, self.response_body = operation, status, body(payload)
            self.proxy_error, self.test = proxy_error, "t"

    checked, violations = check_exchanges(
        [
            Fake("ListClusters", 200, {"clusterArns": []}),
            Fake("ListClusters", 200, {"clusterArns": [], "oops": 1}),
            Fake("ListClusters", 502, {}, proxy_error="no response"),
        ]
    )
    assert checked == 3
    assert [type(v) for _, v in violations] == [Violation, Violation]


def test_the_model_is_the_installed_botocore_one():
    model = ecs_model()
    assert model.service_name == "ecs"
    assert "RegisterTaskDefinition" in model.operation_names

"""A corpus of malformed requests sent raw over HTTP (http.client, through the recording proxy).

Every request is correctly SigV4-signed with the server's keys over exactly the bytes sent: the
server checks the signature before it parses, so each must reach the parser and be refused
there, never by authentication. Every request must get a 4xx with a JSON body holding a
string `__type` and a string `message`; none may get a 5xx or no answer. Afterwards the server must still answer /healthz, and what the
corpus could have written (clusters, task definitions, instances, attributes, tags, account
settings) must be exactly as before: nothing half-written."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import pytest

from conformance import AUTH_ERRORS, ecs_model, normalise_error_type
from harness import CONTENT_TYPE, TARGET_PREFIX, Berth
from helpers import WEB, cluster_arn

CLUSTER = "corpus"
FAMILY = "corpus-td"
SEED_ATTRIBUTE = "corpus-seed"
MIB = 1024 * 1024


@dataclass
class Case:
    """One malformed request."""

    name: str
    body: bytes
    target: Optional[str | bytes] = None
    content_type: Optional[str] = CONTENT_TYPE
    method: str = "POST"
    path: str = "/"

    @property
    def signable(self) -> bool:
        """Whether SigV4 can sign it at all: a header of bytes that are not UTF-8 has no
        canonical text, so such a request is refused by authentication, rightly."""
        if isinstance(self.target, bytes):
            try:
                self.target.decode("utf-8")
            except UnicodeDecodeError:
                return False
        return True


@dataclass
class Corpus:
    """The seeded world the corpus aims at, and the tally of what was sent."""

    berth: Berth
    instance_arn: str
    before: dict
    sent: list = field(default_factory=list)


def op(name: str) -> str:
    return TARGET_PREFIX + name


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


# ---------------------------------------------------------------------------------------------
# Seeding and the state the corpus must not change
# ---------------------------------------------------------------------------------------------


def state(berth: Berth, instance_arn: str) -> dict:
    """Everything the corpus could have written, read back through the API."""
    reads = {
        "clusters": ("ListClusters", {}),
        "corpus cluster": (
            "DescribeClusters",
            {"clusters": [CLUSTER, "corpus-new"], "include": ["SETTINGS", "TAGS", "CONFIGURATIONS", "STATISTICS"]},
        ),
        "families": ("ListTaskDefinitionFamilies", {}),
        "active definitions": ("ListTaskDefinitions", {"status": "ACTIVE"}),
        "inactive definitions": ("ListTaskDefinitions", {"status": "INACTIVE"}),
        "seeded definition": ("DescribeTaskDefinition", {"taskDefinition": f"{FAMILY}:1", "include": ["TAGS"]}),
        "instances": ("ListContainerInstances", {"cluster": CLUSTER}),
        "draining instances": ("ListContainerInstances", {"cluster": CLUSTER, "status": "DRAINING"}),
        "seeded instance": ("DescribeContainerInstances", {"cluster": CLUSTER, "containerInstances": [instance_arn]}),
        "attributes": ("ListAttributes", {"cluster": CLUSTER, "targetType": "container-instance"}),
        "cluster tags": ("ListTagsForResource", {"resourceArn": cluster_arn(CLUSTER)}),
        "caller settings": ("ListAccountSettings", {"effectiveSettings": True}),
        "account settings": ("ListAccountSettings", {"principalArn": "arn:aws:iam::000000000000:root"}),
    }
    out = {}
    for label, (operation, payload) in reads.items():
        response = berth.call(operation, payload)
        try:
            out[label] = (response.status, json.loads(response.body))
        except ValueError:
            out[label] = (response.status, response.body)
    return out


@pytest.fixture(scope="module")
def corpus(berth: Berth) -> Iterator[Corpus]:
    ecs = berth.ecs
    ecs.create_cluster(clusterName=CLUSTER, tags=[{"key": "seed", "value": "1"}])
    # Best effort: the corpus must run (and fail on 5xx) even while these handlers are missing.
    instance_arn = f"arn:aws:ecs:us-east-1:000000000000:container-instance/{CLUSTER}/0123456789abcdef0123456789abcdef"
    for seed in (
        lambda: ecs.register_task_definition(family=FAMILY, containerDefinitions=WEB),
        lambda: ecs.put_account_setting(name="awsvpcTrunking", value="enabled"),
    ):
        try:
            seed()
        except Exception:  # noqa: BLE001 - the state comparison covers whatever exists
            pass
    try:
        instance_arn = ecs.register_container_instance(cluster=CLUSTER)["containerInstance"]["containerInstanceArn"]
        ecs.put_attributes(cluster=CLUSTER, attributes=[{"name": SEED_ATTRIBUTE, "value": "x", "targetId": instance_arn}])
    except Exception:  # noqa: BLE001
        pass
    yield Corpus(berth=berth, instance_arn=instance_arn, before=state(berth, instance_arn))


def send_all(corpus: Corpus, cases: list[Case]) -> None:
    """Sends every case; fails listing each response that is not a 4xx with __type and
    message, and if the server stopped answering."""
    problems = []
    for case in cases:
        corpus.sent.append(case.name)
        try:
            response = corpus.berth.raw(
                body=case.body,
                target=case.target,
                content_type=case.content_type,
                method=case.method,
                path=case.path,
            )
        except Exception as e:  # noqa: BLE001 - any transport failure is a finding
            problems.append(f"{case.name}: no HTTP response ({type(e).__name__}: {e})")
            continue
        problem = judge(response.status, response.body, signed=case.signable)
        if problem:
            problems.append(f"{case.name}: {problem}")
    assert corpus.berth.server.alive(), f"the server died:\n{corpus.berth.server.log_tail()}"
    assert corpus.berth.server.healthy(), "the server no longer answers /healthz"
    assert not problems, f"{len(problems)} of {len(cases)} malformed requests were mishandled:\n" + "\n".join(
        problems[:80]
    )


def judge(status: int, body: bytes, signed: bool = True) -> Optional[str]:
    if status >= 500:
        return f"HTTP {status} (a server fault) {body[:200]!r}"
    if not 400 <= status < 500:
        return f"HTTP {status}, expected a 4xx: {body[:200]!r}"
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"HTTP {status} with a body that is not JSON: {body[:200]!r}"
    if not isinstance(parsed, dict):
        return f"HTTP {status} with a JSON body that is not an object: {body[:200]!r}"
    if not isinstance(parsed.get("__type"), str) or not parsed["__type"]:
        return f"HTTP {status} without a __type: {body[:200]!r}"
    if not isinstance(parsed.get("message"), str) or not parsed["message"]:
        return f"HTTP {status} {parsed['__type']} without a message: {body[:200]!r}"
    if signed and normalise_error_type(parsed["__type"]) in AUTH_ERRORS:
        return f"HTTP {status}: a correctly signed request was refused by authentication: {body[:300]!r}"
    return None


# ---------------------------------------------------------------------------------------------
# Generated from the botocore model: wrong types and missing required members
# ---------------------------------------------------------------------------------------------

OPERATIONS = [
    "CreateCluster",
    "DescribeClusters",
    "ListClusters",
    "UpdateCluster",
    "UpdateClusterSettings",
    "DeleteCluster",
    "RegisterTaskDefinition",
    "DescribeTaskDefinition",
    "ListTaskDefinitions",
    "ListTaskDefinitionFamilies",
    "DeregisterTaskDefinition",
    "DeleteTaskDefinitions",
    "RegisterContainerInstance",
    "DeregisterContainerInstance",
    "DescribeContainerInstances",
    "ListContainerInstances",
    "UpdateContainerInstancesState",
    "PutAttributes",
    "DeleteAttributes",
    "ListAttributes",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "PutAccountSetting",
    "PutAccountSettingDefault",
    "ListAccountSettings",
    "DeleteAccountSetting",
]


def baselines(instance_arn: str) -> dict[str, dict]:
    """A well-formed input per operation. Never sent as is: each case breaks one thing."""
    insights = [{"name": "containerInsights", "value": "enabled"}]
    return {
        "CreateCluster": {"clusterName": "corpus-new"},
        "DescribeClusters": {"clusters": [CLUSTER]},
        "ListClusters": {},
        "UpdateCluster": {"cluster": CLUSTER},
        "UpdateClusterSettings": {"cluster": CLUSTER, "settings": insights},
        "DeleteCluster": {"cluster": CLUSTER},
        "RegisterTaskDefinition": {"family": FAMILY, "containerDefinitions": copy.deepcopy(WEB)},
        "DescribeTaskDefinition": {"taskDefinition": FAMILY},
        "ListTaskDefinitions": {},
        "ListTaskDefinitionFamilies": {},
        "DeregisterTaskDefinition": {"taskDefinition": f"{FAMILY}:1"},
        "DeleteTaskDefinitions": {"taskDefinitions": [f"{FAMILY}:1"]},
        "RegisterContainerInstance": {"cluster": CLUSTER},
        "DeregisterContainerInstance": {"cluster": CLUSTER, "containerInstance": instance_arn},
        "DescribeContainerInstances": {"cluster": CLUSTER, "containerInstances": [instance_arn]},
        "ListContainerInstances": {"cluster": CLUSTER},
        "UpdateContainerInstancesState": {
            "cluster": CLUSTER,
            "containerInstances": [instance_arn],
            "status": "DRAINING",
        },
        "PutAttributes": {"cluster": CLUSTER, "attributes": [{"name": "corpus-new", "value": "x", "targetId": instance_arn}]},
        "DeleteAttributes": {"cluster": CLUSTER, "attributes": [{"name": SEED_ATTRIBUTE, "targetId": instance_arn}]},
        "ListAttributes": {"cluster": CLUSTER, "targetType": "container-instance"},
        "TagResource": {"resourceArn": cluster_arn(CLUSTER), "tags": [{"key": "corpus-new", "value": "x"}]},
        "UntagResource": {"resourceArn": cluster_arn(CLUSTER), "tagKeys": ["seed"]},
        "ListTagsForResource": {"resourceArn": cluster_arn(CLUSTER)},
        "PutAccountSetting": {"name": "containerInsights", "value": "enabled"},
        "PutAccountSettingDefault": {"name": "containerInsights", "value": "enabled"},
        "ListAccountSettings": {},
        "DeleteAccountSetting": {"name": "awsvpcTrunking"},
    }


def wrong_values(shape: Any) -> list[tuple[str, Any]]:
    """Values of the wrong JSON type for `shape`, each with a label; for containers, also a
    container holding a wrong-typed element."""
    kind = shape.type_name
    if kind in ("string", "blob"):
        return [("number for string", 12345), ("array for string", ["x"])]
    if kind in ("integer", "long"):
        return [("string for integer", "7"), ("fraction for integer", 1.5)]
    if kind == "boolean":
        return [("string for boolean", "true"), ("number for boolean", 0)]
    if kind in ("double", "float", "timestamp"):
        return [("string for number", "1.0")]
    if kind == "list":
        inner = wrong_values(shape.member)[0]
        return [("string for list", "x"), ("object for list", {"a": 1}), (f"list of {inner[0]}", [inner[1]])]
    if kind == "map":
        inner = wrong_values(shape.value)[0]
        return [("array for map", ["x"]), (f"map of {inner[0]}", {"k": inner[1]})]
    if kind == "structure":
        out: list[tuple[str, Any]] = [("array for object", ["x"]), ("string for object", "x")]
        if shape.members:
            member, member_shape = next(iter(shape.members.items()))
            inner = wrong_values(member_shape)[0]
            out.append((f"object with {member}: {inner[0]}", {member: inner[1]}))
        return out
    return []


def without_nested_required(value: Any, shape: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Copies of `value` with one required member of a nested structure removed."""
    if shape.type_name == "structure" and isinstance(value, dict):
        for name in shape.required_members:
            if name in value and path:
                yield f"{path} without {name}", {k: v for k, v in value.items() if k != name}
        for name, member in value.items():
            if name in shape.members:
                for label, variant in without_nested_required(member, shape.members[name], f"{path}.{name}"):
                    yield label, {**value, name: variant}
    elif shape.type_name == "list" and isinstance(value, list) and value:
        for label, variant in without_nested_required(value[0], shape.member, f"{path}[0]"):
            yield label, [variant, *value[1:]]


def model_cases(instance_arn: str) -> list[Case]:
    model = ecs_model()
    cases = []
    for operation, baseline in baselines(instance_arn).items():
        shape = model.operation_model(operation).input_shape
        for member, member_shape in shape.members.items():
            for label, wrong in wrong_values(member_shape):
                cases.append(Case(f"{operation}.{member}: {label}", dumps({**baseline, member: wrong}), op(operation)))
        for required in shape.required_members:
            body = {k: v for k, v in baseline.items() if k != required}
            cases.append(Case(f"{operation} without required {required}", dumps(body), op(operation)))
        for label, variant in without_nested_required(baseline, shape, ""):
            cases.append(Case(f"{operation}{label}", dumps(variant), op(operation)))
    return cases


# ---------------------------------------------------------------------------------------------
# The tests, one per kind of malformation
# ---------------------------------------------------------------------------------------------

INVALID_JSON = [
    b"{",
    b"}",
    b"{]",
    b'{"clusterName": }',
    b'{"clusterName": "x",}',
    b'{"clusterName": "x"} trailing',
    b"{'clusterName': 'x'}",
    b'{"clusterName": NaN}',
    b'{"clusterName": undefined}',
    b'{"clusterName" "x"}',
    b'{"clusterName": "unterminated}',
    b'{"clusterName": "bad \\q escape"}',
    b'{"clusterName": "\\ud800"}',
    b'{"clusterName": "\xff\xfe"}',
    b'{"clusterName": "\xc0\xaf"}',
    b"\x00\x01\x02",
    b"\xef\xbb\xbf{\"clusterName\": 5}",
    '{"clusterName": "utf 16"}'.encode("utf-16"),
    b'{"clusterName": "x"}{"clusterName": "y"}',
    b'{"clusterName": 1e999999}',
]
INVALID_JSON_OPS = ["CreateCluster", "RegisterTaskDefinition", "PutAttributes", "TagResource", "PutAccountSetting"]

NON_OBJECTS = [b"[]", b"[1, 2]", b'"CreateCluster"', b"42", b"-1.5", b"true", b"false", b"null", b'[{"clusterName": "x"}]']
NON_OBJECT_OPS = ["CreateCluster", "DeleteCluster", "RegisterTaskDefinition", "UpdateContainerInstancesState"]


def test_invalid_json_gets_4xx_json_errors(corpus: Corpus):
    send_all(corpus, [Case(f"{o} with {b[:30]!r}", b, op(o)) for o in INVALID_JSON_OPS for b in INVALID_JSON])


def test_bodies_that_are_not_objects_get_4xx_json_errors(corpus: Corpus):
    send_all(corpus, [Case(f"{o} with {b!r}", b, op(o)) for o in NON_OBJECT_OPS for b in NON_OBJECTS])


def test_wrong_member_types_and_missing_required_members_get_4xx_json_errors(corpus: Corpus):
    cases = model_cases(corpus.instance_arn)
    assert len(cases) >= 150, f"only {len(cases)} model-generated cases"
    send_all(corpus, cases)


# ECS: attribute names are up to 128 letters, numbers, hyphens, underscores, slashes,
# backslashes or periods.
ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_./\\-]{1,128}")
BAD_NAMES = ["has space", "dot.name", "slash/name", "colon:name", "star*", "", " ", "x" * 256, "集群", "🚀", "a\u0000b", "\u202eevil", "a\u200bb", "naïve", "../../etc/passwd", "<script>"]


def test_names_breaking_ecs_patterns_get_4xx_json_errors(corpus: Corpus):
    cases = []
    for name in BAD_NAMES:
        if name:  # an empty clusterName is ambiguous; the other operations still reject it
            cases.append(Case(f"cluster name {name!r:.40}", dumps({"clusterName": name}), op("CreateCluster")))
        cases.append(Case(f"family {name!r:.40}", dumps({"family": name, "containerDefinitions": WEB}), op("RegisterTaskDefinition")))
        container = [{**WEB[0], "name": name}]
        cases.append(Case(f"container name {name!r:.40}", dumps({"family": "corpus-names", "containerDefinitions": container}), op("RegisterTaskDefinition")))
        if not ATTRIBUTE_NAME.fullmatch(name):  # dots and slashes are fine in attribute names
            attributes = [{"name": name, "value": "v", "targetId": corpus.instance_arn}]
            cases.append(Case(f"attribute name {name!r:.40}", dumps({"cluster": CLUSTER, "attributes": attributes}), op("PutAttributes")))
    for reference in ["corpus-td:0", "corpus-td:-1", "corpus-td:abc", "corpus-td:99999999999999999999", ":1", "corpus-td:1:2", "arn:aws:ecs:us-east-1:000000000000:task-definition/"]:
        cases.append(Case(f"deregister {reference!r}", dumps({"taskDefinition": reference}), op("DeregisterTaskDefinition")))
    for key in ["aws:reserved", "AWS:Reserved", ""]:
        cases.append(
            Case(f"tag key {key!r}", dumps({"resourceArn": cluster_arn(CLUSTER), "tags": [{"key": key, "value": "v"}]}), op("TagResource"))
        )
    for arn in ["", "arn", "arn:aws:ecs", "arn:aws:ecs:us-east-1:000000000000:cluster/", "arn:aws:ecs:us-east-1:000000000000:cluster/bad name"]:
        cases.append(Case(f"resource ARN {arn!r}", dumps({"resourceArn": arn, "tags": [{"key": "k", "value": "v"}]}), op("TagResource")))
    send_all(corpus, cases)


def test_over_long_strings_get_4xx_json_errors(corpus: Corpus):
    long = "x" * 100_000
    cases = [
        Case("cluster name of 100k", dumps({"clusterName": long}), op("CreateCluster")),
        Case("family of 100k", dumps({"family": long, "containerDefinitions": WEB}), op("RegisterTaskDefinition")),
        Case("image of 100k", dumps({"family": "corpus-long", "containerDefinitions": [{**WEB[0], "image": long}]}), op("RegisterTaskDefinition")),
        Case("container name of 100k", dumps({"family": "corpus-long", "containerDefinitions": [{**WEB[0], "name": long}]}), op("RegisterTaskDefinition")),
        Case("tag key of 100k", dumps({"resourceArn": cluster_arn(CLUSTER), "tags": [{"key": long, "value": "v"}]}), op("TagResource")),
        Case("tag value of 100k", dumps({"resourceArn": cluster_arn(CLUSTER), "tags": [{"key": "k", "value": long}]}), op("TagResource")),
        Case("cluster reference of 100k", dumps({"cluster": long}), op("DeleteCluster")),
        Case("task definition reference of 100k", dumps({"taskDefinition": long}), op("DescribeTaskDefinition")),
        Case("attribute name of 100k", dumps({"cluster": CLUSTER, "attributes": [{"name": long, "targetId": corpus.instance_arn}]}), op("PutAttributes")),
        Case("attribute value of 100k", dumps({"cluster": CLUSTER, "attributes": [{"name": "n", "value": long, "targetId": corpus.instance_arn}]}), op("PutAttributes")),
        Case("setting value of 100k", dumps({"name": "containerInsights", "value": long}), op("PutAccountSetting")),
        Case("51 tags at once", dumps({"resourceArn": cluster_arn(CLUSTER), "tags": [{"key": f"k{i}", "value": "v"} for i in range(51)]}), op("TagResource")),
        Case("101 clusters described", dumps({"clusters": [f"c{i}" for i in range(101)]}), op("DescribeClusters")),
    ]
    send_all(corpus, cases)


def test_bodies_over_one_mebibyte_get_4xx_json_errors(corpus: Corpus):
    padding = "p" * (MIB + 1)
    many_containers = [{**WEB[0], "name": f"c{i}"} for i in range(40_000)]
    cases = [
        Case("1 MiB + padding in an unknown member", dumps({"clusterName": "corpus-huge", "pad": padding}), op("CreateCluster")),
        Case("1.5 MiB of whitespace around {}", b" " * (MIB + MIB // 2) + b"{}", op("ListClusters")),
        Case("2 MiB cluster name", dumps({"clusterName": "h" * (2 * MIB)}), op("CreateCluster")),
        Case("40k containers", dumps({"family": "corpus-huge", "containerDefinitions": many_containers}), op("RegisterTaskDefinition")),
        Case("8 MiB of garbage", b"\x00" * (8 * MIB), op("CreateCluster")),
        Case("5 MiB tag list", dumps({"resourceArn": cluster_arn(CLUSTER), "tags": [{"key": "k" * 100, "value": "v" * 100}] * 20_000}), op("TagResource")),
    ]
    send_all(corpus, cases)


def test_deep_nesting_gets_4xx_json_errors(corpus: Corpus):
    cases = []
    for depth in (200, 1_000, 100_000):
        arrays = b"[" * depth + b"]" * depth
        objects = b'{"a":' * depth + b"1" + b"}" * depth
        cases.append(Case(f"arrays {depth} deep as clusterName", b'{"clusterName": ' + arrays + b"}", op("CreateCluster")))
        cases.append(Case(f"objects {depth} deep in an unknown member", b'{"clusterName": "corpus-deep", "x": ' + objects + b"}", op("CreateCluster")))
        cases.append(Case(f"arrays {depth} deep as the body", arrays, op("ListClusters")))
        cases.append(
            Case(
                f"objects {depth} deep in a container definition",
                b'{"family": "corpus-deep", "containerDefinitions": [{"name": "web", "image": "busybox", "memory": 64, "environment": '
                + arrays
                + b"}]}",
                op("RegisterTaskDefinition"),
            )
        )
    cases.append(Case("unclosed deep nesting", b"[" * 50_000, op("ListClusters")))
    send_all(corpus, cases)


BAD_TARGETS: list[Optional[str | bytes]] = [
    None,
    "",
    " ",
    "AmazonEC2ContainerServiceV20141113",
    "AmazonEC2ContainerServiceV20141113.",
    "AmazonEC2ContainerServiceV20141113.NoSuchOperation",
    "AmazonEC2ContainerServiceV20141113.createcluster",
    "AmazonEC2ContainerServiceV20141113.CREATECLUSTER",
    "AmazonEC2ContainerServiceV20141113.CreateCluster.Extra",
    "AmazonEC2ContainerServiceV20141113. CreateCluster",
    "AmazonEC2ContainerServiceV20141113.Create Cluster",
    "AmazonEC2ContainerServiceV20141113 .CreateCluster",
    "AmazonEC2ContainerServiceV20141113..CreateCluster",
    "AmazonEC2ContainerServiceV20141114.CreateCluster",
    "amazonec2containerservicev20141113.CreateCluster",
    "DynamoDB_20120810.CreateCluster",
    "CreateCluster",
    ".CreateCluster",
    "AmazonEC2ContainerServiceV20141113.CreateCluster/../ListClusters",
    "AmazonEC2ContainerServiceV20141113.__proto__",
    "AmazonEC2ContainerServiceV20141113." + "A" * 8000,
    "AmazonEC2ContainerServiceV20141113.Create%43luster",
    "AmazonEC2ContainerServiceV20141113.CreateCluster;ListClusters",
    "AmazonEC2ContainerServiceV20141113.Créer".encode("utf-8"),
    b"AmazonEC2ContainerServiceV20141113.\xff\xfe",
    "AmazonEC2ContainerServiceV20141113.集群".encode("utf-8"),
]


def test_bad_or_missing_targets_get_4xx_json_errors(corpus: Corpus):
    body = dumps({"clusterName": "corpus-target"})
    send_all(corpus, [Case(f"target {t!r:.60}", body, t) for t in BAD_TARGETS])


ODD_CONTENT_TYPES: list[Optional[str]] = [
    None,
    "",
    "text/plain",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/x-amz-json-1.0",
    "multipart/form-data; boundary=xyz",
    "application/x-amz-json-1.1; charset=utf-16",
    "application/xml",
    "*/*",
]


def test_odd_content_types_with_bad_bodies_get_4xx_json_errors(corpus: Corpus):
    cases = []
    for content_type in ODD_CONTENT_TYPES:
        for label, body in (
            ("invalid JSON", b"{"),
            ("wrong type", dumps({"clusterName": 5})),
            ("bad name", dumps({"clusterName": "bad name"})),
        ):
            cases.append(Case(f"{content_type!r} with {label}", body, op("CreateCluster"), content_type=content_type))
        cases.append(
            Case(f"{content_type!r} form body without target", b"Action=CreateCluster&clusterName=corpus-form", None, content_type=content_type)
        )
    cases.append(
        Case("XML body", b"<CreateCluster><clusterName>corpus-xml</clusterName></CreateCluster>", op("CreateCluster"), content_type="application/xml")
    )
    send_all(corpus, cases)


LIST_OPERATIONS = {
    "ListClusters": {},
    "ListTaskDefinitions": {},
    "ListTaskDefinitionFamilies": {},
    "ListContainerInstances": {"cluster": CLUSTER},
    "ListAttributes": {"cluster": CLUSTER, "targetType": "container-instance"},
    "ListAccountSettings": {},
}
BAD_TOKENS = ["not-a-token", "zz", "abc", "%%%", "ünï", "x" * 10_000, "g" * 4098, "eyJub3QiOiAiYSB0b2tlbiJ9=="]
BAD_MAX_RESULTS: list[Any] = [0, -1, 101, 2**31, 2**63, -(2**63) - 1, 10**30]


def test_bad_next_tokens_and_max_results_get_4xx_json_errors(corpus: Corpus):
    cases = []
    for operation, base in LIST_OPERATIONS.items():
        for token in BAD_TOKENS:
            cases.append(Case(f"{operation} nextToken {token!r:.30}", dumps({**base, "nextToken": token}), op(operation)))
        for value in BAD_MAX_RESULTS:
            cases.append(Case(f"{operation} maxResults {value}", dumps({**base, "maxResults": value}), op(operation)))
    cases.append(Case("ListAccountSettings maxResults 11", dumps({"maxResults": 11}), op("ListAccountSettings")))
    send_all(corpus, cases)


def test_unicode_in_every_string_position_gets_4xx_json_errors(corpus: Corpus):
    strings = ["集群", "🚀🚀", "e\u0301", "\u0000", "\ufeffbom", "\U0010ffff", "\u2028line"]
    cases = []
    for s in strings:
        cases.append(Case(f"update setting name {s!r}", dumps({"cluster": CLUSTER, "settings": [{"name": s, "value": "enabled"}]}), op("UpdateClusterSettings")))
        cases.append(Case(f"include {s!r}", dumps({"clusters": [CLUSTER], "include": [s]}), op("DescribeClusters")))
        cases.append(Case(f"task definition status {s!r}", dumps({"status": s}), op("ListTaskDefinitions")))
        cases.append(Case(f"instance status {s!r}", dumps({"cluster": CLUSTER, "containerInstances": [corpus.instance_arn], "status": s}), op("UpdateContainerInstancesState")))
        cases.append(Case(f"account setting {s!r}", dumps({"name": s, "value": "enabled"}), op("PutAccountSetting")))
        cases.append(Case(f"network mode {s!r}", dumps({"family": "corpus-uni", "containerDefinitions": WEB, "networkMode": s}), op("RegisterTaskDefinition")))
        cases.append(Case(f"raw UTF-8 cluster name {s!r}", ('{"clusterName": "' + s.replace("\u0000", "\\u0000") + '"}').encode("utf-8"), op("CreateCluster")))
    send_all(corpus, cases)


def test_wrong_methods_and_paths_get_4xx_json_errors(corpus: Corpus):
    body = dumps({"clusterName": "corpus-path"})
    cases = [
        Case("GET /", b"", op("ListClusters"), method="GET"),
        Case("PUT /", body, op("CreateCluster"), method="PUT"),
        Case("DELETE /", b"", op("DeleteCluster"), method="DELETE"),
        Case("PATCH /", body, op("CreateCluster"), method="PATCH"),
        Case("POST /foo", body, op("CreateCluster"), path="/foo"),
        Case("POST /?Action=CreateCluster", body, None, path="/?Action=CreateCluster&clusterName=corpus-query"),
        Case("POST /healthz", body, op("CreateCluster"), path="/healthz"),
        Case("POST /v1/../", body, None, path="/v1/../"),
    ]
    send_all(corpus, cases)


def test_the_corpus_had_at_least_200_requests_and_wrote_nothing(corpus: Corpus):
    assert len(corpus.sent) >= 200, f"only {len(corpus.sent)} malformed requests were sent"
    assert len(set(corpus.sent)) == len(corpus.sent), "corpus case names repeat"
    assert corpus.berth.server.alive() and corpus.berth.server.healthy()
    after = state(corpus.berth, corpus.instance_arn)
    changed = {k: (corpus.before[k], after[k]) for k in corpus.before if corpus.before[k] != after[k]}
    assert not changed, "malformed requests changed state:\n" + "\n".join(
        f"  {k}:\n    before {b!s:.400}\n    after  {a!s:.400}" for k, (b, a) in changed.items()
    )
    print(f"malformed corpus: {len(corpus.sent)} requests, all answered with a 4xx JSON error")

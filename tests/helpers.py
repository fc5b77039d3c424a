"""Small helpers the boto3 suites share: error expectations, canned inputs, subset asserts."""

from __future__ import annotations

from typing import Any, Callable, Iterable

from botocore.exceptions import ClientError

from harness import ACCOUNT, REGION

ARN_PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT}"


def cluster_arn(name: str) -> str:
    return f"{ARN_PREFIX}:cluster/{name}"


def task_definition_arn(family: str, revision: int) -> str:
    return f"{ARN_PREFIX}:task-definition/{family}:{revision}"


def expect_error(codes: str | Iterable[str], call: Callable[..., Any], *args: Any, **kwargs: Any) -> ClientError:
    """Calls `call` and asserts it fails with an ECS error whose code is one of `codes`, an
    HTTP 400 and a non-empty message. Returns the error."""
    wanted = (codes,) if isinstance(codes, str) else tuple(codes)
    try:
        result = call(*args, **kwargs)
    except ClientError as e:
        error = e.response.get("Error", {})
        code = error.get("Code")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        assert code in wanted, f"expected {' or '.join(wanted)}, got {code}: {error.get('Message')}"
        assert status == 400, f"{code} came with HTTP {status}, ECS uses 400"
        assert error.get("Message"), f"{code} came without a message saying what to fix"
        return e
    result = {k: v for k, v in (result or {}).items() if k != "ResponseMetadata"}
    raise AssertionError(f"expected {' or '.join(wanted)}, but the call succeeded: {result}")


# How a refusal of request authentication is answered: its HTTP status.
AUTH_ERROR_STATUS = {
    "MissingAuthenticationTokenException": 403,
    "IncompleteSignatureException": 400,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
}


def expect_auth_error(code: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> ClientError:
    """Calls `call` and asserts authentication refused it with `code`, the HTTP status that
    goes with it, and a message. Returns the error."""
    try:
        result = call(*args, **kwargs)
    except ClientError as e:
        error = e.response.get("Error", {})
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        assert (error.get("Code"), status) == (code, AUTH_ERROR_STATUS[code]), (
            f"expected {code} (HTTP {AUTH_ERROR_STATUS[code]}), got {error.get('Code')} (HTTP {status}): "
            f"{error.get('Message')}"
        )
        assert error.get("Message"), f"{code} came without a message"
        return e
    result = {k: v for k, v in (result or {}).items() if k != "ResponseMetadata"}
    raise AssertionError(f"expected {code}, but the call succeeded: {result}")


def assert_refused(response: Any, code: str) -> dict:
    """A raw response (harness.RawResponse) is authentication's refusal `code`: its HTTP
    status, and a JSON body with that `__type` and a message. Returns the body."""
    assert response.status == AUTH_ERROR_STATUS[code], (
        f"expected {code} (HTTP {AUTH_ERROR_STATUS[code]}), got HTTP {response.status}: {response.body[:300]!r}"
    )
    body = response.json()
    assert body.get("__type") == code, f"expected {code}, got {body}"
    assert isinstance(body.get("message"), str) and body["message"], f"{code} came without a message: {body}"
    return body


def assert_subset(expected: Any, actual: Any, path: str = "") -> None:
    """Every member of `expected` is in `actual` with an equal value (recursively for
    objects; lists must match element by element). Extra members in `actual` (defaults the
    server fills in) are allowed."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path or 'value'}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} missing from {sorted(actual)}"
            assert_subset(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), f"{path}: expected {len(expected)} items, got {actual!r}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            assert_subset(e, a, f"{path}[{i}]")
    else:
        assert expected == actual, f"{path}: expected {expected!r}, got {actual!r}"


def absent_or_empty(obj: dict, key: str) -> bool:
    return not obj.get(key)


WEB = [{"name": "web", "image": "busybox", "memory": 64, "essential": True}]

RESOURCES = [
    {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
    {"name": "MEMORY", "type": "INTEGER", "integerValue": 3768},
    {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375", "2376", "51678", "51679"]},
    {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []},
]

VERSION_INFO = {"agentVersion": "1.80.0", "agentHash": "0123abcd", "dockerVersion": "DockerVersion: 24.0.7"}


# The capability attributes a Berth agent on a stock Docker daemon registers with: Docker Remote
# API versions, the daemon's logging drivers (less awslogs, which Berth refuses), the local
# volume driver, and the agent's own health checks, ordering and port ranges.
AGENT_ATTRIBUTES = (
    [{"name": f"com.amazonaws.ecs.capability.docker-remote-api.1.{v}"} for v in range(17, 45)]
    + [
        {"name": f"com.amazonaws.ecs.capability.logging-driver.{d}"}
        for d in ["fluentd", "gcplogs", "gelf", "journald", "json-file", "local", "none", "splunk", "syslog"]
    ]
    + [
        {"name": "ecs.capability.docker-plugin.local"},
        {"name": "ecs.capability.container-health-check"},
        {"name": "ecs.capability.container-ordering"},
        {"name": "ecs.capability.container-port-range"},
    ]
)


def register_instance(ecs: Any, cluster: str, **extra: Any) -> dict:
    """Registers a container instance as an ECS Anywhere-style agent would (no EC2 identity
    document) and returns it."""
    return ecs.register_container_instance(
        cluster=cluster, totalResources=RESOURCES, versionInfo=VERSION_INFO, **extra
    )["containerInstance"]


def instance_id(arn: str) -> str:
    """`arn:...:container-instance/cluster/ID` -> `ID`."""
    return arn.rsplit("/", 1)[-1]


def all_pages(call: Callable[..., dict], key: str, **kwargs: Any) -> list:
    """Follows nextToken to the end; fails on a loop."""
    items: list = []
    token = None
    for _ in range(1000):
        page = call(**kwargs, **({"nextToken": token} if token else {}))
        items.extend(page[key])
        token = page.get("nextToken")
        if not token:
            return items
    raise AssertionError("pagination did not end after 1000 pages")

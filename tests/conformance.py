"""The conformance walker: checks AWS JSON response bodies against their service's botocore
model (ECS, CloudWatch Logs, CloudWatch in JSON, and the other JSON services of the endpoint;
see harness.JSON_SERVICES). Exchanges that are not AWS JSON — CBOR calls at /service/...,
query requests, XML answers — are skipped, not counted: other checks own them.

A success body must match the operation's output shape; an error body must carry a `__type`
naming an exception of the model (or a protocol-level error) and only that exception's
members. Every member name must exist in its shape and every value must have the JSON type
the shape calls for, recursively:

    string (and enums, whose values must be among the model's) -> JSON string
    integer / long                                           -> JSON integer in range
    boolean                                                  -> JSON true / false
    double / float, timestamp (epoch seconds)                -> JSON number
    list -> JSON array; map -> JSON object; structure -> JSON object with known members

`null` is never a valid value: ECS leaves absent members out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Optional

# Error names that come from the AWS JSON protocol layer rather than from the ECS model,
# among them the refusals of request authentication (AWS's common errors).
AUTH_ERRORS = frozenset(
    {
        "MissingAuthenticationTokenException",
        "IncompleteSignatureException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
    }
)
PROTOCOL_ERRORS = frozenset({"SerializationException", "UnknownOperationException", "MissingAction"}) | AUTH_ERRORS
_PROTOCOL_ERROR_MEMBERS = frozenset({"message"})

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


@lru_cache(maxsize=1)
def ecs_model():
    """The ECS service model of the installed botocore package."""
    return service_model("ecs")


@lru_cache(maxsize=None)
def service_model(service: str):
    """The model of botocore service `service` (`ecs`, `logs`, `cloudwatch`, ...) of the
    installed botocore package."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _label(model: Any) -> str:
    return "ECS" if model.service_name == "ecs" else model.service_name


@dataclass(frozen=True)
class Violation:
    """One place where a response departs from the model."""

    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def check_value(shape: Any, value: Any, where: str) -> list[Violation]:
    """All violations of `value` against botocore `shape`; `where` names the position."""
    kind = shape.type_name
    found = _json_kind(value)

    def wrong(expected: str) -> list[Violation]:
        return [
            Violation(where, f"expected {expected} for shape {shape.name} ({kind}), got {found} {value!r:.80}")
        ]

    if value is None:
        return wrong("a value (null is not allowed; leave the member out)")
    if getattr(shape, "is_document_type", False):
        return []
    if kind == "structure":
        if not isinstance(value, dict):
            return wrong("a JSON object")
        wire = {m.serialization.get("name", name): m for name, m in shape.members.items()}
        out: list[Violation] = []
        for member, member_value in value.items():
            member_shape = wire.get(member)
            if member_shape is None:
                out.append(
                    Violation(
                        f"{where}.{member}",
                        f"member '{member}' is not in shape {shape.name} "
                        f"(known: {', '.join(sorted(wire)) or 'none'})",
                    )
                )
                continue
            out.extend(check_value(member_shape, member_value, f"{where}.{member}"))
        return out
    if kind == "list":
        if not isinstance(value, list):
            return wrong("a JSON array")
        out = []
        for i, item in enumerate(value):
            out.extend(check_value(shape.member, item, f"{where}[{i}]"))
        return out
    if kind == "map":
        if not isinstance(value, dict):
            return wrong("a JSON object (map)")
        out = []
        for key, item in value.items():
            out.extend(check_value(shape.key, key, f"{where}{{key {key!r}}}"))
            out.extend(check_value(shape.value, item, f"{where}[{key!r}]"))
        return out
    if kind in ("string", "blob"):
        if not isinstance(value, str):
            return wrong("a JSON string")
        enum = getattr(shape, "enum", None) or []
        if kind == "string" and enum and value not in enum:
            return [Violation(where, f"'{value}' is not a value of enum {shape.name} ({', '.join(enum)})")]
        return []
    if kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return wrong("a JSON integer")
        low, high = _INT32 if kind == "integer" else _INT64
        if not low <= value <= high:
            return [Violation(where, f"{value} does not fit a 32-bit {kind}" if kind == "integer" else f"{value} does not fit a 64-bit long")]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else wrong("true or false")
    if kind in ("double", "float"):
        return [] if _is_number(value) else wrong("a JSON number")
    if kind == "timestamp":
        return [] if _is_number(value) else wrong("a JSON number (epoch seconds)")
    return [Violation(where, f"shape {shape.name} has type {kind}, which this walker does not know")]


def error_names(model: Any = None) -> frozenset[str]:
    """Names of every exception of the model."""
    model = model or ecs_model()
    return frozenset(shape.name for shape in model.error_shapes)


def normalise_error_type(raw: str) -> str:
    """`aws.ecs#ClusterNotFoundException:http://...` -> `ClusterNotFoundException`."""
    return raw.split("#")[-1].split(":")[0]


def check_response(operation: Optional[str], status: int, body: bytes, model: Any = None) -> list[Violation]:
    """All violations of one response to `operation` (None when the request named no ECS
    operation) with HTTP `status` and raw `body`."""
    model = model or ecs_model()
    where = operation or "<no operation>"
    try:
        parsed = json.loads(body) if body.strip() else {}
    except ValueError as e:
        return [Violation(where, f"HTTP {status} body is not JSON ({e}): {body[:120]!r}")]
    if 200 <= status < 300:
        if operation is None or operation not in model.operation_names:
            return [Violation(where, f"HTTP {status} success for a request that names no {_label(model)} operation")]
        output = model.operation_model(operation).output_shape
        if output is None:
            return [] if parsed in ({}, None) else [Violation(where, "operation has no output, body is not empty")]
        return check_value(output, parsed, f"{operation}(output)")
    if not isinstance(parsed, dict):
        return [Violation(where, f"HTTP {status} error body is not a JSON object: {body[:120]!r}")]
    raw_type = parsed.get("__type")
    if not isinstance(raw_type, str) or not raw_type:
        return [Violation(where, f"HTTP {status} error body has no __type: {body[:200]!r}")]
    name = normalise_error_type(raw_type)
    fields = {k: v for k, v in parsed.items() if k != "__type"}
    if name in error_names(model):
        shape = model.shape_for(name)
        out = []
        if "message" in fields and "message" not in shape.members:
            # The JSON protocol carries `message` on every error, whether or not the model
            # names it (most Logs exceptions do not; every ECS exception does).
            message = fields.pop("message")
            if not isinstance(message, str):
                out.append(Violation(f"{where}(error {name}).message", f"expected a JSON string, got {_json_kind(message)}"))
        return out + check_value(shape, fields, f"{where}(error {name})")
    if name in PROTOCOL_ERRORS:
        out = []
        for member, value in fields.items():
            if member not in _PROTOCOL_ERROR_MEMBERS:
                out.append(Violation(f"{where}(error {name}).{member}", f"member '{member}' is not part of a protocol error"))
            elif not isinstance(value, str):
                out.append(Violation(f"{where}(error {name}).{member}", f"expected a JSON string, got {_json_kind(value)}"))
        return out
    return [Violation(where, f"error __type '{raw_type}' is neither an {_label(model)} exception nor a protocol error")]


def check_exchanges(exchanges: Iterable[Any], model: Any = None) -> tuple[int, list[tuple[Any, Violation]]]:
    """Checks recorded exchanges (objects with operation, status, response_body, test and
    proxy_error, and optionally service: the botocore service whose model applies, None for an
    exchange that is not AWS JSON); returns how many were checked and the violations with
    their exchange. Exchanges without a service are skipped and not counted; `model`, when
    given, is used for every exchange instead of its service's."""
    checked = 0
    found: list[tuple[Any, Violation]] = []
    for exchange in exchanges:
        service = getattr(exchange, "service", "ecs")
        if service is None:
            continue
        checked += 1
        if getattr(exchange, "proxy_error", None):
            found.append((exchange, Violation(exchange.operation or "<no operation>", exchange.proxy_error)))
            continue
        applies = model or service_model(service)
        for violation in check_response(exchange.operation, exchange.status, exchange.response_body, applies):
            found.append((exchange, violation))
    return checked, found


def skipped(exchanges: Iterable[Any]) -> int:
    """How many recorded exchanges are not AWS JSON and so left to other checks."""
    return sum(1 for exchange in exchanges if getattr(exchange, "service", "ecs") is None)


def report(violations: list[tuple[Any, Violation]], limit: int = 60) -> str:
    """A readable list of violations, each with the test that caused it."""
    lines = []
    for exchange, violation in violations[:limit]:
        lines.append(f"  [{exchange.test}] HTTP {exchange.status} {violation}")
    if len(violations) > limit:
        lines.append(f"  ... and {len(violations) - limit} more")
    return "\n".join(lines)

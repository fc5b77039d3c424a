"""Checks a smithy-rpc-v2-cbor answer against the output shape of the botocore model it claims
to follow: botocore's own CBOR parser reads the bytes (so tag 1 times, floats and lengths are
read as botocore reads them), then every member is checked against the shape — no member the
shape lacks, no value of another type, every required member present."""

from __future__ import annotations

import datetime
from typing import Any

import botocore.session
from botocore.parsers import RpcV2CBORParser


def output_shape(service: str, operation: str):
    """The output shape of `operation` in botocore's model of `service`."""
    model = botocore.session.get_session().get_service_model(service)
    return model.operation_model(operation).output_shape


def decode(body: bytes) -> Any:
    """The data item of a CBOR body, as botocore's parser reads it (times as datetimes)."""
    parser = RpcV2CBORParser()
    if body == b"":
        return {}
    return parser.parse_data_item(parser.get_peekable_stream_from_bytes(body))


def violations(shape, value: Any, path: str = "$") -> list[str]:
    """What in `value` does not fit `shape` (empty if all does)."""
    if shape is None:
        return [] if value in ({}, None) else [f"{path}: the operation has no output, got {value!r}"]
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected a map for {shape.name}, got {type(value).__name__}"]
        out = []
        for key, item in value.items():
            member = shape.members.get(key)
            if member is None:
                out.append(f"{path}: {key} is not a member of {shape.name}")
            else:
                out.extend(violations(member, item, f"{path}.{key}"))
        for key in shape.required_members:
            if key not in value:
                out.append(f"{path}: required member {key} of {shape.name} is missing")
        return out
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [v for i, item in enumerate(value) for v in violations(shape.member, item, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map, got {type(value).__name__}"]
        return [v for k, item in value.items() for v in violations(shape.value, item, f"{path}.{k}")]
    expected = {
        "string": str,
        "timestamp": datetime.datetime,
        "double": (float, int),
        "float": (float, int),
        "integer": int,
        "long": int,
        "boolean": bool,
        "blob": bytes,
    }.get(kind)
    if expected is not None and (not isinstance(value, expected) or (kind in ("integer", "long") and isinstance(value, bool))):
        return [f"{path}: expected {kind}, got {type(value).__name__} {value!r}"]
    if kind == "string" and shape.enum and value not in shape.enum:
        return [f"{path}: {value!r} is not one of {shape.enum}"]
    return []


def check(service: str, operation: str, body: bytes) -> Any:
    """Decodes `body` and asserts it fits the output of `operation`; returns the decoded item."""
    value = decode(body)
    found = violations(output_shape(service, operation), value)
    assert not found, f"{operation} answer does not fit the model:\n" + "\n".join(found)
    return value

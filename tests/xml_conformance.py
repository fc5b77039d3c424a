"""The conformance check of AWS query-protocol answers (XML): IAM, STS, ELBv2 and CloudWatch's
query form, and EC2's own variant of it. Each recorded answer is walked against its service's
botocore model, as conformance.py walks JSON: a success is `<ActionResponse><ActionResult>`
holding the operation's output shape (every element a member of its structure, lists of
`<member>`, maps of `<entry><key/><value/></entry>`, numbers, booleans, timestamps and enums
in their XML forms); an error is `<ErrorResponse><Error>` with a `Code` and a `Message`.
EC2 (botocore protocol `ec2`) differs: its output members sit directly in `<ActionResponse>`
beside `<requestId>`, its lists are of `<item>` (the model's locationName), and an error is
`<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`."""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET
from typing import Any, Iterable, Optional
from urllib.parse import parse_qs

from conformance import Violation, service_model

# The botocore service of each SigV4 signing name that speaks the query protocol.
QUERY_SERVICES = {
    "iam": "iam",
    "sts": "sts",
    "elasticloadbalancing": "elbv2",
    "monitoring": "cloudwatch",
    "ec2": "ec2",
}

_INT_RE = re.compile(r"-?\d+")


def _local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def _timestamp(text: str) -> bool:
    try:
        datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def check_element(shape: Any, element: ET.Element, where: str) -> list[Violation]:
    """All violations of `element` against botocore `shape`."""
    kind = shape.type_name
    text = element.text or ""
    if kind == "structure":
        members = {m.serialization.get("name", name): m for name, m in shape.members.items()}
        out: list[Violation] = []
        for child in element:
            name = _local(child.tag)
            member = members.get(name)
            if member is None:
                out.append(Violation(f"{where}.{name}", f"element '{name}' is not a member of {shape.name} (known: {', '.join(sorted(members)) or 'none'})"))
                continue
            out.extend(check_element(member, child, f"{where}.{name}"))
        return out
    if kind == "list":
        item_name = shape.member.serialization.get("name", "member")
        out = []
        for i, child in enumerate(element):
            if _local(child.tag) != item_name:
                out.append(Violation(f"{where}[{i}]", f"list item is <{_local(child.tag)}>, not <{item_name}>"))
                continue
            out.extend(check_element(shape.member, child, f"{where}[{i}]"))
        return out
    if kind == "map":
        out = []
        for i, entry in enumerate(element):
            parts = {_local(c.tag): c for c in entry}
            if _local(entry.tag) != "entry" or set(parts) != {"key", "value"}:
                out.append(Violation(f"{where}[{i}]", "a map item must be <entry><key/><value/></entry>"))
                continue
            out.extend(check_element(shape.value, parts["value"], f"{where}[{parts['key'].text!r}]"))
        return out
    if len(element):
        return [Violation(where, f"{shape.name} ({kind}) holds elements, not text")]
    if kind == "string":
        enum = getattr(shape, "enum", None) or []
        if enum and text not in enum:
            return [Violation(where, f"'{text}' is not a value of enum {shape.name} ({', '.join(enum)})")]
        return []
    if kind in ("integer", "long"):
        return [] if _INT_RE.fullmatch(text) else [Violation(where, f"'{text}' is not an integer ({shape.name})")]
    if kind == "boolean":
        return [] if text in ("true", "false") else [Violation(where, f"'{text}' is not true or false ({shape.name})")]
    if kind in ("double", "float"):
        try:
            float(text)
            return []
        except ValueError:
            return [Violation(where, f"'{text}' is not a number ({shape.name})")]
    if kind == "timestamp":
        return [] if _timestamp(text) else [Violation(where, f"'{text}' is not an ISO 8601 timestamp ({shape.name})")]
    if kind == "blob":
        return []
    return [Violation(where, f"shape {shape.name} has type {kind}, which this walker does not know")]


def action_of(request_body: bytes) -> Optional[str]:
    """The `Action` of a form-encoded query request."""
    try:
        values = parse_qs(request_body.decode("utf-8"), keep_blank_values=True).get("Action")
    except UnicodeDecodeError:
        return None
    return values[0] if values else None


def check_answer(service: str, action: Optional[str], status: int, body: bytes) -> list[Violation]:
    """All violations of one XML answer of `service` (botocore name) to `action`."""
    where = f"{service}:{action or '<no action>'}"
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        return [Violation(where, f"HTTP {status} answer is not well-formed XML ({e}): {body[:160]!r}")]
    if service_model(service).metadata.get("protocol") == "ec2":
        return _check_ec2_answer(service, action, status, root, body, where)
    if status >= 300:
        if _local(root.tag) != "ErrorResponse":
            return [Violation(where, f"HTTP {status} answer is <{_local(root.tag)}>, not <ErrorResponse>")]
        error = next((c for c in root if _local(c.tag) == "Error"), None)
        fields = {_local(c.tag): (c.text or "") for c in (error if error is not None else [])}
        if not fields.get("Code") or "Message" not in fields:
            return [Violation(where, f"HTTP {status} error lacks a Code or a Message: {body[:200]!r}")]
        return []
    model = service_model(service)
    if action not in model.operation_names:
        return [Violation(where, f"HTTP {status} success for an action {service} does not have")]
    if _local(root.tag) != f"{action}Response":
        return [Violation(where, f"the answer is <{_local(root.tag)}>, not <{action}Response>")]
    output = model.operation_model(action).output_shape
    result = next((c for c in root if _local(c.tag) == f"{action}Result"), None)
    if output is None:
        return [] if result is None or len(result) == 0 else [Violation(where, "the operation has no output, yet the answer has a result")]
    if result is None:
        return [Violation(where, f"no <{action}Result> in the answer")]
    return check_element(output, result, f"{action}(output)")


def _check_ec2_answer(service: str, action: Optional[str], status: int, root: ET.Element, body: bytes, where: str) -> list[Violation]:
    """All violations of one answer of an `ec2`-protocol service: a success holds the output
    members directly beside `<requestId>`; an error is `<Response><Errors><Error>`."""
    children = {_local(c.tag): c for c in root}
    if status >= 300:
        if _local(root.tag) != "Response":
            return [Violation(where, f"HTTP {status} answer is <{_local(root.tag)}>, not <Response>")]
        errors = children.get("Errors")
        error = next((c for c in (errors if errors is not None else []) if _local(c.tag) == "Error"), None)
        fields = {_local(c.tag): (c.text or "") for c in (error if error is not None else [])}
        out = []
        if not fields.get("Code") or "Message" not in fields:
            out.append(Violation(where, f"HTTP {status} error lacks Errors/Error/Code or Message: {body[:200]!r}"))
        if not (children.get("RequestID") is not None and children["RequestID"].text):
            out.append(Violation(where, "the error has no <RequestID>"))
        return out
    model = service_model(service)
    if action not in model.operation_names:
        return [Violation(where, f"HTTP {status} success for an action {service} does not have")]
    if _local(root.tag) != f"{action}Response":
        return [Violation(where, f"the answer is <{_local(root.tag)}>, not <{action}Response>")]
    out = []
    if not (children.get("requestId") is not None and children["requestId"].text):
        out.append(Violation(where, "the answer has no <requestId>"))
    output = model.operation_model(action).output_shape
    members = ET.Element(root.tag)
    members.extend(c for c in root if _local(c.tag) != "requestId")
    if output is None:
        if len(members):
            out.append(Violation(where, "the operation has no output, yet the answer has members"))
        return out
    return out + check_element(output, members, f"{action}(output)")


def check_exchanges(exchanges: Iterable[Any]) -> tuple[int, list[tuple[Any, Violation]]]:
    """Checks every recorded exchange that is a query request answered in XML; how many were
    checked and the violations with their exchange."""
    checked = 0
    found: list[tuple[Any, Violation]] = []
    for exchange in exchanges:
        if "xml" not in (exchange.response_content_type or "").lower():
            continue
        service = QUERY_SERVICES.get(exchange.signing_service or "")
        if service is None:
            continue
        checked += 1
        action = action_of(exchange.request_body)
        for violation in check_answer(service, action, exchange.status, exchange.response_body):
            found.append((exchange, violation))
    return checked, found

"""The conformance check over every response the suites received: collected last (see
conftest.py), it walks all recorded AWS JSON exchanges, each against its own service's botocore model
(ECS, CloudWatch Logs, CloudWatch, ...), and every query-protocol answer in XML (IAM, STS, ELBv2,
CloudWatch) against its own; CBOR exchanges are checked where they happen (cbor_check.py)."""

import pytest

import conformance
import xml_conformance
from harness import RECORDER


@pytest.mark.run_last
def test_every_recorded_response_matches_the_botocore_ecs_model(request: pytest.FixtureRequest) -> None:
    items = request.session.items
    assert items[-1] is request.node, "the conformance test must run after every other test"
    exchanges = RECORDER.snapshot()
    checked, violations = conformance.check_exchanges(exchanges)
    RECORDER.checked_upto = checked
    stats = request.config._berth_conformance
    stats["by_test"] += checked
    stats["violations"] += len(violations)
    print(f"berth conformance: checked {checked} recorded responses ({conformance.skipped(exchanges)} not AWS JSON, skipped)")
    if any("berth" in getattr(item, "fixturenames", ()) for item in items):
        assert checked > 0, "tests drove a server but no response was recorded: is the proxy in use?"
    xml_checked, xml_violations = xml_conformance.check_exchanges(exchanges)
    print(f"berth conformance: checked {xml_checked} recorded query-protocol (XML) answers")
    assert not violations, (
        f"{len(violations)} violation(s) of the botocore models in {checked} recorded "
        f"responses:\n{conformance.report(violations)}"
    )
    assert not xml_violations, (
        f"{len(xml_violations)} violation(s) of the botocore models in {xml_checked} XML "
        f"answers:\n{conformance.report(xml_violations)}"
    )


"""The conformance check over every response the suites received: collected last (see
conftest.py), it walks all recorded AWS JSON exchanges, each against its own service's botocore model
(ECS, CloudWatch Logs, CloudWatch, ...); CBOR, query and XML exchanges are skipped."""

import pytest

import conformance
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
    assert not violations, (
        f"{len(violations)} violation(s) of the botocore models in {checked} recorded "
        f"responses:\n{conformance.report(violations)}"
    )

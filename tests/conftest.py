"""Fixtures of the client-facing suites: a `berth server` per test module behind a recording
proxy, and the end-of-session conformance check over every recorded response."""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest

import conformance
import harness
from harness import RECORDER, Berth

CONFORMANCE_TEST = "test_every_recorded_response_matches_the_botocore_ecs_model"


def pytest_configure(config: pytest.Config) -> None:
    harness.isolate_aws_environment()
    config._berth_conformance = {"by_test": 0, "after_test": 0, "violations": 0}  # type: ignore[attr-defined]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The conformance test runs last, whatever the file order."""
    last = [item for item in items if item.get_closest_marker("run_last")]
    items[:] = [item for item in items if not item.get_closest_marker("run_last")] + last


def pytest_runtest_setup(item: pytest.Item) -> None:
    RECORDER.current_test = item.nodeid


@pytest.fixture(scope="module")
def berth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Berth]:
    """A fresh `berth server` on a new data dir for the module, behind a recording proxy.
    Teardown fails if the server died during the module."""
    running = harness.start_berth(tmp_path_factory.mktemp("berth-data"))
    try:
        yield running
    finally:
        harness.stop_berth(running)


@pytest.fixture(scope="module")
def ecs(berth: Berth):
    """The module's boto3 ECS client."""
    return berth.ecs


@pytest.fixture
def unique() -> "Unique":
    """Makes names no other test uses: unique('web') -> 'web-3f2a9c1d'."""
    return Unique()


class Unique:
    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]

    def __call__(self, base: str) -> str:
        return f"{base}-{self.tag}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Backstop of the conformance test: checks whatever was recorded after it ran (or
    everything, if it was not selected) and fails the run on a violation."""
    exchanges = RECORDER.snapshot()[RECORDER.checked_upto :]
    if not exchanges:
        return
    checked, violations = conformance.check_exchanges(exchanges)
    RECORDER.checked_upto += checked
    stats = session.config._berth_conformance  # type: ignore[attr-defined]
    stats["after_test"] += checked
    stats["violations"] += len(violations)
    if violations:
        print(
            f"\nberth conformance: {len(violations)} violation(s) in {checked} responses "
            f"recorded after the conformance test:\n{conformance.report(violations)}"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    stats = config._berth_conformance  # type: ignore[attr-defined]
    total = stats["by_test"] + stats["after_test"]
    if total:
        terminalreporter.write_line(
            f"berth conformance: checked {total} recorded responses against the botocore ECS "
            f"model ({stats['by_test']} by the conformance test, {stats['after_test']} after it); "
            f"{stats['violations']} violation(s)."
        )

"""Fixtures of the client-facing suites: a `berth server` per test module behind a recording
proxy, and the end-of-session conformance check over every recorded response."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest

import conformance
import harness
import leaks
from harness import RECORDER, Berth

CONFORMANCE_TEST = "test_every_recorded_response_matches_the_botocore_ecs_model"


def pytest_configure(config: pytest.Config) -> None:
    harness.isolate_aws_environment()
    config._berth_conformance = {"by_test": 0, "after_test": 0, "violations": 0}  # type: ignore[attr-defined]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The conformance test runs last, whatever the file order; just before it, the tests
    that wait on a slow server clock (SLOW_CLOCK_FIXTURES), so that clock runs while the
    others do."""
    last = [item for item in items if item.get_closest_marker("run_last")]
    rest = [item for item in items if not item.get_closest_marker("run_last")]
    waiting = [item for item in rest if uses_slow_clock(item)]
    items[:] = [item for item in rest if not uses_slow_clock(item)] + waiting + last


# Session fixtures whose server clock (a GC sweep every 60 s) should start as early as the
# Docker tests do; their tests run at the end of the session.
SLOW_CLOCK_FIXTURES = ("short_retention_up",)


def uses_slow_clock(item: pytest.Item) -> bool:
    return any(name in getattr(item, "fixturenames", ()) for name in SLOW_CLOCK_FIXTURES)


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


@pytest.fixture(scope="session")
def docker_ready(request: pytest.FixtureRequest) -> None:
    """A Docker daemon that answers and the local test image (busybox:latest and
    berth-test/busybox:latest), made so by the project scripts. Fails loudly, never skips.
    Also starts the slow-clock fixtures the selected tests use, so their clocks run from the
    first Docker test on."""
    harness.ensure_docker_and_test_image()
    for name in SLOW_CLOCK_FIXTURES:
        if any(name in getattr(item, "fixturenames", ()) for item in request.session.items):
            request.getfixturevalue(name)


@dataclass
class StoppedTaskUnderShortRetention:
    """A `berth up` started with --stopped-task-retention 2s, and a task that ran on it and
    stopped."""

    up: harness.BerthUp
    started: float  # time.monotonic() when the server was started
    task_arn: str
    stopped: dict  # DescribeTasks' view of the task right after it stopped


@pytest.fixture(scope="session")
def short_retention_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoppedTaskUnderShortRetention]:
    """`berth up --stopped-task-retention 2s` with one task run to STOPPED at once. Started as
    early as the Docker tests (through docker_ready): the server sweeps stopped tasks only every
    60 s, so its test, ordered last, waits little or not at all."""
    harness.ensure_docker_and_test_image()
    started = time.monotonic()
    up = harness.start_berth_up(tmp_path_factory.mktemp("berth-up-retention"), ["--stopped-task-retention", "2s"])
    try:
        family = f"ephemeral-{uuid.uuid4().hex[:8]}"
        container = {"name": "main", "image": "busybox", "memory": 32, "command": ["true"]}
        up.ecs.register_task_definition(family=family, containerDefinitions=[container])
        out = up.ecs.run_task(cluster=up.cluster, taskDefinition=family)
        assert out["failures"] == [], out["failures"]
        task_arn = out["tasks"][0]["taskArn"]
        stopped = harness.wait_for_task(
            up.ecs, up.cluster, task_arn, harness.status_is("STOPPED"), 30, "the task to stop", up.server.log_tail
        )
        yield StoppedTaskUnderShortRetention(up, started, task_arn, stopped)
    finally:
        harness.stop_berth_up(up)


@pytest.fixture(scope="module")
def berth_up(docker_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.BerthUp]:
    """`berth up` on a fresh data dir for the module (its agent on the real Docker daemon),
    behind a recording proxy. Teardown removes the module's containers and fails if Berth
    died during the module."""
    up = harness.start_berth_up(tmp_path_factory.mktemp("berth-up"))
    try:
        yield up
    finally:
        harness.stop_berth_up(up)


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
    """The leak check over the whole session, then the backstop of the conformance test:
    checks whatever was recorded after it ran (or everything, if it was not selected) and
    fails the run on a violation."""
    check_for_leaks(session)
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


def check_for_leaks(session: pytest.Session) -> None:
    """Issue 13's target: no secret value a test stored shows in plain text in any recorded
    answer, nor in any data dir or log of a Berth process of the session."""
    if not leaks.SECRET_VALUES:
        return
    findings, responses, files = leaks.scan(RECORDER.snapshot())
    session.config._berth_leaks = (len(leaks.SECRET_VALUES), responses, files, len(findings))  # type: ignore[attr-defined]
    if findings:
        print("\nberth secret leaks:\n" + "\n".join(findings[:50]))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    checked = getattr(config, "_berth_leaks", None)
    if checked:
        values, responses, files, found = checked
        terminalreporter.write_line(
            f"berth secret leaks: grepped {responses} recorded responses and {files} files of the "
            f"session's data dirs and logs for {values} secret values; {found} found."
        )
    stats = config._berth_conformance  # type: ignore[attr-defined]
    total = stats["by_test"] + stats["after_test"]
    if total:
        terminalreporter.write_line(
            f"berth conformance: checked {total} recorded responses against their services' botocore "
            f"models ({stats['by_test']} by the conformance test, {stats['after_test']} after it); "
            f"{stats['violations']} violation(s)."
        )

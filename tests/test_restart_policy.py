"""Issue 18's container restart policies on real containers: a `berth agent` on the machine's
Docker daemon (a separate process, so that the test can kill it with SIGKILL), driven with
boto3 signed with the server's own keys.

ECS restarts a container only if it ran for `restartAttemptPeriod` seconds, at least 60: the
clock is not faked, so the three restarts take three minutes. Three tasks run side by side
meanwhile:
- `repeats` exits 3 after 61 s, every time: restarted in place three times (the same Docker
  container, the task RUNNING throughout), one of them by an agent started again after a
  SIGKILL, which finds the container exited and restarts it once;
- `ignored` exits 0 after 61 s, and 0 is one of its ignoredExitCodes: the task stops;
- `early` exits 3 after 2 s, sooner than its attempt period: the task stops."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fault_helpers import FaultAgent
from harness import LABEL_CLUSTER, BerthUp, describe_task, docker, remove_containers, wait_until

pytestmark = pytest.mark.waits

# Counts its runs in its own filesystem (kept across restarts in place), then runs 61 s and
# exits with the code given; leaves at once on SIGTERM.
RUN_THEN_EXIT = "trap 'exit 0' TERM; n=$(cat /runs 2>/dev/null || echo 0); echo $((n+1)) > /runs; sleep {secs} & wait $!; exit {code}"
POLICY = {"enabled": True, "restartAttemptPeriod": 60}


def register(ecs: Any, family: str, secs: int, code: int, policy: dict) -> None:
    command = ["sh", "-c", RUN_THEN_EXIT.format(secs=secs, code=code)]
    container = {"name": "main", "image": "busybox", "memory": 32, "command": command, "restartPolicy": policy}
    ecs.register_task_definition(family=family, containerDefinitions=[container])


def restarts(container: dict) -> int:
    reason = container.get("reason") or ""
    if not reason.startswith("Restarted by its restartPolicy"):
        return 0
    return int(reason.rsplit("(restart ", 1)[1].rstrip(")"))


def runs(container_id: str) -> int:
    return int(docker("exec", container_id, "cat", "/runs").strip())


def test_containers_are_restarted_in_place_by_their_policy_across_an_agent_kill(berth_up: BerthUp, unique, tmp_path):
    ecs = berth_up.ecs
    cluster = unique("restarts")
    ecs.create_cluster(clusterName=cluster)
    agent = FaultAgent(berth_up.server, cluster, tmp_path / "agent").start()
    try:
        wait_until(
            lambda: ecs.list_container_instances(cluster=cluster)["containerInstanceArns"],
            30,
            "the agent to register",
            diagnose=agent.log_tail,
        )
        families = {name: unique(name) for name in ("repeats", "ignored", "early")}
        register(ecs, families["repeats"], 61, 3, POLICY)
        register(ecs, families["ignored"], 61, 0, {**POLICY, "ignoredExitCodes": [0]})
        register(ecs, families["early"], 2, 3, POLICY)
        tasks = {}
        for name, family in families.items():
            out = ecs.run_task(cluster=cluster, taskDefinition=family)
            assert out["failures"] == [], out["failures"]
            tasks[name] = out["tasks"][0]["taskArn"]

        def task(name: str) -> dict:
            return describe_task(ecs, cluster, tasks[name])

        def main(name: str) -> dict:
            return task(name)["containers"][0]

        seen_statuses: set[str] = set()

        def repeats_restarted(n: int):
            def probe() -> dict | None:
                t = task("repeats")
                if t["lastStatus"] != "PENDING":
                    seen_statuses.add(t["lastStatus"])
                c = t["containers"][0]
                return c if restarts(c) >= n else None

            return probe

        def diagnose() -> str:
            return f"repeats: {main('repeats')}\nagent:\n{agent.log_tail()}"

        # An early exit is final.
        early = wait_until(lambda: task("early") if task("early")["lastStatus"] == "STOPPED" else None, 30, "early to stop", diagnose=diagnose)
        assert early["stopCode"] == "EssentialContainerExited", early
        assert early["containers"][0]["exitCode"] == 3
        assert restarts(early["containers"][0]) == 0

        # The first restart, by the first agent.
        first = wait_until(repeats_restarted(1), 90, "the first restart", interval=1, diagnose=diagnose)
        container_id = first["runtimeId"]
        assert first["lastStatus"] == "RUNNING" and first["exitCode"] == 3, first
        assert first["reason"] == "Restarted by its restartPolicy after exiting with code 3 (restart 1)"
        assert runs(container_id) == 2

        # An ignored exit code stops its task (it ran 61 s: only the code keeps it down).
        ignored = wait_until(lambda: task("ignored") if task("ignored")["lastStatus"] == "STOPPED" else None, 30, "ignored to stop", diagnose=diagnose)
        assert ignored["stopCode"] == "EssentialContainerExited", ignored
        assert ignored["containers"][0]["exitCode"] == 0
        assert restarts(ignored["containers"][0]) == 0

        # The agent dies; the container exits while it is away; the next agent restarts it,
        # once, as restart 2.
        agent.kill9()
        wait_until(
            lambda: docker("inspect", "-f", "{{.State.Running}}", container_id).strip() == "false",
            75,
            "the container to exit while the agent is away",
        )
        assert restarts(main("repeats")) == 1
        agent.start()
        second = wait_until(repeats_restarted(2), 60, "the restart by the next agent", interval=1, diagnose=diagnose)
        assert second["runtimeId"] == container_id
        third = wait_until(repeats_restarted(3), 90, "the third restart", interval=1, diagnose=diagnose)
        assert third["runtimeId"] == container_id and third["exitCode"] == 3, third
        time.sleep(2)
        assert restarts(main("repeats")) == 3
        # One run per start: three restarts, none doubled; one container for the task.
        assert runs(container_id) == 4
        assert len(docker("ps", "-aq", "--filter", f"label={LABEL_CLUSTER}={cluster}", "--filter", "status=running").split()) == 1
        assert seen_statuses == {"RUNNING"}, f"the task left RUNNING: {seen_statuses}"
        assert task("repeats")["lastStatus"] == "RUNNING"

        # A stop is final: the policy does not undo it.
        ecs.stop_task(cluster=cluster, task=tasks["repeats"])
        stopped = wait_until(lambda: task("repeats") if task("repeats")["lastStatus"] == "STOPPED" else None, 30, "repeats to stop", diagnose=diagnose)
        assert stopped["stopCode"] == "UserInitiated"
        time.sleep(2)
        assert docker("inspect", "-f", "{{.State.Running}}", container_id).strip() == "false"
    finally:
        agent.close()
        remove_containers(f"{LABEL_CLUSTER}={cluster}")

"""Issue 6's fault suite: real `berth server` and `berth agent` processes on the machine's
Docker daemon, with faults injected — agents killed with SIGKILL or frozen with SIGSTOP,
their identity files deleted or corrupted, the server killed under a stream of writes, and
the Docker daemon itself restarted. Each scenario checks its invariants on every trial and
counts violations; the module prints the table (fault, trials, invariant, violations) at the
end and fails on any violation.

Runnable alone: `BERTH_BIN=$PWD/target/debug/berth .venv/bin/pytest tests/test_faults.py -q -s`.
The SIGSTOP scenario runs its server with `--agent-grace 6s` (the default is 20 s) to keep
the suite short. The dockerd scenario restarts the machine's Docker daemon (SIGTERM, as
`systemctl restart docker` does): nothing else should use Docker meanwhile."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

import pytest
from botocore.exceptions import ClientError

from fault_helpers import CRASHER, SLEEPER, TABLE, Fault, FaultCluster, describe, duplicates, fault, poll
from fault_helpers import render_table, restart_dockerd
from harness import LABEL_CLUSTER, heartbeat, remove_containers, wait_until

# The agent's documented heartbeat interval, and the grace of the SIGSTOP scenario's server.
HEARTBEAT = 5
GRACE = 6
# How long after an instance is marked disconnected its service tasks may take to run
# elsewhere: the service controller replaces them as soon as it sees the instance
# disconnected (it reconciles at least every second), plus time to start the containers.
REPLACEMENT_BOUND = 15
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module", autouse=True)
def fault_table(request: pytest.FixtureRequest, docker_ready: None):
    """Prints the table of every scenario of the module at its end; fails on a violation."""
    TABLE.clear()
    yield
    lines = ["", "fault suite:", *render_table(TABLE).splitlines()]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    # Shown with or without -s: output capture is suspended while the table is written.
    with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
        for line in lines:
            if reporter is not None:
                reporter.write_line(line)
            else:
                print(line)
    total = sum(f.violations for f in TABLE)
    if total:
        pytest.fail(f"fault suite: {total} violation(s)\n" + "\n".join(f.summary() for f in TABLE if f.violations))


def clean(text: str) -> str:
    """Log text without terminal colours."""
    return ANSI.sub("", text)


def running_by_task(cluster: FaultCluster, family: str) -> dict[str, str]:
    """task ARN -> id of its running container, for the containers of `family`."""
    return {c["task"]: c["id"] for c in cluster.containers(all_states=False) if c["family"] == family}


def wait_running_containers(cluster: FaultCluster, family: str, tasks: set[str], timeout: float) -> dict[str, str]:
    """Waits until exactly `tasks` have running containers of `family`; returns them."""

    def ready() -> Optional[dict[str, str]]:
        found = running_by_task(cluster, family)
        return found if set(found) == tasks else None

    return wait_until(ready, timeout, f"running containers of {family}", diagnose=cluster.logs)


def wait_service_running(cluster: FaultCluster, service: str, count: int, timeout: float) -> list[dict]:
    """Waits until the service has exactly `count` tasks desired RUNNING, all RUNNING."""

    def ready() -> Optional[list[dict]]:
        tasks = cluster.service_tasks(service)
        return tasks if len(tasks) == count and all(t["lastStatus"] == "RUNNING" for t in tasks) else None

    return wait_until(ready, timeout, f"service {service} to run {count} tasks", interval=0.5, diagnose=cluster.logs)


def create_service(cluster: FaultCluster, name: str, task_definition: str, count: int) -> None:
    ecs = cluster.ecs
    ecs.create_service(cluster=cluster.name, serviceName=name, taskDefinition=task_definition, desiredCount=count)


def brief(tasks: list[dict]) -> list[tuple[str, str]]:
    """(last 8 characters of the ARN, lastStatus) of each task, for messages."""
    return [(t["taskArn"][-8:], t["lastStatus"]) for t in tasks]


# ---------------------------------------------------------------------------------------------
# 1. kill -9 of the agent, ten times
# ---------------------------------------------------------------------------------------------

RECONCILED = "the agent reconciles within 10 s of each start"
KEEPS_ID = "every running container keeps its id"
NO_DUPLICATE = "no task duplicated (one container per task and name)"
RESTARTS = "the crash loop's restart count never decreases"


def test_ten_kill_9s_of_the_agent_keep_every_container_and_duplicate_none(tmp_path: Path, unique) -> None:
    with fault("kill -9 agent (3-task service + crash loop)", RECONCILED, KEEPS_ID, NO_DUPLICATE, RESTARTS) as f:
        cluster = FaultCluster(tmp_path, unique("kill9"))
        try:
            cluster.start()
            create_service(cluster, "steady", cluster.register("steady", SLEEPER), 3)
            create_service(cluster, "crashloop", cluster.register("crashloop", CRASHER), 1)
            steady = {t["taskArn"] for t in wait_service_running(cluster, "steady", 3, 60)}
            ids = wait_running_containers(cluster, "steady", steady, 30)

            def restart_count() -> int:
                """Tasks the crash loop has had: desired RUNNING first, then STOPPED, as one
                set (a task that changes lists between the two calls is counted once)."""
                arns = {t["taskArn"] for t in cluster.service_tasks("crashloop")}
                arns |= {t["taskArn"] for t in cluster.tasks(serviceName="crashloop", desiredStatus="STOPPED")}
                return len(arns)

            wait_until(lambda: restart_count() >= 2, 60, "the crash loop to go round", diagnose=cluster.logs)
            first_count = last_count = restart_count()
            rng = random.Random(6)
            for trial in range(10):
                time.sleep(rng.uniform(0.5, 2.5))
                last_count = kill_9_agent_once(cluster, f, trial, steady, ids, restart_count, last_count)
            f.check(RESTARTS, last_count > first_count, f"the crash loop stopped ({first_count} -> {last_count})")
        finally:
            cluster.close()
    assert f.violations == 0, f.summary()


def kill_9_agent_once(
    cluster: FaultCluster, f: Fault, trial: int, steady: set[str], ids: dict[str, str], restart_count, last_count: int
) -> int:
    """One trial: SIGKILL the agent, start it again, check every invariant; returns the crash
    loop's restart count."""
    agent = cluster.agents[0]
    agent.kill9()
    offset = agent.log_size()
    agent.start()
    f.trials += 1
    state: dict[str, Any] = {}

    def reconciled() -> bool:
        log = clean(agent.log_since(offset))
        state["registered"] = " registered " in log
        state["adopted"] = sorted(a[-8:] for a in steady if f"re-adopting containers task={a}" in log)
        state["connected"] = [i.get("agentConnected") for i in cluster.instances()]
        state["tasks"] = {t["taskArn"]: t["lastStatus"] for t in cluster.service_tasks("steady")}
        state["containers"] = running_by_task(cluster, "steady")
        return (
            state["registered"]
            and len(state["adopted"]) == len(steady)
            and state["connected"] == [True]
            and set(state["tasks"]) == steady
            and all(s == "RUNNING" for s in state["tasks"].values())
            and set(state["containers"]) == steady
        )

    began = time.monotonic()
    if f.check(RECONCILED, bool(poll(reconciled, 10, interval=0.25)), f"trial {trial}: {describe(state)}"):
        print(f"kill -9 trial {trial}: reconciled in {time.monotonic() - began:.1f}s")
    now = running_by_task(cluster, "steady")
    changed = {t[-8:]: (ids[t][:12], (now.get(t) or "-")[:12]) for t in ids if now.get(t) != ids[t]}
    f.check(KEEPS_ID, not changed, f"trial {trial}: containers changed: {changed}")
    dups = duplicates(cluster.containers())
    f.check(NO_DUPLICATE, not dups, f"trial {trial}: {dups}")
    count = restart_count()
    f.check(RESTARTS, count >= last_count, f"trial {trial}: {last_count} -> {count}")
    return max(last_count, count)


# ---------------------------------------------------------------------------------------------
# 2. The agent's identity deleted or corrupted
# ---------------------------------------------------------------------------------------------

SAME_IDENTITY = "same instance identity (or a clear refusal)"
SIGTERM_CLEAN = "SIGTERM: the agent exits 0, containers keep running"
GARBAGE = b'\x00\x01{"cluster": '


def test_a_deleted_or_corrupt_identity_brings_back_the_same_instance(tmp_path: Path, unique) -> None:
    with fault("agent identity deleted or corrupted", SAME_IDENTITY, NO_DUPLICATE, KEEPS_ID, SIGTERM_CLEAN) as f:
        cluster = FaultCluster(tmp_path, unique("ident"))
        try:
            cluster.start()
            agent = cluster.agents[0]
            [instance] = cluster.instances()
            arn = instance["containerInstanceArn"]
            out = cluster.ecs.run_task(cluster=cluster.name, taskDefinition=cluster.register("ident", SLEEPER), count=2)
            assert out["failures"] == [], out["failures"]
            arns = {t["taskArn"] for t in out["tasks"]}
            ids = wait_running_containers(cluster, "ident", arns, 30)
            primary = agent.data_dir / "agent-identity.json"
            backup = agent.data_dir / "agent-identity.json.bak"

            def corrupt(*paths: Path) -> None:
                for path in paths:
                    path.write_bytes(GARBAGE)

            def delete(*paths: Path) -> None:
                for path in paths:
                    path.unlink(missing_ok=True)

            damages = [
                ("identity file deleted", lambda: delete(primary)),
                ("identity file corrupted", lambda: corrupt(primary)),
                ("identity file and backup deleted", lambda: delete(primary, backup)),
                ("identity file and backup corrupted", lambda: corrupt(primary, backup)),
            ]
            for label, damage in damages:
                agent.kill9()
                damage()
                offset = agent.log_size()
                agent.start()
                f.trials += 1

                def back() -> Optional[list[dict]]:
                    registered = " registered " in clean(agent.log_since(offset))
                    instances = cluster.instances()
                    return instances if registered and all(i.get("agentConnected") for i in instances) else None

                found = [i["containerInstanceArn"] for i in poll(back, 15) or cluster.instances()]
                detail = f"{label}: instances {found}, expected [{arn}]\n{agent.log_tail(10)}"
                f.check(SAME_IDENTITY, found == [arn] and agent.alive(), detail)
                now = poll(lambda: (r := running_by_task(cluster, "ident")) and set(r) == arns and r, 10) or {}
                f.check(KEEPS_ID, now == ids, f"{label}: {ids} -> {now}")
                dups = duplicates(cluster.containers())
                f.check(NO_DUPLICATE, not dups, f"{label}: {dups}")

            # A clean stop: SIGTERM ends the agent, its containers keep running.
            proc = agent.proc
            assert proc is not None
            agent.stop()
            f.check(SIGTERM_CLEAN, proc.returncode == 0, f"exit code {proc.returncode}")
            f.check(SIGTERM_CLEAN, running_by_task(cluster, "ident") == ids, "containers did not outlive the agent")

            # Nothing left says who it was, but the unreadable files show it was someone.
            remove_containers(f"{LABEL_CLUSTER}={cluster.name}")
            corrupt(primary, backup)
            offset = agent.log_size()
            proc = agent.start().proc
            assert proc is not None
            f.trials += 1
            exited = poll(lambda: proc.poll() is not None, 15)
            log = clean(agent.log_since(offset))
            refused = bool(exited) and proc.returncode != 0 and "refusing to start" in log
            found = [i["containerInstanceArn"] for i in cluster.instances()]
            detail = f"no clear refusal (exit {proc.poll()}), instances {found}:\n{log[-1500:]}"
            if f.check(SAME_IDENTITY, refused and found == [arn], detail):
                print("refusal:", [line for line in log.splitlines() if "refusing" in line][-1][:400])
            agent.proc = None
        finally:
            cluster.close()
    assert f.violations == 0, f.summary()


# ---------------------------------------------------------------------------------------------
# 3. One of three agents frozen (SIGSTOP) under a 6-task service
# ---------------------------------------------------------------------------------------------

DISCONNECTED = f"agentConnected=false within the grace ({GRACE} s + 2 s)"
REPLACED = f"replacements run on the other two within {REPLACEMENT_BOUND} s"
EXACTLY_SIX = "after SIGCONT the service has exactly 6 tasks (server and Docker)"


def test_a_frozen_agent_is_disconnected_its_tasks_replaced_and_extras_stopped_on_return(tmp_path: Path, unique) -> None:
    with fault("SIGSTOP 1 of 3 agents (6-task service)", DISCONNECTED, REPLACED, EXACTLY_SIX) as f:
        cluster = FaultCluster(tmp_path, unique("frozen"), agents=3, server_args=["--agent-grace", f"{GRACE}s"])
        try:
            cluster.start()
            create_service(cluster, "six", cluster.register("six", SLEEPER, memory=16), 6)
            per_instance: dict[str, int] = {}
            for task in wait_service_running(cluster, "six", 6, 90):
                per_instance[task["containerInstanceArn"]] = per_instance.get(task["containerInstanceArn"], 0) + 1
            victim_arn = max(per_instance, key=lambda a: per_instance[a])
            victim = next(a for a in cluster.agents if victim_arn in (a.data_dir / "agent-identity.json").read_text())
            victim.freeze()
            f.trials += 1
            frozen_at = time.monotonic()

            def disconnected() -> bool:
                return any(
                    i["containerInstanceArn"] == victim_arn and i.get("agentConnected") is False
                    for i in cluster.instances()
                )

            gone = poll(disconnected, GRACE + HEARTBEAT + 10, interval=0.2)
            took = time.monotonic() - frozen_at
            f.check(DISCONNECTED, bool(gone) and took <= GRACE + 2, f"disconnected={bool(gone)} after {took:.1f}s")
            print(f"SIGSTOP: agentConnected=false after {took:.1f}s")

            def replaced() -> Optional[list[dict]]:
                running = [
                    t
                    for t in cluster.service_tasks("six")
                    if t["lastStatus"] == "RUNNING" and t["containerInstanceArn"] != victim_arn
                ]
                return running if len(running) >= 6 else None

            began = time.monotonic()
            if f.check(
                REPLACED,
                bool(poll(replaced, REPLACEMENT_BOUND, interval=0.5)),
                f"after {REPLACEMENT_BOUND}s: {brief(cluster.service_tasks('six'))}",
            ):
                took = time.monotonic() - began
                print(f"SIGSTOP: 6 tasks run on the other instances {took:.1f}s after the disconnect")
            victim.thaw()

            def settled() -> bool:
                tasks = cluster.service_tasks("six")
                running = [c for c in cluster.containers(all_states=False) if c["family"] == "six"]
                return len(tasks) == 6 and all(t["lastStatus"] == "RUNNING" for t in tasks) and len(running) == 6

            ok = poll(settled, 60, interval=0.5)
            if ok:
                time.sleep(3)  # and it stays so
                ok = settled()
            running = [c["task"][-8:] for c in cluster.containers(all_states=False) if c["family"] == "six"]
            detail = f"tasks {brief(cluster.service_tasks('six'))}, running containers of {running}"
            f.check(EXACTLY_SIX, bool(ok), detail)
        finally:
            cluster.close()
    assert f.violations == 0, f.summary()


# ---------------------------------------------------------------------------------------------
# 4. kill -9 of the server under a stream of 500 writes
# ---------------------------------------------------------------------------------------------

CALLS = 500
WORKERS = 4
KILL_AT = 200
REFLECTED = "every acknowledged call is reflected after restart"
ONCE = "no call applied twice"
TOKEN = "a RunTask retried with its clientToken returns the same task"
SERVER_SIGTERM = "SIGTERM: the server exits 0 within 15 s"


class Call:
    """One API call of the stream and what came of it."""

    def __init__(self, index: int, operation: str, params: dict) -> None:
        self.index = index
        self.operation = operation
        self.params = params
        self.outcome = "unsent"  # acked | rejected | no-response
        self.response: Any = None

    @property
    def service(self) -> str:
        return self.params.get("serviceName") or self.params.get("service", "")


def plan_calls(cluster: str, task_definition: str) -> list[list[Call]]:
    """The 500 calls, per worker: RunTask (each with its own startedBy and clientToken), and
    services that one worker creates and then updates, so the order of a service's updates is
    known."""
    plans: list[list[Call]] = [[] for _ in range(WORKERS)]
    for worker, plan in enumerate(plans):
        service = ""
        for j in range(CALLS // WORKERS):
            i = j * WORKERS + worker
            if j % 10 == 0:
                service = f"svc-{i}"
                params = dict(serviceName=service, taskDefinition=task_definition, desiredCount=1)
                plan.append(Call(i, "create_service", dict(cluster=cluster, **params)))
            elif j % 10 in (4, 8):
                params = dict(service=service, desiredCount=(i // 7) % 4)
                plan.append(Call(i, "update_service", dict(cluster=cluster, **params)))
            else:
                params = dict(taskDefinition=task_definition, startedBy=f"f4-{i}", clientToken=f"f4-token-{i}")
                plan.append(Call(i, "run_task", dict(cluster=cluster, **params)))
    return plans


def run_stream(cluster: FaultCluster, f: Fault, plans: list[list[Call]]) -> None:
    """Sends every call once over WORKERS threads and kills the server with SIGKILL once
    KILL_AT calls went out (then starts it again on its port). A call that gets no answer is
    not sent again; its worker waits for the restart and goes on."""
    server = cluster.server
    sent = [0]
    lock = threading.Lock()
    killed = threading.Event()
    restarted = threading.Event()

    def work(plan: list[Call]) -> None:
        client = server.client()
        for call in plan:
            try:
                call.response = getattr(client, call.operation)(**call.params)
                call.outcome = "acked"
            except ClientError as e:
                call.outcome = "rejected"
                call.response = e.response.get("Error")
            except Exception as e:  # noqa: BLE001 - no response at all
                call.outcome = "no-response"
                call.response = f"{type(e).__name__}: {e}"
                if killed.is_set():
                    restarted.wait(60)
            with lock:
                sent[0] += 1

    def killer() -> None:
        wait_until(lambda: sent[0] >= KILL_AT - WORKERS, 120, "the stream to get going")
        server.kill9()
        f.trials += 1
        killed.set()
        time.sleep(0.5)
        server.restart()
        restarted.set()

    threads = [threading.Thread(target=work, args=(plan,)) for plan in plans] + [threading.Thread(target=killer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "the stream did not finish within 5 min"


def check_tasks(cluster: FaultCluster, f: Fault, calls: list[Call]) -> None:
    """Every acknowledged RunTask's task is there, desired RUNNING; no startedBy has two."""
    by_started: dict[str, list[dict]] = {}
    for task in cluster.tasks(desiredStatus="RUNNING") + cluster.tasks(desiredStatus="STOPPED"):
        by_started.setdefault(task.get("startedBy", ""), []).append(task)
    for c in calls:
        if c.operation != "run_task":
            continue
        found = by_started.get(c.params["startedBy"], [])
        f.check(ONCE, len(found) <= 1, f"RunTask {c.index} ({c.outcome}) made {len(found)} tasks")
        if c.outcome == "acked" and c.response.get("tasks"):
            arn = c.response["tasks"][0]["taskArn"]
            here = [t for t in found if t["taskArn"] == arn and t["desiredStatus"] == "RUNNING"]
            f.check(REFLECTED, bool(here), f"RunTask {c.index}: {arn} lost after the restart")


def check_services(cluster: FaultCluster, f: Fault, plans: list[list[Call]]) -> None:
    """Every acknowledged CreateService's service is ACTIVE; each service's desiredCount is
    its last acknowledged one, or one of the unanswered updates after it."""
    names = sorted({c.service for plan in plans for c in plan if c.operation != "run_task"})
    services: dict[str, dict] = {}
    try:
        for i in range(0, len(names), 10):
            out = cluster.ecs.describe_services(cluster=cluster.name, services=names[i : i + 10])
            services.update({s["serviceName"]: s for s in out["services"]})
    except ClientError as e:
        f.check(REFLECTED, False, f"DescribeServices failed: {e}")
    for plan in plans:
        history: dict[str, list[Call]] = {}
        for c in plan:
            if c.operation != "run_task":
                history.setdefault(c.service, []).append(c)
        for name, changes in history.items():
            service = services.get(name)
            if changes[0].outcome == "acked":
                ok = service is not None and service["status"] == "ACTIVE"
                f.check(REFLECTED, ok, f"service {name} lost after the restart")
            acked = [i for i, c in enumerate(changes) if c.outcome == "acked"]
            if service is None or not acked:
                continue
            allowed = {changes[acked[-1]].params["desiredCount"]}
            allowed |= {c.params["desiredCount"] for c in changes[acked[-1] + 1 :] if c.outcome == "no-response"}
            detail = f"service {name}: desiredCount {service['desiredCount']}, acknowledged {allowed}"
            f.check(REFLECTED, service["desiredCount"] in allowed, detail)


def check_client_tokens(cluster: FaultCluster, f: Fault, calls: list[Call]) -> None:
    """RunTask sent again with its clientToken: an acknowledged one answers the same task, and
    no call ever makes a second task."""
    client = cluster.server.client()
    acked = [c for c in calls if c.operation == "run_task" and c.outcome == "acked" and c.response.get("tasks")]
    unanswered = [c for c in calls if c.operation == "run_task" and c.outcome == "no-response"]
    for c in acked[:5] + unanswered[:5]:
        arns = [t["taskArn"] for t in client.run_task(**c.params).get("tasks", [])]
        if c.outcome == "acked":
            first = c.response["tasks"][0]["taskArn"]
            f.check(TOKEN, arns == [first], f"RunTask {c.index} sent again: {arns} != [{first}]")
        made = cluster.tasks(startedBy=c.params["startedBy"])
        f.check(TOKEN, len(made) == 1, f"RunTask {c.index} ({c.outcome}) sent again: {len(made)} tasks")


def test_a_server_killed_under_500_writes_keeps_every_acknowledged_one_exactly_once(tmp_path: Path, unique) -> None:
    with fault("kill -9 server (500 RunTask/CreateService/UpdateService)", REFLECTED, ONCE, TOKEN, SERVER_SIGTERM) as f:
        cluster = FaultCluster(tmp_path, unique("writes"), agents=0)
        stop_beats = threading.Event()
        try:
            cluster.start()
            server = cluster.server
            # A container instance without an agent: tasks placed on it stay PROVISIONING,
            # and heartbeats sent from here keep it connected across the restarts.
            resources = [
                {"name": "CPU", "type": "INTEGER", "integerValue": 1_000_000},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 1_000_000},
            ]
            registered = cluster.ecs.register_container_instance(cluster=cluster.name, totalResources=resources)
            instance_id = registered["containerInstance"]["containerInstanceArn"].rsplit("/", 1)[-1]

            refused_beats: list[str] = []

            def beat() -> None:
                while not stop_beats.wait(1.0):
                    try:
                        answer = heartbeat(server, cluster.name, instance_id, timeout=5)
                    except OSError:
                        continue
                    if answer.status in (400, 403):
                        refused_beats.append(f"HTTP {answer.status} {answer.body[:200]!r}")

            threading.Thread(target=beat, daemon=True).start()
            plans = plan_calls(cluster.name, cluster.register("writes", SLEEPER, memory=8))
            run_stream(cluster, f, plans)
            # Once more, right after the last acknowledgement.
            server.kill9()
            f.trials += 1
            server.restart()

            calls = [c for plan in plans for c in plan]
            outcomes: dict[str, int] = {}
            for c in calls:
                outcomes[f"{c.operation}:{c.outcome}"] = outcomes.get(f"{c.operation}:{c.outcome}", 0) + 1
            print("server kill -9: call outcomes", dict(sorted(outcomes.items())))
            for c in [c for c in calls if c.outcome == "no-response"][:10]:
                print("  no response:", c.index, c.operation, str(c.response)[:120])
            for operation in ("run_task", "create_service", "update_service"):
                responses = [c.response for c in calls if c.operation == operation][:2]
                f.check(REFLECTED, outcomes.get(f"{operation}:acked", 0) > 0, f"no {operation} acked: {responses}")
            check_tasks(cluster, f, calls)
            check_services(cluster, f, plans)
            check_client_tokens(cluster, f, calls)
            assert not refused_beats, f"the server refused signed heartbeats: {refused_beats[:3]}"

            proc = server.proc
            assert proc is not None
            proc.send_signal(signal.SIGTERM)
            try:
                code: Optional[int] = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                code = None
            f.check(SERVER_SIGTERM, code == 0, f"exit code {code} (None: still running after 15 s)")
        finally:
            stop_beats.set()
            cluster.close()
    assert f.violations == 0, f.summary()


# ---------------------------------------------------------------------------------------------
# 5. The Docker daemon restarted under running tasks
# ---------------------------------------------------------------------------------------------

EXPLAINED = "tasks end STOPPED with exit codes and a reason"
NO_GHOSTS = "no task RUNNING without a running container"
STEADY = "the service returns to steady state"


@pytest.mark.exclusive
def test_a_docker_daemon_restart_ends_tasks_explained_and_services_recover(tmp_path: Path, unique) -> None:
    with fault("dockerd restart (SIGTERM) under running tasks", EXPLAINED, NO_GHOSTS, STEADY) as f:
        cluster = FaultCluster(tmp_path, unique("dockerd"))
        try:
            cluster.start()
            td = cluster.register("survivor", SLEEPER)
            create_service(cluster, "web", td, 2)
            before = {t["taskArn"] for t in wait_service_running(cluster, "web", 2, 60)}
            one_off = cluster.ecs.run_task(cluster=cluster.name, taskDefinition=td, startedBy="one-off")["tasks"][0]
            before.add(one_off["taskArn"])
            wait_running_containers(cluster, "survivor", before, 30)
            away = restart_dockerd(tmp_path / "dockerd.log")
            f.trials += 1
            print(f"dockerd restart: Docker was away {away:.1f}s")

            def describe_before() -> list[dict]:
                return cluster.ecs.describe_tasks(cluster=cluster.name, tasks=sorted(before))["tasks"]

            stopped = poll(lambda: all(t["lastStatus"] == "STOPPED" for t in describe_before()), 60, interval=0.5)
            tasks = describe_before()
            for task in tasks:
                containers = [(c.get("exitCode"), c.get("reason")) for c in task["containers"]]
                ok = (
                    bool(stopped)
                    and task["lastStatus"] == "STOPPED"
                    and bool(task.get("stoppedReason"))
                    and all(code is not None or reason for code, reason in containers)
                )
                detail = f"{task['taskArn'][-8:]}: {task['lastStatus']} {task.get('stoppedReason')!r} {containers}"
                f.check(EXPLAINED, ok, detail)
            sample, container = tasks[0], tasks[0]["containers"][0]
            print(f"dockerd restart: {sample['lastStatus']} ({sample.get('stopCode')}: {sample.get('stoppedReason')})")
            print(f"  container: exit {container.get('exitCode')}, {container.get('reason')}")

            def steady() -> bool:
                fresh = [t for t in cluster.service_tasks("web") if t["taskArn"] not in before]
                return len(fresh) == 2 and all(t["lastStatus"] == "RUNNING" for t in fresh)

            recovered = bool(poll(steady, 60, interval=0.5))
            f.check(STEADY, recovered, f"service tasks: {brief(cluster.service_tasks('web'))}")
            running_here = {c["task"] for c in cluster.containers(all_states=False)}
            ghosts = [t["taskArn"] for t in cluster.tasks() if t["lastStatus"] == "RUNNING"]
            ghosts = [arn for arn in ghosts if arn not in running_here]
            f.check(NO_GHOSTS, not ghosts, f"RUNNING on the server without a running container: {ghosts}")
        finally:
            cluster.close()
    assert f.violations == 0, f.summary()

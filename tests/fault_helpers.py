"""Machinery of the fault suite (test_faults.py): a server that restarts on its own port, a
cluster of real `berth agent` processes on the machine's Docker daemon, what Docker says about
a cluster's containers, the Docker daemon's own restart, and the table of faults, trials,
invariants and violations that the suite prints at the end.

Every wait is bounded, and every helper that starts something has a close() that the tests
call in `finally`, so processes and containers go away (and dockerd comes back) even when a
test fails."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from harness import (
    LABEL_CLUSTER,
    LABEL_CONTAINER_NAME,
    LABEL_TASK_ARN,
    REPO,
    BerthAgent,
    BerthServer,
    Credentials,
    HarnessError,
    docker,
    remove_containers,
    wait_until,
)

# A sleeper that leaves at once on SIGTERM (PID 1 ignores signals it has no handler for).
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
# A container that crashes 2 s after it starts.
CRASHER = ["sh", "-c", "sleep 2; exit 3"]


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------


@dataclass
class Invariant:
    """One invariant of a fault: how often it was checked and what broke it."""

    name: str
    checks: int = 0
    violations: list[str] = field(default_factory=list)


@dataclass
class Fault:
    """A fault scenario: how many times the fault was injected, and its invariants."""

    name: str
    trials: int = 0
    invariants: dict[str, Invariant] = field(default_factory=dict)
    error: Optional[str] = None

    def declare(self, *names: str) -> None:
        """Names the invariants up front, so that a scenario that dies early still shows them."""
        for name in names:
            self.invariants.setdefault(name, Invariant(name))

    def check(self, invariant: str, ok: bool, detail: str = "") -> bool:
        """Counts one check of `invariant`; a failed one is a violation described by `detail`."""
        entry = self.invariants.setdefault(invariant, Invariant(invariant))
        entry.checks += 1
        if not ok:
            entry.violations.append(detail or "violated")
        return ok

    @property
    def violations(self) -> int:
        return sum(len(i.violations) for i in self.invariants.values()) + (1 if self.error else 0)

    def summary(self) -> str:
        lines = []
        for invariant in self.invariants.values():
            for detail in invariant.violations[:5]:
                lines.append(f"{self.name} / {invariant.name}: {detail}")
            if len(invariant.violations) > 5:
                lines.append(f"{self.name} / {invariant.name}: ... {len(invariant.violations) - 5} more")
        if self.error:
            lines.append(f"{self.name}: did not finish: {self.error}")
        return "\n".join(lines)


TABLE: list[Fault] = []


@contextmanager
def fault(name: str, *invariants: str) -> Iterator[Fault]:
    """A scenario's entry in the table; an exception inside marks it unfinished (and is raised
    again). The caller asserts `violations == 0` at the end."""
    entry = Fault(name)
    entry.declare(*invariants)
    TABLE.append(entry)
    try:
        yield entry
    except BaseException as e:
        entry.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        raise


def render_table(faults: Sequence[Fault]) -> str:
    """The table: fault, trials, invariant, violations (one row per invariant)."""
    rows = [("fault", "trials", "invariant", "violations")]
    for entry in faults:
        first = True
        for invariant in entry.invariants.values() or [Invariant("(none)")]:
            name, trials = (entry.name, str(entry.trials)) if first else ("", "")
            rows.append((name, trials, invariant.name, str(len(invariant.violations))))
            first = False
        if entry.error:
            rows.append(("", "", "scenario finished", "1"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(cell.ljust(widths[i]) if i != 3 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# A server that comes back on its own port
# ---------------------------------------------------------------------------------------------


class FaultServer(BerthServer):
    """`berth server` that can be killed and started again on the same port and data dir, so
    that agents and clients keep their URL."""

    def restart(self, timeout: float = 30.0) -> "FaultServer":
        """Starts the server again on the port it had."""
        assert self.port, "start() first"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
            )
        wait_until(
            lambda: self.proc is not None and (self.proc.poll() is not None or self.healthy(timeout=1.0)),
            timeout,
            "the restarted server to answer /healthz",
            interval=0.05,
            diagnose=self.log_tail,
        )
        if self.proc.poll() is not None:
            raise HarnessError(f"the restarted server exited with {self.proc.returncode}.\n{self.log_tail()}")
        kept = Credentials.read(self.credentials_path)
        if kept != self.credentials:
            raise HarnessError(f"the restarted server changed its credentials ({self.credentials_path})")
        return self

    def kill9(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def close(self) -> None:
        """Stops the server however it is (a test that failed may have left it dead)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None


# ---------------------------------------------------------------------------------------------
# Agents
# ---------------------------------------------------------------------------------------------


class FaultAgent(BerthAgent):
    """`berth agent` that the suite kills, freezes and restarts."""

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        """Ends the agent however it is (frozen, dead or alive); containers are removed by
        the cluster."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


class FaultCluster:
    """A server (its own data dir and port), a cluster of a unique name on it, and `agents`
    real agents on the machine's Docker daemon. close() ends everything and removes the
    cluster's containers."""

    def __init__(self, base: Path, name: str, agents: int = 1, server_args: Sequence[str] = ()) -> None:
        self.base = Path(base)
        self.name = name
        self.server = FaultServer(self.base / "server", extra_args=list(server_args))
        self.agents: list[FaultAgent] = [
            FaultAgent(self.server, name, self.base / f"agent-{i}") for i in range(agents)
        ]
        self._ecs = None

    def start(self) -> "FaultCluster":
        self.server.start()
        self.ecs.create_cluster(clusterName=self.name)
        for agent in self.agents:
            agent.start()
        if self.agents:
            self.wait_connected(len(self.agents), 30)
        return self

    @property
    def ecs(self):
        if self._ecs is None:
            self._ecs = self.server.client()
        return self._ecs

    def logs(self) -> str:
        parts = [f"--- server ---\n{self.server.log_tail(30)}"]
        parts += [f"--- {a.data_dir.name} ---\n{a.log_tail(30)}" for a in self.agents]
        return "\n".join(parts)

    def instances(self) -> list[dict]:
        arns = self.ecs.list_container_instances(cluster=self.name)["containerInstanceArns"]
        if not arns:
            return []
        return self.ecs.describe_container_instances(cluster=self.name, containerInstances=arns)["containerInstances"]

    def wait_connected(self, count: int, timeout: float) -> list[dict]:
        def ready() -> Optional[list[dict]]:
            found = self.instances()
            return found if len(found) == count and all(i.get("agentConnected") for i in found) else None

        return wait_until(ready, timeout, f"{count} connected container instances", diagnose=self.logs)

    def register(self, family: str, command: list[str], memory: int = 32, **extra: Any) -> str:
        container = {"name": "main", "image": "busybox", "memory": memory, "command": command, "essential": True}
        out = self.ecs.register_task_definition(family=family, containerDefinitions=[container], **extra)
        return out["taskDefinition"]["taskDefinitionArn"]

    def tasks(self, **filters: Any) -> list[dict]:
        """DescribeTasks of every task ListTasks gives for `filters` (all pages)."""
        arns: list[str] = []
        token = None
        while True:
            page = self.ecs.list_tasks(cluster=self.name, **filters, **({"nextToken": token} if token else {}))
            arns += page["taskArns"]
            token = page.get("nextToken")
            if not token:
                break
        found = []
        for i in range(0, len(arns), 100):
            found += self.ecs.describe_tasks(cluster=self.name, tasks=arns[i : i + 100])["tasks"]
        return found

    def service_tasks(self, service: str, desired: str = "RUNNING") -> list[dict]:
        return self.tasks(serviceName=service, desiredStatus=desired)

    def containers(self, all_states: bool = True) -> list[dict]:
        return cluster_containers(self.name, all_states)

    def close(self) -> None:
        errors = []
        for agent in self.agents:
            try:
                agent.close()
            except Exception as e:  # noqa: BLE001 - keep cleaning up
                errors.append(f"agent: {e}")
        try:
            self.server.close()
        except Exception as e:  # noqa: BLE001
            errors.append(f"server: {e}")
        try:
            remove_containers(f"{LABEL_CLUSTER}={self.name}")
        except Exception as e:  # noqa: BLE001
            errors.append(f"containers: {e}")
        if errors:
            raise HarnessError("cleanup failed: " + "; ".join(errors))


# ---------------------------------------------------------------------------------------------
# What Docker says
# ---------------------------------------------------------------------------------------------


def cluster_containers(cluster: str, all_states: bool = True) -> list[dict]:
    """Every container of `cluster` as {id, running, task, name, family}, in one `docker ps`."""
    fmt = "\t".join(
        [
            "{{.ID}}",
            "{{.State}}",
            '{{.Label "%s"}}' % LABEL_TASK_ARN,
            '{{.Label "%s"}}' % LABEL_CONTAINER_NAME,
            '{{.Label "com.amazonaws.ecs.task-definition-family"}}',
        ]
    )
    args = ["ps", "--no-trunc", "--filter", f"label={LABEL_CLUSTER}={cluster}", "--format", fmt]
    if all_states:
        args.insert(1, "-a")
    found = []
    for line in docker(*args).splitlines():
        parts = line.split("\t")
        if len(parts) != 5:
            continue
        container_id, state, task, name, family = parts
        found.append({"id": container_id, "running": state == "running", "task": task, "name": name, "family": family})
    return found


def duplicates(containers: list[dict]) -> list[str]:
    """(task, container name) pairs that more than one container claims."""
    seen: dict[tuple[str, str], int] = {}
    for c in containers:
        key = (c["task"], c["name"])
        seen[key] = seen.get(key, 0) + 1
    return [f"{task} {name} x{n}" for (task, name), n in seen.items() if n > 1]


# ---------------------------------------------------------------------------------------------
# The Docker daemon
# ---------------------------------------------------------------------------------------------


@dataclass
class DaemonProcess:
    """A running dockerd: its pid, command line and working directory."""

    pid: int
    argv: list[str]
    cwd: str


def find_dockerd() -> DaemonProcess:
    """The dockerd process of this machine (exactly one is expected)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "dockerd":
                continue
            argv = [a for a in (entry / "cmdline").read_bytes().decode(errors="replace").split("\0") if a]
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        found.append(DaemonProcess(int(entry.name), argv, cwd))
    if len(found) != 1:
        raise HarnessError(f"expected one dockerd process, found {len(found)}: {found}")
    return found[0]


def docker_answers(timeout: float = 10.0) -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie still "exists"; it no longer runs.
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def start_dockerd(daemon: DaemonProcess, log: Path) -> None:
    """Starts dockerd again the way it was started: same command line, same working
    directory, output appended to `log`, detached through a shell that exits at once (as
    scripts/ensure-docker does), so that the daemon belongs to init and never to the tests."""
    command = " ".join(shlex.quote(a) for a in daemon.argv)
    # A daemon started from a directory removed since (its cwd reads "... (deleted)") starts
    # again from the root.
    cwd = daemon.cwd if os.path.isdir(daemon.cwd) else "/"
    script = f"cd {shlex.quote(cwd)} && nohup {command} >>{shlex.quote(str(log))} 2>&1 </dev/null &"
    subprocess.run(["sh", "-c", script], check=True, timeout=30, start_new_session=True)


def restart_dockerd(log: Path, stop_timeout: float = 90.0, start_timeout: float = 60.0) -> float:
    """SIGTERM to dockerd (as `systemctl restart docker` does), waits for it to exit, starts it
    again the same way and waits until it answers. Returns how long Docker was away. Whatever
    happens, leaves a daemon that answers (ensure_dockerd)."""
    daemon = find_dockerd()
    began = time.monotonic()
    try:
        os.kill(daemon.pid, signal.SIGTERM)
        wait_until(lambda: not pid_alive(daemon.pid), stop_timeout, f"dockerd {daemon.pid} to exit", interval=0.1)
        start_dockerd(daemon, log)
        wait_until(docker_answers, start_timeout, "dockerd to answer again", interval=0.5)
        return time.monotonic() - began
    finally:
        ensure_dockerd()


def ensure_dockerd() -> None:
    """A Docker daemon answers when this returns (scripts/ensure-docker starts one if not)."""
    if docker_answers():
        return
    done = subprocess.run([str(REPO / "scripts" / "ensure-docker")], capture_output=True, text=True, timeout=180)
    if done.returncode != 0 or not docker_answers():
        raise HarnessError(f"Docker did not come back: {done.stdout[-1000:]}{done.stderr[-1000:]}")


def poll(probe: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Like wait_until, but returns the last (falsy) value at the deadline instead of failing,
    for invariants that are counted rather than asserted."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def describe(value: Any) -> str:
    return json.dumps(value, default=str)[:500]

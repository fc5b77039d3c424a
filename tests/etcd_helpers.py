"""etcd clusters on loopback for the client suites, as berth_store::etcd::local::LocalEtcd
makes them for the Rust tests: `size` members of the machine's etcd on free ports, their data
and logs under a directory of the test's, a member that can be killed with SIGKILL and
restarted on its data, and every member stopped by stop() (or leaving a `with` block).

Nothing here skips: a missing etcd binary is a loud error naming what installs it."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Optional

from harness import HarnessError, free_port

# The members' cluster token and timing (fast elections, as LocalEtcd).
CLUSTER_TOKEN = "berth-local"
HEARTBEAT_MS = "100"
ELECTION_TIMEOUT_MS = "1000"


def etcd_bin() -> str:
    """The etcd binary: $BERTH_ETCD_BIN, else `etcd` on the PATH. Missing is an error."""
    configured = os.environ.get("BERTH_ETCD_BIN")
    if configured:
        if not (Path(configured).is_file() and os.access(configured, os.X_OK)):
            raise HarnessError(f"BERTH_ETCD_BIN={configured} is not an executable file.")
        return configured
    found = shutil.which("etcd")
    if not found:
        raise HarnessError(
            "etcd is not installed: run scripts/ensure-build-tools (or `apt-get install "
            "etcd-server`), or point BERTH_ETCD_BIN at an etcd binary."
        )
    return found


@dataclass
class Member:
    """One member: its name, ports, and process while it runs."""

    name: str
    client_port: int
    peer_port: int
    proc: Optional[subprocess.Popen[bytes]] = None
    log: Optional[IO[bytes]] = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


class EtcdCluster:
    """`size` etcd members on loopback with their data and logs under `base_dir`, started and
    healthy when the constructor returns. Use it in a `with` block, or call stop()."""

    def __init__(self, size: int, base_dir: Path, timeout: float = 30.0) -> None:
        if size < 1:
            raise HarnessError(f"an etcd cluster needs at least one member, not {size}")
        self.binary = etcd_bin()
        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.members: list[Member] = []
        # A port found free can be taken before etcd binds it: then start again on new ones.
        for attempt in range(3):
            self.members = [Member(f"m{i}", free_port(), free_port()) for i in range(size)]
            try:
                for i in range(size):
                    self._spawn(i, "new")
                self._wait_healthy(range(size), timeout)
                return
            except BaseException as e:
                self._kill_all()
                in_use = any("address already in use" in self.log_tail(i) for i in range(size))
                if attempt == 2 or not isinstance(e, HarnessError) or not in_use:
                    raise
                for i in range(size):
                    shutil.rmtree(self.data_dir(i), ignore_errors=True)
                    self.log_path(i).unlink(missing_ok=True)

    def __enter__(self) -> "EtcdCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def size(self) -> int:
        return len(self.members)

    def data_dir(self, i: int) -> Path:
        return self.base_dir / self.members[i].name

    def log_path(self, i: int) -> Path:
        return self.base_dir / f"{self.members[i].name}.log"

    def log_tail(self, i: int, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path(i).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def url(self, prefix: str = "") -> str:
        """The `--store` URL of the cluster, every member, under `prefix` (may be empty)."""
        hosts = ",".join(f"127.0.0.1:{m.client_port}" for m in self.members)
        return f"etcd://{hosts}/{prefix.lstrip('/')}"

    def _initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def _spawn(self, i: int, state: str) -> None:
        member = self.members[i]
        member.log = open(self.log_path(i), "ab")
        member.proc = subprocess.Popen(
            [
                self.binary,
                "--name", member.name,
                "--data-dir", str(self.data_dir(i)),
                "--listen-client-urls", member.client_url,
                "--advertise-client-urls", member.client_url,
                "--listen-peer-urls", member.peer_url,
                "--initial-advertise-peer-urls", member.peer_url,
                "--initial-cluster", self._initial_cluster(),
                "--initial-cluster-state", state,
                "--initial-cluster-token", CLUSTER_TOKEN,
                "--heartbeat-interval", HEARTBEAT_MS,
                "--election-timeout", ELECTION_TIMEOUT_MS,
            ],
            stdin=subprocess.DEVNULL,
            stdout=member.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def healthy(self, i: int, timeout: float = 2.0) -> bool:
        """Whether member `i`'s /health says it is healthy (it sees a leader) right now."""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.members[i].client_port, timeout=timeout)
            try:
                conn.request("GET", "/health")
                response = conn.getresponse()
                body = response.read()
            finally:
                conn.close()
            return response.status == 200 and json.loads(body).get("health") == "true"
        except (OSError, http.client.HTTPException, ValueError):
            return False

    def _wait_healthy(self, members: range | list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for i in members:
            member = self.members[i]
            while not self.healthy(i):
                if member.proc is not None and member.proc.poll() is not None:
                    raise HarnessError(
                        f"etcd member {member.name} exited ({member.proc.returncode}).\n{self.log_tail(i)}"
                    )
                if time.monotonic() > deadline:
                    raise HarnessError(f"etcd member {member.name} not healthy within {timeout}s.\n{self.log_tail(i)}")
                time.sleep(0.05)

    def kill(self, i: int) -> None:
        """SIGKILL member `i`, as a crash would stop it, and reap it."""
        member = self.members[i]
        if member.proc is not None:
            if member.proc.poll() is None:
                member.proc.send_signal(signal.SIGKILL)
            member.proc.wait(timeout=30)
            member.proc = None
        if member.log is not None:
            member.log.close()
            member.log = None

    def restart(self, i: int, timeout: float = 30.0) -> None:
        """Starts member `i` again on its data (killing it first if it runs) and waits until
        it is healthy."""
        self.kill(i)
        self._spawn(i, "existing")
        self._wait_healthy([i], timeout)

    def _kill_all(self) -> None:
        for i in range(len(self.members)):
            self.kill(i)

    def stop(self) -> None:
        """Stops every member (SIGTERM, then SIGKILL after 10 s); their data stays."""
        for member in self.members:
            if member.proc is not None and member.proc.poll() is None:
                member.proc.send_signal(signal.SIGTERM)
        for member in self.members:
            if member.proc is not None:
                try:
                    member.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    member.proc.kill()
                    member.proc.wait(timeout=10)
                member.proc = None
            if member.log is not None:
                member.log.close()
                member.log = None

#!/usr/bin/env python3
"""An external hollow fleet: N hollow agents in one asyncio process, talking to a running Berth
server over HTTP only, while a driver places K tasks and measures the end-to-end rate and the
latency of reads under that load.

    python bench/hollow_fleet.py --endpoint http://127.0.0.1:7700 --credentials-file DATA_DIR/credentials \
        --agents 1000 --tasks 10000

A hollow agent speaks the agent protocol of `berth agent` (crates/berth-agent) without running
anything: RegisterContainerInstance, the desired-state stream (`GET /v1/agent/desired`,
newline-delimited JSON, resumed with `since=<revision>`), heartbeats every 5 s, and
SubmitTaskStateChange RUNNING for each task it is given (STOPPED once the task's desired status
is STOPPED). Every request, the stream's GET and the heartbeats included, is SigV4-signed
(service `ecs`) with the given access key and secret, or those of a profile (default `berth`) of
a shared-credentials file such as the `credentials` file `berth server` writes to its data dir.

The driver creates the cluster and a one-container task definition, waits until every agent's
stream is open, then runs RunTask count=10 (spread by instanceId) from concurrent callers until
K tasks are placed. Meanwhile reader loops in a process of their own time DescribeTasks (up to 100 ARNs) and
DescribeClusters. The run ends when every placed task is RUNNING, as the agents' acknowledged
reports say and a DescribeTasks sweep confirms. Exit status 0 only when all K are RUNNING, no
task is duplicated and nothing failed.

Only loopback endpoints are accepted. Needs aiohttp (bench/requirements.txt).
"""

from __future__ import annotations

import argparse
import asyncio
import configparser
import datetime as _dt
import hashlib
import hmac
import json
import multiprocessing
import queue
import random
import resource
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Optional
from urllib.parse import quote, urlsplit

import aiohttp
import yarl

TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
AMZ_JSON = "application/x-amz-json-1.1"
DESIRED_PATH = "/v1/agent/desired"
# The line format this fleet reads (berth-core `STREAM_PROTOCOL`).
STREAM_PROTOCOL = "2"
HEARTBEAT_PATH = "/v1/agent/heartbeat"
HEARTBEAT_EVERY = 5.0
AGENT_VERSION = "1.0.0-hollow"
# What `berth agent` registers besides CPU and MEMORY (crates/berth-agent/src/host.rs).
RESERVED_PORTS = ["22", "2375", "2376", "51678", "51679"]
CAPABILITIES = [
    "com.amazonaws.ecs.capability.privileged-container",
    "com.amazonaws.ecs.capability.logging-driver.json-file",
    "ecs.capability.container-health-check",
    "ecs.capability.container-ordering",
]
DOCKER_API_VERSIONS = range(17, 45)
RETRYABLE_ERRORS = ("ThrottlingException", "ServerException", "ServiceUnavailableException")


# ---------------------------------------------------------------------------------------------
# SigV4
# ---------------------------------------------------------------------------------------------


def _uri_encode(text: str, keep_slash: bool = False) -> str:
    """RFC 3986 encoding as SigV4 wants it: everything but unreserved characters."""
    return quote(text, safe="/~" if keep_slash else "~")


class SigV4Signer:
    """AWS Signature Version 4 for one access key, region and service (header signing)."""

    def __init__(self, access_key: str, secret_key: str, region: str = "us-east-1", service: str = "ecs"):
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.service = service
        self._keys: dict[str, bytes] = {}

    def _signing_key(self, date: str) -> bytes:
        key = self._keys.get(date)
        if key is None:
            key = ("AWS4" + self.secret_key).encode()
            for part in (date, self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys = {date: key}
        return key

    def sign(
        self,
        method: str,
        host: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        now: Optional[_dt.datetime] = None,
    ) -> dict[str, str]:
        """`headers` plus Host, X-Amz-Date and Authorization; every header given is signed."""
        now = now or _dt.datetime.now(_dt.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        date = amz_date[:8]
        signed = {k.lower(): " ".join(str(v).strip().split()) for k, v in headers.items()}
        signed["host"] = host
        signed["x-amz-date"] = amz_date
        names = sorted(signed)
        canonical_query = "&".join(
            f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted((str(k), str(v)) for k, v in query.items())
        )
        canonical_request = "\n".join(
            [
                method,
                _uri_encode(path or "/", keep_slash=True),
                canonical_query,
                "".join(f"{n}:{signed[n]}\n" for n in names),
                ";".join(names),
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        string_to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
        )
        signature = hmac.new(self._signing_key(date), string_to_sign.encode(), hashlib.sha256).hexdigest()
        out = dict(headers)
        out["Host"] = host
        out["X-Amz-Date"] = amz_date
        out["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return out


def read_credentials(path: str, profile: str = "berth") -> tuple[str, str]:
    """The access key id and secret of `profile` in the shared-credentials file at `path`."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
        section = parser[profile]
        return section["aws_access_key_id"], section["aws_secret_access_key"]
    except (OSError, KeyError, configparser.Error) as e:
        raise SystemExit(f"no access key in profile [{profile}] of {path}: {type(e).__name__}: {e}") from None


# ---------------------------------------------------------------------------------------------
# HTTP client
# ---------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer of the server (`kind` is the ECS exception name)."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(f"{kind} (HTTP {status}): {message}")
        self.status = status
        self.kind = kind
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status == 429 or self.kind in RETRYABLE_ERRORS


class TransportError(Exception):
    """The server could not be reached, answered nothing in time, or the connection broke."""

    retryable = True


def assert_loopback(endpoint: str) -> None:
    host = (urlsplit(endpoint).hostname or "").strip("[]")
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        raise SystemExit(f"refusing non-loopback endpoint {endpoint}: the hollow fleet runs on this machine only")


class Client:
    """Signed calls to one Berth endpoint over a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, endpoint: str, signer: SigV4Signer, call_timeout: float):
        parts = urlsplit(endpoint.rstrip("/"))
        if parts.scheme != "http" or not parts.hostname:
            raise SystemExit(f"--endpoint must be http://HOST:PORT, got {endpoint}")
        self.session = session
        self.base = f"http://{parts.netloc}"
        self.host = parts.netloc
        self.signer = signer
        self.timeout = aiohttp.ClientTimeout(total=call_timeout)

    async def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One ECS JSON 1.1 call; its decoded answer, or ApiError / TransportError."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = self.signer.sign(
            "POST",
            self.host,
            "/",
            {},
            {"Content-Type": AMZ_JSON, "X-Amz-Target": TARGET_PREFIX + operation},
            body,
        )
        return await self._send("POST", "/", headers, body)

    async def heartbeat(self, cluster: str, instance: str) -> None:
        body = json.dumps({"cluster": cluster, "containerInstance": instance}).encode()
        headers = self.signer.sign("POST", self.host, HEARTBEAT_PATH, {}, {"Content-Type": "application/json"}, body)
        await self._send("POST", HEARTBEAT_PATH, headers, body)

    async def _send(self, method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        try:
            async with self.session.request(
                method, self.base + path, data=body, headers=headers, timeout=self.timeout
            ) as resp:
                data = await resp.read()
                status = resp.status
        except asyncio.TimeoutError:
            raise TransportError(f"no answer within {self.timeout.total}s") from None
        except aiohttp.ClientError as e:
            raise TransportError(f"{type(e).__name__}: {e}") from None
        if status >= 300:
            raise api_error(status, data)
        try:
            return json.loads(data) if data else {}
        except ValueError:
            raise TransportError(f"undecodable answer: {data[:200]!r}") from None

    def desired_request(self, cluster: str, instance: str, since: Optional[int]):
        """The request context of a desired-state stream (read it with `async with`)."""
        query = {"cluster": cluster, "containerInstance": instance, "protocol": STREAM_PROTOCOL}
        if since is not None:
            query["since"] = str(since)
        headers = self.signer.sign("GET", self.host, DESIRED_PATH, query, {"Accept": "application/x-ndjson"}, b"")
        # The query is encoded here exactly as it was signed, and sent as is (encoded=True:
        # yarl would otherwise decode the %3A and %2F of an ARN).
        qs = "&".join(f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(query.items()))
        return self.session.get(
            yarl.URL(f"{self.base}{DESIRED_PATH}?{qs}", encoded=True),
            headers=headers,
            # The server sends a line at least every 15 s; a silent stream is dead.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=45),
        )


def api_error(status: int, data: bytes) -> ApiError:
    kind, message = "", ""
    try:
        parsed = json.loads(data)
        kind = str(parsed.get("__type") or "")
        message = str(parsed.get("message") or parsed.get("Message") or "")
    except (ValueError, AttributeError):
        message = data[:300].decode(errors="replace")
    kind = kind.rsplit("#", 1)[-1] or ("ServerException" if status >= 500 else "ClientException")
    return ApiError(status, kind, message)


async def with_retries(
    what,
    attempts: Optional[int] = 8,
    first_delay: float = 0.1,
    stopping: Optional[asyncio.Event] = None,
    on_error=None,
):
    """Awaits `what()` until it succeeds, retrying retryable errors with exponential backoff
    (`attempts` at most; None: until `stopping` is set). `on_error(e)` sees every error."""
    delay = first_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            return await what()
        except (ApiError, TransportError) as e:
            if on_error is not None and not (stopping is not None and stopping.is_set()):
                on_error(e)
            if (
                not e.retryable
                or (attempts is not None and attempt >= attempts)
                or (stopping is not None and stopping.is_set())
            ):
                raise
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 5.0)


def error_name(e: Exception) -> str:
    return getattr(e, "kind", None) or type(e).__name__


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1000:.1f} ms"


@dataclass
class Config:
    endpoint: str
    agents: int = 1000
    tasks: int = 10000
    access_key: str = ""
    secret_key: str = ""
    region: str = "us-east-1"
    cluster: str = "fleet"
    family: str = "hollow"
    callers: int = 24
    readers: int = 2
    read_interval: float = 0.05
    agent_cpu: int = 2048
    agent_memory: int = 2048
    task_memory: int = 64
    max_inflight: int = 256
    register_concurrency: int = 32
    stop_tasks: int = 0
    timeout: float = 600.0
    call_timeout: float = 30.0
    progress_every: float = 5.0
    quiet: bool = False


@dataclass
class Result:
    """What a run measured; `ok` is what the exit status says."""

    agents: int = 0
    agents_registered: int = 0
    agents_connected: int = 0
    tasks_requested: int = 0
    placed: int = 0
    running_acked: int = 0
    running_confirmed: int = 0
    not_running: int = 0
    duplicates: int = 0
    duplicate_details: list[str] = field(default_factory=list)
    failures: int = 0
    failure_details: dict[str, int] = field(default_factory=dict)
    placement_failures: dict[str, int] = field(default_factory=dict)
    run_task_calls: int = 0
    run_task_p50_ms: float = float("nan")
    run_task_p99_ms: float = float("nan")
    describe_tasks_calls: int = 0
    describe_tasks_p50_ms: float = float("nan")
    describe_tasks_p99_ms: float = float("nan")
    describe_clusters_calls: int = 0
    describe_clusters_p50_ms: float = float("nan")
    describe_clusters_p99_ms: float = float("nan")
    read_errors: int = 0
    report_p50_ms: float = float("nan")
    report_p99_ms: float = float("nan")
    placed_to_running_p50_ms: float = float("nan")
    placed_to_running_p99_ms: float = float("nan")
    register_seconds: float = float("nan")
    placement_seconds: float = float("nan")
    e2e_seconds: float = float("nan")
    e2e_tasks_per_s: float = 0.0
    placed_tasks_per_s: float = 0.0
    stream_lines: int = 0
    stream_reconnects: int = 0
    loop_lag_p99_ms: float = float("nan")
    loop_lag_max_ms: float = float("nan")
    elapsed_seconds: float = float("nan")  # from the first RunTask to the end of the load
    client_cpu_seconds: float = float("nan")  # this process's CPU time (all threads) meanwhile
    client_wall_seconds: float = float("nan")
    stopped_requested: int = 0
    stopped_confirmed: int = 0
    timed_out: bool = False
    aborted: str = ""
    ok: bool = False


# ---------------------------------------------------------------------------------------------
# The fleet's shared state
# ---------------------------------------------------------------------------------------------


class Fleet:
    """Everything the agents and the driver share (one event loop, so no locks)."""

    def __init__(self, config: Config):
        self.config = config
        self.stopping = asyncio.Event()
        self.inflight = asyncio.Semaphore(config.max_inflight)
        self.connected = 0
        self.all_connected = asyncio.Event()
        # taskArn -> index of the first agent whose stream carried it.
        self.owner: dict[str, int] = {}
        self.placed_at: dict[str, float] = {}  # taskArn -> when RunTask answered it
        self.placed_list: list[str] = []  # fed to the reader process
        self.running_at: dict[str, float] = {}  # taskArn -> when its RUNNING report was acked
        self.stopped_acked: set[str] = set()
        self.running_placed = 0  # tasks both placed and acked RUNNING
        self.all_running = asyncio.Event()
        self.placing_done = False
        self.duplicates: list[str] = []
        self.failures: Counter[str] = Counter()
        self.report_latency: list[float] = []
        self.lines = 0
        self.reconnects = 0

    def fail(self, what: str) -> None:
        self.failures[what] += 1

    def duplicate(self, what: str) -> None:
        self.duplicates.append(what)

    def placed(self, arn: str, now: float) -> None:
        self.placed_at[arn] = now
        self.placed_list.append(arn)
        if arn in self.running_at:
            self.running_placed += 1

    def acked_running(self, arn: str, now: float) -> None:
        if arn not in self.running_at:
            self.running_at[arn] = now
            if arn in self.placed_at:
                self.running_placed += 1
        self.check_all_running()

    def check_all_running(self) -> None:
        if self.placing_done and self.running_placed >= len(self.placed_at):
            self.all_running.set()


# ---------------------------------------------------------------------------------------------
# A hollow agent
# ---------------------------------------------------------------------------------------------


class HollowAgent:
    """One container instance whose tasks "run" the moment they are assigned."""

    def __init__(self, index: int, fleet: Fleet, client: Client):
        self.index = index
        self.fleet = fleet
        self.client = client
        self.cluster = fleet.config.cluster
        self.arn = ""
        self.revision: Optional[int] = None
        self.connected = False
        self.reported_running: set[str] = set()
        self.reported_stopped: set[str] = set()
        self.foreign: set[str] = set()  # tasks another agent had first
        self.jobs: set[asyncio.Task] = set()
        self.running_reports: dict[str, asyncio.Task] = {}  # a task's STOPPED report waits for these

    def registration(self) -> dict[str, Any]:
        config = self.fleet.config
        attributes = [
            {"name": "ecs.os-type", "value": "linux"},
            {"name": "ecs.cpu-architecture", "value": "x86_64"},
        ]
        attributes += [{"name": f"com.amazonaws.ecs.capability.docker-remote-api.1.{v}"} for v in DOCKER_API_VERSIONS]
        attributes += [{"name": name} for name in CAPABILITIES]
        return {
            "cluster": self.cluster,
            "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": config.agent_cpu},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": config.agent_memory},
                {"name": "PORTS", "type": "STRINGSET", "stringSetValue": list(RESERVED_PORTS)},
                {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []},
            ],
            "versionInfo": {
                "agentVersion": AGENT_VERSION,
                "agentHash": "hollow",
                "dockerVersion": "DockerVersion: hollow",
            },
            "attributes": attributes,
        }

    async def register(self) -> None:
        out = await with_retries(
            lambda: self.client.call("RegisterContainerInstance", self.registration()),
            stopping=self.fleet.stopping,
            on_error=lambda e: self.fleet.fail(f"RegisterContainerInstance: {error_name(e)}"),
        )
        self.arn = out["containerInstance"]["containerInstanceArn"]

    async def run(self) -> None:
        """Heartbeats and follows the desired-state stream until the fleet stops."""
        beats = asyncio.create_task(self.heartbeats())
        try:
            await self.follow()
        finally:
            beats.cancel()
            for job in list(self.jobs):
                job.cancel()

    async def heartbeats(self) -> None:
        await asyncio.sleep(random.random() * HEARTBEAT_EVERY)
        while not self.fleet.stopping.is_set():
            try:
                # Not behind the reports' gate: a backlog of reports must not silence an agent.
                await self.client.heartbeat(self.cluster, self.arn)
            except (ApiError, TransportError) as e:
                self.fleet.fail(f"heartbeat: {error_name(e)}")
            await asyncio.sleep(HEARTBEAT_EVERY)

    async def follow(self) -> None:
        delay = 0.2
        while not self.fleet.stopping.is_set():
            try:
                async with self.client.desired_request(self.cluster, self.arn, self.revision) as resp:
                    if resp.status != 200:
                        raise api_error(resp.status, await resp.read())
                    delay = 0.2
                    buffer = b""
                    async for chunk in resp.content.iter_any():
                        buffer += chunk
                        while True:
                            end = buffer.find(b"\n")
                            if end < 0:
                                break
                            line, buffer = buffer[:end], buffer[end + 1 :]
                            if line.strip():
                                self.on_line(json.loads(line))
            except asyncio.CancelledError:
                raise
            except (ApiError, TransportError, aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
                if not self.fleet.stopping.is_set():
                    self.fleet.fail(f"stream: {error_name(e)}")
            if self.fleet.stopping.is_set():
                return
            self.fleet.reconnects += 1
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)

    def on_line(self, line: dict[str, Any]) -> None:
        fleet = self.fleet
        fleet.lines += 1
        if isinstance(line.get("revision"), int):
            self.revision = line["revision"]
        if not self.connected:
            self.connected = True
            fleet.connected += 1
            if fleet.connected >= fleet.config.agents:
                fleet.all_connected.set()
        for entry in line.get("tasks") or ():
            task = entry.get("task") or {}
            arn = task.get("taskArn")
            if not arn:
                continue
            owner = fleet.owner.setdefault(arn, self.index)
            if owner != self.index:
                if arn not in self.foreign:  # each foreign task counted once per agent
                    self.foreign.add(arn)
                    fleet.duplicate(f"{arn} assigned to agents {owner} and {self.index}")
                continue
            desired = task.get("desiredStatus")
            if desired == "RUNNING" and arn not in self.reported_running:
                self.reported_running.add(arn)
                self.running_reports[arn] = self.spawn(self.report(task, entry, "RUNNING"))
            elif desired == "STOPPED" and arn not in self.reported_stopped and task.get("lastStatus") != "STOPPED":
                self.reported_stopped.add(arn)
                self.spawn(self.report(task, entry, "STOPPED"))

    def spawn(self, coro) -> asyncio.Task:
        job = asyncio.create_task(coro)
        self.jobs.add(job)
        job.add_done_callback(self.jobs.discard)
        return job

    @staticmethod
    def container_names(task: dict[str, Any], entry: dict[str, Any]) -> list[str]:
        names = [c["name"] for c in task.get("containers") or () if c.get("name")]
        if not names:
            definition = entry.get("taskDefinition") or {}
            names = [c["name"] for c in definition.get("containerDefinitions") or () if c.get("name")]
        return names

    async def report(self, task: dict[str, Any], entry: dict[str, Any], status: str) -> None:
        """SubmitTaskStateChange as `berth agent` sends it once a task's containers started
        (or, for STOPPED, once they exited)."""
        arn = task["taskArn"]
        earlier = self.running_reports.pop(arn, None) if status == "STOPPED" else None
        if earlier is not None:
            await asyncio.wait([earlier])  # a task's reports go in order, as the agent sends them
        now = time.time()
        if status == "RUNNING":
            containers = [
                {"containerName": name, "status": "RUNNING", "runtimeId": uuid.uuid4().hex + uuid.uuid4().hex}
                for name in self.container_names(task, entry)
            ]
            report = {
                "cluster": self.cluster,
                "task": arn,
                "status": "RUNNING",
                "containers": containers,
                "pullStartedAt": now,
                "pullStoppedAt": now,
            }
        else:
            ran = arn in self.reported_running
            containers = [
                {"containerName": name, "status": "STOPPED", **({"exitCode": 0} if ran else {})}
                for name in self.container_names(task, entry)
            ]
            report = {
                "cluster": self.cluster,
                "task": arn,
                "status": "STOPPED",
                "containers": containers,
                "executionStoppedAt": now,
            }
        started = time.monotonic()
        try:
            # Like the agent's reporter: retried until the server takes it (or the run ends).
            async with self.fleet.inflight:
                await with_retries(
                    lambda: self.client.call("SubmitTaskStateChange", report),
                    attempts=None,
                    stopping=self.fleet.stopping,
                    on_error=lambda e: self.fleet.fail(f"SubmitTaskStateChange {status}: {error_name(e)}"),
                )
        except (ApiError, TransportError):
            return
        done = time.monotonic()
        self.fleet.report_latency.append(done - started)
        if status == "RUNNING":
            self.fleet.acked_running(arn, done)
            if self.running_reports.get(arn) is asyncio.current_task():
                del self.running_reports[arn]
        else:
            self.fleet.stopped_acked.add(arn)


# ---------------------------------------------------------------------------------------------
# Readers: DescribeTasks and DescribeClusters timed on a loop of their own
# ---------------------------------------------------------------------------------------------


class Readers:
    """Reader loops in a process of their own (own interpreter, event loop and connection
    pool), so neither the agents' work on the main loop nor its hold on the GIL adds to the
    latency they measure. The main process feeds it the ARNs placed so far."""

    def __init__(self, config: Config, fleet: Fleet):
        self.config = config
        self.fleet = fleet
        context = multiprocessing.get_context("spawn")
        self.arns = context.Queue()
        self.stop = context.Event()
        self.ready = context.Event()
        self.results, results_out = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_readers_main,
            args=(config, self.arns, self.ready, self.stop, results_out),
            name="hollow-fleet-readers",
            daemon=True,
        )
        self.fed = 0
        self.joined = False
        self.describe_tasks: list[float] = []
        self.describe_clusters: list[float] = []
        self.errors: Counter[str] = Counter()

    async def start(self) -> None:
        """Starts the reader process and waits until it is about to read, so the reads span
        the whole load."""
        self.process.start()
        if not await asyncio.to_thread(self.ready.wait, 60):
            raise RuntimeError("the reader process did not start within 60 s")

    def feed(self) -> None:
        """Hands the readers the ARNs placed since the last call."""
        placed = self.fleet.placed_list
        if len(placed) > self.fed:
            self.arns.put(placed[self.fed :])
            self.fed = len(placed)

    def join(self) -> None:
        if self.joined:
            return
        self.joined = True
        self.feed()
        self.stop.set()
        if self.results.poll(self.config.call_timeout + 10):
            describe_tasks, describe_clusters, errors = self.results.recv()
            self.describe_tasks.extend(describe_tasks)
            self.describe_clusters.extend(describe_clusters)
            self.errors.update(errors)
        else:
            self.errors["readers: no results"] += 1
        self.process.join(timeout=10)


def _readers_main(config: Config, arns: Any, ready: Any, stop: Any, results: Any) -> None:
    """The readers' process: reads until `stop`, then sends back what it timed."""
    reader = _ReaderLoops(config, arns, ready, stop)
    asyncio.run(reader.run())
    results.send((reader.describe_tasks, reader.describe_clusters, dict(reader.errors)))


class _ReaderLoops:
    def __init__(self, config: Config, arns: Any, ready: Any, stop: Any):
        self.config = config
        self.arns = arns
        self.ready = ready
        self.stop = stop
        self.placed: list[str] = []
        self.describe_tasks: list[float] = []
        self.describe_clusters: list[float] = []
        self.errors: Counter[str] = Counter()

    async def run(self) -> None:
        config = self.config
        signer = SigV4Signer(config.access_key, config.secret_key, config.region)
        connector = aiohttp.TCPConnector(limit=config.readers * 2 + 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            client = Client(session, config.endpoint, signer, config.call_timeout)
            self.ready.set()
            await asyncio.gather(*(self._reader(client, i) for i in range(config.readers)))

    def _take_new_arns(self) -> None:
        while True:
            try:
                self.placed.extend(self.arns.get_nowait())
            except queue.Empty:
                return

    async def _timed(self, client: Client, operation: str, payload: dict[str, Any], into: list[float]) -> None:
        started = time.perf_counter()
        try:
            await client.call(operation, payload)
        except (ApiError, TransportError) as e:
            self.errors[f"{operation}: {error_name(e)}"] += 1
            return
        into.append(time.perf_counter() - started)

    async def _reader(self, client: Client, index: int) -> None:
        await asyncio.sleep(index * self.config.read_interval / max(1, self.config.readers))
        while not self.stop.is_set():
            self._take_new_arns()
            placed = self.placed
            n = len(placed)
            if n:
                start = random.randrange(n)
                arns = [placed[(start + i * 7919) % n] for i in range(min(100, n))]
                arns = list(dict.fromkeys(arns))
                payload = {"cluster": self.config.cluster, "tasks": arns}
                await self._timed(client, "DescribeTasks", payload, self.describe_tasks)
            await self._timed(client, "DescribeClusters", {"clusters": [self.config.cluster]}, self.describe_clusters)
            await asyncio.sleep(self.config.read_interval)


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------


class Driver:
    def __init__(self, config: Config):
        self.config = config
        self.result = Result(agents=config.agents, tasks_requested=config.tasks)
        self.run_task_latency: list[float] = []
        self.placement_failures: Counter[str] = Counter()
        self.run_task_errors = 0
        self.lag: list[float] = []
        self.started_by = f"hollow-fleet-{uuid.uuid4().hex[:12]}"

    def say(self, text: str) -> None:
        if not self.config.quiet:
            print(text, file=sys.stderr, flush=True)

    async def run(self) -> Result:
        config = self.config
        # Each agent holds a stream open and may have a heartbeat in flight; reports share
        # max_inflight connections, the callers one each.
        pool = 2 * config.agents + config.max_inflight + config.callers + 64
        raise_fd_limit(pool + 256)
        self.fleet = fleet = Fleet(config)
        signer = SigV4Signer(config.access_key, config.secret_key, config.region)
        connector = aiohttp.TCPConnector(
            limit=pool,
            limit_per_host=0,
            keepalive_timeout=60,
        )
        self.deadline = time.monotonic() + config.timeout
        async with aiohttp.ClientSession(connector=connector) as session:
            self.client = Client(session, config.endpoint, signer, config.call_timeout)
            self.agents = [HollowAgent(i, fleet, self.client) for i in range(config.agents)]
            running: list[asyncio.Task] = []
            lag = asyncio.create_task(self.watch_loop_lag())
            progress = asyncio.create_task(self.progress())
            readers: Optional[Readers] = None
            wall = time.monotonic()
            cpu = process_cpu_seconds()
            try:
                await asyncio.wait_for(self.phases(running), timeout=max(1.0, self.deadline - time.monotonic()))
            except asyncio.TimeoutError:
                self.result.timed_out = True
                self.say(f"hollow fleet: stopped after the {config.timeout:.0f} s limit")
            except (Abort, ApiError, TransportError) as e:
                self.result.aborted = str(e)
                self.say(f"hollow fleet: aborted: {e}")
            finally:
                self.result.client_cpu_seconds = process_cpu_seconds() - cpu
                self.result.client_wall_seconds = time.monotonic() - wall
                self.result.elapsed_seconds = time.monotonic() - getattr(self, "t0", time.monotonic())
                readers = getattr(self, "readers", None)
                if readers is not None:
                    readers.join()
                fleet.stopping.set()
                progress.cancel()
                lag.cancel()
                for job in running:
                    job.cancel()
                await asyncio.gather(*running, progress, lag, return_exceptions=True)
                if self.result.timed_out or self.result.aborted:
                    try:  # what the server says of the placed tasks now, for the report
                        await asyncio.wait_for(self.confirm_running(once=True), 60)
                    except (asyncio.TimeoutError, ApiError, TransportError):
                        self.say("hollow fleet: the final DescribeTasks sweep did not finish within 60 s")
                self.collect(readers)
        return self.result

    async def phases(self, running: list[asyncio.Task]) -> None:
        config, fleet, client = self.config, self.fleet, self.client
        await with_retries(lambda: client.call("CreateCluster", {"clusterName": config.cluster}))
        await self.warn_about_leftovers()
        await with_retries(
            lambda: client.call(
                "RegisterTaskDefinition",
                {
                    "family": config.family,
                    "containerDefinitions": [
                        {
                            "name": "app",
                            "image": "busybox",
                            "memory": config.task_memory,
                            "cpu": 0,
                            "essential": True,
                            "command": ["sleep", "3600"],
                        }
                    ],
                },
            )
        )
        # Register every agent, then open their streams.
        started = time.monotonic()
        gate = asyncio.Semaphore(config.register_concurrency)

        async def register(agent: HollowAgent) -> None:
            async with gate:
                await agent.register()
            self.result.agents_registered += 1
            running.append(asyncio.create_task(agent.run()))

        await gather_or_cancel(*(register(a) for a in self.agents))
        await fleet.all_connected.wait()
        self.result.register_seconds = time.monotonic() - started
        self.say(
            f"hollow fleet: {config.agents} agents registered and streaming in {self.result.register_seconds:.1f} s"
        )
        # The load: RunTask from concurrent callers while the readers time reads.
        self.readers = Readers(config, fleet)
        await self.readers.start()
        self.t0 = time.monotonic()
        self.placed = 0
        self.claimed = 0
        feeding = asyncio.create_task(self.feed_readers())
        await gather_or_cancel(*(self.caller() for _ in range(config.callers)))
        fleet.placing_done = True
        self.result.placement_seconds = time.monotonic() - self.t0
        self.say(f"hollow fleet: {self.placed} tasks placed in {self.result.placement_seconds:.1f} s")
        fleet.check_all_running()
        await fleet.all_running.wait()
        last = max(fleet.running_at[arn] for arn in fleet.placed_at) if fleet.placed_at else self.t0
        feeding.cancel()
        self.readers.join()
        # Confirm with the server what the agents' acknowledged reports say.
        await self.confirm_running()
        self.result.e2e_seconds = last - self.t0
        self.result.e2e_tasks_per_s = len(fleet.placed_at) / max(self.result.e2e_seconds, 1e-9)
        self.result.placed_tasks_per_s = len(fleet.placed_at) / max(self.result.placement_seconds, 1e-9)
        await self.count_extra_tasks()
        if config.stop_tasks:
            await self.stop_some()

    async def feed_readers(self) -> None:
        """Hands the reader process the placed ARNs, a few times a second."""
        while True:
            self.readers.feed()
            await asyncio.sleep(0.1)

    async def warn_about_leftovers(self) -> None:
        out = await self.client.call("DescribeClusters", {"clusters": [self.config.cluster]})
        for cluster in out.get("clusters") or ():
            left = cluster.get("registeredContainerInstancesCount") or 0
            if left:
                self.say(
                    f"hollow fleet: note: cluster {self.config.cluster} already has {left} container "
                    "instances from earlier runs; they may be given tasks of this run (use a fresh "
                    "server or --cluster NAME)"
                )

    async def caller(self) -> None:
        config, fleet = self.config, self.fleet
        empty_in_a_row = 0
        while self.claimed < config.tasks and not fleet.stopping.is_set():
            count = min(10, config.tasks - self.claimed)
            self.claimed += count
            token = uuid.uuid4().hex
            payload = {
                "cluster": config.cluster,
                "taskDefinition": config.family,
                "count": count,
                "placementStrategy": [{"type": "spread", "field": "instanceId"}],
                "startedBy": self.started_by,
                "clientToken": token,
            }
            # Retried with the same clientToken (so never placed twice) until it answers or the
            # run's time is up; every error counts as a failure.
            out = None
            delay = 0.1
            while out is None:
                started = time.perf_counter()
                try:
                    out = await self.client.call("RunTask", payload)
                    self.run_task_latency.append(time.perf_counter() - started)
                except (ApiError, TransportError) as e:
                    self.run_task_errors += 1
                    fleet.fail(f"RunTask: {error_name(e)}")
                    if not e.retryable:
                        raise Abort(f"RunTask refused: {e}") from None
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, 5.0)
            now = time.monotonic()
            tasks = out.get("tasks") or []
            for failure in out.get("failures") or ():
                self.placement_failures[str(failure.get("reason"))] += 1
            for task in tasks:
                arn = task.get("taskArn")
                if arn in fleet.placed_at:
                    fleet.duplicate(f"{arn} returned by two RunTask calls")
                    continue
                fleet.placed(arn, now)
                self.placed += 1
            # Whatever was not placed is claimed again (by this caller or another).
            self.claimed -= count - len(tasks)
            if tasks:
                empty_in_a_row = 0
            else:
                empty_in_a_row += 1
                if empty_in_a_row >= 20:
                    raise Abort(f"RunTask placed nothing 20 times in a row: {dict(self.placement_failures)}")
                await asyncio.sleep(0.5)

    async def confirm_running(self, once: bool = False) -> None:
        """DescribeTasks over every placed task, until all show lastStatus RUNNING (or time
        runs out); with `once`, one sweep."""
        pending = list(self.fleet.placed_at)
        confirmed = 0
        while pending:
            batches = [pending[i : i + 100] for i in range(0, len(pending), 100)]
            gate = asyncio.Semaphore(8)
            still: list[str] = []

            async def check(batch: list[str]) -> None:
                nonlocal confirmed
                async with gate:
                    out = await with_retries(
                        lambda: self.client.call("DescribeTasks", {"cluster": self.config.cluster, "tasks": batch})
                    )
                seen = set()
                for task in out.get("tasks") or ():
                    seen.add(task.get("taskArn"))
                    if task.get("lastStatus") == "RUNNING":
                        confirmed += 1
                    else:
                        still.append(task.get("taskArn"))
                still.extend(arn for arn in batch if arn not in seen)

            await asyncio.gather(*(check(b) for b in batches))
            self.result.running_confirmed = confirmed
            pending = still
            if pending and not once:
                await asyncio.sleep(0.5)
            elif once:
                return

    async def count_extra_tasks(self) -> None:
        """ListTasks by this run's startedBy: any task it names that RunTask did not return
        is a duplicate placement."""
        listed: list[str] = []
        token = None
        while True:
            payload = {"cluster": self.config.cluster, "startedBy": self.started_by, "maxResults": 100}
            if token:
                payload["nextToken"] = token
            out = await with_retries(lambda: self.client.call("ListTasks", payload))
            listed += out.get("taskArns") or []
            token = out.get("nextToken")
            if not token:
                break
        counts = Counter(listed)
        for arn, n in counts.items():
            if n > 1:
                self.fleet.duplicate(f"{arn} listed {n} times by ListTasks")
            if arn not in self.fleet.placed_at:
                self.fleet.duplicate(f"{arn} is a task of this run that RunTask never returned")

    async def stop_some(self) -> None:
        """StopTask on a few tasks; their agents must report them STOPPED."""
        arns = random.sample(list(self.fleet.placed_at), min(self.config.stop_tasks, len(self.fleet.placed_at)))
        self.result.stopped_requested = len(arns)
        gate = asyncio.Semaphore(8)

        async def stop(arn: str) -> None:
            async with gate:
                await with_retries(
                    lambda: self.client.call(
                        "StopTask", {"cluster": self.config.cluster, "task": arn, "reason": "hollow fleet"}
                    )
                )

        await asyncio.gather(*(stop(a) for a in arns))
        while True:
            out = await with_retries(
                lambda: self.client.call("DescribeTasks", {"cluster": self.config.cluster, "tasks": arns})
            )
            stopped = [t for t in out.get("tasks") or () if t.get("lastStatus") == "STOPPED"]
            self.result.stopped_confirmed = len(stopped)
            if len(stopped) == len(arns):
                return
            await asyncio.sleep(0.2)

    async def watch_loop_lag(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.1)
            self.lag.append(max(0.0, time.monotonic() - before - 0.1))

    async def progress(self) -> None:
        fleet = self.fleet
        started = time.monotonic()
        while True:
            await asyncio.sleep(self.config.progress_every)
            # The reader process reports its counts when it ends; here: the ARNs fed to it.
            readers = getattr(self, "readers", None)
            reads = f" fed-to-readers={readers.fed}" if readers else ""
            self.say(
                f"  [{time.monotonic() - started:6.1f} s] registered={self.result.agents_registered} "
                f"streaming={fleet.connected} placed={len(fleet.placed_at)} running={len(fleet.running_at)} "
                f"lines={fleet.lines} failures={sum(fleet.failures.values())} "
                f"duplicates={len(fleet.duplicates)}{reads} loop-lag-p99={ms(percentile(self.lag[-100:], 99))}"
            )

    def collect(self, readers: Optional["Readers"]) -> None:
        r, fleet = self.result, self.fleet
        r.agents_connected = fleet.connected
        r.placed = len(fleet.placed_at)
        r.running_acked = sum(1 for arn in fleet.placed_at if arn in fleet.running_at)
        r.not_running = r.tasks_requested - r.running_confirmed
        r.duplicates = len(fleet.duplicates)
        r.duplicate_details = fleet.duplicates[:20]
        if readers is not None:
            for name, n in readers.errors.items():
                fleet.fail(name)
        r.failure_details = dict(fleet.failures)
        r.failures = sum(fleet.failures.values())
        r.placement_failures = dict(self.placement_failures)
        r.run_task_calls = len(self.run_task_latency)
        r.run_task_p50_ms = percentile(self.run_task_latency, 50) * 1000
        r.run_task_p99_ms = percentile(self.run_task_latency, 99) * 1000
        if readers is not None:
            r.read_errors = sum(readers.errors.values())
            r.describe_tasks_calls = len(readers.describe_tasks)
            r.describe_tasks_p50_ms = percentile(readers.describe_tasks, 50) * 1000
            r.describe_tasks_p99_ms = percentile(readers.describe_tasks, 99) * 1000
            r.describe_clusters_calls = len(readers.describe_clusters)
            r.describe_clusters_p50_ms = percentile(readers.describe_clusters, 50) * 1000
            r.describe_clusters_p99_ms = percentile(readers.describe_clusters, 99) * 1000
        r.report_p50_ms = percentile(fleet.report_latency, 50) * 1000
        r.report_p99_ms = percentile(fleet.report_latency, 99) * 1000
        waits = [fleet.running_at[a] - t for a, t in fleet.placed_at.items() if a in fleet.running_at]
        r.placed_to_running_p50_ms = percentile(waits, 50) * 1000
        r.placed_to_running_p99_ms = percentile(waits, 99) * 1000
        r.stream_lines = fleet.lines
        r.stream_reconnects = fleet.reconnects
        r.loop_lag_p99_ms = percentile(self.lag, 99) * 1000
        r.loop_lag_max_ms = max(self.lag, default=float("nan")) * 1000
        r.ok = (
            not r.timed_out
            and not r.aborted
            and r.running_confirmed == r.tasks_requested
            and r.duplicates == 0
            and r.failures == 0
            and r.stopped_confirmed == r.stopped_requested
        )


async def gather_or_cancel(*coros) -> list[Any]:
    """asyncio.gather, but the first failure cancels the others before it propagates."""
    jobs = [asyncio.ensure_future(c) for c in coros]
    try:
        return await asyncio.gather(*jobs)
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)


class Abort(Exception):
    """The run cannot go on (the server refuses what the driver asks)."""


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(max(wanted, soft), hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        print(f"hollow fleet: warning: open-file limit {hard} < {wanted} wanted", file=sys.stderr)


async def run(config: Config) -> Result:
    """Runs the fleet and the load; never raises for what the server does (see Result)."""
    assert_loopback(config.endpoint)
    if config.tasks < 1 or config.agents < 1:
        raise ValueError("--agents and --tasks must be at least 1")
    if not (config.access_key and config.secret_key):
        raise ValueError("an access key and its secret are needed: the server verifies signatures")
    return await Driver(config).run()


def report(config: Config, r: Result) -> str:
    def f(x: float) -> str:
        return "n/a" if x != x else f"{x:.1f} ms"

    lines = [
        f"hollow fleet: {config.agents} agents, {config.tasks} tasks, {config.callers} RunTask callers, "
        f"{config.readers} readers, endpoint {config.endpoint}",
        f"agents registered: {r.agents_registered}/{r.agents}, streaming: {r.agents_connected} "
        f"(in {r.register_seconds:.1f} s)",
        (
            f"e2e tasks/s: {r.e2e_tasks_per_s:.1f} ({r.running_confirmed} RUNNING in {r.e2e_seconds:.1f} s from the "
            f"first RunTask to the last RUNNING report acknowledged; target >= 500)"
            if r.e2e_seconds == r.e2e_seconds
            else f"e2e tasks/s: n/a (unfinished: {r.running_acked} RUNNING acked, {r.placed} placed in "
            f"{r.elapsed_seconds:.1f} s since the first RunTask, {r.running_acked / max(r.elapsed_seconds, 1e-9):.1f}"
            f" RUNNING/s; target >= 500)"
        ),
        (
            f"placed tasks/s: {r.placed_tasks_per_s:.1f} ({r.placed} placed in {r.placement_seconds:.1f} s)"
            if r.placement_seconds == r.placement_seconds
            else f"placed tasks/s: n/a (unfinished: {r.placed} placed)"
        ),
        f"RunTask p50/p99: {f(r.run_task_p50_ms)} / {f(r.run_task_p99_ms)} ({r.run_task_calls} calls)",
        f"read p99 under load: DescribeTasks {f(r.describe_tasks_p99_ms)} (p50 {f(r.describe_tasks_p50_ms)}, "
        f"{r.describe_tasks_calls} calls); target <= 100 ms",
        f"read p99 under load: DescribeClusters {f(r.describe_clusters_p99_ms)} "
        f"(p50 {f(r.describe_clusters_p50_ms)}, {r.describe_clusters_calls} calls); target <= 100 ms",
        f"SubmitTaskStateChange p50/p99: {f(r.report_p50_ms)} / {f(r.report_p99_ms)}; placed -> RUNNING acked "
        f"p50/p99: {f(r.placed_to_running_p50_ms)} / {f(r.placed_to_running_p99_ms)}",
        f"stream lines: {r.stream_lines}, reconnects: {r.stream_reconnects}; client loop lag p99/max: "
        f"{f(r.loop_lag_p99_ms)} / {f(r.loop_lag_max_ms)}; client CPU {r.client_cpu_seconds:.1f} s in "
        f"{r.client_wall_seconds:.1f} s",
        f"RUNNING: {r.running_confirmed}/{r.tasks_requested} (agents acked {r.running_acked})  "
        f"duplicates: {r.duplicates}  failures: {r.failures}",
    ]
    if r.placement_failures:
        lines.append(f"placement failures (retried): {r.placement_failures}")
    if r.failure_details:
        lines.append(f"failure details: {r.failure_details}")
    if r.duplicate_details:
        lines.append("duplicates: " + "; ".join(r.duplicate_details))
    if r.stopped_requested:
        lines.append(f"stopped: {r.stopped_confirmed}/{r.stopped_requested}")
    if r.timed_out:
        lines.append(f"TIMED OUT after {config.timeout:.0f} s")
    if r.aborted:
        lines.append(f"ABORTED: {r.aborted}")
    lines.append("result: " + ("OK" if r.ok else "FAILED"))
    return "\n".join(lines)


def parse_args(argv: Optional[list[str]] = None) -> tuple[Config, Optional[str]]:
    d = Config(endpoint="")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--endpoint", required=True, help="the Berth server, http://127.0.0.1:PORT (loopback only)")
    p.add_argument("--agents", type=int, default=d.agents, help=f"hollow agents (default {d.agents})")
    p.add_argument("--tasks", type=int, default=d.tasks, help=f"tasks to place (default {d.tasks})")
    p.add_argument("--credentials-file", metavar="FILE", help="shared-credentials file with the keys (DATA_DIR/credentials)")
    p.add_argument("--profile", default="berth", help="profile of --credentials-file (default berth)")
    p.add_argument("--access-key", help="SigV4 access key id (instead of --credentials-file)")
    p.add_argument("--secret-key", help="SigV4 secret access key (instead of --credentials-file)")
    p.add_argument("--region", default=d.region)
    p.add_argument("--cluster", default=d.cluster, help=f"cluster to create and use (default {d.cluster})")
    p.add_argument("--family", default=d.family, help=f"task definition family (default {d.family})")
    p.add_argument("--callers", type=int, default=d.callers, help=f"concurrent RunTask callers (default {d.callers})")
    p.add_argument("--readers", type=int, default=d.readers, help=f"concurrent reader loops (default {d.readers})")
    p.add_argument("--read-interval", type=float, default=d.read_interval, help="pause between reads of one reader, s")
    p.add_argument("--agent-cpu", type=int, default=d.agent_cpu, help="CPU units each agent registers")
    p.add_argument("--agent-memory", type=int, default=d.agent_memory, help="MiB each agent registers")
    p.add_argument("--task-memory", type=int, default=d.task_memory, help="MiB of the task's one container")
    p.add_argument("--max-inflight", type=int, default=d.max_inflight, help="agent calls in flight at most")
    p.add_argument("--stop-tasks", type=int, default=d.stop_tasks, help="StopTask this many afterwards (default 0)")
    p.add_argument("--timeout", type=float, default=d.timeout, help=f"give up after this many s (default {d.timeout:.0f})")
    p.add_argument("--call-timeout", type=float, default=d.call_timeout, help="one API call's limit, s")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    if a.credentials_file:
        if a.access_key or a.secret_key:
            p.error("give --credentials-file or --access-key and --secret-key, not both")
        access_key, secret_key = read_credentials(a.credentials_file, a.profile)
    elif a.access_key and a.secret_key:
        access_key, secret_key = a.access_key, a.secret_key
    else:
        p.error("the server verifies signatures: give --credentials-file (or --access-key and --secret-key)")
    config = Config(
        endpoint=a.endpoint,
        agents=a.agents,
        tasks=a.tasks,
        access_key=access_key,
        secret_key=secret_key,
        region=a.region,
        cluster=a.cluster,
        family=a.family,
        callers=a.callers,
        readers=a.readers,
        read_interval=a.read_interval,
        agent_cpu=a.agent_cpu,
        agent_memory=a.agent_memory,
        task_memory=a.task_memory,
        max_inflight=a.max_inflight,
        stop_tasks=a.stop_tasks,
        timeout=a.timeout,
        call_timeout=a.call_timeout,
        quiet=a.quiet,
    )
    return config, a.json


def main(argv: Optional[list[str]] = None) -> int:
    config, json_path = parse_args(argv)
    result = asyncio.run(run(config))
    print(report(config, result), flush=True)
    if json_path:
        with open(json_path, "w") as out:
            json.dump(asdict(result), out, indent=2)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

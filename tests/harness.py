"""Machinery shared by the client-facing suites: where the berth binary and the AWS CLI are,
a `berth server` subprocess on a temp data dir, a recording proxy in front of it, and client
factories (boto3, the AWS CLI, raw HTTP) that can only ever reach loopback.

Every client signs its requests (SigV4) with the keys the server wrote to
`<data_dir>/credentials` on its first start (profile `berth`): boto3 clients get them
explicitly, raw HTTP requests are signed with botocore's SigV4Auth over the exact bytes sent,
and the AWS CLI and `berth agent` subprocesses find them the way a user's would, through
AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE. No AWS keys are ever in the environment.

Nothing here skips: a missing binary or CLI is a loud error naming the command that fixes it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from configparser import ConfigParser
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional, Sequence
from unittest import mock
from urllib.parse import quote, urlencode

import leaks

REPO = Path(__file__).resolve().parents[1]
TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."
CONTENT_TYPE = "application/x-amz-json-1.1"
REGION = "us-east-1"
ACCOUNT = "000000000000"
# What requests are signed for (SigV4 credential scope).
SIGNING_SERVICE = "ecs"
# The file and profile in which a server's data dir holds its root access key.
CREDENTIALS_FILE = "credentials"
PROFILE = "berth"
# A closed port: any client that ignores its loopback endpoint and tries a real AWS host goes
# through this "proxy" and fails at once instead of leaving the machine.
DEAD_PROXY = "http://127.0.0.1:9"


class HarnessError(RuntimeError):
    """The test harness itself cannot run (missing binary, server would not start, ...)."""


# ---------------------------------------------------------------------------------------------
# Locating what the tests drive
# ---------------------------------------------------------------------------------------------


def berth_bin() -> Path:
    """The berth binary: $BERTH_BIN, else <repo>/target/debug/berth. Missing is an error."""
    path = Path(os.environ.get("BERTH_BIN") or REPO / "target" / "debug" / "berth")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise HarnessError(
            f"berth binary not found at {path}: build it with `cargo build -p berth` "
            "(or point BERTH_BIN at it)."
        )
    return path


def aws_cli() -> list[str]:
    """The AWS CLI: $BERTH_AWS_CLI, else <repo>/.venv/bin/aws, else `aws` on PATH."""
    configured = os.environ.get("BERTH_AWS_CLI")
    if configured:
        if not (Path(configured).is_file() or shutil.which(configured)):
            raise HarnessError(f"BERTH_AWS_CLI={configured} does not exist.")
        return [configured]
    venv = REPO / ".venv" / "bin" / "aws"
    if venv.is_file():
        return [str(venv)]
    found = shutil.which("aws")
    if found:
        return [found]
    raise HarnessError(
        "AWS CLI not found: run `python3 -m venv .venv && .venv/bin/pip install -r "
        "tests/requirements.txt` (or point BERTH_AWS_CLI at an aws binary)."
    )


# ---------------------------------------------------------------------------------------------
# Keeping every client on loopback, with no credentials but those a server gives
# ---------------------------------------------------------------------------------------------

# Credentials in the environment beat any profile, so none may come from it.
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
)
_SCRUBBED = (
    *_CREDENTIAL_VARIABLES,
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_ECS",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)
_EMPTY_AWS_DIR: Optional[str] = None


def isolate_aws_environment() -> None:
    """Points this process (and so every subprocess) at no credentials at all (no AWS keys in
    the environment, empty config and credentials files), region us-east-1, one attempt per
    call, and a dead proxy for anything that is not loopback. Clients get their keys from the
    server they talk to (BerthServer.credentials)."""
    global _EMPTY_AWS_DIR
    if _EMPTY_AWS_DIR is None:
        _EMPTY_AWS_DIR = tempfile.mkdtemp(prefix="berth-aws-config-")
        for name in ("config", "credentials"):
            Path(_EMPTY_AWS_DIR, name).write_text("")
    for name in _SCRUBBED:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": str(Path(_EMPTY_AWS_DIR, "config")),
            "AWS_SHARED_CREDENTIALS_FILE": str(Path(_EMPTY_AWS_DIR, "credentials")),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "AWS_PAGER": "",
            "HTTP_PROXY": DEAD_PROXY,
            "HTTPS_PROXY": DEAD_PROXY,
            "http_proxy": DEAD_PROXY,
            "https_proxy": DEAD_PROXY,
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "no_proxy": "127.0.0.1,localhost,::1",
        }
    )


def assert_loopback(url: str) -> None:
    """Refuses any endpoint that is not on this machine's loopback."""
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        raise HarnessError(f"refusing non-loopback endpoint {url}")


# ---------------------------------------------------------------------------------------------
# Credentials
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """An access key and its secret; `path` is the shared-credentials file that holds them
    under `profile` (None for keys made up in a test)."""

    access_key: str
    secret_key: str
    path: Optional[Path] = None
    profile: str = PROFILE

    @classmethod
    def read(cls, path: Path, profile: str = PROFILE) -> "Credentials":
        """The keys of `profile` in the shared-credentials file at `path`; a missing file,
        profile or key is a loud error."""
        parser = ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
        except OSError as e:
            raise HarnessError(f"cannot read the server's credentials file {path}: {e}") from None
        if not parser.has_section(profile):
            raise HarnessError(f"{path} has no [{profile}] profile (it has {parser.sections()})")
        section = parser[profile]
        missing = [k for k in ("aws_access_key_id", "aws_secret_access_key") if not section.get(k)]
        if missing:
            raise HarnessError(f"profile [{profile}] of {path} lacks {', '.join(missing)}")
        return cls(section["aws_access_key_id"], section["aws_secret_access_key"], Path(path), profile)

    def write(self, path: Path) -> "Credentials":
        """Writes these keys to a new shared-credentials file at `path` (mode 0600) under
        `profile`; returns the credentials with that path."""
        parser = ConfigParser(interpolation=None)
        parser[self.profile] = {"aws_access_key_id": self.access_key, "aws_secret_access_key": self.secret_key}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            parser.write(f)
        return Credentials(self.access_key, self.secret_key, Path(path), self.profile)

    def with_secret(self, secret_key: str) -> "Credentials":
        """The same access key with another secret (not backed by a file)."""
        return Credentials(self.access_key, secret_key, None, self.profile)

    def botocore(self):
        """These keys as botocore Credentials."""
        from botocore.credentials import Credentials as BotocoreCredentials

        return BotocoreCredentials(self.access_key, self.secret_key)

    def env(self) -> dict[str, str]:
        """The environment of a subprocess (AWS CLI, `berth agent`) that finds these keys the
        standard AWS way: this process's environment, without any AWS keys or profile, plus
        AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE naming the file and profile."""
        if self.path is None:
            raise HarnessError("these credentials are in no file: write() them to one first")
        return {**subprocess_env(), "AWS_SHARED_CREDENTIALS_FILE": str(self.path), "AWS_PROFILE": self.profile}


def subprocess_env(**extra: str) -> dict[str, str]:
    """This process's environment without AWS keys or profile (they would beat any profile a
    subprocess is meant to use), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _CREDENTIAL_VARIABLES}
    env.update(extra)
    return env


def sign_request(
    credentials: Credentials,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    at: Optional[datetime] = None,
) -> dict[str, str]:
    """`headers` plus Host, X-Amz-Date and Authorization, as botocore's SigV4Auth signs the
    request (service `ecs`, region us-east-1) with `body` as its payload. The path and query of
    `url` must be sent exactly as given (the query already percent-encoded, see query_path).
    `at` (a timezone-aware datetime) signs as if the clock said so."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    # The Host sent is the one signed: name it rather than let botocore derive its own.
    headers = {"Host": url.split("://", 1)[1].split("/", 1)[0], **headers}
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    signer = SigV4Auth(credentials.botocore(), SIGNING_SERVICE, REGION)
    if at is None:
        signer.add_auth(request)
    else:
        # botocore reads the time through this function, as naive UTC.
        utc = at.astimezone(timezone.utc).replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=utc):
            signer.add_auth(request)
    return dict(request.headers.items())


# ---------------------------------------------------------------------------------------------
# The recording of every exchange
# ---------------------------------------------------------------------------------------------


# The JSON services whose answers the conformance walker checks, by X-Amz-Target prefix: the
# botocore service name of each.
JSON_SERVICES = {
    "AmazonEC2ContainerServiceV20141113.": "ecs",
    "Logs_20140328.": "logs",
    "GraniteServiceVersion20100801.": "cloudwatch",
    "secretsmanager.": "secretsmanager",
    "AmazonSSM.": "ssm",
    "AnyScaleFrontendService.": "application-autoscaling",
    "Route53AutoNaming_v20170314.": "servicediscovery",
}


@dataclass
class Exchange:
    """One request/response pair that went through a recording proxy."""

    test: str
    method: str
    path: str
    target: Optional[str]
    status: int
    request_body: bytes
    response_body: bytes
    proxy_error: Optional[str] = None
    request_content_type: Optional[str] = None
    response_content_type: Optional[str] = None
    # The service the request's SigV4 credential scope names (`iam`, `elasticloadbalancing`).
    signing_service: Optional[str] = None

    def _target_service(self) -> tuple[Optional[str], Optional[str]]:
        """(botocore service, operation) the X-Amz-Target names; (None, None) for none we
        know."""
        target = (self.target or "").strip()  # HTTP trims whitespace around field values
        for prefix, service in JSON_SERVICES.items():
            if target.startswith(prefix):
                return service, target[len(prefix) :] or None
        return None, None

    @property
    def operation(self) -> Optional[str]:
        """The operation the X-Amz-Target names (of any service in JSON_SERVICES), or None."""
        return self._target_service()[1]

    @property
    def not_json(self) -> Optional[str]:
        """Why the exchange is not an AWS JSON one (a CBOR call at /service/..., a query
        request, an XML or CBOR answer), or None when it is: those are left to other checks."""
        if self.path.startswith("/service/"):
            return "smithy-rpc-v2-cbor path"
        request_type = (self.request_content_type or "").lower()
        response_type = (self.response_content_type or "").lower()
        if "cbor" in response_type:
            return "CBOR answer"
        if "xml" in response_type:
            return "XML answer"
        if request_type.startswith("application/x-www-form-urlencoded") and not self.target:
            return "query request"
        return None

    @property
    def service(self) -> Optional[str]:
        """The botocore service whose model this exchange's answer must follow: the one its
        X-Amz-Target prefix names; ECS when it names none (as every exchange was checked
        before other services shared the endpoint); None when it is not an AWS JSON exchange."""
        if self.not_json:
            return None
        service, _ = self._target_service()
        if service is None and (self.target or "").strip():
            # A JSON target of a service we have no table entry for: ECS's rules (an error
            # must be a protocol error) apply, as they always did.
            return "ecs"
        return service or "ecs"


@dataclass
class Recorder:
    """Every exchange of the session, in order, from all proxies."""

    exchanges: list[Exchange] = field(default_factory=list)
    current_test: str = "<no test>"
    checked_upto: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)

    def snapshot(self) -> list[Exchange]:
        with self.lock:
            return list(self.exchanges)


RECORDER = Recorder()
_REQUEST_BODY_KEPT = 4096
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}


def scope_service(authorization: str) -> Optional[str]:
    """The service of a SigV4 Authorization header's credential scope
    (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`), if it has one."""
    match = re.search(r"Credential=[^/,\s]+/[^/]+/[^/]+/([^/]+)/aws4_request", authorization)
    return match.group(1) if match else None


def finish_request(conn: http.client.HTTPConnection, body: bytes) -> http.client.HTTPResponse:
    """Sends the headers and body, then reads the response. A server may answer (say, a 4xx
    for a body over its limit) and close before it has read the whole body; like a careful
    HTTP client, read that early answer instead of giving up on the broken pipe."""
    try:
        conn.endheaders(body if body else None)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return conn.getresponse()


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_ProxyServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _forward(self) -> None:
        body = self._read_body()
        target = self.headers.get("X-Amz-Target")
        status, headers, data, error = self._upstream(body)
        self.server.recorder.add(
            Exchange(
                test=self.server.recorder.current_test,
                method=self.command,
                path=self.path,
                target=target,
                status=status,
                request_body=body[:_REQUEST_BODY_KEPT],
                response_body=data,
                proxy_error=error,
                request_content_type=self.headers.get("Content-Type"),
                response_content_type=next((v for n, v in headers if n.lower() == "content-type"), None),
                signing_service=scope_service(self.headers.get("Authorization") or ""),
            )
        )
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() not in ("date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _upstream(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes, Optional[str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=120)
        try:
            # Path, headers and body go on as the client sent them, Host included: a SigV4
            # signature covers all three, so the server must see what the client signed.
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            if "Host" not in self.headers:
                conn.putheader("Host", f"127.0.0.1:{self.server.upstream_port}")
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    conn.putheader(name, value.encode("latin-1", "replace"))
            if body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            resp = finish_request(conn, body)
            data = resp.read()
            return resp.status, resp.getheaders(), data, None
        except (OSError, http.client.HTTPException) as e:
            message = f"berth server gave no response: {type(e).__name__}: {e}"
            data = json.dumps({"__type": "BerthTestProxyError", "message": message}).encode()
            return 502, [("Content-Type", CONTENT_TYPE)], data, message
        finally:
            conn.close()

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    upstream_port: int
    recorder: Recorder


class RecordingProxy:
    """A loopback HTTP proxy that forwards everything to a berth server and records each
    exchange in RECORDER, so the conformance check sees all client traffic."""

    def __init__(self, upstream_port: int, recorder: Recorder = RECORDER) -> None:
        self._server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.upstream_port = upstream_port
        self._server.recorder = recorder
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def retarget(self, upstream_port: int) -> None:
        """Forwards to another server port from now on (after a restart)."""
        self._server.upstream_port = upstream_port

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------------------------------------
# The berth server subprocess
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` holds a TCP socket listening on `port` (from /proc)."""
    inodes = set()
    fds = Path(f"/proc/{pid}/fd")
    try:
        for fd in fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEX_IP:HEX_PORT; state 0A is LISTEN.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
                return True
    return False


def free_dns_port() -> int:
    """A loopback port free for both UDP and TCP, for the server's DNS (--dns-listen)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


class BerthServer:
    """`berth server --listen 127.0.0.1:<port> --data-dir <dir>` as a subprocess; with
    `subcommand="up"`, `berth up` (server and agent in one process) the same way. `extra_args`
    go after the data dir; `env` is added to this process's environment."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Optional[Path] = None,
        subcommand: str = "server",
        extra_args: Sequence[str] = (),
        env: Optional[dict[str, str]] = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path or self.data_dir.parent / f"{self.data_dir.name}.log")
        self.subcommand = subcommand
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.port = 0
        self.dns_port = 0  # where it answers DNS for Cloud Map namespaces (UDP and TCP)
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self._credentials: Optional[Credentials] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / CREDENTIALS_FILE

    @property
    def credentials(self) -> Credentials:
        """The account's root access key, as the server wrote it to its data dir (read by
        start() once the server answers /healthz: the file is written before that)."""
        if self._credentials is None:
            raise HarnessError(f"berth {self.subcommand} was never started: no credentials to read yet")
        return self._credentials

    def client(self, credentials: Optional[Credentials] = None, **config: Any):
        """A boto3 ECS client straight to this server (no recording proxy), signing with the
        server's keys unless `credentials` says otherwise."""
        return boto3_client(self.url, credentials or self.credentials, **config)

    def command(self) -> list[str]:
        return [
            str(berth_bin()),
            self.subcommand,
            "--listen",
            f"127.0.0.1:{self.port}",
            "--data-dir",
            str(self.data_dir),
            "--dns-listen",
            f"127.0.0.1:{self.dns_port}",
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        """The server's environment: no AWS keys (`berth up`'s agent must use its data dir's)."""
        return subprocess_env(BERTH_LOG=os.environ.get("BERTH_LOG", "info"), **self.env)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def start(self, timeout: float = 30.0) -> "BerthServer":
        berth_bin()  # a missing binary is a loud error before anything starts
        leaks.watch(self.data_dir, self.log_path)
        last_error = ""
        for _ in range(5):
            self.port = free_port()
            self.dns_port = free_dns_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    self.command(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.environment(),
                )
            deadline = time.monotonic() + timeout
            while self.proc.poll() is None:
                # Another session's server may hold the port this one failed to take: the
                # answer counts only once this process listens there.
                if self.healthy(timeout=1.0) and listens_on(self.proc.pid, self.port):
                    self._credentials = Credentials.read(self.credentials_path)
                    return self
                if time.monotonic() > deadline:
                    self.kill()
                    raise HarnessError(
                        f"berth {self.subcommand} did not answer /healthz within {timeout}s.\n{self.log_tail()}"
                    )
                time.sleep(0.05)
            last_error = f"exited with {self.proc.returncode}"
            if "cannot listen" not in self.log_tail(5):
                break
        raise HarnessError(f"berth {self.subcommand} failed to start ({last_error}).\n{self.log_tail()}")

    def healthy(self, timeout: float = 2.0) -> bool:
        """Whether GET /healthz answers 200 right now."""
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                conn.request("GET", "/healthz")
                return conn.getresponse().status == 200
            finally:
                conn.close()
        except (OSError, http.client.HTTPException):
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or power loss would stop it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM and wait; raises if the server had already died on its own."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            code = self.proc.returncode
            self.proc = None
            raise HarnessError(f"berth {self.subcommand} died during the tests (exit {code}).\n{self.log_tail()}")
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
            raise HarnessError(f"berth {self.subcommand} ignored SIGTERM for 15 s and was killed.")
        finally:
            self.proc = None


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------


def boto3_client(endpoint: str, credentials: Optional[Credentials], service: str = "ecs", **config: Any):
    """A boto3 client for `endpoint` that signs with `credentials` and makes exactly one
    attempt per call. `config` adds botocore Config options (say,
    signature_version=botocore.UNSIGNED, the only case for credentials=None)."""
    import boto3
    from botocore.config import Config

    assert_loopback(endpoint)
    keys = {}
    if credentials is not None:
        keys = {"aws_access_key_id": credentials.access_key, "aws_secret_access_key": credentials.secret_key}
    session = boto3.session.Session(region_name=REGION, **keys)
    options: dict[str, Any] = {
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        "connect_timeout": 10,
        "read_timeout": 120,
        "max_pool_connections": 32,
        **config,
    }
    return session.client(service, endpoint_url=endpoint, config=Config(**options))


@dataclass
class RawResponse:
    """A response to a raw HTTP request."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def query_path(path: str, params: dict[str, str]) -> str:
    """`path?query`, the query percent-encoded as SigV4 canonicalises it (so what is signed
    is what is sent)."""
    return f"{path}?{urlencode(sorted(params.items()), quote_via=quote)}" if params else path


def _as_text(headers: dict[str, str | bytes]) -> dict[str, str]:
    """Headers to sign. botocore hashes the canonical request as UTF-8, so raw bytes (a header
    no SDK would send) are signed as their UTF-8 text, which hashes as the bytes sent; bytes
    that are not UTF-8 have no such text and are signed one character per byte (latin-1),
    which a server cannot match: such a request is not correctly signed."""
    out = {}
    for name, value in headers.items():
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                value = value.decode("latin-1")
        out[name] = value
    return out


def raw_request(
    endpoint: str,
    body: bytes | str = b"{}",
    target: Optional[str | bytes] = None,
    operation: Optional[str] = None,
    content_type: Optional[str] = CONTENT_TYPE,
    method: str = "POST",
    path: str = "/",
    extra_headers: Optional[dict[str, str]] = None,
    timeout: float = 60.0,
    credentials: Optional[Credentials] = None,
    signed_body: Optional[bytes] = None,
    signed_at: Optional[datetime] = None,
    first_line: bool = False,
) -> RawResponse:
    """One hand-made HTTP request with http.client: whatever headers and body the caller
    wants, including ones no SDK would send.

    With `credentials` it is SigV4-signed (botocore's SigV4Auth) over exactly the method,
    path, headers and body sent; without, it goes unsigned. To mis-sign on purpose: other
    credentials, `signed_body` (sign these bytes, send `body`), `signed_at` (sign as if the
    clock said so). `first_line` reads the body only up to its first newline (for the
    desired-state stream, which does not end)."""
    assert_loopback(endpoint)
    host_port = endpoint.split("://", 1)[1].rstrip("/")
    host, port = host_port.rsplit(":", 1)
    if isinstance(body, str):
        body = body.encode("utf-8")
    if operation is not None:
        target = TARGET_PREFIX + operation
    headers: dict[str, str | bytes] = {}
    if target is not None:
        headers["X-Amz-Target"] = target
    if content_type is not None:
        headers["Content-Type"] = content_type
    headers.update(extra_headers or {})
    if credentials is not None:
        payload = body if signed_body is None else signed_body
        signed = sign_request(credentials, method, f"http://{host_port}{path}", _as_text(headers), payload, signed_at)
        # Raw header bytes go out as given; the other headers as signed.
        headers = {**signed, **{k: v for k, v in headers.items() if isinstance(v, bytes)}}
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host="host" in (k.lower() for k in headers), skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        resp = finish_request(conn, body)
        data = resp.readline() if first_line else resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


# The agent gateway (crates/berth-core/src/gateway.rs): the desired-state stream, which
# names the line format it reads, and the heartbeat.
DESIRED_PATH = "/v1/agent/desired"
HEARTBEAT_PATH = "/v1/agent/heartbeat"
STREAM_PROTOCOL = "2"


def heartbeat(server: "BerthServer", cluster: str, instance: str, **kwargs: Any) -> RawResponse:
    """An agent's heartbeat for `instance`, straight to the server, signed with its keys;
    `kwargs` as for raw_request (credentials=None: unsigned)."""
    kwargs.setdefault("credentials", server.credentials)
    body = json.dumps({"cluster": cluster, "containerInstance": instance})
    return raw_request(server.url, body, content_type="application/json", path=HEARTBEAT_PATH, **kwargs)


def desired_stream(server: "BerthServer", cluster: str, instance: str, **kwargs: Any) -> RawResponse:
    """Opens the desired-state stream of `instance` as an agent does, straight to the server
    (signed with its keys), and closes it after the first line; the response holds that line.
    `kwargs` as for raw_request (credentials=None: unsigned)."""
    kwargs.setdefault("credentials", server.credentials)
    kwargs.setdefault("timeout", 30.0)
    query = {"cluster": cluster, "containerInstance": instance, "protocol": STREAM_PROTOCOL}
    path = query_path(DESIRED_PATH, query)
    return raw_request(
        server.url, b"", content_type=None, method="GET", path=path, extra_headers={"Accept": "application/x-ndjson"}, first_line=True, **kwargs
    )


class Berth:
    """A running berth server behind a recording proxy, with client factories. Every client
    signs with the server's own keys unless told otherwise."""

    def __init__(self, server: BerthServer, proxy: RecordingProxy) -> None:
        self.server = server
        self.proxy = proxy
        self._client = None

    @property
    def endpoint(self) -> str:
        """The URL clients use: the recording proxy."""
        return self.proxy.url

    @property
    def credentials(self) -> Credentials:
        """The server's root access key (from its data dir)."""
        return self.server.credentials

    @property
    def ecs(self):
        """A shared boto3 ECS client (thread-safe for calls)."""
        if self._client is None:
            self._client = boto3_client(self.endpoint, self.credentials)
        return self._client

    def new_client(self, credentials: Optional[Credentials] = None, **config: Any):
        """A new boto3 ECS client, signing with `credentials` (default: the server's);
        `config` as for boto3_client."""
        return boto3_client(self.endpoint, credentials or self.credentials, **config)

    def raw(self, *args: Any, **kwargs: Any) -> RawResponse:
        """raw_request through the proxy, signed with the server's keys; `credentials=None`
        sends it unsigned."""
        kwargs.setdefault("credentials", self.credentials)
        return raw_request(self.endpoint, *args, **kwargs)

    def call(self, operation: str, payload: dict[str, Any], **kwargs: Any) -> RawResponse:
        """A well-formed signed request for `operation` with a JSON `payload`; `kwargs` as
        for raw()."""
        return self.raw(json.dumps(payload), operation=operation, **kwargs)

    def cli(
        self, *args: str, check: bool = True, timeout: float = 120.0, credentials: Optional[Credentials] = None
    ) -> "CliResult":
        """Runs `aws ecs <args>` against this server and parses its JSON output. The CLI finds
        its keys as a user's would: AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE name the
        server's credentials file (or that of `credentials`), and no keys are in its
        environment."""
        assert_loopback(self.endpoint)
        cmd = [
            *aws_cli(),
            "ecs",
            *args,
            "--endpoint-url",
            self.endpoint,
            "--region",
            REGION,
            "--output",
            "json",
        ]
        env = (credentials or self.credentials).env()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        result = CliResult(cmd, done.returncode, done.stdout, done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(f"aws CLI failed: {result}")
        return result


@dataclass
class CliResult:
    """What one AWS CLI run printed."""

    cmd: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout) if self.stdout.strip() else None

    def __str__(self) -> str:
        return (
            f"`{' '.join(self.cmd)}` exited {self.returncode}\n"
            f"stdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}"
        )


def start_berth(data_dir: Path, subcommand: str = "server", extra_args: Sequence[str] = ()) -> Berth:
    """Starts a server (or `berth up` with subcommand="up") on `data_dir` and a recording
    proxy in front of it."""
    server = BerthServer(data_dir, subcommand=subcommand, extra_args=extra_args).start()
    return Berth(server, RecordingProxy(server.port))


def stop_berth(berth: Berth) -> None:
    """Stops the proxy and the server; raises if the server had died."""
    berth.proxy.stop()
    berth.server.stop()


# ---------------------------------------------------------------------------------------------
# Docker tests: the daemon, the test image, `berth agent` processes, waiting on tasks
# ---------------------------------------------------------------------------------------------

# Labels the agent puts on every container it creates (crates/berth-agent/src/spec.rs).
LABEL_CLUSTER = "com.berth.cluster"
LABEL_CONTAINER_INSTANCE = "com.berth.container-instance"
LABEL_TASK_ARN = "com.berth.task-arn"
LABEL_CONTAINER_NAME = "com.berth.container-name"


def docker(*args: str, check: bool = True, timeout: float = 60.0) -> str:
    """Runs the docker CLI and returns its stdout; a failure (with check) is an error that
    shows what docker said."""
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise HarnessError("the docker CLI is not installed: run scripts/ensure-docker.") from None
    if check and done.returncode != 0:
        raise HarnessError(f"`docker {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def ensure_docker_and_test_image() -> None:
    """Makes sure a Docker daemon answers (running scripts/ensure-docker when it does not) and
    that the test image exists (scripts/build-test-image). Never skips: anything missing is a
    loud error naming the script that failed."""
    for script in ("ensure-docker", "build-test-image"):
        path = REPO / "scripts" / script
        done = subprocess.run([str(path)], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise HarnessError(
                f"scripts/{script} failed (exit {done.returncode}); the Docker tests need a Docker "
                f"daemon and the test image.\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        raise HarnessError("`docker info` still fails after scripts/ensure-docker.")


def remove_containers(label: str) -> list[str]:
    """Force-removes every container (running or not) carrying `label` (`key=value`); returns
    their ids."""
    ids = docker("ps", "-aq", "--no-trunc", "--filter", f"label={label}", check=False).split()
    if ids:
        docker("rm", "-f", "-v", *ids, check=False, timeout=120)
    return ids


def containers_with(label: str, all_states: bool = True) -> list[dict]:
    """`docker inspect` of every container carrying `label`."""
    args = ["ps", "-q", "--no-trunc", "--filter", f"label={label}"]
    if all_states:
        args.insert(1, "-a")
    ids = docker(*args).split()
    return json.loads(docker("inspect", *ids)) if ids else []


class BerthAgent:
    """`berth agent --server URL --cluster NAME --data-dir DIR [--attribute K=V]...` as a
    subprocess of `server` (its URL and keys are read when the agent starts). Agents talk to
    the server directly: the desired-state stream is a long-lived response the recording proxy
    (which buffers whole bodies) cannot carry. An agent finds its keys as on a host: through
    AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE naming the server's credentials file."""

    def __init__(
        self,
        server: BerthServer,
        cluster: str,
        data_dir: Path,
        attributes: Sequence[str] = (),
        extra_args: Sequence[str] = ("--task-cleanup-wait", "30s"),
    ) -> None:
        self.server = server
        self.cluster = cluster
        self.data_dir = Path(data_dir)
        self.attributes = list(attributes)
        self.extra_args = list(extra_args)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def server_url(self) -> str:
        return self.server.url

    def start(self) -> "BerthAgent":
        assert_loopback(self.server_url)
        args = [str(berth_bin()), "agent", "--server", self.server_url, "--cluster", self.cluster]
        args += ["--data-dir", str(self.data_dir)]
        for attribute in self.attributes:
            args += ["--attribute", attribute]
        args += self.extra_args
        leaks.watch(self.data_dir, self.log_path)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**self.server.credentials.env(), "BERTH_LOG": os.environ.get("BERTH_LOG", "info")},
            )
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 15 s); raises if the agent had died on its own."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is not None:
            raise HarnessError(f"berth agent died during the tests (exit {proc.returncode}).\n{self.log_tail()}")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
            raise HarnessError("berth agent ignored SIGTERM for 15 s and was killed.")


class BerthUp(Berth):
    """A running `berth up` (server and agent in one process, cluster `default`) behind a
    recording proxy, with its container instance."""

    cluster = "default"
    instance_arn: str = ""

    @property
    def instance_id(self) -> str:
        return self.instance_arn.rsplit("/", 1)[-1]


def start_berth_up(data_dir: Path, extra_args: Sequence[str] = (), container_dns: bool = False) -> BerthUp:
    """Starts `berth up` on `data_dir` and waits (at most 30 s) until its agent has registered
    and connected. Whoever calls it must call stop_berth_up, also when this raises.

    Only one process can answer DNS on the Docker bridge's port 53, and the test session runs
    several `berth up` at once (one lives through the whole session): only one that asks for
    it (`container_dns=True`) serves containers there; the others run with
    `--no-container-dns`."""
    if not container_dns:
        extra_args = [*extra_args, "--no-container-dns"]
    running = start_berth(data_dir, subcommand="up", extra_args=extra_args)
    up = BerthUp(running.server, running.proxy)

    def connected_instance() -> str | None:
        arns = up.ecs.list_container_instances(cluster="default")["containerInstanceArns"]
        if len(arns) != 1:
            return None
        instance = up.ecs.describe_container_instances(cluster="default", containerInstances=arns)
        ready = instance["containerInstances"][0]
        return ready["containerInstanceArn"] if ready.get("agentConnected") else None

    try:
        up.instance_arn = wait_until(
            connected_instance, 30, "the agent of `berth up` to register", diagnose=up.server.log_tail
        )
    except BaseException:
        stop_berth_up(up)
        raise
    return up


def stop_berth_up(up: BerthUp) -> None:
    """Stops the proxy and `berth up`, then removes every container its agent created, even
    when stopping failed."""
    try:
        stop_berth(up)
    finally:
        if up.instance_arn:
            remove_containers(f"{LABEL_CONTAINER_INSTANCE}={up.instance_id}")


def wait_until(
    probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.2, diagnose: Callable[[], str] = lambda: ""
) -> Any:
    """Calls `probe` until it returns something truthy and returns that; fails after
    `timeout` seconds with `what` and whatever `diagnose` says."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{diagnose()}")
        time.sleep(interval)


def describe_task(ecs: Any, cluster: str, task_arn: str) -> dict:
    """The task as DescribeTasks shows it; fails if it is missing."""
    out = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])
    assert out["tasks"], f"DescribeTasks lost {task_arn}: {out['failures']}"
    return out["tasks"][0]


def wait_for_task(
    ecs: Any,
    cluster: str,
    task_arn: str,
    until: Callable[[dict], bool],
    timeout: float,
    what: str,
    log: Callable[[], str] = lambda: "",
) -> dict:
    """Polls DescribeTasks until `until(task)` holds and returns the task; on timeout fails
    with the last description and `log()`."""
    last: dict = {}

    def probe() -> Optional[dict]:
        nonlocal last
        last = describe_task(ecs, cluster, task_arn)
        return last if until(last) else None

    def diagnose() -> str:
        summary = {k: last.get(k) for k in ("lastStatus", "desiredStatus", "stopCode", "stoppedReason")}
        containers = [
            {k: c.get(k) for k in ("name", "lastStatus", "exitCode", "reason", "healthStatus")}
            for c in last.get("containers", [])
        ]
        return f"last seen: {summary} containers: {containers}\n{log()}"

    return wait_until(probe, timeout, what, diagnose=diagnose)


def status_is(*statuses: str) -> Callable[[dict], bool]:
    return lambda task: task.get("lastStatus") in statuses

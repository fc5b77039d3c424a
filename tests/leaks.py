"""Issue 13's leak check over the whole run: every secret value a test stores (Secrets Manager,
SecureString, registry password) is remembered here, as is every data dir and log of a Berth
process the session starts; at the end of the session conftest greps them all, and every
response the recording proxies saw, for each value in plain text."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Iterable, Protocol

SECRET_VALUES: set[str] = set()
WATCHED: list[Path] = []


def secret_value(kind: str) -> str:
    """A secret value no other test and no key material can contain by chance, watched for
    leaks until the end of the session."""
    return remember(f"BerthSecret{kind}{uuid.uuid4().hex}")


def remember(value: str) -> str:
    """Watches `value` (a secret a test stores) for leaks; returns it."""
    SECRET_VALUES.add(value)
    return value


def watch(*paths: Path) -> None:
    """Greps `paths` (data dirs, whole; log files) at the end of the session."""
    for path in paths:
        if path not in WATCHED:
            WATCHED.append(path)


class Recorded(Protocol):
    test: str
    path: str
    target: str | None
    response_body: bytes


def files_of(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return files


def scan(exchanges: Iterable[Recorded]) -> tuple[list[str], int, int]:
    """Where any remembered value shows in plain text: (findings, responses, files) read."""
    needles = [v.encode() for v in sorted(SECRET_VALUES)]
    findings: list[str] = []
    responses = 0
    for exchange in exchanges:
        responses += 1
        for needle in needles:
            if needle in exchange.response_body:
                findings.append(f"the answer to {exchange.target or exchange.path} in {exchange.test} holds {needle.decode()}")
    files = files_of(WATCHED)
    for path in files:
        try:
            content = path.read_bytes()
        except OSError:
            continue  # removed meanwhile (a socket, a lock)
        for needle in needles:
            if needle in content:
                findings.append(f"{path} holds {needle.decode()}")
    return findings, responses, len(files)

"""What the stack's commands share about processes: errors, messages, ports, pids, command lines
and log tails (used by ops/infra.py and ops/stack.py)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

from ledger.platform import config


class StackError(Exception):
    """Something the operator must act on; the message says what."""


def say(msg: str) -> None:
    print(f"[stack] {msg}", file=sys.stderr, flush=True)


def port_free(port: int, wait: float = 0.0) -> bool:
    """True if a server could listen on 127.0.0.1:`port`, asking again for up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                if time.monotonic() >= deadline:
                    return False
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """True while the process runs (a zombie, dead but not yet reaped by its parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return proc_state(pid) not in ("Z", "X")


def terminate(pid: int, grace: float, what: str, sig: signal.Signals = signal.SIGTERM) -> None:
    """Send `sig` to one process we started, wait up to `grace` seconds, then SIGKILL; return once gone."""
    os.kill(pid, sig)
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        if sig != signal.SIGKILL:
            say(f"{what} did not stop within {grace:.0f} s: SIGKILL")
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)


def code_fingerprint() -> str:
    """Names, sizes and times of the files a ledger process runs, so `up` can tell stale processes."""
    h = hashlib.sha256()
    for folder in ("ledger", "consumers", "schemas", "projections"):
        for path in sorted((config.ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".json", ".avsc", ".sql"):
                st = path.stat()
                h.update(f"{path.relative_to(config.ROOT)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def proc_state(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except OSError:
        return "X"
    return "?"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def tail(path: Path, n: int = 25) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def real_clock_env(**extra: str) -> dict[str, str]:
    """The environment without libfaketime (LD_PRELOAD, FAKETIME*): for a child process that runs
    librdkafka, whose timed waits never return under a faked clock (measured: a consumer's poll(1.0)
    hangs with FAKETIME set, with or without FAKETIME_DONT_FAKE_MONOTONIC=1). Such a child (a subscriber
    reading a topic, the ACLs applied by ops/access.py) does no date arithmetic, so the machine's own
    clock changes nothing it checks."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FAKETIME")}
    preload = " ".join(x for x in os.environ.get("LD_PRELOAD", "").split() if "faketime" not in x)
    return {**env, **({"LD_PRELOAD": preload} if preload else {}), **extra}


def restarts_file(s: config.Settings) -> Path:
    """Where the stack's supervisor (ops/supervisor.py) keeps its restart count per service."""
    return s.stack_dir / "restarts.json"


def read_restarts(s: config.Settings) -> dict[str, int]:
    """The restarts per service counted by the supervisor of this stack directory (empty if none)."""
    try:
        return {k: int(v) for k, v in json.loads(restarts_file(s).read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}

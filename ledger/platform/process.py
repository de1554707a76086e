"""How every long-running ledger process starts: --help from its docstring, JSON logs, /metrics on
loopback, SIGTERM/SIGINT turned into a clean stop, and the uvloop event loop."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import uvloop
from aiohttp import web
from prometheus_client import start_http_server

from ledger.platform import logs


class Stoppable(Protocol):
    def stop(self) -> None: ...

    def run(self) -> Awaitable[Any]: ...


class WebService:
    """An aiohttp application served on 127.0.0.1:`port` until stop(), logging "<name> running"
    (the marker ops/stack waits for). No access log: aiohttp's would write query strings, which
    may hold an ID number."""

    def __init__(self, name: str, make_app: Callable[[], web.Application], port: int, log: Any,
                 routes: list[str], backlog: int = 128, **announce: Any) -> None:
        self.name, self.make_app, self.port, self.log, self.routes = name, make_app, port, log, routes
        self.backlog = backlog  # pending connections the kernel holds (aiohttp's default: 128)
        self.announce = announce  # more fields of the "running" log line
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port, backlog=self.backlog).start()
            self.log.info(f"{self.name} running", url=f"http://127.0.0.1:{self.port}/", routes=self.routes,
                          **self.announce)
            await self._stop.wait()
            self.log.info(f"{self.name} stopping")
        finally:
            await runner.cleanup()


def parser(prog: str, doc: str | None, metrics_port: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metrics-port", type=int, default=metrics_port,
                   help=f"Prometheus /metrics on 127.0.0.1 (default {metrics_port}; 0: off)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING or ERROR")
    return p


def run(args: argparse.Namespace, build: Callable[[argparse.Namespace], Stoppable],
        signals: dict[signal.Signals, str] | None = None) -> None:
    """Configure logs and metrics, build the service and run it until SIGTERM or SIGINT.
    `signals` maps further signals to methods of the service (e.g. SIGUSR1 -> "replay_from_start")."""
    logs.configure(args.log_level)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr="127.0.0.1")

    async def main() -> None:
        service = build(args)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop)
        for sig, method in (signals or {}).items():
            loop.add_signal_handler(sig, getattr(service, method))
        await service.run()

    # every service runs on uvloop (libuv): cheaper socket I/O and timers than asyncio's selector loop
    uvloop.run(main())


def run_web(prog: str, doc: str | None, name: str, metrics_port: int, port: int, port_env: str,
            make_app: Callable[[], web.Application], log: Any, routes: list[str]) -> None:
    """The main() of an HTTP service: --help, --port (default `port`, env `port_env`), then run."""
    p = parser(prog, doc, metrics_port)
    p.add_argument("--port", type=int, default=port, help=f"HTTP port on 127.0.0.1 (default {port}, {port_env})")
    run(p.parse_args(), lambda a: WebService(name, make_app, a.port, log, routes))


_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Let glibc's malloc keep at most `arenas` arenas (default: 8 per core), so that memory freed by
    one thread can serve another instead of staying resident in a per-thread arena. Call before the
    process starts its threads; a no-op where the C library is not glibc."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_ARENA_MAX, arenas)


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's malloc_trim), e.g. after a burst of
    short-lived allocations such as a state restore."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)

"""The command line: python -m ledger.intake.gateway [--port 8081] [--metrics-port 9104] (--help:
the gateway's routes, from app.py). ops/stack starts it by this module name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from ledger.intake.gateway import app
from ledger.intake.gateway.kafka import Ledger
from ledger.intake.gateway.tokens import Tokens
from ledger.platform import config, logs, process
from ledger.rules import loader

log = logs.get("gateway")


class Gateway:
    """The process: serves the app on 127.0.0.1:`port` until stop()."""

    def __init__(self, make_app: Callable[[], web.Application], port: int) -> None:
        self.make_app, self.port = make_app, port
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        # access_log=None: aiohttp's access log would write query strings and unmasked paths
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", self.port, backlog=1024)
            await site.start()
            log.info("gateway running", url=f"http://127.0.0.1:{self.port}", docs=f"http://127.0.0.1:{self.port}/docs",
                     routes=[f"{m} {p}" for m, p, _ in app.ROUTES])
            await self._stop.wait()
            log.info("gateway stopping")
        finally:
            await runner.cleanup()


def main() -> None:
    settings = config.load()
    p = process.parser("python -m ledger.intake.gateway", app.__doc__, settings.metrics_port("gateway"))
    p.add_argument("--port", type=int, default=settings.gateway_port,
                   help=f"HTTP port on 127.0.0.1 (default {settings.gateway_port}, LEDGER_GATEWAY_PORT)")

    def build() -> web.Application:  # once the logs are configured: the tokens log their loading
        return app.make_app(settings, Ledger(settings), Tokens(settings.keys_dir), loader.load_departments())

    process.run(p.parse_args(), lambda a: Gateway(build, a.port))


if __name__ == "__main__":
    main()

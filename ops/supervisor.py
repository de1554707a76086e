"""The stack's supervisor: starts again a ledger service that exited on its own.

Started by `ops/stack up` as its own process (`python -m ops.supervisor`, pid file
<stack dir>/supervisor.pid, log logs/supervisor.log, /metrics at the metrics base port + 15) and
stopped first by `ops/stack down`. Once a second it looks at every service of the stack: a service
whose pid file is there but whose process is gone exited by itself (a crash, kill -9, the OOM killer)
and is started again, after a pause that doubles from 1 s to at most 60 s for a service that keeps
exiting, and is back to 1 s once the service has run for 60 s. A service stopped on purpose (by
`ops/stack down` or its `Service.stop()`, which remove its pid file before stopping it) is left alone.

It counts the restarts per service (`ledger_service_restarts_total{kind}`, which the operator
dashboard shows, and <stack dir>/restarts.json, which `ops/stack status` shows).

Under systemd the units of ops/systemd/ do this instead (the same policy: Restart=on-failure,
RestartSec=1, RestartMaxDelaySec=60, StartLimitIntervalSec/StartLimitBurst).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import Counter

from ledger.platform import config, logs, process
from ops.procs import StackError, restarts_file

if TYPE_CHECKING:
    from ops.stack import Service

log = logs.get("supervisor")

FIRST_DELAY = 1.0  # seconds before the first restart of a service that exited
MOST_DELAY = 60.0  # the pause doubles up to this
HEALTHY_AFTER = 60.0  # a service that ran this long starts again from FIRST_DELAY
CHECK_EVERY = 1.0

RESTARTS = Counter("ledger_service_restarts_total", "Services started again by the supervisor after they exited",
                   ["kind"])  # not "service": Prometheus gives every target of the stack that label


def next_delay(previous: float | None, ran_for: float) -> float:
    """The pause before restarting a service that exited after running `ran_for` seconds, when the
    pause before its last restart was `previous` (None: never restarted)."""
    if previous is None or ran_for >= HEALTHY_AFTER:
        return FIRST_DELAY
    return min(previous * 2, MOST_DELAY)


@dataclass
class _Watched:
    started_at: float  # monotonic, when it was last seen starting
    delay: float | None = None  # the pause before its last restart
    restarts: int = 0


@dataclass
class Supervisor:
    settings: config.Settings
    names: tuple[str, ...]
    watched: dict[str, _Watched] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def _save(self) -> None:
        path = restarts_file(self.settings)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({n: w.restarts for n, w in self.watched.items()}))
        tmp.replace(path)

    async def run(self) -> None:
        from ops.stack import Service

        services = {n: Service(self.settings, n) for n in self.names}
        now = time.monotonic()
        self.watched = {n: _Watched(now) for n in self.names}
        self._save()
        log.info("supervisor running", services=list(self.names), first_delay_s=FIRST_DELAY,
                 most_delay_s=MOST_DELAY, healthy_after_s=HEALTHY_AFTER)
        while not self._stop.is_set():
            for name, svc in services.items():
                if self._stop.is_set():
                    break
                if svc.pidfile.exists() and svc.pid() is None:
                    await self._restart(svc, self.watched[name])
            try:
                await asyncio.wait_for(self._stop.wait(), CHECK_EVERY)
            except TimeoutError:
                pass
        log.info("supervisor stopping")

    async def _restart(self, svc: Service, w: _Watched) -> None:
        w.delay = next_delay(w.delay, time.monotonic() - w.started_at)
        log.warning("service exited; starting it again", service=svc.name, in_s=w.delay, restarts=w.restarts)
        try:
            await asyncio.wait_for(self._stop.wait(), w.delay)
            return  # stopping
        except TimeoutError:
            pass
        if not svc.pidfile.exists():  # stopped on purpose in the meantime
            return
        w.started_at = time.monotonic()
        w.restarts += 1
        RESTARTS.labels(svc.name).inc()
        self._save()
        try:
            await asyncio.to_thread(svc.start)
            log.info("service started again", service=svc.name, pid=svc.pid(), restarts=w.restarts)
        except StackError as exc:  # it exited again at once, or did not come up: the next round retries
            log.warning("service did not start again", service=svc.name, error=str(exc)[-500:])
            svc.pidfile.write_text("0")  # still wanted: the next check sees it gone and backs off further


def main() -> None:
    from ops.stack import SERVICES

    s = config.load()
    p = process.parser("python -m ops.supervisor", __doc__, s.metrics_port("supervisor"))
    args = p.parse_args()
    process.run(args, lambda a: Supervisor(s, SERVICES))


if __name__ == "__main__":
    main()

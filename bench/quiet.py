"""A quiet stack for a write-path benchmark: every service of the demo stack but the ones measured
stopped for the measurement (so no other consumer's fetches or transactions load the broker, and no
other process takes CPU), and started again afterwards, as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ledger.platform import config
from ops import stack as ops_stack


@contextlib.contextmanager
def only(s: config.Settings, keep: tuple[str, ...]) -> Iterator[dict[str, ops_stack.Service]]:
    """Stop every running service not in `keep`, start the ones in `keep` that are not running; yields
    the kept services by name; afterwards starts again what it stopped."""
    services = {n: ops_stack.Service(s, n) for n in ops_stack.SERVICES}
    stopped = [n for n, svc in services.items() if n not in keep and svc.pid() is not None]
    for n in stopped:
        services[n].stop()
    for n in keep:
        if services[n].pid() is None:
            services[n].start()
    if stopped:
        print(f"stopped for the measurement: {', '.join(stopped)}", flush=True)
    try:
        yield {n: services[n] for n in keep}
    finally:
        for n in stopped:
            services[n].start()

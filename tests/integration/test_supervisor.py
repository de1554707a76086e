"""The stack's supervisor (ops/supervisor.py) against real processes: a service killed with SIGKILL
behind the stack's back is started again, counted once in `ops/stack status` and on the supervisor's
/metrics (which the operator dashboard shows); a service stopped on purpose is left stopped."""

from __future__ import annotations

import asyncio
import os
import signal

from ops import stack as ops_stack
from tests import helpers


async def test_a_killed_service_is_started_again_and_counted_and_a_stopped_one_is_left_alone(
        settings, services, capsys) -> None:  # type: ignore[no-untyped-def]
    sup = ops_stack.Service(settings, ops_stack.SUPERVISOR)
    notary, webhook = services["notary"], services["webhook"]
    sup.start()  # the tests' fixture runs none: the fault tests restart what they kill themselves
    try:
        old = notary.pid()
        assert old
        os.kill(old, signal.SIGKILL)  # not through the stack: its pid file stays

        async def restarted() -> int | None:
            pid = notary.pid()
            return pid if pid not in (None, old) else None

        new = await helpers.wait_until(restarted, timeout=90, interval=0.2, what="the notary started again")
        assert ops_stack.status(settings) in (0, 3)
        lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
        assert f"running pid {new}" in lines["notary"] and lines["notary"].endswith("restarts 1")
        assert lines["webhook"].endswith("restarts 0")
        assert helpers.metric(settings, "supervisor", "ledger_service_restarts_total", 'kind="notary"') == 1

        # stopped on purpose: not started again
        webhook.stop()
        await asyncio.sleep(4)  # the supervisor looks once a second and would wait 1 s before a restart
        assert webhook.pid() is None
        assert helpers.metric(settings, "supervisor", "ledger_service_restarts_total", 'kind="webhook"') == 0
    finally:
        sup.stop()
        if webhook.pid() is None:
            webhook.start()
    assert notary.pid() == new  # the supervisor's stop leaves the services running

"""Given alerts flowing to departments' webhook endpoints, when the webhook deliverer is killed with
SIGKILL between a POST and the commit of its batch (the endpoint has the request, the deliverer's
offsets never moved), twice, and started again, then every alert is delivered at least once, and every
copy of an alert carries the same idempotency key (X-Credit-Alert-Id) and the same body, so a receiver
that keeps the ids it has processed applies each alert once (issue 18, item 4)."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

from bench import faults
from ops import workload
from ops.procs import StackError
from schemas import registry
from tests import helpers
from tests.integration.test_projector_faults import _equals_fresh_rebuild

KILL_AT = (40, 160)  # kill the deliverer when the receiver holds this many distinct alerts


async def test_the_deliverer_killed_between_post_and_commit_delivers_again_with_the_same_key(
        settings, services, tmp_path: Path) -> None:
    rng = helpers.rng("webhook-kill")
    subjects = workload.subjects(rng, 60, persons_share=0.2)
    pairs = [workload.debtor_listed(s, f"（2026）豫10执H{i}{rng.randrange(10**6)}号", date(2026, 10, 1), ground=1)
             for i, s in enumerate(subjects)]
    event_ids = {r["envelope"]["event_id"] for _, r in pairs}
    group = f"credit-webhook-kill-{rng.randrange(10**9)}"
    await faults.group_at_end(settings, group, registry.ALERTS)
    killed: list[str] = []
    async with faults.Receiver(settings) as receiver:
        deliverer = faults.extra(settings, "webhook", "kill", "--instance", "0", "--group", group,
                                 "--config", str(receiver.endpoints(tmp_path / "webhooks.json")))

        def before_answer(alert_id: str) -> None:
            # the deliverer has POSTed this alert and waits for the answer: its batch is not committed
            if len(killed) < len(KILL_AT) and len(receiver.deliveries) >= KILL_AT[len(killed)] and deliverer.pid():
                killed.append(alert_id)
                deliverer.kill()

        receiver.before_answer = before_answer
        await asyncio.to_thread(deliverer.start)
        try:
            sending = asyncio.create_task(faults.stream(settings, pairs, 10, 0.5))
            alert_ids: set[str] = set()

            async def all_delivered() -> bool:
                if not deliverer.pid():  # killed: started again, as its supervisor would
                    kills = len(killed)
                    try:
                        await asyncio.to_thread(deliverer.start)
                    except StackError:
                        # a deliverer started again POSTs what its last batch held at once, so the next kill
                        # can come before its start has seen it running: started again at the next turn
                        if len(killed) == kills:
                            raise  # it exited by itself
                if not sending.done():
                    return False
                alert_ids.update(a["alert_id"] for a in await faults.decoded(settings, registry.ALERTS, "Alert")
                                 if a["trigger_event_id"] in event_ids)
                return bool(alert_ids) and receiver.received(alert_ids)

            await faults.until(all_delivered, 180, "every alert delivered", 0.5)
            await sending
        finally:
            deliverer.stop()
    assert len(killed) == len(KILL_AT), f"the deliverer was killed {len(killed)} times, not {len(KILL_AT)}"
    times = receiver.check(alert_ids)  # at least once, each copy with the same key and body
    for alert_id in killed:  # the POST in flight at the kill came again after the restart
        assert len(receiver.deliveries[alert_id]) >= 2, alert_id
    assert max(times) >= 2 and sum(times.values()) == len(alert_ids)
    dead = [d for d in await faults.decoded(settings, registry.ALERTS_DEADLETTER, "AlertDeadLetter")
            if d["alert_id"] in alert_ids]
    assert dead == []
    await _equals_fresh_rebuild(settings)

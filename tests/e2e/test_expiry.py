"""End to end: a court submits, over the HTTP gateway, a dishonest-debtor listing decided years ago
(its two-year period is over) and one decided recently; with the stack's scheduler running on the
real clock and nobody doing anything more, the old listing expires by itself: the query API shows it
expired on its legal end, the ledger holds one ListingExpired from ledger-scheduler, and the recent
listing stays active."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import aiohttp

from consumers.scheduler import core as scheduler
from ops import stack as ops_stack
from ops import workload
from tests import helpers


def _json(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(record, ensure_ascii=False, default=lambda v: v.isoformat()))


async def test_a_court_listing_expires_by_itself_end_to_end(settings, services) -> None:
    rng = helpers.rng("e2e-expiry")
    old_firm, new_firm = workload.subjects(rng, 2, persons_share=0.0)
    today = helpers.today()
    old = workload.debtor_listed(old_firm, "（2023）豫10执e2e1号", date(2023, 2, 6), ground=4)[1]
    recent = workload.debtor_listed(new_firm, "（2026）豫10执e2e2号", today - timedelta(days=30), ground=4)[1]
    token = (settings.keys_dir / "xc-court.token").read_text().strip()
    api = f"http://127.0.0.1:{settings.api_port}"
    svc = ops_stack.Service(settings, "scheduler")
    svc.stop()
    svc.start(extra_env={"LEDGER_SCHEDULER_INTERVAL": "1"})  # the real clock: no LEDGER_SCHEDULER_TODAY
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            for rec in (old, recent):
                async with http.post(f"http://127.0.0.1:{settings.gateway_port}/v1/events", json=_json(rec),
                                     headers={"Authorization": f"Bearer {token}"}) as r:
                    body = await r.json()
                    assert (r.status, body["status"]) == (200, "ACCEPTED"), body

            async def old_entry() -> dict[str, Any] | None:
                async with http.get(f"{api}/lists", params={"entity": "uscc:" + old_firm.id,
                                                            "status": "expired"}) as r:
                    items = (await r.json())["items"]
                    return items[0] if items else None

            entry = await helpers.wait_until(old_entry, timeout=60, what="the old listing to expire by itself")
            assert entry["ended_on"] == entry["legal_end"] == "2025-02-07"
            assert entry["event_id"] == old["envelope"]["event_id"]
            async with http.get(f"{api}/entities/uscc:{new_firm.id}") as r:
                profile = await r.json()
            assert [(x["status"], x["ended_on"]) for x in profile["lists"]] == [("active", None)]
            assert profile["black_lists"] == ["dishonest_debtor"]
            async with http.get(f"{api}/entities/uscc:{old_firm.id}") as r:
                assert (await r.json())["black_lists"] == []
    finally:
        svc.stop()
    entries = (await helpers.ledger_entries(settings, {"uscc:" + old_firm.id}))["uscc:" + old_firm.id]
    assert [(e["event_type"], e["department"]) for e in entries] == [
        ("DishonestDebtorListed", "xc-court"), ("ListingExpired", scheduler.DEPARTMENT)]
    assert entries[1]["event_id"] == scheduler.expiry_event_id(old["envelope"]["event_id"], "dishonest_debtor")

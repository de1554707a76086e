"""The demo's part for the subscriber feeds (called from ops/demo.py): the list changes the demo's
events made, the alerts they raised by department and action, and the example sector subscriber's
local blacklist kept from credit.lists.current, and the catalogue-change command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from examples.sector_subscriber import SectorSubscriber
from ledger.platform import config
from ledger.platform.kafka_access import access
from ledger.platform.kafka_util import KafkaClients
from ledger.platform.transactional import read_partitions
from ops import demo_registry
from schemas import registry

# the sector system the demo subscribes as: its principal may read the list feeds and the alerts
SECTOR = "sector-banking"


async def _decoded(s: config.Settings, topic: registry.Topic, schema: str) -> list[dict[str, Any]]:
    per = await read_partitions(KafkaClients(access(s, SECTOR)), topic, list(range(topic.partitions)))
    return [registry.decode(m.value, schema)[1] for msgs in per.values() for m in msgs]


async def show(s: config.Settings, outcomes: list[dict[str, Any]], say: Any, timeout: float = 60) -> None:
    ids = {o["event_id"] for o in outcomes if o["status"] == "ACCEPTED"}
    say("\n== Subscriber feeds: list changes (credit.lists.changes), joint-punishment alerts (credit.alerts)")
    deadline = time.monotonic() + timeout
    while True:  # the list keeper follows the ledger; wait until it has these events
        changes = [c for c in await _decoded(s, registry.LISTS_CHANGES, "ListChange") if c["event_id"] in ids]
        alerts = [a for a in await _decoded(s, registry.ALERTS, "Alert") if a["trigger_event_id"] in ids]
        alerted = {a["trigger_event_id"] for a in alerts}
        if ({c["event_id"] for c in changes} <= alerted and changes) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    kinds = Counter(f"{c['list_kind']}:{c['status']}" for c in changes)
    say(f"   {len(changes)} list changes: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    say(f"   {len(alerts)} alerts (one per change, measure and implementing department), by department:")
    by_dept: dict[str, Counter[str]] = {}
    for a in alerts:
        by_dept.setdefault(a["department"], Counter())[a["action"]] += 1
    for dept, actions in sorted(by_dept.items()):
        say(f"     {dept:<20} " + ", ".join(f"{k} {n}" for k, n in sorted(actions.items())))
    if alerts:
        a = next((x for x in alerts if x["action"] == "maintain"), alerts[0])
        say(f"   e.g. {a['department']} {a['action']} {a['measure_id']} for {a['public_id']} {a['name']} "
            f"({a['list_kind']} {a['ref']}; catalogue v{a['catalogue_version']}); legal basis: "
            f"{a['legal_basis'][:60]}...")
    db = s.stack_dir / "demo-sector-subscriber.sqlite"
    sub = SectorSubscriber(access(s, SECTOR), db)
    try:
        n = await sub.sync()
        rows = sub.blacklist()
        say(f"\n== The example sector subscriber (examples/sector_subscriber.py): {n} records read from "
            f"credit.lists.current into {db.name}; {len(rows)} active black listings, e.g.:")
        for _entity, public, name, kind, refs in rows[:6]:
            say(f"   {public:<20} {name:<22} {kind:<20} {refs}")
        say(f"   (python -m examples.sector_subscriber --db {db} --show)")
    finally:
        sub.close()
    await demo_registry.show(s, SECTOR, sorted({c["entity_id"] for c in changes}), say)
    await recatalogue(s, say)


async def recatalogue(s: config.Settings, say: Any) -> None:
    """The catalogue-change command: the listings in force brought to the newest catalogue (nothing to
    write when every listing was judged under it, as here; tests/integration/test_recatalogue.py shows
    a change)."""
    say("\n== A new punishment catalogue for the listings in force (python -m consumers.list_keeper.recatalogue): "
        "replays the list state from the ledger, writes only what the newest version adds or lifts, once")
    run = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "consumers.list_keeper.recatalogue"],
                                  env={**os.environ, "PYTHONPATH": str(config.ROOT)}, capture_output=True,
                                  text=True, timeout=900)
    for text in run.stderr.splitlines():
        if not text.startswith("{"):  # the progress and the summary (the JSON log lines go to the log)
            say(f"   {text.strip()}")
    if run.returncode != 0:
        raise RuntimeError(f"the catalogue-change command exited with status {run.returncode}")

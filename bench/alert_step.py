"""Benchmark: the CPU cost per event of the list keeper's Python work (no Kafka).

    PYTHONPATH=. .venv/bin/python -m bench.alert_step [--events 5000]

For N court listings (20% natural persons), one process's work per ledger entry: decoding the
submission (Avro), the ListBook step (evolve, the list change, the legal end, the masked subject),
encoding the ListChange and ListStatus records, building the alerts from the catalogue and encoding
them. It tells how many events per second one core can carry, apart from Kafka and the machine's
other load.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, date, datetime

from consumers.list_keeper.core import ListBook
from ledger.domain.alerts import alert_records, alerts_for, listed
from ledger.rules import loader
from ops import workload
from schemas import registry


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.alert_step", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=5000, help="court listings (default 5000)")
    n = p.parse_args().events
    rng = random.Random(1)
    items = []
    for i, s in enumerate(workload.subjects(rng, n)):
        dept, rec = workload.debtor_listed(s, f"（2026）豫10执S{i}号", date(2026, 10, 1))
        entry = {"entity_id": f"uscc:{s.id}", "entity_version": 1, "event_id": rec["envelope"]["event_id"],
                 "event_type": "DishonestDebtorListed", "department": dept,
                 "category": "individual" if s.id_type == "RIC" else "enterprise", "sequenced_at": datetime.now(UTC)}
        items.append((entry, registry.encode("DishonestDebtorListed", rec)))
    rules = loader.load()
    book, catalogue = ListBook(rules), rules.catalogue
    t = [time.perf_counter()]
    decoded = [(e, registry.decode(raw)[1]) for e, raw in items]
    t.append(time.perf_counter())
    outs = [o for i, (e, r) in enumerate(decoded) for o in book.apply(0, i, e, r)]
    t.append(time.perf_counter())
    for o in outs:
        registry.encode("ListChange", o.change)
        registry.encode("ListStatus", o.status)
    t.append(time.perf_counter())
    alerts = [alert_records(alerts_for(catalogue, o.change["change_id"], o.change["list_kind"], o.change["category"],
                                       listed(o.change), o.change["active_list_kinds"]), o.change, datetime.now(UTC))
              for o in outs]
    t.append(time.perf_counter())
    for batch in alerts:
        for a in batch:
            registry.encode("Alert", a)
    t.append(time.perf_counter())
    us = [1e6 * (b - a) / n for a, b in zip(t, t[1:], strict=False)]
    per = sum(len(a) for a in alerts) / n
    keeper = sum(us)
    print(f"{n} court listings, per event: decode {us[0]:.0f} us, ListBook step {us[1]:.0f} us, "
          f"ListChange+ListStatus encode {us[2]:.0f} us, alerts built {us[3]:.0f} us, "
          f"{per:.1f} alerts encoded {us[4]:.0f} us")
    print(f"list keeper ~{keeper:.0f} us/event (~{1e6 / keeper:,.0f} events/s per core), before Kafka I/O and "
          f"logging")
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()

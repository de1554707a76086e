"""Example sector-system subscriber: a local blacklist kept from the ledger's list feed.

A sector system (procurement, bidding, a bank, an airline's ticketing ...) needs to know at once who
is on a red or black list. This program keeps its own copy in a SQLite file from the compacted topic
credit.lists.current: one record per entity and list, where a delisting is an explicit value
(`listed = false`), never a null tombstone. So it works however long it was offline: it reads on
from where it stopped (positions stored in the same SQLite transaction as the rows), or from the
beginning for a new file, and the latest record of every key is always still there.

Use it from a sector system (it authenticates as the sector system's own Kafka principal, which may
read the list feeds and the alerts and nothing else):

    python -m examples.sector_subscriber --db blacklist.sqlite --follow      # keep the copy current
    python -m examples.sector_subscriber --db blacklist.sqlite --show        # print the black list

    from examples.sector_subscriber import SectorSubscriber
    from ledger.platform.kafka_access import KafkaAccess
    sub = SectorSubscriber(KafkaAccess("127.0.0.1:19092", "sector-banking", password), Path("blacklist.sqlite"))
    await sub.sync()                              # read up to the end of the feed once
    sub.lists_of("uscc:91411002MA...")            # -> ["dishonest_debtor"] (active lists of an entity)

Entities are named by the ledger's entity id (uscc:<code>, or ric:<pseudonym> for a natural person:
the ID number itself never travels; `public_id` holds the masked form). Before acting (refusing a
bid, a ticket ...), ask the ledger which measures apply ("may X do Y"), and report what you did as
a PunishmentFeedbackReported event through the normal submission path.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ledger.platform import config, logs
from ledger.platform.kafka_access import KafkaAccess, access
from schemas import registry

TOPIC = registry.LISTS_CURRENT
log = logs.get("sector-subscriber")

SCHEMA = """
create table if not exists lists (
  entity_id text not null, list_kind text not null, public_id text not null, name text not null,
  category text not null, colour text not null, listed integer not null, entries text not null,
  last_change text not null, last_event_id text not null, ledger_partition integer, ledger_offset integer,
  primary key (entity_id, list_kind));
create table if not exists positions (partition integer primary key, next_offset integer not null);
"""


class SectorSubscriber:
    def __init__(self, kafka: KafkaAccess, db: Path) -> None:
        self.kafka = kafka  # a sector system's principal: it may read credit.lists.* and credit.alerts
        self.db = sqlite3.connect(db)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    async def sync(self, follow: bool = False, stop: asyncio.Event | None = None) -> int:
        """Read the feed from the stored positions up to its end (and on, with `follow`). Returns the
        number of records applied."""
        c = AIOKafkaConsumer(**self.kafka.options(), group_id=None, enable_auto_commit=False,
                             isolation_level="read_committed", auto_offset_reset="earliest")
        await c.start()
        applied = 0
        try:
            tps = [TopicPartition(TOPIC.name, p) for p in range(TOPIC.partitions)]
            c.assign(tps)
            stored = dict(self.db.execute("select partition, next_offset from positions").fetchall())
            for tp in tps:
                if tp.partition in stored:
                    c.seek(tp, stored[tp.partition])
                else:
                    await c.seek_to_beginning(tp)
            end = await c.end_offsets(tps)
            while True:
                batch = await c.getmany(timeout_ms=200)
                with self.db:  # the rows and the positions in one SQLite transaction
                    for tp, msgs in batch.items():
                        for m in msgs:
                            self._apply(registry.decode(m.value, "ListStatus")[1])
                            applied += 1
                        self.db.execute("insert or replace into positions values (?, ?)",
                                        (tp.partition, msgs[-1].offset + 1))
                if stop is not None and stop.is_set():
                    break
                if not follow and all([await c.position(tp) >= end[tp] for tp in tps]):
                    break
        finally:
            await c.stop()
        log.debug("synced", records=applied)
        return applied

    def _apply(self, s: dict[str, Any]) -> None:
        entries = [{**e, "listed_on": str(e["listed_on"]), "legal_end": e["legal_end"] and str(e["legal_end"])}
                   for e in s["entries"]]
        self.db.execute("insert or replace into lists values (?,?,?,?,?,?,?,?,?,?,?,?)", (
            s["entity_id"], s["list_kind"], s["public_id"], s["name"], s["category"], s["colour"], int(s["listed"]),
            json.dumps(entries, ensure_ascii=False), s["last_change"], s["last_event_id"], s["ledger_partition"],
            s["ledger_offset"]))

    # ---------------------------------------------------------------- what a sector system asks
    def lists_of(self, entity_id: str) -> list[str]:
        """The lists an entity is on now (black kinds and red)."""
        rows = self.db.execute("select list_kind from lists where entity_id = ? and listed = 1 order by 1",
                               (entity_id,))
        return [r[0] for r in rows]

    def blacklist(self) -> list[tuple[str, str, str, str, str]]:
        """(entity id, public id, name, list kind, case numbers) of every active black listing."""
        rows = self.db.execute("select entity_id, public_id, name, list_kind, entries from lists "
                               "where listed = 1 and colour = 'black' order by name, list_kind").fetchall()
        return [(e, p, n, k, ", ".join(x["ref"] for x in json.loads(entries))) for e, p, n, k, entries in rows]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m examples.sector_subscriber", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", type=Path, required=True, help="the local SQLite file (created if missing)")
    p.add_argument("--follow", action="store_true", help="keep reading (Ctrl-C to stop) instead of stopping at the end")
    p.add_argument("--show", action="store_true", help="print the black list after reading")
    p.add_argument("--system", default="sector-banking",
                   help="the sector system's Kafka principal (default sector-banking); its password is read from "
                        "LEDGER_KEYS_DIR/kafka/<system>.password")
    p.add_argument("--log-level", default="WARNING", help="DEBUG reports each sync (default WARNING)")
    args = p.parse_args()
    logs.configure(args.log_level)
    sub = SectorSubscriber(access(config.load(), args.system), args.db)
    try:
        n = asyncio.run(sub.sync(follow=args.follow))
        print(f"{n} list records applied; {len(sub.blacklist())} active black listings in {args.db}")
        if args.show:
            for entity, public, name, kind, refs in sub.blacklist():
                print(f"  {public:<20} {name:<24} {kind:<20} {refs}   ({entity})")
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()


if __name__ == "__main__":
    main()

"""Apply a new joint-punishment catalogue to the listings already in force.

    python -m consumers.list_keeper.recatalogue [--to-version N] [--dry-run]

The list keeper applies to each ledger entry the catalogue version the sequencer judged it under
(the entry's rules stamp), so once the rules directory holds a new punishment_catalogue.v<N>.json
(and the sequencer runs with it) new listings get the new measures at once. Listings made earlier
keep what their own version imposed; this command brings them up to version N:

1. Replays the list state from the ledger (credit.events read from offset 0 up to the end as it is at
   the start: the cut), with the list keeper's own step (consumers/list_keeper/core.py), printing
   progress. Each active listing knows the catalogue version it was imposed under.
2. Reads the alert ids already on credit.alerts (the `alert-id` headers only), and which listings
   an earlier run brought to which version (the `catalogue-change` header), so a second run, or a run
   after an interrupted one, writes nothing twice.
3. For every listing still in force under an older version, the alerts of
   ledger/domain/alerts.py `catalogue_change`: impose what version N adds, lift (or maintain, when
   another list of the entity keeps it) what it takes away; deterministic ids. All of them are
   written in one Kafka transaction (transactional id `credit-recatalogue`), so an interrupted run
   leaves nothing half-written.
4. Settles the race with the live keeper: a listing that ended between the cut and the commit may
   have had its lifting alerts before this run's imposing ones, so the ledger after the cut is read
   up to its new end and each such listing gets a lift of what this run imposed.

Exit status 0 when done (also when there was nothing to do), 1 on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import uvloop
from aiokafka import TopicPartition

from consumers.list_keeper.core import ListBook
from consumers.list_keeper.service import alert_out, list_entry
from ledger.domain import alerts
from ledger.domain.punishment import Catalogue
from ledger.domain.rulebook import RuleBook
from ledger.platform import config, logs
from ledger.platform.clock import SYSTEM
from ledger.platform.kafka_access import LIST_KEEPER, access
from ledger.platform.kafka_util import KafkaClients, caught_up, topic_ends
from ledger.rules import loader
from schemas import registry

TRANSACTIONAL_ID = "credit-recatalogue"
TRIGGER_TYPE = "PunishmentCatalogueChanged"
log = logs.get("recatalogue")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Replay:
    """The list state of the ledger up to some offsets, and the change that listed each active entry."""

    rules: RuleBook
    book: ListBook = field(init=False)
    # (entity id, list kind, ref) -> (the ListChange that listed it, the catalogue version it was imposed under)
    active: dict[tuple[str, str, str], tuple[dict[str, Any], int]] = field(default_factory=dict)
    ended: set[tuple[str, str, str]] = field(default_factory=set)  # endings seen (the settling pass)
    entries: int = 0
    undecodable: int = 0  # records no schema reads (skipped, as the list keeper skips them)

    def __post_init__(self) -> None:
        self.book = ListBook(self.rules)

    def apply(self, partition: int, msg: Any) -> None:
        self.entries += 1
        try:
            found = list_entry(msg)
        except registry.SchemaError as exc:
            self.undecodable += 1
            log.error("undecodable record skipped", topic=registry.EVENTS.name, partition=partition,
                      offset=msg.offset, reason=str(exc))
            return
        if found is None:
            return
        entry, rec = found
        for out in self.book.apply(partition, msg.offset, entry, rec):
            if out.inconsistent:
                continue
            c = out.change
            key = (c["entity_id"], c["list_kind"], c["ref"])
            if alerts.listed(c):
                self.active[key] = (c, out.catalogue_version)
            else:
                self.active.pop(key, None)
                self.ended.add(key)
        self.book.commit()


async def read_ledger(kafka: KafkaClients, replay: Replay, start: dict[int, int], end: dict[int, int],
                      what: str) -> None:
    """Feed the ledger's records from `start` to `end` (per partition) to the replay, with progress."""
    total = sum(max(0, end[p] - start.get(p, 0)) for p in end)
    if not total:
        return  # (and a consumer stopped right after its start is cancelled inside aiokafka)
    c = kafka.consumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                       max_partition_fetch_bytes=4 << 20)
    await c.start()
    try:
        tps = {p: TopicPartition(registry.EVENTS.name, p) for p in end}
        c.assign(list(tps.values()))
        for p, tp in tps.items():
            c.seek(tp, start.get(p, 0))
        goal = {tps[p]: o for p, o in end.items()}
        started = last = time.monotonic()
        done = 0
        while not await caught_up(c, goal):
            for tp, msgs in (await c.getmany(timeout_ms=500, max_records=5000)).items():
                for m in msgs:
                    if m.offset < end[tp.partition]:
                        replay.apply(tp.partition, m)
                        done += 1
                if await c.position(tp) >= end[tp.partition]:
                    c.pause(tp)
            if time.monotonic() - last >= 2:
                last = time.monotonic()
                rate = done / max(1e-9, last - started)
                left = (total - done) / rate if rate else 0
                _say(f"  {what}: {done:,} of about {total:,} ledger records ({100 * done / max(1, total):.0f}%), "
                     f"{rate:,.0f}/s, about {left:.0f} s left")
                log.info("replay progress", stage=what, records=done, total=total)
    finally:
        await c.stop()
    _say(f"  {what}: {done:,} ledger records read in {time.monotonic() - started:.1f} s")


async def end_offsets(kafka: KafkaClients) -> dict[int, int]:
    return await topic_ends(kafka, registry.EVENTS.name, registry.EVENTS.partitions)


async def written_before(kafka: KafkaClients) -> tuple[set[str], dict[tuple[str, str, str], int]]:
    """The alert ids on credit.alerts, and the version each listing was brought to by earlier runs
    (headers only: nothing is decoded)."""
    ids: set[str] = set()
    brought: dict[tuple[str, str, str], int] = {}
    c = kafka.consumer(group_id=None, enable_auto_commit=False, isolation_level="read_committed",
                       max_partition_fetch_bytes=4 << 20)
    await c.start()
    try:
        tps = [TopicPartition(registry.ALERTS.name, p) for p in range(registry.ALERTS.partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        goal = await c.end_offsets(tps)
        while not await caught_up(c, goal):
            for msgs in (await c.getmany(timeout_ms=500, max_records=20000)).values():
                for m in msgs:
                    h = dict(m.headers or ())
                    if "alert-id" in h:
                        ids.add(h["alert-id"].decode())
                    if "catalogue-change" in h:
                        entity, kind, ref, version = h["catalogue-change"].decode().rsplit("|", 3)
                        key = (entity, kind, ref)
                        brought[key] = max(brought.get(key, 0), int(version))
    finally:
        await c.stop()
    return ids, brought


def plan(rules: RuleBook, target: Catalogue, replay: Replay, brought: dict[tuple[str, str, str], int],
         now: Any) -> list[tuple[tuple[str, str, str], dict[str, Any]]]:
    """The alerts that bring every listing in force to `target`: (listing, Alert record) pairs."""
    out = []
    for key, (change, imposed) in sorted(replay.active.items()):
        version = max(imposed, brought.get(key, 0))
        if version == target.version:
            continue
        decisions = alerts.catalogue_change(rules.at("punishment_catalogue", version), target, change["change_id"],
                                            change["list_kind"], change["category"], replay.book.listed(key[0]))
        trigger = (f"catalogue:{version}->{target.version}", TRIGGER_TYPE)
        out += [(key, a) for a in alerts.alert_records(decisions, change, now, trigger)]
    return out


async def write(kafka: KafkaClients, found: list[tuple[tuple[str, str, str], dict[str, Any]]],
                target: int) -> None:
    """Every alert in one transaction, each with its `catalogue-change` header."""
    producer = kafka.producer(transactional_id=TRANSACTIONAL_ID, linger_ms=5, max_batch_size=262144)
    await producer.start()
    try:
        async with producer.transaction():
            futures = []
            for (entity, kind, ref), a in found:
                o = alert_out(a)
                headers = [*o.headers, ("catalogue-change", f"{entity}|{kind}|{ref}|{target}".encode())]
                futures.append(await producer.send(o.topic.name, key=o.key, value=o.value, headers=headers))
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def run(s: config.Settings, rules: RuleBook, version: int | None, dry_run: bool) -> int:
    target = rules.at("punishment_catalogue", version) if version is not None else rules.catalogue
    kafka = KafkaClients(access(s, LIST_KEEPER))  # the list keeper's own principal: its topics, its rights
    cut = await end_offsets(kafka)
    _say(f"replaying the list state from the ledger (up to {sum(cut.values()):,} records) "
         f"to apply catalogue version {target.version}")
    replay = Replay(rules)
    await read_ledger(kafka, replay, {}, cut, "replay")
    ids, brought = await written_before(kafka)
    found = [(k, a) for k, a in plan(rules, target, replay, brought, SYSTEM.now()) if a["alert_id"] not in ids]
    listings = len({k for k, _ in found})
    by_action: dict[str, int] = {}
    for _, a in found:
        by_action[a["action"]] = by_action.get(a["action"], 0) + 1
    if replay.undecodable:
        _say(f"{replay.undecodable} ledger records no schema reads were skipped (see the log)")
    _say(f"{len(replay.active):,} listings in force; {listings:,} need version {target.version}: "
         f"{len(found):,} alerts ({', '.join(f'{k} {n}' for k, n in sorted(by_action.items())) or 'none'})")
    log.info("catalogue change planned", version=target.version, listings=listings, alerts=len(found),
             **by_action)
    if dry_run or not found:
        _say("dry run: nothing written" if dry_run else "nothing to write: every listing in force is up to date")
        return 0
    await write(kafka, found, target.version)
    _say(f"written: {len(found):,} alerts in one transaction")
    # settle: a listing that ended after the cut may have had its lifts before these imposes
    replay.ended.clear()
    await read_ledger(kafka, replay, cut, await end_offsets(kafka), "settling")
    imposed = {}
    for key, a in found:
        if key in replay.ended and a["action"] == alerts.IMPOSE:
            imposed.setdefault(key, []).append(a)
    settle = [(key, {**a, "alert_id": alerts.alert_id(a["alert_id"], "settled", a["department"]),
                     "action": alerts.LIFT, "change_status": "ended", "alerted_at": SYSTEM.now()})
              for key, found_ in imposed.items() for a in found_]
    if settle:
        await write(kafka, settle, target.version)
    _say(f"settled: {len(settle)} lifts for listings that ended during the run")
    log.info("catalogue change written", version=target.version, alerts=len(found), settled=len(settle))
    return 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m consumers.list_keeper.recatalogue", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--to-version", type=int, default=None,
                   help="the catalogue version to bring the listings in force to (default: the newest loaded)")
    p.add_argument("--dry-run", action="store_true", help="say what would be written, write nothing")
    args = p.parse_args(argv)
    s = config.load()
    logs.configure()
    rules = loader.load()
    try:
        code = uvloop.run(run(s, rules, args.to_version, args.dry_run))
    except KeyError as exc:
        sys.exit(f"error: {exc.args[0]}")
    sys.exit(code)


if __name__ == "__main__":
    main()

"""What the fault tests (tests/integration/test_zombies.py, test_consumer_groups.py, test_webhook_kill.py,
test_gateway_kill.py, test_disk_full.py, test_clock_skew.py) and the rebalance storm (bench/storm.py)
share: more processes of a kind beside the stack's own, paused, resumed and killed by their pid, the
workload streamed as a department would send it, and the oracle of issue 18:

    every acknowledged submission is in the ledger exactly once, each entity's versions run 1..n
    without a gap and its hash chain links; every list change is on the feed once and every alert the
    catalogue calls for once; and the views equal a fresh rebuild from offset 0.

Ports: the extra processes serve no /metrics (a fixed port each would be one more to collide with; the
tests read the stack's own processes' metrics), a test's webhook receiver is at the metrics base + 60,
the full-disk tests' second stack at base + 70 and 71 (its broker), + 72 (its PostgreSQL) and
+ 80 .. 95 (its services' /metrics): inside each stack's own block of ports, apart from the services'
offsets (ledger/platform/config.py SERVICE_PORT_OFFSETS, 1..15).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from consumers.webhook.service import verify
from ledger.client import submit_as_departments
from ledger.domain.alerts import alerts_for
from ledger.platform import config
from ledger.platform.kafka_access import ADMIN, access
from ledger.platform.kafka_util import KafkaClients
from ledger.platform.transactional import read_partitions
from ledger.records import chain
from ledger.rules import loader
from ops.procs import alive
from ops.stack import Service
from schemas import registry

RECEIVER_PORT = 60
SIDE_KAFKA_PORT = 70  # and 71, its controller
SIDE_PG_PORT = 72
SIDE_METRICS_BASE = 80  # the second stack's metrics base: its services at base + 80 + their offsets


def port(s: config.Settings, offset: int) -> int:
    return s.metrics_base_port + offset


# ---------------------------------------------------------------- processes
def extra(s: config.Settings, kind: str, label: str, *args: str) -> Service:
    """One more process of `kind` beside the stack's own (`python -m ops.run <kind> <args>`), its files
    named `<kind>-<label>`, without /metrics. Not started yet."""
    return Service(s, kind, label=label, args=args, metrics_port=0)


def instance(s: config.Settings, kind: str, n: int) -> Service:
    """Instance `n` of a consumer group's processor (`--instance n`): a member of the same group with
    its own transactional id."""
    return extra(s, kind, f"instance-{n}", "--instance", str(n))


def pause(svc: Service) -> int:
    """SIGSTOP the process (it keeps its sockets, its locks and its place in memory); returns its pid."""
    pid = svc.pid()
    assert pid, f"the {svc.name} is not running"
    os.kill(pid, signal.SIGSTOP)
    return pid


def resume(pid: int) -> None:
    os.kill(pid, signal.SIGCONT)


async def exits(pid: int, timeout: float, what: str) -> float:
    """Wait until the process has exited by itself; returns how long it took."""
    started = time.monotonic()
    while alive(pid):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} (pid {pid}) still runs {timeout:.0f} s later")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def log_since(svc: Service, offset: int) -> str:
    """What the process's log got since `offset` (a size taken before)."""
    with open(svc.log, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def log_size(svc: Service) -> int:
    return svc.log.stat().st_size if svc.log.exists() else 0


# ---------------------------------------------------------------- the workload, as a department sends it
async def send(s: config.Settings, pairs: list[tuple[str, dict[str, Any]]], attempts: int = 60,
               timeout: float = 120.0) -> list[dict[str, Any]]:
    """Submit (department, record) pairs and wait for their outcomes; when the broker does not
    acknowledge them (it is away), send the same records again (same event ids), as a department would:
    those already recorded are answered DUPLICATE."""
    for attempt in range(1, attempts + 1):
        try:
            outcomes = await submit_as_departments(s, pairs, timeout=timeout)
        except (KafkaError, TimeoutError) as exc:
            if attempt == attempts:
                raise
            print(f"{len(pairs)} submissions not acknowledged ({type(exc).__name__}); sending them again", flush=True)
            await asyncio.sleep(1)
            continue
        refused = [o for o in outcomes if o["status"] not in ("ACCEPTED", "DUPLICATE")]
        assert not refused, f"refused: {[(o['event_id'], o['status'], o['reasons']) for o in refused[:3]]}"
        return outcomes
    raise AssertionError("unreachable")


async def stream(s: config.Settings, pairs: list[tuple[str, dict[str, Any]]], chunk: int, pause_s: float,
                 acknowledged: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """`send` chunk after chunk with a pause between them (a stream that lasts, so that faults land in
    its middle); every outcome is appended to `acknowledged` as it comes."""
    out = acknowledged if acknowledged is not None else []
    for i in range(0, len(pairs), chunk):
        out.extend(await send(s, pairs[i:i + chunk]))
        await asyncio.sleep(pause_s)
    return out


async def until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Wait until `predicate()` (a coroutine function or a plain one) is true; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# ---------------------------------------------------------------- the oracle
async def committed(s: config.Settings, topic: registry.Topic) -> list[tuple[int, int, bytes | None, bytes]]:
    """Every committed record of a topic (read_committed): (partition, offset, key, value)."""
    found = await read_partitions(KafkaClients(access(s, ADMIN)), topic, list(range(topic.partitions)))
    return [(p, m.offset, m.key, m.value) for p, msgs in found.items() for m in msgs]


async def ledger_holds(s: config.Settings, event_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Every one of `event_ids` is in credit.events exactly once; the versions of every entity they
    touch run 1..n without a gap and its chain links; and credit.outcomes holds exactly one ACCEPTED
    outcome for each, at the entry's position (a resubmission adds DUPLICATE outcomes, nothing else).
    Returns the entries of those entities, per entity in version order."""
    entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    counted: Counter[str] = Counter()
    found = await read_partitions(KafkaClients(access(s, ADMIN)), registry.EVENTS,
                                  list(range(registry.EVENTS.partitions)))
    records = [m for msgs in found.values() for m in msgs]
    # the entities of these events, by each entry's event-id header (other tests write records no
    # schema reads into the ledger on purpose; those of other entities are not decoded)
    touched = {m.key for m in records if dict(m.headers or ()).get("event-id", b"").decode() in event_ids}
    for m in records:
        if m.key not in touched:
            continue
        _, e = registry.decode(m.value, "LedgerEntry")
        counted[e["event_id"]] += e["event_id"] in event_ids
        entries[e["entity_id"]].append({**e, "_partition": m.partition, "_offset": m.offset})
    counted = Counter({k: n for k, n in counted.items() if n})
    missing = event_ids - set(counted)
    assert not missing, f"{len(missing)} acknowledged submissions are not in the ledger, e.g. {sorted(missing)[:3]}"
    twice = {k: n for k, n in counted.items() if n > 1}
    assert not twice, f"{len(twice)} events are in the ledger more than once, e.g. {list(twice.items())[:3]}"
    mine = {k.decode(): sorted(entries[k.decode()], key=lambda e: e["entity_version"]) for k in touched}
    for entity, es in mine.items():
        assert [e["entity_version"] for e in es] == list(range(1, len(es) + 1)), f"versions of {entity}"
        assert [e["_offset"] for e in es] == sorted(e["_offset"] for e in es), f"log order of {entity}"
        assert chain.broken_links(es) == [], f"the chain of {entity}"
    at = {e["event_id"]: (e["_partition"], e["_offset"]) for es in mine.values() for e in es}
    accepted: Counter[str] = Counter()
    for _p, _o, key, value in await committed(s, registry.OUTCOMES):
        if key is not None and key.decode() in event_ids:
            _, out = registry.decode(value, "Outcome")
            assert out["status"] in ("ACCEPTED", "DUPLICATE"), (out["event_id"], out["status"], out["reasons"])
            if out["status"] == "ACCEPTED":
                accepted[out["event_id"]] += 1
                assert (out["ledger_partition"], out["ledger_offset"]) == at[out["event_id"]], out["event_id"]
    assert set(accepted) == event_ids and set(accepted.values()) == {1}, \
        f"ACCEPTED outcomes: {len(accepted)} events, counts {Counter(accepted.values())}"
    return mine


async def feeds_hold(s: config.Settings, event_ids: set[str], timeout: float = 120.0) -> tuple[int, int]:
    """Every list change of these ledger events is on credit.lists.changes exactly once, and every
    alert the catalogue calls for (computed from the changes, each under the catalogue version its
    entry was judged under) is on credit.alerts exactly once. Waits up to `timeout` for the list
    keeper to get there; returns (changes, alerts)."""
    catalogue = loader.load_catalogue()  # (the newest: the version new listings are judged under)

    async def complete() -> tuple[list[dict[str, Any]], list[dict[str, Any]], set[str]] | None:
        changes = [c for c in await decoded(s, registry.LISTS_CHANGES, "ListChange") if c["event_id"] in event_ids]
        if {c["event_id"] for c in changes} != event_ids:
            return None
        expected = set()
        for c in changes:
            expected |= {d.alert_id for d in alerts_for(catalogue, c["change_id"], c["list_kind"], c["category"],
                                                        c["status"] == "listed", c["active_list_kinds"])}
        alerts = [a for a in await decoded(s, registry.ALERTS, "Alert") if a["trigger_event_id"] in event_ids]
        return (changes, alerts, expected) if {a["alert_id"] for a in alerts} >= expected else None

    changes, alerts, expected = await until(complete, timeout, f"the feeds of {len(event_ids)} events", 1.0)
    await asyncio.sleep(2)  # anything late would be a duplicate
    changes, alerts, expected = await complete() or (changes, alerts, expected)
    twice = [k for k, n in Counter(c["change_id"] for c in changes).items() if n > 1]
    assert not twice, f"list changes written more than once: {twice[:3]}"
    twice = [k for k, n in Counter(a["alert_id"] for a in alerts).items() if n > 1]
    assert not twice, f"alerts written more than once: {twice[:3]}"
    assert {a["alert_id"] for a in alerts} == expected
    return len(changes), len(alerts)


async def decoded(s: config.Settings, topic: registry.Topic, schema: str) -> list[dict[str, Any]]:
    """Every committed record of a topic, decoded."""
    return [registry.decode(v, schema)[1] for _p, _o, _k, v in await committed(s, topic)]


# ---------------------------------------------------------------- a department's webhook endpoint
class Receiver:
    """Every department's webhook endpoint, on 127.0.0.1 at the metrics base + 60: it checks each
    POST's signature, records the alert id, the body and the time, and answers 204. `before_answer`
    (alert id -> None), when set, runs before the answer (a test kills the deliverer there: the POST
    was made, its batch never committed)."""

    def __init__(self, s: config.Settings, secret: bytes = b"storm-receiver-secret-0123456789") -> None:
        self.s, self.secret = s, secret
        self.port = port(s, RECEIVER_PORT)
        self.deliveries: dict[str, list[tuple[bytes, dict[str, str]]]] = defaultdict(list)
        self.bad_signatures = 0
        self.before_answer: Callable[[str], None] | None = None
        self._runner: Any = None

    def endpoints(self, path: Path) -> Path:
        """A webhooks.json for every department of the matrix, pointing here; returns its path."""
        departments = sorted(loader.load_departments().departments)
        path.write_text(json.dumps({d: {"url": f"http://127.0.0.1:{self.port}/hooks/{d}",
                                        "secret": self.secret.decode()} for d in departments}))
        return path

    async def __aenter__(self) -> Receiver:
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            if not verify(self.secret, dict(request.headers), body):
                self.bad_signatures += 1
                return web.Response(status=401)
            alert_id = request.headers["X-Credit-Alert-Id"]
            self.deliveries[alert_id].append((body, dict(request.headers)))
            if self.before_answer is not None:
                self.before_answer(alert_id)
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hooks/{dept}", handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    def received(self, alert_ids: set[str]) -> bool:
        return alert_ids <= set(self.deliveries)

    def check(self, alert_ids: set[str]) -> dict[str, int]:
        """Each alert delivered at least once, every copy of it with the same idempotency key and the
        same body; returns how many alerts came how many times."""
        missing = alert_ids - set(self.deliveries)
        assert not missing, f"{len(missing)} alerts never delivered, e.g. {sorted(missing)[:3]}"
        assert self.bad_signatures == 0
        for alert_id in alert_ids:
            copies = self.deliveries[alert_id]
            assert {c[1]["X-Credit-Alert-Id"] for c in copies} == {alert_id}
            assert len({c[0] for c in copies}) == 1, f"alert {alert_id} delivered with different bodies"
        return dict(Counter(len(self.deliveries[a]) for a in alert_ids))


async def group_offsets(admin: Any, ends: Any, group: str, topic: registry.Topic) -> dict[int, tuple[int, int]]:
    """Per partition of a topic: (the group's committed offset, or 0; the read_committed end). `admin`:
    an AIOKafkaAdminClient, `ends`: a started consumer with isolation_level=read_committed."""
    committed = await admin.list_consumer_group_offsets(group)
    tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
    end = await ends.end_offsets(tps)
    return {tp.partition: (committed[tp].offset if tp in committed else 0, end[tp]) for tp in tps}


async def group_behind(s: config.Settings, group: str, topic: registry.Topic) -> dict[int, tuple[int, int]]:
    """The partitions of a topic whose committed offset in a group is not at the end: partition ->
    (committed, end). Empty once the group has read, and committed, everything."""
    kafka = KafkaClients(access(s, ADMIN))
    admin = kafka.admin()
    ends = kafka.consumer(group_id=None, isolation_level="read_committed")
    await admin.start()
    await ends.start()
    try:
        offsets = await group_offsets(admin, ends, group, topic)
    finally:
        await ends.stop()
        await admin.close()
    return {p: (c, e) for p, (c, e) in offsets.items() if c != e}


async def group_at_end(s: config.Settings, group: str, topic: registry.Topic) -> None:
    """Commit a group's offsets at the end of a topic: a new processor in it starts with new records."""
    c = KafkaClients(access(s, ADMIN)).consumer(group_id=group, enable_auto_commit=False)
    await c.start()
    try:
        tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        c.assign(tps)
        await c.commit(await c.end_offsets(tps))
    finally:
        await c.stop()


async def views_hold(s: config.Settings, event_ids: set[str], timeout: float = 180.0) -> None:
    """Every one of these ledger events is in the views' ledger copy, once (waits for the projector)."""
    import psycopg

    async def counted() -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(s.pg_dsn, autocommit=True) as conn:
            cur = await conn.execute("select event_id, count(*) from views.ledger_copy where event_id = any(%s) "
                                     "group by event_id", (sorted(event_ids),))
            return {e: n for e, n in await cur.fetchall()}

    found = await until(lambda: _all_of(counted(), event_ids), timeout, f"the views to hold {len(event_ids)} events", 1.0)
    twice = {e: n for e, n in found.items() if n > 1}
    assert not twice, f"events in the views more than once: {list(twice.items())[:3]}"


async def _all_of(counts: Awaitable[dict[str, int]], wanted: set[str]) -> dict[str, int] | None:
    found = await counts
    return found if set(found) >= wanted else None


def slow_restores(processor: Any, seconds: float) -> list[list[int]]:
    """Make an in-process processor's state restores take `seconds` longer (a long changelog, a slow
    disk); returns the list to which each restore appends the partitions it was given."""
    restores: list[list[int]] = []
    real_restore = processor.restore

    async def slow_restore(partitions: list[int]) -> None:
        restores.append(sorted(partitions))
        await asyncio.sleep(seconds)
        await real_restore(partitions)

    processor.restore = slow_restore
    return restores

"""The services' own logic (the loop, what goes into a transaction, the restore on assignment, the
projector's batches and recovery) over in-memory fakes of Kafka and of the projector's sink
(tests/fakes.py): the sequencer, the list keeper and the projector, wired as ops/root.py wires them
but with the fakes."""

from __future__ import annotations

import asyncio
import random
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from consumers.list_keeper.service import ListKeeper
from consumers.projector import rebuild as rebuild_cmd
from consumers.projector.service import Projector, ViewsSwitched, in_shard
from ledger.platform import signing
from ledger.platform.clock import Clock
from ledger.records import submissions
from ledger.rules import loader
from ledger.sequencer.core import Sequencing
from ledger.sequencer.service import SequencerService
from ops import workload
from projections.rows import Folder, Loaded, Ops, state_from_json
from schemas import registry
from tests.fakes import FakeKafka, run_until

RULES = loader.load()
PEPPER = b"unit-test-pepper-0123456789"
KEYS = {d: signing.new_keypair() for d in ("xc-samr", "xc-court")}
TODAY = date(2026, 11, 27)


def _sequencer(kafka: FakeKafka, stores: Path) -> SequencerService:
    clock = Clock.on(TODAY)
    core = Sequencing({d: pub for d, (_, pub) in KEYS.items()}, PEPPER, RULES, today=clock.today, now=clock.now)
    return SequencerService(kafka, core, stores, cache_mib=8)


def _submit(kafka: FakeKafka, dept_recs: list[tuple[str, dict[str, Any]]]) -> None:
    for dept, rec in dept_recs:
        key, value, headers = submissions.make(rec, dept, KEYS[dept][0])
        kafka.broker.append(registry.SUBMISSIONS.name, submissions.partition_of(key), key, value, headers)


def _outcomes(kafka: FakeKafka) -> dict[str, dict[str, Any]]:
    return {r.key.decode(): registry.decode(r.value, "Outcome")[1]
            for r in kafka.broker.records(registry.OUTCOMES.name) if r.key}


def _penalties(n: int, seed: int = 1) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    subjects = workload.subjects(rng, 3, persons_share=0.0)
    return [("xc-samr", workload.penalty(rng, subjects[i % 3], "xc-samr", i, decided=date(2026, 10, 1)))
            for i in range(n)]


async def _sequence(kafka: FakeKafka, tmp: Path, recs: list[tuple[str, dict[str, Any]]]) -> None:
    """Submit records and run a sequencer until every one is answered."""
    _submit(kafka, recs)
    want = len(_outcomes(kafka)) + len(recs)
    await run_until(_sequencer(kafka, tmp), lambda: len(_outcomes(kafka)) >= want)


# ---------------------------------------------------------------- the sequencer
async def test_the_sequencer_writes_entries_outcomes_state_and_offsets_in_one_transaction(tmp_path: Path) -> None:
    kafka = FakeKafka()
    recs = _penalties(6)
    await _sequence(kafka, tmp_path, recs)
    outcomes = _outcomes(kafka)
    assert {o["status"] for o in outcomes.values()} == {"ACCEPTED"}
    # each outcome names the submission's department, for the department supervision
    assert {r.headers for r in kafka.broker.records(registry.OUTCOMES.name)} == {(("department", b"xc-samr"),)}
    events = kafka.broker.records(registry.EVENTS.name)
    assert len(events) == 6
    for e in events:  # each outcome points at its entry, in the partition of the submission
        _, entry = registry.decode(e.value, "LedgerEntry")
        o = outcomes[entry["event_id"]]
        assert (o["ledger_partition"], o["ledger_offset"]) == (e.partition, e.offset)
    state = kafka.broker.records(registry.SEQUENCER_STATE.name)
    assert len(state) == 6 + 3  # one event id per entry, one entity state per entity of the batch
    subs = kafka.broker.records(registry.SUBMISSIONS.name)
    ends = {(r.topic, r.partition): r.offset + 1 for r in subs}
    assert {(tp.topic, tp.partition): o for tp, o in kafka.broker.group_offsets["credit-sequencer"].items()} == ends
    [producer] = [p for p in kafka.producers if p.options.get("transactional_id")]
    assert producer.options["transactional_id"] == "credit-sequencer-0" and producer.aborts == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"credit.sequencer.state-{p}.rocksdb" for p in range(4)]


async def test_an_aborted_batch_leaves_nothing_and_is_judged_again_once(tmp_path: Path) -> None:
    kafka = FakeKafka()
    kafka.fail_commits = 1
    await _sequence(kafka, tmp_path, _penalties(5, seed=2))
    [producer] = [p for p in kafka.producers if p.options.get("transactional_id")]
    assert producer.aborts == 1 and producer.commits >= 1
    assert len(kafka.broker.records(registry.EVENTS.name)) == 5
    assert [o["status"] for o in _outcomes(kafka).values()] == ["ACCEPTED"] * 5
    versions = [registry.decode(e.value, "LedgerEntry")[1]["entity_version"]
                for e in kafka.broker.records(registry.EVENTS.name)]
    assert sorted(versions) == [1, 1, 1, 2, 2]  # the rolled-back batch did not count versions twice


@pytest.mark.parametrize("local", [True, False], ids=["from-its-store", "from-the-changelog"])
async def test_a_new_sequencer_restores_the_state_and_answers_a_resubmission_duplicate(
        tmp_path: Path, local: bool) -> None:
    kafka = FakeKafka()
    recs = _penalties(4, seed=3)
    await _sequence(kafka, tmp_path / "first", recs)
    first = _outcomes(kafka)
    _submit(kafka, recs[:2])
    before = len(kafka.broker.records(registry.OUTCOMES.name))
    again = _sequencer(kafka, tmp_path / ("first" if local else "second"))
    await run_until(again, lambda: len(kafka.broker.records(registry.OUTCOMES.name)) >= before + 2)
    answers = [registry.decode(r.value, "Outcome")[1] for r in kafka.broker.records(registry.OUTCOMES.name)]
    dups = [a for a in answers if a["status"] == "DUPLICATE"]
    assert len(answers) == 6 and len(dups) == 2
    for d in dups:
        assert (d["ledger_partition"], d["ledger_offset"]) == (first[d["event_id"]]["ledger_partition"],
                                                               first[d["event_id"]]["ledger_offset"])
    assert len(kafka.broker.records(registry.EVENTS.name)) == 4


# ---------------------------------------------------------------- the list keeper
def _listing(seed: int) -> tuple[workload.Subject, list[tuple[str, dict[str, Any]]]]:
    company = workload.subjects(random.Random(seed), 1, persons_share=0.0)[0]
    return company, [workload.debtor_listed(company, f"（2026）豫10执{seed}号", date(2026, 10, 2), ground=1)]


async def test_the_list_keeper_writes_a_change_and_the_status_then_restores_them(tmp_path: Path) -> None:
    kafka = FakeKafka()
    company, listed = _listing(11)
    await _sequence(kafka, tmp_path, listed)
    keeper = ListKeeper(kafka, RULES)
    await run_until(keeper, lambda: kafka.broker.records(registry.LISTS_CHANGES.name))
    [change] = [registry.decode(r.value, "ListChange")[1] for r in kafka.broker.records(registry.LISTS_CHANGES.name)]
    assert change["status"] == "listed" and change["list_kind"] == "dishonest_debtor"
    [current] = kafka.broker.records(registry.LISTS_CURRENT.name)
    assert current.key == f"uscc:{company.id}|dishonest_debtor".encode()
    assert registry.decode(current.value, "ListStatus")[1]["listed"] is True
    event = kafka.broker.records(registry.EVENTS.name)[0]
    assert (current.partition, change["ledger_offset"]) == (event.partition, event.offset)
    # the alerts in the same transaction, under the catalogue the sequencer judged the entry under
    alerts = kafka.broker.records(registry.ALERTS.name)
    decoded = [registry.decode(r.value, "Alert")[1] for r in alerts]
    measures = RULES.catalogue.for_list("dishonest_debtor", "enterprise")
    assert len(decoded) == sum(len(m.departments) for m in measures) > 0
    assert {a["catalogue_version"] for a in decoded} == {RULES.catalogue.version}
    assert {a["action"] for a in decoded} == {"impose"} and {a["trigger_event_id"] for a in decoded} == {
        change["event_id"]}
    for r, a in zip(alerts, decoded, strict=True):
        assert r.key == a["department"].encode()
        assert dict(r.headers) == {"alert-id": a["alert_id"].encode(), "event-id": change["event_id"].encode()}

    # a new keeper (restarted) restores the listing from credit.lists.current and ends it
    await _sequence(kafka, tmp_path, [workload.debtor_delisted(company, "（2026）豫10执11号", date(2026, 11, 2))])
    again = ListKeeper(kafka, RULES)
    await run_until(again, lambda: len(kafka.broker.records(registry.LISTS_CHANGES.name)) == 2)
    ended = registry.decode(kafka.broker.records(registry.LISTS_CHANGES.name)[1].value, "ListChange")[1]
    assert ended["status"] == "delisted" and ended["listing_event_id"] == change["event_id"]
    assert [p.aborts for p in kafka.producers if p.options.get("transactional_id")] == [0, 0, 0, 0]


async def test_an_aborted_list_keeper_batch_is_written_once(tmp_path: Path) -> None:
    kafka = FakeKafka()
    _, listed = _listing(12)
    await _sequence(kafka, tmp_path, listed)
    kafka.fail_commits = 1
    keeper = ListKeeper(kafka, RULES)
    await run_until(keeper, lambda: kafka.broker.records(registry.LISTS_CHANGES.name), timeout=15)
    assert len(kafka.broker.records(registry.LISTS_CHANGES.name)) == 1
    assert len(kafka.broker.records(registry.LISTS_CURRENT.name)) == 1
    alerts = [registry.decode(r.value, "Alert")[1]["alert_id"] for r in kafka.broker.records(registry.ALERTS.name)]
    assert alerts and len(alerts) == len(set(alerts)), "each alert once"
    assert kafka.producers[-1].aborts == 1


async def test_an_entry_judged_under_a_catalogue_the_keeper_has_not_loaded_aborts_its_batch(tmp_path: Path) -> None:
    sequenced = FakeKafka()
    _, listed = _listing(13)
    await _sequence(sequenced, tmp_path, listed)
    [event] = sequenced.broker.records(registry.EVENTS.name)
    _, entry = registry.decode(event.value, "LedgerEntry")
    # the same listing, as a sequencer with a newer catalogue (version 99) would have stamped it
    kafka = FakeKafka()
    kafka.broker.append(registry.EVENTS.name, event.partition, event.key, registry.encode("LedgerEntry", {
        **entry, "rules_versions": {**entry["rules_versions"], "punishment_catalogue": 99}}), event.headers)
    keeper = ListKeeper(kafka, RULES)
    with pytest.raises(KeyError, match="punishment_catalogue v99 is not loaded"):
        keeper.transform(event.partition, kafka.broker.records(registry.EVENTS.name)[0])
    keeper.aborted()
    # run: the batch is aborted and read again, nothing is written under a guessed catalogue
    await run_until(keeper, lambda: any(p.aborts for p in kafka.producers if p.options.get("transactional_id")),
                    timeout=15)
    assert not kafka.broker.records(registry.LISTS_CHANGES.name) and not kafka.broker.records(registry.ALERTS.name)


# ---------------------------------------------------------------- the projector
class FakeViews:
    """The projector's sink in memory: entity states and positions, as views.write stores them."""

    def __init__(self, fail_applies: int = 0, fail_with: Exception | None = None) -> None:
        self.states: dict[str, tuple[int, str]] = {}
        self.stored: dict[int, int] = {}
        self.batches: list[Ops] = []
        self.fail_applies = fail_applies
        self.fail_with = fail_with or psycopg.OperationalError("the server closed the connection (fake)")
        self.connects = 0

    async def connect(self) -> FakeViews:
        self.connects += 1
        return self

    async def positions(self, topic: str) -> dict[int, int]:
        return dict(self.stored)

    async def load(self, keys: set[str]) -> Loaded:
        return Loaded({k: (v, state_from_json(s)) for k, (v, s) in self.states.items() if k in keys}, set())

    async def write(self, ops: Ops, topic: str, generation: int) -> None:
        await asyncio.sleep(0)  # the next batch is folded meanwhile
        if self.fail_applies:
            self.fail_applies -= 1
            raise self.fail_with
        self.states.update(ops.states)
        self.stored.update({p: o for p, (o, _) in ops.positions.items()})
        self.batches.append(ops)

    async def close(self) -> None:
        pass


def _projector(kafka: FakeKafka, views: FakeViews) -> Projector:
    return Projector(kafka, Folder(RULES), "dsn-unused", connect=views.connect,
                     max_records=3)


async def test_the_projector_folds_batches_and_goes_on_from_its_stored_positions(tmp_path: Path) -> None:
    kafka = FakeKafka()
    await _sequence(kafka, tmp_path, _penalties(7, seed=4))
    ends = {r.partition: r.offset + 1 for r in kafka.broker.records(registry.EVENTS.name)}
    views = FakeViews()
    applied = await _projector(kafka, views).run(until=ends)
    assert applied == 7 and views.stored == ends
    assert sorted(v for v, _ in views.states.values()) == [2, 2, 3]
    assert all(len(b.ledger_copy) <= 3 for b in views.batches)  # max_records per poll
    # a second run reads nothing again: it starts from the stored positions
    batches = len(views.batches)
    assert await _projector(kafka, views).run(until=ends) == 0 and len(views.batches) == batches


class SlowViews(FakeViews):
    """Writes that take a while; counts the loads made while a batch was being written."""

    def __init__(self) -> None:
        super().__init__()
        self.loads = 0
        self.loads_while_writing = 0

    async def load(self, keys: set[str]) -> Loaded:
        await asyncio.sleep(0)  # a query: the write started just before goes on meanwhile
        self.loads += 1
        return await super().load(keys)

    async def write(self, ops: Ops, topic: str, generation: int) -> None:
        loads = self.loads
        await asyncio.sleep(0.05)
        self.loads_while_writing += self.loads - loads
        await super().write(ops, topic, generation)


async def _beside_one_at_a_time(tmp_path: Path, views: FakeViews) -> tuple[FakeViews, dict[int, int]]:
    """Nine penalties for three entities projected (three records a batch) into `views` and, for
    comparison, into a sink that writes each batch at once; both apply all nine."""
    kafka = FakeKafka()
    await _sequence(kafka, tmp_path, _penalties(9, seed=4))
    ends = {r.partition: r.offset + 1 for r in kafka.broker.records(registry.EVENTS.name)}
    one_at_a_time = FakeViews()
    assert await _projector(kafka, one_at_a_time).run(until=ends) == 9
    assert await _projector(kafka, views).run(until=ends) == 9
    return one_at_a_time, ends


async def test_the_next_batch_is_folded_while_one_is_written_from_the_states_it_leaves(tmp_path: Path) -> None:
    """Batch n+1 is loaded and folded while batch n is being written: its entities' states come from
    batch n (not yet in the sink) and the result is what one batch at a time gives."""
    overlapped = SlowViews()
    one_at_a_time, ends = await _beside_one_at_a_time(tmp_path, overlapped)
    assert overlapped.loads_while_writing >= 1 and len(overlapped.batches) >= 3
    assert overlapped.states == one_at_a_time.states and overlapped.stored == ends
    assert sum(b.skipped for b in overlapped.batches) == 0 and not any(b.quarantine for b in overlapped.batches)


class SwitchedViews(SlowViews):
    """A rebuild's switch-over right after the first batch is committed: the views' generation moves on,
    and a batch loaded before it is refused as PgViews.write refuses it."""

    def __init__(self) -> None:
        super().__init__()
        self.generation = 0

    async def load(self, keys: set[str]) -> Loaded:
        loaded = await super().load(keys)
        loaded.generation = self.generation
        return loaded

    async def write(self, ops: Ops, topic: str, generation: int) -> None:
        if generation != self.generation:
            raise ViewsSwitched(f"the views were switched over after generation {generation}")
        await super().write(ops, topic, generation)
        if len(self.batches) == 1:
            self.generation += 1


async def test_a_switch_over_between_a_batchs_load_and_its_write_makes_the_projector_read_it_again(
        tmp_path: Path) -> None:
    switched = SwitchedViews()
    one_at_a_time, ends = await _beside_one_at_a_time(tmp_path, switched)
    # the batch loaded in the old generation was read again, on a fresh connection, and applied once
    assert switched.connects == 2 and switched.generation == 1
    assert switched.states == one_at_a_time.states and switched.stored == ends
    assert sum(b.applied for b in switched.batches) == 9 and sum(b.skipped for b in switched.batches) == 0


async def test_the_projector_reconnects_after_a_database_error_and_applies_each_event_once(tmp_path: Path) -> None:
    kafka = FakeKafka()
    await _sequence(kafka, tmp_path, _penalties(5, seed=5))
    ends = {r.partition: r.offset + 1 for r in kafka.broker.records(registry.EVENTS.name)}
    views = FakeViews(fail_applies=1)
    applied = await _projector(kafka, views).run(until=ends)
    assert views.connects == 2 and applied == 5 and views.stored == ends
    assert sum(b.skipped for b in views.batches) == 0


async def test_a_full_database_disk_pauses_the_projector_which_says_why_and_resumes(tmp_path: Path,
                                                                                   monkeypatch: Any) -> None:
    from prometheus_client import REGISTRY

    from consumers.projector import service

    monkeypatch.setattr(service, "PAUSE_FIRST", 0.01)
    kafka = FakeKafka()
    await _sequence(kafka, tmp_path, _penalties(5, seed=6))
    ends = {r.partition: r.offset + 1 for r in kafka.broker.records(registry.EVENTS.name)}
    full = psycopg.errors.DiskFull('could not extend file "base/16384/16500": No space left on device')
    views = FakeViews(fail_applies=3, fail_with=full)
    before = REGISTRY.get_sample_value("ledger_projection_pauses_total", {"reason": "disk_full"}) or 0
    seen: list[float | None] = []
    projector = _projector(kafka, views)
    real_paused = projector._paused

    async def paused(*args: Any) -> None:
        await real_paused(*args)
        seen.append(REGISTRY.get_sample_value("ledger_projection_paused", {"reason": "disk_full"}))

    projector._paused = paused  # type: ignore[method-assign]
    applied = await projector.run(until=ends)
    # paused three times (one pause, said once), the same connection kept, then every event once
    assert seen == [1.0, 1.0, 1.0] and views.connects == 1
    assert REGISTRY.get_sample_value("ledger_projection_pauses_total", {"reason": "disk_full"}) == before + 1
    assert REGISTRY.get_sample_value("ledger_projection_paused", {"reason": "disk_full"}) == 0
    assert applied == 5 and views.stored == ends and sum(b.skipped for b in views.batches) == 0


async def test_the_sequencer_judges_by_the_brokers_clock_not_its_machines(tmp_path: Path) -> None:
    """The broker appended the submissions at 23:55 on 3 December in Beijing; the sequencer's machine
    says 00:05 on the 4th. A decision dated the 4th is in the future (refused), one dated the 3rd is not,
    and the entry is dated by the broker's clock."""
    from datetime import datetime, timedelta

    from ledger.domain.local_time import CHINA
    from ledger.platform.clock import BrokerClock

    broker_now = datetime(2026, 12, 3, 23, 55, tzinfo=CHINA)
    kafka = FakeKafka()
    kafka.broker.now_ms = int(broker_now.timestamp() * 1000)
    ledger_time = BrokerClock(fallback=Clock.fixed(broker_now + timedelta(minutes=10)))
    core = Sequencing({d: pub for d, (_, pub) in KEYS.items()}, PEPPER, RULES, today=ledger_time.today,
                      now=ledger_time.now)
    rng = random.Random(7)
    a, b = workload.subjects(rng, 2, persons_share=0.0)
    today = workload.penalty(rng, a, "xc-samr", 1, decided=date(2026, 12, 3))
    tomorrow = workload.penalty(rng, b, "xc-samr", 2, decided=date(2026, 12, 4))
    _submit(kafka, [("xc-samr", today), ("xc-samr", tomorrow)])
    sequencer = SequencerService(kafka, core, tmp_path, cache_mib=8, ledger_time=ledger_time)
    await run_until(sequencer, lambda: len(_outcomes(kafka)) >= 2)
    outcomes = _outcomes(kafka)
    assert outcomes[today["envelope"]["event_id"]]["status"] == "ACCEPTED"
    refused = outcomes[tomorrow["envelope"]["event_id"]]
    assert refused["status"] == "REJECTED" and [r["code"] for r in refused["reasons"]] == ["time.future"]
    [entry] = [registry.decode(r.value, "LedgerEntry")[1] for r in kafka.broker.records(registry.EVENTS.name)]
    assert abs((entry["sequenced_at"] - broker_now).total_seconds()) < 5


async def test_projectors_of_two_entity_shards_fold_disjoint_entities_and_each_reaches_the_end(tmp_path: Path) -> None:
    """A rebuild with more workers than partitions (consumers.projector.rebuild.assign) gives two
    workers the same partitions, each a shard of the entities: together they fold every record once,
    each entity by one of them, and each stores the positions of everything it read."""
    kafka = FakeKafka()
    await _sequence(kafka, tmp_path, _penalties(12, seed=3))
    ends = {r.partition: r.offset + 1 for r in kafka.broker.records(registry.EVENTS.name)}
    keys = {r.key for r in kafka.broker.records(registry.EVENTS.name)}
    assert {in_shard(k, 0, 2) for k in keys} == {True, False}  # the workload's entities fall to both shards
    whole = FakeViews()
    assert await _projector(kafka, whole).run(until=ends) == 12
    shards = [FakeViews(), FakeViews()]
    applied = [await Projector(kafka, Folder(RULES), "dsn-unused", connect=v.connect, max_records=3,
                               shard=(i, 2)).run(until=ends) for i, v in enumerate(shards)]
    assert sum(applied) == 12 and min(applied) > 0
    assert shards[0].states.keys().isdisjoint(shards[1].states.keys())
    assert {**shards[0].states, **shards[1].states} == whole.states
    assert shards[0].stored == shards[1].stored == ends


def test_rebuild_workers_past_the_partitions_share_them_by_entity_shard() -> None:
    assert rebuild_cmd.assign(4, 2) == [([0, 2], (0, 1)), ([1, 3], (0, 1))]
    assert rebuild_cmd.assign(4, 4) == [([0], (0, 1)), ([1], (0, 1)), ([2], (0, 1)), ([3], (0, 1))]
    assert rebuild_cmd.assign(4, 6) == [([0], (0, 2)), ([1], (0, 2)), ([2], (0, 1)), ([3], (0, 1)),
                                        ([0], (1, 2)), ([1], (1, 2))]
    eight = rebuild_cmd.assign(4, 8)
    assert sorted((p[0], s) for p, s in eight) == [(p, (i, 2)) for p in range(4) for i in range(2)]
    assert rebuild_cmd.describe(rebuild_cmd.assign(4, 5)).startswith("0 (entity shard 1 of 2) / 1 / ")
    with pytest.raises(ValueError, match="shard"):
        Projector(FakeKafka(), Folder(RULES), "dsn-unused", shard=(2, 2))  # type: ignore[arg-type]

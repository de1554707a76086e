"""The rebuild's bulk load (consumers/projector/bulk.py) makes the rows the live projector makes: the
same workload folded batch by batch with the states kept in the worker's RocksDB store and each
entity's rows made once at the end gives every entity the entity_state and entities rows the live
projector's per-batch upserts leave (first_seen of its first batch, the rest of its last), and the
same rows of every other table. A real RocksDB in a temporary directory; no network."""

from __future__ import annotations

import orjson
import pytest

from bench import fold
from consumers.projector import bulk
from ledger.rules import loader
from projections import views
from projections.rows import Folder, Loaded, Ops

RULES = loader.load()


@pytest.fixture(scope="module")
def work():
    return fold.batches(fold.fixed_entries(3000, 11, life_share=0.5), 700)


def _live(work) -> tuple[list[Ops], dict[str, tuple[int, str]], dict[str, tuple]]:
    """What the live projector's upserts leave: per entity the last state and row, the first first_seen."""
    out = fold.fold_all(Folder(RULES), work, keep=True)
    states: dict[str, tuple[int, str]] = {}
    rows: dict[str, tuple] = {}
    for ops in out:
        states.update(ops.states)
        for eid, row in ops.entities.items():
            rows[eid] = row if eid not in rows else (*row[:6], rows[eid][6], *row[7:])
    return out, states, rows


def _values(row: tuple) -> tuple:
    return tuple(orjson.loads(v) if i in fold.JSONB["entities"] else v for i, v in enumerate(row))


def _bulk(work, tmp_path) -> tuple[list[Ops], bulk.EntityStates, Folder]:
    folder = Folder(RULES, entity_rows=False)
    store = bulk.EntityStates(tmp_path, cache_mib=8)
    out = []
    for batch in work:
        keys = {m.key.decode() for m in batch if m.key is not None}
        ops = folder.fold(batch, store.load(keys))
        store.save(ops)
        out.append(ops)
    return out, store, folder


def test_each_entity_s_rows_written_once_at_the_end_equal_the_live_upserts(work, tmp_path) -> None:
    live_ops, live_states, live_rows = _live(work)
    bulk_ops, store, folder = _bulk(work, tmp_path)
    try:
        made = {s[0]: (s, row) for s, row, _ in store.rows(folder)}
    finally:
        store.close()
    assert len(made) == len(live_rows) > 500
    first_seen_moved = 0
    for eid, (state_row, row) in made.items():
        assert state_row == (eid, *live_states[eid])
        # jsonb columns compared as values, as PostgreSQL keeps them (the key order of a dict differs
        # after a state's JSON round trip, in the live projector's loads as in the store's)
        assert _values(row) == _values(live_rows[eid]), eid
        first_seen_moved += live_rows[eid][6] != live_rows[eid][7]
    assert first_seen_moved > 100  # entities seen in more than one batch: first_seen carried across them
    # no entity rows per batch; every other row the same, batch by batch
    assert all(not o.states and not o.entities for o in bulk_ops)
    for a, b in zip(live_ops, bulk_ops, strict=True):
        for table in ("ledger_copy", "list_inserts", "list_updates", "publicity_inserts", "publicity_updates",
                      "deadlines", "feedback", "objections", "repairs", "quarantine", "held", "positions"):
            assert getattr(a, table) == getattr(b, table), table
        assert a.final_states.keys() == b.final_states.keys()


def test_a_state_stored_and_loaded_again_is_the_same_state(work, tmp_path) -> None:
    folder = Folder(RULES, entity_rows=False)
    store = bulk.EntityStates(tmp_path, cache_mib=8)
    try:
        ops = folder.fold(work[0], Loaded({}, set()))
        store.save(ops)
        loaded = store.load(set(ops.final_states) | {"uscc:never-seen"})
        assert loaded.states == ops.final_states
        assert loaded.first_seen == {k: v["first_seen"] for k, v in ops.info.items()}
        assert "uscc:never-seen" not in loaded.states
    finally:
        store.close()


def test_a_held_back_entity_stays_held_in_the_store(tmp_path) -> None:
    store = bulk.EntityStates(tmp_path, cache_mib=8)
    try:
        store.save(Ops(held=[("uscc:X", 1, 7)]))
        assert store.load({"uscc:X", "uscc:Y"}).held == {"uscc:X"}
    finally:
        store.close()


def test_deferred_updates_are_numbered_above_every_earlier_batch_s() -> None:
    # a batch of 5,000 records has at most a few updates per record: far below 2**SEQ_BITS
    assert (1 << bulk.SEQ_BITS) > 5000 * 100
    assert views.COLUMN_TYPES[views.DEFERRED]["seq"] == 20  # bigint

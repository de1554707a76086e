"""projections.views.write against the real PostgreSQL: rows whose key already exists (a drifted view,
an event id reused in another partition) are skipped, the new rows of the same batch still go in, and
nothing raises (the bulk COPY's savepoint falls back to INSERT ... ON CONFLICT DO NOTHING)."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from bench import fold
from ledger.rules import loader
from projections import schema, views
from projections.rows import Folder, Loaded, shown_record
from schemas import registry

NAME = "test_views_write"
RULES = loader.load()


@pytest.fixture
def fresh(stack, settings):
    with psycopg.connect(settings.pg_dsn) as conn, conn.transaction():
        schema.drop(conn, NAME)
        schema.create(conn, NAME)
    yield
    with psycopg.connect(settings.pg_dsn) as conn, conn.transaction():
        schema.drop(conn, NAME)


async def _write(settings, ops) -> dict[str, int]:
    conn = await psycopg.AsyncConnection.connect(settings.pg_dsn, options=f"-c search_path={NAME}",
                                                 prepare_threshold=None)
    try:
        await views.prepare(conn)
        async with conn.transaction():
            await views.write(conn, ops)
        out = {}
        for t in ("ledger_copy", "publicity", "list_entries", "entities", "entity_state"):
            out[t] = (await (await conn.execute(f"select count(*) from {t}")).fetchone())[0]
        return out
    finally:
        await conn.close()


async def test_existing_keys_are_skipped_and_new_rows_of_the_batch_still_go_in(settings, fresh) -> None:
    work = fold.batches(fold.fixed_entries(400, 3, life_share=0.5), 400)
    ops = Folder(RULES).fold(work[0], Loaded({}, set()))
    half = replace(ops, ledger_copy=ops.ledger_copy[::2], publicity_inserts=ops.publicity_inserts[::2],
                   list_inserts=ops.list_inserts[::2])
    first = await _write(settings, half)
    assert first["ledger_copy"] == len(ops.ledger_copy[::2]) > 0
    assert first["list_entries"] == len(ops.list_inserts[::2]) > 0
    full = await _write(settings, ops)  # half of the keys exist: they are skipped, the rest is inserted
    assert full["ledger_copy"] == len(ops.ledger_copy) == 400
    assert full["publicity"] == len(ops.publicity_inserts)
    assert full["list_entries"] == len(ops.list_inserts)
    assert await _write(settings, ops) == full  # all of them exist: nothing changes, nothing raises


async def test_nul_in_a_record_is_stored_as_ufffd_and_the_entity_goes_on(settings, fresh) -> None:
    """PostgreSQL text and jsonb cannot hold NUL. A record with NUL in its text (in the ledger from before
    the sequencer refused control characters) is stored with U+FFFD (its rows and the entity state; the
    ledger copy keeps the ledger's bytes and shows U+FFFD), and the entity's next, clean record is applied
    on top of that state."""
    entries = fold.fixed_entries(60, 5, life_share=0.0)
    by_entity: dict[bytes, list[tuple[int, bytes, bytes]]] = {}
    for e in entries:
        by_entity.setdefault(e[1], []).append(e)
    first, second = next(v for v in by_entity.values() if len(v) >= 2 and registry.decode(
        v[0][2], "LedgerEntry")[1]["event_type"] == "AdministrativePenaltyImposed")[:2]
    _, entry = registry.decode(first[2], "LedgerEntry")
    name, rec = registry.decode(entry["submission"])
    rec.update(facts="经查\x00当事人", decision_no=rec["decision_no"] + "\x00")
    entry["submission"] = registry.encode(name, rec)
    poisoned = (first[0], first[1], registry.encode("LedgerEntry", entry))
    folder = Folder(RULES)
    work = fold.batches([poisoned, second], 1)
    ops1 = folder.fold(work[0], Loaded({}, set()))
    assert ops1.nul_text  # the decision number is a key of the entity's state, whose text the fold checks
    await _write(settings, ops1)
    conn = await psycopg.AsyncConnection.connect(settings.pg_dsn, options=f"-c search_path={NAME}",
                                                 prepare_threshold=None)
    try:
        loaded = await views.load(conn, {first[1].decode()})
    finally:
        await conn.close()
    ops2 = folder.fold(work[1], loaded)
    assert ops2.applied == 1  # the state read back holds U+FFFD, not NUL: the clean batch is clean
    counts = await _write(settings, ops2)
    assert counts["ledger_copy"] == 2
    with psycopg.connect(settings.pg_dsn) as c:
        record, stamp = c.execute(f"select record, rules_versions from {NAME}.ledger_copy where entity_version = 1").fetchone()
        state = c.execute(f"select state from {NAME}.entity_state").fetchone()
        ref = c.execute(f"select ref from {NAME}.publicity where entity_id = %s",
                        (entry["entity_id"],)).fetchone()
    assert shown_record(record, stamp)["facts"] == "经查\ufffd当事人"  # the copy keeps the ledger's bytes; shown safe
    assert ref == (rec["decision_no"].replace("\x00", "\ufffd"),)
    assert "\x00" not in state[0] and "\ufffd" in state[0]


async def test_a_nul_the_fold_did_not_look_for_makes_the_batch_written_again_safe(settings, fresh) -> None:
    """The fold checks only the states' text for NUL: a NUL elsewhere (here in the facts, which the
    publicity row's national fields repeat as jsonb) makes PostgreSQL refuse the write, and views.write
    rolls back what it wrote and writes the whole batch again with U+FFFD: every row is there once."""
    entries = fold.fixed_entries(60, 5, life_share=0.0)
    values = []
    for part, key, value in entries[:20]:
        _, entry = registry.decode(value, "LedgerEntry")
        name, rec = registry.decode(entry["submission"])
        if rec["envelope"]["event_type"] == "AdministrativePenaltyImposed" and len(values) == 3:
            rec["facts"] = "经查\x00当事人"
            entry["submission"] = registry.encode(name, rec)
            value = registry.encode("LedgerEntry", entry)
        values.append((part, key, value))
    (batch,) = fold.batches(values, 20)
    ops = Folder(RULES).fold(batch, Loaded({}, set()))
    assert not ops.nul_text and ops.applied == 20
    counts = await _write(settings, ops)
    assert ops.nul_text  # written the second time value by value
    assert counts["ledger_copy"] == 20 and counts["publicity"] == len(ops.publicity_inserts) > 0
    with psycopg.connect(settings.pg_dsn) as c:
        shown = c.execute(f"select count(*) from {NAME}.publicity where national->>'CF_SY' = %s",
                          ("经查\ufffd当事人",)).fetchone()
    assert shown == (1,)


async def test_entities_new_to_the_database_are_copied_in_and_known_ones_upserted(settings, fresh) -> None:
    """entity_state and entities: an entity the database had no state of is COPYed straight in, one it
    had is upserted, and an entity taken for new that exists after all makes the batch upsert them all:
    the tables end as one fold of every record gives them."""
    work = fold.batches(fold.fixed_entries(400, 3, life_share=0.5), 200)
    folder = Folder(RULES)
    ops1 = folder.fold(work[0], Loaded({}, set()))
    assert ops1.new_entities == set(ops1.states)
    first = await _write(settings, ops1)
    assert await _write(settings, ops1) == first  # every one exists: upserted, nothing changes, nothing raises
    conn = await psycopg.AsyncConnection.connect(settings.pg_dsn, options=f"-c search_path={NAME}",
                                                 prepare_threshold=None)
    try:
        loaded = await views.load(conn, {m.key.decode() for m in work[1]})
    finally:
        await conn.close()
    ops2 = folder.fold(work[1], loaded)
    assert ops2.new_entities and ops2.new_entities != set(ops2.states)  # some new, some known
    await _write(settings, ops2)
    whole = Folder(RULES).fold(work[0] + work[1], Loaded({}, set()))
    with psycopg.connect(settings.pg_dsn) as c:
        states = {k: (v, s) for k, v, s in c.execute(f"select entity_id, version, state from {NAME}.entity_state")}
        entities = dict(c.execute(f"select entity_id, version from {NAME}.entities").fetchall())
    assert states == whole.states
    assert entities == {k: row[5] for k, row in whole.entities.items()}

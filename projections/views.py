"""Reads what a batch needs and writes its row operations, set-based, in the caller's transaction.

The connection's search_path names the schema (the live "views" or a rebuild's fresh schema).
Bulk rows go through COPY into temporary tables, then one INSERT ... ON CONFLICT or UPDATE ... FROM
per table; nothing is written row by row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

from projections.rows import Loaded, Ops, state_from_json
from schemas import registry

LEDGER_COPY_COLS = ("entity_id, entity_version, event_id, event_type, category, department, kafka_partition, "
                    "kafka_offset, hash, sequenced_at, valid_from, record, rules_versions")
ENTITY_COLS = ("entity_id, category, id_type, public_id, name, version, first_seen, last_change, last_event_type, "
               "counts, black_lists, red_listed, registered_on, score, grade, grade_reasons, county, key_persons")
LIST_COLS = ("entity_id, list_kind, ref, colour, reason, department, listed_on, legal_end, status, ended_on, "
             "event_id, subject_name, public_id, category, county")
PUBLICITY_COLS = ("event_id, entity_id, kind, ref, national, department, decision_date, ledger_date, deadline, "
                  "working_days, late, window_start, earliest_repair, automatic_end, status, ended_on, "
                  "subject_name, public_id, category, provisional, county")
RELEASE_COLS = ("release_no, period, title, period_start, period_end, corrects, correction_note, drawn_at, "
                "drawn_positions, drafted_by, reviewed_by, reviewed_on, approved_by, approved_on, content_sha256, "
                "entries, black, red, event_id, entity_id, kafka_partition, kafka_offset, sequenced_at")
RELEASE_ENTRY_COLS = ("release_no, seq, colour, list_kind, entity_id, public_id, subject_name, category, county, "
                      "county_name, ref, reason, department, department_name, listed_on, legal_end, listing_event_id, "
                      "entity_version")
DEADLINE_COLS = ("event_id, entity_id, rule, ref, department, trigger_date, done_date, allowed, deadline, "
                 "working_days, late, provisional, subject_name, public_id, category")
FEEDBACK_COLS = ("event_id, entity_id, department, measure_code, action, trigger_event_id, trigger_kind, business_ref, "
                 "acted_on, note, subject_name, public_id, category")
OBJECTION_COLS = ("receipt_no, entity_id, target_event_id, record_kind, record_ref, grounds, status, result, "
                  "correcting_event_id, filed_by, filed_event_id, received_on, forward_due, forwarded_on, forwarded_to, "
                  "forward_late, source_due, answer_due, answered_on, answered_by, answer_late, source_late, explanation, "
                  "provisional, subject_name, public_id, category")
REPAIR_COLS = ("receipt_no, entity_id, target_event_id, record_kind, record_ref, status, result, repair_event_id, "
               "filed_by, filed_event_id, received_on, regime, accept_due, accepted_on, refused_on, refusal_reason, "
               "accept_late, decide_due, decided_on, decide_late, explanation, provisional, subject_name, public_id, "
               "category")
_TEMPS = ("ledger_copy", "entities", "list_entries", "publicity", "entity_state", "punishment_feedback",
          "short_deadlines", "objections", "repair_applications", "releases", "release_entries")


# The type of every column of views.sql (and of the staging table of status updates), by OID: the rows
# are COPYed in PostgreSQL's binary format, which needs them (`Copy.set_types`): no text to make on the
# client, none to parse on the server.
_OIDS = {"text": 25, "bigint": 20, "int": 23, "date": 1082, "timestamptz": 1184, "bytea": 17, "boolean": 16,
         "jsonb": 3802, "text[]": 1009}


def _column_types(ddl: str) -> dict[str, dict[str, int]]:
    tables: dict[str, dict[str, int]] = {}
    for name, body in re.findall(r"create table (\w+) \((.*?)\n\);", ddl, re.S):
        cols = (re.match(r"\s+(\w+)\s+([\w\[\]]+)", line) for line in body.splitlines())
        tables[name] = {m[1]: _OIDS[m[2]] for m in cols if m and m[1] != "primary"}
    return tables


COLUMN_TYPES = _column_types(Path(__file__).with_name("views.sql").read_text(encoding="utf-8"))
COLUMN_TYPES["updates"] = {"status": 25, "ended_on": 1082, "entity_id": 25, "kind": 25, "ref": 25, "seq": 23}
# A rebuild's bulk load keeps the status updates of list entries and publicity rows here, in the schema
# being built, and applies them once at its end (`apply_deferred_updates`); `seq` orders them as the
# ledger does within each entity (an entity lives in one partition, folded by one worker).
DEFERRED = "deferred_updates"
COLUMN_TYPES[DEFERRED] = {"target": 25, **COLUMN_TYPES["updates"], "seq": 20}
# where each status update goes, and the column its `kind` is matched against
_UPDATE_TARGETS = (("list_entries", "list_kind"), ("publicity", "kind"))


class JsonbText(Dumper):
    """jsonb in the binary format from the JSON text the fold made (orjson): the format's version byte
    and the text, with no json.dumps of a str (which would store a JSON string)."""

    format = Format.BINARY
    oid = _OIDS["jsonb"]

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + obj.encode()


async def prepare(conn: psycopg.AsyncConnection[Any]) -> None:
    """Temporary staging tables of this connection (emptied at every commit); jsonb columns COPYed from
    the JSON text the fold made."""
    conn.adapters.register_dumper(None, JsonbText)
    for t in _TEMPS:
        await conn.execute(f"create temp table if not exists _in_{t} (like {t}) on commit delete rows")
    await conn.execute("create temp table if not exists _in_updates (status text, ended_on date, entity_id text, "
                       "kind text, ref text, seq int) on commit delete rows")
    await conn.commit()


async def load(conn: psycopg.AsyncConnection[Any], keys: set[str], generation: int = 0) -> Loaded:
    cur = await conn.execute("select entity_id, version, state from entity_state where entity_id = any(%s)",
                             (list(keys),))
    states = {eid: (version, state_from_json(state)) for eid, version, state in await cur.fetchall()}
    cur = await conn.execute("select entity_key from held_entities where entity_key = any(%s)", (list(keys),))
    return Loaded(states, {k for (k,) in await cur.fetchall()}, generation)


async def generation(conn: psycopg.AsyncConnection[Any]) -> int:
    """The live views' generation: the number of switch-overs to a rebuilt schema (public.view_generations)."""
    cur = await conn.execute("select coalesce(max(id), 0) from public.view_generations")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


def _text_safe(v: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold NUL: it is shown as U+FFFD (the ledger keeps the original)."""
    if isinstance(v, str) and ("\x00" in v or "\\u0000" in v):
        return v.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")
    return v


async def copy_rows(cur: psycopg.AsyncCursor[Any], table: str, columns: str, rows: Any, nul_text: bool = True) -> None:
    """COPY the rows; `nul_text` False (the fold found no NUL in the batch's records) skips the per-value
    NUL check, a third of the client's COPY work."""
    types = COLUMN_TYPES[table.removeprefix("_in_")]
    async with cur.copy(f"copy {table} ({columns}) from stdin (format binary)") as copy:
        copy.set_types([types[c.strip()] for c in columns.split(",")])
        if nul_text:
            for r in rows:
                await copy.write_row(tuple(_text_safe(v) for v in r))
        else:
            for r in rows:
                await copy.write_row(r)


async def _insert_new(cur: psycopg.AsyncCursor[Any], table: str, columns: str, rows: list[tuple[Any, ...]],
                      nul_text: bool) -> None:
    """Insert rows whose keys are new, skipping any whose key exists (ON CONFLICT DO NOTHING semantics).

    Nearly always every key is new (an (entity, version) is applied once, an event id is unique), so the
    rows are first COPYed straight into the table inside a savepoint: PostgreSQL's bulk insert, with no
    speculative insertion per row and no staging table. Only if a key exists (a drifted view, an event id
    reused in another partition: docs/architecture.md) is the savepoint rolled back and the batch
    inserted through the staging table with ON CONFLICT DO NOTHING, exactly as before."""
    try:
        async with cur.connection.transaction():
            await copy_rows(cur, table, columns, rows, nul_text)
        return
    except psycopg.errors.UniqueViolation:
        pass
    await copy_rows(cur, f"_in_{table}", columns, rows, nul_text)
    await cur.execute(f"insert into {table} ({columns}) select {columns} from _in_{table} on conflict do nothing")


def entity_rows(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """The entities rows with registered_on (column 12) as a date: the binary COPY takes no text for a date
    column, and the state keeps the date as ISO text (the fold's rows keep it so: bench/fold.py's digest)."""
    for r in rows:
        yield r if r[12] is None or isinstance(r[12], date) else (*r[:12], date.fromisoformat(r[12]), *r[13:])


async def _write_entities(cur: psycopg.AsyncCursor[Any], ops: Ops) -> None:
    """entity_state and entities, one row each per touched entity. Those the database had no state of
    when the batch was loaded (`ops.new_entities`) are COPYed straight into both tables inside a
    savepoint (a bulk insert, no staging table, no speculative insertion per row); the others, and
    all of them if one of the new ones exists after all, are upserted through the staging tables,
    a row replaced only by a higher version."""
    state_cols = "entity_id, version, state"
    upsert = [k for k in ops.states if k not in ops.new_entities]
    new = [k for k in ops.states if k in ops.new_entities]
    if new:
        try:
            async with cur.connection.transaction():
                await copy_rows(cur, "entity_state", state_cols, ((k, *ops.states[k]) for k in new), ops.nul_text)
                await copy_rows(cur, "entities", ENTITY_COLS, entity_rows(ops.entities[k] for k in new), ops.nul_text)
        except psycopg.errors.UniqueViolation:
            upsert = list(ops.states)
    if not upsert:
        return
    await copy_rows(cur, "_in_entity_state", state_cols, ((k, *ops.states[k]) for k in upsert), ops.nul_text)
    await cur.execute("insert into entity_state select * from _in_entity_state on conflict (entity_id) do "
                      "update set version = excluded.version, state = excluded.state "
                      "where entity_state.version < excluded.version")
    await copy_rows(cur, "_in_entities", ENTITY_COLS, entity_rows(ops.entities[k] for k in upsert), ops.nul_text)
    await cur.execute(f"insert into entities ({ENTITY_COLS}) select {ENTITY_COLS} from _in_entities "
                      f"on conflict (entity_id) do update set {_excluded(ENTITY_COLS, ('entity_id', 'first_seen'))} "
                      "where entities.version < excluded.version")


def _excluded(columns: str, keep: tuple[str, ...] = ()) -> str:
    return ", ".join(f"{c} = excluded.{c}" for c in (x.strip() for x in columns.split(",")) if c not in keep)


def _status_update(target: str, key: str, source: str) -> str:
    """Set status and ended_on of the `target` rows from `source` (status, ended_on, entity_id, kind, ref,
    seq); the last update of a row (highest seq) wins."""
    return (f"update {target} t set status = u.status, ended_on = u.ended_on from "
            f"(select distinct on (entity_id, kind, ref) * from {source} "
            f" order by entity_id, kind, ref, seq desc) u "
            f"where t.entity_id = u.entity_id and t.{key} = u.kind and t.ref = u.ref")


def create_deferred_updates(conn: psycopg.Connection[Any]) -> None:
    """The table of a bulk load's deferred status updates, in the connection's schema (search_path)."""
    conn.execute(f"create unlogged table {DEFERRED} (target text, status text, ended_on date, entity_id text, "
                 f"kind text, ref text, seq bigint)")


def apply_deferred_updates(conn: psycopg.Connection[Any], schema_name: str) -> int:
    """At the end of a bulk load: every deferred status update applied (each row's last), then the table of
    them dropped. Returns the rows updated."""
    updated = 0
    for target, key in _UPDATE_TARGETS:
        q = _status_update(f'"{schema_name}".{target}', key,
                           f'(select * from "{schema_name}".{DEFERRED} where target = \'{target}\') d')
        updated += conn.execute(q).rowcount  # type: ignore[arg-type]
    conn.execute(f'drop table "{schema_name}".{DEFERRED}')  # type: ignore[arg-type]
    return updated


# What PostgreSQL answers to a NUL in a text value (22021) or "\u0000" in a jsonb value (22P05)
_NUL_REFUSED = (psycopg.errors.CharacterNotInRepertoire, psycopg.errors.UntranslatableCharacter)


async def write(conn: psycopg.AsyncConnection[Any], ops: Ops, topic: str = registry.EVENTS.name,
                defer_updates: int | None = None) -> None:
    """Every row operation of a batch, and the positions reached in `topic`, in the caller's transaction.
    With `defer_updates` (the rebuild's bulk load: the first seq of this batch's updates, above every
    earlier batch's) the status updates are kept in DEFERRED instead of applied.

    Unless the fold said so (`Ops.nul_text`), the rows are written as they are; if PostgreSQL refuses
    a NUL in one of them, everything this call wrote is rolled back (a savepoint) and the batch is
    written again with every text made safe (`_text_safe`): a NUL costs nothing until a record has one."""
    if ops.nul_text:
        await _write(conn, ops, topic, defer_updates)
        return
    try:
        async with conn.transaction():
            await _write(conn, ops, topic, defer_updates)
        return
    except _NUL_REFUSED:
        ops.nul_text = True
    await _write(conn, ops, topic, defer_updates)


async def _write(conn: psycopg.AsyncConnection[Any], ops: Ops, topic: str, defer_updates: int | None) -> None:
    async with conn.cursor() as cur:
        if ops.ledger_copy:
            await _insert_new(cur, "ledger_copy", LEDGER_COPY_COLS, ops.ledger_copy, ops.nul_text)
        if ops.states:
            await _write_entities(cur, ops)
        if ops.list_inserts:
            await _insert_new(cur, "list_entries", LIST_COLS, ops.list_inserts, ops.nul_text)
        if ops.publicity_inserts:
            await _insert_new(cur, "publicity", PUBLICITY_COLS, ops.publicity_inserts, ops.nul_text)
        if ops.feedback:
            await _insert_new(cur, "punishment_feedback", FEEDBACK_COLS, ops.feedback, ops.nul_text)
        if ops.deadlines:
            await _insert_new(cur, "short_deadlines", DEADLINE_COLS, ops.deadlines, ops.nul_text)
        for table, columns, rows in (("objections", OBJECTION_COLS, ops.objections),
                                     ("repair_applications", REPAIR_COLS, ops.repairs)):
            if rows:  # each row is the matter's whole row after the batch: it replaces the one before
                await copy_rows(cur, f"_in_{table}", columns, rows.values(), ops.nul_text)
                await cur.execute(f"insert into {table} ({columns}) select {columns} from _in_{table} "
                                  f"on conflict (receipt_no) do update set {_excluded(columns, ('receipt_no',))}")
        if ops.releases:
            await _insert_new(cur, "releases", RELEASE_COLS, ops.releases, ops.nul_text)
            await _insert_new(cur, "release_entries", RELEASE_ENTRY_COLS, ops.release_entries, ops.nul_text)
        for (target, key), updates in zip(_UPDATE_TARGETS, (ops.list_updates, ops.publicity_updates), strict=True):
            if not updates:
                continue
            if defer_updates is not None:
                await copy_rows(cur, DEFERRED, "target, status, ended_on, entity_id, kind, ref, seq",
                                ((target, *u, defer_updates + i) for i, u in enumerate(updates)))
                continue
            await cur.execute("delete from _in_updates")
            await copy_rows(cur, "_in_updates", "status, ended_on, entity_id, kind, ref, seq",
                            ((*u, i) for i, u in enumerate(updates)))
            await cur.execute(_status_update(target, key, "_in_updates"))  # the last update of a row in the batch wins
        if ops.quarantine:
            await cur.executemany("insert into quarantine (kafka_partition, kafka_offset, entity_key, reason, detail, "
                                  "raw) values (%s, %s, %s, %s, %s, %s) on conflict do nothing", ops.quarantine)
        if ops.held:
            await cur.executemany("insert into held_entities (entity_key, kafka_partition, kafka_offset) "
                                  "values (%s, %s, %s) on conflict do nothing", ops.held)
        if ops.positions:
            await cur.executemany(
                "insert into positions (topic, partition, next_offset, last_append) values (%s, %s, %s, %s) "
                "on conflict (topic, partition) do update set next_offset = excluded.next_offset, "
                "last_append = excluded.last_append",
                [(topic, p, o, ts) for p, (o, ts) in ops.positions.items()])

"""The schemas that hold the read models: the live one ("views"), fresh ones for a rebuild, the
deterministic digest that compares two of them, and the atomic swap."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

LIVE = "views"
DDL = Path(__file__).resolve().parent / "views.sql"
# Lock taken by the projector for each batch and by a switch-over: no batch straddles a swap.
SWITCH_LOCK = 0x6372656469  # "credi"

# Every table with the columns that identify a row, for the digest; volatile columns are left out.
DIGEST: dict[str, tuple[str, str]] = {
    "positions": ("topic, partition, next_offset, last_append", "topic, partition"),
    "entity_state": ("entity_id, version, state", "entity_id"),
    "ledger_copy": ("entity_id, entity_version, event_id, event_type, category, department, kafka_partition, "
                    "kafka_offset, hash, sequenced_at, valid_from, record, rules_versions", "entity_id, entity_version"),
    "entities": ("entity_id, category, id_type, public_id, name, version, first_seen, last_change, "
                 "last_event_type, counts, black_lists, red_listed, registered_on, score, grade, grade_reasons, "
                 "county, key_persons", "entity_id"),
    "list_entries": ("entity_id, list_kind, ref, colour, reason, department, listed_on, legal_end, status, "
                     "ended_on, event_id, subject_name, public_id, category, county", "entity_id, list_kind, ref"),
    "publicity": ("event_id, entity_id, kind, ref, national, department, decision_date, ledger_date, deadline, "
                  "working_days, late, window_start, earliest_repair, automatic_end, status, ended_on, "
                  "subject_name, public_id, category, provisional, county", "event_id"),
    "short_deadlines": ("event_id, entity_id, rule, ref, department, trigger_date, done_date, allowed, deadline, "
                        "working_days, late, provisional, subject_name, public_id, category", "event_id"),
    "punishment_feedback": ("event_id, entity_id, department, measure_code, action, trigger_event_id, trigger_kind, "
                            "business_ref, acted_on, note, subject_name, public_id, category", "event_id"),
    "objections": ("receipt_no, entity_id, target_event_id, record_kind, record_ref, grounds, status, result, "
                   "correcting_event_id, filed_by, filed_event_id, received_on, forward_due, forwarded_on, "
                   "forwarded_to, forward_late, source_due, answer_due, answered_on, answered_by, answer_late, "
                   "source_late, explanation, provisional, subject_name, public_id, category", "receipt_no"),
    "repair_applications": ("receipt_no, entity_id, target_event_id, record_kind, record_ref, status, result, "
                            "repair_event_id, filed_by, filed_event_id, received_on, regime, accept_due, accepted_on, "
                            "refused_on, refusal_reason, accept_late, decide_due, decided_on, decide_late, "
                            "explanation, provisional, subject_name, public_id, category", "receipt_no"),
    "releases": ("release_no, period, title, period_start, period_end, corrects, correction_note, drawn_at, "
                 "drawn_positions, drafted_by, reviewed_by, reviewed_on, approved_by, approved_on, content_sha256, "
                 "entries, black, red, event_id, entity_id, kafka_partition, kafka_offset, sequenced_at", "release_no"),
    "release_entries": ("release_no, seq, colour, list_kind, entity_id, public_id, subject_name, category, county, "
                        "county_name, ref, reason, department, department_name, listed_on, legal_end, "
                        "listing_event_id, entity_version", "release_no, seq"),
    "quarantine": ("kafka_partition, kafka_offset, entity_key, reason, detail, raw", "kafka_partition, kafka_offset"),
    "held_entities": ("entity_key, kafka_partition, kafka_offset", "entity_key"),
}


def exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    return conn.execute("select 1 from pg_namespace where nspname = %s", (schema,)).fetchone() is not None


def create(conn: psycopg.Connection[Any], schema: str) -> None:
    """Create `schema` with every view table, empty (in the caller's transaction)."""
    # the name-search index needs pg_trgm (migration 002 creates it too; a bare database has not run it)
    conn.execute("create extension if not exists pg_trgm with schema public")
    conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("set local search_path to {}").format(sql.Identifier(schema)))
    conn.execute(DDL.read_text(encoding="utf-8"))  # type: ignore[arg-type]


def missing_tables(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    """The view tables of views.sql that `schema` lacks, or holds without a column views.sql now gives
    them (`table.column`): it was made by older code."""
    rows = conn.execute("select table_name, column_name from information_schema.columns where table_schema = %s",
                        (schema,)).fetchall()
    present: dict[str, set[str]] = {}
    for table, column in rows:
        present.setdefault(table, set()).add(column)
    missing = []
    for table, (columns, _key) in DIGEST.items():
        if table not in present:
            missing.append(table)
            continue
        missing += [f"{table}.{c}" for c in (x.strip() for x in columns.split(",")) if c not in present[table]]
    return sorted(missing)


# Secondary indexes the projector's own writes look rows up by: kept while the live projector fills a
# schema without its other secondary indexes (bench.projection --indexes deferred). Without
# publicity_entity, the status update of a batch (by entity, kind and ref; the key is the event id)
# scans the whole publicity table, so the load slows down as it grows (measured: 3.7k events/s over
# the first 1.6 million of a 10 million rebuild, 2.5k/s by 2.7 million). The rebuild's bulk load
# defers the status updates to its end (views.apply_deferred_updates) and keeps none.
KEPT_DURING_LOAD = frozenset({"publicity_entity"})
# The tables a rebuild's bulk load fills without their primary keys, which are built once at the end
# (`drop_primary_keys`, `add_primary_keys`): every row it writes to them is new. An (entity, version)
# is applied once and an entity's state and row are written once, at the end of the load; a
# publicity row is keyed by its event id, which only a drifted ledger repeats (add_primary_keys then
# keeps one row of each). The smaller tables keep their keys: their inserts skip a key that exists.
LOADED_WITHOUT_KEYS = ("entity_state", "entities", "ledger_copy", "publicity")


def drop_secondary_indexes(conn: psycopg.Connection[Any], schema: str,
                           keep: frozenset[str] = KEPT_DURING_LOAD) -> list[str]:
    """Drop every index of `schema` that backs no constraint (views.sql's `create index` lines) and is
    not in `keep`, and return their definitions, for `create_indexes` after a bulk load: building an
    index once over the loaded rows costs less than keeping it up to date row by row."""
    rows = conn.execute(
        "select i.relname, pg_get_indexdef(i.oid) from pg_index x join pg_class i on i.oid = x.indexrelid "
        "join pg_class t on t.oid = x.indrelid join pg_namespace n on n.oid = t.relnamespace "
        "where n.nspname = %s and not exists (select 1 from pg_constraint c where c.conindid = i.oid) "
        "and i.relname <> all(%s) order by i.relname", (schema, sorted(keep))).fetchall()
    for name, _ in rows:
        conn.execute(sql.SQL("drop index {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
    return [definition for _, definition in rows]


def drop_primary_keys(conn: psycopg.Connection[Any], schema: str,
                      tables: tuple[str, ...] = LOADED_WITHOUT_KEYS) -> list[tuple[str, str, str]]:
    """Drop the primary keys of `tables` in `schema`; returns (table, constraint, definition) of each,
    for `add_primary_keys` after the load."""
    rows = conn.execute(
        "select t.relname, c.conname, pg_get_constraintdef(c.oid) from pg_constraint c "
        "join pg_class t on t.oid = c.conrelid join pg_namespace n on n.oid = t.relnamespace "
        "where n.nspname = %s and c.contype = 'p' and t.relname = any(%s) order by t.relname",
        (schema, list(tables))).fetchall()
    for table, name, _ in rows:
        conn.execute(sql.SQL("alter table {}.{} drop constraint {}").format(
            sql.Identifier(schema), sql.Identifier(table), sql.Identifier(name)))
    return [(t, n, d) for t, n, d in rows]


def add_primary_keys(conn: psycopg.Connection[Any], schema: str, keys: list[tuple[str, str, str]]) -> int:
    """Build the primary keys `drop_primary_keys` returned, in the caller's transaction. Where a key is
    repeated (a publicity event id a drifted ledger reuses in another partition) one row of each key is
    kept, as the live projector's insert keeps the first it meets and skips the others, and the key is
    built then. Returns the number of rows so removed."""
    removed = 0
    for table, name, definition in keys:
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        add = sql.SQL("alter table {} add constraint {} ").format(target, sql.Identifier(name)) + sql.SQL(definition)
        try:
            with conn.transaction():
                conn.execute(add)
            continue
        except psycopg.errors.UniqueViolation:
            pass
        columns = sql.SQL(definition.removeprefix("PRIMARY KEY "))  # "(event_id)"
        cur = conn.execute(sql.SQL("delete from {t} where ctid in (select ctid from (select ctid, row_number() over "
                                   "(partition by {c} order by ctid) n from {t}) d where n > 1)").format(
            t=target, c=columns))
        removed += cur.rowcount
        conn.execute(add)
    return removed


def create_indexes(conn: psycopg.Connection[Any], definitions: list[str]) -> None:
    """Create the indexes `drop_secondary_indexes` returned (a unique one fails if its rows are not)."""
    for definition in definitions:
        conn.execute(definition)  # type: ignore[arg-type]  (pg_get_indexdef: qualified, quoted)


def ensure_live(dsn: str) -> bool:
    """Create the live schema if it is missing, or re-create it empty when it lacks a table or a column
    that views.sql now defines (the projector then projects the ledger again from offset 0: the views
    are only a projection). Returns True if it was (re)created."""
    with psycopg.connect(dsn) as conn:
        if exists(conn, LIVE):
            if not missing_tables(conn, LIVE):
                return False
            with conn.transaction():
                drop(conn, LIVE)
                create(conn, LIVE)
            return True
        with conn.transaction():
            create(conn, LIVE)
        return True


def digest(conn: psycopg.Connection[Any], schema: str) -> dict[str, str]:
    """A digest per table: the row count and two sums of each row's 64-bit hash (PostgreSQL's
    `hash_record_extended` with two seeds: each column hashed by its type's own hash function, so over
    its value, with no text made of the row), folded into one MD5. Equal digests, equal views (the same
    rows, whatever their physical order). One sequential scan per table (parallel) and constant memory,
    so it works at any size: an ordered string_agg of the rows themselves outgrows PostgreSQL's 1 GB
    limit on a value near a million ledger entries; the MD5 of each row's text, the digest before this
    one, cost three times as much (12.5 against 3.9 s for a million ledger copy rows). This detects
    drift between two projections of the same ledger; it is not a commitment against a forger (the
    notary's signed Merkle tree is)."""
    out = {}
    for table, (columns, _key) in DIGEST.items():
        q = sql.SQL("select count(*), coalesce(sum(hash_record_extended(t, 0)::numeric), 0), "
                    "coalesce(sum(hash_record_extended(t, 1)::numeric), 0) from "
                    "(select {columns} from {schema}.{table}) t").format(
            columns=sql.SQL(columns), schema=sql.Identifier(schema), table=sql.Identifier(table))
        count, high, low = conn.execute(q).fetchone()  # type: ignore[misc]
        out[table] = f"{count}:{hashlib.md5(f'{count}:{high}:{low}'.encode()).hexdigest()}"
    return out


def combined(digests: dict[str, str]) -> str:
    return hashlib.sha256("\n".join(f"{t}={d}" for t, d in sorted(digests.items())).encode()).hexdigest()


def swap(conn: psycopg.Connection[Any], new_schema: str, retired: str) -> None:
    """In the caller's transaction: the live schema becomes `retired`, `new_schema` becomes live."""
    conn.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(LIVE), sql.Identifier(retired)))
    conn.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(new_schema), sql.Identifier(LIVE)))


def drop(conn: psycopg.Connection[Any], schema: str) -> None:
    conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))

"""The floor of the projection benchmark: a plain binary COPY of the rows the projector writes.

bench/projection.py calls it in the same run as the projector, over the same entries: the entries are
folded in memory first (projections.rows.Folder, batches of 5,000, untimed), the row operations are
reduced to the tables' final rows (every ledger copy, publicity, list, deadline and feedback row once,
status updates applied in memory; each entity's last state and row once, its first_seen kept as the
projector's upsert keeps it), and then only the COPY is timed: one connection, one transaction, one
`COPY ... (FORMAT BINARY)` per table with psycopg's `write_row` (projections.views.copy_rows, the
projector's own COPY), into a fresh schema with the same tables and indexes. No Kafka, no fold, no
upserts, no staging tables: what PostgreSQL and psycopg need at least to store these rows, so the
projector's rate reads as a fraction of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from ledger.domain.model import EntityState
from ledger.platform import config
from projections import views
from projections.rows import Folder, Incoming, Loaded

# views.write's tables and columns, in its order
TABLES = (("ledger_copy", views.LEDGER_COPY_COLS), ("entity_state", "entity_id, version, state"),
          ("entities", views.ENTITY_COLS), ("list_entries", views.LIST_COLS), ("publicity", views.PUBLICITY_COLS),
          ("punishment_feedback", views.FEEDBACK_COLS), ("short_deadlines", views.DEADLINE_COLS))


def final_rows(entries: list[tuple[int, bytes, bytes]], folder: Folder, partitions: int,
               batch: int = 5000) -> tuple[dict[str, list[tuple[Any, ...]]], bool]:
    """Fold the entries as the projector does (batches, states carried between them) and return the rows
    the tables hold at the end, per table, and whether a text needs the NUL check."""
    offsets = [0] * partitions
    states: dict[str, tuple[int, EntityState]] = {}
    entities: dict[str, tuple[Any, ...]] = {}
    state_rows: dict[str, tuple[int, str]] = {}
    appended: dict[str, list[tuple[Any, ...]]] = {t: [] for t in ("ledger_copy", "punishment_feedback",
                                                                  "short_deadlines")}
    keyed: dict[str, dict[tuple[str, str, str], list[Any]]] = {"list_entries": {}, "publicity": {}}
    nul = False
    for at in range(0, len(entries), batch):
        incoming = []
        for partition, key, value in entries[at:at + batch]:
            incoming.append(Incoming(partition, offsets[partition], key, value, 0))
            offsets[partition] += 1
        keys = {m.key.decode() for m in incoming if m.key is not None}
        ops = folder.fold(incoming, Loaded({k: states[k] for k in keys if k in states}, set()))
        nul = nul or ops.nul_text
        for eid, (version, text) in ops.states.items():
            states[eid] = (version, EntityState.from_json(text))
            state_rows[eid] = (version, text)
        for eid, row in ops.entities.items():  # the upsert keeps the first first_seen (column 6)
            entities[eid] = row if eid not in entities else (*row[:6], entities[eid][6], *row[7:])
        appended["ledger_copy"] += ops.ledger_copy
        appended["punishment_feedback"] += ops.feedback
        appended["short_deadlines"] += ops.deadlines
        for r in ops.list_inserts:  # key (entity, list kind, ref): columns 0, 1, 2
            keyed["list_entries"].setdefault((r[0], r[1], r[2]), []).append(list(r))
        for r in ops.publicity_inserts:  # key (entity, kind, ref): columns 1, 2, 3
            keyed["publicity"].setdefault((r[1], r[2], r[3]), []).append(list(r))
        for table, updates, at_status in (("list_entries", ops.list_updates, 8), ("publicity", ops.publicity_updates, 14)):
            for status, ended_on, eid, kind, ref in updates:
                for row in keyed[table].get((eid, kind, ref), ()):
                    row[at_status], row[at_status + 1] = status, ended_on
    rows = {**appended, "entity_state": [(k, v, s) for k, (v, s) in state_rows.items()],
            "entities": list(views.entity_rows(entities.values()))}
    for table, by_key in keyed.items():
        rows[table] = [tuple(r) for rs in by_key.values() for r in rs]
    return rows, nul


async def copy_floor(s: config.Settings, name: str, rows: dict[str, list[tuple[Any, ...]]], nul: bool,
                     meter_start: Callable[[], None], meter_stop: Callable[[], dict[str, float]]) -> dict[str, Any]:
    """COPY the rows into the fresh schema `name` (made by the caller), timed with the caller's meter
    from the first COPY to the commit."""
    conn = await psycopg.AsyncConnection.connect(s.pg_dsn, options=f"-c search_path={name}",
                                                 prepare_threshold=None)
    try:
        await views.prepare(conn)
        meter_start()
        async with conn.transaction(), conn.cursor() as cur:
            for table, columns in TABLES:
                if rows[table]:
                    await views.copy_rows(cur, table, columns, rows[table], nul)
        cpu = meter_stop()
    finally:
        await conn.close()
    return {"cpu": cpu, "rows": {t: len(rows[t]) for t, _ in TABLES}, "wall_s": cpu["wall_s"]}

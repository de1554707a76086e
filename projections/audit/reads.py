"""Auditors' reads from PostgreSQL: an entity's history from the ledger copy (views.ledger_copy),
its state as of a valid date / a ledger time (ledger/domain/asof.py), and Merkle proofs from the
notary's stored trees (schema `notary`, written by consumers/notary/service.py).

Functions take an async psycopg connection whose search_path names the views schema (the query
API's pool, or the audit CLI's connection); the notary's tables are always schema-qualified.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg

from ledger.audit import merkle, notary
from ledger.domain.asof import AsOf, Recorded, state_as_of
from ledger.records.events import event_of, judged_versions
from projections.rows import shown_record

HISTORY_SQL = """
select entity_version, event_id, event_type, department, kafka_partition, kafka_offset, hash, sequenced_at,
       valid_from, record, rules_versions
from ledger_copy where entity_id = %s order by entity_version
"""
HISTORY_FIELDS = ("version", "event_id", "event_type", "department", "partition", "offset", "hash",
                  "sequenced_at", "valid_from", "record")


async def history(conn: psycopg.AsyncConnection[Any], entity_id: str) -> list[dict[str, Any]]:
    """Every event of the entity in the ledger copy, by version (the record with the public id)."""
    cur = await conn.execute(HISTORY_SQL, (entity_id,))
    return [dict(zip(HISTORY_FIELDS, (*r[:-2], shown_record(r[-2], r[-1])), strict=True)) for r in await cur.fetchall()]


def recorded(entity_id: str, rows: list[dict[str, Any]]) -> list[Recorded]:
    """The ledger copy's rows as the domain's events (the body is the record without its envelope)."""
    out = []
    for r in rows:
        stamp = {"rules_versions": r["record"]["envelope"].get("rules_versions")}  # the projector's copy of it
        out.append(Recorded(r["version"], r["sequenced_at"],
                            event_of(r["record"], entity_id=entity_id, department=r["department"],
                                     rules_versions=judged_versions(stamp))))
    return out


async def as_of(conn: psycopg.AsyncConnection[Any], entity_id: str, valid_on: date | None,
                known_at: datetime | None) -> tuple[AsOf, int]:
    """The entity's state as of `valid_on` as the ledger knew it at `known_at`; and its event count."""
    rows = await history(conn, entity_id)
    return state_as_of(recorded(entity_id, rows), valid_on, known_at), len(rows)


# --------------------------------------------------------------------------- the notary's trees


HEAD_COLUMNS = "partition, tree_size, root, timestamp_ms, last_offset, key_id, signature"


def _head(row: Any) -> notary.Head:
    return notary.Head(row[0], row[1], bytes(row[2]), row[3], row[4], row[5], bytes(row[6]))


async def latest_head(conn: psycopg.AsyncConnection[Any], partition: int, covering: int = 0,
                      published_only: bool = True) -> notary.Head | None:
    """The newest head of the partition (None when none covers `covering` leaves)."""
    cur = await conn.execute(
        f"select {HEAD_COLUMNS} from notary.heads where partition = %s and tree_size >= %s "
        + ("and published " if published_only else "") + "order by tree_size desc limit 1", (partition, covering))
    row = await cur.fetchone()
    return _head(row) if row else None


async def first_head(conn: psycopg.AsyncConnection[Any], partition: int, covering: int) -> notary.Head | None:
    """The oldest published head of the partition that covers `covering` leaves (None when none does yet):
    the same head for the same leaves whenever it is asked, however far the tree has grown since."""
    cur = await conn.execute(f"select {HEAD_COLUMNS} from notary.heads where partition = %s and tree_size >= %s "
                             "and published order by tree_size limit 1", (partition, covering))
    row = await cur.fetchone()
    return _head(row) if row else None


async def head_at(conn: psycopg.AsyncConnection[Any], partition: int, tree_size: int) -> notary.Head | None:
    cur = await conn.execute(f"select {HEAD_COLUMNS} from notary.heads where partition = %s and tree_size = %s",
                             (partition, tree_size))
    row = await cur.fetchone()
    return _head(row) if row else None


async def heads(conn: psycopg.AsyncConnection[Any], partition: int, limit: int = 100) -> list[notary.Head]:
    cur = await conn.execute(f"select {HEAD_COLUMNS} from notary.heads where partition = %s and published "
                             "order by tree_size desc limit %s", (partition, limit))
    return [_head(r) for r in await cur.fetchall()]


async def leaves_at(conn: psycopg.AsyncConnection[Any], partition: int, offsets: list[int]) -> dict[int, tuple[int, bytes]]:
    """Kafka offset -> (leaf index, leaf hash) for the offsets the notary has added."""
    cur = await conn.execute("select kafka_offset, leaf_index, leaf_hash from notary.leaves "
                             "where partition = %s and kafka_offset = any(%s)", (partition, offsets))
    return {o: (i, bytes(h)) for o, i, h in await cur.fetchall()}


async def _complete(conn: psycopg.AsyncConnection[Any], partition: int, compute: Any) -> Any:
    """Run a proof computation twice: once to learn which stored hashes it needs, then with them
    (fetched in two queries: leaves, nodes)."""
    ranges = notary.stored_ranges(notary.plan(lambda c: compute(merkle.subtree_from(c))))
    leaf_keys = [i for lv, lo, hi in ranges if lv == 0 for i in range(lo, hi)]
    node_keys = [(lv, i) for lv, lo, hi in ranges if lv > 0 for i in range(lo, hi)]
    stored: dict[tuple[int, int], bytes] = {}
    if leaf_keys:
        cur = await conn.execute("select leaf_index, leaf_hash from notary.leaves where partition = %s "
                                 "and leaf_index = any(%s)", (partition, leaf_keys))
        stored.update({(0, i): bytes(h) for i, h in await cur.fetchall()})
    if node_keys:
        levels, indexes = zip(*node_keys, strict=True)
        cur = await conn.execute("select n.level, n.node_index, n.hash from unnest(%s::smallint[], %s::bigint[]) "
                                 "k(level, node_index) join notary.nodes n on n.partition = %s and n.level = k.level "
                                 "and n.node_index = k.node_index", (list(levels), list(indexes), partition))
        stored.update({(lv, i): bytes(h) for lv, i, h in await cur.fetchall()})
    return compute(merkle.subtree_from(notary.complete_from(stored)))


async def inclusion_proof(conn: psycopg.AsyncConnection[Any], partition: int, leaf_index: int,
                          tree_size: int) -> list[bytes]:
    return await _complete(conn, partition, lambda sub: merkle.inclusion_path(leaf_index, tree_size, sub))  # type: ignore[no-any-return]


async def consistency_proof(conn: psycopg.AsyncConnection[Any], partition: int, size1: int,
                            size2: int) -> list[bytes]:
    return await _complete(conn, partition, lambda sub: merkle.consistency_proof(size1, size2, sub))  # type: ignore[no-any-return]


async def root_at(conn: psycopg.AsyncConnection[Any], partition: int, tree_size: int) -> bytes:
    """MTH of the first tree_size leaves of the partition, from the stored subtrees."""
    if tree_size == 0:
        return merkle.EMPTY_ROOT
    return await _complete(conn, partition, lambda sub: sub(0, tree_size))  # type: ignore[no-any-return]

"""The auditors' routes of the query API (registered by projections/web/api.py with `install`).

  /audit/entities/{entity_id}/history   every event of the entity from the ledger copy by version,
                                        with valid_from (valid time), sequenced_at (ledger time),
                                        partition, offset, hash and the record (public id only),
                                        checked against the Kafka records: the hash chain recomputed
                                        from the log, and "divergences" (empty when copy = log)
  /audit/entities/{entity_id}/as-of     the state folded with evolve; valid_on=YYYY-MM-DD (valid
                                        time) and/or known_at=<ISO time> (ledger time)
  /audit/entities/{entity_id}/proofs    per event: its leaf index and RFC 9162 inclusion proof in
                                        the newest published signed tree head of its partition
                                        (which is included); events not yet under a head: pending
  /audit/heads?partition=P[&limit=N]    the newest published signed tree heads of a partition
  /audit/consistency?partition=P&from=M&to=N   RFC 9162 consistency proof between two tree sizes
  /audit/public-key                     the notary's Ed25519 public key (hex) and key id

The audit bundle (the records' exact bytes, which hold the signed submission and so a natural
person's clear ID number) is not served here: `python -m projections.audit export-bundle`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import psycopg_pool
from aiohttp import web

from ledger.audit.log_reader import LogReader, compare
from ledger.audit.verify import key_id
from ledger.domain import identity
from ledger.platform import config
from ledger.platform.kafka_access import QUERY_API, access
from projections import queries
from projections.audit import reads as audit
from projections.audit.auditor import as_of_json, public_key
from schemas import registry

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READER = web.AppKey("audit_log_reader", LogReader)


def _bad(name: str, why: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(reason=f"bad parameter '{name}': {why}")


def _int(request: web.Request, name: str, default: int | None = None, high: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise _bad(name, "missing")
        return default
    if not re.fullmatch(r"[0-9]{1,18}", raw):
        raise _bad(name, f"'{raw[:40]}' is not a whole number")
    if high is not None and int(raw) > high:
        raise _bad(name, f"{raw} is above {high}")
    return int(raw)


def _entity(request: web.Request) -> str:
    entity_id = request.match_info["entity_id"]
    if not identity.ENTITY_ID.fullmatch(entity_id):
        raise _bad("entity_id", "not an entity id (uscc:<18 characters> or ric:<32 hex digits>)")
    return entity_id


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(queries.plain(data), status=status)


def install(app: web.Application, pool_key: web.AppKey[psycopg_pool.AsyncConnectionPool],
            settings_key: web.AppKey[config.Settings]) -> None:
    """Add the /audit routes, and one Kafka reader for the history check (closed on clean-up)."""
    settings = app[settings_key]
    reader = LogReader(lambda: access(settings, QUERY_API))
    app[READER] = reader

    async def close(app: web.Application) -> None:
        await reader.close()

    app.on_cleanup.append(close)

    async def history(request: web.Request) -> web.Response:
        entity_id = _entity(request)
        async with request.app[pool_key].connection() as conn:
            rows = await audit.history(conn, entity_id)
            if not rows:
                return _json({"error": "unknown entity", "entity_id": entity_id}, 404)
            p = rows[0]["partition"]
            offsets = [r["offset"] for r in rows]
            leaves = await audit.leaves_at(conn, p, offsets)
        log_records = await request.app[READER].records(p, offsets)
        return _json({"entity_id": entity_id, "events": rows, "checked_against_log": len(log_records),
                      "divergences": compare(entity_id, rows, log_records, leaves)})

    async def as_of(request: web.Request) -> web.Response:
        entity_id = _entity(request)
        valid_on, known_at = request.query.get("valid_on"), request.query.get("known_at")
        try:
            day = date.fromisoformat(valid_on) if valid_on else None
        except ValueError:
            raise _bad("valid_on", f"'{valid_on[:40]}' is not a date YYYY-MM-DD") from None  # type: ignore[index]
        try:
            moment = datetime.fromisoformat(known_at.replace("Z", "+00:00")) if known_at else None
        except ValueError:
            raise _bad("known_at", f"'{known_at[:40]}' is not an ISO time") from None  # type: ignore[index]
        if moment is not None and moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        async with request.app[pool_key].connection() as conn:
            result, total = await audit.as_of(conn, entity_id, day, moment)
        if total == 0:
            return _json({"error": "unknown entity", "entity_id": entity_id}, 404)
        return _json(as_of_json(entity_id, day, moment, result, total))

    async def proofs(request: web.Request) -> web.Response:
        entity_id = _entity(request)
        async with request.app[pool_key].connection() as conn:
            rows = await audit.history(conn, entity_id)
            if not rows:
                return _json({"error": "unknown entity", "entity_id": entity_id}, 404)
            p = rows[0]["partition"]
            leaves = await audit.leaves_at(conn, p, [r["offset"] for r in rows])
            head = await audit.latest_head(conn, p)
            events = []
            for r in rows:
                leaf = leaves.get(r["offset"])
                item = {"version": r["version"], "partition": p, "offset": r["offset"], "hash": r["hash"]}
                if leaf is None or head is None or leaf[0] >= head.tree_size:
                    events.append({**item, "pending": "not yet under a published tree head"})
                    continue
                proof = await audit.inclusion_proof(conn, p, leaf[0], head.tree_size)
                events.append({**item, "leaf_index": leaf[0], "leaf_hash": leaf[1],
                               "inclusion_proof": [h.hex() for h in proof]})
        return _json({"entity_id": entity_id, "tree_head": head.to_json() if head else None, "events": events})

    def _partition(request: web.Request) -> int:
        return _int(request, "partition", high=registry.EVENTS.partitions - 1)

    async def heads(request: web.Request) -> web.Response:
        p, limit = _partition(request), _int(request, "limit", 20, 1000)
        async with request.app[pool_key].connection() as conn:
            return _json({"partition": p, "heads": [h.to_json() for h in await audit.heads(conn, p, limit)]})

    async def consistency(request: web.Request) -> web.Response:
        p, m, n = _partition(request), _int(request, "from"), _int(request, "to")
        if m > n:
            raise _bad("from", f"{m} is larger than to={n}")
        async with request.app[pool_key].connection() as conn:
            newest = await audit.latest_head(conn, p, published_only=False)
            if newest is None or n > newest.tree_size:
                raise _bad("to", f"the notary's tree of partition {p} has no head of size {n} or more yet")
            proof = await audit.consistency_proof(conn, p, m, n)
            first, second = await audit.head_at(conn, p, m), await audit.head_at(conn, p, n)
        return _json({"partition": p, "from": m, "to": n, "proof": [h.hex() for h in proof],
                      "from_head": first.to_json() if first else None, "to_head": second.to_json() if second else None})

    async def key(request: web.Request) -> web.Response:
        pub = public_key(request.app[settings_key])
        return _json({"public_key": pub, "key_id": key_id(pub), "algorithm": "Ed25519"})

    for path, handler in (("/audit/entities/{entity_id}/history", history), ("/audit/entities/{entity_id}/as-of", as_of),
                          ("/audit/entities/{entity_id}/proofs", proofs), ("/audit/heads", heads),
                          ("/audit/consistency", consistency), ("/audit/public-key", key)):
        app.router.add_get(path, handler)

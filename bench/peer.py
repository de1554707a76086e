"""The peer to beat: the Python `eventsourcing` library with its PostgreSQL recorder.

The same credit events are appended one entity at a time, the way an eventsourcing application
does it: the aggregate takes the event (its version is checked by the recorder's unique
(originator_id, originator_version) constraint) and `app.save(aggregate)` commits it in its own
transaction. Aggregates stay in memory, so no replay is counted against the peer. With several
writers (`append_concurrently`) the entities are split between threads, each with its own
application.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from ledger.platform import config

PEER_DATABASE = "eventsourcing_peer"


class CreditEntity(Aggregate):
    @event("Opened")
    def __init__(self, entity_key: str) -> None:
        self.entity_key = entity_key
        self.events = 0

    @event("Recorded")
    def record(self, event_type: str, event_id: str, payload: dict[str, Any]) -> None:
        self.events += 1


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _fresh_database(s: config.Settings) -> None:
    with psycopg.connect(s.pg_admin_dsn, autocommit=True) as conn:
        conn.execute(f"drop database if exists {PEER_DATABASE} with (force)")
        conn.execute(f"create database {PEER_DATABASE}")


Prepared = tuple[str, str, str, dict[str, Any]]


def _application(s: config.Settings) -> Application:
    return Application(env={
        "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": PEER_DATABASE,
        "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(s.pg_port), "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "unused-trust-auth", "CREATE_TABLE": "y",
    })


def _prepare(records: Iterable[dict[str, Any]]) -> list[Prepared]:
    return [(r["envelope"]["subject"]["id"], r["envelope"]["event_type"], r["envelope"]["event_id"],
             _jsonable({k: v for k, v in r.items() if k != "envelope"})) for r in records]


def _append(app: Application, prepared: list[Prepared]) -> None:
    aggregates: dict[str, CreditEntity] = {}
    for key, event_type, event_id, payload in prepared:
        agg = aggregates.get(key)
        if agg is None:
            agg = aggregates[key] = CreditEntity(entity_key=key)  # its Opened event is saved with the first
        agg.record(event_type, event_id, payload)
        app.save(agg)


def append_one_entity_at_a_time(s: config.Settings, records: Iterable[dict[str, Any]]) -> tuple[int, float]:
    """Append every record through eventsourcing + PostgreSQL; returns (events, seconds)."""
    return append_concurrently(s, records, 1)


def append_concurrently(s: config.Settings, records: Iterable[dict[str, Any]], writers: int) -> tuple[int, float]:
    """The same with `writers` threads, each with its own application (and connection pool) and its
    own share of the entities, so that every aggregate has one writer, as an eventsourcing
    deployment with several workers would split them; a fresh database each time. Returns (events,
    seconds from the first append to the last commit). psycopg releases the GIL while PostgreSQL
    works, so the threads overlap their transactions."""
    _fresh_database(s)
    prepared = _prepare(records)
    shards: list[list[Prepared]] = [[] for _ in range(writers)]
    for item in prepared:
        shards[zlib.crc32(item[0].encode()) % writers].append(item)
    apps = [_application(s) for _ in range(writers)]  # one after the other: the first creates the table
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(writers) as pool:
            list(pool.map(_append, apps, shards))
        elapsed = time.perf_counter() - started
    finally:
        for app in apps:
            app.close()
    return len(prepared), elapsed

"""The peer to beat: the Python `eventsourcing` library with its PostgreSQL recorder.

The same credit events are appended one entity at a time, the way an eventsourcing application
does it: the aggregate takes the event (its version is checked by the recorder's unique
(originator_id, originator_version) constraint) and `app.save(aggregate)` commits it in its own
transaction. Aggregates stay in memory, so no replay is counted against the peer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
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


def append_one_entity_at_a_time(s: config.Settings, records: Iterable[dict[str, Any]]) -> tuple[int, float]:
    """Append every record through eventsourcing + PostgreSQL; returns (events, seconds)."""
    _fresh_database(s)
    app = Application(env={
        "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": PEER_DATABASE,
        "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(s.pg_port), "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "unused-trust-auth", "CREATE_TABLE": "y",
    })
    prepared = [(r["envelope"]["subject"]["id"], r["envelope"]["event_type"], r["envelope"]["event_id"],
                 _jsonable({k: v for k, v in r.items() if k != "envelope"})) for r in records]
    aggregates: dict[str, CreditEntity] = {}
    started = time.perf_counter()
    for key, event_type, event_id, payload in prepared:
        agg = aggregates.get(key)
        if agg is None:
            agg = aggregates[key] = CreditEntity(entity_key=key)  # its Opened event is saved with the first
        agg.record(event_type, event_id, payload)
        app.save(agg)
    elapsed = time.perf_counter() - started
    app.close()
    return len(prepared), elapsed

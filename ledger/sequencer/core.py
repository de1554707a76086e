"""The sequencer's judgement of one submission, without Kafka: verify, decode, decide, version, chain.

`Sequencing.judge(...)` returns a `Verdict`; the Kafka runner (ledger/sequencer/service.py) writes what the
verdict says (ledger entry, outcome, changelog records) in one transaction, then calls `commit()`
so that the partitions' state stores follow only what Kafka committed. `rollback()` forgets a batch.

The state of each owned partition lives in a `StateStore` (ledger/sequencer/store.py: RocksDB on local
disk); in memory there are only the open batch's changes (`Changes`, bounded by the batch) and a
bounded LRU cache of parsed entity states (`cache_entities`). Reads miss to the store.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol

import orjson

from ledger.domain.decide import decide
from ledger.domain.errors import Rejection
from ledger.domain.model import EntityState, evolve
from ledger.domain.rulebook import RuleBook
from ledger.records import chain, submissions

UNPLACED = -1  # the ledger offset of an event accepted in the open batch, until its entry is written


class Seen(NamedTuple):
    content_hash: bytes
    entity_id: str
    entity_version: int
    ledger_partition: int
    ledger_offset: int


@dataclass
class Verdict:
    status: str  # ACCEPTED | DUPLICATE | REJECTED | CONFLICT
    event_id: str
    entity_id: str | None = None
    entry: dict[str, Any] | None = None  # the sealed ledger entry, for ACCEPTED
    entry_bytes: bytes = b""  # ... and its framed LedgerEntry record
    seen: Seen | None = None  # the original, for DUPLICATE / CONFLICT
    reasons: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    content_hash: bytes = b""
    state: EntityState | None = None  # state after the event, for ACCEPTED


@dataclass
class Changes:
    """Changes of one partition's state: an open batch's, or a chunk of the changelog being restored.
    Entity id -> (state, or its canonical JSON, last hash); event id -> Seen."""

    entities: dict[str, tuple[EntityState | str, bytes]] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entities) + len(self.seen)


class StateStore(Protocol):
    """One partition's committed state (ledger/sequencer/store.py keeps it in RocksDB)."""

    def checkpoint(self) -> int | None:
        """The first changelog offset the state does NOT cover (None: nothing applied yet)."""

    def get_entity(self, entity_id: str) -> tuple[str, bytes] | None:
        """The entity's state as canonical JSON and its last hash, or None for a new entity."""

    def get_seen(self, event_id: str) -> Seen | None:
        """The accepted event that holds this id, or None."""

    def apply_batch(self, changes: Changes, changelog_offset: int) -> None:
        """Apply the changes and record the changelog offset they bring the state to, atomically."""

    def close(self) -> None: ...


def changes_of(records: Iterable[dict[str, Any]]) -> Changes:
    """The changes that changelog records (SequencerState values, oldest first) make; later ones win."""
    out = Changes()
    for r in records:
        if r["entity"] is not None:
            e = r["entity"]
            out.entities[e["entity_id"]] = (e["state_json"], bytes(e["last_hash"]))
        if r["seen"] is not None:
            s = r["seen"]
            out.seen[s["event_id"]] = Seen(bytes(s["content_hash"]), s["entity_id"], s["entity_version"],
                                           s["ledger_partition"], s["ledger_offset"])
    return out


class Sequencing:
    """``today`` gives the China Standard Time date a decision is judged against (a decision dated
    after it is refused as future-dated) and ``now`` the aware moment stamped on entries and
    outcomes; the composition root passes the process's clock (ledger/platform/clock.py)."""

    def __init__(self, public_keys: dict[str, str], pepper: bytes, rules: RuleBook, *,
                 today: Callable[[], date], now: Callable[[], datetime], cache_entities: int = 2_000) -> None:
        self.public_keys = public_keys
        self.pepper = pepper
        self.rules = rules
        self._today = today
        self.now = now
        self.stores: dict[int, StateStore] = {}  # the committed state of each owned, restored partition
        # tentative changes of the open batch, per partition (bounded by the batch)
        self._pending: dict[int, Changes] = {}
        # committed entity states recently judged, parsed: (partition, entity id) -> (state, last hash)
        self.cache_entities = cache_entities
        self._cache: OrderedDict[tuple[int, str], tuple[EntityState, bytes]] = OrderedDict()

    # ------------------------------------------------------------------ state
    def attach(self, partition: int, store: StateStore) -> None:
        """The partition's state is restored in `store`: judge it from now on."""
        self.stores[partition] = store

    def ready(self, partition: int) -> bool:
        """True once the partition's state is restored (it is judged only then)."""
        return partition in self.stores

    def forget(self, partition: int) -> StateStore | None:
        """Stop judging a partition; returns its store (for the caller to close)."""
        self._pending.pop(partition, None)
        for k in [k for k in self._cache if k[0] == partition]:
            del self._cache[k]
        return self.stores.pop(partition, None)

    def _entity(self, partition: int, entity_id: str) -> tuple[EntityState, bytes]:
        pending = self._pending.get(partition)
        if pending and entity_id in pending.entities:
            state, last_hash = pending.entities[entity_id]
            assert isinstance(state, EntityState)
            return state, last_hash
        cached = self._cache.get((partition, entity_id))
        if cached is not None:
            self._cache.move_to_end((partition, entity_id))
            return cached
        stored = self.stores[partition].get_entity(entity_id)
        if stored is None:
            return EntityState(), chain.GENESIS
        found = (EntityState.from_json(stored[0]), stored[1])
        self._remember(partition, entity_id, found)
        return found

    def _remember(self, partition: int, entity_id: str, value: tuple[EntityState, bytes]) -> None:
        self._cache[(partition, entity_id)] = value
        self._cache.move_to_end((partition, entity_id))
        while len(self._cache) > self.cache_entities:
            self._cache.popitem(last=False)

    def seen(self, partition: int, event_id: str) -> Seen | None:
        """The event that holds this id (its ledger offset UNPLACED until record_position): looked up in the submission's own partition first (every
        resubmission lands there: same content, same subject), then in every other partition this
        process holds, so that an id reused for a subject of another partition is a conflict too."""
        for p in (partition, *(q for q in self.stores if q != partition)):
            pending = self._pending.get(p)
            if pending and event_id in pending.seen:
                return pending.seen[event_id]
            store = self.stores.get(p)
            seen = store.get_seen(event_id) if store is not None else None
            if seen is not None:
                return seen
        return None

    def commit(self, changelog_offsets: dict[int, int]) -> None:
        """The open batch's Kafka transaction committed: write each partition's changes to its store
        with the partition's changelog offset after the batch (`changelog_offsets`), one atomic write
        per partition."""
        for p, pending in self._pending.items():
            store = self.stores.get(p)
            if store is None or not pending:  # revoked while the batch was in flight: restored if it comes back
                continue
            store.apply_batch(pending, changelog_offsets[p])
            for entity_id, (state, last_hash) in pending.entities.items():
                assert isinstance(state, EntityState)
                self._remember(p, entity_id, (state, last_hash))
        self._pending.clear()

    def rollback(self) -> None:
        self._pending.clear()

    def record_position(self, partition: int, verdict: Verdict, offset: int) -> Seen:
        """After the ledger entry got its offset: remember the event id with its position."""
        assert verdict.entry is not None and verdict.entity_id is not None
        seen = Seen(verdict.content_hash, verdict.entity_id, verdict.entry["entity_version"], partition, offset)
        self._pending.setdefault(partition, Changes()).seen[verdict.event_id] = seen
        return seen

    # ------------------------------------------------------------------ judgement
    def judge(self, partition: int, offset: int, key: bytes | None, value: bytes,
              headers: dict[str, bytes], verified: bool | None = None) -> Verdict:
        content_hash = hashlib.sha256(value).digest()
        try:
            # judged under the newest version of every rules file; the entry names them (rules_versions)
            sub = submissions.open_submission(key, value, headers, self.public_keys, self.pepper,
                                              self.rules.departments, partition, verified,
                                              rules_versions=self.rules.stamp)
        except submissions.Refused as refused:
            return Verdict("REJECTED", refused.event_id, reasons=[refused.reason], content_hash=content_hash)
        event = sub.event
        seen = self.seen(partition, event.event_id)
        if seen is not None and seen.entity_id != event.entity_id:
            # the id holds an event about another subject: a conflict, answered about this submission's
            # own subject (the outcome names neither the other subject nor its version)
            where = (f"{seen.ledger_partition}:{seen.ledger_offset}" if seen.ledger_offset >= 0
                     else "本批次 / this batch")
            return Verdict("CONFLICT", event.event_id, entity_id=event.entity_id, reasons=[Rejection(
                "event_id", "event_id.conflict",
                f"事件编号 {event.event_id} 已被关于另一主体的事件使用（账本位置 {where}），请为本事件另取编号 "
                f"(this event id was already used for an event about another subject, at ledger position "
                f"{where}; give this event an id of its own)")], content_hash=content_hash)
        if seen is not None:
            status = "DUPLICATE" if seen.content_hash == content_hash else "CONFLICT"
            reasons = [] if status == "DUPLICATE" else [Rejection(
                "event_id", "event_id.conflict",
                f"事件编号 {event.event_id} 已被另一内容不同的事件使用 "
                f"(this event id was already used for an event with other content)")]
            return Verdict(status, event.event_id, entity_id=seen.entity_id, seen=seen, reasons=reasons,
                           content_hash=content_hash)
        state, last_hash = self._entity(partition, event.entity_id)
        try:
            warnings = sub.warnings + decide(state, event, self._today(), self.rules.publication,
                                            self.rules.catalogue, requests=self.rules.objections,
                                            key_persons=self.rules.key_persons, releases=self.rules.releases)
        except Rejection as r:
            return Verdict("REJECTED", event.event_id, entity_id=event.entity_id, reasons=[r],
                           content_hash=content_hash)
        new_state = evolve(state, event)
        entry = {
            "entity_id": event.entity_id, "entity_version": new_state.version, "event_id": event.event_id,
            "event_type": event.event_type, "category": sub.category, "department": event.department,
            "sequenced_at": self.now(), "submission_partition": partition, "submission_offset": offset,
            "warnings": warnings, "rules_versions": event.rules_versions, "submission": value, "signature": headers.get("signature", b""),
            "signer": headers["signer"].decode() if headers.get("signer") else "",
            "batch_proof": headers.get("batch", b""), "client_signature": headers.get("client-signature", b""),
            "client_body": headers.get("client-body", b""),
            "prev_hash": last_hash, "hash": b"",
        }
        entry_bytes = chain.seal(entry)
        pending = self._pending.setdefault(partition, Changes())
        pending.entities[event.entity_id] = (new_state, entry["hash"])
        # the id is taken from now on, also for the rest of this batch; its ledger offset is known once
        # the entry is written (record_position)
        pending.seen[event.event_id] = Seen(content_hash, event.entity_id, new_state.version, partition, UNPLACED)
        return Verdict("ACCEPTED", event.event_id, entity_id=event.entity_id, entry=entry, entry_bytes=entry_bytes,
                       warnings=warnings, content_hash=content_hash, state=new_state)


def outcome_record(v: Verdict, ledger_partition: int | None, ledger_offset: int | None,
                   decided_at: datetime) -> dict[str, Any]:
    version = v.entry["entity_version"] if v.entry else (v.seen.entity_version if v.seen else None)
    return {
        "event_id": v.event_id, "status": v.status, "entity_id": v.entity_id, "entity_version": version,
        "ledger_partition": ledger_partition, "ledger_offset": ledger_offset,
        "reasons": [{"field": r.field, "code": r.code, "message": r.message} for r in v.reasons],
        "warnings": v.warnings, "decided_at": decided_at,
    }


def entity_record(v: Verdict) -> tuple[str, dict[str, Any]]:
    """The changelog record of an entity's state after an accepted event (only the last of a batch
    per entity needs writing: compaction keeps the last value of a key anyway)."""
    assert v.entry is not None and v.state is not None and v.entity_id is not None
    assert v.state.version == v.entry["entity_version"]
    return f"entity:{v.entity_id}", _entity_value(v.entity_id, v.state, v.entry["hash"])


def seen_record(v: Verdict, seen: Seen) -> tuple[str, dict[str, Any]]:
    """The changelog record that remembers an accepted event id, forever."""
    return f"event:{v.event_id}", _seen_value(v.event_id, seen)


def _entity_value(entity_id: str, state: EntityState, last_hash: bytes) -> dict[str, Any]:
    return {"entity": {"entity_id": entity_id, "version": state.version, "last_hash": last_hash,
                       "state_json": state_text(state)}, "seen": None}


def state_text(state: EntityState) -> str:
    """The state's canonical JSON (the same text as EntityState.to_json), written by orjson: the
    sequencer writes it twice per entity and batch (changelog and store)."""
    return orjson.dumps(state.as_plain(), option=orjson.OPT_SORT_KEYS).decode()


def _seen_value(event_id: str, s: Seen) -> dict[str, Any]:
    return {"entity": None, "seen": {
        "event_id": event_id, "content_hash": s.content_hash, "entity_id": s.entity_id,
        "entity_version": s.entity_version, "ledger_partition": s.ledger_partition,
        "ledger_offset": s.ledger_offset}}


def changelog_records(v: Verdict, seen: Seen) -> list[tuple[str, dict[str, Any]]]:
    return [entity_record(v), seen_record(v, seen)]

"""The sequencer's judgement of one submission, without Kafka: verify, decode, decide, version, chain.

`Sequencing.judge(...)` returns a `Verdict`; the Kafka runner (ledger/sequencer/service.py) writes what the
verdict says (ledger entry, outcome, changelog records) in one transaction, then calls `commit()`
so that the in-memory state follows only what Kafka committed. `rollback()` forgets a batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, NamedTuple

from ledger.domain.decide import decide
from ledger.domain.errors import Rejection
from ledger.domain.model import EntityState, evolve
from ledger.domain.rulebook import RuleBook
from ledger.records import chain, submissions

UNPLACED = -1  # the ledger offset of an event accepted in the open batch, until its entry is written


class Seen(NamedTuple):  # a tuple: half a million of them are built at each restore
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
class PartitionState:
    # id -> (state, last hash); a restored state stays canonical JSON until the entity's next event
    entities: dict[str, tuple[EntityState | str, bytes]] = field(default_factory=dict)
    seen: dict[str, Seen] = field(default_factory=dict)


class Sequencing:
    """``today`` gives the China Standard Time date a decision is judged against (a decision dated
    after it is refused as future-dated) and ``now`` the aware moment stamped on entries and
    outcomes; the composition root passes the process's clock (ledger/platform/clock.py)."""

    def __init__(self, public_keys: dict[str, str], pepper: bytes, rules: RuleBook, *,
                 today: Callable[[], date], now: Callable[[], datetime]) -> None:
        self.public_keys = public_keys
        self.pepper = pepper
        self.rules = rules
        self._today = today
        self.now = now
        self.partitions: dict[int, PartitionState] = {}
        # tentative changes of the open batch: partition -> entity -> (state, hash); partition -> seen
        self._pending: dict[int, PartitionState] = {}

    # ------------------------------------------------------------------ state
    def restore(self, partition: int, records: list[dict[str, Any]], base: PartitionState | None = None) -> None:
        """Rebuild a partition's state from its changelog records, oldest first, applied on top of
        ``base`` (a snapshot of the state before the first of them) or on nothing."""
        ps = base if base is not None else PartitionState()
        for r in records:
            if r["entity"] is not None:
                e = r["entity"]
                ps.entities[e["entity_id"]] = (e["state_json"], bytes(e["last_hash"]))  # parsed when needed
            if r["seen"] is not None:
                s = r["seen"]
                ps.seen[s["event_id"]] = Seen(bytes(s["content_hash"]), s["entity_id"], s["entity_version"],
                                              s["ledger_partition"], s["ledger_offset"])
        self.partitions[partition] = ps

    def frozen_state(self, partition: int) -> PartitionState:
        """A copy of a partition's committed state that later batches do not change (its values are
        immutable), for writing a snapshot outside the event loop."""
        ps = self.partitions[partition]
        return PartitionState(dict(ps.entities), dict(ps.seen))

    def ready(self, partition: int) -> bool:
        """True once the partition's state is restored (it is judged only then)."""
        return partition in self.partitions

    def forget(self, partition: int) -> None:
        self.partitions.pop(partition, None)
        self._pending.pop(partition, None)

    def _entity(self, partition: int, entity_id: str) -> tuple[EntityState, bytes]:
        pending = self._pending.get(partition)
        if pending and entity_id in pending.entities:
            return pending.entities[entity_id]
        committed = self.partitions[partition].entities
        state, last_hash = committed.get(entity_id, (EntityState(), chain.GENESIS))
        if isinstance(state, str):
            state = EntityState.from_json(state)
            committed[entity_id] = (state, last_hash)
        return state, last_hash

    def seen(self, partition: int, event_id: str) -> Seen | None:
        """The event that holds this id (its ledger offset UNPLACED until record_position): looked up in the submission's own partition first (every
        resubmission lands there: same content, same subject), then in every other partition this
        process holds, so that an id reused for a subject of another partition is a conflict too."""
        for p in (partition, *(q for q in self.partitions if q != partition)):
            pending = self._pending.get(p)
            if pending and event_id in pending.seen:
                return pending.seen[event_id]
            seen = self.partitions[p].seen.get(event_id)
            if seen is not None:
                return seen
        return None

    def commit(self) -> None:
        for p, pending in self._pending.items():
            ps = self.partitions.get(p)
            if ps is None:  # revoked while the batch was in flight: restored from the changelog if it comes back
                continue
            ps.entities.update(pending.entities)
            ps.seen.update(pending.seen)
        self._pending.clear()

    def rollback(self) -> None:
        self._pending.clear()

    def record_position(self, partition: int, verdict: Verdict, offset: int) -> Seen:
        """After the ledger entry got its offset: remember the event id with its position."""
        assert verdict.entry is not None and verdict.entity_id is not None
        seen = Seen(verdict.content_hash, verdict.entity_id, verdict.entry["entity_version"], partition, offset)
        self._pending.setdefault(partition, PartitionState()).seen[verdict.event_id] = seen
        return seen

    # ------------------------------------------------------------------ judgement
    def judge(self, partition: int, offset: int, key: bytes | None, value: bytes,
              headers: dict[str, bytes], verified: bool | None = None) -> Verdict:
        content_hash = hashlib.sha256(value).digest()
        try:
            sub = submissions.open_submission(key, value, headers, self.public_keys, self.pepper,
                                              self.rules.departments, partition, verified)
        except submissions.Refused as refused:
            return Verdict("REJECTED", refused.event_id, reasons=[refused.reason], content_hash=content_hash)
        # judged under the newest version of every rules file; the entry names them (rules_versions)
        event = replace(sub.event, rules_versions=self.rules.stamp)
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
                                            self.rules.catalogue)
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
        pending = self._pending.setdefault(partition, PartitionState())
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
                       "state_json": state.to_json()}, "seen": None}


def _seen_value(event_id: str, s: Seen) -> dict[str, Any]:
    return {"entity": None, "seen": {
        "event_id": event_id, "content_hash": s.content_hash, "entity_id": s.entity_id,
        "entity_version": s.entity_version, "ledger_partition": s.ledger_partition,
        "ledger_offset": s.ledger_offset}}


def changelog_records(v: Verdict, seen: Seen) -> list[tuple[str, dict[str, Any]]]:
    return [entity_record(v), seen_record(v, seen)]

"""Fold a batch of ledger records into row operations for the read models (no I/O).

The fold uses the domain's own `evolve`, so the views see exactly the state the sequencer judged
with. For each batch it returns what to write: the ledger copy, the final state and row of every
entity touched, list entries and publicity records to insert or to update, quarantined records,
and the new positions. An (entity, version) already applied is skipped; a record that cannot be
decoded is quarantined with its provenance and its entity is held back from then on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from ledger.domain import identity, lists
from ledger.domain.model import EntityState, Event, evolve
from ledger.domain.rules import Rules
from projections import grade as grading
from projections import publicity
from schemas import registry

CHINA = timezone(timedelta(hours=8))


@dataclass
class Incoming:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


@dataclass
class Loaded:
    """What the fold needs from the database for the entities of a batch."""

    states: dict[str, tuple[int, EntityState]]  # entity -> (version, state)
    held: set[str]


@dataclass
class Ops:
    ledger_copy: list[tuple[Any, ...]] = field(default_factory=list)
    states: dict[str, tuple[int, str]] = field(default_factory=dict)
    entities: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    list_inserts: list[tuple[Any, ...]] = field(default_factory=list)
    list_updates: list[tuple[Any, ...]] = field(default_factory=list)  # (status, ended_on, entity, kind, ref)
    publicity_inserts: list[tuple[Any, ...]] = field(default_factory=list)
    publicity_updates: list[tuple[Any, ...]] = field(default_factory=list)  # (status, ended_on, entity, kind, ref)
    quarantine: list[tuple[Any, ...]] = field(default_factory=list)
    held: list[tuple[Any, ...]] = field(default_factory=list)
    positions: dict[int, tuple[int, datetime]] = field(default_factory=dict)
    applied: int = 0
    skipped: int = 0


def entity_keys(batch: list[Incoming]) -> set[str]:
    return {m.key.decode(errors="replace") for m in batch if m.key is not None}


class Folder:
    def __init__(self, rules: Rules, grade_rules: grading.GradeRules) -> None:
        self.rules = rules
        self.grade_rules = grade_rules

    def fold(self, batch: list[Incoming], loaded: Loaded) -> Ops:
        ops = Ops()
        states = dict(loaded.states)
        held = set(loaded.held)
        touched: dict[str, dict[str, Any]] = {}
        for m in batch:
            ts = datetime.fromtimestamp(m.timestamp_ms / 1000, UTC)
            ops.positions[m.partition] = (m.offset + 1, ts)
            key = m.key.decode(errors="replace") if m.key is not None else None
            if key is not None and key in held:
                ops.quarantine.append((m.partition, m.offset, key, "held_back",
                                       "an earlier record of this entity is quarantined", m.value))
                continue
            try:
                _, entry = registry.decode(m.value, "LedgerEntry")
                _, rec = registry.decode(entry["submission"])
            except registry.SchemaError as exc:
                reason = "unknown_schema" if "unknown schema id" in str(exc) else "undecodable"
                ops.quarantine.append((m.partition, m.offset, key, reason, str(exc), m.value))
                if key is not None:
                    held.add(key)
                    ops.held.append((key, m.partition, m.offset))
                continue
            eid = entry["entity_id"]
            version, state = states.get(eid, (0, EntityState()))
            if entry["entity_version"] <= version:
                ops.skipped += 1
                continue
            if entry["entity_version"] != version + 1:
                ops.quarantine.append((m.partition, m.offset, eid, "version_gap",
                                       f"version {entry['entity_version']} after {version}", m.value))
                held.add(eid)
                ops.held.append((eid, m.partition, m.offset))
                continue
            event = ledger_event(entry, rec)
            new_state = evolve(state, event)
            states[eid] = (new_state.version, new_state)
            public = public_subject(rec)
            info = touched.setdefault(eid, {"first_seen": entry["sequenced_at"]})
            info.update(category=entry["category"], id_type=public["id_type"], public_id=public["id"],
                        name=public["name"], last_change=entry["sequenced_at"], last_event_type=entry["event_type"])
            ops.ledger_copy.append((
                eid, entry["entity_version"], entry["event_id"], entry["event_type"], entry["category"],
                entry["department"], m.partition, m.offset, entry["hash"], entry["sequenced_at"],
                rec["envelope"]["valid_from"], _dumps(_masked(rec)),
            ))
            self._lists(ops, event, entry, public, state, new_state)
            self._publicity(ops, entry, rec, public)
            ops.applied += 1
        for eid, info in touched.items():
            version, state = states[eid]
            ops.states[eid] = (version, state.to_json())  # once per entity and batch
            g = grading.grade(state, self.grade_rules)
            ops.entities[eid] = (
                eid, info["category"], info["id_type"], info["public_id"], info["name"], version,
                info["first_seen"], info["last_change"], info["last_event_type"],
                json.dumps(dict(state.counts), sort_keys=True),
                sorted({x["list_kind"] for x in state.active_listings()}),
                state.honours > 0, state.registered_on, g.score, g.grade,
                json.dumps([{"code": r.code, "text": r.text_zh, "points": r.points, "ref": r.ref} for r in g.reasons],
                           ensure_ascii=False),
            )
        return ops

    # ---------------------------------------------------------------- lists
    def _lists(self, ops: Ops, event: Event, entry: dict[str, Any], public: dict[str, str],
               before: EntityState, after: EntityState) -> None:
        change = lists.list_change(event, before, after, self.rules.publication)
        if change is None:
            return
        eid = entry["entity_id"]
        if change.active:
            ops.list_inserts.append((eid, change.list_kind, change.ref, change.colour, change.reason,
                                     change.department, change.listed_on, change.legal_end, "active", None,
                                     change.event_id, public["name"], public["id"], entry["category"]))
        else:
            ops.list_updates.append((change.status, change.ended_on, eid, change.list_kind, change.ref))

    # ---------------------------------------------------------------- double publicity
    def _publicity(self, ops: Ops, entry: dict[str, Any], rec: dict[str, Any], public: dict[str, str]) -> None:
        t, eid = entry["event_type"], entry["entity_id"]
        if t in ("AdministrativePenaltyImposed", "AdministrativeLicenceGranted"):
            kind = "penalty" if t == "AdministrativePenaltyImposed" else "licence"
            ref = rec["decision_no"] if kind == "penalty" else rec["licence_no"]
            ledger_date = entry["sequenced_at"].astimezone(CHINA).date()
            late = publicity.lateness(self.rules.calendar, rec["decision_date"], ledger_date)
            if kind == "penalty":
                w = publicity.publication_window(self.rules.publication, rec["decision_date"], rec["severity"])
                window = (w.start, w.earliest_repair, w.automatic_end)
                status = "published"
            else:
                w = publicity.licence_window(rec["decision_date"], rec.get("valid_to"))
                window = (w.start, None, w.automatic_end)
                status = "valid"
            national = publicity.national_fields(t, {k: v for k, v in rec.items() if k != "envelope"},
                                                 rec["envelope"])
            ops.publicity_inserts.append((
                entry["event_id"], eid, kind, ref, _dumps(national),
                entry["department"], rec["decision_date"], ledger_date, late.deadline, late.working_days_taken,
                late.late, *window, status, None, public["name"], public["id"], entry["category"],
            ))
        elif t == "AdministrativePenaltyRevoked":
            ops.publicity_updates.append(("revoked", rec["decision_date"], eid, "penalty", rec["penalty_decision_no"]))
        elif t == "AdministrativeLicenceRevoked":
            ops.publicity_updates.append(("revoked", rec["decision_date"], eid, "licence", rec["licence_no"]))
        elif t == "CreditRepaired" and rec["target_kind"] == "administrative_penalty":
            ops.publicity_updates.append(("repaired", rec["decision_date"], eid, "penalty", rec["target_ref"]))
        elif t == "ListingExpired" and rec["list_kind"] == "administrative_penalty_publication":
            ops.publicity_updates.append(("expired", rec["expired_on"], eid, "penalty", rec["target_ref"]))


def ledger_event(entry: dict[str, Any], rec: dict[str, Any]) -> Event:
    env = rec["envelope"]
    return Event(event_id=entry["event_id"], event_type=entry["event_type"], entity_id=entry["entity_id"],
                 department=entry["department"], valid_from=env["valid_from"], valid_to=env.get("valid_to"),
                 recorded_at=env["recorded_at"], body={k: v for k, v in rec.items() if k != "envelope"})


def public_subject(rec: dict[str, Any]) -> dict[str, str]:
    s = rec["envelope"]["subject"]
    shown = identity.mask_ric(identity.normalise(s["id"])) if s["id_type"] == "RIC" else identity.normalise(s["id"])
    return {"id": shown, "id_type": s["id_type"], "name": s["name"]}


def _masked(rec: dict[str, Any]) -> dict[str, Any]:
    """The record with the subject's identifier in its public form (no clear ID number in PostgreSQL)."""
    env = rec["envelope"]
    return {**rec, "envelope": {**env, "subject": {**env["subject"], "id": public_subject(rec)["id"]}}}


def _json_default(v: Any) -> Any:
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _dumps(v: Any) -> str:
    """JSON for jsonb columns: dates as ISO strings, bytes as hex (the C encoder calls back only for them)."""
    return json.dumps(v, ensure_ascii=False, default=_json_default)

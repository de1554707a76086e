"""The list keeper's state and its one step, without Kafka: ledger entry in, list feed records out.

Per entity it holds what the list feeds need: the active black listings in the shape of
`EntityState.listings` (so the domain's `evolve` and `lists.list_change` work on it unchanged), the
active red-list honours, and the entity version of the last list event applied (a redelivered
entry at or below it is skipped). The state is exactly what credit.lists.current holds, so the keeper
restores a partition from that compacted topic on assignment, never by reading the ledger again.

Changes are staged per batch and kept only on `commit()` (after the Kafka transaction committed);
`rollback()` forgets them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from ledger.domain import lists
from ledger.domain.model import EntityState, evolve
from ledger.domain.rulebook import RuleBook
from ledger.records.events import judged_versions
from projections.rows import ledger_event, public_subject

TERMS = ("ground", "period_months", "extension_months")


@dataclass
class _Entity:
    partition: int
    version: int = 0
    state: EntityState = field(default_factory=EntityState)  # only `listings` (active ones) is kept
    red: dict[str, dict[str, Any]] = field(default_factory=dict)  # document no -> ListStatusEntry

    def copy(self) -> _Entity:
        return _Entity(self.partition, self.version, self.state, dict(self.red))

    def active_kinds(self) -> list[str]:
        kinds = {x["list_kind"] for x in self.state.active_listings()}
        return sorted(kinds | ({lists.RED} if self.red else set()))

    def entries(self, kind: str) -> list[dict[str, Any]]:
        if kind == lists.RED:
            return sorted(self.red.values(), key=lambda e: e["ref"])
        return [_status_entry(x) for x in sorted(self.state.active_listings(kind), key=lambda x: x["ref"])]


@dataclass(frozen=True)
class Output:
    """What one ledger entry makes the keeper write."""

    change_key: str  # entity id
    change: dict[str, Any]  # ListChange
    status_key: str  # '<entity id>|<list kind>'
    status: dict[str, Any]  # ListStatus
    inconsistent: bool = False
    catalogue_version: int = 1  # the catalogue the ledger entry was judged under (its alerts apply it)
    imposed_under: int | None = None  # an ending: the catalogue its listing was imposed under, if another


class ListBook:
    def __init__(self, rules: RuleBook) -> None:
        self.rules = rules
        self._entities: dict[str, _Entity] = {}
        self._staged: dict[str, _Entity] = {}

    # ------------------------------------------------------------------ state
    def restore(self, partition: int, statuses: list[dict[str, Any]]) -> None:
        """Take the state of a partition from its ListStatus records (credit.lists.current, oldest first)."""
        self.forget(partition)
        for s in statuses:
            ent = self._entities.setdefault(s["entity_id"], _Entity(partition))
            ent.version = max(ent.version, s["entity_version"])
            kind = s["list_kind"]
            if kind == lists.RED:
                ent.red = {e["ref"]: e for e in s["entries"]}
                ent.state = replace(ent.state, honours={r: lists.honour_from_entry(r, e) for r, e in ent.red.items()})
                continue
            kept = {k: v for k, v in ent.state.listings.items() if v["list_kind"] != kind}
            for e in s["entries"]:
                kept[f"{kind}|{e['ref']}"] = _listing(kind, e)
            ent.state = replace(ent.state, listings=kept)

    def forget(self, partition: int) -> None:
        self._entities = {k: v for k, v in self._entities.items() if v.partition != partition}

    def commit(self) -> None:
        self._entities.update(self._staged)
        self._staged.clear()

    def rollback(self) -> None:
        self._staged.clear()

    def listed(self, entity_id: str) -> list[str]:
        ent = self._staged.get(entity_id) or self._entities.get(entity_id)
        return ent.active_kinds() if ent else []

    # ------------------------------------------------------------------ one step
    def apply(self, partition: int, offset: int, entry: dict[str, Any], rec: dict[str, Any]) -> list[Output]:
        """The feed records of one ledger entry, one Output per list change (none: it changes no
        list, or it was applied already)."""
        eid = entry["entity_id"]
        ent = self._staged.get(eid) or self._entities.get(eid) or _Entity(partition)
        if entry["entity_version"] <= ent.version:
            return []  # redelivered
        event = ledger_event(entry, rec)
        if not lists.is_list_event(event.event_type, event.body):
            return []
        ent = ent.copy()
        ent.version = entry["entity_version"]
        before, red_before = ent.state, dict(ent.red)
        version = judged_versions(entry).get("punishment_catalogue", 1)
        if event.event_type in ("HonourRevoked", "HonourExpired") and before.honour(event.body["document_no"]) is None:
            self._staged[eid] = ent  # an honour already off the red list (suspended): no list change
            return []
        try:
            after = evolve(before, event)
            changes = lists.list_changes(event, before, after, self.rules.publication, self.rules.catalogue)
        except KeyError:  # an ending of a listing this keeper does not hold: report, keep going
            self._staged[eid] = ent
            return [Output(eid, {}, "", {}, inconsistent=True)]
        active = {k: v for k, v in after.listings.items() if v["status"] == "active"}
        for change in changes:
            if change.list_kind == lists.RED and change.active:
                ent.red[change.ref] = {"ref": change.ref, "reason": change.reason, "department": change.department,
                                       "listed_on": change.listed_on, "legal_end": change.legal_end,
                                       "event_id": change.listing_event_id, "ground": None, "period_months": None,
                                       "extension_months": None, "catalogue_version": version}
            elif change.list_kind == lists.RED:
                ent.red.pop(change.ref, None)
            elif change.active:  # keep what the feed shows with the listing (evolve ignores extra keys)
                key = f"{change.list_kind}|{change.ref}"
                active[key] = {**active[key], "reason": change.reason, "catalogue_version": version,
                               "legal_end": None if change.legal_end is None else str(change.legal_end)}
        ent.state = EntityState(listings=active, honours={k: v for k, v in after.honours.items()
                                                          if v["status"] == "active"})
        self._staged[eid] = ent
        return [self._output(ent, partition, offset, entry, rec, event.event_type, c, version,
                             None if c.active else _imposed_under(before, red_before, c, version))
                for c in changes]

    def _output(self, ent: _Entity, partition: int, offset: int, entry: dict[str, Any], rec: dict[str, Any],
                event_type: str, change: lists.ListChange, version: int, imposed_under: int | None) -> Output:
        eid = entry["entity_id"]
        public = public_subject(rec)
        common = {"entity_id": eid, "entity_version": entry["entity_version"], "public_id": public["id"],
                  "id_type": public["id_type"], "name": public["name"], "category": entry["category"],
                  "list_kind": change.list_kind, "colour": change.colour, "ledger_partition": partition,
                  "ledger_offset": offset, "sequenced_at": entry["sequenced_at"]}
        out_change = {**common, "change_id": f"{change.event_id}|{change.list_kind}|{change.ref}",
                      "ref": change.ref, "status": change.status, "reason": change.reason,
                      "department": change.department, "changed_by": change.changed_by,
                      "listed_on": change.listed_on, "legal_end": change.legal_end, "ended_on": change.ended_on,
                      "event_id": change.event_id, "event_type": event_type,
                      "listing_event_id": change.listing_event_id, "active_list_kinds": ent.active_kinds()}
        entries = ent.entries(change.list_kind)
        status = {**common, "listed": bool(entries), "entries": entries, "last_change": change.status,
                  "last_ref": change.ref, "last_event_id": change.event_id}
        return Output(eid, out_change, f"{eid}|{change.list_kind}", status, catalogue_version=version,
                      imposed_under=imposed_under)


def _imposed_under(before: EntityState, red: dict[str, dict[str, Any]], change: lists.ListChange,
                   version: int) -> int | None:
    """The catalogue version an ended entry was imposed under, when it is known and not `version`."""
    if change.list_kind == lists.RED:
        held = red.get(change.ref) or {}
    else:
        held = before.listings.get(f"{change.list_kind}|{change.ref}") or {}
    imposed = held.get("catalogue_version")
    return None if imposed in (None, version) else int(imposed)


def _status_entry(listing: dict[str, Any] | Any) -> dict[str, Any]:
    legal_end = listing.get("legal_end")
    return {"ref": listing["ref"], "reason": listing.get("reason", ""), "department": listing["department"],
            "listed_on": date.fromisoformat(listing["listed_on"]),
            "legal_end": None if legal_end is None else date.fromisoformat(legal_end),
            "event_id": listing["event_id"], "catalogue_version": listing.get("catalogue_version"),
            **{t: listing.get(t) for t in TERMS}}


def _listing(kind: str, e: dict[str, Any]) -> dict[str, Any]:
    """A ListStatusEntry back in the shape evolve keeps listings in."""
    def iso(d: date | datetime | None) -> str | None:
        return None if d is None else d.isoformat()

    return {"list_kind": kind, "ref": e["ref"], "event_id": e["event_id"], "listed_on": iso(e["listed_on"]),
            "status": "active", "department": e["department"], "reason": e["reason"],
            "legal_end": iso(e["legal_end"]), "catalogue_version": e.get("catalogue_version"),
            **{t: e[t] for t in TERMS if e.get(t)}}

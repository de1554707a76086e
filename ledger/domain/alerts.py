"""Which alerts a list change raises (pure): the joint-punishment catalogue applied to one change.

One alert per (change, measure, implementing department):

* a listing (or a red-list honour) imposes every measure the catalogue ties to its list kind for the
  entity's credit database;
* an ending (delisting, expiry, repair) lifts each of those measures, unless another active listing
  of the entity still brings it: then the alert says `maintain` and names the list kinds that keep
  it in force, so no sector system lifts a measure that still applies.

The catalogue is the version the sequencer judged the ledger entry under (its `rules_versions`
stamp), so replaying the ledger gives the same alerts whatever the newest catalogue is. An ending
also lifts what the listing was imposed under when that was another version (`imposed_under`), so a
measure an older catalogue brought and a newer one dropped is not left in force at a sector system.

A new catalogue version changes what applies to listings already in force: `catalogue_change` gives,
for one active listing, the alerts of the measures the new version adds (impose) or takes away
(lift, or maintain when another list of the entity still brings it under the new version).

The alert id is a hash of the change, the measure and the department: the same change always gives
the same ids, so any consumer can deduplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.lists import LISTED
from ledger.domain.punishment import Catalogue, Measure

__all__ = ["AlertDecision", "alert_id", "alert_records", "alerts_for", "catalogue_change"]

IMPOSE, LIFT, MAINTAIN = "impose", "lift", "maintain"


@dataclass(frozen=True)
class AlertDecision:
    alert_id: str
    department: str
    action: str  # impose | lift | maintain
    measure: Measure
    still_in_force_by: tuple[str, ...]
    catalogue_version: int  # the catalogue version this alert applies


def alert_id(change_id: str, measure_id: str, department: str) -> str:
    return hashlib.sha256(f"{change_id}|{measure_id}|{department}".encode()).hexdigest()[:32]


def _pairs(catalogue: Catalogue, list_kind: str, category: str) -> dict[tuple[str, str], Measure]:
    """(measure id, department) -> measure, for a listing of this kind, in file order."""
    return {(m.id, d): m for m in catalogue.for_list(list_kind, category) for d in m.departments}


def alerts_for(catalogue: Catalogue, change_id: str, list_kind: str, category: str, listed: bool,
               active_after: Iterable[str], imposed_under: Catalogue | None = None) -> list[AlertDecision]:
    """The alerts of one list change. `listed`: the change lists (True) or ends a listing (False);
    `active_after`: every list kind the entity is on after the change; `imposed_under`: for an ending,
    the catalogue version the listing was imposed under, when it is not `catalogue` (its measures are
    lifted too)."""
    active = set(active_after)
    pairs = [(p, m, catalogue.version) for p, m in _pairs(catalogue, list_kind, category).items()]
    if not listed and imposed_under is not None and imposed_under.version != catalogue.version:
        have = {p for p, _, _ in pairs}
        pairs += [(p, m, imposed_under.version) for p, m in _pairs(imposed_under, list_kind, category).items()
                  if p not in have]
    out = []
    for (measure_id, department), measure, version in pairs:
        keeping = () if listed else tuple(sorted(measure.list_kinds & active))
        action = IMPOSE if listed else (MAINTAIN if keeping else LIFT)
        out.append(AlertDecision(alert_id(change_id, measure_id, department), department, action, measure,
                                 keeping, version))
    return out


def catalogue_change(old: Catalogue, new: Catalogue, change_id: str, list_kind: str, category: str,
                     active_kinds: Iterable[str]) -> list[AlertDecision]:
    """What moving from catalogue `old` to `new` changes for one listing still in force (`change_id`:
    the change that listed it; `active_kinds`: every list kind the entity is on): impose what `new`
    adds; for what it takes away, lift, or maintain when another list of the entity still brings the
    measure under `new`. Nothing when both versions agree. Ids are deterministic per version pair."""
    before, after = _pairs(old, list_kind, category), _pairs(new, list_kind, category)
    others = set(active_kinds) - {list_kind}
    ref = f"{change_id}|catalogue:{old.version}->{new.version}"
    out = []
    for (measure_id, department), measure in after.items():
        if (measure_id, department) not in before:
            out.append(AlertDecision(alert_id(ref, measure_id, department), department, IMPOSE, measure, (),
                                     new.version))
    for (measure_id, department), measure in before.items():
        if (measure_id, department) in after:
            continue
        now = new.measures.get(measure_id)
        keeping: tuple[str, ...] = ()
        if now is not None and department in now.departments and now.applies_to(category):
            keeping = tuple(sorted(now.list_kinds & others))
        out.append(AlertDecision(alert_id(ref, measure_id, department), department,
                                 MAINTAIN if keeping else LIFT, now or measure, keeping, new.version))
    return out


def alert_records(decisions: Iterable[AlertDecision], change: Mapping[str, Any], now: datetime,
                  trigger: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The Alert records (as plain values) of some decisions about one ListChange record `change`;
    `now` is the moment the alerts are made (`alerted_at`), `trigger` the (event id, event type) that
    raised them when it is not the change's own event (a catalogue change)."""
    event_id, event_type = trigger or (change["event_id"], change["event_type"])
    out = []
    for d in decisions:
        m = d.measure
        out.append({
            "alert_id": d.alert_id, "department": d.department, "action": d.action, "measure_id": m.id,
            "measure_kind": m.kind, "measure_name": m.name, "measure_name_en": m.name_en,
            "legal_basis": m.legal_basis, "actions": sorted(m.actions), "catalogue_version": d.catalogue_version,
            "still_in_force_by": list(d.still_in_force_by), "entity_id": change["entity_id"],
            "public_id": change["public_id"], "name": change["name"], "category": change["category"],
            "list_kind": change["list_kind"], "ref": change["ref"], "change_status": change["status"],
            "trigger_event_id": event_id, "trigger_event_type": event_type,
            "ledger_partition": change["ledger_partition"], "ledger_offset": change["ledger_offset"],
            "sequenced_at": change["sequenced_at"], "alerted_at": now,
        })
    return out


def listed(change: Mapping[str, Any]) -> bool:
    """Whether a ListChange record lists (rather than ends a listing)."""
    return change["status"] == LISTED

"""Which alerts a list change raises (pure): the joint-punishment catalogue applied to one change.

One alert per (change, measure, implementing department):

* a listing (or a red-list honour) imposes every measure the catalogue ties to its list kind for the
  entity's credit database;
* an ending (delisting, expiry, repair) lifts each of those measures, unless another active listing
  of the entity still brings it: then the alert says `maintain` and names the list kinds that keep
  it in force, so no sector system lifts a measure that still applies.

The alert id is a hash of the change, the measure and the department: the same change always gives
the same ids, so any consumer can deduplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.domain.punishment import Catalogue, Measure

__all__ = ["AlertDecision", "alert_id", "alerts_for"]

IMPOSE, LIFT, MAINTAIN = "impose", "lift", "maintain"


@dataclass(frozen=True)
class AlertDecision:
    alert_id: str
    department: str
    action: str  # impose | lift | maintain
    measure: Measure
    still_in_force_by: tuple[str, ...]


def alert_id(change_id: str, measure_id: str, department: str) -> str:
    return hashlib.sha256(f"{change_id}|{measure_id}|{department}".encode()).hexdigest()[:32]


def alerts_for(catalogue: Catalogue, change_id: str, list_kind: str, category: str, listed: bool,
               active_after: Iterable[str]) -> list[AlertDecision]:
    """The alerts of one list change. `listed`: the change lists (True) or ends a listing (False);
    `active_after`: every list kind the entity is on after the change."""
    active = set(active_after)
    out = []
    for measure in catalogue.for_list(list_kind, category):
        keeping = () if listed else tuple(sorted(measure.list_kinds & active))
        action = IMPOSE if listed else (MAINTAIN if keeping else LIFT)
        for department in measure.departments:
            out.append(AlertDecision(alert_id(change_id, measure.id, department), department, action, measure,
                                     keeping))
    return out

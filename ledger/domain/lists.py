"""Red and black list changes, derived from the entity's state before and after an event (pure).

Which events touch a list, and what the change is (listed, delisted, expired, repaired; with the
list kind, the case or decision number, the reason, the listing department, the listing date and the
legal end from the publication rules). The projector (list_entries) and the list keeper (the list
feeds and alerts) read list changes from here, so they agree with one another
and with the state the sequencer judged with (`evolve`).

A ListingExpired or CreditRepaired of an administrative penalty's publication is not a list change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ledger.domain.model import HONOUR, LIST_TITLES, TAX_A, TAX_A_PREFIX, EntityState, Event
from ledger.domain.rules import ListingTerms, PublicationRules

if TYPE_CHECKING:
    from ledger.domain.punishment import Catalogue

__all__ = ["MAY_CHANGE_LISTS", "RED", "ListChange", "honour_from_entry", "is_list_event", "list_change", "list_changes"]

RED = "red"
LISTED, DELISTED, EXPIRED, REPAIRED = "listed", "delisted", "expired", "repaired"
SUSPENDED, REVOKED = "suspended", "revoked"  # red list only
# event types that may change the red list (besides the black-listing events, which suspend honours)
RED_EVENTS = ("HonourAwarded", "HonourRevoked", "HonourExpired", "TaxCreditRated")
# event type -> (list kind, reference field, listing date field, reason field)
LIST_EVENTS = {
    "DishonestDebtorListed": ("dishonest_debtor", "case_no", "listed_on", "dishonest_conduct"),
    "MajorTaxViolationListed": ("major_tax_violation", "case_no", "listed_on", "violation"),
    "WageArrearsListed": ("wage_arrears", "decision_no", "listed_on", None),
    "ProcurementBanImposed": ("procurement_ban", "decision_no", "decision_date", "violation"),
}
# event type -> (list kind, reference field, end date field, reason field)
END_EVENTS = {
    "DishonestDebtorDelisted": ("dishonest_debtor", "case_no", "delisted_on", "delisting_reason"),
    "MajorTaxViolationDelisted": ("major_tax_violation", "case_no", "delisted_on", "reason"),
    "WageArrearsDelisted": ("wage_arrears", "decision_no", "delisted_on", "reason"),
}
PENALTY_PUBLICATION = ("administrative_penalty", "administrative_penalty_publication")


@dataclass(frozen=True)
class ListChange:
    """One entry of one list changed: listed (or honoured, on the red list) or ended."""

    entity_id: str
    list_kind: str  # a black list kind of rules.LIST_KINDS, or "red"
    ref: str  # case or decision number (document number of an honour)
    status: str  # listed | delisted | expired | repaired
    reason: str  # why listed; for an end, why it ended
    department: str  # the department that listed it
    listed_on: date
    legal_end: date | None  # the automatic end from the rules (None: until removed)
    ended_on: date | None
    event_id: str  # the event that made this change
    listing_event_id: str  # the event that listed it
    changed_by: str  # the department of the event that made this change

    @property
    def colour(self) -> str:
        return RED if self.list_kind == RED else "black"

    @property
    def active(self) -> bool:
        return self.status == LISTED


# every event type that may change a list, whatever its body: a reader that sees another type (by the
# ledger entry's `event-type` header) knows without decoding the entry that it changes no list
MAY_CHANGE_LISTS = frozenset({*LIST_EVENTS, *END_EVENTS, *RED_EVENTS, "CreditRepaired", "ListingExpired"})


def is_list_event(event_type: str, body: Mapping[str, Any]) -> bool:
    """Does an event of this type (with this body) change a red or black list?"""
    if event_type in LIST_EVENTS or event_type in END_EVENTS or event_type in RED_EVENTS:
        return True
    if event_type == "CreditRepaired":
        return body["target_kind"] not in PENALTY_PUBLICATION
    if event_type == "ListingExpired":
        return body["list_kind"] not in PENALTY_PUBLICATION
    return False


def list_changes(event: Event, before: EntityState, after: EntityState, publication: PublicationRules,
                 catalogue: Catalogue | None = None) -> list[ListChange]:
    """Every list change an accepted event made: the black-list change, if any, then one red-list
    change per red-list entry that entered or left the red list (awarded, A-level rating, expired,
    revoked, or suspended by a black listing: 河南省社会信用条例 art. 34(8)), by reference.
    `catalogue` gives an honour's default validity (its legal_end); without it only a stated end counts."""
    black = list_change(event, before, after, publication)
    return ([black] if black is not None else []) + _red_changes(event, before, after, catalogue)


def _red_changes(event: Event, before: EntityState, after: EntityState,
                 catalogue: Catalogue | None) -> list[ListChange]:
    out = []
    for ref in sorted(after.honours):
        now, was = after.honours[ref], before.honours.get(ref)
        active_now, active_was = now["status"] == "active", was is not None and was["status"] == "active"
        if active_now == active_was and (was == now if active_now else was is None or was["status"] == now["status"]):
            continue  # no change, or still off the red list for the same reason (a suspended honour revoked is a change)
        ended_on = None if active_now else date.fromisoformat(now["ended_on"])
        out.append(ListChange(
            event.entity_id, RED, ref, LISTED if active_now else now["status"],
            now["title"] if active_now else _red_end_reason(event, now), now["department"],
            date.fromisoformat(now["awarded_on"]), honour_end(catalogue, now), ended_on, event.event_id,
            now["event_id"], event.department))
    return out


def _red_end_reason(event: Event, honour: Mapping[str, Any]) -> str:
    b, status = event.body, honour["status"]
    if status == SUSPENDED:
        kind = LIST_EVENTS[event.event_type][0]
        return (f"暂停：列入{LIST_TITLES[kind]}，守信激励停止，待认定单位决定（河南省社会信用条例第三十四条第八项） "
                f"(suspended: black-listed; the awarding body decides)")
    if status == REVOKED:
        return f"撤销（{b['decision_no']}）：{b['reason']}"
    if honour["kind"] == TAX_A:
        return f"{b['year']}年度纳税信用评价结果已确定，A级有效期结束 (valid until the next annual rating)"
    return "有效期届满 (the honour's validity ended)"


def honour_end(catalogue: Catalogue | None, honour: Mapping[str, Any]) -> date | None:
    """First day a red-list entry (as held in EntityState.honours) no longer holds; None: until
    the next annual rating (an A-level rating) or no end known."""
    if honour["kind"] == TAX_A:
        return None
    until = None if honour["valid_until"] is None else date.fromisoformat(honour["valid_until"])
    if catalogue is None:
        return None if until is None else until + timedelta(days=1)
    return catalogue.honour_end(honour["title"], date.fromisoformat(honour["awarded_on"]), until)


def honour_from_entry(ref: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """A red ListStatus entry back in the shape EntityState.honours keeps (status active)."""
    def iso(d: Any) -> str | None:
        return None if d is None else (d if isinstance(d, str) else d.isoformat())

    legal_end = entry.get("legal_end")
    tax = ref.startswith(TAX_A_PREFIX)
    honour = {"kind": TAX_A if tax else HONOUR, "title": entry["reason"], "event_id": entry["event_id"],
              "awarded_on": iso(entry["listed_on"]), "department": entry["department"], "status": "active",
              "valid_until": None if legal_end is None or tax else iso(date.fromisoformat(iso(legal_end) or "")
                                                                         - timedelta(days=1))}
    return {**honour, "year": ref[len(TAX_A_PREFIX):]} if tax else honour


def list_change(event: Event, before: EntityState, after: EntityState,
                publication: PublicationRules) -> ListChange | None:
    """The black-list change an accepted event made (None for an event that changes no black list;
    the red list's changes are `list_changes`').

    `before` and `after` are the entity's states around the event (`after = evolve(before, event)`);
    an ending names the listing it ends, so `before` must hold that listing (the sequencer refuses
    an ending of anything not listed)."""
    b, t = event.body, event.event_type
    if not is_list_event(t, b) or t in RED_EVENTS:
        return None
    if t in LIST_EVENTS:
        kind, ref_field, date_field, reason_field = LIST_EVENTS[t]
        listing = after.listing(kind, b[ref_field])
        assert listing is not None, "evolve lists what a listing event names"
        reason = b[reason_field] if reason_field else f"拖欠农民工工资 {b['arrears_fen'] / 100:,.2f} 元"
        return ListChange(event.entity_id, kind, b[ref_field], LISTED, reason, event.department, b[date_field],
                          legal_end(publication, kind, listing), None, event.event_id, event.event_id,
                          event.department)
    if t in END_EVENTS:
        kind, ref_field, date_field, reason_field = END_EVENTS[t]
        ref, ended_on, status, reason = b[ref_field], b[date_field], DELISTED, str(b[reason_field])
    elif t == "CreditRepaired":
        kind, ref, ended_on, status = b["target_kind"], b["target_ref"], b["decision_date"], REPAIRED
        reason = f"信用修复 {b['repair_no']}"
    else:  # ListingExpired
        kind, ref, ended_on, status = b["list_kind"], b["target_ref"], b["expired_on"], EXPIRED
        reason = f"期满 (publication_periods v{b['rule_version']})"
    listing = before.listing(kind, ref)
    if listing is None:
        raise KeyError(f"{t} {event.event_id} ends {kind} {ref}, which the state before it does not hold")
    return ListChange(event.entity_id, kind, ref, status, reason, listing["department"],
                      date.fromisoformat(listing["listed_on"]), legal_end(publication, kind, listing), ended_on,
                      event.event_id, listing["event_id"], event.department)


def legal_end(publication: PublicationRules, kind: str, listing: Mapping[str, Any]) -> date | None:
    """The automatic end of a listing (as held in EntityState.listings) from the publication rules
    it was judged under (docs/domain-notes.md §14.3)."""
    return publication.at(listing.get("publication_rules", 1)).listing_window(kind, date.fromisoformat(str(listing["listed_on"])), ListingTerms(
        ground=listing.get("ground"), period_months=listing.get("period_months"),
        extension_months=listing.get("extension_months") or 0)).automatic_end

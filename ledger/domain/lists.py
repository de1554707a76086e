"""Red and black list changes, derived from the entity's state before and after an event (pure).

Which events touch a list, and what the change is (listed, delisted, expired, repaired; with the
list kind, the case or decision number, the reason, the listing department, the listing date and the
legal end from the publication rules). The projector (list_entries), the list keeper (the list
feeds) and through it the alerter all read list changes from here, so they agree with one another
and with the state the sequencer judged with (`evolve`).

A ListingExpired or CreditRepaired of an administrative penalty's publication is not a list change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledger.domain.model import EntityState, Event
from ledger.domain.rules import ListingTerms, PublicationRules

__all__ = ["RED", "ListChange", "is_list_event", "list_change"]

RED = "red"
LISTED, DELISTED, EXPIRED, REPAIRED = "listed", "delisted", "expired", "repaired"
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


def is_list_event(event_type: str, body: Mapping[str, Any]) -> bool:
    """Does an event of this type (with this body) change a red or black list?"""
    if event_type in LIST_EVENTS or event_type in END_EVENTS or event_type == "HonourAwarded":
        return True
    if event_type == "CreditRepaired":
        return body["target_kind"] not in PENALTY_PUBLICATION
    if event_type == "ListingExpired":
        return body["list_kind"] not in PENALTY_PUBLICATION
    return False


def list_change(event: Event, before: EntityState, after: EntityState,
                publication: PublicationRules) -> ListChange | None:
    """The list change an accepted event made (None for an event that changes no list).

    `before` and `after` are the entity's states around the event (`after = evolve(before, event)`);
    an ending names the listing it ends, so `before` must hold that listing (the sequencer refuses
    an ending of anything not listed)."""
    b, t = event.body, event.event_type
    if not is_list_event(t, b):
        return None
    if t == "HonourAwarded":
        return ListChange(event.entity_id, RED, b["document_no"], LISTED, b["honour"], event.department,
                          b["awarded_on"], b.get("valid_until"), None, event.event_id, event.event_id,
                          event.department)
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

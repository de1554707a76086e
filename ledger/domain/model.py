"""The entity's state and the events that change it: `Event`, `EntityState` and

    evolve(state, event) -> state                                        (sequencer, projections, as-of)

Its twin, decide(state, event, today, rules, catalogue) -> warnings or Rejection (the sequencer's
judgement), is in ledger/domain/decide.py.

`Event` is the decoded, plain-Python form of a submission: the envelope's fields plus the family
body as a mapping. Nothing here knows about Kafka, Avro or PostgreSQL.

The state keeps what the rules need to judge the next event: licences by licence number, penalties
by decision number, listings by (list kind, case or decision number) with their status, tax ratings,
registration. Ended listings and penalties stay (with their status) so that later events can refer
to them (feedback, revocation of a repaired penalty, ...). Dates are kept as ISO strings, so the
state serialises to canonical JSON for the sequencer's changelog.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from ledger.domain import objections
from ledger.domain.errors import Rejection
from ledger.domain.rules import LIST_TITLES

__all__ = ["BLACK_LISTING_EVENTS", "BLACK_LISTS", "HONOUR", "LIST_TITLES", "TAX_A", "TAX_A_PREFIX", "Draft",
           "EntityState", "Event", "as_date", "check_event_id", "evolve"]

if TYPE_CHECKING:
    pass

HONOUR, TAX_A = "honour", "tax_a"  # kinds of red-list entry
TAX_A_PREFIX = "纳税信用A级-"  # + the assessed year: the red-list entry of an A-level rating
# black-listing event types: recording one suspends every red-list entry (河南省社会信用条例 art. 34(8))
BLACK_LISTING_EVENTS = ("DishonestDebtorListed", "MajorTaxViolationListed", "WageArrearsListed", "ProcurementBanImposed")
BLACK_LISTS = ("dishonest_debtor", "major_tax_violation", "wage_arrears", "procurement_ban", "serious_dishonesty")


EVENT_ID_MAX = 128  # characters


def check_event_id(event_id: str, field: str = "event_id") -> str:
    """An emitter's event id as the ledger accepts it: 1 to EVENT_ID_MAX characters, none of them
    whitespace or an invisible control or format character. The id travels in status URLs, Kafka
    headers, log lines and CSV files, where a line break or a zero-width character would silently
    make it another id. Returns the id unchanged, or raises Rejection naming ``field``."""
    if not event_id.strip():
        raise Rejection(field, "required", "事件编号不能为空 (the event id is required)")
    if len(event_id) <= EVENT_ID_MAX and event_id.isascii() and event_id.isprintable() and " " not in event_id:
        return event_id  # the common case, decided without looking at each character
    if len(event_id) > EVENT_ID_MAX:
        raise Rejection(field, "event_id.too_long",
                        f"事件编号过长：{len(event_id)} 个字符，上限 {EVENT_ID_MAX} 个 "
                        f"(the event id has {len(event_id)} characters; at most {EVENT_ID_MAX})")
    for i, ch in enumerate(event_id, 1):
        if ch.isspace() or unicodedata.category(ch).startswith("C"):
            raise Rejection(field, "event_id.character",
                            f"事件编号第 {i} 个字符是空白或不可见的控制字符 (U+{ord(ch):04X})，请只用可见字符 "
                            f"(character {i} of the event id is whitespace or an invisible control character, "
                            f"U+{ord(ch):04X}; use visible characters only)")
    return event_id


@dataclass(frozen=True)
class Event:
    event_id: str
    event_type: str
    entity_id: str
    department: str
    valid_from: date
    valid_to: date | None
    recorded_at: datetime
    body: Mapping[str, Any]
    subject_birth_date: date | None = None  # natural persons only, read from the ID number
    # rules file name -> the version this event was judged under (the ledger entry's stamp; an event
    # that names none was judged under version 1 of every file; docs/domain-notes.md §14.3)
    rules_versions: Mapping[str, int] = field(default_factory=dict)

    def judged_under(self, rules_file: str) -> dict[str, int]:
        """What the state keeps beside a penalty or listing: ``{"publication_rules": n}`` when the event
        was judged under version ``n`` > 1 of ``rules_file``; nothing for version 1, so that the state
        of every event judged before versions were stamped stays byte for byte what it was."""
        version = self.rules_versions.get(rules_file, 1)
        return {} if version == 1 else {"publication_rules": version}


@dataclass(frozen=True)
class EntityState:
    """What the sequencer must know of an entity to judge its next event."""

    version: int = 0
    registered_on: str | None = None
    licences: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    penalties: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    listings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tax_ratings: Mapping[str, str] = field(default_factory=dict)
    # red-list entries by document number (an honour) or TAX_A_PREFIX + year (an A-level tax rating),
    # each with its status: active | expired | revoked | suspended (docs/domain-notes.md §13)
    honours: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    # objections and repair applications by receipt number (the filing's event id), with their steps
    # (ledger/domain/objections.py); left out of the JSON while empty, so that the state of an entity
    # that never had one is written byte for byte as before
    requests: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    # a natural person's key-person groups (国办发〔2016〕98号) by category id, each with the register
    # that reported it: department, registration date, event (docs/domain-notes.md §12.2)
    key_persons: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # the publisher's 红黑榜 releases by number (text): period, digest, the one it corrects and the one
    # that corrected it (docs/domain-notes.md §11.2)
    releases: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def as_plain(self) -> dict[str, Any]:
        """The state as plain data (what to_json writes), for a faster JSON writer outside the domain.
        The key persons and the releases only when there are some: the state of every other entity stays
        byte for byte what it was before they were kept."""
        plain = {
            "version": self.version, "registered_on": self.registered_on, "licences": self.licences,
            "penalties": self.penalties, "listings": self.listings, "tax_ratings": self.tax_ratings,
            "honours": self.honours, "counts": self.counts,
        }
        if self.requests:
            plain["requests"] = self.requests
        if self.key_persons:
            plain["key_persons"] = self.key_persons
        if self.releases:
            plain["releases"] = self.releases
        return plain

    def to_json(self) -> str:
        return json.dumps(self.as_plain(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> EntityState:
        d = json.loads(text)
        return cls(version=d["version"], registered_on=d.get("registered_on"), licences=d.get("licences", {}),
                   penalties=d.get("penalties", {}), listings=d.get("listings", {}),
                   tax_ratings=d.get("tax_ratings", {}), honours=_honours(d.get("honours")), counts=d.get("counts", {}),
                   requests=d.get("requests", {}),
                   key_persons=d.get("key_persons", {}), releases=d.get("releases", {}))

    def active_honours(self, kind: str | None = None) -> list[Mapping[str, Any]]:
        return [x for x in self.honours.values() if x["status"] == "active" and (kind is None or x["kind"] == kind)]

    def honour(self, ref: str) -> Mapping[str, Any] | None:
        return self.honours.get(ref)

    def active_listings(self, list_kind: str | None = None) -> list[Mapping[str, Any]]:
        return _active_listings(self.listings, list_kind)

    def listing(self, list_kind: str, ref: str) -> Mapping[str, Any] | None:
        return self.listings.get(_listing_key(list_kind, ref))


def _active_listings(listings: Mapping[str, Mapping[str, Any]], list_kind: str | None) -> list[Mapping[str, Any]]:
    return [x for x in listings.values()
            if x["status"] == "active" and (list_kind is None or x["list_kind"] == list_kind)]


def _honours(value: Any) -> Mapping[str, Mapping[str, Any]]:
    """The red-list entries of a stored state. States written before honours were kept one by one
    hold only their number: those honours cannot be told apart and are dropped (rebuild the views
    from the ledger to recover them)."""
    return value if isinstance(value, dict) else {}


def _listing_key(list_kind: str, ref: str) -> str:
    return f"{list_kind}|{ref}"


def as_date(value: str | date) -> date:
    """A date, from a date or the ISO text the state keeps."""
    return value if isinstance(value, date) else date.fromisoformat(value)


# =========================================================================== evolve


class Draft:
    """An entity's state changed in place, event after event (`apply`), and an `EntityState` again
    whenever it is read as one (`state`).

    Copy on write: a map (licences, penalties, ...) is copied the first time it changes after the draft
    was made or last read as a state, and never again until the next read; an entry of a map (a
    penalty, a listing, ...) is replaced, never changed in place. So a state read from a draft, and the
    state a draft was made from, stay what they were. `evolve` is one event on a new draft; the
    projector's fold keeps one draft per entity for a whole batch and reads it as a state only where it
    needs one, so a map that several events of the batch change is copied once, not once per event."""

    __slots__ = ("_owned", "counts", "honours", "key_persons", "licences", "listings", "penalties", "registered_on",
                 "releases", "requests", "tax_ratings", "version")

    def __init__(self, state: EntityState) -> None:
        for name in _FIELD_NAMES:
            setattr(self, name, state.__dict__[name])
        self._owned: set[str] = set()

    def own(self, name: str) -> dict[str, Any]:
        """The map `name`, copied first if this draft does not own it yet, to be changed in place."""
        if name not in self._owned:
            setattr(self, name, dict(getattr(self, name)))
            self._owned.add(name)
        mine: dict[str, Any] = getattr(self, name)
        return mine

    def state(self) -> EntityState:
        """The state as it stands, sharing the maps: the next change of a map copies it again."""
        new = object.__new__(EntityState)
        new.__dict__.update({name: getattr(self, name) for name in _FIELD_NAMES})
        self._owned.clear()
        return new

    def apply(self, e: Event) -> None:
        """The state after an accepted event, in place. Total over every event type decide() knows."""
        _apply(self, e)


_FIELD_NAMES = tuple(f.name for f in fields(EntityState))


def evolve(state: EntityState, e: Event) -> EntityState:
    """The state after an accepted event (`Draft.apply` on a draft of `state`; `state` unchanged)."""
    draft = Draft(state)
    _apply(draft, e)
    return draft.state()


def _apply(s: Draft, e: Event) -> None:
    b = e.body
    t = e.event_type
    counts = s.own("counts")
    counts[t] = counts.get(t, 0) + 1
    s.version += 1
    if t in objections.REQUEST_EVENTS:
        objections.evolve_request(s, e)
        return
    if s.requests:  # an open objection or application sees what happens to the entity after it
        objections.follow(s, e)
    if t == "AdministrativeLicenceGranted":
        s.own("licences")[b["licence_no"]] = {
            "status": "valid", "event_id": e.event_id, "decision_no": b["decision_no"],
            "decision_date": str(b["decision_date"])}
    elif t == "AdministrativeLicenceChanged":
        pass
    elif t == "AdministrativeLicenceRevoked":
        licences = s.own("licences")
        licences[b["licence_no"]] = {**licences[b["licence_no"]], "status": "revoked"}
    elif t == "AdministrativePenaltyImposed":
        s.own("penalties")[b["decision_no"]] = {
            "event_id": e.event_id, "decision_date": str(b["decision_date"]), "severity": b["severity"],
            "status": "published", **e.judged_under("publication_periods")}
    elif t == "AdministrativePenaltyRevoked":
        _set_penalty(s, b["penalty_decision_no"], "revoked", b["decision_date"])
    elif t in BLACK_LISTING_EVENTS:
        _suspend_honours(s, e)
        if t == "DishonestDebtorListed":
            _list(s, e, "dishonest_debtor", b["case_no"], b["listed_on"], ground=b["ground"],
                  extension_months=b.get("extension_months") or 0)
        elif t == "MajorTaxViolationListed":
            _list(s, e, "major_tax_violation", b["case_no"], b["listed_on"])
        elif t == "WageArrearsListed":
            _list(s, e, "wage_arrears", b["decision_no"], b["listed_on"])
        else:  # ProcurementBanImposed
            _list(s, e, "procurement_ban", b["decision_no"], b["decision_date"], period_months=b["ban_months"])
    elif t == "DishonestDebtorDelisted":
        _end_listing(s, "dishonest_debtor", b["case_no"], "delisted", b["delisted_on"])
    elif t == "MajorTaxViolationDelisted":
        _end_listing(s, "major_tax_violation", b["case_no"], "delisted", b["delisted_on"])
    elif t == "WageArrearsDelisted":
        _end_listing(s, "wage_arrears", b["decision_no"], "delisted", b["delisted_on"])
    elif t == "CreditRepaired":
        if b["target_kind"] == "administrative_penalty":
            _set_penalty(s, b["target_ref"], "repaired", b["decision_date"])
        else:
            _end_listing(s, b["target_kind"], b["target_ref"], "repaired", b["decision_date"])
    elif t == "ListingExpired":
        if b["list_kind"] == "administrative_penalty_publication":
            _set_penalty(s, b["target_ref"], "expired", b["expired_on"])
        else:
            _end_listing(s, b["list_kind"], b["target_ref"], "expired", b["expired_on"])
    elif t == "TaxCreditRated":
        s.own("tax_ratings")[str(b["year"])] = b["level"]
        _tax_red_list(s, e)
    elif t == "HonourAwarded":
        s.own("honours")[b["document_no"]] = {
            "kind": HONOUR, "title": b["honour"], "event_id": e.event_id, "awarded_on": str(b["awarded_on"]),
            "valid_until": None if b.get("valid_until") is None else str(b["valid_until"]),
            "department": e.department, "status": "active"}
    elif t == "HonourRevoked":
        _end_honour(s, b["document_no"], "revoked", b["revoked_on"])
    elif t == "HonourExpired":
        _end_honour(s, b["document_no"], "expired", b["expired_on"])
    elif t == "EntityRegistered":
        _register(s, e)
    elif t == "ListReleaseApproved":
        _release(s, e)
    elif t not in ("CreditCommitmentMade", "PunishmentFeedbackReported"):
        raise ValueError(f"evolve does not know {t}")


def _register(s: Draft, e: Event) -> None:
    """The first registration dates the entity; each later one (another register naming the person in
    another key-person group) adds its categories."""
    b = e.body
    if s.registered_on is None:
        s.registered_on = str(b["registered_on"])
    categories = b.get("key_person_categories") or ()
    if categories:
        entry = {"department": e.department, "registered_on": str(b["registered_on"]), "event_id": e.event_id}
        s.own("key_persons").update(dict.fromkeys(categories, entry))


def _release(s: Draft, e: Event) -> None:
    """A 红黑榜 release approved: its number with what later checks need (a correction marks the one it
    corrects)."""
    b = e.body
    number, corrects = str(b["release_no"]), b.get("corrects")
    releases = s.own("releases")
    releases[number] = {"period": str(b["period"]).upper(), "content_sha256": b["content_sha256"],
                        "corrects": corrects, "event_id": e.event_id, "approved_on": str(b["approved_on"])[:10]}
    if corrects is not None:
        releases[str(corrects)] = {**releases[str(corrects)], "corrected_by": b["release_no"]}


def _set_penalty(s: Draft, decision_no: str, status: str, on: date) -> None:
    penalties = s.own("penalties")
    penalties[decision_no] = {**penalties[decision_no], "status": status, "ended_on": str(on)}


def _list(s: Draft, e: Event, list_kind: str, ref: str, listed_on: date, **terms: Any) -> None:
    s.own("listings")[_listing_key(list_kind, ref)] = {
        "list_kind": list_kind, "ref": ref, "event_id": e.event_id, "listed_on": str(listed_on), "status": "active",
        "department": e.department, **{k: v for k, v in terms.items() if v}, **e.judged_under("publication_periods")}


def _end_listing(s: Draft, list_kind: str, ref: str, status: str, on: date) -> None:
    key = _listing_key(list_kind, ref)
    listings = s.own("listings")
    listings[key] = {**listings[key], "status": status, "ended_on": str(on)}


def _end_honour(s: Draft, ref: str, status: str, on: date, **extra: str) -> None:
    honours = s.own("honours")
    honours[ref] = {**honours[ref], "status": status, "ended_on": str(on), **extra}


def _suspend_honours(s: Draft, e: Event) -> None:
    """A black listing suspends every red-list entry in force (河南省社会信用条例 art. 34(8); the
    awarding body then decides: docs/domain-notes.md §13). The suspension does not end with the listing."""
    b = e.body
    on = b.get("listed_on") or b["decision_date"]
    for ref in [r for r, x in s.honours.items() if x["status"] == "active"]:
        _end_honour(s, ref, "suspended", on, suspended_by=e.event_id)


def _tax_red_list(s: Draft, e: Event) -> None:
    """An A-level rating is a red-list entry for its year, until the next annual rating (a rating of
    a later year, or a new rating of the same year, ends it); recorded suspended while a black listing
    is active (docs/domain-notes.md §4.4, §13). `s` has the rating in its tax_ratings already."""
    b = e.body
    for ref, x in list(s.honours.items()):
        if x["kind"] == TAX_A and x["status"] in ("active", "suspended") and int(x["year"]) <= b["year"]:
            _end_honour(s, ref, "expired", b["rated_on"])
    if b["level"] != "A" or max(map(int, s.tax_ratings)) > b["year"]:  # a later year's rating holds already
        return
    s.own("honours")[f"{TAX_A_PREFIX}{b['year']}"] = {
        "kind": TAX_A, "title": f"{b['year']}年度纳税信用A级纳税人", "event_id": e.event_id, "year": str(b["year"]),
        "awarded_on": str(b["rated_on"]), "valid_until": None, "department": e.department,
        "status": "suspended" if _active_listings(s.listings, None) else "active"}

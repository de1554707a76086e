"""Fold a batch of ledger records into row operations for the read models (no I/O).

The fold uses the domain's own definition of what an event does to a state (`evolve`'s, applied in
place to one `Draft` per entity for the batch), so the views see exactly the state the sequencer judged
with. For each batch it returns what to write: the ledger copy, the final state and row of every
entity touched, list entries and publicity records to insert or to update, quarantined records,
and the new positions. An (entity, version) already applied is skipped; a record that cannot be
decoded is quarantined with its provenance and its entity is held back from then on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import orjson

from ledger.domain import identity, lists, releases
from ledger.domain.divisions import county_of
from ledger.domain.local_time import CHINA
from ledger.domain.model import Draft, EntityState, Event, as_date
from ledger.domain.objections import REQUEST_EVENTS
from ledger.domain.rulebook import RuleBook
from ledger.records.events import event_of, judged_versions
from projections import grade as grading
from projections import objection_rows, publicity
from schemas import registry


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
    # the live views' generation (view_generations) the states were read in: a switch-over between this
    # load and the batch's write makes the projector read the batch again (consumers/projector/service.py)
    generation: int = 0
    # when each entity was first seen, for a sink that writes an entity's row once at the end (the
    # rebuild's bulk load); empty for the live views, whose stored row keeps its first_seen
    first_seen: dict[str, datetime] = field(default_factory=dict)

    def after(self, ops: Ops, keys: set[str]) -> Loaded:
        """These states of `keys` with what a batch still being written leaves behind for them (its
        `final_states`, its held-back entities): what the database holds once that batch is committed."""
        states = dict(self.states)
        mine = keys & ops.final_states.keys()
        states.update((k, ops.final_states[k]) for k in mine)
        first_seen = dict(self.first_seen)
        first_seen.update((k, ops.info[k]["first_seen"]) for k in mine if k in ops.info)
        return Loaded(states, self.held | {h[0] for h in ops.held if h[0] in keys}, self.generation, first_seen)


@dataclass
class Ops:
    ledger_copy: list[tuple[Any, ...]] = field(default_factory=list)
    states: dict[str, tuple[int, str]] = field(default_factory=dict)
    entities: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    list_inserts: list[tuple[Any, ...]] = field(default_factory=list)
    list_updates: list[tuple[Any, ...]] = field(default_factory=list)  # (status, ended_on, entity, kind, ref)
    publicity_inserts: list[tuple[Any, ...]] = field(default_factory=list)
    publicity_updates: list[tuple[Any, ...]] = field(default_factory=list)  # (status, ended_on, entity, kind, ref)
    deadlines: list[tuple[Any, ...]] = field(default_factory=list)  # short_deadlines rows
    # objections and repair_applications rows by receipt number (the last of a batch wins: each is whole)
    objections: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    repairs: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    feedback: list[tuple[Any, ...]] = field(default_factory=list)  # punishment_feedback rows
    releases: list[tuple[Any, ...]] = field(default_factory=list)  # 红黑榜 releases
    release_entries: list[tuple[Any, ...]] = field(default_factory=list)  # their entries
    quarantine: list[tuple[Any, ...]] = field(default_factory=list)
    held: list[tuple[Any, ...]] = field(default_factory=list)
    positions: dict[int, tuple[int, datetime]] = field(default_factory=dict)
    # not written: every touched entity's state after the batch, from which the next batch's fold starts
    # while this one is being written (`Loaded.after`)
    final_states: dict[str, tuple[int, EntityState]] = field(default_factory=dict)
    # every touched entity's row facts after the batch (category, subject, first and last change, county),
    # from which its entities row is made: per batch here, once at the end by the rebuild's bulk load
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    # touched entities the database had no state of when the batch was loaded: their entity_state and
    # entities rows are plain inserts (views.write COPYs them straight in, an upsert only if one exists)
    new_entities: set[str] = field(default_factory=set)
    applied: int = 0
    skipped: int = 0
    # a text of the batch holds NUL or the text "\u0000": views.write must make its text PostgreSQL-safe
    # value by value (else it writes the rows as they are, which is much cheaper). The fold sets it when a
    # state's text holds one; a record's NUL in any other row makes PostgreSQL refuse the write, and
    # views.write then sets it and writes the batch again (the ledger copy's bytes need no check)
    nul_text: bool = False


_NEW = (0, EntityState())  # an entity not seen yet (the state is immutable: evolve returns new ones)
# The events whose rows need the entity's state as it was before them: the list changes (from the states
# before and after: lists.list_changes; no other event changes a listing or a red-list entry), a repair's
# short deadline (the penalty repaired), a feedback (the listing it answers). For every other event the
# fold changes the entity's state in place (`Draft`) and reads it as a state once, at the batch's end.
_BEFORE_NEEDED = frozenset({*lists.MAY_CHANGE_LISTS, "PunishmentFeedbackReported"})


def entity_keys(batch: list[Incoming]) -> set[str]:
    return {m.key.decode(errors="replace") for m in batch if m.key is not None}


class Folder:
    # Memo size per table: the values are pure functions of the key (rules fixed for the Folder's life);
    # a table is cleared when it reaches this size, so memory stays bounded on any input.
    MEMO = 100_000

    def __init__(self, rules: RuleBook, entity_rows: bool = True) -> None:
        self.rules = rules
        # False: the fold makes no entity_state or entities rows per batch (`Ops.states`, `Ops.entities`);
        # the rebuild's bulk load makes them once per entity at the end (`entity_row`)
        self.entity_rows = entity_rows
        self._lateness: dict[tuple[date, date, int], publicity.Lateness] = {}
        self._penalty_windows: dict[tuple[date, str, int], tuple[date, date | None, date | None]] = {}
        self._public: dict[tuple[str, str, str], dict[str, str]] = {}

    def public(self, rec: dict[str, Any]) -> dict[str, str]:
        """The subject as the views show it (`_public`) and its county (from its code: the newest
        ledger/rules/divisions, docs/domain-notes.md §2.3), computed once per subject."""
        s = rec["envelope"]["subject"]
        key = (s["id"], s["id_type"], s["name"])
        shown = self._public.get(key)
        if shown is None:
            if len(self._public) >= self.MEMO:
                self._public.clear()
            county = county_of(s["id_type"], identity.normalise(s["id"]), self.rules.divisions)
            shown = self._public[key] = {**public_subject(rec), "county": county}
        return shown

    def lateness(self, decision_date: date, ledger_date: date,
                 working_days: int = publicity.DEADLINE_WORKING_DAYS) -> publicity.Lateness:
        key = (decision_date, ledger_date, working_days)
        late = self._lateness.get(key)
        if late is None:
            if len(self._lateness) >= self.MEMO:
                self._lateness.clear()
            late = self._lateness[key] = publicity.lateness(self.rules.calendar, decision_date, ledger_date,
                                                            working_days)
        return late

    def penalty_window(self, decision_date: date, severity: str,
                       rules_version: int) -> tuple[date, date | None, date | None]:
        """The window under the publication rules the penalty was judged under (docs/domain-notes.md §14.3)."""
        key = (decision_date, severity, rules_version)
        window = self._penalty_windows.get(key)
        if window is None:  # an unknown severity raises, and nothing is kept
            w = publicity.publication_window(self.rules.publication.at(rules_version), decision_date, severity)
            if len(self._penalty_windows) >= self.MEMO:
                self._penalty_windows.clear()
            window = self._penalty_windows[key] = (w.start, w.earliest_repair, w.automatic_end)
        return window

    def fold(self, batch: list[Incoming], loaded: Loaded) -> Ops:
        ops = Ops()
        states = dict(loaded.states)
        drafts: dict[str, Draft] = {}  # every entity the batch changes, its state changed in place
        held = set(loaded.held)
        touched = ops.info
        last: dict[int, Incoming] = {}
        for m in batch:
            last[m.partition] = m
            key = m.key.decode(errors="replace") if m.key is not None else None
            if key is not None and key in held:
                ops.quarantine.append((m.partition, m.offset, key, "held_back",
                                       "an earlier record of this entity is quarantined", m.value))
                continue
            try:
                _, entry = registry.decode(m.value, "LedgerEntry")
                name, rec = registry.decode(entry["submission"])
            except registry.SchemaError as exc:
                reason = "unknown_schema" if "unknown schema id" in str(exc) else "undecodable"
                ops.quarantine.append((m.partition, m.offset, key, reason, str(exc), m.value))
                if key is not None:
                    held.add(key)
                    ops.held.append((key, m.partition, m.offset))
                continue
            eid = entry["entity_id"]
            draft = drafts.get(eid)
            version = draft.version if draft is not None else states.get(eid, _NEW)[0]
            if entry["entity_version"] <= version:
                ops.skipped += 1
                continue
            if entry["entity_version"] != version + 1:
                ops.quarantine.append((m.partition, m.offset, eid, "version_gap",
                                       f"version {entry['entity_version']} after {version}", m.value))
                held.add(eid)
                ops.held.append((eid, m.partition, m.offset))
                continue
            if draft is None:
                draft = drafts[eid] = Draft(states.get(eid, _NEW)[1])
            event = ledger_event(entry, rec)
            t = entry["event_type"]
            # the state before the event, where a row needs it (`_BEFORE_NEEDED`); else changed in place
            before = draft.state() if t in _BEFORE_NEEDED else None
            draft.apply(event)
            public = self.public(rec)
            info = touched.get(eid)
            if info is None:
                info = touched[eid] = {"first_seen": loaded.first_seen.get(eid, entry["sequenced_at"])}
                if eid not in loaded.states:
                    ops.new_entities.add(eid)
            info.update(category=entry["category"], id_type=public["id_type"], public_id=public["id"],
                        name=public["name"], last_change=entry["sequenced_at"], last_event_type=entry["event_type"],
                        county=public["county"])
            ops.ledger_copy.append((
                eid, entry["entity_version"], entry["event_id"], entry["event_type"], entry["category"],
                entry["department"], m.partition, m.offset, entry["hash"], entry["sequenced_at"],
                rec["envelope"]["valid_from"], copied_record(entry["submission"], name, rec, public["id"]),
                _dumps(entry["rules_versions"]) if entry.get("rules_versions") else None,
            ))
            if before is not None and t in lists.MAY_CHANGE_LISTS:
                self._lists(ops, event, entry, public, before, draft.state())
            self._publicity(ops, entry, rec, public)
            self._short_deadline(ops, entry, rec, public, before)
            if t == "PunishmentFeedbackReported":
                ops.feedback.append(_feedback_row(entry, rec, public, cast(EntityState, before)))
            elif t in REQUEST_EVENTS:
                self._matter(ops, entry, rec, public, draft.state())
            elif t == releases.APPROVAL_EVENT:
                _release_rows(ops, entry, rec, m)
            ops.applied += 1
        for partition, m in last.items():
            ops.positions[partition] = (m.offset + 1, datetime.fromtimestamp(m.timestamp_ms / 1000, UTC))
        for eid in touched:
            draft = drafts[eid]
            ops.final_states[eid] = states[eid] = (draft.version, draft.state())
        if self.entity_rows:
            for eid, info in touched.items():
                version, state = states[eid]
                text, ops.entities[eid] = self.entity_row(eid, version, state, info)
                ops.states[eid] = (version, text)
                # the state (and the grade reasons made from it) may hold a NUL of an earlier batch's record
                ops.nul_text = ops.nul_text or "\\u0000" in text
        return ops

    def entity_row(self, eid: str, version: int, state: EntityState,
                   info: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
        """An entity's entity_state text (`state_json`) and its entities row, from its state after its
        last event and its row facts (`Ops.info`)."""
        text = state_json(state)
        g = grading.grade(state, self.rules.grade)
        return text, (
            eid, info["category"], info["id_type"], info["public_id"], info["name"], version,
            info["first_seen"], info["last_change"], info["last_event_type"],
            _dumps(state.counts),
            sorted({x["list_kind"] for x in state.active_listings()}),
            bool(state.active_honours()), state.registered_on, g.score, g.grade,
            _dumps([{"code": r.code, "text": r.text_zh, "points": r.points, "ref": r.ref} for r in g.reasons]),
            info["county"], sorted(state.key_persons),
        )

    # ---------------------------------------------------------------- lists
    def _lists(self, ops: Ops, event: Event, entry: dict[str, Any], public: dict[str, str],
               before: EntityState, after: EntityState) -> None:
        eid = entry["entity_id"]
        for change in lists.list_changes(event, before, after, self.rules.publication, self.rules.catalogue):
            if change.active:
                ops.list_inserts.append((eid, change.list_kind, change.ref, change.colour, change.reason,
                                         change.department, change.listed_on, change.legal_end, "active", None,
                                         change.listing_event_id, public["name"], public["id"], entry["category"],
                                         public["county"]))
            else:
                ops.list_updates.append((change.status, change.ended_on, eid, change.list_kind, change.ref))

    # ---------------------------------------------------------------- double publicity
    def _publicity(self, ops: Ops, entry: dict[str, Any], rec: dict[str, Any], public: dict[str, str]) -> None:
        t, eid = entry["event_type"], entry["entity_id"]
        if t in ("AdministrativePenaltyImposed", "AdministrativeLicenceGranted"):
            kind = "penalty" if t == "AdministrativePenaltyImposed" else "licence"
            ref = rec["decision_no"] if kind == "penalty" else rec["licence_no"]
            ledger_date = entry["sequenced_at"].astimezone(CHINA).date()
            late = self.lateness(rec["decision_date"], ledger_date)
            if kind == "penalty":
                window = self.penalty_window(rec["decision_date"], rec["severity"],
                                             judged_versions(entry)["publication_periods"])
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
                late.provisional, public["county"],
            ))
        elif t == "AdministrativePenaltyRevoked":
            ops.publicity_updates.append(("revoked", rec["decision_date"], eid, "penalty", rec["penalty_decision_no"]))
        elif t == "AdministrativeLicenceRevoked":
            ops.publicity_updates.append(("revoked", rec["decision_date"], eid, "licence", rec["licence_no"]))
        elif t == "CreditRepaired" and rec["target_kind"] == "administrative_penalty":
            ops.publicity_updates.append(("repaired", rec["decision_date"], eid, "penalty", rec["target_ref"]))
        elif t == "ListingExpired" and rec["list_kind"] == "administrative_penalty_publication":
            ops.publicity_updates.append(("expired", rec["expired_on"], eid, "penalty", rec["target_ref"]))


    # ---------------------------------------------------------------- objections and repair applications
    def _matter(self, ops: Ops, entry: dict[str, Any], rec: dict[str, Any], public: dict[str, str],
                after: EntityState) -> None:
        table, row, deadline = objection_rows.matter_rows(
            entry, rec, after, lambda version: self.rules.at("objections", version), self.lateness, public)
        (ops.objections if table == "objections" else ops.repairs)[row[0]] = row
        if deadline is not None:
            ops.deadlines.append(deadline)

    # ---------------------------------------------------------------- short deadlines
    def _short_deadline(self, ops: Ops, entry: dict[str, Any], rec: dict[str, Any], public: dict[str, str],
                        before: EntityState | None) -> None:
        """A short_deadlines row for an act with a working-day deadline of ``calendar.deadlines``
        (docs/domain-notes.md §15.2): the rule, the trigger date, the date the act was done."""
        measured = short_deadline_dates(entry, rec, before, self.rules)
        if measured is None:
            return
        rule_id, ref, trigger, done = measured
        rule = self.rules.calendar.deadlines.get(rule_id)
        if rule is None or not rule.measured or trigger < rule.applies_from:
            return
        late = self.lateness(trigger, done, rule.working_days)
        ops.deadlines.append((entry["event_id"], entry["entity_id"], rule_id, ref, entry["department"], trigger,
                              done, rule.working_days, late.deadline, late.working_days_taken, late.late,
                              late.provisional, public["name"], public["id"], entry["category"]))


def short_deadline_dates(entry: dict[str, Any], rec: dict[str, Any], before: EntityState | None,
                         rules: RuleBook) -> tuple[str, str, date, date] | None:
    """``(rule id, ref, trigger date, done date)`` of an event that a short deadline watches, else
    None. Done is the China-local date the ledger recorded the act, except for a repair (its
    decision date: the repair takes effect then). `before` (the state before the event) is read for a
    repair only, which `Folder.fold` gives it for (`_BEFORE_NEEDED`)."""
    t = entry["event_type"]
    recorded = entry["sequenced_at"].astimezone(CHINA).date()
    if t == "AdministrativePenaltyRevoked":
        return "penalty_withdrawal", rec["penalty_decision_no"], rec["decision_date"], recorded
    if t == "DishonestDebtorDelisted" and rec.get("corrected_on") is not None:
        return "court_deletion", rec["case_no"], rec["corrected_on"], recorded
    if t == "WageArrearsDelisted":
        return "wage_removal", rec["decision_no"], rec["delisted_on"], recorded
    if t == "ListingExpired" and rec["list_kind"] in _EXPIRY_DEADLINES:
        last_day = rec["expired_on"] - timedelta(days=1)
        return _EXPIRY_DEADLINES[rec["list_kind"]], rec["target_ref"], last_day, recorded
    if (t == "CreditRepaired" and rec["target_kind"] == "administrative_penalty"
            and rec.get("corrected_on") is not None):
        penalty = cast(EntityState, before).penalties.get(rec["target_ref"])
        if penalty is None:
            return None
        window = publicity.publication_window(rules.publication, as_date(penalty["decision_date"]),
                                              penalty["severity"])
        qualified = max(rec["corrected_on"], window.earliest_repair or rec["corrected_on"])
        return "repair_decision", rec["target_ref"], qualified, rec["decision_date"]
    return None


_EXPIRY_DEADLINES = {"dishonest_debtor": "court_deletion", "wage_arrears": "wage_removal"}


def _feedback_row(entry: dict[str, Any], rec: dict[str, Any], public: dict[str, str],
                  before: EntityState) -> tuple[Any, ...]:
    """A punishment_feedback row; the trigger's kind from the state the sequencer judged it with."""
    listing = next((x for x in before.listings.values() if x["event_id"] == rec["trigger_event_id"]), None)
    kind = listing["list_kind"] if listing is not None else "administrative_penalty"
    return (entry["event_id"], entry["entity_id"], entry["department"], rec["measure_code"], rec["action"],
            rec["trigger_event_id"], kind, rec["business_ref"], rec["acted_on"], rec.get("note"),
            public["name"], public["id"], entry["category"])


def _release_rows(ops: Ops, entry: dict[str, Any], rec: dict[str, Any], m: Incoming) -> None:
    """A release's row and its entries, exactly as the approval carries them (docs/domain-notes.md §11.2)."""
    period = releases.period_of(rec["period"])
    entries = rec["entries"]
    ops.releases.append((
        rec["release_no"], period.text, rec["title"], period.start, period.end, rec.get("corrects"),
        rec.get("correction_note"), rec["drawn_at"], _dumps(dict(rec["drawn_positions"])), rec["drafted_by"],
        rec["reviewed_by"], rec["reviewed_on"], rec["approved_by"], rec["approved_on"], rec["content_sha256"],
        len(entries), sum(e["colour"] == "black" for e in entries), sum(e["colour"] == "red" for e in entries),
        entry["event_id"], entry["entity_id"], m.partition, m.offset, entry["sequenced_at"],
    ))
    ops.release_entries.extend((rec["release_no"], seq, *(e[k] for k in releases.ENTRY_FIELDS))
                               for seq, e in enumerate(entries))


def ledger_event(entry: dict[str, Any], rec: dict[str, Any]) -> Event:
    """The domain event of a ledger entry's record (the entity id and department the sequencer gave it)."""
    return event_of(rec, entity_id=entry["entity_id"], department=entry["department"],
                    rules_versions=judged_versions(entry))


def public_subject(rec: dict[str, Any]) -> dict[str, str]:
    s = rec["envelope"]["subject"]
    shown = identity.mask_ric(identity.normalise(s["id"])) if s["id_type"] == "RIC" else identity.normalise(s["id"])
    return {"id": shown, "id_type": s["id_type"], "name": s["name"]}


def copied_record(submission: bytes, name: str, rec: dict[str, Any], public_id: str) -> bytes:
    """The ledger copy's record: the submitted record's bytes as the ledger entry holds them (`name`'s
    record `rec`, framed Avro), with the subject's identifier in its public form `public_id` (a natural
    person's ID number masked) and a contact telephone number masked (`mask_phone`): no clear ID number
    in PostgreSQL.

    Nearly always this is the bytes themselves (a code given in its canonical form), or the bytes with the
    one occurrence of the identifier, preceded by its Avro length, overwritten by its public form of the
    same length (an ID number and its mask are both 18 characters), which leaves every Avro length as it
    was: no JSON and no encoding per event. Anything else (the identifier twice in the record, a form of
    another length, a telephone number) is encoded again from the record with the public forms."""
    raw = rec["envelope"]["subject"]["id"]
    if "contact_phone" not in rec:
        if raw == public_id:
            return submission
        old, new = raw.encode(), public_id.encode()
        at = submission.find(old)
        # the one occurrence, right after its own Avro length (one byte below 64: twice the length)
        if (len(old) == len(new) < 64 and at > 0 and submission[at - 1] == 2 * len(old)
                and submission.find(old, at + 1) < 0):
            return submission[:at] + new + submission[at + len(old):]
    return registry.encode(name, _masked(rec, public_id))  # `rec` as decoded: in name's newest version


def shown_record(record: bytes, rules_versions: Mapping[str, int] | None) -> dict[str, Any]:
    """What the history and the auditors read of a ledger copy's record (`copied_record`) and rules
    versions: the submitted record as JSON-shaped data (dates as ISO text, bytes as hex), the subject's
    identifier in its public form, the rules versions the entry was judged under in its envelope
    (`_masked`), and a NUL of a record from before the sequencer refused control characters shown as
    U+FFFD."""
    _, rec = registry.decode(record)
    text = _dumps(_masked(rec, rec["envelope"]["subject"]["id"], rules_versions))
    if "\\u0000" in text:
        text = text.replace("\\u0000", "\\ufffd")
    loaded: dict[str, Any] = orjson.loads(text)
    return loaded


def _masked(rec: dict[str, Any], public_id: str, rules_versions: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The record with the subject's identifier in its public form `public_id` (`_public`): no clear ID
    number in PostgreSQL. A stamped entry's rules versions go into the copy's envelope
    (`rules_versions`), so that the auditors' as-of fold judges under them too (docs/domain-notes.md §14.3)."""
    env = rec["envelope"]
    stamp = {"rules_versions": dict(rules_versions)} if rules_versions else {}
    # an objection's or a repair application's telephone number is for the office that answers, not for a view
    phone = {"contact_phone": mask_phone(rec["contact_phone"])} if "contact_phone" in rec else {}
    return {**rec, **phone, "envelope": {**env, "subject": {**env["subject"], "id": public_id}, **stamp}}


def mask_phone(phone: str) -> str:
    """A telephone number as the views keep it: its first three and last two characters."""
    return phone[:3] + "*" * max(0, len(phone) - 5) + phone[-2:] if len(phone) > 5 else "*" * len(phone)


def _json_default(v: Any) -> Any:
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, Mapping):  # e.g. a read-only mapping
        return dict(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _dumps(v: Any) -> str:
    """JSON for jsonb columns: dates as ISO strings (orjson's own, the same text as isoformat()), bytes as
    hex. PostgreSQL keeps a jsonb's value, not its text: orjson's compact form stores what json.dumps's did,
    at a twentieth of the cost."""
    return orjson.dumps(v, default=_json_default).decode()


def state_from_json(text: str) -> EntityState:
    """`EntityState.from_json`, with orjson's parser (the same values); anything unusual goes to from_json."""
    try:
        return EntityState(**orjson.loads(text))
    except (TypeError, orjson.JSONDecodeError):
        return EntityState.from_json(text)


def state_json(state: EntityState) -> str:
    """`EntityState.to_json()`, byte for byte (entity_state.state is text, compared by the rebuild's
    digest), with orjson: its compact, key-sorted, unescaped-UTF-8 output is the same text for the state's
    plain values (str, int, None, dicts; tests/unit/test_fold_golden.py checks it on arbitrary ones).
    Anything else falls back to to_json()."""
    try:
        return orjson.dumps(state.as_plain(), option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return state.to_json()

"""As-of state (ledger/domain/asof.py through projections/audit/reads.py's reading of ledger-copy rows)
equals a brute-force fold with evolve, over random histories with late corrections (valid times
before events already in the ledger) and revocations, repairs and delistings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.asof import state_as_of
from ledger.domain.model import EntityState, Event, evolve
from projections.audit import reads as audit
from projections.rows import _dumps

ENTITY = "uscc:91411002MAAY4CL12Q"
DAY0 = date(2024, 1, 1)
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[int, datetime, Event]]:
    """Events a sequencer could have accepted: endings refer to earlier openings; valid times are
    random (a late correction takes effect before events recorded earlier); ledger times increase."""
    n = draw(st.integers(1, 25))
    events: list[tuple[int, datetime, Event]] = []
    penalties: list[str] = []
    listings: list[str] = []
    t = T0
    for v in range(1, n + 1):
        t += timedelta(hours=draw(st.integers(0, 500)))
        valid = DAY0 + timedelta(days=draw(st.integers(0, 400)))
        kinds = ["penalty", "list", "rating", "honour"]
        if penalties:
            kinds += ["revoke", "repair_penalty"]
        if listings:
            kinds += ["delist", "repair_listing"]
        kind = draw(st.sampled_from(kinds))
        if kind == "penalty":
            ref = f"许市监罚〔2024〕{v}号"
            penalties.append(ref)
            t_, body = "AdministrativePenaltyImposed", {"decision_no": ref, "decision_date": valid,
                                                         "severity": draw(st.sampled_from(["minor", "general", "serious"]))}
        elif kind == "list":
            ref = f"（2024）豫10执{v}号"
            listings.append(ref)
            t_, body = "DishonestDebtorListed", {"case_no": ref, "listed_on": valid, "ground": "拒不履行",
                                                  "extension_months": draw(st.sampled_from([None, 0, 6]))}
        elif kind == "rating":
            t_, body = "TaxCreditRated", {"year": draw(st.integers(2020, 2024)), "level": draw(st.sampled_from("ABMCD")),
                                          "rated_on": valid}
        elif kind == "honour":
            t_, body = "HonourAwarded", {"honour": "守合同重信用企业", "document_no": f"许政〔2024〕{v}号",
                                         "awarded_on": valid, "valid_until": None}
        elif kind == "revoke":
            t_, body = "AdministrativePenaltyRevoked", {"penalty_decision_no": penalties.pop(
                draw(st.integers(0, len(penalties) - 1))), "decision_date": valid}
        elif kind == "repair_penalty":
            t_, body = "CreditRepaired", {"target_kind": "administrative_penalty", "decision_date": valid,
                                          "target_ref": penalties.pop(draw(st.integers(0, len(penalties) - 1)))}
        elif kind == "delist":
            t_, body = "DishonestDebtorDelisted", {"case_no": listings.pop(draw(st.integers(0, len(listings) - 1))),
                                                    "delisted_on": valid}
        else:
            t_, body = "CreditRepaired", {"target_kind": "dishonest_debtor", "decision_date": valid,
                                          "target_ref": listings.pop(draw(st.integers(0, len(listings) - 1)))}
        events.append((v, t, Event(event_id=f"e{v}", event_type=t_, entity_id=ENTITY, department="xc-samr",
                                   valid_from=valid, valid_to=None, recorded_at=t, body=body)))
    return events


def ledger_copy_rows(history: list[tuple[int, datetime, Event]]) -> list[dict[str, Any]]:
    """The rows as projections/audit/reads.history returns them: the record went through jsonb (dates as text)."""
    rows = []
    for v, t, e in history:
        record = {"envelope": {"event_id": e.event_id, "event_type": e.event_type, "source_department": e.department,
                               "valid_from": e.valid_from, "valid_to": None,
                               "recorded_at": t}, **e.body}
        rows.append({"version": v, "event_id": e.event_id, "event_type": e.event_type, "department": e.department,
                     "partition": 0, "offset": v, "hash": b"", "sequenced_at": t, "valid_from": e.valid_from,
                     "record": json.loads(_dumps(record))})
    return rows


def brute_force(history: list[tuple[int, datetime, Event]], valid_on: date | None,
                known_at: datetime | None) -> tuple[EntityState, list[int]]:
    """Fold every event in version order, keeping those in effect; an ending whose opening is not in
    effect is left out."""
    state, applied = EntityState(), []
    for v, t, e in history:
        if (valid_on is None or e.valid_from <= valid_on) and (known_at is None or t <= known_at):
            try:
                state = evolve(state, e)
            except KeyError:
                continue
            applied.append(v)
    return state, applied


@settings(max_examples=300, deadline=None)
@given(histories(), st.data())
def test_as_of_equals_a_brute_force_fold(history: list[tuple[int, datetime, Event]], data: st.DataObject) -> None:
    valid_on = data.draw(st.none() | st.dates(DAY0 - timedelta(days=5), DAY0 + timedelta(days=410)))
    last = history[-1][1]
    known_at = data.draw(st.none() | st.datetimes(T0.replace(tzinfo=None), last.replace(tzinfo=None) + timedelta(days=1),
                                                  timezones=st.just(UTC)))
    got = state_as_of(audit.recorded(ENTITY, ledger_copy_rows(history)), valid_on, known_at)
    want, applied = brute_force(history, valid_on, known_at)
    assert got.state == want
    assert got.applied == applied
    assert got.state.version == len(applied)
    assert got.known_version == sum(1 for _, t, _ in history if known_at is None or t <= known_at)


@settings(max_examples=100, deadline=None)
@given(histories())
def test_without_bounds_it_is_the_sequencers_state_and_a_late_correction_changes_the_past(
        history: list[tuple[int, datetime, Event]]) -> None:
    recorded = audit.recorded(ENTITY, ledger_copy_rows(history))
    full = EntityState()
    for _, _, e in history:
        full = evolve(full, e)
    assert state_as_of(recorded).state == full
    assert state_as_of(recorded).not_applicable == []
    # as known before the last event arrived, the state is the fold of the earlier ones, whatever valid time
    if len(history) > 1 and history[-1][1] > history[-2][1]:
        before = state_as_of(recorded, known_at=history[-1][1] - timedelta(microseconds=1))
        assert before.applied == list(range(1, len(history)))


def test_a_revocation_dated_before_its_penalty_is_reported_not_dropped() -> None:
    t = T0
    history = [
        (1, t, Event("e1", "AdministrativePenaltyImposed", ENTITY, "xc-samr", date(2024, 5, 1), None, t,
                     {"decision_no": "P1", "decision_date": date(2024, 5, 1), "severity": "general"})),
        (2, t + timedelta(days=1), Event("e2", "AdministrativePenaltyRevoked", ENTITY, "xc-samr", date(2024, 4, 1),
                                         None, t, {"penalty_decision_no": "P1", "decision_date": date(2024, 4, 1)})),
    ]
    got = state_as_of(audit.recorded(ENTITY, ledger_copy_rows(history)), valid_on=date(2024, 4, 15))
    assert got.applied == [] and got.not_applicable[0][0] == 2 and "P1" in got.not_applicable[0][1]
    assert state_as_of(audit.recorded(ENTITY, ledger_copy_rows(history)),
                       valid_on=date(2024, 5, 2)).state.penalties["P1"]["status"] == "revoked"

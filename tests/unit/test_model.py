"""decide and evolve, pure: the domain rules of every family, with dates that matter."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest

from ledger.domain import rules
from ledger.domain.decide import decide
from ledger.domain.errors import Rejection
from ledger.domain.model import EVENT_ID_MAX, Draft, EntityState, Event, check_event_id, evolve
from ledger.rules import loader
from ops import workload, workload_objections

LOADED = loader.load()
RULES, CATALOGUE = LOADED.publication, LOADED.catalogue
# the rules decide takes besides the publication rules: the catalogue, the key persons and the releases
JUDGED = {"catalogue": CATALOGUE, "requests": LOADED.objections, "key_persons": LOADED.key_persons,
          "releases": LOADED.releases}
TODAY = date(2026, 11, 27)
SUBJECT = workload.Subject("91110000600037341L", "USCC", "测试企业")


def _event(dept_rec, birth: date | None = None) -> Event:  # type: ignore[no-untyped-def]
    dept, rec = dept_rec
    env = rec["envelope"]
    subject = env["subject"]
    entity_id = f"uscc:{subject['id']}" if subject["id_type"] == "USCC" else "ric:x"
    return Event(env["event_id"], env["event_type"], entity_id, dept, env["valid_from"], env["valid_to"],
                 datetime(2026, 1, 1, tzinfo=UTC), {k: v for k, v in rec.items() if k != "envelope"}, birth)


def _apply(*dept_recs, state: EntityState | None = None) -> EntityState:  # type: ignore[no-untyped-def]
    s = state or EntityState()
    for dr in dept_recs:
        e = _event(dr)
        assert decide(s, e, TODAY, RULES, **JUDGED) == []
        s = evolve(s, e)
    return s


def _refused(state: EntityState, dept_rec, birth: date | None = None) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(Rejection) as info:
        decide(state, _event(dept_rec, birth), TODAY, RULES, **JUDGED)
    assert info.value.message
    return info.value.field, info.value.code


def test_versions_and_counts_follow_the_events() -> None:
    s = _apply(workload.registered(SUBJECT, date(2020, 1, 1)), workload.tax_rated(SUBJECT, 2025, "A", date(2026, 4, 1)))
    assert s.version == 2 and s.counts == {"EntityRegistered": 1, "TaxCreditRated": 1}
    assert s.tax_ratings == {"2025": "A"} and s.registered_on == "2020-01-01"


def test_the_state_survives_its_json_form() -> None:
    s = _apply(workload.debtor_listed(SUBJECT, "C1", date(2025, 1, 6)))
    assert EntityState.from_json(s.to_json()) == s


def test_delisting_needs_an_active_listing_under_that_number() -> None:
    s = _apply(workload.debtor_listed(SUBJECT, "C1", date(2025, 1, 6), ground=1))
    assert _refused(s, workload.debtor_delisted(SUBJECT, "C2", date(2025, 3, 1))) == ("case_no", "list.not_listed")
    s = _apply(workload.debtor_delisted(SUBJECT, "C1", date(2025, 3, 1)), state=s)
    assert _refused(s, workload.debtor_delisted(SUBJECT, "C1", date(2025, 4, 1))) == ("case_no", "list.not_listed")


def test_a_ground_one_listing_has_no_fixed_period_to_expire() -> None:
    s = _apply(workload.debtor_listed(SUBJECT, "C1", date(2023, 1, 6), ground=1))
    listing = s.listing("dishonest_debtor", "C1")
    assert _refused(s, workload.expired(SUBJECT, "dishonest_debtor", "C1", listing["event_id"], date(2026, 1, 7))) \
        == ("expired_on", "list.no_fixed_period")


def test_a_court_listing_expires_after_two_years_not_before() -> None:
    s = _apply(workload.debtor_listed(SUBJECT, "C1", date(2024, 5, 10), ground=4))
    eid = s.listing("dishonest_debtor", "C1")["event_id"]
    assert _refused(s, workload.expired(SUBJECT, "dishonest_debtor", "C1", eid, date(2026, 5, 10))) == \
        ("expired_on", "list.period_not_ended")
    s = _apply(workload.expired(SUBJECT, "dishonest_debtor", "C1", eid, date(2026, 5, 11)), state=s)
    assert s.listing("dishonest_debtor", "C1")["status"] == "expired"


def test_tax_listing_ends_early_only_after_six_months_and_payment() -> None:
    s = _apply(workload.tax_listed(SUBJECT, "T1", date(2025, 1, 15)))
    assert _refused(s, workload.tax_delisted(SUBJECT, "T1", date(2025, 7, 10), paid_on=date(2025, 3, 1)))[1] == \
        "repair.before_minimum_period"
    s = _apply(workload.tax_delisted(SUBJECT, "T1", date(2025, 7, 16), paid_on=date(2025, 3, 1)), state=s)
    assert s.listing("major_tax_violation", "T1")["status"] == "delisted"


def test_wage_arrears_early_removal_counts_six_months_from_the_correction() -> None:
    s = _apply(workload.wage_listed(SUBJECT, "W1", date(2024, 12, 2)))
    assert _refused(s, workload.wage_delisted(SUBJECT, "W1", date(2025, 9, 1), corrected_on=date(2025, 3, 3)))[1] \
        == "repair.too_soon_after_correction"
    _apply(workload.wage_delisted(SUBJECT, "W1", date(2025, 9, 4), corrected_on=date(2025, 3, 3)), state=s)


def test_penalty_repair_waits_for_the_minimum_period_of_the_regime_of_its_decision() -> None:
    rng = random.Random(1)
    s = _apply(workload.workload_penalty(rng, SUBJECT, "xc-samr", "P1", date(2025, 6, 2), "serious"))
    # NDRC Order 58 (in force 2023-05-01 .. 2026-03-31): serious, at least one year
    assert _refused(s, workload.repaired(SUBJECT, "administrative_penalty", "P1", date(2026, 5, 1)))[1] == \
        "repair.before_minimum_period"
    s = _apply(workload.repaired(SUBJECT, "administrative_penalty", "P1", date(2026, 6, 3)), state=s)
    assert s.penalties["P1"]["status"] == "repaired"
    assert _refused(s, workload.repaired(SUBJECT, "administrative_penalty", "P1", date(2026, 7, 1))) == \
        ("target_ref", "penalty.not_published")


def test_a_penalty_publication_expires_at_the_maximum_period() -> None:
    rng = random.Random(2)
    dept, pen = workload.workload_penalty(rng, SUBJECT, "xc-samr", "P2", date(2025, 3, 3), "general")
    s = _apply((dept, pen))
    assert _refused(s, workload.expired(SUBJECT, "administrative_penalty_publication", "P2",
                                        pen["envelope"]["event_id"], date(2026, 3, 3)))[1] == \
        "publication.period_not_ended"
    assert _refused(s, workload.expired(SUBJECT, "administrative_penalty_publication", "P2", "other-event",
                                        date(2026, 3, 4)))[1] == "expiry.target_mismatch"
    s = _apply(workload.expired(SUBJECT, "administrative_penalty_publication", "P2", pen["envelope"]["event_id"],
                                date(2026, 3, 4)), state=s)
    assert s.penalties["P2"]["status"] == "expired"


def test_licences_change_and_revoke_only_while_valid() -> None:
    s = _apply(workload.licence_granted(SUBJECT, "L1", date(2023, 3, 1)))
    assert _refused(s, workload.licence_granted(SUBJECT, "L1", date(2023, 4, 1)))[1] == "licence.exists"
    assert _refused(s, workload.licence_changed(SUBJECT, "L9", date(2024, 1, 1)))[1] == "licence.unknown"
    s = _apply(workload.licence_changed(SUBJECT, "L1", date(2024, 1, 1)),
               workload.licence_revoked(SUBJECT, "L1", date(2025, 1, 1)), state=s)
    assert s.licences["L1"]["status"] == "revoked"
    assert _refused(s, workload.licence_revoked(SUBJECT, "L1", date(2025, 2, 1)))[1] == "licence.not_valid"
    assert _refused(s, workload.licence_granted(SUBJECT, "L1", date(2027, 1, 1)))[1] == "time.future"


def test_red_list_honours_wait_until_no_black_listing_is_active() -> None:
    s = _apply(workload.wage_listed(SUBJECT, "W1", date(2024, 12, 2)))
    assert _refused(s, workload.honour(SUBJECT, date(2025, 1, 1))) == ("honour", "honour.blacklisted")
    s = _apply(workload.wage_delisted(SUBJECT, "W1", date(2025, 9, 4), corrected_on=date(2025, 3, 3)),
               workload.honour(SUBJECT, date(2025, 10, 1)), state=s)
    assert [x["status"] for x in s.honours.values()] == ["active"]


def test_a_minor_cannot_be_listed_as_a_dishonest_debtor() -> None:
    rec = workload.debtor_listed(SUBJECT, "C1", date(2026, 1, 5))
    assert _refused(EntityState(), rec, birth=date(2010, 1, 6)) == ("subject.id", "debtor.minor")
    assert decide(EntityState(), _event(rec, birth=date(2008, 1, 5)), TODAY, RULES) == []


def test_procurement_bans_last_one_to_three_years() -> None:
    assert _refused(EntityState(), workload.procurement_ban(SUBJECT, "B1", date(2026, 2, 2), months=6))[0] == \
        "ban_months"
    s = _apply(workload.procurement_ban(SUBJECT, "B1", date(2026, 2, 2), months=36))
    assert s.listing("procurement_ban", "B1")["period_months"] == 36


def test_feedback_must_follow_a_listing_or_penalty_of_the_entity() -> None:
    s = _apply(workload.debtor_listed(SUBJECT, "C1", date(2025, 1, 6)))
    eid = s.listing("dishonest_debtor", "C1")["event_id"]
    _apply(workload.feedback(SUBJECT, eid, date(2025, 2, 1)), state=s)
    assert _refused(s, workload.feedback(SUBJECT, "unknown", date(2025, 2, 1)))[1] == "feedback.unknown_trigger"


def test_every_family_is_covered_by_a_whole_life() -> None:
    rng = random.Random(5)
    phases = workload.life(rng, SUBJECT, 1)
    s = _apply(*phases[0], *phases[1])
    red = workload.Subject("91411002MA00000001", "USCC", "x")
    honoured = _apply(*workload.honoured_life(red), *[e for phase in workload.honour_history(red) for e in phase])
    objected = workload.Subject("91411002MA00000002", "USCC", "y")
    requests = _apply(*[e for phase in workload_objections.request_history(objected, "1", TODAY) for e in phase])
    entry = {"colour": "red", "list_kind": "red", "entity_id": "uscc:91411002MA00000001", "public_id": "91411002MA00000001",
             "subject_name": "x", "category": "enterprise", "county": "411002", "county_name": "魏都区",
             "ref": "许政〔2026〕18号", "reason": "守合同重信用企业", "department": "xc-credit-office",
             "department_name": "许昌市社会信用体系建设领导小组办公室", "listed_on": "2026-05-20", "legal_end": None,
             "listing_event_id": "e1", "entity_version": 3}
    office = _apply(workload.release_approved(1, "2026-05", [entry], date(2026, 6, 3)))
    person = workload.Subject("411082200009015574", "RIC", "王伟")
    lawyer = _apply(workload.key_person_registered(person, "lawyer", date(2024, 3, 1)))
    types = set(s.counts) | set(honoured.counts) | set(requests.counts) | set(office.counts) | set(lawyer.counts)
    assert types == rules.EVENT_TYPES
    assert office.releases["1"]["period"] == "2026-05" and lawyer.key_persons["lawyer"]["department"] == "xc-justice"


def test_an_expiry_records_the_legal_end_not_the_day_it_was_submitted() -> None:
    s = _apply(workload.debtor_listed(SUBJECT, "C1", date(2024, 5, 10), ground=4))
    eid = s.listing("dishonest_debtor", "C1")["event_id"]
    assert _refused(s, workload.expired(SUBJECT, "dishonest_debtor", "C1", eid, date(2026, 6, 1))) == \
        ("expired_on", "expiry.not_legal_end")
    rng = random.Random(2)
    p = _apply(workload.workload_penalty(rng, SUBJECT, "xc-samr", "P1", date(2025, 3, 3), "general"))
    penalty_event = p.penalties["P1"]["event_id"]
    assert _refused(p, workload.expired(SUBJECT, "administrative_penalty_publication", "P1", penalty_event,
                                        date(2026, 3, 5))) == ("expired_on", "expiry.not_legal_end")
    dept, shifted = workload.expired(SUBJECT, "administrative_penalty_publication", "P1", penalty_event,
                                     date(2026, 3, 4))
    shifted = {**shifted, "envelope": {**shifted["envelope"], "valid_from": date(2026, 3, 5)}}
    assert _refused(p, (dept, shifted)) == ("valid_from", "expiry.valid_from")
    p = _apply(workload.expired(SUBJECT, "administrative_penalty_publication", "P1", penalty_event, date(2026, 3, 4)),
               state=p)
    assert p.penalties["P1"]["status"] == "expired"


def _feedback(measure: str, department: str, trigger: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    dept, rec = workload.feedback(SUBJECT, trigger, date(2025, 2, 1))
    return department, {**rec, "measure_code": measure,
                        "envelope": {**rec["envelope"], "source_department": department}}


def test_feedback_names_a_catalogue_measure_its_department_implements_and_its_listing_brings() -> None:
    s = _apply(workload.debtor_listed(SUBJECT, "C1", date(2025, 1, 6)), workload.wage_listed(SUBJECT, "W1",
                                                                                             date(2025, 1, 6)))
    debtor = s.listing("dishonest_debtor", "C1")["event_id"]
    wage = s.listing("wage_arrears", "W1")["event_id"]
    assert _refused(s, _feedback("procurement.bar_from_bidding", "sector-procurement", debtor)) == \
        ("measure_code", "feedback.unknown_measure")
    assert _refused(s, _feedback("bar-government-procurement", "sector-transport", debtor)) == \
        ("source_department", "feedback.not_implementing_department")
    assert _refused(s, _feedback("restrict-exit", "sector-exit-entry", wage)) == \
        ("measure_code", "feedback.measure_not_triggered")
    _apply(_feedback("bar-government-procurement", "sector-procurement", debtor),
           _feedback("restrict-high-consumption", "sector-transport", debtor),
           _feedback("cancel-bidding-eligibility", "sector-bidding", wage), state=s)


def test_feedback_cannot_be_judged_without_the_catalogue() -> None:
    s = _apply(workload.debtor_listed(SUBJECT, "C1", date(2025, 1, 6)))
    e = _event(_feedback("restrict-exit", "sector-exit-entry", s.listing("dishonest_debtor", "C1")["event_id"]))
    with pytest.raises(TypeError, match="catalogue"):
        decide(s, e, TODAY, RULES)


@pytest.mark.parametrize("event_id", ["0b7c9f3e-2a41-4c1e-9a57-3f1d2c8e4b60", "许市监罚〔2026〕100号", "x" * EVENT_ID_MAX,
                                      "a/b{c}.d%2F"])
def test_visible_event_ids_are_accepted_unchanged(event_id: str) -> None:
    assert check_event_id(event_id) == event_id


@pytest.mark.parametrize(("event_id", "code", "position"), [
    ("", "required", None), ("   ", "required", None), ("x" * (EVENT_ID_MAX + 1), "event_id.too_long", None),
    ("\u00c1\nH~7b1e", "event_id.character", "character 2 "), ("a b", "event_id.character", "character 2 "),
    ("ab\u200b", "event_id.character", "character 3 "), ("\x00", "event_id.character", "character 1 "),
    ("ab\u3000", "event_id.character", "character 3 "), ("\ud800", "event_id.character", "character 1 "),
])
def test_invisible_or_overlong_event_ids_are_refused_naming_the_field(event_id: str, code: str,
                                                                      position: str | None) -> None:
    with pytest.raises(Rejection) as exc:
        check_event_id(event_id, field="envelope.event_id")
    assert (exc.value.field, exc.value.code) == ("envelope.event_id", code)
    assert "事件编号" in exc.value.message
    if position is not None:
        assert position in exc.value.message


def test_a_draft_changed_in_place_ends_where_evolve_does_and_leaves_every_state_read_from_it_alone() -> None:
    """The projector's fold keeps one Draft per entity for a batch and reads it as a state between some
    events: the draft ends on the state the chain of evolve calls gives, the state it was made from and
    every state read from it on the way stay what they were (copy on write), for a life that uses
    every family, read at random points."""
    for seed in range(20):
        rng = random.Random(seed)
        events = [_event(dr) for phase in workload.life(rng, SUBJECT, seed) for dr in phase]
        start = _apply(workload.registered(SUBJECT, date(2020, 1, 1)))
        start_json = start.to_json()
        draft, chained, read = Draft(start), start, []
        for e in events:
            draft.apply(e)
            chained = evolve(chained, e)
            if rng.random() < 0.3:
                state = draft.state()
                assert state == chained
                read.append((state, state.to_json()))
        assert draft.state() == chained and draft.version == chained.version == len(events) + 1
        assert start.to_json() == start_json and all(s.to_json() == text for s, text in read)
        assert read, "the test read no state on the way"

"""The list keeper's step (consumers/list_keeper/core.py), the alert decisions (ledger/domain/alerts.py)
and the webhook signature, without Kafka."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any

import pytest

from consumers.list_keeper.core import ListBook, Output
from consumers.webhook.service import sign, verify
from ledger.domain.alerts import alert_records, alerts_for, catalogue_change
from ledger.rules import loader
from ops import workload

RULES = loader.load()
CATALOGUE = RULES.catalogue


class Entity:
    """One subject's ledger entries, numbered as the sequencer would."""

    def __init__(self, person: bool = False) -> None:
        rng = random.Random(7)
        self.subject = workload.subjects(rng, 1, persons_share=1.0 if person else 0.0)[0]
        self.id = f"ric:{'0' * 32}" if person else f"uscc:{self.subject.id}"
        self.version = 0
        self.offset = 100

    def entry(self, dept_rec: tuple[str, dict[str, Any]],
              catalogue: int | None = None) -> tuple[int, int, dict[str, Any], dict[str, Any]]:
        """A ledger entry of the record, judged under catalogue version `catalogue` (None: an entry
        without a rules stamp, judged under version 1 of every file)."""
        dept, rec = dept_rec
        self.version += 1
        self.offset += 1
        env = rec["envelope"]
        entry = {"entity_id": self.id, "entity_version": self.version, "event_id": env["event_id"],
                 "event_type": env["event_type"], "department": dept,
                 "category": "individual" if self.subject.id_type == "RIC" else "enterprise",
                 "sequenced_at": datetime(2026, 11, 27, tzinfo=UTC)}
        if catalogue is not None:
            entry["rules_versions"] = {**RULES.stamp, "punishment_catalogue": catalogue}
        return 2, self.offset, entry, rec


def _one(outputs: list[Output]) -> Output | None:
    """The one feed output of an event that changes one list (None: it changes none)."""
    assert len(outputs) <= 1, outputs
    return outputs[0] if outputs else None


def test_a_listing_and_its_delisting_make_two_changes_and_an_explicit_delisted_status() -> None:
    book, e = ListBook(RULES), Entity()
    listed = _one(book.apply(*e.entry(workload.debtor_listed(e.subject, "（2025）豫10执1号", date(2025, 2, 10), ground=1))))
    assert listed is not None
    assert listed.change["status"] == "listed" and listed.change["list_kind"] == "dishonest_debtor"
    assert listed.change["active_list_kinds"] == ["dishonest_debtor"]
    assert listed.status_key == f"{e.id}|dishonest_debtor" and listed.status["listed"] is True
    assert [x["ref"] for x in listed.status["entries"]] == ["（2025）豫10执1号"]
    assert listed.status["entries"][0]["ground"] == 1
    book.commit()
    ended = _one(book.apply(*e.entry(workload.debtor_delisted(e.subject, "（2025）豫10执1号", date(2025, 9, 1)))))
    assert ended is not None
    assert ended.change["status"] == "delisted" and ended.change["active_list_kinds"] == []
    assert ended.change["listing_event_id"] == listed.change["event_id"]
    assert ended.change["listed_on"] == date(2025, 2, 10) and ended.change["ended_on"] == date(2025, 9, 1)
    assert ended.status == {**ended.status, "listed": False, "entries": [], "last_change": "delisted"}


def test_the_second_case_keeps_the_entity_listed_until_both_end() -> None:
    book, e = ListBook(RULES), Entity()
    for case in ("A", "B"):
        _one(book.apply(*e.entry(workload.debtor_listed(e.subject, case, date(2025, 2, 10)))))
    first_end = _one(book.apply(*e.entry(workload.debtor_delisted(e.subject, "A", date(2025, 9, 1)))))
    assert first_end is not None and first_end.status["listed"] is True
    assert [x["ref"] for x in first_end.status["entries"]] == ["B"]
    assert first_end.change["active_list_kinds"] == ["dishonest_debtor"]


def test_an_expiry_of_a_black_listing_is_a_delisting_and_a_penalty_expiry_changes_no_list() -> None:
    book, e = ListBook(RULES), Entity()
    _, rec = workload.debtor_listed(e.subject, "C1", date(2024, 5, 10))
    _one(book.apply(*e.entry(("xc-court", rec))))
    expired = _one(book.apply(*e.entry(workload.expired(e.subject, "dishonest_debtor", "C1", rec["envelope"]["event_id"],
                                                   date(2026, 5, 11)))))
    assert expired is not None and expired.change["status"] == "expired" and expired.status["listed"] is False
    rng = random.Random(1)
    _one(book.apply(*e.entry(workload.workload_penalty(rng, e.subject, "xc-samr", "P1", date(2025, 3, 3), "general"))))
    assert _one(book.apply(*e.entry(workload.expired(e.subject, "administrative_penalty_publication", "P1", "x",
                                                date(2026, 3, 4))))) is None


def test_a_redelivered_entry_is_skipped_and_a_rolled_back_batch_is_forgotten() -> None:
    book, e = ListBook(RULES), Entity()
    args = e.entry(workload.tax_listed(e.subject, "T1", date(2025, 1, 15)))
    assert _one(book.apply(*args)) is not None
    book.rollback()
    assert book.listed(e.id) == []
    assert _one(book.apply(*args)) is not None
    book.commit()
    assert _one(book.apply(*args)) is None, "the same (entity, version) again writes nothing"
    assert book.listed(e.id) == ["major_tax_violation"]


def test_the_state_restored_from_the_current_feed_ends_listings_as_the_live_one_does() -> None:
    live, e = ListBook(RULES), Entity()
    statuses = []
    for args in (e.entry(workload.wage_listed(e.subject, "W1", date(2024, 12, 2))),
                 e.entry(workload.procurement_ban(e.subject, "B1", date(2026, 2, 2), months=24)),
                 e.entry(workload.honour(e.subject, date(2026, 3, 1)))):
        out = _one(live.apply(*args))
        assert out is not None
        statuses.append(out.status)
    live.commit()
    restored = ListBook(RULES)
    restored.restore(2, statuses)
    assert restored.listed(e.id) == live.listed(e.id) == ["procurement_ban", "red", "wage_arrears"]
    end = e.entry(workload.wage_delisted(e.subject, "W1", date(2025, 10, 1), corrected_on=date(2025, 3, 3)))
    a, b = _one(live.apply(*end)), _one(restored.apply(*end))
    assert a is not None and b is not None and a.change == b.change and a.status == b.status
    ban = statuses[1]["entries"][0]
    assert ban["period_months"] == 24 and ban["legal_end"] == date(2028, 2, 3)  # the first day no longer listed


def test_a_natural_person_is_shown_masked_and_named_by_the_pseudonym() -> None:
    book, e = ListBook(RULES), Entity(person=True)
    out = _one(book.apply(*e.entry(workload.debtor_listed(e.subject, "P", date(2025, 2, 10)))))
    assert out is not None
    assert e.subject.id not in repr(out.change) + repr(out.status)
    assert "*" in out.change["public_id"] and out.change["entity_id"].startswith("ric:")


def test_a_listing_imposes_each_measure_once_per_implementing_department() -> None:
    decisions = alerts_for(CATALOGUE, "ev|dishonest_debtor|C", "dishonest_debtor", "enterprise", True,
                           ["dishonest_debtor"])
    expected = {(m.id, d) for m in CATALOGUE.for_list("dishonest_debtor", "enterprise") for d in m.departments}
    assert {(x.measure.id, x.department) for x in decisions} == expected and len(decisions) == len(expected)
    assert {x.action for x in decisions} == {"impose"}
    assert len({x.alert_id for x in decisions}) == len(decisions)
    again = alerts_for(CATALOGUE, "ev|dishonest_debtor|C", "dishonest_debtor", "enterprise", True, [])
    assert [x.alert_id for x in again] == [x.alert_id for x in decisions], "ids are deterministic"


def test_an_ending_lifts_a_measure_unless_another_listing_keeps_it() -> None:
    shared = [m for m in CATALOGUE.for_list("dishonest_debtor", "enterprise") if "major_tax_violation" in m.list_kinds]
    assert shared, "the catalogue ties restrict-exit to both the court and the tax list"
    decisions = alerts_for(CATALOGUE, "x", "dishonest_debtor", "enterprise", False, ["major_tax_violation"])
    by_measure = {x.measure.id: x for x in decisions}
    for m in shared:
        assert by_measure[m.id].action == "maintain" and by_measure[m.id].still_in_force_by == ("major_tax_violation",)
    assert {x.action for x in decisions if x.measure not in shared} == {"lift"}
    assert {x.action for x in alerts_for(CATALOGUE, "x", "dishonest_debtor", "enterprise", False, [])} == {"lift"}


def test_a_red_list_honour_raises_incentive_alerts() -> None:
    book, e = ListBook(RULES), Entity()
    out = _one(book.apply(*e.entry(workload.honour(e.subject, date(2026, 3, 1)))))
    assert out is not None
    c = out.change
    decisions = alerts_for(CATALOGUE, c["change_id"], c["list_kind"], c["category"], True, c["active_list_kinds"])
    alerts = alert_records(decisions, c, datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    assert alerts and {a["measure_kind"] for a in alerts} == {"incentive"} and {a["action"] for a in alerts} == {"impose"}


def _pairs(decisions: Any) -> set[tuple[str, str, str]]:
    return {(x.measure.id, x.department, x.action) for x in decisions}


V1, V2 = RULES.at("punishment_catalogue", 1), RULES.at("punishment_catalogue", 2)
# version 2 ties more measures to the wage-arrears list than version 1 (and adds restrict-market-access)
WAGE_ADDED = {(m.id, d) for m in V2.for_list("wage_arrears", "enterprise") for d in m.departments} - {
    (m.id, d) for m in V1.for_list("wage_arrears", "enterprise") for d in m.departments}


def test_the_catalogue_applied_is_the_one_the_entry_was_judged_under() -> None:
    assert WAGE_ADDED, "version 2 of the catalogue adds wage-arrears measures"
    book, e = ListBook(RULES), Entity()
    out = _one(book.apply(*e.entry(workload.wage_listed(e.subject, "许人社欠1号", date(2025, 2, 10)), catalogue=1)))
    assert out is not None and out.catalogue_version == 1
    assert out.status["entries"][0]["catalogue_version"] == 1
    book.commit()
    # ended under version 2: what version 1 imposed is lifted, and what version 2 ties to the list too
    ended = _one(book.apply(*e.entry(workload.wage_delisted(e.subject, "许人社欠1号", date(2025, 9, 1),
                                                              date(2025, 8, 30)), catalogue=2)))
    assert ended is not None and ended.catalogue_version == 2 and ended.imposed_under == 1
    c = ended.change
    decisions = alerts_for(V2, c["change_id"], c["list_kind"], c["category"], False, c["active_list_kinds"],
                           imposed_under=V1)
    v1 = {(m.id, d) for m in V1.for_list("wage_arrears", "enterprise") for d in m.departments}
    assert {(x.measure.id, x.department) for x in decisions} == v1 | WAGE_ADDED
    assert {x.action for x in decisions} == {"lift"}
    assert {x.catalogue_version for x in decisions} == {2}, "a measure both versions tie is lifted under the newer"


def test_an_entry_without_a_rules_stamp_is_judged_under_catalogue_version_1() -> None:
    book, e = ListBook(RULES), Entity()
    out = _one(book.apply(*e.entry(workload.wage_listed(e.subject, "许人社欠2号", date(2025, 2, 10)))))
    assert out is not None and out.catalogue_version == 1 and out.imposed_under is None


def test_a_restored_listing_keeps_the_catalogue_it_was_imposed_under() -> None:
    book, e = ListBook(RULES), Entity()
    out = _one(book.apply(*e.entry(workload.wage_listed(e.subject, "许人社欠3号", date(2025, 2, 10)), catalogue=1)))
    assert out is not None
    fresh = ListBook(RULES)
    fresh.restore(2, [out.status])
    ended = _one(fresh.apply(*e.entry(workload.wage_delisted(e.subject, "许人社欠3号", date(2025, 9, 1),
                                                               date(2025, 8, 30)), catalogue=2)))
    assert ended is not None and ended.imposed_under == 1


def test_a_new_catalogue_imposes_what_it_adds_to_a_listing_in_force_and_nothing_else() -> None:
    decisions = catalogue_change(V1, V2, "ev|wage_arrears|1", "wage_arrears", "enterprise", ["wage_arrears"])
    assert {(x.measure.id, x.department) for x in decisions} == WAGE_ADDED
    assert {x.action for x in decisions} == {"impose"} and {x.catalogue_version for x in decisions} == {2}
    again = catalogue_change(V1, V2, "ev|wage_arrears|1", "wage_arrears", "enterprise", ["wage_arrears"])
    assert [x.alert_id for x in again] == [x.alert_id for x in decisions], "ids are deterministic"
    live = alerts_for(V2, "ev|wage_arrears|1", "wage_arrears", "enterprise", True, ["wage_arrears"])
    assert not {x.alert_id for x in decisions} & {x.alert_id for x in live}, "not the ids of the listing's own alerts"
    assert catalogue_change(V2, V2, "x", "dishonest_debtor", "enterprise", ["dishonest_debtor"]) == []


def test_going_back_a_catalogue_version_lifts_what_it_drops_unless_another_list_keeps_it() -> None:
    decisions = catalogue_change(V2, V1, "x", "wage_arrears", "enterprise", ["wage_arrears", "dishonest_debtor"])
    assert {(x.measure.id, x.department) for x in decisions} == WAGE_ADDED
    for x in decisions:
        keeps = x.measure.id in V1.measures and "dishonest_debtor" in V1.measures[x.measure.id].list_kinds \
            and x.department in V1.measures[x.measure.id].departments
        assert (x.action, x.still_in_force_by) == (("maintain", ("dishonest_debtor",)) if keeps else ("lift", ()))
    assert {x.action for x in decisions} >= {"lift"}


@pytest.mark.parametrize("tamper", ["body", "timestamp", "secret", "stale"])
def test_the_webhook_signature_verifies_and_refuses_any_change(tamper: str) -> None:
    secret, body, ts = b"0123456789abcdef-secret", b'{"alert_id": "a"}', 1_800_000_000
    headers = {"X-Credit-Timestamp": str(ts), "X-Credit-Signature": sign(secret, ts, body)}
    assert verify(secret, headers, body, now=ts + 10)
    if tamper == "body":
        body = body.replace(b"a", b"b")
    elif tamper == "timestamp":
        headers["X-Credit-Timestamp"] = str(ts + 1)
    elif tamper == "secret":
        secret = b"another-secret-of-16+"
    assert not verify(secret, headers, body, now=ts + (400 if tamper == "stale" else 10))

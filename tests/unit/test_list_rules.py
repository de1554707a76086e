"""The list rules of the court, the credit office, the red list and the tax levels, each with the article
it rests on (docs/domain-notes.md §4.3, §4.4, §4.6, §13)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from consumers.list_keeper.core import ListBook
from ledger.domain import lists
from ledger.domain.decide import decide
from ledger.domain.errors import Rejection
from ledger.domain.model import EntityState, Event, evolve
from ledger.rules import loader
from ops import workload
from projections.grade import grade

LOADED = loader.load()
RULES, CATALOGUE, GRADE = LOADED.publication, LOADED.catalogue, LOADED.grade
TODAY = date(2026, 11, 27)
FIRM = workload.Subject("91110000600037341L", "USCC", "测试企业")


def _event(dept_rec) -> Event:  # type: ignore[no-untyped-def]
    dept, rec = dept_rec
    env = rec["envelope"]
    return Event(env["event_id"], env["event_type"], "uscc:x", dept, env["valid_from"], env["valid_to"],
                 datetime(2026, 1, 1, tzinfo=UTC), {k: v for k, v in rec.items() if k != "envelope"})


def _apply(*dept_recs, state: EntityState | None = None) -> EntityState:  # type: ignore[no-untyped-def]
    s = state or EntityState()
    for dr in dept_recs:
        e = _event(dr)
        decide(s, e, TODAY, RULES, CATALOGUE)
        s = evolve(s, e)
    return s


def _refused(state: EntityState, dept_rec) -> Rejection:  # type: ignore[no-untyped-def]
    with pytest.raises(Rejection) as info:
        decide(state, _event(dept_rec), TODAY, RULES, CATALOGUE)
    return info.value


# --------------------------------------------------------------------------- court, 法释〔2017〕7号


def test_art_2_and_10_a_fixed_term_listing_is_not_shortened_by_performance() -> None:
    """法释〔2017〕7号 art. 10(2): with an inclusion period, art. 10(1) (performed) does not apply."""
    s = _apply(workload.debtor_listed(FIRM, "C1", date(2025, 6, 2), ground=4))
    r = _refused(s, workload.debtor_delisted(FIRM, "C1", date(2026, 3, 2), reason="performed"))
    assert (r.field, r.code) == ("delisting_reason", "debtor.fixed_term_not_shortened")
    assert "第十条" in r.message and "2027-06-03" in r.message
    # an extension (art. 2) lengthens the term that performance cannot shorten
    s = _apply(workload.debtor_listed(FIRM, "C2", date(2023, 6, 2), ground=2), state=s)
    s = _apply(workload.debtor_delisted(FIRM, "C2", date(2025, 6, 4), reason="performed"), state=s)
    assert s.listing("dishonest_debtor", "C2")["status"] == "delisted"  # the 2-year term is over: deletion due


def test_art_10_a_listing_without_a_term_ends_on_performance() -> None:
    """法释〔2017〕7号 art. 10(1): ground (1) has no fixed period; performance ends it."""
    s = _apply(workload.debtor_listed(FIRM, "C1", date(2025, 6, 2), ground=1),
               workload.debtor_delisted(FIRM, "C1", date(2026, 3, 2), reason="performed"))
    assert s.listing("dishonest_debtor", "C1")["status"] == "delisted"


@pytest.mark.parametrize("reason", ["settlement_performed", "applicant_request", "no_assets_found",
                                    "execution_suspended", "non_enforcement", "execution_terminated", "correction"])
def test_art_10_the_other_grounds_still_end_a_fixed_term_listing(reason: str) -> None:
    """法释〔2017〕7号 art. 10(2) excludes only art. 10(1); arts. 10(2)-(7) and 12 still apply."""
    s = _apply(workload.debtor_listed(FIRM, "C1", date(2025, 6, 2), ground=5),
               workload.debtor_delisted(FIRM, "C1", date(2026, 3, 2), reason=reason))
    assert s.listing("dishonest_debtor", "C1")["status"] == "delisted"


def test_art_10_only_the_court_deletes_a_credit_repair_of_a_court_listing_is_refused() -> None:
    """法释〔2017〕7号 art. 10: the enforcing court deletes; the credit office cannot repair it away."""
    s = _apply(workload.debtor_listed(FIRM, "C1", date(2025, 1, 6), ground=1))
    r = _refused(s, workload.repaired(FIRM, "dishonest_debtor", "C1", date(2026, 3, 2), corrected_on=date(2026, 1, 2)))
    assert (r.field, r.code) == ("target_kind", "repair.court_only")
    assert "法院" in r.message and "court" in r.message


# --------------------------------------------------------------------------- red list: honours (§13)


def _honour(on: date, doc: str, title: str = "守合同重信用企业", valid_until: date | None = None):  # type: ignore[no-untyped-def]
    dept, rec = workload.honour(FIRM, on)
    return dept, {**rec, "document_no": doc, "honour": title, "valid_until": valid_until}


def _changes(state: EntityState, dept_rec) -> tuple[EntityState, list[lists.ListChange]]:  # type: ignore[no-untyped-def]
    e = _event(dept_rec)
    decide(state, e, TODAY, RULES, CATALOGUE)
    after = evolve(state, e)
    return after, lists.list_changes(e, state, after, RULES, CATALOGUE)


def test_an_honour_holds_for_its_kinds_validity_and_no_longer() -> None:
    """河南省社会信用条例 art. 37: the designating body sets the validity; 守合同重信用 holds two years [M]."""
    r = _refused(EntityState(), _honour(date(2024, 3, 1), "H1", valid_until=date(2026, 3, 2)))
    assert (r.field, r.code) == ("valid_until", "honour.validity_too_long") and "24" in r.message
    s, [change] = _changes(EntityState(), _honour(date(2024, 3, 1), "H1"))  # no stated end: the kind's default
    assert (change.list_kind, change.status, change.legal_end) == ("red", "listed", date(2026, 3, 2))
    award_id = change.event_id
    early = _refused(s, workload.honour_expired(FIRM, ("", {"document_no": "H1", "envelope": {"event_id": award_id}}),
                                                date(2026, 3, 1)))
    assert (early.field, early.code) == ("expired_on", "honour.period_not_ended")
    s, [ended] = _changes(s, workload.honour_expired(FIRM, ("", {"document_no": "H1", "envelope": {"event_id": award_id}}),
                                                     date(2026, 3, 2)))
    assert (ended.status, ended.ended_on, ended.listing_event_id) == ("expired", date(2026, 3, 2), award_id)
    assert s.active_honours() == [] and grade(s, GRADE).reasons == ()


def test_only_the_awarding_department_revokes_an_honour() -> None:
    """河南省社会信用条例 arts. 34(8), 37: the designating body manages (and revokes) its red list."""
    s = _apply(_honour(date(2025, 3, 1), "H1"))
    dept, rec = workload.honour_revoked(FIRM, "H1", date(2025, 9, 1))
    r = _refused(s, ("xc-samr", rec))
    assert (r.field, r.code) == ("source_department", "honour.not_awarding_department")
    s, [change] = _changes(s, (dept, rec))
    assert (change.status, change.ref, change.changed_by) == ("revoked", "H1", "xc-credit-office")
    assert _refused(s, (dept, rec)).code == "honour.ended"


def test_a_black_listing_suspends_every_honour_and_the_suspension_outlives_the_listing() -> None:
    """河南省社会信用条例 art. 34(8): honours of a black-listed subject are revoked; the ledger suspends them at
    once and the awarding body decides (docs/domain-notes.md §13)."""
    s = _apply(_honour(date(2025, 3, 1), "H1"), _honour(date(2025, 4, 1), "H2", "诚信示范企业"))
    assert grade(s, GRADE).reasons[0].points == 2 * GRADE.honour_points
    s, changes = _changes(s, workload.debtor_listed(FIRM, "C1", date(2025, 6, 2), ground=1))
    assert [(c.list_kind, c.ref, c.status) for c in changes] == [
        ("dishonest_debtor", "C1", "listed"), ("red", "H1", "suspended"), ("red", "H2", "suspended")]
    assert all(c.ended_on == date(2025, 6, 2) and "第三十四条" in c.reason for c in changes[1:])
    assert "honour.red_list" not in {r.code for r in grade(s, GRADE).reasons}
    s = _apply(workload.debtor_delisted(FIRM, "C1", date(2025, 9, 1), reason="performed"), state=s)
    assert s.active_honours() == [] and {x["status"] for x in s.honours.values()} == {"suspended"}
    s, changes = _changes(s, workload.honour_revoked(FIRM, "H1", date(2025, 10, 1)))  # the awarding body decides
    # already off the red list: the change says it is now revoked (the views' row follows), no longer suspended
    assert [(c.list_kind, c.ref, c.status, c.ended_on) for c in changes] == [("red", "H1", "revoked", date(2025, 10, 1))]
    assert s.honours["H1"]["status"] == "revoked"


def test_the_list_keeper_writes_the_black_listing_and_each_suspension() -> None:
    book = ListBook(LOADED)
    entries = iter(range(1, 10))

    def entry(dept_rec):  # type: ignore[no-untyped-def]
        dept, rec = dept_rec
        v = next(entries)
        return 0, v, {"entity_id": "uscc:x", "entity_version": v, "event_id": rec["envelope"]["event_id"],
                      "event_type": rec["envelope"]["event_type"], "department": dept, "category": "enterprise",
                      "sequenced_at": datetime(2026, 11, 27, tzinfo=UTC)}, rec

    [awarded] = book.apply(*entry(_honour(date(2025, 3, 1), "H1")))
    book.commit()
    restored = ListBook(LOADED)
    restored.restore(0, [awarded.status])
    listing = entry(workload.wage_listed(FIRM, "W1", date(2025, 6, 2)))
    for keeper in (book, restored):
        outs = keeper.apply(*listing)
        assert [(o.change["list_kind"], o.change["status"]) for o in outs] == [("wage_arrears", "listed"),
                                                                              ("red", "suspended")]
        assert outs[1].status["listed"] is False and outs[1].change["active_list_kinds"] == ["wage_arrears"]
        keeper.commit()
    revoked = entry(workload.honour_revoked(FIRM, "H1", date(2025, 10, 1)))
    assert book.apply(*revoked) == [] and restored.apply(*revoked) == []


# --------------------------------------------------------------------------- tax levels (§4.4)


def test_tax_level_d_is_implied_while_a_major_tax_violation_listing_is_active() -> None:
    """国家税务总局令第54号: a listed major tax violator is rated D directly, whatever the last rating said."""
    s = _apply(workload.tax_rated(FIRM, 2024, "B", date(2025, 4, 10)),
               workload.tax_listed(FIRM, "T1", date(2025, 5, 6)))
    [tax] = [r for r in grade(s, GRADE).reasons if r.code.startswith("tax.")]
    assert (tax.code, tax.ref, tax.points) == ("tax.level_D_implied", "T1", GRADE.tax_levels["D"])
    assert "D级" in tax.text_zh and "第54号" in tax.text_zh
    r = _refused(s, workload.tax_rated(FIRM, 2025, "A", date(2026, 4, 10)))
    assert (r.field, r.code) == ("level", "tax_rating.listed_major_violation")
    s = _apply(workload.tax_delisted(FIRM, "T1", date(2025, 11, 7), paid_on=date(2025, 10, 1)), state=s)
    assert [r.code for r in grade(s, GRADE).reasons if r.code.startswith("tax.")] == []  # B weighs 0


def test_level_a_is_a_red_list_entry_until_the_next_annual_rating() -> None:
    """Tax credit A: the usual red-list entry, valid for its rating year until the next rating (§13)."""
    s, [listed] = _changes(EntityState(), workload.tax_rated(FIRM, 2024, "A", date(2025, 4, 10)))
    assert (listed.list_kind, listed.ref, listed.status, listed.legal_end) == ("red", "纳税信用A级-2024", "listed", None)
    s, changes = _changes(s, workload.tax_rated(FIRM, 2025, "B", date(2026, 4, 9)))
    assert [(c.ref, c.status, c.ended_on) for c in changes] == [("纳税信用A级-2024", "expired", date(2026, 4, 9))]
    s, [again] = _changes(s, workload.tax_rated(FIRM, 2025, "A", date(2026, 4, 20)))  # a re-rating of 2025
    assert (again.ref, again.status) == ("纳税信用A级-2025", "listed")
    s, changes = _changes(s, workload.procurement_ban(FIRM, "B1", date(2026, 5, 4), months=12))
    assert [(c.ref, c.status) for c in changes][1:] == [("纳税信用A级-2025", "suspended")]

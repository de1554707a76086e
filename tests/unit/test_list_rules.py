"""The list rules of the court, the credit office, the red list and the tax levels, each with the article
it rests on (docs/domain-notes.md §4.3, §4.4, §4.6, §13)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ledger.domain.decide import decide
from ledger.domain.errors import Rejection
from ledger.domain.model import EntityState, Event, evolve
from ledger.rules import loader
from ops import workload

LOADED = loader.load()
RULES, CATALOGUE = LOADED.publication, LOADED.catalogue
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

"""Given red-list honours on the ledger — one whose two years ran out long ago, one still valid, one the
awarding department revokes, one whose holder is then black-listed by the court, and an A-level tax rating
followed by the next year's rating — when the expiry scheduler runs (its clock fixed with --today), then
the ended honour expires exactly once through the sequencer on the day after its last valid day, and the
list change feed (credit.lists.changes), the views and the grade show each entry's end: expired, revoked,
suspended by the black listing (河南省社会信用条例 art. 34(8)), expired by the next rating; the valid
honour stays. A run again appends nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

from consumers.scheduler import core as scheduler
from ops import workload
from schemas import registry
from tests import feeds, helpers
from tests.integration.test_scheduler import run_once, submit

TODAY = date(2025, 6, 30)


def _honour(subject: workload.Subject, on: date, doc: str, valid_until: date | None) -> tuple[str, dict[str, Any]]:
    dept, rec = workload.honour(subject, on)
    return dept, {**rec, "document_no": doc, "valid_until": valid_until}


async def test_honours_expire_by_the_scheduler_and_every_end_reaches_the_feed_and_the_views(settings,
                                                                                          services) -> None:
    rng = helpers.rng("honours")
    lapsed, valid, revoked, listed, rated = workload.subjects(rng, 5, persons_share=0.0)
    [decided] = workload.subjects(rng, 1, persons_share=0.0)  # suspended by a listing, then revoked
    awards = [_honour(lapsed, date(2022, 3, 1), "许政〔2022〕H1号", None),  # default two years: ends 2024-03-02
              _honour(valid, date(2024, 5, 6), "许政〔2024〕H2号", date(2026, 5, 5)),
              _honour(revoked, date(2024, 1, 10), "许政〔2024〕H3号", None),
              _honour(listed, date(2023, 6, 1), "许政〔2023〕H4号", None),
              workload.tax_rated(rated, 2023, "A", date(2024, 4, 12)),
              _honour(decided, date(2023, 6, 1), "许政〔2023〕H6号", None)]
    ends = [workload.honour_revoked(revoked, "许政〔2024〕H3号", date(2024, 9, 2)),
            workload.debtor_listed(listed, "（2024）豫10执H5号", date(2024, 2, 1), ground=1),
            workload.tax_rated(rated, 2024, "B", date(2025, 4, 10)),
            workload.debtor_listed(decided, "（2024）豫10执H7号", date(2024, 2, 1), ground=1)]
    decisions = [workload.honour_revoked(decided, "许政〔2023〕H6号", date(2024, 3, 1))]  # the awarding body decides
    outcomes = await submit(settings, awards) + await submit(settings, ends) + await submit(settings, decisions)
    entity_ids = {o["entity_id"] for o in outcomes}
    await helpers.projected(settings)

    summary = run_once(settings, TODAY)
    assert summary["refusals"] == {}
    await helpers.projected(settings)
    expiry_id = scheduler.expiry_event_id(awards[0][1]["envelope"]["event_id"], scheduler.RED)
    expiries = [e for es in (await helpers.ledger_entries(settings, entity_ids)).values() for e in es
                if e["event_type"] == "HonourExpired"]
    assert [(e["event_id"], e["department"]) for e in expiries] == [(expiry_id, scheduler.DEPARTMENT)]
    assert registry.decode(expiries[0]["submission"])[1]["expired_on"] == date(2024, 3, 2)

    rows = dict((r[0], r[1:]) for r in helpers.pg_rows(
        settings, "select ref, status, ended_on, legal_end from views.list_entries "
        "where colour = 'red' and entity_id = any(%s)", (list(entity_ids),)))
    assert rows == {
        "许政〔2022〕H1号": ("expired", date(2024, 3, 2), date(2024, 3, 2)),
        "许政〔2024〕H2号": ("active", None, date(2026, 5, 6)),
        "许政〔2024〕H3号": ("revoked", date(2024, 9, 2), date(2026, 1, 11)),
        "许政〔2023〕H4号": ("suspended", date(2024, 2, 1), date(2025, 6, 2)),
        "许政〔2023〕H6号": ("revoked", date(2024, 3, 1), date(2025, 6, 2)),
        "纳税信用A级-2023": ("expired", date(2025, 4, 10), None)}
    red = {e: bool(v) for e, v in helpers.pg_rows(
        settings, "select entity_id, red_listed from views.entities where entity_id = any(%s)", (list(entity_ids),))}
    assert sorted(red.values()) == [False, False, False, False, False, True]

    event_ids = {o["event_id"] for o in outcomes} | {expiry_id}
    changes = await feeds.changes(settings, event_ids)
    got = sorted((c["ref"], c["status"], c["changed_by"]) for c in changes if c["list_kind"] == "red")
    assert got == sorted([
        ("许政〔2022〕H1号", "listed", "xc-credit-office"), ("许政〔2022〕H1号", "expired", scheduler.DEPARTMENT),
        ("许政〔2024〕H2号", "listed", "xc-credit-office"),
        ("许政〔2024〕H3号", "listed", "xc-credit-office"), ("许政〔2024〕H3号", "revoked", "xc-credit-office"),
        ("许政〔2023〕H4号", "listed", "xc-credit-office"), ("许政〔2023〕H4号", "suspended", "xc-court"),
        # the feed shows the red list as it is: a suspended honour is off it already, its revocation changes nothing there
        ("许政〔2023〕H6号", "listed", "xc-credit-office"), ("许政〔2023〕H6号", "suspended", "xc-court"),
        ("纳税信用A级-2023", "listed", "xc-tax"), ("纳税信用A级-2023", "expired", "xc-tax")])

    again = run_once(settings, TODAY)
    assert again["refusals"] == {}
    await helpers.projected(settings)
    assert len([e for es in (await helpers.ledger_entries(settings, entity_ids)).values() for e in es
                if e["event_type"] == "HonourExpired"]) == 1

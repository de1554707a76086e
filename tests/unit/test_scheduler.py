"""The scheduler's pure parts: the expiry id and record follow from the target alone (so a second
submission is a duplicate at the sequencer), and the record is a valid ListingExpired."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from consumers.scheduler import core as scheduler
from ledger.platform.clock import Clock
from schemas import registry

DUE = scheduler.Due("uscc:91411002MA5FMHPPX6", "wage_arrears", "许人社欠薪〔2021〕1号", "evt-1", date(2024, 3, 2), 1, 7)
SUBJECT = {"id": "91411002MA5FMHPPX6", "id_type": "USCC", "name": "许昌瑞祥食品有限公司"}


def test_the_expiry_id_depends_on_the_target_and_the_list_kind_only() -> None:
    a = scheduler.expiry_event_id("evt-1", "wage_arrears")
    assert a == scheduler.expiry_event_id("evt-1", "wage_arrears")
    assert len({a, scheduler.expiry_event_id("evt-2", "wage_arrears"),
                scheduler.expiry_event_id("evt-1", "administrative_penalty_publication")}) == 3


def test_the_record_is_the_same_bytes_every_time_and_dated_on_the_legal_end() -> None:
    first = registry.encode("ListingExpired", scheduler.expiry_record(DUE, SUBJECT, 1))
    again = registry.encode("ListingExpired", scheduler.expiry_record(DUE, dict(SUBJECT), 1))
    assert first == again
    _, rec = registry.decode(first)
    assert (rec["expired_on"], rec["envelope"]["valid_from"]) == (DUE.ends, DUE.ends)
    assert rec["envelope"]["recorded_at"] == datetime(2024, 3, 2, tzinfo=timezone(timedelta(hours=8)))
    assert (rec["envelope"]["source_department"], rec["target_event_id"], rec["target_ref"]) == (
        "ledger-scheduler", "evt-1", DUE.target_ref)


def test_the_clock_is_fixed_by_a_date_or_refused_with_the_option_named() -> None:
    clock = Clock.fixed(datetime(2026, 12, 3, 16, 30, tzinfo=UTC))
    assert scheduler.parse_today("2025-06-30", clock.today)() == date(2025, 6, 30)
    with pytest.raises(SystemExit, match="--today"):
        scheduler.parse_today("30/06/2025", clock.today)


def test_without_a_fixed_date_today_is_the_china_date_of_the_clock() -> None:
    # 00:30 in Beijing on 4 December is 16:30 UTC on 3 December: a period ending on 4 December is due
    at_half_past_midnight = scheduler.parse_today(None, Clock.fixed(datetime(2026, 12, 3, 16, 30, tzinfo=UTC)).today)
    assert at_half_past_midnight() == date(2026, 12, 4)
    before_midnight = scheduler.parse_today(None, Clock.fixed(datetime(2026, 12, 3, 15, 59, tzinfo=UTC)).today)
    assert before_midnight() == date(2026, 12, 3)

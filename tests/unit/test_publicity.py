"""Double publicity (双公示): publication windows, the 7-working-day deadline, the national fields.

Working days come from ledger/rules/workdays.v<N>.json (the State Council's yearly notices); the
records from ops.workload, the same shapes the emitters send.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.decide import decide
from ledger.domain.errors import Rejection
from ledger.domain.identity import mask_ric
from ledger.domain.model import EntityState, Event, evolve
from ledger.rules import loader
from ops import workload
from projections.publicity import (
    NOT_COVERED,
    Lateness,
    Window,
    china_date,
    deadline,
    fen_to_wanyuan,
    lateness,
    licence_window,
    national_fields,
    publication_window,
    wanyuan_to_fen,
)

RULES = loader.load()
CAL = RULES.calendar
PUBLICATION = RULES.publication
TODAY = date(2026, 11, 27)
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "avro"
ORG = workload.Subject("91411002MA5FMHPPX6", "USCC", "许昌瑞祥食品有限公司")
SHOP = workload.Subject(workload.make_uscc(random.Random(5), "92", "411002"), "USCC", "许昌市魏都区钧瓷商行")
PERSON_ID = "41100219990315028X"  # a valid resident ID (check character X; sequence 028, female), born 1999-03-15 in 魏都区
PERSON = workload.Subject(PERSON_ID, "RIC", "王芳")


def _penalty(subject: workload.Subject, decided: date, fine_fen: int | None = 200_000,
             severity: str = "general") -> dict[str, Any]:
    _, rec = workload.workload_penalty(random.Random(decided.toordinal()), subject, "xc-samr",
                                       f"许市监罚〔{decided.year}〕{decided:%m%d}号", decided, severity)
    rec["fine_fen"] = fine_fen
    return rec


def _accepted(dept_rec: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """The record, after checking that the domain accepts it and evolving a state with it."""
    dept, rec = dept_rec
    env = rec["envelope"]
    e = Event(env["event_id"], env["event_type"], "x", dept, env["valid_from"], env["valid_to"],
              datetime(2026, 11, 27, tzinfo=UTC), {k: v for k, v in rec.items() if k != "envelope"})
    assert decide(EntityState(), e, TODAY, PUBLICATION) == []
    evolve(EntityState(), e)
    return rec


def _body(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "envelope"}


# --------------------------------------------------------------------------- the 7-working-day deadline


def test_deadline_across_the_2024_national_day_holiday() -> None:
    # 国务院办公厅关于2024年部分节假日安排的通知: 国庆节 10月1日至7日放假调休，9月29日（星期日）、
    # 10月12日（星期六）上班. Decision on Friday 2024-09-27; the decision day is not counted:
    #   Sat 9/28 rest; Sun 9/29 worked (1); Mon 9/30 (2); 10/1-10/7 off; Tue 10/8 (3); Wed 10/9 (4);
    #   Thu 10/10 (5); Fri 10/11 (6); Sat 10/12 worked (7).
    decided = date(2024, 9, 27)
    assert deadline(CAL, decided) == date(2024, 10, 12)
    assert lateness(CAL, decided, date(2024, 10, 12)) == Lateness(date(2024, 10, 12), 7, False)
    assert lateness(CAL, decided, date(2024, 9, 30)) == Lateness(date(2024, 10, 12), 2, False)
    assert lateness(CAL, decided, date(2024, 10, 14)) == Lateness(date(2024, 10, 12), 8, True)


def test_deadline_across_the_2025_spring_festival() -> None:
    # 国务院办公厅关于2025年部分节假日安排的通知: 春节 1月28日（除夕）至2月4日放假调休，1月26日（星期日）、
    # 2月8日（星期六）上班 (the first Spring Festival with 除夕 off, 国务院令第795号). Decision on Friday
    # 2025-01-24:
    #   Sat 1/25 rest; Sun 1/26 worked (1); Mon 1/27 (2); 1/28-2/4 off; Wed 2/5 (3); Thu 2/6 (4);
    #   Fri 2/7 (5); Sat 2/8 worked (6); Sun 2/9 rest; Mon 2/10 (7).
    decided = date(2025, 1, 24)
    assert deadline(CAL, decided) == date(2025, 2, 10)
    assert lateness(CAL, decided, date(2025, 2, 10)) == Lateness(date(2025, 2, 10), 7, False)
    assert lateness(CAL, decided, date(2025, 2, 11)) == Lateness(date(2025, 2, 10), 8, True)


def test_recorded_on_a_rest_day_after_the_deadline_is_late_with_seven_working_days() -> None:
    # Sunday 2024-10-13 is a rest day: no working day passed since the deadline, but the period ended
    # with Saturday 10/12 (the 7th working day), so a record on 10/13 is late.
    assert lateness(CAL, date(2024, 9, 27), date(2024, 10, 13)) == Lateness(date(2024, 10, 12), 7, True)


def test_recorded_on_the_decision_day() -> None:
    assert lateness(CAL, date(2024, 3, 4), date(2024, 3, 4)) == Lateness(date(2024, 3, 13), 0, False)


def test_a_real_penalty_recorded_in_time_and_one_recorded_late() -> None:
    rec = _accepted(("xc-samr", _penalty(ORG, date(2024, 9, 27))))
    # appended at 2024-10-12 15:59:59 UTC = 23:59:59 in Xuchang: still the deadline day
    in_time = china_date(datetime(2024, 10, 12, 15, 59, 59, tzinfo=UTC))
    # one second later it is Sunday 10/13 in Xuchang, though still Saturday in UTC
    late = china_date(datetime(2024, 10, 12, 16, 0, 0, tzinfo=UTC))
    assert (in_time, late) == (date(2024, 10, 12), date(2024, 10, 13))
    assert lateness(CAL, rec["decision_date"], in_time).late is False
    assert lateness(CAL, rec["decision_date"], late).late is True


def test_china_date_needs_a_zone() -> None:
    assert china_date(datetime(2024, 9, 30, 16, 30, tzinfo=UTC)) == date(2024, 10, 1)
    assert china_date(datetime(2024, 10, 1, 0, 30, tzinfo=timezone(timedelta(hours=8)))) == date(2024, 10, 1)
    with pytest.raises(ValueError, match="naive"):
        china_date(datetime(2024, 10, 1, 0, 30))


def test_ledger_date_in_a_provisional_year_is_late_and_counted_provisionally() -> None:
    # 2026 is the last official year. A decision of 2026-06-01 has its deadline in 2026 (2026-06-10),
    # so a ledger date in 2027 is certainly late; the working days taken are counted over the
    # provisional 2027 (1 Jan off, Mon 4 and Tue 5 Jan worked).
    got = lateness(CAL, date(2026, 6, 1), date(2027, 1, 5))
    assert got.deadline == date(2026, 6, 10) and got.late is True and got.reason is None
    assert got.provisional
    assert not lateness(CAL, date(2026, 6, 1), date(2026, 6, 10)).provisional


def test_deadline_running_into_a_provisional_year() -> None:
    decided = date(2026, 12, 28)  # the 7th working day after it lies in 2027, whose notice is not in the file
    assert deadline(CAL, decided) == date(2027, 1, 7)  # 29, 30, 31 Dec; 1 Jan off; 4, 5, 6, 7 Jan
    assert lateness(CAL, decided, date(2027, 1, 7)) == Lateness(date(2027, 1, 7), 7, False, None, True)
    assert lateness(CAL, decided, date(2027, 1, 8)) == Lateness(date(2027, 1, 7), 8, True, None, True)


def test_decision_before_the_calendar() -> None:
    assert lateness(CAL, date(2016, 12, 20), date(2017, 3, 1)) == Lateness(None, None, None, NOT_COVERED)


def test_decision_of_2017_has_an_official_deadline() -> None:
    assert lateness(CAL, date(2017, 9, 29), date(2017, 10, 13)) == Lateness(date(2017, 10, 16), 6, False)


def test_dates_may_be_iso_text_but_not_datetimes() -> None:
    assert lateness(CAL, "2024-09-27", "2024-10-12") == Lateness(date(2024, 10, 12), 7, False)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="china_date"):
        lateness(CAL, date(2024, 9, 27), datetime(2024, 10, 12, tzinfo=UTC))


# decision and ledger date (3 days before to 60 days after) both inside the covered years 2019-2026
covered = st.dates(min_value=date(2019, 1, 4), max_value=date(2026, 10, 31))


@given(covered, st.integers(min_value=-3, max_value=60))
def test_lateness_agrees_with_the_calendar(decided: date, days: int) -> None:
    recorded = decided + timedelta(days=days)
    got = lateness(CAL, decided, recorded)
    assert got.reason is None and got.deadline is not None and got.working_days_taken is not None
    assert got.deadline == CAL.add_working_days(decided, 7)
    assert got.working_days_taken == CAL.working_days_between(decided, recorded)
    assert got.late == (recorded > got.deadline)
    if got.working_days_taken > 7:
        assert got.late
    if got.working_days_taken < 7:
        assert not got.late


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31)),
       st.integers(min_value=-30, max_value=400))
def test_lateness_never_raises_and_says_when_it_cannot_know(decided: date, days: int) -> None:
    got = lateness(CAL, decided, decided + timedelta(days=days))
    unknown = got.deadline is None or got.working_days_taken is None or got.late is None
    assert (got.reason == NOT_COVERED) == unknown
    if got.late is not None and got.deadline is None:
        assert got.late is False and days <= 7


# --------------------------------------------------------------------------- publication windows


def test_general_penalty_window_under_order_58() -> None:
    rec = _accepted(("xc-samr", _penalty(ORG, date(2025, 3, 3))))
    w = publication_window(PUBLICATION, rec["decision_date"], rec["severity"])
    # NDRC Order 58: general, minimum 3 months, maximum 1 year (the ledger refuses expiry before 2026-03-04)
    assert w == Window(date(2025, 3, 3), date(2025, 6, 4), date(2026, 3, 4))
    assert w.covers(date(2026, 3, 3)) and not w.covers(date(2026, 3, 4)) and not w.covers(date(2025, 3, 2))


def test_serious_and_minor_penalty_windows() -> None:
    assert publication_window(PUBLICATION, date(2025, 6, 2), "serious") == \
        Window(date(2025, 6, 2), date(2026, 6, 3), date(2028, 6, 3))
    # NDRC Order 36 (from 2026-04-01): minor, at most 3 months, repair at once
    assert publication_window(PUBLICATION, date(2026, 5, 4), "minor") == \
        Window(date(2026, 5, 4), date(2026, 5, 4), date(2026, 8, 5))


def test_penalty_window_refusals_are_the_rules_own() -> None:
    with pytest.raises(Rejection) as info:
        publication_window(PUBLICATION, date(2025, 6, 2), "grave")
    assert info.value.code == "penalty.severity_unknown"
    # before the first regime (2017-01-01): no publication period, an empty window (docs/domain-notes.md §14.2)
    w = publication_window(PUBLICATION, date(2016, 6, 30), "general")
    assert w.start == w.automatic_end == date(2016, 6, 30) and not w.covers(date(2016, 6, 30))


def test_a_licence_is_published_while_it_is_valid() -> None:
    rec = _accepted(workload.licence_granted(ORG, "JY14110000001", date(2023, 3, 1)))
    assert rec["valid_to"] == date(2028, 3, 1)
    w = licence_window(rec["decision_date"], rec["valid_to"])
    assert w == Window(date(2023, 3, 1), None, date(2028, 3, 2))
    assert w.covers(date(2028, 3, 1)) and not w.covers(date(2028, 3, 2))
    assert licence_window(date(2023, 3, 1), None) == Window(date(2023, 3, 1), None, None)  # 长期
    assert licence_window(date(2023, 3, 1), None).covers(date(2099, 1, 1))
    empty = licence_window(date(2023, 3, 1), date(2023, 2, 1))
    assert empty.automatic_end == empty.start and not empty.covers(date(2023, 3, 1))


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(("fen", "text"), [(200_000, "0.2"), (0, "0"), (1, "0.000001"), (10_000_000, "10"),
                                           (3_000_000, "3"), (17_625_000, "17.625"), (123_456_789, "123.456789")])
def test_fen_to_wanyuan(fen: int, text: str) -> None:
    assert fen_to_wanyuan(fen) == text
    assert wanyuan_to_fen(text) == fen


@pytest.mark.parametrize("text", ["0.0000001", "1e3", ".5", "1.", "01", " 1", "1,5", "", "0x10", "NaN"])
def test_wanyuan_text_that_is_not_an_exact_amount(text: str) -> None:
    with pytest.raises(ValueError):
        wanyuan_to_fen(text)


def test_money_must_be_whole_fen() -> None:
    with pytest.raises(TypeError):
        fen_to_wanyuan(0.2)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fen_to_wanyuan(True)


# Avro long (the schemas' fen fields), and far beyond: no Decimal context precision is involved
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.integers(min_value=0, max_value=10**40))
def test_money_round_trip_is_exact(fen: int) -> None:
    text = fen_to_wanyuan(fen)
    assert wanyuan_to_fen(text) == fen
    with localcontext() as ctx:
        ctx.prec = 100  # the test's own arithmetic must not round either
        assert Decimal(text) * 1_000_000 == fen  # exact: fen / 1 000 000
    assert "e" not in text.lower()
    if "." in text:
        assert len(text.split(".")[1]) <= 6 and not text.endswith("0")


# --------------------------------------------------------------------------- national fields


def _schema_codes(event_type: str) -> dict[str, str]:
    """Avro field name -> national code, read from the doc of each field ("CF_WSH 行政处罚决定书文号")."""
    schema = json.loads((SCHEMAS / f"{event_type}.v1.avsc").read_text(encoding="utf-8"))
    out = {}
    for f in schema["fields"]:
        code = f.get("doc", "").split(" ")[0]
        if code.startswith(("CF_", "XK_")) or code == "BZ":
            out[f["name"]] = code
    return out


def test_every_penalty_field_of_the_schema_lands_on_its_cf_code() -> None:
    rec = _accepted(("xc-samr", _penalty(ORG, date(2024, 9, 27))))
    rec.update(confiscation_fen=1_234_567, licence_affected="食品经营许可证 JY14110000001",
               penalty_valid_until=date(2024, 10, 4), publicity_until=date(2025, 9, 28), remarks="无")
    out = national_fields("AdministrativePenaltyImposed", _body(rec), rec["envelope"])
    codes = _schema_codes("AdministrativePenaltyImposed")
    assert len(codes) == 19  # every field but envelope and severity
    for name, code in codes.items():
        value = rec[name]
        expected = (fen_to_wanyuan(value) if name.endswith("_fen") else value.isoformat() if isinstance(value, date)
                    else ";".join(value) if isinstance(value, list) else value)
        assert out[code] == expected, code
    assert out["CF_NR_FK"] == "0.2" and out["CF_NR_WFFF"] == "1.234567"
    assert out["CF_JDRQ"] == "2024-09-27" and out["CF_GSJZQ"] == "2025-09-28"
    assert (out["CF_XDR_MC"], out["CF_XDR_SHXYM"], out["CF_XDR_LB"]) == (ORG.name, ORG.id, "法人及非法人组织")
    assert out["CF_XDR_ZJLX"] is None and out["CF_XDR_ZJHM"] is None
    assert set(out) == set(codes.values()) | {"CF_XDR_MC", "CF_XDR_SHXYM", "CF_XDR_ZJLX", "CF_XDR_ZJHM"}
    json.dumps(out, ensure_ascii=False)  # plain JSON values only


def test_categories_are_joined_and_absent_money_is_none() -> None:
    rec = _penalty(ORG, date(2024, 9, 27), fine_fen=None)
    rec["penalty_categories"] = ["警告", "罚款"]
    out = national_fields("AdministrativePenaltyImposed", _body(rec), rec["envelope"])
    assert out["CF_CFLB"] == "警告;罚款" and out["CF_NR_FK"] is None and out["CF_NR_WFFF"] is None


def test_a_natural_persons_id_number_is_never_in_clear() -> None:
    # as typed by a clerk: full-width digits, a space, a lower-case x
    typed = workload.Subject("４１１００２ 19990315028x", "RIC", "王芳")
    rec = _accepted(("xc-samr", _penalty(typed, date(2025, 1, 24))))
    assert rec["counterparty_type"] == "自然人"
    out = national_fields("AdministrativePenaltyImposed", _body(rec), rec["envelope"])
    assert out["CF_XDR_ZJHM"] == mask_ric(PERSON_ID) == "411002********028X"
    assert (out["CF_XDR_ZJLX"], out["CF_XDR_SHXYM"], out["CF_XDR_MC"]) == ("身份证", None, "王芳")
    text = json.dumps(out, ensure_ascii=False)
    assert PERSON_ID not in text and "19990315" not in text


def test_an_individual_business_is_published_under_its_uscc() -> None:
    rec = _penalty(SHOP, date(2025, 1, 24))
    out = national_fields("AdministrativePenaltyImposed", _body(rec), rec["envelope"])
    assert (out["CF_XDR_LB"], out["CF_XDR_SHXYM"], out["CF_XDR_ZJHM"]) == ("个体工商户", SHOP.id, None)


def test_every_licence_field_of_the_schema_lands_on_its_xk_code() -> None:
    rec = _accepted(workload.licence_granted(ORG, "JY14110000001", date(2024, 9, 27)))
    out = national_fields("AdministrativeLicenceGranted", _body(rec), rec["envelope"])
    codes = _schema_codes("AdministrativeLicenceGranted")
    assert len(codes) == 17
    for name, code in codes.items():
        value = rec[name]
        expected = {"valid": "1", "invalid": "2"}[value] if name == "status" else \
            value.isoformat() if isinstance(value, date) else value
        assert out[code] == expected, code
    assert (out["XK_JDRQ"], out["XK_YXQZ"], out["XK_YXQZI"]) == ("2024-09-27", "2024-09-27", "2029-09-27")
    assert (out["XK_XDR_MC"], out["XK_XDR_SHXYM"], out["XK_XKBH"], out["XK_ZT"]) == \
        (ORG.name, ORG.id, "JY14110000001", "1")
    assert set(out) == set(codes.values()) | {"XK_XDR_MC", "XK_XDR_SHXYM", "XK_XDR_ZJLX", "XK_XDR_ZJHM"}


def test_licence_changes_and_revocations_in_xk_codes() -> None:
    rec = workload.licence_changed(ORG, "JY14110000001", date(2025, 2, 5))[1]
    changed = national_fields("AdministrativeLicenceChanged", _body(rec), rec["envelope"])
    for name, code in _schema_codes("AdministrativeLicenceChanged").items():
        value = rec[name]
        assert changed[code] == (value.isoformat() if isinstance(value, date) else value), code
    assert changed["XK_ZT"] is None and changed["XK_YXQZI"] is None  # unchanged
    rec = workload.licence_revoked(PERSON, "JY14110000001", date(2026, 1, 12))[1]
    revoked = national_fields("AdministrativeLicenceRevoked", _body(rec), rec["envelope"])
    assert revoked["XK_ZT"] == "2" and revoked["XK_WSH"] == rec["decision_no"]
    assert revoked["XK_XDR_ZJHM"] == "411002********028X" and revoked["XK_XDR_SHXYM"] is None


def test_other_events_have_no_national_record() -> None:
    rec = workload.penalty_revoked(ORG, "许市监罚〔2024〕1号", date(2025, 1, 6))[1]
    with pytest.raises(ValueError, match="no national double-publicity record"):
        national_fields("AdministrativePenaltyRevoked", _body(rec), rec["envelope"])


def test_dates_given_as_iso_text_come_out_the_same() -> None:
    rec = _penalty(ORG, date(2024, 9, 27))
    as_text = {**_body(rec), "decision_date": "2024-09-27"}
    assert national_fields("AdministrativePenaltyImposed", as_text, rec["envelope"]) == \
        national_fields("AdministrativePenaltyImposed", _body(rec), rec["envelope"])

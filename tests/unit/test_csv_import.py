"""The national double-publicity CSV reader (ledger/intake/csv_import.py) and the importer's submission
logic with a fake client (ledger/intake/importer.py). Pure: no Kafka."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.client import OutcomeTimeout
from ledger.intake import csv_import as ci
from ledger.intake import importer
from ledger.rules import loader
from ops import workload
from projections.publicity import fen_to_wanyuan, national_fields
from schemas import registry

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PENALTIES = (FIXTURES / "penalties_gb18030.csv").read_bytes()
LICENCES = (FIXTURES / "licences_utf8_bom.csv").read_bytes()
TODAY = date(2026, 11, 27)
DEPT = "xc-samr"
MATRIX = loader.load_departments()
AUTHORITY, AUTHORITY_CODE = workload.PENALTY_DEPARTMENTS[DEPT]


def read(data: bytes, today: date = TODAY, department: str = DEPT) -> tuple[ci.Reading, list[ci.RowResult]]:
    return ci.read_csv(data, department, today)


def table(data: bytes) -> list[list[str]]:
    text, _ = ci.decode(data)
    return list(csv.reader(io.StringIO(text, newline="")))


def to_csv(rows: list[list[str]], encoding: str = "utf-8", bom: bool = False) -> bytes:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + buf.getvalue().encode(encoding)


def penalty_row(**overrides: str) -> dict[str, str]:
    """One valid penalty row by code."""
    row = {
        "CF_XDR_MC": "许昌瑞祥食品有限公司", "CF_XDR_LB": "法人及非法人组织",
        "CF_XDR_SHXYM": workload.make_uscc(random.Random(1)), "CF_FRDB": "王伟",
        "CF_WSH": "许市监罚〔2026〕9001号", "CF_WFXW": "销售不符合食品安全标准的食品", "CF_SY": "经查，事实清楚。",
        "CF_YJ": "《中华人民共和国食品安全法》第一百二十四条", "CF_CFLB": "警告;罚款", "CF_NR": "警告、罚款2000元",
        "CF_NR_FK": "0.2", "CF_JDRQ": "2026-05-06", "CF_CFJG": AUTHORITY, "CF_CFJGDM": AUTHORITY_CODE,
        "CF_SJLY": AUTHORITY, "CF_SJLYDM": AUTHORITY_CODE,
    }
    row.update(overrides)
    return row


def one(row: dict[str, str], today: date = TODAY) -> ci.RowResult:
    data = to_csv([list(row), list(row.values())])
    _, rows = read(data, today)
    assert len(rows) == 1
    return rows[0]


def by_row(rows: list[ci.RowResult]) -> dict[int, ci.RowResult]:
    return {r.row: r for r in rows}


# =========================================================================== the column table


def test_the_column_table_comes_from_the_avro_docs() -> None:
    for event_type in (ci.LICENCE, ci.PENALTY):
        fields = [f for f in registry.schema_for(event_type).parsed["fields"] if f["name"] != "envelope"]
        targets = [c.target for c in ci.columns(event_type)]
        assert sorted(t for t in targets if t and not t.startswith("subject.")) == sorted(f["name"] for f in fields)
    cols = {c.key: c for c in ci.columns(ci.PENALTY)}
    assert (cols["CF_NR_FK"].header, cols["CF_NR_FK"].target, cols["CF_NR_FK"].kind) == ("罚款金额", "fine_fen", "fen?")
    assert cols["CF_WSH"].header == "行政处罚决定书文号" and cols["CF_WSH"].required
    assert dict(cols["失信程度"].values) == {"minor": ("minor", "轻微"), "general": ("general", "一般"),
                                         "serious": ("serious", "严重")}
    lic = {c.key: c for c in ci.columns(ci.LICENCE)}
    assert lic["XK_XKBH"].header == "许可编号" and not lic["XK_XKBH"].required  # falls back to XK_WSH
    assert dict(lic["XK_ZT"].values) == {"valid": ("valid", "1", "有效"), "invalid": ("invalid", "2", "无效")}


def test_the_doc_shows_the_current_column_table() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "csv-import.md").read_text(encoding="utf-8")
    start = doc.index("<!-- column table")
    table = doc[doc.index("\n", start) + 1:doc.index("<!-- end of the column table -->")].strip()
    assert table == ci.column_table(), "docs/csv-import.md: paste the output of python -m ledger.intake.csv_import"


def test_every_national_code_the_views_publish_is_a_column() -> None:
    _, rows = read(PENALTIES)
    rec = next(r.record for r in rows if r.record)
    body = {k: v for k, v in rec.items() if k != "envelope"}
    assert set(national_fields(ci.PENALTY, body, rec["envelope"])) <= {c.code for c in ci.columns(ci.PENALTY)}
    _, rows = read(LICENCES)
    rec = next(r.record for r in rows if r.record)
    body = {k: v for k, v in rec.items() if k != "envelope"}
    assert set(national_fields(ci.LICENCE, body, rec["envelope"])) <= {c.code for c in ci.columns(ci.LICENCE)}


# =========================================================================== the fixtures


def test_penalty_fixture_gb18030_chinese_headers() -> None:
    reading, rows = read(PENALTIES)
    assert (reading.encoding, reading.event_type, reading.layout.header_row) == ("GB18030", ci.PENALTY, 2)
    assert len(rows) == 30 and [r.row for r in rows] == list(range(3, 33))
    assert "行政相对人代码_2（工商注册号）" in reading.layout.ignored
    status = {r.row: r.status for r in rows}
    assert [n for n, s in status.items() if s == "refused"] == [10, 14, 18, 22]
    assert [n for n, s in status.items() if s == "flagged"] == [30]
    rows_ = by_row(rows)
    assert [(p.column, p.header, p.code) for p in rows_[10].refusals] == [("CF_JDRQ", "处罚决定日期", "date.impossible")]
    assert [(p.column, p.header, p.code) for p in rows_[14].refusals] == [("CF_NR_FK", "罚款金额（万元）", "money.precision")]
    assert [(p.column, p.code) for p in rows_[18].refusals] == [("CF_XDR_SHXYM", "uscc.length")]
    assert rows_[18].refusals[0].header == "行政相对人代码_1（统一社会信用代码）"
    assert [(p.column, p.code) for p in rows_[22].refusals] == [("CF_WSH", "required")]
    assert rows_[22].event_id is None
    assert [(p.column, p.code) for p in rows_[30].warnings] == [("CF_XDR_SHXYM", "uscc.check_character")]
    for r in rows:
        for p in r.refusals:
            assert p.row == r.row and "(" in p.message and ")" in p.message  # Chinese, English in brackets
    persons = [r for r in rows if r.record and r.record["envelope"]["subject"]["id_type"] == "RIC"]
    assert [r.row for r in persons] == [8, 20]
    assert all(r.record["counterparty_type"] == "自然人" for r in persons)
    # the date forms of the file all read
    assert {r.record["decision_date"] for r in rows if r.record} >= {date(2026, 1, 1), date(2026, 2, 8)}


def test_licence_fixture_utf8_bom_codes() -> None:
    reading, rows = read(LICENCES)
    assert (reading.encoding, reading.event_type) == ("UTF-8 (BOM)", ci.LICENCE)
    assert len(rows) == 12
    assert [r.row for r in rows if r.status == "refused"] == [9]
    (p,) = by_row(rows)[9].refusals
    assert (p.column, p.header, p.code) == ("XK_YXQZI", "有效期至", "time.order")
    recs = [r.record for r in rows if r.record]
    assert recs[3]["valid_to"] is None and recs[5]["valid_to"] is None  # 长期, 9999-12-31
    assert all(r["status"] == "valid" for r in recs)
    assert all(r["envelope"]["valid_to"] == r["valid_to"] for r in recs)


def test_every_record_encodes_and_reads_back() -> None:
    for data in (PENALTIES, LICENCES):
        _, rows = read(data)
        for r in rows:
            if r.record:
                name, back = registry.decode(registry.encode(r.record["envelope"]["event_type"], r.record))
                assert back["envelope"]["event_id"] == r.event_id


# =========================================================================== same content, other forms


def test_codes_chinese_headers_and_encodings_give_the_same_records() -> None:
    rows = table(PENALTIES)[1:]  # drop the title row
    cols = ci.columns(ci.PENALTY)
    codes = []
    for h in rows[0]:
        key = next(c.key for c in cols if h in (c.header, *c.aliases) or h.split("（")[0] in (c.header, *c.aliases))
        codes.append(key)
    variants = [
        PENALTIES,
        to_csv(rows, "utf-8"),
        to_csv(rows, "utf-8", bom=True),
        to_csv([codes, *rows[1:]], "gb18030"),
        to_csv([["　" + h.replace("（", "(").replace("）", ")") + " " for h in rows[0]], *rows[1:]], "utf-8"),
        to_csv([["*" + c for c in codes], *rows[1:]], "utf-8").replace(b",", b"\t"),
    ]
    expected = [registry.encode(r.record["envelope"]["event_type"], r.record) if r.record else r.refusals[0].code
                for r in read(PENALTIES)[1]]
    for data in variants:
        got = [registry.encode(r.record["envelope"]["event_type"], r.record) if r.record else r.refusals[0].code
               for r in read(data)[1]]
        assert got == expected


def test_a_re_read_gives_byte_identical_records_whatever_the_day() -> None:
    """The sequencer answers DUPLICATE only for the same bytes: nothing may depend on the import time."""
    a = [registry.encode(ci.PENALTY, r.record) for r in read(PENALTIES, TODAY)[1] if r.record]
    b = [registry.encode(ci.PENALTY, r.record) for r in read(PENALTIES, TODAY + timedelta(days=400))[1] if r.record]
    assert a == b and len(a) == 26


def test_event_id_from_department_and_decision_number() -> None:
    eid = ci.event_id_for("xc-samr", "许市监罚〔2026〕100号")
    assert eid == str(uuid.uuid5(ci.EVENT_ID_NAMESPACE, "xc-samr|许市监罚〔2026〕100号"))
    assert eid != ci.event_id_for("xc-tax", "许市监罚〔2026〕100号")
    assert eid != ci.event_id_for("xc-samr", "许市监罚〔2026〕101号")
    assert one(penalty_row(CF_WSH="  许市监罚〔2026〕100号 ")).event_id == eid


# =========================================================================== dates


@pytest.mark.parametrize("text", [
    "2024-05-06", "2024/5/6", "2024/05/06", "2024.05.06", "2024.5.6", "20240506", "2024年5月6日", "2024年05月06日",
    "2024年5月6", "2024-05-06 00:00:00", "2024/5/6 0:00", "2024-05-06T00:00:00", "2024-05-06 12:30:00.000",
    "２０２４－０５－０６", "２０２４年５月６日", " 2024-05-06 ",
])
def test_date_forms(text: str) -> None:
    assert ci.parse_date(text) == date(2024, 5, 6)


@pytest.mark.parametrize("text,code", [
    ("2024-02-30", "date.impossible"), ("2023-02-29", "date.impossible"), ("2024-13-01", "date.impossible"),
    ("2024年4月31日", "date.impossible"), ("20240231", "date.impossible"), ("2024-00-10", "date.impossible"),
    ("2024-5", "date.format"), ("24-05-06", "date.format"), ("2024-05/06", "date.format"), ("45418", "date.format"),
    ("五月六日", "date.format"), ("٢٠٢٤-٠٥-٠٦", "date.format"), ("", "date.format"), ("2024-05-06 25", "date.format"),
])
def test_bad_dates(text: str, code: str) -> None:
    with pytest.raises(ci.CellError) as exc:
        ci.parse_date(text)
    assert exc.value.code == code


def test_leap_day_and_future_and_ancient_dates_in_rows() -> None:
    assert one(penalty_row(CF_JDRQ="2024-02-29")).record["decision_date"] == date(2024, 2, 29)
    r = one(penalty_row(CF_JDRQ="2026-11-28"))
    assert [(p.column, p.code) for p in r.refusals] == [("CF_JDRQ", "time.future")]
    r = one(penalty_row(CF_JDRQ="1900-01-01"))
    assert [(p.column, p.code) for p in r.refusals] == [("CF_JDRQ", "date.implausible")]
    assert one(penalty_row(CF_YXQ="长期")).record["penalty_valid_until"] is None
    r = one(penalty_row(CF_YXQ="2026-05-01"))
    assert [(p.column, p.code) for p in r.refusals] == [("CF_YXQ", "time.order")]


@given(st.dates(min_value=date(1949, 1, 1), max_value=date(9998, 12, 31)), st.integers(0, 6))
def test_any_real_date_in_any_form_reads_back(d: date, form: int) -> None:
    text = [d.isoformat(), f"{d.year}/{d.month}/{d.day}", d.strftime("%Y.%m.%d"), d.strftime("%Y%m%d"),
            f"{d.year}年{d.month}月{d.day}日", d.isoformat() + " 00:00:00",
            d.isoformat().translate(str.maketrans("0123456789-", "０１２３４５６７８９－"))][form]
    assert ci.parse_date(text) == d


@given(st.text(max_size=40))
def test_parse_date_returns_a_date_or_a_cell_error(text: str) -> None:
    try:
        assert isinstance(ci.parse_date(text), date)
    except ci.CellError as exc:
        assert exc.code in ("date.format", "date.impossible") and "(" in exc.message


# =========================================================================== 万元 -> fen


@pytest.mark.parametrize("text,fen", [
    ("0.2", 200_000), ("0.20", 200_000), ("0.2000000", 200_000), ("1", 1_000_000), ("0", 0), ("00.5", 500_000),
    ("0.000001", 1), ("0.123456", 123_456), ("12.5", 12_500_000), ("１.５", 1_500_000), (" 0.3 ", 300_000),
    ("2万元", 2_000_000), ("0.1万元", 100_000), ("9223372036854.775807", 2**63 - 1),
])
def test_wanyuan_to_fen_exactly(text: str, fen: int) -> None:
    assert ci.parse_wanyuan(text) == fen


@pytest.mark.parametrize("text,code", [
    ("0.1234567", "money.precision"), ("0.0000001", "money.precision"), ("-0.2", "money.negative"),
    ("-1", "money.negative"), ("abc", "money.format"), ("1e3", "money.format"), ("1,000", "money.format"),
    (".5", "money.format"), ("5.", "money.format"), ("+1", "money.format"), ("2000元", "money.format"),
    ("NaN", "money.format"), ("Infinity", "money.format"), ("0x10", "money.format"), ("1 000", "money.format"),
    ("9223372036854.775808", "money.too_large"), ("99999999999999", "money.too_large"),
])
def test_bad_amounts(text: str, code: str) -> None:
    with pytest.raises(ci.CellError) as exc:
        ci.parse_wanyuan(text)
    assert exc.value.code == code


@given(st.integers(0, 2**63 - 1), st.integers(0, 5))
def test_every_fen_amount_round_trips_through_wanyuan(fen: int, zeros: int) -> None:
    text = fen_to_wanyuan(fen)
    if "." in text or zeros:
        text = (text if "." in text else text + ".") + "0" * zeros
    assert ci.parse_wanyuan(text) == fen


@given(st.text(alphabet="0123456789.-+e,万元 １２", max_size=25) | st.text(max_size=25))
def test_parse_wanyuan_is_exact_or_refuses(text: str) -> None:
    try:
        fen = ci.parse_wanyuan(text)
    except ci.CellError as exc:
        assert exc.code.startswith("money.")
        return
    import unicodedata
    plain = unicodedata.normalize("NFKC", text).strip().removesuffix("万元").strip()
    assert Decimal(plain) * 1_000_000 == fen and 0 <= fen <= 2**63 - 1


def test_fine_in_the_record_is_exact_fen() -> None:
    assert one(penalty_row(CF_NR_FK="0.2")).record["fine_fen"] == 200_000
    assert one(penalty_row(CF_NR_FK="")).record["fine_fen"] is None
    assert one(penalty_row(CF_NR_WFFF="1.5")).record["confiscation_fen"] == 1_500_000
    r = one(penalty_row(CF_NR_FK="0.1234567"))
    assert [(p.column, p.code) for p in r.refusals] == [("CF_NR_FK", "money.precision")] and r.record is None


# =========================================================================== other columns


def test_penalty_categories_split() -> None:
    for text in ("警告;罚款", "警告；罚款", "警告、罚款", " 警告 ; 罚款 ;", "警告，罚款"):
        assert one(penalty_row(CF_CFLB=text)).record["penalty_categories"] == ["警告", "罚款"]
    r = one(penalty_row(CF_CFLB="；、;"))
    assert [(p.column, p.code) for p in r.refusals] == [("CF_CFLB", "required")]


def test_severity_column_is_optional_defaults_to_general() -> None:
    assert one(penalty_row()).record["severity"] == "general"
    for text, symbol in (("轻微", "minor"), ("一般", "general"), ("严重", "serious"), ("Serious", "serious"),
                         ("minor", "minor"), ("", "general")):
        assert one(penalty_row(失信程度=text)).record["severity"] == symbol
        assert one(penalty_row(severity=text)).record["severity"] == symbol
    r = one(penalty_row(失信程度="很严重"))
    assert [(p.column, p.header, p.code) for p in r.refusals] == [("", "失信程度", "enum.unknown")]
    assert "轻微" in r.refusals[0].message


def test_licence_defaults_and_status() -> None:
    rows = table(LICENCES)
    header, first = rows[0], rows[1]
    cell = dict(zip(header, first, strict=True))

    def lic(**kw: str) -> ci.RowResult:
        row = {**cell, **kw}
        (r,) = read(to_csv([list(row), list(row.values())]))[1]
        return r

    assert lic(XK_XKBH="").record["licence_no"] == cell["XK_WSH"]
    assert lic(XK_ZT="2").record["status"] == "invalid"
    assert lic(XK_ZT="无效").record["status"] == "invalid"
    assert lic(XK_ZT="").record["status"] == "valid"
    assert lic(XK_LYDW="", XK_LYDWDM="").record["data_source_code"] == cell["XK_XKJGDM"]
    assert [(p.column, p.code) for p in lic(XK_ZT="3").refusals] == [("XK_ZT", "enum.unknown")]
    assert [(p.column, p.code) for p in lic(XK_YXQZ="").refusals] == [("XK_YXQZ", "required")]


# =========================================================================== subjects


def test_subject_by_counterparty_type() -> None:
    rng = random.Random(7)
    ric = workload.make_ric(rng)
    r = one(penalty_row(CF_XDR_LB="自然人", CF_XDR_SHXYM="", CF_XDR_ZJLX="身份证", CF_XDR_ZJHM=ric, CF_XDR_MC="王伟"))
    assert r.record["envelope"]["subject"] == {"id": ric, "id_type": "RIC", "name": "王伟"}
    r = one(penalty_row(CF_XDR_LB="自然人", CF_XDR_ZJHM=ric))  # 证件类型 column absent: 身份证 assumed
    assert r.record["envelope"]["subject"]["id_type"] == "RIC"
    trader = workload.make_uscc(rng, "92")
    r = one(penalty_row(CF_XDR_LB="个体户", CF_XDR_SHXYM=" " + trader.lower() + " "))
    assert r.record["envelope"]["subject"] == {"id": trader, "id_type": "USCC", "name": "许昌瑞祥食品有限公司"}
    assert r.record["counterparty_type"] == "个体工商户"
    fullwidth = workload.make_uscc(rng).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert one(penalty_row(CF_XDR_SHXYM=fullwidth)).status == "valid"


@pytest.mark.parametrize("number", ["411023199003150016", "411002199003150196"])
def test_operator_id_number_in_an_individual_business_code_column_files_a_natural_person(number: str) -> None:
    # Issue item 4 (docs/domain-notes.md §1.8): 411023199003150016 also passes the USCC check character.
    r = one(penalty_row(CF_XDR_LB="个体工商户", CF_XDR_SHXYM=number, CF_XDR_MC="许昌市建安区钧瓷商行"))
    assert r.status != "refused" and r.record is not None
    assert r.record["envelope"]["subject"] == {"id": number, "id_type": "RIC", "name": "许昌市建安区钧瓷商行"}
    assert r.record["counterparty_type"] == "个体工商户"
    assert [(p.column, p.code) for p in r.warnings] == [("CF_XDR_SHXYM", "uscc.operator_id_number")]
    assert all(number not in p.message and number[6:14] not in p.message for p in r.warnings)
    # the same number for a company is refused, the column named
    r = one(penalty_row(CF_XDR_SHXYM=number))
    assert r.record is None and [(p.column, p.code) for p in r.refusals] == [("CF_XDR_SHXYM", "uscc.resident_id")]


def test_subject_refusals_name_the_column_and_never_quote_an_id_number() -> None:
    rng = random.Random(8)
    ric = workload.make_ric(rng)
    bad_ric = ric[:17] + ("0" if ric[17] != "0" else "1")
    cases = [
        (dict(CF_XDR_LB="自然人", CF_XDR_ZJLX="护照", CF_XDR_ZJHM="E12345678"), ("CF_XDR_ZJLX", "id_document.unsupported")),
        (dict(CF_XDR_LB="自然人", CF_XDR_ZJHM=""), ("CF_XDR_ZJHM", "required")),
        (dict(CF_XDR_LB="自然人", CF_XDR_ZJHM=bad_ric), ("CF_XDR_ZJHM", "ric.checksum")),
        (dict(CF_XDR_SHXYM=""), ("CF_XDR_SHXYM", "required")),
        (dict(CF_XDR_SHXYM="410000100003419"), ("CF_XDR_SHXYM", "uscc.legacy_registration_number")),
        (dict(CF_XDR_SHXYM=ric), ("CF_XDR_SHXYM", "uscc.resident_id")),
        (dict(CF_XDR_LB="企业"), ("CF_XDR_LB", "counterparty_type.unknown")),
        (dict(CF_CFJGDM="11411000MB17963"), ("CF_CFJGDM", "uscc.length")),
        (dict(CF_XDR_MC=""), ("CF_XDR_MC", "required")),
    ]
    for overrides, expected in cases:
        r = one(penalty_row(**overrides))
        assert r.record is None and [(p.column, p.code) for p in r.refusals] == [expected], overrides
        for p in r.refusals:
            assert ric not in p.message and bad_ric not in p.message and ric[6:14] not in p.message


# =========================================================================== the file as a whole


def test_file_refusals() -> None:
    good = table(PENALTIES)[1:]
    cases = [
        (b"", "file.empty"), (b"  \r\n", "file.empty"),
        (b"PK\x03\x04rest of a zip", "file.excel"), (b"\xd0\xcf\x11\xe0old excel", "file.excel"),
        ("\ufeff行政相对人名称".encode("utf-16"), "file.encoding"),
        (b"\xef\xbb\xbf\xff\xfe", "file.encoding"), (b"\x80\x80\xff", "file.encoding"),
        (b"a,b,c\r\n1,2,3\r\n", "layout.no_header"),
        (to_csv([["行政相对人名称", "备注", "证件号码", "法定代表人"], ["x", "y", "", ""]]), "layout.unknown"),
        (to_csv([["XK_XDR_MC", "CF_WSH", "CF_XDR_LB"]]), "layout.mixed"),
        (to_csv([[h for h in good[0] if h != "处罚决定日期"]]), "layout.missing_columns"),
        (to_csv([[*good[0], "CF_WSH"]]), "layout.duplicate_column"),
        (to_csv(good).replace(b"\r\n", b"\r\n\x00", 1), "file.binary"),
    ]
    for data, code in cases:
        with pytest.raises(ci.FileRefused) as exc:
            read(data)
        assert exc.value.code == code, data[:40]
        assert "(" in exc.value.message
    with pytest.raises(ci.FileRefused) as exc:
        read(to_csv([[h for h in good[0] if h not in ("处罚决定日期", "行政处罚决定书文号")]]))
    assert "CF_JDRQ 处罚决定日期" in exc.value.message and "CF_WSH 行政处罚决定书文号" in exc.value.message


def test_rows_blank_repeated_and_too_wide() -> None:
    rows = table(PENALTIES)[1:]
    data = to_csv([rows[0], rows[1], [""] * len(rows[0]), [], rows[2], rows[1], [*rows[3], "", "extra"]])
    _, got = read(data)
    assert [r.row for r in got] == [2, 5, 6, 7]
    assert got[2].record is None and got[2].refusals[0].code == "decision_no.repeated"
    assert "第2行" in got[2].refusals[0].message and got[2].refusals[0].column == "CF_WSH"
    assert got[3].refusals[0].code == "row.too_many_cells" and got[3].refusals[0].field == "(row)"


def test_csv_syntax_error_refuses_the_file() -> None:
    rows = table(PENALTIES)[1:3]
    data = to_csv(rows) + b'"unterminated' + b"x" * 10
    with pytest.raises(ci.FileRefused) as exc:  # an unterminated quote at the end of the file
        list(ci.open_csv(data + b"\x00", DEPT, TODAY).rows())
    assert exc.value.code in ("file.binary", "file.csv")


# =========================================================================== properties: never crash


def _check_rows(rows: list[ci.RowResult]) -> None:
    for r in rows:
        if r.record is None:
            assert r.refusals and all(isinstance(p, ci.Problem) and p.message for p in r.refusals)
        else:
            assert not r.refusals
            registry.encode(r.record["envelope"]["event_type"], r.record)  # the record is valid Avro


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_any_bytes_give_rows_or_a_file_refusal(data: bytes) -> None:
    try:
        _, rows = read(data)
    except ci.FileRefused as exc:
        assert exc.code and exc.message
        return
    _check_rows(rows)


HEADER = list(penalty_row())
CELL = st.one_of(st.text(max_size=30), st.sampled_from(["", "2026-05-06", "0.2", "自然人", "个体工商户", "警告;罚款",
                                                          "轻微", AUTHORITY_CODE, "20260506", "1", "-1", "长期"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(CELL, min_size=0, max_size=len(HEADER) + 2), min_size=1, max_size=5),
       st.sampled_from(["utf-8", "gb18030"]))
def test_arbitrary_rows_under_a_valid_header_never_crash(rows: list[list[str]], encoding: str) -> None:
    text_rows = [HEADER, *rows]
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(text_rows)
    data = buf.getvalue().encode(encoding, errors="replace")
    try:
        _, got = read(data)
    except ci.FileRefused as exc:
        assert exc.code.startswith(("file.", "layout."))
        return
    _check_rows(got)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 30), st.integers(0, 30), st.text(max_size=40))
def test_one_mutated_cell_of_the_real_file_never_crashes(row: int, col: int, value: str) -> None:
    rows = table(PENALTIES)
    rows[row + 1][col] = value
    try:
        _, got = read(to_csv(rows, "gb18030", bom=False) if all(
            _encodable(c) for r in rows for c in r) else to_csv(rows, "utf-8"))
    except ci.FileRefused:
        return
    _check_rows(got)
    others = [r for r in got if r.row != row + 2]
    assert [r.status for r in others] == [r.status for r in read(PENALTIES)[1] if r.row != row + 2]


def _encodable(text: str) -> bool:
    try:
        text.encode("gb18030")
    except UnicodeEncodeError:
        return False
    return True


# =========================================================================== the importer, with a fake client


class FakeClient:
    """Records what is submitted; answers from `answer(record)` (None: never answers)."""

    def __init__(self, answer: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        self.answer = answer
        self._outcomes: dict[str, dict[str, Any]] = {}

    async def submit_batch(self, records: list[dict[str, Any]]) -> asyncio.Future[None]:
        for record in records:  # as LedgerClient: nothing sent when a record cannot be encoded
            registry.encode(record["envelope"]["event_type"], record)
        for record in records:
            self.sent.append(record)
            out = self.answer(record)
            if out is not None:
                self._outcomes[record["envelope"]["event_id"]] = out
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def outcome(self, event_id: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while event_id not in self._outcomes:
            if asyncio.get_running_loop().time() >= deadline:
                raise OutcomeTimeout(event_id)
            await asyncio.sleep(0.01)
        return self._outcomes[event_id]

    def decided(self) -> int:
        return len(self._outcomes)


def _outcome(record: dict[str, Any], status: str, reasons: list[dict[str, str]] = (), warnings: list[str] = ()
             ) -> dict[str, Any]:
    return {"event_id": record["envelope"]["event_id"], "status": status, "entity_id": "x", "entity_version": 1,
            "ledger_partition": 2, "ledger_offset": 77, "reasons": list(reasons), "warnings": list(warnings),
            "decided_at": datetime(2026, 11, 27, 9, 30, tzinfo=UTC)}


async def test_a_record_that_cannot_be_encoded_is_refused_and_its_batch_still_sent() -> None:
    reading, rows = importer.check(PENALTIES, DEPT, MATRIX)
    bad = next(r for r in rows if r.record is not None)
    bad.record["fine_fen"] = "a lot"  # type: ignore[index]  # what no checked row holds
    client = FakeClient(lambda rec: _outcome(rec, "ACCEPTED"))
    reports = {r.row: r for r in await importer.submit(client, rows, reading.layout)}
    assert len(client.sent) == 25 and bad.record not in client.sent
    assert reports[bad.row].status == importer.REFUSED and "cannot be encoded" in reports[bad.row].reasons[0]


async def test_importer_submits_only_valid_rows_and_reports_every_row(tmp_path: Path) -> None:
    reading, rows = importer.check(PENALTIES, DEPT, MATRIX)

    def answer(rec: dict[str, Any]) -> dict[str, Any] | None:
        if rec["decision_date"] < date(2019, 7, 1):
            return _outcome(rec, "REJECTED", [{"field": "decision_date", "code": "publication.no_regime",
                                               "message": "没有适用的公示期限规定 (no regime)"}])
        return _outcome(rec, "ACCEPTED", warnings=["uscc.check_character"] if rec["decision_no"].endswith("127号") else [])

    client = FakeClient(answer)
    reports = await importer.submit(client, rows, reading.layout)
    assert len(client.sent) == 26  # 30 rows, 4 refused before submission
    sent_ids = {r["envelope"]["event_id"] for r in client.sent}
    assert all(r.event_id not in sent_ids for r in rows if r.record is None)
    status = {r.row: r.status for r in reports}
    assert [r.row for r in reports] == list(range(3, 33))
    assert [n for n, s in status.items() if s == importer.REFUSED] == [10, 14, 18, 22]
    assert [n for n, s in status.items() if s == importer.REJECTED] == [26]
    assert [n for n, s in status.items() if s == importer.FLAGGED] == [30]
    rejected = next(r for r in reports if r.row == 26)
    assert rejected.fields == ["CF_JDRQ 处罚决定日期"] and rejected.position == "2:77"
    flagged = next(r for r in reports if r.row == 30)
    assert flagged.fields == ["CF_XDR_SHXYM 行政相对人代码_1（统一社会信用代码）"]  # the local warning, not twice
    path = tmp_path / "r.csv"
    importer.write_report(path, reports)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert lines[0] == list(importer.REPORT_COLUMNS) and len(lines) == 31
    assert lines[8][:4] == ["10", "许市监罚〔2026〕107号", rows[7].event_id, importer.REFUSED]
    assert lines[8][4] == "CF_JDRQ 处罚决定日期" and "不是真实存在的日期" in lines[8][5]


async def test_importer_duplicates_conflicts_and_silence() -> None:
    reading, rows = importer.check(LICENCES, DEPT, MATRIX)
    answers = iter(["DUPLICATE", "CONFLICT", None] + ["ACCEPTED"] * 20)

    def answer(rec: dict[str, Any]) -> dict[str, Any] | None:
        status = next(answers)
        if status is None:
            return None
        reasons = [{"field": "event_id", "code": "event_id.conflict", "message": "事件编号已被使用 (used)"}] \
            if status == "CONFLICT" else []
        return _outcome(rec, status, reasons)

    progress = importer.Progress(io.StringIO(), enabled=True)
    reports = await importer.submit(FakeClient(answer), rows, reading.layout, progress, timeout=0.3)
    got = [r.status for r in reports]
    assert got[:3] == [importer.DUPLICATE, importer.CONFLICT, importer.NO_OUTCOME]
    assert got.count(importer.ACCEPTED) == 8 and got.count(importer.REFUSED) == 1
    assert reports[1].fields == ["event_id"] and "变更" in reports[1].reasons[-1]
    assert "decided 10" in progress.stream.getvalue()


async def test_one_silent_row_does_not_stop_the_others() -> None:
    """Outcomes trickle in (one every 50 ms) while the first row's never comes: only that row is
    NO-OUTCOME, because other outcomes arrived while it was awaited."""
    reading, rows = importer.check(LICENCES, DEPT, MATRIX)
    client = FakeClient(lambda rec: None)
    loop = asyncio.get_running_loop()
    submit_batch = client.submit_batch

    async def trickle(records: list[dict[str, Any]]) -> asyncio.Future[None]:
        fut = await submit_batch(records)
        for n, record in enumerate(records[1:], 2):
            loop.call_later(0.05 * n, client._outcomes.__setitem__, record["envelope"]["event_id"],
                            _outcome(record, "ACCEPTED"))
        return fut

    client.submit_batch = trickle  # type: ignore[method-assign]
    reports = await importer.submit(client, rows, reading.layout, timeout=0.2)
    assert [r.status for r in reports if r.status != importer.REFUSED] == [importer.NO_OUTCOME] + [importer.ACCEPTED] * 10


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(CELL, max_size=len(HEADER)), min_size=1, max_size=4))
def test_nothing_invalid_is_ever_submitted(rows: list[list[str]]) -> None:
    data = to_csv([HEADER, list(penalty_row().values()), *rows])
    try:
        reading, checked = importer.check(data, DEPT, MATRIX)
    except ci.FileRefused:
        return
    client = FakeClient(lambda rec: _outcome(rec, "ACCEPTED"))
    reports = asyncio.run(importer.submit(client, checked, reading.layout))
    assert len(client.sent) == sum(1 for r in checked if r.record is not None)
    assert {r.row for r in reports if r.status == importer.REFUSED} == {r.row for r in checked if r.record is None}


def test_progress_line() -> None:
    p = importer.Progress(io.StringIO(), enabled=True)
    p.read = 30
    assert "30 rows read" in p.line()
    p.to_submit, p.submitted, p.decided, p.sending_since = 100, 60, 50, p.started - 10
    line = p.line()
    assert "50%" in line and "submitted 60/100" in line and "decided 50" in line and "ETA 0:10" in line

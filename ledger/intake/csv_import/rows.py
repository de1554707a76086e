"""One data row to a record (``AdministrativeLicenceGranted`` or ``AdministrativePenaltyImposed`` with
its envelope) or its refusals, each naming the row, the column (code and header as written in the
file) and the reason (Chinese, English in brackets). Identity warnings (``ledger.domain.identity``:
a wrong USCC check character, an unusual prefix, an ID whose county code did not exist at birth)
flag the row; it is still submitted. A natural person's ID number is never quoted in a message.

The event id is ``uuid5(EVENT_ID_NAMESPACE, department + "|" + decision document number)``
(``XK_WSH`` / ``CF_WSH``), and ``recorded_at`` is the decision date (00:00 China time): the national
layout has no recording time, and the record must be byte-identical on a re-import so that the
sequencer answers DUPLICATE (the import time would make it a CONFLICT).
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import date, datetime
from functools import cache
from typing import Any

from ledger.domain import identity
from ledger.domain.errors import Rejection
from ledger.domain.local_time import CHINA
from ledger.domain.rules import PublicationRules
from ledger.intake.csv_import.columns import (
    DEFAULTS,
    FALLBACKS,
    LICENCE,
    PENALTY,
    Column,
    columns,
    counterparty_types,
)
from ledger.intake.csv_import.layout import Layout
from ledger.intake.csv_import.problems import CellError, Problem, RowResult
from ledger.intake.csv_import.values import (
    BAD_CHARS,
    categories,
    clean_text,
    parse_date,
    parse_wanyuan,
    quote,
)
from schemas import registry

# Fixed forever: changing it would give every imported record a new event id (re-imports would append).
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2b4e-5a0d-5d3c-9e27-0b8a1c4d2e71")


COUNTERPARTY_ALIASES = {"法人及其他组织": "法人及非法人组织", "法人和其他组织": "法人及非法人组织",
                        "法人和非法人组织": "法人及非法人组织", "法人": "法人及非法人组织",
                        "非法人组织": "法人及非法人组织", "个体户": "个体工商户", "个人": "自然人"}
RIC_DOCUMENTS = {"", "身份证", "居民身份证", "身份证号", "身份证号码", "公民身份号码", "居民身份证号码"}
OPERATOR_ID_NUMBER = ("个体工商户的统一社会信用代码栏填的是经营者的公民身份号码：已按自然人（经营者）记入，号码不公开 "
                      "(the individual business's code column holds the operator's resident ID number: filed under "
                      "the operator as a natural person; the number is never shown)")
OPEN_ENDED = {"长期", "长期有效", "永久", "永久有效", "无", "无期限", "-", "/", "—"}


def event_id_for(department: str, decision_no: str) -> str:
    """The deterministic event id of an imported record: a re-import is a DUPLICATE, never a new event."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{department}|{decision_no}"))


def _checked(memo: dict[tuple[str, str], Any] | None, kind: str, raw: str) -> identity.Identity:
    """``identity.check_uscc`` / ``check_ric``, remembered per file (an authority's code is on every
    row, an entity on several): returns the Identity or raises the Rejection."""
    key = (kind, raw)
    if memo is None or key not in memo:
        try:
            got: Any = (identity.check_uscc if kind == "USCC" else identity.check_ric)(raw, field="")
        except Rejection as r:
            got = r
        if memo is None:
            memo = {}
        if len(memo) < 200_000:
            memo[key] = got
    else:
        got = memo[key]
    if isinstance(got, Rejection):
        raise got
    return got  # type: ignore[no-any-return]


@cache
def _by_target(event_type: str) -> dict[str, Column]:
    return {c.target: c for c in columns(event_type)}


@cache
def _body_fields(event_type: str) -> tuple[str, ...]:
    return tuple(c.target for c in columns(event_type) if c.target and not c.target.startswith("subject."))


_AS_IS = frozenset({"text", "text?", "subject"})


def map_row(layout: Layout, cells: list[str], row: int, department: str, today: date,
            memo: dict[tuple[str, str], Any] | None = None, publication: PublicationRules | None = None) -> RowResult:
    """One data row to a record, or its refusals. Never raises for any cell content. ``memo``
    remembers identity checks across the rows of one file."""
    event_type = layout.event_type
    prefix = layout.prefix
    refusals: list[Problem] = []
    warnings: list[Problem] = []

    def problem(col: Column, code: str, message: str) -> Problem:
        return Problem(row, col.code, layout.header_of(col), code, message)

    def refuse(col: Column, code: str, message: str) -> None:
        refusals.append(problem(col, code, message))

    width = len(layout.headers)
    if len(cells) > width and any(c.strip() for c in cells[width:]):
        refusals.append(Problem(row, "", "", "row.too_many_cells",
                                f"该行有{len(cells)}个单元格，多于表头的{width}列（可能有未加引号的逗号） "
                                f"(the row has {len(cells)} cells, more than the {width} columns of the header; "
                                "an unquoted comma?)"))
    values: dict[str, Any] = {}
    raw: dict[str, str] = {}
    clean = BAD_CHARS.search("".join(cells)) is None  # (one scan per row; per cell only if needed)
    n_cells = len(cells)
    for col, i in layout.cells:
        cell = cells[i] if i is not None and i < n_cells else ""
        if clean:
            text = cell.strip()
        else:
            try:
                text = clean_text(cell)
            except CellError as exc:
                refuse(col, exc.code, f"{layout.header_of(col)}：{exc.message}")
                continue
        raw[col.key] = text
        if not text:
            if col.required:
                refuse(col, "required", f"{layout.header_of(col)}不能为空 ({col.key} is required)")
            values[col.target] = None
        elif col.kind in _AS_IS:
            values[col.target] = text
        else:
            try:
                values[col.target] = _convert(col, text, layout)
            except CellError as exc:
                refuse(col, exc.code, exc.message)

    decision_no = values.get("decision_no")
    event_id = event_id_for(department, decision_no) if decision_no else None

    col_of = _by_target(event_type)
    subject = _subject(layout, values, raw, refuse, warnings, problem, memo)
    for code_field in ("authority_code", "data_source_code"):
        if values.get(code_field):
            try:
                ident = _checked(memo, "USCC", values[code_field])
                values[code_field] = ident.normalised
                warnings += [problem(col_of[code_field], w, identity.WARNING_MESSAGES[w]) for w in ident.warnings]
            except Rejection as r:
                refuse(col_of[code_field], r.code, r.message)

    for target, source in FALLBACKS.items():
        if target in values and values[target] is None:
            values[target] = values.get(source)
    for target, default in DEFAULTS.items():
        if target in col_of and values.get(target) is None:
            values[target] = default

    decided = values.get("decision_date")
    if event_type == PENALTY and values.get("severity") is None:
        values["severity"] = _severity(publication, decided, values.get("penalty_categories"))
    if isinstance(decided, date):
        if decided > today:
            refuse(col_of["decision_date"], "time.future",
                   f"决定日期 {decided} 晚于今天 {today} (the decision date is in the future)")
        end_field = "valid_to" if event_type == LICENCE else "penalty_valid_until"
        end, start = values.get(end_field), values.get("valid_from")
        end_col = col_of[end_field]
        if event_type == LICENCE and isinstance(start, date) and isinstance(end, date) and end < start:
            refuse(end_col, "time.order", f"{layout.header_of(end_col)} {end} 早于有效期自 {start} "
                                          f"({prefix}_YXQZI is before {prefix}_YXQZ)")
        elif isinstance(end, date) and end < decided:
            refuse(end_col, "time.order", f"{layout.header_of(end_col)} {end} 早于决定日期 {decided} "
                                          f"({end_col.code} is before the decision date)")

    if refusals or subject is None:
        return RowResult(row, event_id, decision_no, None, tuple(refusals), tuple(warnings))
    body = {target: values.get(target) for target in _body_fields(event_type)}
    envelope = {
        "event_id": event_id, "event_type": event_type, "schema_version": registry.schema_for(event_type).version,
        "subject": subject, "source_department": department, "valid_from": decided,
        "valid_to": body["valid_to"] if event_type == LICENCE else body["penalty_valid_until"],
        "recorded_at": datetime(decided.year, decided.month, decided.day, tzinfo=CHINA),
    }
    return RowResult(row, event_id, decision_no, {"envelope": envelope, **body}, (), tuple(warnings))


def _severity(publication: PublicationRules | None, decided: Any, categories: Any) -> str:
    """失信程度 not given: the class the penalty categories give under the regime of the decision date
    (docs/domain-notes.md §14.1); general when they give none (no regime, no mapping, no date). A class
    the file does give is kept (the department's explicit classification wins) and the sequencer
    warns when it differs from the categories."""
    if publication is None or not isinstance(decided, date) or not categories:
        return "general"
    return publication.severity_for(decided, categories).severity or "general"


def _convert(col: Column, text: str, layout: Layout) -> Any:
    header = layout.header_of(col)
    if col.kind in _AS_IS:
        return text
    if col.kind in ("date", "date?"):
        if col.kind == "date?" and text in OPEN_ENDED:
            return None
        try:
            d = parse_date(text)
        except CellError as exc:
            raise CellError(exc.code, f"{header}：{exc.message}") from None
        if col.kind == "date?" and d.year == 9999:
            return None  # 9999-12-31 is how many systems write 长期 (no end date)
        if d.year < 1949:
            raise CellError("date.implausible", f"{header} {d} 早于1949年，不可能是行政决定的日期 "
                                                f"(a date before 1949 cannot be an administrative decision's)")
        return d
    if col.kind in ("fen", "fen?"):
        try:
            return parse_wanyuan(text)
        except CellError as exc:
            raise CellError(exc.code, f"{header}：{exc.message}") from None
    if col.kind == "list":
        items = categories(text)
        if not items:
            raise CellError("required", f"{header}不能为空 ({col.key} is required)")
        return items
    if col.kind == "enum":
        n = unicodedata.normalize("NFKC", text).strip().lower()
        for symbol, spellings in col.values:
            if n in {s.lower() for s in spellings}:
                return symbol
        allowed = " / ".join("、".join(s for s in spellings if s != symbol) + f" ({symbol})"
                             for symbol, spellings in col.values)
        raise CellError("enum.unknown", f"{header}“{quote(text)}”不是允许的值：{allowed} "
                                        f"(not one of the allowed values)")
    raise CellError("column.unknown", f"{header}: 无法读取 (cannot be read)")


def _subject(layout: Layout, values: dict[str, Any], raw: dict[str, str], refuse: Any,
             warnings: list[Problem], problem: Any, memo: dict[tuple[str, str], Any] | None) -> dict[str, str] | None:
    """The envelope's subject: a resident ID number (证件号码) for 自然人, the USCC otherwise."""
    p = layout.prefix
    lb_col, uscc_col = layout.column(f"{p}_XDR_LB"), layout.column(f"{p}_XDR_SHXYM")
    doc_col, ric_col = layout.column(f"{p}_XDR_ZJLX"), layout.column(f"{p}_XDR_ZJHM")
    name = values.get("subject.name")
    kind = values.get("counterparty_type")
    if kind is None:
        return None
    allowed = counterparty_types(layout.event_type)
    kind = COUNTERPARTY_ALIASES.get(unicodedata.normalize("NFKC", kind).replace(" ", ""), kind)
    if kind not in allowed:
        refuse(lb_col, "counterparty_type.unknown",
               f"{layout.header_of(lb_col)}“{quote(values['counterparty_type'])}”应为 {' / '.join(allowed)} "
               f"之一 (must be one of {', '.join(allowed)})")
        return None
    values["counterparty_type"] = kind
    if kind == "自然人":
        if (raw.get(doc_col.key) or "").replace(" ", "") not in RIC_DOCUMENTS:
            refuse(doc_col, "id_document.unsupported",
                   f"{layout.header_of(doc_col)}“{quote(raw[doc_col.key])}”：自然人只能以居民身份证号码记入信用账本 "
                   "(a natural person can only be recorded by a resident identity number, 身份证)")
            return None
        number, col, id_type = raw.get(ric_col.key, ""), ric_col, "RIC"
        if not number:
            refuse(ric_col, "required", f"自然人须填写{layout.header_of(ric_col)}（公民身份号码） "
                                        f"(a natural person needs the resident identity number in {ric_col.code})")
            return None
    else:
        number, col, id_type = raw.get(uscc_col.key, ""), uscc_col, "USCC"
        if not number:
            refuse(uscc_col, "required", f"{kind}须填写统一社会信用代码 ({kind}: the unified social credit "
                                         f"code, {uscc_col.code}, is required)")
            return None
    try:
        ident = _checked(memo, id_type, number)
    except Rejection as r:
        if not (kind == "个体工商户" and r.code == "uscc.resident_id"):
            refuse(col, r.code, r.message)
            return None
        # The operator's ID number in an individual business's code column (docs/domain-notes.md
        # §1.8): the row is filed under the operator as a natural person, masked like every ID number.
        ident = _checked(memo, "RIC", number)
        id_type = "RIC"
        warnings.append(problem(col, "uscc.operator_id_number", OPERATOR_ID_NUMBER))
    warnings += [problem(col, w, identity.WARNING_MESSAGES[w]) for w in ident.warnings]
    if not name:
        return None
    return {"id": ident.normalised, "id_type": id_type, "name": name}

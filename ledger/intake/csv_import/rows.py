"""Reading national double-publicity (双公示) CSV files into credit events. Pure: no Kafka, no files.

    reading = open_csv(data, "xc-samr")        # FileRefused if the file as a whole cannot be read
    for row in reading.rows():                 # one RowResult per data row, never an exception
        row.record or row.refusals

The layout is the national one (domain.md §3.2 licences, XK_ codes; §3.3 penalties, CF_ codes).
Columns are named by their codes (``CF_XDR_MC``) or by their Chinese headers (``行政相对人名称``),
in any order; full-width characters, spaces and a leading ``*`` (required-field mark) are tolerated,
and so is a trailing bracket (``罚款金额（万元）``). The column table is derived from the field docs
of ``schemas/avro/AdministrativeLicenceGranted.v1.avsc`` and ``AdministrativePenaltyImposed.v1.avsc``
(each doc starts with the code and the Chinese name); only the subject's columns (name, credit code,
ID document), which the envelope carries, and the national columns the ledger does not keep are
listed here.

Encodings: UTF-8 with or without a byte-order mark, else GB18030 (which includes GBK and GB2312).
Dates: ``2024-05-06``, ``2024/5/6``, ``2024.05.06``, ``20240506``, ``2024年5月6日``, with an optional
time (``2024-05-06 00:00:00``) and full-width digits. Fines (``CF_NR_FK``) and confiscations
(``CF_NR_WFFF``) are in 万元 and become fen exactly (``0.2`` -> 200,000 fen); a fraction of a fen is
refused, never rounded.

Each row gives a record (``AdministrativeLicenceGranted`` or ``AdministrativePenaltyImposed`` with
its envelope) or refusals, each naming the row, the column (code and header as written in the file)
and the reason (Chinese, English in brackets). Identity warnings (``ledger.domain.identity``: a
wrong USCC check character, an unusual prefix, an ID whose county code did not exist at birth)
flag the row; it is still submitted. A natural person's ID number is never quoted in a message.

The event id is ``uuid5(EVENT_ID_NAMESPACE, department + "|" + decision document number)``
(``XK_WSH`` / ``CF_WSH``), and ``recorded_at`` is the decision date (00:00 China time): the national
layout has no recording time, and the record must be byte-identical on a re-import so that the
sequencer answers DUPLICATE (the import time would make it a CONFLICT).

Errors: ``FileRefused`` (the whole file: encoding, layout, a missing required column, a CSV syntax
error) is the only exception ``open_csv`` and ``Reading.rows`` raise; ``CellError`` (a ValueError) is
what the single-value parsers ``parse_date`` and ``parse_wanyuan`` raise.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache, cached_property
from typing import Any

from ledger.domain import identity
from ledger.domain.errors import Rejection
from ledger.domain.money import CHINA, wanyuan_to_fen
from schemas import registry

__all__ = [
    "EVENT_ID_NAMESPACE",
    "LICENCE",
    "PENALTY",
    "CellError",
    "Column",
    "FileRefused",
    "Layout",
    "Problem",
    "Reading",
    "RowResult",
    "column_table",
    "columns",
    "decode",
    "event_id_for",
    "map_row",
    "open_csv",
    "parse_date",
    "parse_wanyuan",
    "read_csv",
]

LICENCE = "AdministrativeLicenceGranted"
PENALTY = "AdministrativePenaltyImposed"
PREFIXES = {"XK": LICENCE, "CF": PENALTY}
KIND_NAMES = {LICENCE: "行政许可 (administrative licences, XK_)", PENALTY: "行政处罚 (administrative penalties, CF_)"}

# Fixed forever: changing it would give every imported record a new event id (re-imports would append).
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2b4e-5a0d-5d3c-9e27-0b8a1c4d2e71")

MAX_FEN = 2**63 - 1  # Avro long
MAX_QUOTED = 40  # characters of a cell value quoted in a message


class FileRefused(Exception):
    """The file as a whole cannot be imported; nothing of it is submitted."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class CellError(ValueError):
    """One cell cannot be read: a reason code and the message (Chinese, English in brackets)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Problem:
    """A refusal or a warning about one row: which column (code and header as in the file) and why."""

    row: int
    column: str  # national code (CF_NR_FK), "" for a column without one (失信程度) or the whole row
    header: str  # the header as written in the file, or the standard one if the column is absent
    code: str  # machine-readable reason, e.g. "date.impossible", "uscc.length"
    message: str  # Chinese sentence, English in brackets

    @property
    def field(self) -> str:
        return " ".join(x for x in (self.column, self.header) if x) or "(row)"


@dataclass(frozen=True)
class RowResult:
    row: int  # the row number a spreadsheet shows (the header row counts, the first row is 1)
    event_id: str | None  # None when the row has no decision document number
    decision_no: str | None
    record: dict[str, Any] | None  # None when refused
    refusals: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def status(self) -> str:
        """``refused``, ``flagged`` (valid, with identity warnings) or ``valid``."""
        if self.record is None:
            return "refused"
        return "flagged" if self.warnings else "valid"


# =========================================================================== the column table


@dataclass(frozen=True)
class Column:
    code: str  # national code, e.g. CF_NR_FK; "" for 失信程度 (the national layout has no such column)
    header: str  # the standard Chinese header
    target: str  # Avro field of the family record, or subject.name / subject.uscc / subject.id_document /
    #             subject.ric, or "" for a national column the ledger does not keep
    kind: str  # text | text? | date | date? | fen? | list | enum | subject | ignored
    aliases: tuple[str, ...] = ()
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()  # enum: (symbol, accepted spellings)
    required: bool = False

    @cached_property
    def key(self) -> str:
        return self.code or self.header


# The envelope carries the subject, so these columns are not in the family schemas' docs.
_SUBJECT = (
    ("XDR_MC", "行政相对人名称", (), "subject.name"),
    ("XDR_SHXYM", "行政相对人代码_1（统一社会信用代码）", ("行政相对人代码_1", "统一社会信用代码"), "subject.uscc"),
    ("XDR_ZJLX", "证件类型", ("行政相对人证件类型",), "subject.id_document"),
    ("XDR_ZJHM", "证件号码", ("行政相对人证件号码", "身份证号码", "公民身份号码"), "subject.ric"),
)
# National columns the ledger's schemas have no field for: recognised, then left out (and reported).
_NOT_KEPT = (
    ("XDR_GSZC", "行政相对人代码_2（工商注册号）", ("行政相对人代码_2", "工商注册号")),
    ("XDR_ZZJG", "行政相对人代码_3（组织机构代码）", ("行政相对人代码_3", "组织机构代码")),
    ("XDR_SWDJ", "行政相对人代码_4（税务登记号）", ("行政相对人代码_4", "税务登记号")),
    ("XDR_SYDW", "行政相对人代码_5（事业单位证书号）", ("行政相对人代码_5", "事业单位证书号")),
    ("XDR_SHZZ", "行政相对人代码_6（社会组织登记证号）", ("行政相对人代码_6", "社会组织登记证号")),
    ("FR_ZJLX", "法定代表人证件类型", ()),
    ("FR_ZJHM", "法定代表人证件号码", ("法定代表人身份证号", "法定代表人身份证号码")),
)
# When a cell is empty: the Avro doc of licence_no says the emitter repeats the decision no; the data
# source is the deciding authority unless stated; 失信程度 defaults to 一般 (general); a licence
# being reported as granted is 有效 (valid) unless XK_ZT says otherwise.
FALLBACKS = {"licence_no": "decision_no", "data_source": "authority", "data_source_code": "authority_code"}
DEFAULTS = {"severity": "general", "status": "valid"}
COUNTERPARTY_ALIASES = {"法人及其他组织": "法人及非法人组织", "法人和其他组织": "法人及非法人组织",
                        "法人和非法人组织": "法人及非法人组织", "法人": "法人及非法人组织",
                        "非法人组织": "法人及非法人组织", "个体户": "个体工商户", "个人": "自然人"}
RIC_DOCUMENTS = {"", "身份证", "居民身份证", "身份证号", "身份证号码", "公民身份号码", "居民身份证号码"}
OPEN_ENDED = {"长期", "长期有效", "永久", "永久有效", "无", "无期限", "-", "/", "—"}
SEVERITY_ALIASES = ("severity",)

_DOC_CODE = re.compile(r"^((?:XK|CF)_[A-Z0-9_]+|BZ)\s+([^\s:：,，.。(（]+)")
_DOC_NAME = re.compile(r"^([^\s:：,，.。(（]+)\s*[:：]")


def _avsc(event_type: str) -> dict[str, Any]:
    return json.loads((registry.AVRO_DIR / registry.schema_for(event_type).file).read_text(encoding="utf-8"))


def _kind(avro_type: Any, name: str) -> str:
    optional = isinstance(avro_type, list) and "null" in avro_type
    t = next((x for x in avro_type if x != "null"), None) if isinstance(avro_type, list) else avro_type
    if isinstance(t, dict) and t.get("logicalType") == "date":
        return "date?" if optional else "date"
    if isinstance(t, dict) and t.get("type") == "array":
        return "list"
    if isinstance(t, dict) and t.get("type") == "enum":
        return "enum"
    if t == "long" and name.endswith("_fen"):
        return "fen?" if optional else "fen"
    if t == "string":
        return "text?" if optional else "text"
    raise RuntimeError(f"csv_import: no CSV conversion for field {name} of type {avro_type!r}")


def _enum_values(avro_type: Any, doc: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The accepted spellings of each symbol, read from the field doc: either ``valid = 1 有效, ...``
    or a list ``轻微 / 一般 / 严重`` in the order of the symbols."""
    symbols = avro_type["symbols"]
    pairs = [re.search(rf"\b{re.escape(s)}\s*=\s*([^,，;；]+)", doc) for s in symbols]
    if all(pairs):
        return tuple((s, (s, *m.group(1).split())) for s, m in zip(symbols, pairs, strict=True) if m)
    listed = re.search(r"[:：]\s*([^()（）]+)", doc)
    words = [w.strip() for w in listed.group(1).split("/")] if listed else []
    if len(words) != len(symbols):
        raise RuntimeError(f"csv_import: cannot read the values of {avro_type['name']} from its doc {doc!r}")
    return tuple((s, (s, w)) for s, w in zip(symbols, words, strict=True))


@cache
def columns(event_type: str) -> tuple[Column, ...]:
    """The CSV columns of a family: the subject's, then one per field of the Avro schema (code and
    Chinese header read from the field's doc), then the national ones the ledger does not keep."""
    prefix = next(p for p, t in PREFIXES.items() if t == event_type)
    out = [Column(f"{prefix}_{suffix}", header, target, "subject", aliases, required=suffix == "XDR_MC")
           for suffix, header, aliases, target in _SUBJECT]
    for f in _avsc(event_type)["fields"]:
        if f["name"] == "envelope":
            continue
        doc = f.get("doc", "")
        kind = _kind(f["type"], f["name"])
        found = _DOC_CODE.match(doc)
        if found:
            code, header = found.groups()
        else:
            named = _DOC_NAME.match(doc)
            if named is None:
                raise RuntimeError(f"csv_import: the doc of {event_type}.{f['name']} names no column: {doc!r}")
            code, header = "", named.group(1)
        values = _enum_values(f["type"], doc) if kind == "enum" else ()
        aliases = SEVERITY_ALIASES if f["name"] == "severity" else ()
        required = kind in ("text", "date", "list", "enum") and f["name"] not in FALLBACKS | DEFAULTS.keys()
        out.append(Column(code, header, f["name"], kind, aliases, values, required))
    out += [Column(f"{prefix}_{suffix}", header, "", "ignored", aliases) for suffix, header, aliases in _NOT_KEPT]
    return tuple(out)


def _norm_header(text: str) -> str:
    t = unicodedata.normalize("NFKC", text)
    t = "".join(ch for ch in t if not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc"))
    return t.strip("*:：").upper()


@cache
def _index() -> dict[str, dict[str, Column]]:
    """Normalised header or code -> {event type: column}."""
    idx: dict[str, dict[str, Column]] = {}
    for event_type in PREFIXES.values():
        for col in columns(event_type):
            names = [col.header, *col.aliases] + ([col.code] if col.code else [])
            if col.code == "BZ":  # 备注 has no prefix in the standard; XK_BZ / CF_BZ are seen too
                names.append(next(p for p, t in PREFIXES.items() if t == event_type) + "_BZ")
            for name in names:
                idx.setdefault(_norm_header(name), {})[event_type] = col
    return idx


_CODE_IN = re.compile(r"(?<![A-Z0-9_])((?:XK|CF)_[A-Z0-9_]+|BZ)(?![A-Z0-9_])")


def _lookup(header: str) -> dict[str, Column]:
    """Which columns a header can be: by its code if it carries one, else by its Chinese name (whole,
    without a trailing bracket, or the bracket's content)."""
    n = _norm_header(header)
    if not n:
        return {}
    idx = _index()
    code = _CODE_IN.search(n)
    if code and code.group(1) in idx:
        return idx[code.group(1)]
    candidates = [n]
    bracket = re.fullmatch(r"(.+?)\((.+)\)", n)
    if bracket:
        candidates += [bracket.group(1), bracket.group(2)]
    for c in candidates:
        if c in idx:
            return idx[c]
    return {}


# =========================================================================== layout


@dataclass(frozen=True)
class Layout:
    event_type: str
    header_row: int
    headers: tuple[str, ...]  # as written in the file
    positions: dict[str, int]  # column key -> cell index
    ignored: tuple[str, ...]  # headers not imported: national columns the ledger does not keep, unknown ones

    @cached_property
    def prefix(self) -> str:
        return next(p for p, t in PREFIXES.items() if t == self.event_type)

    @cached_property
    def _by_key(self) -> dict[str, Column]:
        return {c.key: c for c in columns(self.event_type)}

    def column(self, key: str) -> Column:
        return self._by_key[key]

    @cached_property
    def _names(self) -> dict[str, str]:
        out = {}
        for col in columns(self.event_type):
            i = self.positions.get(col.key)
            written = self.headers[i].strip() if i is not None else ""
            out[col.key] = col.header if i is None or (col.code and _norm_header(written) == col.code) else written
        return out

    @cached_property
    def cells(self) -> tuple[tuple[Column, int | None], ...]:
        """The imported columns and their cell index (None: not in the file)."""
        return tuple((c, self.positions.get(c.key)) for c in columns(self.event_type) if c.kind != "ignored")

    def header_of(self, col: Column) -> str:
        """The column's Chinese name: the header as written in the file, or the standard one if the
        file names the column by its code (or has no such column)."""
        return self._names[col.key]

    def label(self, col: Column) -> str:
        return " ".join(x for x in (col.code, self.header_of(col)) if x)

    def field_label(self, avro_field: str, record: dict[str, Any] | None = None) -> str:
        """The column behind an Avro field name the sequencer named in a refusal (subject.id,
        decision_date, valid_to, ...), as ``code header``; the field name itself if none is."""
        target = {"subject.name": "subject.name", "valid_from": "decision_date"}.get(avro_field, avro_field)
        if avro_field == "subject.id":
            person = bool(record and record["envelope"]["subject"]["id_type"] == "RIC")
            target = "subject.ric" if person else "subject.uscc"
        if avro_field == "valid_to":
            target = "valid_to" if self.event_type == LICENCE else "penalty_valid_until"
        for col in columns(self.event_type):
            if col.target == target:
                return self.label(col)
        return avro_field


def _layout(headers: list[str], header_row: int) -> Layout:
    matches = [_lookup(h) for h in headers]
    codes = [_CODE_IN.search(_norm_header(h)) for h in headers]
    by_code = {m.group(1)[:2] for m in codes if m and m.group(1) != "BZ"}
    if len(by_code) > 1:
        raise FileRefused("layout.mixed", "表头同时含有 XK_（行政许可）和 CF_（行政处罚）字段，一个文件只能是一类 "
                                          "(the header mixes XK_ licence and CF_ penalty columns; one file, one kind)")
    if by_code:
        event_type = PREFIXES[by_code.pop()]
    else:
        exclusive = {t: sum(1 for m in matches if list(m) == [t]) for t in PREFIXES.values()}
        kinds = [t for t, n in exclusive.items() if n]
        if len(kinds) != 1:
            raise FileRefused(
                "layout.unknown" if not kinds else "layout.mixed",
                "无法从表头判断是行政许可（XK_）还是行政处罚（CF_）文件，请使用双公示标准字段代码或中文表头 "
                "(cannot tell from the header whether this is a licence (XK_) or a penalty (CF_) file; "
                "use the national column codes or Chinese headers)")
        event_type = kinds[0]
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for i, (h, m) in enumerate(zip(headers, matches, strict=True)):
        col = m.get(event_type)
        if col is None:
            if h.strip():
                ignored.append(h.strip())
            continue
        if col.key in positions:
            first = headers[positions[col.key]].strip()
            raise FileRefused("layout.duplicate_column",
                              f"第{positions[col.key] + 1}列“{first}”和第{i + 1}列“{h.strip()}”是同一字段 {col.key} "
                              f"(columns {positions[col.key] + 1} and {i + 1} are both {col.key})")
        positions[col.key] = i
        if col.kind == "ignored":
            ignored.append(h.strip())
    cols = columns(event_type)
    missing = [c for c in cols if c.required and c.key not in positions]
    prefix = next(p for p, t in PREFIXES.items() if t == event_type)
    if f"{prefix}_XDR_SHXYM" not in positions and f"{prefix}_XDR_ZJHM" not in positions:
        missing += [c for c in cols if c.key in (f"{prefix}_XDR_SHXYM", f"{prefix}_XDR_ZJHM")]
    if missing:
        names = "、".join(" ".join(x for x in (c.code, c.header) if x) for c in missing)
        raise FileRefused("layout.missing_columns",
                          f"{KIND_NAMES[event_type].split(' ')[0]}文件缺少必需的列：{names} "
                          f"(the {event_type} file lacks required columns: {names})")
    return Layout(event_type, header_row, tuple(headers), positions, tuple(ignored))


# =========================================================================== bytes to rows


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 with or without BOM, else GB18030; ``FileRefused`` otherwise."""
    if not data.strip():
        raise FileRefused("file.empty", "文件为空 (the file is empty)")
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRefused("file.excel", "这是 Excel 工作簿而不是 CSV 文件，请在 Excel 中“另存为 CSV” "
                                        "(this is an Excel workbook, not a CSV file; save it as CSV first)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRefused("file.encoding", "文件是 UTF-16 编码，请另存为 UTF-8 或 GB18030 编码的 CSV "
                                           "(the file is UTF-16; save it as CSV in UTF-8 or GB18030)")
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "UTF-8 (BOM)"
        except UnicodeDecodeError as exc:
            raise FileRefused("file.encoding", f"文件标明为 UTF-8，但第{exc.start + 3}字节处不是 UTF-8 "
                                               f"(the file is marked UTF-8 but byte {exc.start + 3} is not UTF-8)") from None
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise FileRefused("file.encoding", f"文件既不是 UTF-8 也不是 GB18030（GBK）编码（第{exc.start}字节无法识别） "
                                           f"(the file is neither UTF-8 nor GB18030/GBK: byte {exc.start} cannot be "
                                           "decoded)") from None
    return text.removeprefix("\ufeff"), "GB18030"


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines()[:10] if line.strip()), "")
    return "\t" if first.count("\t") > first.count(",") else ","


@dataclass
class Reading:
    """An opened file: its encoding, delimiter and layout; ``rows()`` gives its data rows."""

    encoding: str
    delimiter: str
    layout: Layout
    department: str
    today: date
    _records: Iterator[list[str]] = field(repr=False)
    _line: Any = field(repr=False)
    read: int = 0  # data rows read so far
    _memo: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)  # identity checks, per file

    @property
    def event_type(self) -> str:
        return self.layout.event_type

    def rows(self) -> Iterator[RowResult]:
        """Every data row (blank rows skipped) in file order. A decision number met twice refuses the
        later rows. Raises only ``FileRefused``, for a CSV syntax error (with its line)."""
        first_row: dict[str, int] = {}
        number = self.layout.header_row
        while True:
            try:
                cells = next(self._records)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileRefused("file.csv", f"第{self._line()}行附近 CSV 格式错误：{exc} "
                                              f"(CSV syntax error near line {self._line()}: {exc})") from None
            number += 1
            if not any(c.strip() for c in cells):
                continue
            self.read += 1
            result = map_row(self.layout, cells, number, self.department, self.today, self._memo)
            if result.decision_no is not None and result.record is not None:
                seen = first_row.setdefault(result.decision_no, number)
                if seen != number:
                    col = self.layout.column(f"{self.layout.prefix}_WSH")
                    result = RowResult(number, result.event_id, result.decision_no, None, (Problem(
                        number, col.code, self.layout.header_of(col), "decision_no.repeated",
                        f"文书号与第{seen}行相同：同一部门的同一文书号只能导入一次 "
                        f"(the same decision number as row {seen}: one decision number, one record)"),),
                        result.warnings)
            yield result


def open_csv(data: bytes, department: str, today: date | None = None) -> Reading:
    """Decode the bytes, find the header row (the first of the first 10 non-blank rows with at
    least 3 recognised columns; a title row above it is skipped) and the layout."""
    text, encoding = decode(data)
    if "\x00" in text:
        raise FileRefused("file.binary", "文件含有空字符（NUL），不是文本 CSV 文件 (the file contains NUL "
                                         "characters; it is not a text CSV file)")
    delimiter = _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    number = 0
    seen = 0
    try:
        for cells in reader:
            number += 1
            if not any(c.strip() for c in cells):
                continue
            seen += 1
            if sum(1 for c in cells if _lookup(c)) >= 3:
                layout = _layout(cells, number)
                return Reading(encoding, delimiter, layout, department,
                               today or datetime.now(UTC).astimezone(CHINA).date(), reader, lambda: reader.line_num)
            if seen >= 10:
                break
    except csv.Error as exc:
        raise FileRefused("file.csv", f"第{reader.line_num}行 CSV 格式错误：{exc} "
                                      f"(CSV syntax error at line {reader.line_num}: {exc})") from None
    raise FileRefused("layout.no_header", "前10行中没有双公示表头（XK_/CF_ 字段代码或中文字段名） "
                                          "(no double-publicity header row, XK_/CF_ codes or Chinese names, in the "
                                          "first 10 rows)")


def read_csv(data: bytes, department: str, today: date | None = None) -> tuple[Reading, list[RowResult]]:
    reading = open_csv(data, department, today)
    return reading, list(reading.rows())


def event_id_for(department: str, decision_no: str) -> str:
    """The deterministic event id of an imported record: a re-import is a DUPLICATE, never a new event."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{department}|{decision_no}"))


# =========================================================================== cells


def _quote(value: str) -> str:
    return value if len(value) <= MAX_QUOTED else value[:MAX_QUOTED] + "…"


_TIME = re.compile(r"(.+?)(?:[ T]+[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)")
_DATE_FORMS = (  # ASCII digits only (after NFKC): \d would also take Arabic-Indic and other digits
    re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})"),
    re.compile(r"([0-9]{4})()([0-9]{2})([0-9]{2})"),
    re.compile(r"([0-9]{4})(年)([0-9]{1,2})月([0-9]{1,2})日?"),
)


def parse_date(text: str) -> date:
    """A date as real files write it (see the module doc); ``CellError`` otherwise."""
    t = unicodedata.normalize("NFKC", text).strip()
    timed = _TIME.fullmatch(t)
    if timed:
        t = timed.group(1).strip()
    for form in _DATE_FORMS:
        m = form.fullmatch(t)
        if m:
            y, _, mo, d = m.groups()
            try:
                return date(int(y), int(mo), int(d))
            except ValueError:
                raise CellError("date.impossible", f"“{_quote(text)}”不是真实存在的日期 "
                                                   f"(this date does not exist)") from None
    raise CellError("date.format", f"“{_quote(text)}”不是可识别的日期，请使用如 2024-05-06、2024/5/6、"
                                   f"20240506、2024年5月6日 的格式 (not a recognised date; write e.g. 2024-05-06)")


_PLAIN_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def parse_wanyuan(text: str) -> int:
    """An amount in 万元 as the national files give it, in fen, exactly: ``"0.2"`` -> 200000.

    Accepted: digits with an optional decimal part, full-width digits, surrounding spaces, a
    trailing 万元 unit. Zeros after the 6th decimal change nothing and are accepted; any other 7th
    decimal is a fraction of a fen and refused, as are negative amounts, exponents, thousands
    separators and anything else. The conversion itself is ``ledger.domain.money.wanyuan_to_fen``."""
    t = unicodedata.normalize("NFKC", text).strip()
    t = t.removesuffix("万元").strip()
    if t.startswith("-") and _PLAIN_DECIMAL.fullmatch(t[1:]):
        raise CellError("money.negative", f"“{_quote(text)}”：金额不能为负数 (an amount cannot be negative)")
    m = _PLAIN_DECIMAL.fullmatch(t)
    if m is None:
        raise CellError("money.format", f"“{_quote(text)}”不是以万元为单位的金额，应为数字，如 0.2 表示2000元 "
                                        f"(not an amount in 万元 (10,000 yuan): write a number, e.g. 0.2 for 2,000 yuan)")
    whole, fraction = m.group(1), (m.group(2) or "").rstrip("0")
    if len(fraction) > 6:
        raise CellError("money.precision", f"“{_quote(text)}”超过6位小数（不足1分），不能精确换算为分 "
                                           f"(more than 6 decimals of 万元 is a fraction of a fen; give at most 6)")
    if len(whole.lstrip("0")) > 13:
        raise CellError("money.too_large", f"“{_quote(text)}”：金额过大 (the amount is too large)")
    fen = wanyuan_to_fen(str(int(whole)) + ("." + fraction if fraction else ""))
    if fen > MAX_FEN:
        raise CellError("money.too_large", f"“{_quote(text)}”：金额过大 (the amount is too large)")
    return fen


_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _text(value: str) -> str:
    t = value.strip()
    if _BAD_CHARS.search(t):
        raise CellError("text.control_characters", "含有控制字符或无效字符 (contains control or invalid characters)")
    return t


def _categories(value: str) -> list[str]:
    return [p.strip() for p in re.split(r"[；;、，,]", value) if p.strip()]


# =========================================================================== a row


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
            memo: dict[tuple[str, str], Any] | None = None) -> RowResult:
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
    clean = _BAD_CHARS.search("".join(cells)) is None  # (one scan per row; per cell only if needed)
    n_cells = len(cells)
    for col, i in layout.cells:
        cell = cells[i] if i is not None and i < n_cells else ""
        if clean:
            text = cell.strip()
        else:
            try:
                text = _text(cell)
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
        items = _categories(text)
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
        raise CellError("enum.unknown", f"{header}“{_quote(text)}”不是允许的值：{allowed} "
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
    allowed = _counterparty_types(layout.event_type)
    kind = COUNTERPARTY_ALIASES.get(unicodedata.normalize("NFKC", kind).replace(" ", ""), kind)
    if kind not in allowed:
        refuse(lb_col, "counterparty_type.unknown",
               f"{layout.header_of(lb_col)}“{_quote(values['counterparty_type'])}”应为 {' / '.join(allowed)} "
               f"之一 (must be one of {', '.join(allowed)})")
        return None
    values["counterparty_type"] = kind
    if kind == "自然人":
        if (raw.get(doc_col.key) or "").replace(" ", "") not in RIC_DOCUMENTS:
            refuse(doc_col, "id_document.unsupported",
                   f"{layout.header_of(doc_col)}“{_quote(raw[doc_col.key])}”：自然人只能以居民身份证号码记入信用账本 "
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
        refuse(col, r.code, r.message)
        return None
    warnings += [problem(col, w, identity.WARNING_MESSAGES[w]) for w in ident.warnings]
    if not name:
        return None
    return {"id": ident.normalised, "id_type": id_type, "name": name}


@cache
def _counterparty_types(event_type: str) -> tuple[str, ...]:
    doc = next(f["doc"] for f in _avsc(event_type)["fields"] if f["name"] == "counterparty_type")
    return tuple(w.strip() for w in doc.split(":", 1)[1].split("/"))


def column_table() -> str:
    """The accepted columns as a Markdown table (docs/csv-import.md is made from it)."""
    lines = ["| file | code | header | also accepted | record field | required |", "|---|---|---|---|---|---|"]
    for event_type in (LICENCE, PENALTY):
        for c in columns(event_type):
            field_name = c.target or "(not kept)"
            if c.kind == "enum":
                field_name += ": " + ", ".join(f"{'/'.join(sp[1:])} = {sym}" for sym, sp in c.values)
            lines.append(f"| {event_type.removeprefix('Administrative')} | {c.code or '–'} | {c.header} | "
                         f"{'、'.join(c.aliases) or ''} | {field_name} | {'yes' if c.required else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(column_table())

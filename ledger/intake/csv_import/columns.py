"""The national layouts: the CSV columns of each family (licences XK_, penalties CF_), derived from the
field docs of the Avro schemas (each doc starts with the national code and the Chinese name), the
subject's columns the envelope carries, the national columns the ledger does not keep, the lookup of
a header as written in a file, and the column table docs/csv-import.md shows.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

from schemas import registry

LICENCE = "AdministrativeLicenceGranted"
PENALTY = "AdministrativePenaltyImposed"
PREFIXES = {"XK": LICENCE, "CF": PENALTY}
KIND_NAMES = {LICENCE: "行政许可 (administrative licences, XK_)", PENALTY: "行政处罚 (administrative penalties, CF_)"}


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
# source is the deciding authority unless stated; 失信程度, when not given, is derived from the penalty
# categories (rows.py, docs/domain-notes.md §14.1); a licence being reported as granted is 有效 (valid)
# unless XK_ZT says otherwise.
FALLBACKS = {"licence_no": "decision_no", "data_source": "authority", "data_source_code": "authority_code"}
DEFAULTS = {"status": "valid"}
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
        required = kind in ("text", "date", "list", "enum") and f["name"] not in FALLBACKS | DEFAULTS.keys() | {
            "severity"}
        out.append(Column(code, header, f["name"], kind, aliases, values, required))
    out += [Column(f"{prefix}_{suffix}", header, "", "ignored", aliases) for suffix, header, aliases in _NOT_KEPT]
    return tuple(out)


def norm_header(text: str) -> str:
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
                idx.setdefault(norm_header(name), {})[event_type] = col
    return idx


CODE_IN = re.compile(r"(?<![A-Z0-9_])((?:XK|CF)_[A-Z0-9_]+|BZ)(?![A-Z0-9_])")


def lookup(header: str) -> dict[str, Column]:
    """Which columns a header can be: by its code if it carries one, else by its Chinese name (whole,
    without a trailing bracket, or the bracket's content)."""
    n = norm_header(header)
    if not n:
        return {}
    idx = _index()
    code = CODE_IN.search(n)
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


@cache
def counterparty_types(event_type: str) -> tuple[str, ...]:
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

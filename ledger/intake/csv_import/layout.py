"""The layout of one file: which family it holds (by the codes or the Chinese names of its header) and
where each column is; ``FileRefused`` for a header that mixes families, repeats a column or lacks a
required one. It also names a column as the file wrote it, for the messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ledger.intake.csv_import.columns import (
    CODE_IN,
    KIND_NAMES,
    LICENCE,
    PREFIXES,
    Column,
    columns,
    lookup,
    norm_header,
)
from ledger.intake.csv_import.problems import FileRefused


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
            out[col.key] = col.header if i is None or (col.code and norm_header(written) == col.code) else written
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


def layout_of(headers: list[str], header_row: int) -> Layout:
    matches = [lookup(h) for h in headers]
    codes = [CODE_IN.search(norm_header(h)) for h in headers]
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

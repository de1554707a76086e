"""From bytes to rows: the encoding (UTF-8 with or without a byte-order mark, else GB18030, which
includes GBK and GB2312; an Excel workbook or UTF-16 is refused with a hint), the delimiter (comma
or tab), the header row (a title row above it is skipped), then every data row through
``rows.map_row``, a decision number met twice refusing the later rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from ledger.domain.rules import PublicationRules
from ledger.intake.csv_import.columns import lookup
from ledger.intake.csv_import.layout import Layout, layout_of
from ledger.intake.csv_import.problems import FileRefused, Problem, RowResult
from ledger.intake.csv_import.rows import map_row
from ledger.platform.clock import SYSTEM
from ledger.rules import loader


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
    publication: PublicationRules | None = None  # to derive 失信程度 from the categories when not given
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
            result = map_row(self.layout, cells, number, self.department, self.today, self._memo, self.publication)
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


@cache
def _publication() -> PublicationRules:
    """The rules loader's publication rules, read once per process for the files that are not given them."""
    return loader.load_publication_periods()


def open_csv(data: bytes, department: str, today: date | None = None,
             publication: PublicationRules | None = None) -> Reading:
    """Decode the bytes, find the header row (the first of the first 10 non-blank rows with at
    least 3 recognised columns; a title row above it is skipped) and the layout. ``publication``:
    the rules that derive a penalty's 失信程度 from its categories (default: those of the rules loader)."""
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
            if sum(1 for c in cells if lookup(c)) >= 3:
                layout = layout_of(cells, number)
                return Reading(encoding, delimiter, layout, department,
                               today or SYSTEM.today(), reader, lambda: reader.line_num,
                               publication or _publication())
            if seen >= 10:
                break
    except csv.Error as exc:
        raise FileRefused("file.csv", f"第{reader.line_num}行 CSV 格式错误：{exc} "
                                      f"(CSV syntax error at line {reader.line_num}: {exc})") from None
    raise FileRefused("layout.no_header", "前10行中没有双公示表头（XK_/CF_ 字段代码或中文字段名） "
                                          "(no double-publicity header row, XK_/CF_ codes or Chinese names, in the "
                                          "first 10 rows)")


def read_csv(data: bytes, department: str, today: date | None = None,
             publication: PublicationRules | None = None) -> tuple[Reading, list[RowResult]]:
    reading = open_csv(data, department, today, publication)
    return reading, list(reading.rows())

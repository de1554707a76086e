"""What the reader answers: a row's result (a record, or refusals and warnings, each a ``Problem``
naming the row, the column and the reason) and its two exceptions, ``FileRefused`` for the file as
a whole and ``CellError`` for one cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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

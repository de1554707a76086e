"""Exceptions of the credit-ledger domain.

    DomainError                      base of everything the domain raises on purpose
     ├── Rejection                   a submission is refused: field, code, message for the emitter
     ├── RulesError                  a rules file in ledger/rules/ is invalid: file, entry, reason
     └── CalendarCoverageError       the working-day calendar has no official schedule for a year

A ``Rejection`` goes back to the emitting department as the answer to its submission, so its
``message`` is a plain Chinese sentence a clerk understands, followed by an English sentence in
brackets. ``code`` is the stable, machine-readable reason (``"uscc.length"``,
``"department.not_authorized"``, ...). ``RulesError`` and ``CalendarCoverageError`` are
operator errors: the service must not start (or must not guess) when they occur.
"""

from __future__ import annotations

__all__ = ["CalendarCoverageError", "DomainError", "Rejection", "RulesError"]


class DomainError(Exception):
    """Base class of every exception the domain raises on purpose."""


class Rejection(DomainError):
    """A submission is refused; nothing is appended to the ledger.

    Attributes:
        field: the submission field at fault, e.g. ``"subject.id"`` or ``"source_department"``.
        code: machine-readable reason code, e.g. ``"uscc.length"``.
        message: Chinese sentence for the clerk, then the English sentence in brackets.
    """

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(field, code, message)
        self.field = field
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [{self.code}]"

    def __repr__(self) -> str:
        return f"Rejection(field={self.field!r}, code={self.code!r}, message={self.message!r})"


class RulesError(DomainError):
    """A rules file is invalid: says which file, which entry and why."""

    def __init__(self, file: str, entry: str, reason: str) -> None:
        super().__init__(file, entry, reason)
        self.file = file
        self.entry = entry
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.file}: {self.entry}: {self.reason}"


class CalendarCoverageError(DomainError):
    """The working-day calendar has no official 调休 schedule for the year asked about."""

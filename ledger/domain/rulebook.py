"""The rule book: every rules file of ``ledger/rules/`` as one value, given to whoever judges or folds.

The one rules loader (``ledger/rules/loader.py``, ``load()``) builds it once per process at start,
so that a bad file stops the process before its first event rather than at the first deadline;
the pure cores (sequencing, the list book, the fold) and the services take it as a value and never
read a file themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.domain.grade_rules import GradeRules
from ledger.domain.punishment import Catalogue
from ledger.domain.rules import DepartmentMatrix, PublicationRules
from ledger.domain.workdays import WorkdayCalendar

__all__ = ["RuleBook"]


@dataclass(frozen=True)
class RuleBook:
    """Every rules file, loaded and validated."""

    publication: PublicationRules  # publication periods, list periods, repair rules
    departments: DepartmentMatrix  # which department may emit which event type
    calendar: WorkdayCalendar  # working days, with the 调休 of each year
    catalogue: Catalogue  # the joint-punishment measures and red-list incentives
    grade: GradeRules  # the credit-grade weights

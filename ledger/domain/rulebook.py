"""The rule book: every rules file of ``ledger/rules/`` as one value, given to whoever judges or folds.

The one rules loader (``ledger/rules/loader.py``, ``load()``) builds it once per process at start,
so that a bad file stops the process before its first event rather than at the first deadline;
the pure cores (sequencing, the list book, the fold) and the services take it as a value and never
read a file themselves.

The named attributes are the newest version of each file; ``history`` holds every version, so that a
result judged under an older version (the versions a ledger entry names, ``stamp``) is recomputed
under that version (``at``; docs/domain-notes.md §14.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ledger.domain.assessment import AssessmentRules
from ledger.domain.divisions import Divisions
from ledger.domain.grade_rules import GradeRules
from ledger.domain.key_persons import KeyPersonRules
from ledger.domain.objection_rules import ObjectionRules
from ledger.domain.punishment import Catalogue
from ledger.domain.releases import ReleaseRules
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
    divisions: Divisions  # the city's counties and their codes (what the fold places entities in)
    key_persons: KeyPersonRules  # the key-person groups and the departments that keep their registers
    releases: ReleaseRules  # who publishes the numbered 红黑榜 releases, how often, how large
    objections: ObjectionRules  # the credit office, the deadlines of objections and repair applications
    assessment: AssessmentRules  # the departments' monthly assessment (a report's rule: not in the stamp)
    # rules file name -> version -> its value (every version 1..N the loader read)
    history: Mapping[str, Mapping[int, Any]] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def stamp(self) -> dict[str, int]:
        """The version of each rules file this book judges under (the newest), as a ledger entry names them.
        ``divisions`` is not among them: no judgement uses it (the fold places entities with the newest)."""
        return {"publication_periods": self.publication.version, "departments": self.departments.version,
                "workdays": self.calendar.version, "punishment_catalogue": self.catalogue.version,
                "credit_grade": self.grade.version, "key_persons": self.key_persons.version,
                "releases": self.releases.version, "objections": self.objections.version}

    def _newest(self) -> dict[str, Any]:
        return {"publication_periods": self.publication, "departments": self.departments,
                "workdays": self.calendar, "punishment_catalogue": self.catalogue, "credit_grade": self.grade,
                "divisions": self.divisions, "key_persons": self.key_persons, "releases": self.releases,
                "objections": self.objections}

    def at(self, name: str, version: int) -> Any:
        """Version ``version`` of the rules file ``name`` (e.g. ``at("publication_periods", 1)``);
        ``KeyError`` naming what is loaded when that version is not."""
        versions = self.history.get(name, {})
        if version in versions:
            return versions[version]
        newest = self._newest()
        if name in newest and version == getattr(newest[name], "version", None):
            return newest[name]
        if name == "department_assessment" and version == self.assessment.version:
            return self.assessment
        raise KeyError(f"rules file {name} v{version} is not loaded (loaded: {sorted(versions) or 'newest only'})")

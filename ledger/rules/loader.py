"""The one loader of the rules files: ``ledger/rules/<name>.v<N>.json`` -> domain values.

Every rules file is read here and nowhere else. For each name the highest version ``N`` in the
directory (default: ``ledger/rules`` itself; tests and tools may give another) is read, its header
is checked (``name`` and ``version`` match the file name, ``legal_sources`` is a non-empty
list of sentences) and the pure domain parses the rest into frozen values:

  * ``publication_periods`` -> ``PublicationRules`` (publication windows, list periods, repair rules)
  * ``departments``         -> ``DepartmentMatrix`` (who may emit which event type)
  * ``punishment_catalogue``-> ``Catalogue`` (joint-punishment measures, red-list incentives)
  * ``workdays``            -> ``WorkdayCalendar`` (working days, 调休)
  * ``credit_grade``        -> ``GradeRules`` (the credit-grade weights)

``load()`` reads them all into one ``RuleBook``; a process calls it once, in its entry function,
and hands the value (or the part it needs) to the objects it builds. The per-file loaders serve the
tests and the tools. Every failure is a ``RulesError`` naming the file, the entry and the reason.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from ledger.domain.errors import RulesError
from ledger.domain.grade_rules import GradeRules, parse_grade_rules
from ledger.domain.punishment import Catalogue, parse_catalogue
from ledger.domain.rulebook import RuleBook
from ledger.domain.ruledoc import Reader
from ledger.domain.rules import DepartmentMatrix, PublicationRules
from ledger.domain.rules_parse import parse_departments, parse_publication_periods
from ledger.domain.workdays import WorkdayCalendar, parse_workdays

__all__ = [
    "default_directory",
    "load",
    "load_catalogue",
    "load_departments",
    "load_grade",
    "load_publication_periods",
    "load_workdays",
]


def default_directory() -> Path:
    """``ledger/rules`` inside the installed package."""
    return Path(str(resources.files("ledger").joinpath("rules")))


def load(directory: Path | None = None) -> RuleBook:
    """Load and validate every rules file; raise ``RulesError`` on the first bad entry."""
    directory = default_directory() if directory is None else directory
    departments = load_departments(directory)
    return RuleBook(load_publication_periods(directory), departments, load_workdays(directory),
                    load_catalogue(directory, departments), load_grade(directory))


def load_publication_periods(directory: Path | None = None) -> PublicationRules:
    return parse_publication_periods(*_document(directory, "publication_periods"))


def load_departments(directory: Path | None = None) -> DepartmentMatrix:
    return parse_departments(*_document(directory, "departments"))


def load_catalogue(directory: Path | None = None, departments: DepartmentMatrix | None = None) -> Catalogue:
    """The catalogue, its departments checked against ``departments`` (default: the matrix of ``directory``)."""
    matrix = departments if departments is not None else load_departments(directory)
    return parse_catalogue(*_document(directory, "punishment_catalogue"), matrix)


def load_workdays(directory: Path | None = None) -> WorkdayCalendar:
    """The working-day calendar; ``RulesError`` names the entry (e.g. ``years.2024.holidays[3]``)."""
    return parse_workdays(*_document(directory, "workdays"))


def load_grade(directory: Path | None = None) -> GradeRules:
    """The credit-grade weights (``credit_grade.v<N>.json``)."""
    return parse_grade_rules(*_document(directory, "credit_grade"))


def _document(directory: Path | None, name: str) -> tuple[dict[str, Any], str]:
    """The highest version of ``<name>.v<N>.json`` in ``directory``, parsed, header checked; and its path."""
    directory = default_directory() if directory is None else directory
    versions = {}
    for path in directory.glob(f"{name}.v*.json"):
        match = re.fullmatch(rf"{re.escape(name)}\.v([1-9][0-9]*)\.json", path.name)
        if match:
            versions[int(match[1])] = path
    if not versions:
        raise RulesError(str(directory / f"{name}.v<N>.json"), "file", "no rules file of this name")
    version = max(versions)
    reader = Reader(str(versions[version]))
    try:
        doc = json.loads(versions[version].read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        reader.fail("file", f"cannot be read as JSON: {exc}")
    doc = reader.obj(doc, "file")
    for key in ("name", "version", "legal_sources"):
        if key not in doc:
            reader.fail("file", f"missing top-level key '{key}'")
    if doc["name"] != name:
        reader.fail("name", f"'{doc['name']}' does not match the file name (expected '{name}')")
    if doc["version"] != version or isinstance(doc["version"], bool):
        reader.fail("version", f"{doc['version']!r} does not match the file name (expected {version})")
    sources = reader.array(doc["legal_sources"], "legal_sources")
    if not sources:
        reader.fail("legal_sources", "every rules file must name its legal sources")
    for i, source in enumerate(sources):
        reader.text(source, f"legal_sources[{i}]")
    return doc, reader.file

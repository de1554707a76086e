"""The one loader of the rules files: ``ledger/rules/<name>.v<N>.json`` -> domain values.

Every rules file is read here and nowhere else. For each name every version ``1..N`` in the
directory (default: ``ledger/rules`` itself; tests and tools may give another) is read — the versions
must run from 1 without a gap — each header is checked (``name`` and ``version`` match the file
name, ``legal_sources`` is a non-empty list of sentences) and the pure domain parses each version
into frozen values. A rules change is a new file (``<name>.v<N+1>.json``): a committed version never
changes (``ledger/rules/published.sha256``, checked by ``tests/unit/test_rules_versions.py``), so an
event judged under version ``n`` is recomputed under version ``n`` (``RuleBook.at``):

  * ``publication_periods`` -> ``PublicationRules`` (publication windows, list periods, repair rules)
  * ``departments``         -> ``DepartmentMatrix`` (who may emit which event type)
  * ``punishment_catalogue``-> ``Catalogue`` (joint-punishment measures, red-list incentives)
  * ``workdays``            -> ``WorkdayCalendar`` (working days, 调休)
  * ``credit_grade``        -> ``GradeRules`` (the credit-grade weights)
  * ``objections``          -> ``ObjectionRules`` (the credit office; deadlines of objections and repair
                               applications)
  * ``divisions``           -> ``Divisions`` (the city's counties, districts and zones by code)
  * ``key_persons``         -> ``KeyPersonRules`` (the key-person groups and who keeps their registers)
  * ``releases``            -> ``ReleaseRules`` (who publishes the numbered 红黑榜 releases)
  * ``department_assessment`` -> ``AssessmentRules`` (the monthly assessment of the departments'
    work: its components and weights; a report's rule, not a judgement's, so not in ``RuleBook.stamp``)

``load()`` reads them all into one ``RuleBook`` (the newest version of each as ``publication``,
``departments``, ... and every version through ``RuleBook.at(name, n)``); a process calls it once, in
its entry function, and hands the value (or the part it needs) to the objects it builds. The per-file
loaders serve the tests and the tools: each returns the newest version (``load_publication_periods``
with the earlier ones inside, ``PublicationRules.at``). Every failure is a ``RulesError`` naming
the file, the entry and the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from ledger.domain.assessment import AssessmentRules, parse_assessment_rules
from ledger.domain.divisions import parse_divisions
from ledger.domain.errors import RulesError
from ledger.domain.grade_rules import GradeRules, parse_grade_rules
from ledger.domain.key_persons import parse_key_persons
from ledger.domain.objection_rules import ObjectionRules, parse_objection_rules
from ledger.domain.punishment import Catalogue, parse_catalogue
from ledger.domain.releases import parse_release_rules
from ledger.domain.rulebook import RuleBook
from ledger.domain.ruledoc import Reader
from ledger.domain.rules import DepartmentMatrix, PublicationRules
from ledger.domain.rules_parse import parse_departments, parse_publication_periods
from ledger.domain.workdays import WorkdayCalendar, parse_workdays

__all__ = [
    "ALL_FILES",
    "REPORT_FILES",
    "RULE_FILES",
    "default_directory",
    "documents",
    "load",
    "load_assessment",
    "load_catalogue",
    "load_departments",
    "load_grade",
    "load_objections",
    "load_publication_periods",
    "load_workdays",
]


# the files events are judged under (each ledger entry names their versions, ``RuleBook.stamp``, all but
# ``divisions``, which no judgement uses) ...
RULE_FILES = ("publication_periods", "departments", "workdays", "punishment_catalogue", "credit_grade", "divisions",
              "key_persons", "releases", "objections")
# ... and the files of the reports made from the ledger (not stamped on entries)
REPORT_FILES = ("department_assessment",)
ALL_FILES = RULE_FILES + REPORT_FILES
T = TypeVar("T")


def default_directory() -> Path:
    """``ledger/rules`` inside the installed package."""
    return Path(str(resources.files("ledger").joinpath("rules")))


def load(directory: Path | None = None) -> RuleBook:
    """Load and validate every version of every rules file; raise ``RulesError`` on the first bad entry."""
    directory = default_directory() if directory is None else directory
    departments = _department_versions(directory)
    publication = load_publication_periods(directory)
    history: dict[str, dict[int, Any]] = {
        "publication_periods": {v: publication.at(v) for v in (*publication.earlier, publication.version)},
        "departments": departments,
        "workdays": _versions(directory, "workdays", parse_workdays),
        "punishment_catalogue": _catalogues(directory, departments),
        "credit_grade": _versions(directory, "credit_grade", parse_grade_rules),
        "divisions": _versions(directory, "divisions", parse_divisions),
        # judged against the newest matrix (the one the sequencer judges the department with)
        "key_persons": _versions(directory, "key_persons",
                                 lambda doc, file: parse_key_persons(doc, file, _newest(departments))),
        "releases": _versions(directory, "releases",
                              lambda doc, file: parse_release_rules(doc, file, _newest(departments))),
        "objections": _versions(directory, "objections", parse_objection_rules),
        "department_assessment": _versions(directory, "department_assessment", parse_assessment_rules),
    }
    newest = {name: versions[max(versions)] for name, versions in history.items()}
    return RuleBook(
        publication=newest["publication_periods"], departments=newest["departments"], calendar=newest["workdays"],
        catalogue=newest["punishment_catalogue"], grade=newest["credit_grade"], divisions=newest["divisions"],
        key_persons=newest["key_persons"], releases=newest["releases"], objections=newest["objections"],
        assessment=newest["department_assessment"],
        history=MappingProxyType({name: MappingProxyType(v) for name, v in history.items()}))


def load_publication_periods(directory: Path | None = None) -> PublicationRules:
    """The newest publication rules, holding every earlier version (``PublicationRules.at``)."""
    versions = _versions(directory, "publication_periods", parse_publication_periods)
    newest = versions.pop(max(versions))
    return replace(newest, earlier=MappingProxyType(versions))


def load_departments(directory: Path | None = None) -> DepartmentMatrix:
    return _newest(_department_versions(directory))


def _department_versions(directory: Path | None) -> dict[int, DepartmentMatrix]:
    """Every version of the matrix; only the newest must give every event type a department (an
    older one predates the types added since)."""
    docs = documents(directory, "departments")
    return {doc["version"]: parse_departments(doc, file, every_type=i == len(docs) - 1)
            for i, (doc, file) in enumerate(docs)}


def load_catalogue(directory: Path | None = None, departments: DepartmentMatrix | None = None) -> Catalogue:
    """The newest catalogue, its departments checked against ``departments`` (default: the newest
    matrix of ``directory``)."""
    matrix = departments if departments is not None else load_departments(directory)
    doc, file = documents(directory, "punishment_catalogue")[-1]
    return parse_catalogue(doc, file, matrix)


def load_workdays(directory: Path | None = None) -> WorkdayCalendar:
    """The working-day calendar; ``RulesError`` names the entry (e.g. ``years.2024.holidays[3]``)."""
    return _newest(_versions(directory, "workdays", parse_workdays))


def load_grade(directory: Path | None = None) -> GradeRules:
    """The credit-grade weights (``credit_grade.v<N>.json``)."""
    return _newest(_versions(directory, "credit_grade", parse_grade_rules))


def load_objections(directory: Path | None = None) -> ObjectionRules:
    """The credit office and the deadlines of objections and repair applications (``objections.v<N>.json``)."""
    return _newest(_versions(directory, "objections", parse_objection_rules))


def load_assessment(directory: Path | None = None) -> AssessmentRules:
    """The weights of the departments' monthly assessment (``department_assessment.v<N>.json``)."""
    return _newest(_versions(directory, "department_assessment", parse_assessment_rules))


def _newest(versions: dict[int, T]) -> T:
    return versions[max(versions)]


def _versions(directory: Path | None, name: str, parse: Callable[[dict[str, Any], str], T]) -> dict[int, T]:
    """Every version of ``<name>``, parsed and validated, by version number."""
    return {doc["version"]: parse(doc, file) for doc, file in documents(directory, name)}


def _catalogues(directory: Path, matrices: dict[int, DepartmentMatrix]) -> dict[int, Catalogue]:
    """Every catalogue version, its departments checked against the newest matrix that knows them
    all (an older catalogue may name a department a later matrix dropped): the newest matrix's
    refusal is the one reported when none accepts it."""
    out: dict[int, Catalogue] = {}
    for doc, file in documents(directory, "punishment_catalogue"):
        refusal: RulesError | None = None
        for version in sorted(matrices, reverse=True):
            try:
                out[doc["version"]] = parse_catalogue(doc, file, matrices[version])
                break
            except RulesError as exc:
                refusal = refusal or exc
        else:
            assert refusal is not None
            raise refusal
    return out


def documents(directory: Path | None, name: str) -> list[tuple[dict[str, Any], str]]:
    """Every version ``1..N`` of ``<name>.v<N>.json`` in ``directory``, oldest first: parsed, header
    checked, with its path. ``RulesError`` when there is none, or a version is missing."""
    directory = default_directory() if directory is None else directory
    versions = {}
    for path in directory.glob(f"{name}.v*.json"):
        match = re.fullmatch(rf"{re.escape(name)}\.v([1-9][0-9]*)\.json", path.name)
        if match:
            versions[int(match[1])] = path
    if not versions:
        raise RulesError(str(directory / f"{name}.v<N>.json"), "file", "no rules file of this name")
    for version in range(1, max(versions) + 1):
        if version not in versions:
            raise RulesError(str(directory / f"{name}.v{version}.json"), "file",
                             f"missing: the versions of {name} must run from 1 to {max(versions)} without a gap "
                             "(a rules change is a new version; no version is ever deleted)")
    return [_document(versions[v], name, v) for v in sorted(versions)]


def _document(path: Path, name: str, version: int) -> tuple[dict[str, Any], str]:
    """One version of a rules file, parsed, header checked; and its path."""
    reader = Reader(str(path))
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
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

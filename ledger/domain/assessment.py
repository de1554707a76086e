"""The monthly assessment of each department's credit work (目标考核): what is counted, and how it is scored.

The department supervision (consumers/supervision/) counts, per department and China-local day and
month, what the ledger's topics show of each department's work; the names of those counts are the
``measure`` constants below, shared by the counter and every reader (projections/supervision.py). A
department's month is scored here, with the weights of ``ledger/rules/department_assessment.v<N>.json``
(read by the one rules loader; ``parse_assessment_rules`` checks it like every rules file). The
weights are the platform's own policy, not law: the file's ``notes`` say so (docs/domain-notes.md §17).

Four components, each a rate from 0 to 1 (docs/architecture.md, "Department supervision"):

  * ``acceptance``: submissions the sequencer accepted, of those it judged on their merits
    (accepted + rejected + conflict; a DUPLICATE is a harmless resubmission and counts for nothing);
  * ``timeliness``: double-publicity records (licences granted, penalties imposed) the ledger
    recorded within 7 working days of the decision, of those whose lateness is known;
  * ``accuracy``: objections answered with the record kept (UPHELD, 维持), of all objections the
    department answered (a correction, even a partial one, means its record was wrong);
  * ``feedback``: punishment feedback reports returned, of the joint-punishment alerts that called
    on the department to act (impose or lift), capped at 1; assessed only for a department the
    department matrix lets report feedback.

A component with nothing to measure in the month (no denominator) is not assessed, and the score is
100 x the weighted mean of the assessed components' rates; with none assessed there is no score.
Pure: the rules come in as a parsed document, the counts as a mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ledger.domain.bands import Band, band_for, parse_bands
from ledger.domain.ruledoc import Reader

__all__ = [
    "ALERTS", "ALERT_ACTION", "APPENDED", "COMPONENTS", "FEEDBACK", "FEEDBACK_EVENT", "OBJECTION_ANSWERED", "OBJECTION_FILED",
    "OBJECTION_FORWARDED", "OBJECTION_RESULT", "OBJECTION_RESULTS", "PUBLICITY", "PUBLICITY_LATE",
    "PUBLICITY_ON_TIME", "PUBLICITY_UNKNOWN", "REASON", "REJECTED_STATUSES", "STATUS", "SUBMISSIONS",
    "UNKNOWN_DEPARTMENT", "Assessment", "AssessmentRules", "Band", "Component", "assess",
    "parse_assessment_rules",
]

# ----------------------------------------------------------------------------- what is counted
SUBMISSIONS = "submissions"  # every answer of the sequencer on credit.outcomes
STATUS = "status."  # + ACCEPTED | DUPLICATE | REJECTED | CONFLICT
REASON = "reason."  # + a reason code: refused submissions per code (each code once per submission)
REJECTED_STATUSES = ("REJECTED", "CONFLICT")
APPENDED = "appended"  # ledger entries (the 5-minute buckets only)
PUBLICITY = "publicity"  # licences granted and penalties imposed recorded on the ledger
PUBLICITY_ON_TIME, PUBLICITY_LATE, PUBLICITY_UNKNOWN = "publicity.on_time", "publicity.late", "publicity.unknown"
OBJECTION_FILED, OBJECTION_FORWARDED, OBJECTION_ANSWERED = "objection.filed", "objection.forwarded", "objection.answered"
OBJECTION_RESULT = "objection.result."  # + CORRECTED | PARTLY_CORRECTED | UPHELD (or unknown)
OBJECTION_RESULTS = ("CORRECTED", "PARTLY_CORRECTED", "UPHELD")
FEEDBACK = "feedback"  # PunishmentFeedbackReported entries, by the reporting department
FEEDBACK_EVENT = "PunishmentFeedbackReported"
ALERTS = "alerts"  # joint-punishment alerts addressed to the department that call for an act (impose, lift)
ALERT_ACTION = "alerts."  # + impose | lift | maintain: every alert by its action
UNKNOWN_DEPARTMENT = "?"  # a header naming no department the matrix knows (or none at all)

COMPONENTS = ("acceptance", "timeliness", "accuracy", "feedback")


# ----------------------------------------------------------------------------- the rules
@dataclass(frozen=True)
class Component:
    key: str
    title: str
    weight: int  # points of 100 when every component is assessed
    legal_source: str
    confidence: str


@dataclass(frozen=True)
class AssessmentRules:
    """The validated contents of ``department_assessment.v<N>.json``."""

    file: str
    version: int
    legal_sources: tuple[str, ...]
    components: Mapping[str, Component]
    bands: tuple[Band, ...]  # by min_score, highest first; the last starts at 0

    def band(self, score: float) -> Band:
        return band_for(self.bands, score)


def parse_assessment_rules(doc: dict[str, Any], file: str) -> AssessmentRules:
    """The ``AssessmentRules`` of the parsed file (header already checked by the loader); ``RulesError``
    naming the file, the entry and the reason: a component missing or unknown, a weight that is not a
    whole number from 0 to 100, weights that do not add up to 100, a confidence mark other than V, S,
    M or U, bands not strictly descending or not ending at 0."""
    reader = Reader(file)
    reader.keys(doc, "file", {"name", "version", "legal_sources", "notes", "components", "bands"})
    reader.text(doc["notes"], "notes")
    reader.keys(doc["components"], "components", set(COMPONENTS))
    components: dict[str, Component] = {}
    for key in COMPONENTS:
        entry = f"components.{key}"
        spec = doc["components"][key]
        reader.keys(spec, entry, {"title", "weight", "legal_source", "confidence"})
        weight = spec["weight"]
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            reader.fail(f"{entry}.weight", f"must be a whole number of points from 0 to 100, got {weight!r}")
        if spec["confidence"] not in ("V", "S", "M", "U"):
            reader.fail(f"{entry}.confidence", f"must be V, S, M or U, got {spec['confidence']!r}")
        components[key] = Component(key, reader.text(spec["title"], f"{entry}.title"), weight,
                                    reader.text(spec["legal_source"], f"{entry}.legal_source"), spec["confidence"])
    total = sum(c.weight for c in components.values())
    if total != 100:
        reader.fail("components", f"the weights must add up to 100 points, they add up to {total}")
    return AssessmentRules(reader.file, doc["version"], tuple(doc["legal_sources"]),
                           MappingProxyType(components), parse_bands(reader, doc["bands"], titled=False))


# ----------------------------------------------------------------------------- scoring
@dataclass(frozen=True)
class Assessment:
    """One department's month: the figures behind each component, its rate (None: not assessed),
    the score (None: nothing assessed) and its band."""

    department: str
    submissions: int
    accepted: int
    duplicates: int
    rejected: int  # REJECTED + CONFLICT
    reasons: Mapping[str, int]  # refused submissions by reason code, most frequent first
    publicity: int
    on_time: int
    late: int
    unknown: int
    objections_filed: int
    objections_answered: int
    upheld: int
    corrected: int  # CORRECTED + PARTLY_CORRECTED
    alerts: int
    feedback: int
    rates: Mapping[str, float | None]
    score: float | None
    band: str | None


def assess(rules: AssessmentRules, department: str, counts: Mapping[str, int],
           reports_feedback: bool) -> Assessment:
    """Score one department's month from its counts (measure -> n, the sum over the month's records)."""
    n = lambda measure: int(counts.get(measure, 0))  # noqa: E731
    accepted, rejected = n(STATUS + "ACCEPTED"), sum(n(STATUS + s) for s in REJECTED_STATUSES)
    on_time, late = n(PUBLICITY_ON_TIME), n(PUBLICITY_LATE)
    answered, upheld = n(OBJECTION_ANSWERED), n(OBJECTION_RESULT + "UPHELD")
    corrected = n(OBJECTION_RESULT + "CORRECTED") + n(OBJECTION_RESULT + "PARTLY_CORRECTED")
    alerts, feedback = n(ALERTS), n(FEEDBACK)
    rates: dict[str, float | None] = {
        "acceptance": _rate(accepted, accepted + rejected),
        "timeliness": _rate(on_time, on_time + late),
        "accuracy": _rate(upheld, answered),
        "feedback": min(1.0, feedback / alerts) if reports_feedback and alerts else None,
    }
    weighed = [(rules.components[k].weight, r) for k, r in rates.items() if r is not None]
    total = sum(w for w, _ in weighed)
    score = round(100 * sum(w * r for w, r in weighed) / total, 1) if total else None
    reasons = {m[len(REASON):]: int(v) for m, v in counts.items() if m.startswith(REASON) and v}
    return Assessment(
        department, n(SUBMISSIONS), accepted, n(STATUS + "DUPLICATE"), rejected,
        MappingProxyType(dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))),
        n(PUBLICITY), on_time, late, n(PUBLICITY_UNKNOWN), n(OBJECTION_FILED), answered, upheld, corrected,
        alerts, feedback, MappingProxyType(rates), score, None if score is None else rules.band(score).grade)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None

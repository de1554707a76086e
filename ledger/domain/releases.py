"""红黑榜 releases: the credit office's numbered publication of the red and black lists, pure.

The credit office drafts a release for a month or a quarter from the lists, reviews it and approves
it; the approval is the ledger event ``ListReleaseApproved`` and carries the content itself (every
entry as published, with the ledger version it was drawn from) and the SHA-256 of its canonical
form (``content_digest``). The event is about the publisher (``releases.v<N>.json``: the credit
office as a credit subject), so the number 第N期 is that one entity's own sequence: the sequencer's
state of the publisher knows every number given, and a release gets the next one or is refused.
A correction is a new release that names the one it corrects (docs/domain-notes.md §11).

    period_of(text)                       -> Period: 2026-11 (a month) or 2026-Q4 (a quarter)
    content_of(body), canonical_bytes(c)  -> what the digest covers, as the portal serves it
    content_digest(body)                  -> SHA-256 hex of the canonical content
    check_approval(state, event, today, rules)   the sequencer's judgement (raises Rejection)
    compare(old, new)                     -> what a correction withdrew, added and changed

Pure: the rules come in as a value (``parse_release_rules``, from the loader).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from ledger.domain import identity
from ledger.domain.errors import Rejection
from ledger.domain.local_time import CHINA
from ledger.domain.model import EntityState, Event
from ledger.domain.ruledoc import Reader
from ledger.domain.rules import DepartmentMatrix, add_months

__all__ = [
    "APPROVAL_EVENT",
    "ENTRY_FIELDS",
    "Correction",
    "Period",
    "ReleaseRules",
    "canonical_bytes",
    "check_approval",
    "compare",
    "content_digest",
    "content_of",
    "entry_key",
    "last_number",
    "parse_release_rules",
    "period_of",
]

APPROVAL_EVENT = "ListReleaseApproved"
# The fields of one published entry, in the order a release shows them (schemas/avro ReleaseEntry).
ENTRY_FIELDS: tuple[str, ...] = (
    "colour", "list_kind", "entity_id", "public_id", "subject_name", "category", "county", "county_name", "ref",
    "reason", "department", "department_name", "listed_on", "legal_end", "listing_event_id", "entity_version",
)
_TEXT_FIELDS = ("public_id", "subject_name", "ref", "reason", "department_name", "county_name")


@dataclass(frozen=True)
class ReleaseRules:
    """The validated contents of ``releases.v<N>.json``."""

    version: int
    publisher_department: str  # the department that approves (xc-credit-office)
    publisher_name: str
    publisher_id: str  # the publisher's unified social credit code: the releases are its events
    cadences: Mapping[str, str]  # month | quarter -> 月度 | 季度
    max_entries: int

    @property
    def publisher_entity(self) -> str:
        return f"uscc:{self.publisher_id}"


@dataclass(frozen=True)
class Period:
    text: str  # 2026-11 or 2026-Q4
    kind: str  # month | quarter
    label: str  # 2026年11月 | 2026年第4季度
    start: date
    end: date  # the last day


def period_of(text: str) -> Period:
    """``2026-11`` (a month) or ``2026-Q4`` (a quarter, any case), years 2000-2100; ValueError
    saying what is wrong otherwise."""
    value = text.strip().upper()
    m = re.fullmatch(r"([0-9]{4})-(?:([0-9]{2})|Q([1-4]))", value)
    if not m or not 2000 <= int(m.group(1)) <= 2100 or (m.group(2) and not 1 <= int(m.group(2)) <= 12):
        raise ValueError(f"'{text[:20]}' is not a month (2026-11) or a quarter (2026-Q4)")
    year = int(m.group(1))
    if m.group(2):
        first, months, kind, label = int(m.group(2)), 1, "month", f"{year}年{int(m.group(2))}月"
    else:
        quarter = int(m.group(3))
        first, months, kind, label = 3 * quarter - 2, 3, "quarter", f"{year}年第{quarter}季度"
    start = date(year, first, 1)
    return Period(value, kind, label, start, add_months(start, months) - timedelta(days=1))


# --------------------------------------------------------------------------- the content and its digest


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def content_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a release publishes and its digest covers: period, title, the release it corrects and the
    entries (every field, dates as ISO text), in the order given. The same value whether the record
    comes from Avro (dates) or from JSON (ISO text)."""
    return {"period": str(body["period"]).upper(), "title": body["title"], "corrects": body.get("corrects"),
            "entries": [{k: _plain(e.get(k)) for k in ENTRY_FIELDS} for e in body["entries"]]}


def canonical_bytes(content: Mapping[str, Any]) -> bytes:
    """The content as UTF-8 JSON, keys sorted, no spaces: the exact bytes the digest is taken of (and
    the portal's ``/releases/<n>.json`` serves), so ``sha256sum`` of that file is the signed digest."""
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def content_digest(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(content_of(body))).hexdigest()


def entry_key(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    """An entry is one listing: (entity, list kind, case or decision number)."""
    return str(entry["entity_id"]), str(entry["list_kind"]), str(entry["ref"])


@dataclass(frozen=True)
class Correction:
    withdrawn: list[Mapping[str, Any]]  # in the corrected release, not in the correction
    added: list[Mapping[str, Any]]  # in the correction only
    changed: list[tuple[Mapping[str, Any], Mapping[str, Any]]]  # (before, after) of the same listing


def compare(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> Correction:
    """What a correction did to the release it corrects, entry by entry (both frozen contents)."""
    before = {entry_key(e): e for e in old}
    after = {entry_key(e): e for e in new}
    return Correction(
        withdrawn=[e for k, e in before.items() if k not in after],
        added=[e for k, e in after.items() if k not in before],
        changed=[(e, after[k]) for k, e in before.items()
                 if k in after and {f: _plain(e.get(f)) for f in ENTRY_FIELDS if f != "entity_version"}
                 != {f: _plain(after[k].get(f)) for f in ENTRY_FIELDS if f != "entity_version"}])


# --------------------------------------------------------------------------- the sequencer's judgement


def last_number(state: EntityState) -> int:
    """The highest release number the publisher gave (0 before the first)."""
    return max((int(n) for n in state.releases), default=0)


def _date(value: Any) -> date:
    return value if isinstance(value, date) and not isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def check_approval(state: EntityState, e: Event, today: date, rules: ReleaseRules) -> None:
    """A release approval, judged against the publisher's releases so far. Raises Rejection naming
    the field: the publisher, the number (the next one), the period (over when the content was
    drawn, released once), the correction (of a release not yet corrected, same period, with a note), four eyes
    (drafted, reviewed and approved by different people), the dates, the size, each entry (in the
    period, listed once, no clear ID number) and the digest of the content."""
    b = e.body
    if e.entity_id != rules.publisher_entity or e.department != rules.publisher_department:
        raise Rejection("subject.id", "release.publisher",
                        f"红黑榜由{rules.publisher_name}（{rules.publisher_department}）以其统一社会信用代码 "
                        f"{rules.publisher_id} 发布 (a release is approved by the publisher of releases "
                        f"v{rules.version}, {rules.publisher_department}, about its own code {rules.publisher_id})")
    expected = last_number(state) + 1
    if b["release_no"] != expected:
        raise Rejection("release_no", "release.number",
                        f"期号应为第{expected}期（已发布至第{expected - 1}期），不是第{b['release_no']}期 "
                        f"(the next release is number {expected}, not {b['release_no']})")
    try:
        period = period_of(b["period"])
    except ValueError as exc:
        raise Rejection("period", "release.period", f"发布周期应为月（2026-11）或季度（2026-Q4） ({exc})") from None
    if period.kind not in rules.cadences:
        raise Rejection("period", "release.period", f"不按{period.kind}发布 (releases are made per "
                        f"{' or '.join(rules.cadences)})")
    drawn = b["drawn_at"].astimezone(CHINA).date() if isinstance(b["drawn_at"], datetime) else _date(b["drawn_at"])
    if drawn <= period.end:
        raise Rejection("drawn_at", "release.period_not_over",
                        f"{period.label}到 {period.end} 才结束，名单须在周期结束后截取（截取于 {drawn}）"
                        f"(the period ends on {period.end}; a release is drawn once its period is over)")
    _check_people_and_dates(b, drawn, today)
    _check_correction(state, b, period)
    entries = b["entries"]
    if not entries and b.get("corrects") is None:
        raise Rejection("entries", "release.empty", "一期红黑榜至少要有一条名单 (a release lists at least one entry)")
    if len(entries) > rules.max_entries:
        raise Rejection("entries", "release.too_large",
                        f"一期最多 {rules.max_entries} 条，本期 {len(entries)} 条：请分期发布 "
                        f"(at most {rules.max_entries} entries per release, this one has {len(entries)})")
    _check_entries(entries, period)
    if b["content_sha256"] != content_digest(b):
        raise Rejection("content_sha256", "release.digest",
                        "content_sha256 与发布内容不符：审核批准的必须是发布的内容本身 "
                        "(content_sha256 is not the SHA-256 of the release's canonical content)")


def _check_people_and_dates(b: Mapping[str, Any], drawn: date, today: date) -> None:
    people = {"drafted_by": "起草人", "reviewed_by": "审核人", "approved_by": "批准人"}
    for name, title in people.items():
        if not str(b.get(name) or "").strip():
            raise Rejection(name, "required", f"{title}不能为空 ({name} is required)")
    if b["reviewed_by"].strip() in (b["drafted_by"].strip(), b["approved_by"].strip()):
        raise Rejection("reviewed_by", "release.four_eyes",
                        "审核人不能同时是起草人或批准人：一期红黑榜须经三人之手 "
                        "(the reviewer must be someone other than the drafter and the approver)")
    for name, title in (("reviewed_on", "审核日期"), ("approved_on", "批准日期")):
        if b[name] > today:
            raise Rejection(name, "time.future", f"{title} {b[name]} 晚于今天 {today} ({name} is in the future)")
    if b["reviewed_on"] < drawn:
        raise Rejection("reviewed_on", "time.order", f"审核日期 {b['reviewed_on']} 早于截取日期 {drawn} "
                        "(reviewed before the content was drawn)")
    if b["approved_on"] < b["reviewed_on"]:
        raise Rejection("approved_on", "time.order", f"批准日期 {b['approved_on']} 早于审核日期 "
                        f"{b['reviewed_on']} (approved before it was reviewed)")


def _check_correction(state: EntityState, b: Mapping[str, Any], period: Period) -> None:
    corrects, note = b.get("corrects"), str(b.get("correction_note") or "").strip()
    if corrects is None:
        if note:
            raise Rejection("correction_note", "release.not_a_correction",
                            "只有更正的一期才写更正说明，请同时写明所更正的期号 corrects "
                            "(a correction note belongs to a correction: give corrects too)")
        released = sorted(int(n) for n, r in state.releases.items() if r["period"] == period.text)
        if released:
            raise Rejection("period", "release.period_released",
                            f"{period.label}已发布为第{released[0]}期；如需更改，请发布更正 "
                            f"(the period was released as number {released[0]}; publish a correction instead)")
        return
    corrected = state.releases.get(str(corrects))
    if corrected is None:
        raise Rejection("corrects", "release.unknown", f"没有第{corrects}期红黑榜 (there is no release {corrects})")
    if corrected.get("corrected_by") is not None:
        raise Rejection("corrects", "release.already_corrected",
                        f"第{corrects}期已由第{corrected['corrected_by']}期更正，请更正第{corrected['corrected_by']}期 "
                        f"(release {corrects} was corrected by {corrected['corrected_by']}; correct that one)")
    if corrected["period"] != period.text:
        raise Rejection("period", "release.correction_period",
                        f"更正的一期与第{corrects}期的周期应相同（{corrected['period']}） "
                        f"(a correction covers the period of the release it corrects, {corrected['period']})")
    if not note:
        raise Rejection("correction_note", "required",
                        "更正须写明更正说明：更正了哪些条目、为什么 (a correction says what it corrects and why)")


def _check_entries(entries: Sequence[Mapping[str, Any]], period: Period) -> None:
    seen: set[tuple[str, str, str]] = set()
    for i, entry in enumerate(entries):
        where = f"entries[{i}]"
        for name in ("entity_id", "public_id", "subject_name", "list_kind", "ref", "reason", "department"):
            if not str(entry.get(name) or "").strip():
                raise Rejection(f"{where}.{name}", "required", f"第{i + 1}条的 {name} 不能为空 ({name} is required)")
        listed = _date(entry["listed_on"])
        if not period.start <= listed <= period.end:
            raise Rejection(f"{where}.listed_on", "release.entry_period",
                            f"第{i + 1}条列入日期 {listed} 不在{period.label}（{period.start} 至 {period.end}）内 "
                            f"(entry {i + 1} was listed outside the period)")
        if (entry["colour"] == "red") != (entry["list_kind"] == "red"):
            raise Rejection(f"{where}.colour", "release.colour",
                            f"第{i + 1}条：红名单条目的名单类型是 red，黑名单条目不是 (entry {i + 1}: colour red goes "
                            "with list kind red, black with the black list kinds)")
        key = entry_key(entry)
        if key in seen:
            raise Rejection(where, "release.duplicate_entry", f"第{i + 1}条与前面一条是同一名单条目 "
                            f"(entry {i + 1} repeats an entry: same entity, list and number)")
        seen.add(key)
        for name in _TEXT_FIELDS:
            text = str(entry.get(name) or "")
            if identity.mask_id_numbers(text) != unicodedata.normalize("NFKC", text):
                raise Rejection(f"{where}.{name}", "release.clear_id_number",
                                f"第{i + 1}条的 {name} 含有未脱敏的身份证号码，公开发布的内容只能有脱敏号码 "
                                f"(entry {i + 1} holds a clear ID number in {name}; a release shows masked numbers only)")


# --------------------------------------------------------------------------- parsing (from the loader)


def parse_release_rules(doc: dict[str, Any], file: str, matrix: DepartmentMatrix) -> ReleaseRules:
    """The ``ReleaseRules`` of the parsed ``releases.v<N>.json``; ``RulesError`` names the entry: a
    publisher department the matrix does not let approve releases, a code that is not a valid unified
    social credit code, a cadence other than month and quarter, a size limit outside 1..5,000."""
    reader = Reader(file)
    reader.keys(doc, "file", {"name", "version", "legal_sources", "publisher", "cadences", "max_entries"},
                {"notes", "max_entries_source"})
    p = doc["publisher"]
    reader.keys(p, "publisher", {"department", "name", "id", "legal_source"}, {"confidence"})
    department = reader.text(p["department"], "publisher.department")
    known = matrix.departments.get(department)
    if known is None or APPROVAL_EVENT not in known.may_emit:
        reader.fail("publisher.department", f"{department} may not emit {APPROVAL_EVENT} (departments "
                    f"v{matrix.version})")
    try:
        checked = identity.check_uscc(reader.text(p["id"], "publisher.id"))
    except Rejection as r:
        reader.fail("publisher.id", f"not a valid unified social credit code: {r.message}")
    if checked.warnings:
        reader.fail("publisher.id", f"the publisher's own code must pass every check ({', '.join(checked.warnings)})")
    code = checked.display
    cadences: dict[str, str] = {}
    for kind, spec in reader.obj(doc["cadences"], "cadences").items():
        if kind not in ("month", "quarter"):
            reader.fail(f"cadences.{kind}", "a cadence is month or quarter")
        reader.keys(spec, f"cadences.{kind}", {"title", "legal_source"}, {"confidence"})
        cadences[kind] = reader.text(spec["title"], f"cadences.{kind}.title")
    if not cadences:
        reader.fail("cadences", "name at least one cadence")
    size = doc["max_entries"]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 5000:
        reader.fail("max_entries", f"must be a whole number from 1 to 5000, got {size!r}")
    return ReleaseRules(doc["version"], department, reader.text(p["name"], "publisher.name"), code,
                        MappingProxyType(cadences), size)

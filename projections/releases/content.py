"""A release's content: drawn from the views' rows, as the approval carries it, as CSV (no I/O here).

The content (``ledger.domain.releases.content_of``) is the period, the title, the release it corrects
and the entries, each entry a listing as the views hold it when the draft is drawn: who (name, public
identifier: a natural person's is masked), which list and why, which department, listed on, legal end,
the entity's county, and the ledger event and entity version it was drawn from. Its digest is the
SHA-256 of its canonical bytes; the approval record carries both (``approval_record``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from ledger.domain import releases
from ledger.domain.rulebook import RuleBook
from projections import queries
from schemas import registry

__all__ = ["CSV_COLUMNS", "MAX_RECORD_BYTES", "approval_event_id", "approval_record", "csv_rows", "encoded_size",
           "entry_of", "title_of"]

# The largest approval record the office sends: a ledger entry carries it whole, and a Kafka record is at
# most 1 MiB (message.max.bytes); the rest is room for the entry's own fields. 2,000 entries with long
# names and reasons encode to about 0.7 MB (tests/integration/test_releases.py sends one).
MAX_RECORD_BYTES = 900_000

# The published CSV: column -> Chinese header (the portal's wording)
CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("colour", "红黑名单"),
    ("list_kind", "名单类型"),
    ("subject_name", "主体名称"),
    ("public_id", "统一社会信用代码/身份证号码（脱敏）"),
    ("category", "信用主体类别"),
    ("county_name", "县（市、区）"),
    ("ref", "案号/文号"),
    ("reason", "列入事由"),
    ("department_name", "认定部门"),
    ("listed_on", "列入日期"),
    ("legal_end", "法定移出日期"),
    ("listing_event_id", "列入事件编号"),
    ("entity_version", "账本版本"),
)
# black before red, then by list and date: the order a release lists its entries in
_ORDER = {"black": 0, "red": 1}


def title_of(rules: RuleBook, period: releases.Period, corrects: int | None = None) -> str:
    title = f"{rules.divisions.city}诚信“红黑榜”（{period.label}）"
    return title + (f"更正（更正第{corrects}期）" if corrects is not None else "")


def entry_of(row: Mapping[str, Any], rules: RuleBook) -> dict[str, Any]:
    """One published entry from a views row (list_entries with the entity's version); ISO dates."""
    department = rules.departments.departments.get(row["department"])
    county = rules.divisions.by_id.get(row["county"])
    return {
        "colour": row["colour"], "list_kind": row["list_kind"], "entity_id": row["entity_id"],
        "public_id": row["public_id"], "subject_name": row["subject_name"], "category": row["category"],
        "county": row["county"], "county_name": county.name if county else row["county"], "ref": row["ref"],
        "reason": row["reason"], "department": row["department"],
        "department_name": department.name if department else row["department"],
        "listed_on": _iso(row["listed_on"]), "legal_end": _iso(row["legal_end"]),
        "listing_event_id": row["event_id"], "entity_version": int(row["version"]),
    }


def ordered(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entries, key=lambda e: (_ORDER[e["colour"]], e["list_kind"], e["listed_on"], e["subject_name"],
                                          e["entity_id"], e["ref"]))


def approval_event_id(release_no: int, digest: str) -> str:
    """The approval's event id: the same for the same content and number, so an approval sent again
    after a lost answer is a DUPLICATE, never a second release."""
    return f"release-{release_no}-{digest[:24]}"


def approval_record(rules: RuleBook, content: Mapping[str, Any], *, release_no: int, drawn_at: datetime,
                    drawn_positions: Mapping[int, int], drafted_by: str, reviewed_by: str, reviewed_on: date,
                    approved_by: str, approved_on: date, recorded_at: datetime,
                    correction_note: str | None = None) -> tuple[str, dict[str, Any]]:
    """(department, ListReleaseApproved record) of a content: the publisher of ``releases.v<N>`` about
    itself, the content and its digest, the people and the dates."""
    p = rules.releases
    digest = releases.content_digest(content)
    record = {
        "envelope": {
            "event_id": approval_event_id(release_no, digest), "event_type": releases.APPROVAL_EVENT,
            "schema_version": 1, "subject": {"id": p.publisher_id, "id_type": "USCC", "name": p.publisher_name},
            "source_department": p.publisher_department, "valid_from": approved_on, "valid_to": None,
            "recorded_at": recorded_at,
        },
        "release_no": release_no, "period": content["period"], "title": content["title"], "drawn_at": drawn_at,
        "drawn_positions": {str(k): int(v) for k, v in drawn_positions.items()}, "drafted_by": drafted_by,
        "reviewed_by": reviewed_by, "reviewed_on": reviewed_on, "approved_by": approved_by,
        "approved_on": approved_on, "corrects": content["corrects"], "correction_note": correction_note,
        "content_sha256": digest, "entries": [dict(e) for e in content["entries"]],
    }
    return p.publisher_department, registry.from_json(releases.APPROVAL_EVENT, record)


def encoded_size(rules: RuleBook, content: Mapping[str, Any]) -> int:
    """How many bytes the approval of this content takes on the wire (Avro, schema id framed)."""
    _, record = approval_record(rules, content, release_no=1, drawn_at=datetime(2000, 1, 1, tzinfo=UTC),
                                drawn_positions={}, drafted_by="-", reviewed_by="-", reviewed_on=date(2000, 1, 1),
                                approved_by="-", approved_on=date(2000, 1, 1), recorded_at=datetime(2000, 1, 1, tzinfo=UTC),
                                correction_note="-" * 2000)
    return len(registry.encode(releases.APPROVAL_EVENT, record))


def csv_rows(entries: Iterable[Mapping[str, Any]]) -> Iterable[list[str]]:
    """A release's entries as CSV rows in CSV_COLUMNS order, coded values in Chinese."""
    labels = {"colour": queries.COLOUR_TITLES, "list_kind": queries.LIST_KIND_TITLES,
              "category": queries.CATEGORY_TITLES}
    for e in entries:
        out = []
        for column, _ in CSV_COLUMNS:
            value = queries.plain(e[column])
            out.append("" if value is None else str(labels[column].get(value, value) if column in labels else value))
        yield out


def _iso(value: Any) -> str | None:
    return None if value is None else queries.plain(value)

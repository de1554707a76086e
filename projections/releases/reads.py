"""The approved releases as the views hold them (projected from ListReleaseApproved): the list, one
release with the one that corrected it, its entries, and its content checked against the signed digest.

What the portal publishes comes from here only, so it is exactly what was approved: ``frozen`` rebuilds
the canonical content from the stored entries and compares its SHA-256 with the digest the approval
carried; a release whose stored rows do not give that digest is not served (``ContentMismatch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from ledger.domain import releases
from projections.queries import fetch_all, fetch_one

__all__ = ["ContentMismatch", "Frozen", "frozen", "listing", "release"]

_RELEASE = ("r.release_no, r.period, r.title, r.period_start, r.period_end, r.corrects, r.correction_note, r.drawn_at, "
            "r.drawn_positions, r.drafted_by, r.reviewed_by, r.reviewed_on, r.approved_by, r.approved_on, "
            "r.content_sha256, r.entries, r.black, r.red, r.event_id, r.entity_id, r.kafka_partition, r.kafka_offset, "
            "r.sequenced_at, (select min(c.release_no) from releases c where c.corrects = r.release_no) as corrected_by")
_ENTRY = ", ".join(releases.ENTRY_FIELDS)


class ContentMismatch(Exception):
    """The stored entries of a release do not give the digest its approval carried."""


@dataclass(frozen=True)
class Frozen:
    release: dict[str, Any]
    entries: list[dict[str, Any]]  # in the release's order
    content: bytes  # the canonical content: SHA-256 of it is release["content_sha256"]


async def listing(conn: psycopg.AsyncConnection[Any], county: str | None = None) -> list[dict[str, Any]]:
    """Every approved release, newest first, with the number of the release that corrected it; with
    ``county``, how many of each release's entries are of that county."""
    rows = await fetch_all(conn, f"select {_RELEASE} from releases r order by r.release_no desc")
    if county is not None:
        counts = {r["release_no"]: r["n"] for r in await fetch_all(
            conn, "select release_no, count(*) as n from release_entries where county = %s group by release_no",
            [county])}
        for r in rows:
            r["county_entries"] = counts.get(r["release_no"], 0)
    return rows


async def release(conn: psycopg.AsyncConnection[Any], release_no: int) -> dict[str, Any] | None:
    return await fetch_one(conn, f"select {_RELEASE} from releases r where r.release_no = %s", [release_no])


async def frozen(conn: psycopg.AsyncConnection[Any], release_no: int) -> Frozen | None:
    """The release, its entries and its canonical content, checked against the signed digest; None if
    there is no such release."""
    row = await release(conn, release_no)
    if row is None:
        return None
    entries = await fetch_all(conn, f"select {_ENTRY} from release_entries where release_no = %s order by seq",
                              [release_no])
    content = releases.canonical_bytes(releases.content_of({**row, "entries": entries}))
    if releases.content_digest({**row, "entries": entries}) != row["content_sha256"]:
        raise ContentMismatch(f"release {release_no}: the stored entries do not give the approved digest")
    return Frozen(row, entries, content)

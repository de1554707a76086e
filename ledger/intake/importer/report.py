"""What an import answers: the status of every row, the per-row report (CSV, UTF-8 with BOM so that
Excel opens it) and the summary printed at the end.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ledger.intake import csv_import

ACCEPTED, FLAGGED, DUPLICATE, REJECTED, CONFLICT = "ACCEPTED", "FLAGGED", "DUPLICATE", "REJECTED", "CONFLICT"
NO_OUTCOME, REFUSED, VALID = "NO-OUTCOME", "REFUSED-BEFORE-SUBMISSION", "VALID"
STATUS_ORDER = (ACCEPTED, FLAGGED, DUPLICATE, REJECTED, CONFLICT, NO_OUTCOME, REFUSED, VALID)
FAILED = {REJECTED, CONFLICT, NO_OUTCOME, REFUSED}
SUBMITTED = {ACCEPTED, FLAGGED, DUPLICATE, REJECTED, CONFLICT, NO_OUTCOME}  # (after a real import)
REPORT_COLUMNS = ("row", "decision_no", "event_id", "status", "field", "reason", "ledger_position")


@dataclass
class RowReport:
    row: int
    decision_no: str | None
    event_id: str | None
    status: str
    fields: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    position: str = ""

    def as_csv(self) -> list[str]:
        return [str(self.row), self.decision_no or "", self.event_id or "", self.status,
                " | ".join(self.fields), " | ".join(self.reasons), self.position]


@dataclass
class ImportResult:
    reading: csv_import.Reading
    rows: list[RowReport]
    check_seconds: float
    submit_seconds: float = 0.0

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.rows)

    @property
    def failed(self) -> bool:
        return any(r.status in FAILED for r in self.rows)


def write_report(path: Path, rows: list[RowReport]) -> None:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(REPORT_COLUMNS)
    w.writerows(r.as_csv() for r in rows)
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))


def summary(path: Path, result: ImportResult, report: Path | None, dry_run: bool) -> str:
    reading, n = result.reading, len(result.rows)
    layout = reading.layout
    delim = "tab" if reading.delimiter == "\t" else "comma"
    counts = result.counts
    lines = [
        f"file      {path} ({reading.encoding}, {delim}-separated, header on row {layout.header_row})",
        f"kind      {csv_import.KIND_NAMES[reading.event_type]} -> {reading.event_type}, {n:,} rows, "
        f"department {reading.department}{' (dry run: nothing submitted)' if dry_run else ''}",
    ]
    if layout.ignored:
        lines.append(f"not kept  {len(layout.ignored)} columns: {', '.join(layout.ignored)}")
    lines.append("result    " + " · ".join(f"{s} {counts[s]:,}" for s in STATUS_ORDER if counts[s] or s in
                                           ((VALID,) if dry_run else (ACCEPTED, DUPLICATE, REJECTED, REFUSED)))
                 )
    timing = f"checked in {result.check_seconds:.2f} s ({n / max(result.check_seconds, 1e-9):,.0f} rows/s)"
    sent = sum(1 for r in result.rows if r.status in SUBMITTED)
    if result.submit_seconds:
        timing += (f"; {sent:,} submitted and decided in {result.submit_seconds:.2f} s "
                   f"({sent / result.submit_seconds:,.0f} rows/s)")
    lines.append(f"time      {timing}")
    if report:
        lines.append(f"report    {report}")
    bad = [r for r in result.rows if r.status in FAILED]
    if bad:
        lines.append(f"refused   {len(bad):,} rows:")
        for r in bad[:50]:
            for f, why in zip(r.fields or ["(row)"], r.reasons or [""], strict=False):
                lines.append(f"  row {r.row}  {r.status}  {f}: {why}")
        if len(bad) > 50:
            lines.append(f"  ... {len(bad) - 50:,} more in the report")
    return "\n".join(lines)

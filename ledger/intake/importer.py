"""Import a national double-publicity CSV file (双公示: XK_ licences or CF_ penalties) as a department.

    PYTHONPATH=. .venv/bin/python -m ledger.intake.importer --department xc-samr penalties.csv
        [--report report.csv] [--dry-run] [--timeout 120] [--no-progress]

1. Reads and checks the whole file first (``ledger.intake.csv_import``); nothing is sent if the file as a
   whole cannot be read (encoding, layout, a missing required column) or if the department may
   not emit the file's event type.
2. Signs and submits every valid row (flagged ones too) through ``LedgerClient`` with the
   department's key from LEDGER_KEYS_DIR, pipelined, and waits for every outcome. Rows refused
   locally are never submitted.
3. Writes the per-row report (CSV, UTF-8 with BOM so that Excel opens it): row, decision_no,
   event_id, status, field, reason, ledger_position; prints a summary and each refusal.

Statuses: ACCEPTED; FLAGGED (accepted, with identity warnings to review); DUPLICATE (already in the
ledger, nothing appended: a re-import); REJECTED (refused by the sequencer, with the column and the
reason); CONFLICT (the decision number was imported before with other content: nothing appended);
NO-OUTCOME (no answer within --timeout seconds of silence: import the file again later, rows
already in the ledger come back as DUPLICATE); REFUSED-BEFORE-SUBMISSION (refused by the file
check, never sent). --dry-run checks only: VALID / FLAGGED / REFUSED-BEFORE-SUBMISSION.

Exit status: 0 if no row was refused, 1 if any was (or had no outcome), 2 if nothing could be done
(file refused, department not authorized, no key, Kafka unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from ledger.client import LedgerClient, OutcomeTimeout
from ledger.domain.errors import Rejection
from ledger.domain.identity import WARNING_MESSAGES
from ledger.domain.rules import DepartmentMatrix
from ledger.intake import csv_import
from ledger.platform import config, signing
from ledger.rules import loader
from schemas import registry

ACCEPTED, FLAGGED, DUPLICATE, REJECTED, CONFLICT = "ACCEPTED", "FLAGGED", "DUPLICATE", "REJECTED", "CONFLICT"
NO_OUTCOME, REFUSED, VALID = "NO-OUTCOME", "REFUSED-BEFORE-SUBMISSION", "VALID"
STATUS_ORDER = (ACCEPTED, FLAGGED, DUPLICATE, REJECTED, CONFLICT, NO_OUTCOME, REFUSED, VALID)
FAILED = {REJECTED, CONFLICT, NO_OUTCOME, REFUSED}
SUBMITTED = {ACCEPTED, FLAGGED, DUPLICATE, REJECTED, CONFLICT, NO_OUTCOME}  # (after a real import)
REPORT_COLUMNS = ("row", "decision_no", "event_id", "status", "field", "reason", "ledger_position")
CHUNK = 1000  # submissions sent before waiting for the broker's acknowledgement of the previous chunk


class Client(Protocol):
    """What the import needs of ledger.client.LedgerClient (a fake in the unit tests)."""

    async def submit(self, record: dict[str, Any]) -> Any: ...
    async def outcome(self, event_id: str, timeout: float = 30.0) -> dict[str, Any]: ...
    def decided(self) -> int: ...


class SetupError(Exception):
    """Nothing can be imported: the message says why (Chinese, English in brackets)."""


# =========================================================================== progress


class Progress:
    """A plain-text progress bar on stderr: rows read, submitted, decided, rate and ETA. On a
    terminal one line redrawn at most 10 times a second; otherwise one line every 5 seconds."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.read = self.to_submit = self.submitted = self.decided = 0
        self.started = time.monotonic()
        self.sending_since: float | None = None
        self.sent_at: float | None = None  # when the broker had acknowledged every submission
        self._last = 0.0
        self._width = 0

    def line(self) -> str:
        if self.sending_since is None:
            rate = self.read / max(time.monotonic() - self.started, 1e-9)
            return f"checking: {self.read:,} rows read · {rate:,.0f} rows/s"
        total = max(self.to_submit, 1)
        done = self.decided / total
        bar = "#" * int(done * 24) + "." * (24 - int(done * 24))
        elapsed = max(time.monotonic() - self.sending_since, 1e-9)
        rate = self.decided / elapsed
        left = self.to_submit - self.decided
        eta = f"{int(left / rate) // 60}:{int(left / rate) % 60:02d}" if rate > 0 else "--:--"
        return (f"[{bar}] {done:4.0%} read {self.read:,} · submitted {self.submitted:,}/{self.to_submit:,} · "
                f"decided {self.decided:,} · {rate:,.0f} rows/s · ETA {eta}")

    def update(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self.tty else 5.0):
            return
        self._last = now
        text = self.line()
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.update(force=True)
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()


# =========================================================================== the import


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


def check(data: bytes, department: str, matrix: DepartmentMatrix,
          progress: Progress | None = None) -> tuple[csv_import.Reading, list[csv_import.RowResult]]:
    """Read and check every row (``FileRefused`` for the file as a whole); then make sure the
    department may emit the file's event type under ``matrix`` (``SetupError``)."""
    progress = progress or Progress(enabled=False)
    reading = csv_import.open_csv(data, department)
    rows = []
    for r in reading.rows():
        rows.append(r)
        progress.read = len(rows)
        progress.update()
    try:
        matrix.authorize(department, reading.event_type)
    except Rejection as r:
        raise SetupError(r.message) from None
    return reading, rows


def _local(r: csv_import.RowResult) -> RowReport:
    if r.record is None:
        return RowReport(r.row, r.decision_no, r.event_id, REFUSED, [p.field for p in r.refusals],
                         [p.message for p in r.refusals])
    return RowReport(r.row, r.decision_no, r.event_id, FLAGGED if r.warnings else VALID,
                     [p.field for p in r.warnings], [p.message for p in r.warnings])


def _decided(r: csv_import.RowResult, layout: csv_import.Layout, out: dict[str, Any] | None) -> RowReport:
    rep = _local(r)
    if out is None:
        rep.status = NO_OUTCOME
        rep.fields, rep.reasons = ["(outcome)"], [
            "在等待时间内没有收到账本的判定结果；请稍后用同一文件重新导入，已记入账本的行会显示为重复 "
            "(no outcome within the waiting time; import the same file again later: rows already in the "
            "ledger come back as DUPLICATE)"]
        return rep
    if out["ledger_partition"] is not None:
        rep.position = f"{out['ledger_partition']}:{out['ledger_offset']}"
    status = out["status"]
    if status == "ACCEPTED":
        extra = [w for w in out.get("warnings") or [] if w not in {p.code for p in r.warnings}]
        rep.fields += ["(ledger)"] * len(extra)
        rep.reasons += [WARNING_MESSAGES.get(w, w) for w in extra]
        rep.status = FLAGGED if rep.reasons else ACCEPTED
    elif status == "DUPLICATE":
        rep.status, rep.fields, rep.reasons = DUPLICATE, [], [
            "该决定已在账本中（重复导入），未追加 (already in the ledger: a re-import; nothing appended)"]
    else:
        rep.status = REJECTED if status == "REJECTED" else CONFLICT
        rep.fields = [layout.field_label(x["field"], r.record) for x in out["reasons"]]
        rep.reasons = [x["message"] for x in out["reasons"]]
        if status == "CONFLICT":
            rep.reasons.append("该文书号此前已以不同内容导入；更正请报送变更或撤销事件 (this decision number was "
                               "imported before with other content; report a correction as a change or "
                               "revocation event)")
    return rep


async def submit(client: Client, rows: list[csv_import.RowResult], layout: csv_import.Layout,
                 progress: Progress | None = None, timeout: float = 120.0) -> list[RowReport]:
    """Submit every row that has a record, pipelined; wait for every outcome, or until no outcome
    has come for ``timeout`` seconds (the rest: NO-OUTCOME). One report per row, in row order.

    One collector awaits the outcomes in submission order while the rows are being sent: most
    have arrived by the time it asks, so a row costs no task and no timer of its own."""
    progress = progress or Progress(enabled=False)
    todo = [r for r in rows if r.record is not None]
    progress.to_submit, progress.sending_since = len(todo), time.monotonic()
    reports: dict[int, RowReport] = {r.row: _local(r) for r in rows if r.record is None}
    outcomes: dict[str, dict[str, Any]] = {}
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    async def collect() -> None:
        silent, missed = False, []
        while (eid := await queue.get()) is not None:
            seen = client.decided()
            try:
                outcomes[eid] = await client.outcome(eid, timeout=0.0 if silent else timeout)
                progress.decided += 1
            except OutcomeTimeout:
                missed.append(eid)
                # no outcome at all for `timeout` seconds: from now on take only what has come,
                # rather than waiting `timeout` again for every row
                silent = silent or client.decided() == seen
            progress.update()
        for eid in missed:  # the late ones
            try:
                outcomes[eid] = await client.outcome(eid, timeout=0.0)
                progress.decided += 1
            except OutcomeTimeout:
                pass

    collector = asyncio.ensure_future(collect())
    unacked: list[Any] = []
    try:
        for start in range(0, len(todo), CHUNK):
            sent, eids = [], []
            for r in todo[start:start + CHUNK]:
                try:
                    sent.append(await client.submit(r.record))  # type: ignore[arg-type]
                except registry.SchemaError as exc:  # cannot happen for a checked row; never sent if it does
                    reports[r.row] = RowReport(
                        r.row, r.decision_no, r.event_id, REFUSED, ["(record)"],
                        [f"记录无法编码，未提交 (the record cannot be encoded; not submitted: {exc})"])
                    continue
                eids.append(r.record["envelope"]["event_id"])  # type: ignore[index]
            await asyncio.gather(*unacked)  # the previous chunk is on the broker's log
            progress.submitted += len(unacked)
            for eid in eids:
                queue.put_nowait(eid)
            unacked = sent
            progress.update()
        await asyncio.gather(*unacked)
        progress.submitted += len(unacked)
        progress.sent_at = time.monotonic()
        queue.put_nowait(None)
        await collector
    finally:
        collector.cancel()
    progress.finish()
    for r in todo:
        if r.row not in reports:
            reports[r.row] = _decided(r, layout, outcomes.get(r.record["envelope"]["event_id"]))  # type: ignore[index]
    return [reports[r.row] for r in rows]


def write_report(path: Path, rows: list[RowReport]) -> None:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(REPORT_COLUMNS)
    w.writerows(r.as_csv() for r in rows)
    path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))


async def import_file(settings: config.Settings, department: str, data: bytes, matrix: DepartmentMatrix, *,
                      dry_run: bool = False, progress: Progress | None = None, timeout: float = 120.0) -> ImportResult:
    """Check, then (unless ``dry_run``) submit and wait; ``FileRefused`` / ``SetupError`` if nothing
    can be imported."""
    progress = progress or Progress(enabled=False)
    t0 = time.perf_counter()
    reading, rows = check(data, department, matrix, progress)
    checked = time.perf_counter() - t0
    if dry_run or not any(r.record is not None for r in rows):
        progress.finish()
        return ImportResult(reading, [_local(r) for r in rows], checked)
    try:
        key = signing.private_key(settings.keys_dir, department)
    except (FileNotFoundError, ValueError) as exc:
        raise SetupError(f"找不到部门 {department} 的签名密钥 (no signing key for {department}: {exc})") from None
    client = LedgerClient(settings.bootstrap_servers, department, key)
    try:
        await client.start()
    except Exception as exc:  # aiokafka raises several kinds when the broker is unreachable
        raise SetupError(f"无法连接 Kafka {settings.bootstrap_servers} (cannot reach Kafka: "
                         f"{type(exc).__name__}: {exc})") from None
    try:
        t1 = time.perf_counter()
        reports = await submit(client, rows, reading.layout, progress, timeout)
        return ImportResult(reading, reports, checked, time.perf_counter() - t1)
    finally:
        await client.stop()


# =========================================================================== command line


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


async def _cli(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"无法读取文件 {path} (cannot read the file: {exc.strerror})", file=sys.stderr)
        return 2
    progress = Progress(enabled=not args.no_progress)
    try:
        result = await import_file(config.load(), args.department, data, loader.load_departments(),
                                   dry_run=args.dry_run, progress=progress, timeout=args.timeout)
    except csv_import.FileRefused as exc:
        progress.finish()
        print(f"{path}: 文件未导入，没有提交任何记录 (file not imported, nothing submitted): {exc}", file=sys.stderr)
        return 2
    except SetupError as exc:
        progress.finish()
        print(f"{path}: 未导入，没有提交任何记录 (not imported, nothing submitted): {exc}", file=sys.stderr)
        return 2
    report = Path(args.report) if args.report else path.with_name(path.stem + ".report.csv")
    write_report(report, result.rows)
    print(summary(path, result, report, args.dry_run))
    return 1 if result.failed else 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m ledger.intake.importer",
        description="Import a national double-publicity CSV file (XK_ licences or CF_ penalties; codes or Chinese "
                    "headers; UTF-8 or GB18030) as a department: check every row, submit the valid ones, wait "
                    "for every outcome and write a per-row report. Re-importing the same file appends nothing "
                    "(every row is a DUPLICATE). Exit status 1 if any row was refused, 2 if nothing was imported.")
    p.add_argument("file", help="the CSV file")
    p.add_argument("--department", required=True, help="the importing department id, e.g. xc-samr; its private "
                   "key is read from LEDGER_KEYS_DIR/<department>.key")
    p.add_argument("--report", help="where to write the per-row report (default: FILE.report.csv beside the file)")
    p.add_argument("--dry-run", action="store_true", help="check the file and write the report; submit nothing")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="give up waiting for outcomes after this many seconds without any (default 120)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    sys.exit(asyncio.run(_cli(p.parse_args(argv))))


if __name__ == "__main__":
    main()

"""The import itself: check the whole file (and that the department may emit its event type), then
sign and submit every row that has a record through ``ledger.client.LedgerClient`` (each chunk of
CHUNK rows signed as one batch), pipelined, and wait for every outcome; one ``RowReport`` per row.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from ledger.client import LedgerClient, OutcomeTimeout
from ledger.domain.errors import Rejection
from ledger.domain.identity import WARNING_MESSAGES
from ledger.domain.rules import PENALTY_WARNING_MESSAGES, DepartmentMatrix
from ledger.intake import csv_import
from ledger.intake.importer.progress import Progress
from ledger.intake.importer.report import (
    ACCEPTED,
    CONFLICT,
    DUPLICATE,
    FLAGGED,
    NO_OUTCOME,
    REFUSED,
    REJECTED,
    VALID,
    ImportResult,
    RowReport,
)
from ledger.platform import config, signing
from ledger.platform.kafka_access import AccessError, access
from schemas import registry

CHUNK = 1000  # submissions signed as one batch and sent before waiting for the broker's acknowledgement of the previous chunk


class Client(Protocol):
    """What the import needs of ledger.client.LedgerClient (a fake in the unit tests)."""

    async def submit_batch(self, records: list[dict[str, Any]]) -> Any: ...
    async def outcome(self, event_id: str, timeout: float = 30.0) -> dict[str, Any]: ...
    def decided(self) -> int: ...


class SetupError(Exception):
    """Nothing can be imported: the message says why (Chinese, English in brackets)."""


def check(data: bytes, department: str, matrix: DepartmentMatrix,
          progress: Progress | None = None) -> tuple[csv_import.Reading, list[csv_import.RowResult]]:
    """Read and check every row (``FileRefused`` for the file as a whole); then make sure the
    department may emit the file's event type (``SetupError``)."""
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
        rep.reasons += [{**WARNING_MESSAGES, **PENALTY_WARNING_MESSAGES}.get(w, w) for w in extra]
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
    unacked_rows = 0
    try:
        for start in range(0, len(todo), CHUNK):
            sent: list[Any] = []
            chunk = todo[start:start + CHUNK]
            try:  # the chunk signed as one batch
                sent.append(await client.submit_batch([r.record for r in chunk]))  # type: ignore[misc]
                signed = chunk
            except registry.SchemaError:  # cannot happen for checked rows; then each on its own, to name it
                signed = []
                for r in chunk:
                    try:
                        sent.append(await client.submit_batch([r.record]))  # type: ignore[list-item]
                    except registry.SchemaError as exc:  # never sent
                        reports[r.row] = RowReport(
                            r.row, r.decision_no, r.event_id, REFUSED, ["(record)"],
                            [f"记录无法编码，未提交 (the record cannot be encoded; not submitted: {exc})"])
                        continue
                    signed.append(r)
            eids = [r.record["envelope"]["event_id"] for r in signed]  # type: ignore[index]
            await asyncio.gather(*unacked)  # the previous chunk is on the broker's log
            progress.submitted += unacked_rows
            for eid in eids:
                queue.put_nowait(eid)
            unacked, unacked_rows = sent, len(signed)
            progress.update()
        await asyncio.gather(*unacked)
        progress.submitted += unacked_rows
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
    try:
        kafka = access(settings, department)
    except AccessError as exc:
        raise SetupError(f"找不到部门 {department} 的 Kafka 密码 (no Kafka password for {department}: {exc})") from None
    client = LedgerClient(kafka, department, key)
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

"""The auditor's command: an entity's history checked against the log, its state as of a date or a
moment, the notary's public key and tree heads, and the audit bundle for offline verification.

    python -m projections.audit history ENTITY [--json]
    python -m projections.audit as-of ENTITY [--valid-on 2025-06-30] [--known-at 2025-07-01T00:00:00Z]
    python -m projections.audit public-key [--out notary.pub]
    python -m projections.audit head --partition P [--out head.json]
    python -m projections.audit export-bundle ENTITY --out bundle.json [--trusted-head head.json] [--wait 30]
    python -m ledger.audit.verify bundle.json --public-key notary.pub      (offline, see ledger/audit/verify.py)

ENTITY is an entity id (uscc:<code> or ric:<pseudonym>) or a subject's identifier (a unified
social credit code or a resident ID number, turned into the entity id; never printed).

history: every event from the ledger copy (views.ledger_copy) in version order with its valid time
(valid_from), its ledger time (sequenced_at) and its position; then the same records read from
Kafka: the hash chain is recomputed from the log's bytes and every divergence between the copy,
the log and the notary's leaves is reported (exit status 1 when there is one).

as-of: the state folded with the domain's evolve (ledger/domain/asof.py) from the events in effect
on --valid-on (valid time) that the ledger had by --known-at (ledger time).

export-bundle: the entity's LedgerEntry records exactly as stored in Kafka (checked against the
copy first), each with its RFC 9162 inclusion proof, the newest published signed tree head of the
entity's partition that covers them (waiting up to --wait seconds for one), the notary's public
key, and with --trusted-head a consistency proof from that head. A bundle holds the signed
submissions, so for a natural person it holds the clear ID number: it is an auditor's document,
not a public one (the query API never serves it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg

from ledger.audit.log_reader import LogReader, compare
from ledger.audit.notary import notary_keys_dir
from ledger.audit.verify import BUNDLE_FORMAT
from ledger.domain import identity
from ledger.domain.errors import Rejection
from ledger.platform import config, logs
from ledger.platform.clock import SYSTEM
from ledger.platform.kafka_access import AUDITOR, access
from projections import schema
from projections.audit import reads as audit

log = logs.get("audit")


class AuditError(Exception):
    """What the auditor asked for cannot be produced; the message says why."""


def entity_of(raw: str, pepper: bytes) -> str:
    """An entity id as given, or the one of a unified social credit code / resident ID number."""
    if raw.startswith(("uscc:", "ric:")):
        return raw
    refused = []
    for check in (identity.check_uscc, identity.check_ric):
        try:
            return identity.entity_key(check(raw, field="entity"), pepper)
        except Rejection as r:
            refused.append(r.message)
    raise AuditError("ENTITY is neither an entity id (uscc:... / ric:...) nor a valid identifier: "
                     + " / ".join(refused))


def public_key(settings: config.Settings) -> str:
    path = notary_keys_dir(settings.keys_dir) / "notary.pub"
    if not path.exists():
        raise AuditError(f"no notary public key at {path} (ops/stack up creates the development key)")
    return path.read_text().strip()


async def _connect(settings: config.Settings) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(settings.pg_dsn, autocommit=True, prepare_threshold=None,
                                                 options=f"-c search_path={schema.LIVE}")


async def checked_history(settings: config.Settings, entity_id: str) -> tuple[list[dict[str, Any]], list[str],
                                                                               dict[int, bytes]]:
    """The copy's rows, the divergences from the log, and the log's records by offset."""
    conn = await _connect(settings)
    reader = LogReader(access(settings, AUDITOR))
    try:
        rows = await audit.history(conn, entity_id)
        if not rows:
            raise AuditError(f"no events of {entity_id} in the ledger copy")
        partitions = {r["partition"] for r in rows}
        if len(partitions) != 1:
            return rows, [f"the copy puts the entity's events in several partitions: {sorted(partitions)}"], {}
        p = partitions.pop()
        offsets = [r["offset"] for r in rows]
        records = await reader.records(p, offsets)
        leaves = await audit.leaves_at(conn, p, offsets)
        return rows, compare(entity_id, rows, records, leaves), records
    finally:
        await reader.close()
        await conn.close()


async def as_of(settings: config.Settings, entity_id: str, valid_on: date | None,
                known_at: datetime | None) -> dict[str, Any]:
    conn = await _connect(settings)
    try:
        result, total = await audit.as_of(conn, entity_id, valid_on, known_at)
    finally:
        await conn.close()
    if total == 0:
        raise AuditError(f"no events of {entity_id} in the ledger copy")
    return as_of_json(entity_id, valid_on, known_at, result, total)


def as_of_json(entity_id: str, valid_on: date | None, known_at: datetime | None, result: Any,
               total: int) -> dict[str, Any]:
    return {"entity_id": entity_id, "valid_on": valid_on, "known_at": known_at, "events_in_ledger": total,
            "known_version": result.known_version, "applied_versions": result.applied,
            "not_applicable": [{"version": v, "reason": why} for v, why in result.not_applicable],
            "state": json.loads(result.state.to_json())}


async def export_bundle(settings: config.Settings, entity_id: str, trusted_head: dict[str, Any] | None = None,
                        wait_s: float = 30.0) -> dict[str, Any]:
    rows, problems, records = await checked_history(settings, entity_id)
    if problems:
        raise AuditError("the ledger copy and the log disagree; no bundle: " + "; ".join(problems))
    partition = rows[0]["partition"]
    offsets = [r["offset"] for r in rows]
    conn = await _connect(settings)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            leaves = await audit.leaves_at(conn, partition, offsets)
            covering = max((i for i, _ in leaves.values()), default=-1) + 1
            head = await audit.latest_head(conn, partition, covering) if len(leaves) == len(offsets) else None
            if head is not None:
                break
            if time.monotonic() > deadline:
                raise AuditError(f"the notary has not yet signed a head covering the entity's events in partition "
                                 f"{partition} ({len(leaves)} of {len(offsets)} notarised); retry later or --wait longer")
            await asyncio.sleep(0.5)
        events = []
        for r in rows:
            index = leaves[r["offset"]][0]
            proof = await audit.inclusion_proof(conn, partition, index, head.tree_size)
            events.append({"version": r["version"], "kafka_offset": r["offset"], "leaf_index": index,
                           "valid_from": r["valid_from"].isoformat(), "sequenced_at": r["sequenced_at"].isoformat(),
                           "record": base64.b64encode(records[r["offset"]]).decode(),
                           "inclusion_proof": [h.hex() for h in proof]})
        bundle: dict[str, Any] = {
            "format": BUNDLE_FORMAT, "entity_id": entity_id, "exported_at": SYSTEM.now().isoformat(),
            "partition": partition, "tree_head": head.to_json(), "public_key": public_key(settings),
            "events": events,
        }
        if trusted_head is not None:
            if int(trusted_head["partition"]) != partition:
                raise AuditError(f"the trusted head is of partition {trusted_head['partition']}, the entity is in "
                                 f"partition {partition}")
            old = int(trusted_head["tree_size"])
            if old > head.tree_size:
                raise AuditError(f"the trusted head (size {old}) is newer than the newest published head "
                                 f"({head.tree_size})")
            bundle["consistency"] = {"from_size": old, "from_root": trusted_head["root"], "proof": [
                h.hex() for h in await audit.consistency_proof(conn, partition, old, head.tree_size)]}
        return bundle
    finally:
        await conn.close()


async def latest_head(settings: config.Settings, partition: int) -> dict[str, Any]:
    conn = await _connect(settings)
    try:
        head = await audit.latest_head(conn, partition)
    finally:
        await conn.close()
    if head is None:
        raise AuditError(f"the notary has published no head of partition {partition} yet")
    return head.to_json()


# --------------------------------------------------------------------------- command line


def _json_default(v: Any) -> Any:
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    if isinstance(v, (bytes, memoryview)):
        return bytes(v).hex()
    raise TypeError(type(v).__name__)


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1, default=_json_default)


def _write(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


def _date(v: str) -> date:
    try:
        return date.fromisoformat(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {v!r}") from None


def _moment(v: str) -> datetime:
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time (e.g. 2025-07-01T08:00:00Z): {v!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m projections.audit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("history", help="every event of an entity, checked against the Kafka log")
    h.add_argument("entity")
    h.add_argument("--json", action="store_true", help="JSON instead of a table")
    a = sub.add_parser("as-of", help="an entity's state as of a valid date and/or as known at a ledger time")
    a.add_argument("entity")
    a.add_argument("--valid-on", type=_date, help="valid time: events whose decision took effect by this date")
    a.add_argument("--known-at", type=_moment, help="ledger time: events the ledger had appended by this moment")
    k = sub.add_parser("public-key", help="the notary's Ed25519 public key (hex), to verify bundles with")
    k.add_argument("--out")
    hd = sub.add_parser("head", help="the newest published signed tree head of a partition (JSON)")
    hd.add_argument("--partition", type=int, required=True)
    hd.add_argument("--out")
    b = sub.add_parser("export-bundle", help="one JSON file an auditor verifies offline with ledger.audit.verify")
    b.add_argument("entity")
    b.add_argument("--out", required=True)
    b.add_argument("--trusted-head", help="a head (JSON) the auditor trusts: include a consistency proof from it")
    b.add_argument("--wait", type=float, default=30.0, help="seconds to wait for a head covering the events")
    args = p.parse_args(argv)
    logs.configure("WARNING")
    s = config.load()
    try:
        entity = entity_of(args.entity, s.id_pepper) if hasattr(args, "entity") else ""
        if args.command == "history":
            rows, problems, _ = asyncio.run(checked_history(s, entity))
            if args.json:
                print(_dump({"entity_id": entity, "events": rows, "divergences": problems}))
            else:
                print(f"{'v':>4} {'valid from':<10} {'ledger time (UTC)':<23} {'position':<10} {'event type':<30} event id")
                for r in rows:
                    print(f"{r['version']:>4} {r['valid_from']} {r['sequenced_at'].astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}"[:-3]
                          + f" {r['partition']}:{r['offset']:<8} {r['event_type']:<30} {r['event_id']}")
                print(f"checked against the log: {len(rows)} records, hash chain recomputed from Kafka: "
                      + ("no divergence" if not problems else f"{len(problems)} DIVERGENCES"))
                for x in problems:
                    print(f"  DIVERGENCE {x}")
            return 1 if problems else 0
        if args.command == "as-of":
            print(_dump(asyncio.run(as_of(s, entity, args.valid_on, args.known_at))))
        elif args.command == "public-key":
            _write(public_key(s), args.out)
        elif args.command == "head":
            _write(_dump(asyncio.run(latest_head(s, args.partition))), args.out)
        elif args.command == "export-bundle":
            trusted = json.loads(Path(args.trusted_head).read_text(encoding="utf-8")) if args.trusted_head else None
            bundle = asyncio.run(export_bundle(s, entity, trusted, args.wait))
            _write(json.dumps(bundle, indent=1), args.out)
            print(f"bundle of {entity}: {len(bundle['events'])} events, tree head of partition {bundle['partition']} "
                  f"size {bundle['tree_head']['tree_size']} -> {args.out}", file=sys.stderr)
    except AuditError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

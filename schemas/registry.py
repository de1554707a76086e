"""The one place that names topics and builds serializers.

Every Avro record on the wire is framed as: magic byte 0, the schema id as a 4-byte big-endian
integer (ids from schemas/avro/catalogue.json, append-only), then the Avro body. A reader decodes
with the writer's schema (found by id) resolved against the newest schema of the same record name,
so data written under any earlier version kept in the repository stays readable.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import fastavro

AVRO_DIR = Path(__file__).resolve().parent / "avro"
MAGIC = 0
_HEADER = struct.Struct(">BI")


class SchemaError(Exception):
    """A record cannot be encoded or decoded: which schema and why."""


# --------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    key: str = "entity id (UTF-8)"
    value: str = ""
    doc: str = ""


# Co-partitioned topics (submissions, events, sequencer state) must share one partition count:
# the sequencer that owns submissions partition p owns the state and the ledger partition p.
LEDGER_PARTITIONS = 4
FOREVER = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
COMPACTED = {"cleanup.policy": "compact"}

SUBMISSIONS = Topic(
    "credit.submissions", LEDGER_PARTITIONS,
    # LogAppendTime: the broker stamps each submission, and the sequencer takes ledger time from it
    {"cleanup.policy": "delete", "retention.ms": str(30 * 86400_000), "message.timestamp.type": "LogAppendTime"},
    value="a family schema (AdministrativePenaltyImposed, ...); headers department, signature",
    doc="What departments submit; the sequencer is its only reader of record.",
)
EVENTS = Topic(
    "credit.events", LEDGER_PARTITIONS,
    {**FOREVER, "message.timestamp.type": "LogAppendTime"},
    value="LedgerEntry",
    doc="THE ledger. Written only by the sequencer, kept forever, never compacted.",
)
OUTCOMES = Topic(
    "credit.outcomes", LEDGER_PARTITIONS, {"cleanup.policy": "delete", "retention.ms": str(30 * 86400_000)},
    key="event id (UTF-8)", value="Outcome", doc="The sequencer's answer to every submission.",
)
SEQUENCER_STATE = Topic(
    "credit.sequencer.state", LEDGER_PARTITIONS, COMPACTED,
    key="'entity:<id>' or 'event:<id>'", value="SequencerState",
    doc="The sequencer's changelog, written in the same transaction as the ledger.",
)
LISTS_CHANGES = Topic(
    "credit.lists.changes", LEDGER_PARTITIONS, FOREVER, value="ListChange",
    doc="Every red/black list change, for subscribers; written by the list keeper in the ledger's partition.",
)
LISTS_CURRENT = Topic(
    "credit.lists.current", LEDGER_PARTITIONS,
    # compacted; a delisting is a value (listed=false), so delete.retention.ms (tombstones) never loses one
    {**COMPACTED, "segment.ms": str(3600_000), "min.cleanable.dirty.ratio": "0.1"},
    key="'<entity id>|<list kind>'", value="ListStatus",
    doc="One record per entity and list; a delisting is an explicit value. Partition = the ledger's partition.",
)
ALERTS = Topic("credit.alerts", LEDGER_PARTITIONS, FOREVER, key="department id", value="Alert",
               doc="Joint-punishment alerts, one per (list change, measure, department).")
ALERTS_DEADLETTER = Topic("credit.alerts.deadletter", 1, FOREVER, key="department id", value="AlertDeadLetter",
                          doc="Alerts the webhook deliverer gave up on, with the reason.")
CHECKPOINTS = Topic("credit.checkpoints", 1, FOREVER, key="partition", value="TreeHead",
                    doc="Signed Merkle tree heads (the notary, consumers/notary/service.py).")
# The department supervision's own topics (consumers/supervision/service.py, a faust app whose id is
# SUPERVISION_APP): the changelogs of its windowed tables, one per period, and faust's leader-election
# topic. Not in TOPICS (their values are faust's JSON, no schema of schemas/avro, so the schema registry
# API does not serve them): faust creates them at its start with these names and configs, and checks that
# each changelog has as many partitions as the topics it counts.
SUPERVISION_APP = "credit-supervision"
SUPERVISION_CHANGELOGS = {
    period: Topic(f"{SUPERVISION_APP}-{table}-changelog", LEDGER_PARTITIONS, COMPACTED,
                  key="JSON [\"<topic>|<partition>[|<department>]\", [window start, window end]]",
                  value='JSON {"o": last offset counted, "c": {measure: count}}',
                  doc=f"The supervision's {what} (faust's changelog of its table '{table}', partition = the "
                      "source partition); compacted, an expired window deleted with a tombstone.")
    for period, table, what in (("day", "day", "counts per China-local day"),
                                ("month", "month", "counts per China-local calendar month"),
                                ("5min", "recent", "counts per 5 minutes, for the dashboard's charts"))
}
SUPERVISION_PROGRESS = Topic(f"{SUPERVISION_APP}-progress-changelog", LEDGER_PARTITIONS, COMPACTED,
                             key='JSON "<topic>|<partition>"', value="JSON the last offset counted",
                             doc="The supervision's progress (faust's changelog of its table 'progress', partition = "
                                 "the source partition): per source partition, the last offset whose counts the "
                                 "broker holds; after a recovery each source partition is read again from there.")
SUPERVISION_LEADER = Topic(f"{SUPERVISION_APP}-__assignor-__leader", 1, key="-", value="-",
                           doc="faust's leader election among the supervision's workers (no data)")
# Not in TOPICS: the stack never creates it; bench/projection.py creates and deletes it per run.
BENCH_EVENTS = Topic("bench.events", LEDGER_PARTITIONS, FOREVER, value="LedgerEntry",
                     doc="benchmarks only: synthetic ledger entries")

TOPICS: tuple[Topic, ...] = (
    SUBMISSIONS, EVENTS, OUTCOMES, SEQUENCER_STATE, LISTS_CHANGES, LISTS_CURRENT, ALERTS, CHECKPOINTS,
    ALERTS_DEADLETTER,
)


def topic(name: str) -> Topic:
    for t in TOPICS:
        if t.name == name:
            return t
    raise KeyError(name)


# --------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Schema:
    id: int
    file: str
    name: str  # record name without namespace, e.g. AdministrativePenaltyImposed
    version: int
    parsed: Any
    # top-level bytes fields with a default: Avro writes a bytes default as a JSON string, and a reader
    # resolving an older record fills it in as that string, so decode turns it into bytes
    bytes_defaults: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalogue:
    by_id: dict[int, Schema]
    latest: dict[str, Schema]  # record name -> newest version
    named: dict[str, Any]  # full name -> parsed named type (the newest version's), for walking references


def _load_json(file: str) -> dict[str, Any]:
    return json.loads((AVRO_DIR / file).read_text(encoding="utf-8"))


@cache
def catalogue() -> Catalogue:
    meta = json.loads((AVRO_DIR / "catalogue.json").read_text(encoding="utf-8"))
    named: dict[str, Any] = {}
    for file in meta["named_types"]:
        fastavro.parse_schema(_load_json(file), named_schemas=named)
    by_id: dict[int, Schema] = {}
    latest: dict[str, Schema] = {}
    all_named = dict(named)
    for entry in meta["schemas"]:
        raw = _load_json(entry["file"])
        name, version = entry["file"].split(".v")[0], int(entry["file"].split(".v")[1].split(".")[0])
        own = dict(named)
        parsed = fastavro.parse_schema(raw, named_schemas=own)
        s = Schema(entry["id"], entry["file"], name, version, parsed, tuple(
            f["name"] for f in raw.get("fields", ()) if f["type"] == "bytes" and "default" in f))
        if s.id in by_id:
            raise SchemaError(f"schema id {s.id} is used twice in catalogue.json")
        by_id[s.id] = s
        if name not in latest or latest[name].version < version:
            latest[name] = s
            # the newest version's own named types (its record, its enums) are the ones `named` holds
            all_named.update({k: v for k, v in own.items() if k not in named})
        else:
            all_named.update({k: v for k, v in own.items() if k not in all_named})
    return Catalogue(by_id, latest, all_named)


def schema_for(name: str) -> Schema:
    try:
        return catalogue().latest[name]
    except KeyError:
        raise SchemaError(f"no schema named {name!r} in schemas/avro") from None


def encode(name: str, record: dict[str, Any], version: int | None = None) -> bytes:
    """Frame and encode a record with the newest (or the given) version of schema `name`."""
    cat = catalogue()
    s = cat.latest.get(name) if version is None else next(
        (x for x in cat.by_id.values() if x.name == name and x.version == version), None
    )
    if s is None:
        raise SchemaError(f"no schema named {name!r} version {version}")
    buf = io.BytesIO()
    buf.write(_HEADER.pack(MAGIC, s.id))
    try:
        fastavro.schemaless_writer(buf, s.parsed, record)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SchemaError(f"{name}: {exc}") from None
    return buf.getvalue()


def schema_id_of(data: bytes) -> int:
    if len(data) < _HEADER.size or data[0] != MAGIC:
        raise SchemaError("not a framed Avro record (bad magic byte or too short)")
    return _HEADER.unpack_from(data)[1]


def decode(data: bytes, expect: str | None = None) -> tuple[str, dict[str, Any]]:
    """Decode a framed record into (record name, dict), resolved to the newest schema version."""
    sid = schema_id_of(data)
    cat = catalogue()
    writer = cat.by_id.get(sid)
    if writer is None:
        raise SchemaError(f"unknown schema id {sid}")
    if expect is not None and writer.name != expect:
        raise SchemaError(f"expected a {expect} record, got {writer.name}")
    reader = cat.latest[writer.name]
    try:
        rec = fastavro.schemaless_reader(
            io.BytesIO(data[_HEADER.size:]), writer.parsed,
            None if reader.id == writer.id else reader.parsed,
        )
    except Exception as exc:  # fastavro raises a variety of errors on corrupt input
        raise SchemaError(f"{writer.name} v{writer.version}: undecodable body ({type(exc).__name__})") from None
    if reader.id != writer.id:
        for f in reader.bytes_defaults:
            if isinstance(rec.get(f), str):  # type: ignore[union-attr]
                rec[f] = rec[f].encode("latin-1")  # type: ignore[index]
    return writer.name, rec  # type: ignore[return-value]


def from_json(name: str, obj: Any) -> Any:
    """Turn JSON-shaped data (ISO dates and times as strings) into what the Avro writer takes.

    It converts types only; the Avro writer still validates everything (encode raises SchemaError).
    """
    return _convert(schema_for(name).parsed, obj, catalogue().named)


def _convert(schema: Any, value: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, str):
        return _convert(named[schema], value, named) if schema in named else value
    if isinstance(schema, list):  # union: null or the first branch that converts
        if value is None:
            return None
        for branch in schema:
            if branch == "null":
                continue
            try:
                return _convert(branch, value, named)
            except (ValueError, TypeError):
                continue
        return value
    logical = schema.get("logicalType")
    if logical == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if logical in ("timestamp-millis", "timestamp-micros") and isinstance(value, str):
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    kind = schema.get("type")
    if kind == "record" and isinstance(value, dict):
        out = dict(value)
        for f in schema["fields"]:
            if f["name"] in out:
                out[f["name"]] = _convert(f["type"], out[f["name"]], named)
        return out
    if kind == "array" and isinstance(value, list):
        return [_convert(schema["items"], v, named) for v in value]
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind in named):
        return _convert(kind, value, named)
    return value

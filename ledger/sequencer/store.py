"""Local snapshots of the sequencer's per-partition state, so a restart does not re-read the changelog.

The changelog topic (credit.sequencer.state) stays the state's source of truth; a snapshot is a
local cache of it, as Kafka Streams keeps a local store with a checkpoint file beside its changelog.
One file per partition, named after the changelog partition, holding the partition's state and the
changelog offset it covers. A restore loads the file, then reads only the changelog records from that
offset on; a missing, damaged or foreign file is ignored (with the reason logged) and the whole
changelog is read instead, so a snapshot can make a restore faster but never different.

Format: a first line ``LEDGER-SEQUENCER-SNAPSHOT``, a JSON header line (format, topic, partition,
changelog offset, Python and marshal versions, SHA-256 and length of the payload), then the payload:
``marshal`` of plain dicts and tuples (entity id -> (state JSON, last hash); event id -> the Seen
fields). marshal loads in a fraction of the time of any record-by-record decoder; its format may change
between Python versions, so a snapshot from another version is simply not used. The checksum catches
a damaged file before anything of it is used.

Files are written under a temporary name, flushed to disk and renamed, so a kill at any moment leaves
either the previous snapshot or the new one.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ledger.sequencer.core import PartitionState, Seen
from schemas import registry

MAGIC = b"LEDGER-SEQUENCER-SNAPSHOT\n"
FORMAT = 1


@dataclass(frozen=True)
class Snapshot:
    partition: int
    changelog_offset: int  # the first changelog offset NOT covered by the state
    state: PartitionState  # entity states as canonical JSON, parsed when the entity is next judged


class SnapshotUnusable(Exception):
    """The file cannot serve as this partition's snapshot; the message says why."""


def path_for(directory: Path, partition: int) -> Path:
    return directory / f"{registry.SEQUENCER_STATE.name}-{partition}.snapshot"


def _header(partition: int) -> dict[str, object]:
    return {"format": FORMAT, "topic": registry.SEQUENCER_STATE.name, "partition": partition,
            "python": list(sys.version_info[:2]), "marshal": marshal.version}


def write(directory: Path, partition: int, changelog_offset: int, state: PartitionState) -> Path:
    entities = {k: (s if isinstance(s, str) else s.to_json(), h) for k, (s, h) in state.entities.items()}
    seen = {k: tuple(v) for k, v in state.seen.items()}
    payload = marshal.dumps((entities, seen))
    header = {**_header(partition), "changelog_offset": changelog_offset, "entities": len(entities),
              "event_ids": len(seen), "payload_bytes": len(payload),
              "payload_sha256": hashlib.sha256(payload).hexdigest()}
    directory.mkdir(parents=True, exist_ok=True)
    final = path_for(directory, partition)
    tmp = final.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(MAGIC)
        out.write(json.dumps(header, sort_keys=True).encode() + b"\n")
        out.write(payload)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def read(directory: Path, partition: int) -> Snapshot | None:
    """The partition's snapshot, or None when there is none. Raises SnapshotUnusable for a file that
    exists but is damaged, written by another Python version, or of another topic or partition."""
    path = path_for(directory, partition)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if not data.startswith(MAGIC):
        raise SnapshotUnusable(f"{path} is not a sequencer snapshot (its first line is wrong)")
    end = data.find(b"\n", len(MAGIC))
    try:
        header = json.loads(data[len(MAGIC):end])
        offset = int(header["changelog_offset"])
        expected_sha, expected_len = header["payload_sha256"], int(header["payload_bytes"])
    except (ValueError, KeyError, TypeError):
        raise SnapshotUnusable(f"{path} has an unreadable header") from None
    want = _header(partition)
    wrong = [k for k, v in want.items() if header.get(k) != v]
    if wrong:
        raise SnapshotUnusable(f"{path} does not match this process in {', '.join(wrong)} "
                               f"(file: {', '.join(f'{k}={header.get(k)}' for k in wrong)})")
    payload = data[end + 1:]
    if len(payload) != expected_len or hashlib.sha256(payload).hexdigest() != expected_sha:
        raise SnapshotUnusable(f"{path} is damaged (its payload does not match the checksum in its header)")
    entities, seen = marshal.loads(payload)
    state = PartitionState(entities, {k: Seen(*v) for k, v in seen.items()})
    return Snapshot(partition, offset, state)


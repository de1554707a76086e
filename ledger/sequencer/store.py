"""The sequencer's local state store: one RocksDB database (rocksdict) per owned partition, holding each
entity's state (canonical JSON and last hash), every accepted event id (its Seen) and the changelog
offset the store covers. It implements `core.StateStore`.

The changelog topic (credit.sequencer.state) stays the state's source of truth; the store is a local,
bounded-memory copy of it, as Kafka Streams keeps a RocksDB store with a checkpoint beside its
changelog. It is written only after a batch's Kafka transaction committed: the batch's changes of the
partition and the partition's changelog offset (the first offset NOT covered) go into ONE RocksDB
WriteBatch, so after a kill -9 at any moment the store holds the state of some committed batch with
the exact offset it covers, and a restart reads only the changelog from that offset on. RocksDB
writes its write-ahead log with write(2) before a write returns, so a process kill loses nothing it
acknowledged; after a machine crash it recovers to an earlier consistent batch (the WAL is not
fsynced per batch), and the changelog tail covers the difference.

Memory: the databases of one process share one block cache (`cache_mib`, default 32 MiB) that also
holds the index and bloom-filter blocks and is charged with the memtables (a write buffer manager on
the same cache), so RocksDB's memory stays near that figure whatever the number of event ids. Absent
ids (the common case: a new submission) are answered by the bloom filter (10 bits a key) without a
data block read.

Layout (raw bytes keys): ``m:format``, ``m:partition`` (what the store is), ``m:changelog`` (8-byte
big-endian offset); ``e:<entity id>`` -> last hash (32 bytes) + state JSON; ``i:<event id>`` ->
content hash (32 bytes) + entity version, ledger offset (8 bytes each), ledger partition (4) + entity id.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

from rocksdict import Rdict, WriteBatch

from ledger.platform.rocks import Resources
from ledger.sequencer.core import Changes, Seen, state_text
from schemas import registry

FORMAT = b"1"
_SEEN = struct.Struct(">qqi")
_OFFSET = struct.Struct(">q")
HASH_BYTES = 32
K_FORMAT, K_PARTITION, K_CHANGELOG = b"m:format", b"m:partition", b"m:changelog"


class StoreUnusable(Exception):
    """The directory cannot serve as this partition's store; the message says why."""


def path_for(directory: Path, partition: int) -> Path:
    return directory / f"{registry.SEQUENCER_STATE.name}-{partition}.rocksdb"


def wipe(directory: Path, partition: int) -> None:
    shutil.rmtree(path_for(directory, partition), ignore_errors=True)


class PartitionStore:
    """One partition's state on disk (core.StateStore)."""

    def __init__(self, directory: Path, partition: int, resources: Resources) -> None:
        self.partition = partition
        self.path = path_for(directory, partition)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        try:
            self.db = Rdict(str(self.path), resources.options())
        except Exception as exc:  # noqa: BLE001 - RocksDB reports a damaged store as a plain exception
            raise StoreUnusable(f"{self.path} cannot be opened: {exc}") from None
        if fresh:
            wb = WriteBatch(raw_mode=True)
            wb.put(K_FORMAT, FORMAT)
            wb.put(K_PARTITION, str(partition).encode())
            self.db.write(wb)
            return
        found = (self.db.get(K_FORMAT), self.db.get(K_PARTITION))
        if found != (FORMAT, str(partition).encode()):
            self.db.close()
            raise StoreUnusable(f"{self.path} is not the store of partition {partition} in format {FORMAT.decode()} "
                                f"(found format={found[0]!r}, partition={found[1]!r})")

    # ---------------------------------------------------------------- core.StateStore
    def checkpoint(self) -> int | None:
        raw = self.db.get(K_CHANGELOG)
        return None if raw is None else _OFFSET.unpack(raw)[0]

    def get_entity(self, entity_id: str) -> tuple[str, bytes] | None:
        raw = self.db.get(b"e:" + entity_id.encode())
        if raw is None:
            return None
        return raw[HASH_BYTES:].decode(), raw[:HASH_BYTES]

    def get_seen(self, event_id: str) -> Seen | None:
        raw = self.db.get(b"i:" + event_id.encode())
        if raw is None:
            return None
        version, offset, ledger_partition = _SEEN.unpack_from(raw, HASH_BYTES)
        return Seen(raw[:HASH_BYTES], raw[HASH_BYTES + _SEEN.size:].decode(), version, ledger_partition, offset)

    def apply_batch(self, changes: Changes, changelog_offset: int) -> None:
        """Every change of one committed batch (or one restored chunk of the changelog) and the changelog
        offset they bring the store to, in one atomic write."""
        wb = WriteBatch(raw_mode=True)
        for entity_id, (state, last_hash) in changes.entities.items():
            assert len(last_hash) == HASH_BYTES
            text = state if isinstance(state, str) else state_text(state)
            wb.put(b"e:" + entity_id.encode(), last_hash + text.encode())
        for event_id, s in changes.seen.items():
            assert len(s.content_hash) == HASH_BYTES
            wb.put(b"i:" + event_id.encode(), s.content_hash + _SEEN.pack(s.entity_version, s.ledger_offset,
                                                                            s.ledger_partition)
                   + s.entity_id.encode())
        wb.put(K_CHANGELOG, _OFFSET.pack(changelog_offset))
        self.db.write(wb)

    def close(self) -> None:
        self.db.close()

    def estimated_keys(self) -> int:
        return self.db.property_int_value("rocksdb.estimate-num-keys") or 0


def open_checked(directory: Path, partition: int, resources: Resources, begin: int,
                 end: int) -> tuple[PartitionStore, str | None]:
    """The partition's store, ready for its changelog tail, and why it was wiped (None: it was usable or
    new). A store that cannot be opened, is another partition's or format, or covers a changelog
    offset outside the topic's present [begin, end] (the topic was recreated) is wiped and started
    empty, to be filled from the whole changelog."""
    try:
        store = PartitionStore(directory, partition, resources)
    except StoreUnusable as exc:
        wipe(directory, partition)
        return PartitionStore(directory, partition, resources), str(exc)
    offset = store.checkpoint()
    if offset is not None and not begin <= offset <= end:
        store.close()
        wipe(directory, partition)
        return PartitionStore(directory, partition, resources), (
            f"{store.path} covers the changelog up to offset {offset}, but the changelog now runs from "
            f"{begin} to {end} (was the topic recreated?)")
    return store, None

"""The rebuild's bulk load: one worker's partitions of credit.events into a fresh schema, as a load.

The projector's batch loop (service.Projector: fetch, fold in a thread, write the batch before
meanwhile) with another sink, `BulkViews`, for a schema that nothing else reads or writes yet:

- the entities' states are not read from or written to PostgreSQL per batch: they live in a RocksDB
  store of the worker's own (`EntityStates`, a temporary directory, removed at the end), whose
  memory is a fixed block cache whatever the number of entities;
- the rows that need no state of their own (ledger copy, publicity, list entries, deadlines,
  feedback) are COPYed straight in, into tables without primary keys or secondary indexes
  (consumers/projector/rebuild.py drops them and builds them once at the end);
- the status updates of list entries and publicity rows are kept in the schema's table of deferred
  updates and applied once at the end, each row's last (views.apply_deferred_updates);
- each entity's entity_state and entities rows are written once, after its last event, by
  `write_entities`, streamed from the store in chunks.

Each batch's rows are committed with the worker's positions (the progress the rebuild prints). A
worker that fails leaves the schema unfinished; the rebuild then switches nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import orjson
import psycopg
from rocksdict import Rdict, WriteBatch

from consumers.projector.service import PgViews
from ledger.platform.rocks import Resources
from projections import views
from projections.rows import Folder, Loaded, Ops, state_from_json, state_json

# Entities whose rows are COPYed at a time at the end of the load.
CHUNK = 5000
# A batch's deferred updates are numbered from batch_no << SEQ_BITS: above every earlier batch's.
SEQ_BITS = 32
_DATES = ("first_seen", "last_change")


class EntityStates:
    """Every entity's state after the batches folded so far, with its row facts (`Ops.info`), on disk:
    key the entity id, value the version and the facts as JSON, a newline, the state as `state_json`
    (the text entity_state keeps). Memory: RocksDB's block cache and memtables, `cache_mib` in all."""

    def __init__(self, directory: Path, cache_mib: int = 32) -> None:
        self.directory = directory
        self.db = Rdict(str(directory / "entities.rocksdb"), Resources(cache_mib).options())
        self.held: set[str] = set()  # entities held back by a quarantined record (few)
        self.batches = 0  # batches written (numbers their deferred updates, across reconnections)
        # where this worker's reading stands: the next offset of each of its partitions after the last
        # batch committed (not the schema's positions table, which the workers of an entity shard share)
        self.positions: dict[int, int] = {}

    def load(self, keys: set[str]) -> Loaded:
        """The stored states of `keys` (those never seen are absent), with when each was first seen."""
        wanted = sorted(keys)
        states, first_seen = {}, {}
        for eid, raw in zip(wanted, self.db.get([k.encode() for k in wanted]), strict=True):
            if raw is None:
                continue
            head, _, text = raw.partition(b"\n")
            version, info = orjson.loads(head)
            states[eid] = (version, state_from_json(text.decode()))
            first_seen[eid] = datetime.fromisoformat(info["first_seen"])
        return Loaded(states, self.held & keys, 0, first_seen)

    def save(self, ops: Ops) -> None:
        """The states and row facts a folded batch leaves behind (after its rows are committed)."""
        wb = WriteBatch(raw_mode=True)
        for eid, (version, state) in ops.final_states.items():
            wb.put(eid.encode(), orjson.dumps([version, ops.info[eid]]) + b"\n" + state_json(state).encode())
        self.db.write(wb)
        self.held.update(h[0] for h in ops.held)

    def rows(self, folder: Folder) -> Iterator[tuple[tuple[str, int, str], tuple[Any, ...], bool]]:
        """Each stored entity's entity_state row and entities row, made once from its final state, and
        whether a text of them holds NUL or the text "\\u0000" (JSON escapes both so: views.copy_rows)."""
        for key, raw in self.db.items():
            head, _, text = raw.partition(b"\n")
            version, info = orjson.loads(head)
            for k in _DATES:
                info[k] = datetime.fromisoformat(info[k])
            eid = key.decode()
            state_text, row = folder.entity_row(eid, version, state_from_json(text.decode()), info)
            yield (eid, version, state_text), row, b"\\u0000" in raw

    def close(self) -> None:
        self.db.close()


class BulkViews(PgViews):
    """The projector's sink for a bulk load: states from and to `EntityStates`, the batch's rows COPYed
    in with its positions in one transaction, its status updates deferred."""

    states: EntityStates

    @classmethod
    async def open(cls, dsn: str, schema_name: str, states: EntityStates) -> BulkViews:
        sink = cast(BulkViews, await cls.connect(dsn, schema_name, takes_switch_lock=False))
        sink.states = states
        return sink

    async def positions(self, topic: str) -> dict[int, int]:
        """Where this worker goes on from (its own, after its last committed batch): the schema's
        positions rows are shared by the workers of one partition's entity shards, each at its own pace."""
        return dict(self.states.positions)

    async def load(self, keys: set[str]) -> Loaded:
        return await asyncio.to_thread(self.states.load, keys)

    async def write(self, ops: Ops, topic: str, generation: int) -> None:
        self.states.batches += 1
        async with self.conn.transaction():
            await views.write(self.conn, ops, topic, defer_updates=self.states.batches << SEQ_BITS)
        # the states only once the rows are committed: a batch that fails is read and folded again
        # from the positions before it, and from the states before it
        self.states.positions.update((p, o) for p, (o, _) in ops.positions.items())
        await asyncio.to_thread(self.states.save, ops)


async def write_entities(dsn: str, schema_name: str, states: EntityStates, folder: Folder,
                         done: Callable[[int], None] = lambda n: None) -> int:
    """Each entity's entity_state and entities rows, once, COPYed in chunks of CHUNK (each chunk made in
    a thread while the one before is written); `done(n)` after each chunk with its n rows."""
    it = states.rows(folder)

    def chunk() -> list[tuple[tuple[str, int, str], tuple[Any, ...], bool]]:
        return [r for _, r in zip(range(CHUNK), it, strict=False)]

    written = 0
    async with await psycopg.AsyncConnection.connect(dsn, options=f"-c search_path={schema_name}") as conn:
        conn.adapters.register_dumper(None, views.JsonbText)
        async with conn.transaction(), conn.cursor() as cur:
            rows = await asyncio.to_thread(chunk)
            while rows:
                following = asyncio.ensure_future(asyncio.to_thread(chunk))
                nul = any(r[2] for r in rows)
                await views.copy_rows(cur, "entity_state", "entity_id, version, state", (r[0] for r in rows), nul)
                await views.copy_rows(cur, "entities", views.ENTITY_COLS, views.entity_rows(r[1] for r in rows), nul)
                written += len(rows)
                done(len(rows))
                rows = await following
    return written


def temporary_store(cache_mib: int = 32) -> EntityStates:
    return EntityStates(Path(tempfile.mkdtemp(prefix="ledger-rebuild-states-")), cache_mib)


def remove(states: EntityStates) -> None:
    states.close()
    shutil.rmtree(states.directory, ignore_errors=True)

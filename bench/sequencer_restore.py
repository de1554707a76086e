"""How long the sequencer takes to rebuild one partition's state: from a local snapshot file
(ledger/sequencer/store.py) against decoding the same records from changelog bytes (the Kafka fetch
itself not counted, so the changelog figure is a lower bound of a real restore).

Run: PYTHONPATH=. .venv/bin/python -m bench.sequencer_restore [--events 500000] [--entities 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from ledger.domain.model import EntityState
from ledger.platform.clock import SYSTEM
from ledger.rules import loader
from ledger.sequencer import store as state_snapshot
from ledger.sequencer.core import PartitionState, Seen, Sequencing, Verdict, entity_record, seen_record
from schemas import registry


def synthetic_state(events: int, entities: int) -> PartitionState:
    ps = PartitionState()
    for i in range(entities):
        state = EntityState(version=events // entities, counts={"AdministrativePenaltyImposed": events // entities},
                            penalties={f"XC-{i}-{j}": {"status": "published", "decided_on": "2026-10-01"}
                                       for j in range(2)})
        ps.entities[f"91411000{i:010d}"] = (state, hashlib.sha256(str(i).encode()).digest())
    for i in range(events):
        ps.seen[f"event-{i:012d}"] = Seen(hashlib.sha256(str(i).encode()).digest(), f"91411000{i % entities:010d}",
                                          1 + i // entities, 0, i)
    return ps


def changelog_values(ps: PartitionState) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for entity_id, (state, last_hash) in ps.entities.items():
        v = Verdict("ACCEPTED", "", entity_id=entity_id, entry={"entity_version": state.version, "hash": last_hash},
                    state=state)
        out.append(entity_record(v)[1])
    for event_id, seen in ps.seen.items():
        out.append(seen_record(Verdict("ACCEPTED", event_id), seen)[1])
    return out


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sequencer_restore", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=500_000, help="event ids remembered in the partition")
    p.add_argument("--entities", type=int, default=100_000, help="entities in the partition")
    args = p.parse_args()
    ps = synthetic_state(args.events, args.entities)
    core = Sequencing({}, b"bench", loader.load(), today=SYSTEM.today, now=SYSTEM.now)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        state_snapshot.write(Path(tmp), 0, 0, ps)
        write_s = time.perf_counter() - t
        size = state_snapshot.path_for(Path(tmp), 0).stat().st_size
        t = time.perf_counter()
        snap = state_snapshot.read(Path(tmp), 0)
        assert snap is not None
        core.restore(0, [], snap.state)
        snapshot_s = time.perf_counter() - t
    restored = core.partitions[0]
    assert restored.seen == ps.seen and restored.entities.keys() == ps.entities.keys()
    # the same state as changelog records, framed as on the topic
    framed = [registry.encode("SequencerState", r) for r in changelog_values(ps)]
    t = time.perf_counter()
    core.restore(0, [registry.decode(b, "SequencerState")[1] for b in framed])
    changelog_s = time.perf_counter() - t
    n = len(framed)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2 cores)")
    print(f"{n:,} state entries ({args.events:,} event ids, {args.entities:,} entities), snapshot file "
          f"{size / 2**20:.1f} MiB written in {write_s:.2f} s")
    print(f"restore from the snapshot:           {snapshot_s:6.2f} s  ({n / snapshot_s:,.0f} records/s)")
    print(f"restore from changelog bytes (no fetch): {changelog_s:6.2f} s  ({n / changelog_s:,.0f} records/s)")


if __name__ == "__main__":
    main()

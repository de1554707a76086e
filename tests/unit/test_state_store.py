"""The sequencer's local state store (ledger/sequencer/store.py): a store plus the changelog after its
checkpoint holds exactly the state the whole changelog gives; a batch's changes and its checkpoint
are written atomically (a failure or a kill -9 in mid-write leaves the previous batch whole); a
damaged, foreign or out-of-range store is wiped; the entity cache stays bounded."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.model import EntityState
from ledger.platform.clock import Clock
from ledger.records import submissions
from ledger.rules import loader
from ledger.sequencer import store
from ledger.sequencer.core import Changes, Seen, Sequencing, changelog_records, changes_of
from ops import workload
from tests.fakes import with_stores
from tests.unit.test_sequencing import KEYS, PEPPER, PUBLIC

RULES = loader.load()
RES = store.Resources(cache_mib=8)


def _sequencing(cache_entities: int = 10_000) -> Sequencing:
    clock = Clock.on(date(2026, 11, 27))
    return with_stores(Sequencing(PUBLIC, PEPPER, RULES, today=clock.today, now=clock.now,
                                  cache_entities=cache_entities))


def _changelog(core: Sequencing, n: int, partition: int = 0) -> list[dict[str, Any]]:
    """Judge n penalties (several per entity, a few submitted twice), committing each, and return the
    changelog records of `partition` in log order, as the sequencer writes them."""
    rng = random.Random(n)
    subjects = workload.subjects(rng, 40)
    out: list[dict[str, Any]] = []
    offset = 0
    for i in range(n):
        rec = workload.penalty(rng, subjects[i % len(subjects)], "xc-samr", i, decided=date(2026, 10, 1))
        key, value, headers = submissions.make(rec, "xc-samr", KEYS["xc-samr"][0])
        p = submissions.partition_of(key)
        for _ in range(2 if i % 7 == 0 else 1):  # some duplicates
            v = core.judge(p, offset, key, value, dict(headers))
            offset += 1
            if v.status == "ACCEPTED":
                seen = core.record_position(p, v, offset)
                if p == partition:
                    out.extend(r for _k, r in changelog_records(v, seen))
            core.commit({p: offset})
    return out


def _contents(s: store.PartitionStore, changelog: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    entities = {r["entity"]["entity_id"] for r in changelog if r["entity"]}
    ids = {r["seen"]["event_id"] for r in changelog if r["seen"]}
    return {e: s.get_entity(e) for e in entities}, {i: s.get_seen(i) for i in ids}


def test_store_plus_tail_equals_the_whole_changelog_and_the_live_state(tmp_path: Path) -> None:
    core = _sequencing()
    changelog = _changelog(core, 400)  # every changelog record of partition 0, in log order
    assert len(changelog) > 100
    cut = len(changelog) // 2 + 1  # (odd: the checkpoint falls between an event's two records)
    partial = store.PartitionStore(tmp_path / "a", 0, RES)
    partial.apply_batch(changes_of(changelog[:cut]), cut)
    partial.close()
    reopened, wiped = store.open_checked(tmp_path / "a", 0, RES, 0, len(changelog))
    assert wiped is None and reopened.checkpoint() == cut
    reopened.apply_batch(changes_of(changelog[reopened.checkpoint():]), len(changelog))
    whole = store.PartitionStore(tmp_path / "b", 0, RES)
    whole.apply_batch(changes_of(changelog), len(changelog))
    live = core.stores[0]
    assert isinstance(live, store.PartitionStore)
    assert _contents(reopened, changelog) == _contents(whole, changelog) == _contents(live, changelog)
    assert store.PartitionStore(tmp_path / "c", 0, RES).get_seen("nope") is None


class _Unwritable(EntityState):
    def as_plain(self) -> dict[str, Any]:  # what the store serialises: fails half-way through the batch
        raise OSError("the disk is gone")


def test_a_batch_that_fails_while_being_written_leaves_the_previous_batch_and_its_checkpoint(tmp_path: Path) -> None:
    s = store.PartitionStore(tmp_path, 1, RES)
    h = bytes(32)
    s.apply_batch(Changes({"a": ('{"v": 1}', h)}, {"e1": Seen(h, "a", 1, 1, 10)}), 5)
    failing = Changes({"a": ('{"v": 2}', h), "b": (_Unwritable(), h)}, {"e2": Seen(h, "a", 2, 1, 11)})
    with pytest.raises(OSError):
        s.apply_batch(failing, 9)
    assert (s.checkpoint(), s.get_entity("a"), s.get_seen("e2")) == (5, ('{"v": 1}', h), None)


_WRITER = """
import sys
from pathlib import Path
from ledger.sequencer import store
from ledger.sequencer.core import Changes, Seen
s = store.PartitionStore(Path(sys.argv[1]), 0, store.Resources(cache_mib=8))
n = (s.checkpoint() or 0)
print("ready", flush=True)
h = bytes(32)
while True:  # batch n: 500 event ids n:0 .. n:499, then checkpoint n + 1
    n += 1
    s.apply_batch(Changes({}, {f"{n}:{i}": Seen(h, "x", n, 0, i) for i in range(500)}), n)
"""


def test_a_kill_in_mid_write_leaves_whole_batches_with_their_checkpoint(tmp_path: Path) -> None:
    for pause in (0.3, 0.05, 0.5):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE,
                                cwd=Path(__file__).resolve().parents[2])
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(pause)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        s = store.PartitionStore(tmp_path, 0, RES)
        n = s.checkpoint()
        assert n is not None and n > 0
        assert all(s.get_seen(f"{n}:{i}") is not None for i in (0, 250, 499)), "the checkpointed batch is whole"
        assert all(s.get_seen(f"{n + 1}:{i}") is None for i in (0, 250, 499)), "nothing of the next one"
        s.close()


@pytest.mark.parametrize("damage", ["out_of_range_high", "out_of_range_low", "garbage", "other_partition"])
def test_a_damaged_foreign_or_out_of_range_store_is_wiped(tmp_path: Path, damage: str) -> None:
    s = store.PartitionStore(tmp_path, 0, RES)
    s.apply_batch(Changes({}, {"e1": Seen(bytes(32), "a", 1, 0, 0)}), 50)
    s.close()
    begin, end, partition = 0, 100, 0
    if damage == "out_of_range_high":
        end = 20  # the topic was recreated and holds fewer records than the store covers
    elif damage == "out_of_range_low":
        begin = 60
    elif damage == "garbage":
        for f in store.path_for(tmp_path, 0).iterdir():
            if f.name.startswith(("CURRENT", "MANIFEST")):
                f.write_bytes(b"not a rocksdb file")
    else:
        store.path_for(tmp_path, 0).rename(store.path_for(tmp_path, 1))
        partition = 1
    fresh, reason = store.open_checked(tmp_path, partition, RES, begin, end)
    assert reason is not None and str(store.path_for(tmp_path, partition)) in reason
    assert fresh.checkpoint() is None and fresh.get_seen("e1") is None


def test_a_usable_store_is_kept(tmp_path: Path) -> None:
    s = store.PartitionStore(tmp_path, 2, RES)
    s.apply_batch(Changes(), 7)
    s.close()
    again, reason = store.open_checked(tmp_path, 2, RES, 0, 7)
    assert reason is None and again.checkpoint() == 7


def test_the_entity_cache_stays_bounded_and_a_state_evicted_is_read_back_from_the_store() -> None:
    core = _sequencing(cache_entities=5)
    _changelog(core, 120)  # 40 subjects, three events each: every one evicted and read back at least once
    assert len(core._cache) <= 5
    for p, s in core.stores.items():
        assert isinstance(s, store.PartitionStore)
        for (q, entity_id), (state, _h) in core._cache.items():
            if q == p:
                stored = s.get_entity(entity_id)
                assert stored is not None and EntityState.from_json(stored[0]).version == state.version == 3


def test_the_sequencers_state_text_is_the_domains_json() -> None:
    """The sequencer writes states with orjson (state_text); the text must be EntityState.to_json's."""
    import random
    from datetime import date

    from ledger.domain.model import EntityState, evolve
    from ledger.records.events import event_of
    from ledger.sequencer.core import state_text
    from ops import workload
    rng = random.Random(5)
    subjects = workload.subjects(rng, 20, persons_share=0.3)
    states: dict[int, EntityState] = {}
    for i in range(400):
        rec = workload.penalty(rng, subjects[i % 20], "xc-samr", i, decided=date(2026, 11, 1))
        states[i % 20] = evolve(states.get(i % 20, EntityState()), event_of(rec, entity_id=f"e{i % 20}"))
        assert state_text(states[i % 20]) == states[i % 20].to_json()

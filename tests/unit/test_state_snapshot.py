"""Local snapshots of the sequencer's state: a snapshot plus the changelog after it restores exactly
the state that the whole changelog restores; damaged, foreign or other-version files are refused,
never half-read."""

from __future__ import annotations

import random
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ledger.platform.clock import Clock
from ledger.records import submissions
from ledger.rules import loader
from ledger.sequencer import store as state_snapshot
from ledger.sequencer.core import Sequencing, changelog_records
from ops import workload
from tests.unit.test_sequencing import KEYS, PEPPER, PUBLIC

RULES = loader.load()


def _sequencing() -> Sequencing:
    clock = Clock.on(date(2026, 11, 27))
    core = Sequencing(PUBLIC, PEPPER, RULES, today=clock.today, now=clock.now)
    for p in range(4):
        core.restore(p, [])
    return core


def _changelog(core: Sequencing, n: int, partition: int = 0) -> list[dict[str, Any]]:
    """Judge n penalties (several per entity, a few submitted twice) and return the changelog records of
    `partition` in log order, as the sequencer writes them."""
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
            core.commit()
    return out


def _canonical(core: Sequencing, partition: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A partition's state with every entity state as canonical JSON (a restored state stays JSON
    until the entity's next event)."""
    ps = core.partitions[partition]
    return ({k: (s if isinstance(s, str) else s.to_json(), h) for k, (s, h) in ps.entities.items()}, dict(ps.seen))


def test_snapshot_plus_tail_equals_the_whole_changelog(tmp_path: Path) -> None:
    core = _sequencing()
    changelog = _changelog(core, 400)  # every changelog record of partition 0, in log order
    assert len(changelog) > 100
    cut = len(changelog) // 2 + 1  # (odd: the snapshot falls between an event's two records)
    # the state after the first part, as a snapshot at changelog offset `cut`
    first = _sequencing()
    first.restore(0, changelog[:cut])
    state_snapshot.write(tmp_path, 0, cut, first.frozen_state(0))

    snap = state_snapshot.read(tmp_path, 0)
    assert snap is not None and snap.changelog_offset == cut
    from_snapshot = _sequencing()
    from_snapshot.restore(0, changelog[cut:], snap.state)
    whole = _sequencing()
    whole.restore(0, changelog)
    assert _canonical(from_snapshot, 0) == _canonical(whole, 0) == _canonical(core, 0)
    # and the restored state judges like the original: a known id is a duplicate, the next version follows
    assert from_snapshot.partitions[0].seen.keys() == core.partitions[0].seen.keys()


def test_no_snapshot_is_none(tmp_path: Path) -> None:
    assert state_snapshot.read(tmp_path, 3) is None


@pytest.mark.parametrize("damage", ["truncate", "flipped_byte", "garbage", "other_partition", "other_python"])
def test_a_damaged_or_foreign_snapshot_is_refused(tmp_path: Path, damage: str) -> None:
    core = _sequencing()
    _changelog(core, 50)
    path = state_snapshot.write(tmp_path, 0, 10, core.frozen_state(0))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) - 10])
    elif damage == "flipped_byte":
        path.write_bytes(data[:-20] + bytes([data[-20] ^ 1]) + data[-19:])
    elif damage == "garbage":
        path.write_bytes(b"not a snapshot at all")
    elif damage == "other_python":
        mine = f'"python": [{sys.version_info[0]}, {sys.version_info[1]}]'.encode()
        assert mine in data
        path.write_bytes(data.replace(mine, b'"python": [2, 7]', 1))
    else:
        path.rename(state_snapshot.path_for(tmp_path, 1))
    with pytest.raises(state_snapshot.SnapshotUnusable) as info:
        state_snapshot.read(tmp_path, 1 if damage == "other_partition" else 0)
    assert str(path.parent) in str(info.value)

"""Full disks (issue 18, item 5), on a second, small stack beside the test stack: its own broker (log
directory on a 256 MiB tmpfs), its own PostgreSQL (data directory on a 384 MiB tmpfs) and its own
sequencer and projector, on ports of the test stack's block (bench/faults.py). The tmpfs are mounted
by the test (it runs as root, as CI does) and filled with a file to their last byte.

Given views the projector has written, when PostgreSQL's disk fills up and a backlog arrives, then the projector
stops projecting without exiting, says why in its log and in `ledger_projection_paused{reason="disk_full"}`,
and resumes by itself once the file is removed; the views equal a fresh rebuild. Given a stream of
submissions, when the broker's disk fills up, then the producers get errors (the broker cannot append;
Kafka stops a broker whose only log directory fails), nothing acknowledged before is lost, and once there
is room again and the broker is started again, the stream goes on: every acknowledged submission is
in the ledger once, with contiguous versions."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from aiokafka.errors import KafkaError

from bench import faults
from consumers.projector.rebuild import rebuild
from ledger.platform import config
from ops import stack as ops_stack
from tests import helpers
from tests.integration.test_sequencer_kill import penalties

KAFKA_MIB, PG_MIB = 256, 384
# WAL segments PostgreSQL is made to keep for reuse before the disk is filled: a full disk then meets
# a table or an index that grows (an ERROR, SQLSTATE 53100), not a new WAL segment (which PostgreSQL
# cannot write and answers with a PANIC and a restart: the projector meets that as a lost database)
WAL_SEGMENTS = 8


def _mount(path: Path, mib: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0755", "tmpfs", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"mount -t tmpfs on {path} failed (the full-disk tests run as root): {r.stderr}"


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: Path) -> Path:
    """A file that takes every free byte of the filesystem of `directory`."""
    filler = directory / "filler"
    with open(filler, "wb") as f:
        st = os.statvfs(directory)
        try:
            os.posix_fallocate(f.fileno(), 0, st.f_bavail * st.f_frsize)
        except OSError:
            pass
        f.seek(0, os.SEEK_END)
        block = b"\0" * 65536
        try:  # whatever fallocate left (a few blocks of metadata)
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass
    return filler


class SmallDisks:
    """The second stack: settings on ports of the test stack's block, its Kafka data and PostgreSQL
    directories on tmpfs mounts, the test stack's keys."""

    def __init__(self, s: config.Settings) -> None:
        self.kept = s.stack_dir / "logs" / "small-disks"  # its logs, kept after the test
        self.s = dataclasses.replace(s, stack_dir=s.stack_dir / "small-disks",
                                     kafka_port=faults.port(s, faults.SIDE_KAFKA_PORT),
                                     pg_port=faults.port(s, faults.SIDE_PG_PORT),
                                     metrics_base_port=faults.port(s, faults.SIDE_METRICS_BASE))
        self.kafka = ops_stack.Kafka(self.s)
        self.pg = ops_stack.Postgres(self.s)
        self.sequencer = ops_stack.Service(self.s, "sequencer")
        self.projector = ops_stack.Service(self.s, "projector")

    def up(self) -> None:
        _mount(self.kafka.data, KAFKA_MIB)
        _mount(self.pg.dir, PG_MIB)
        ops_stack.up(self.s, services=False)
        with psycopg.connect(self.s.pg_dsn, autocommit=True) as conn:
            conn.execute("create table if not exists wal_warmup (x int)")
            for _ in range(WAL_SEGMENTS):
                conn.execute("insert into wal_warmup values (1)")
                conn.execute("select pg_switch_wal()")
            conn.execute("checkpoint")  # the segments before it are kept as the next ones (min_wal_size)
        self.sequencer.start()

    def down(self) -> None:
        try:
            ops_stack.down(self.s)
        finally:
            _umount(self.kafka.data)
            _umount(self.pg.dir)
            shutil.rmtree(self.kept, ignore_errors=True)
            for logs in (self.s.stack_dir / "logs", self.kafka.logs):
                if logs.exists():
                    shutil.copytree(logs, self.kept / logs.parent.name / logs.name, dirs_exist_ok=True)
            shutil.rmtree(self.s.stack_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def small(settings, stack) -> Iterator[SmallDisks]:  # type: ignore[no-untyped-def]
    disks = SmallDisks(settings)
    try:
        disks.up()
        yield disks
    finally:
        disks.down()


def _positions(s: config.Settings) -> int:
    return sum(helpers.view_positions(s).values())


async def test_a_full_database_disk_pauses_the_projector_which_resumes_when_there_is_room(small) -> None:
    s = small.s
    pairs = [("xc-samr", r) for r in penalties("disk-full-pg", 8_000, subjects=2000)]
    ids = {r["envelope"]["event_id"] for _, r in pairs}
    first = {r["envelope"]["event_id"] for _, r in pairs[:2000]}
    mark = faults.log_size(small.projector)
    await asyncio.to_thread(small.projector.start)
    await faults.send(s, pairs[:2000], timeout=300)
    await faults.views_hold(s, first)  # the projector has written views before the disk fills
    filler = fill(small.pg.dir)
    try:
        # the rest is the backlog the projector works through on the full disk (the broker's disk has room)
        await faults.send(s, pairs[2000:], timeout=300)
        await faults.ledger_holds(s, ids)
        await faults.until(lambda: helpers.metric(s, "projector", "ledger_projection_paused", 'reason="disk_full"') == 1,
                           120, "the projector to pause")
        said = faults.log_since(small.projector, mark)
        assert "the database cannot store the projection" in said and "No space left on device" in said
        held = _positions(s)
        await asyncio.sleep(5)
        assert small.projector.pid(), "the projector waits, it does not exit"
        assert 2000 <= _positions(s) == held < sum((await helpers.end_offsets(s)).values()), "paused in mid-backlog"
    finally:
        filler.unlink()
    await faults.views_hold(s, ids, timeout=300)
    assert helpers.metric(s, "projector", "ledger_projection_paused", 'reason="disk_full"') == 0
    assert "projection resumed" in faults.log_since(small.projector, mark)
    assert await rebuild(s) == 0, "the views differ from a fresh rebuild"


async def test_a_full_broker_disk_fails_the_producers_and_loses_nothing_acknowledged(small) -> None:
    s = small.s
    await asyncio.to_thread(small.projector.start)
    pairs = [("xc-samr", r) for r in penalties("disk-full-kafka", 3000, subjects=600)]
    acknowledged: list[dict] = []  # type: ignore[type-arg]
    sending = asyncio.create_task(faults.stream(s, pairs, 100, 0.1, acknowledged))
    await faults.until(lambda: len(acknowledged) >= 500, 120, "500 submissions acknowledged")
    before = {o["event_id"] for o in acknowledged}
    sequencer = small.sequencer.pid()
    filler = fill(small.kafka.data)
    try:
        # the next append fails (No space left on device): Kafka takes the log directory offline, and
        # with its only one offline, stops the broker; a department's producer gets an error
        await faults.until(lambda: not small.kafka.pid(), 120, "the broker to stop on its full disk")
        with pytest.raises(KafkaError):
            await faults.send(s, [("xc-samr", r) for r in penalties("disk-full-late", 5)], attempts=1, timeout=10)
    finally:
        filler.unlink()
    server_log = (small.kafka.logs / "server.log").read_text(errors="replace")
    assert "No space left on device" in server_log and "have failed" in server_log
    await asyncio.to_thread(small.kafka.start)  # room again: the operator starts the broker again
    await sending
    # the sequencer waited for the broker and went on (docs/architecture.md, "When the broker goes away")
    assert small.sequencer.pid() == sequencer
    ids = {r["envelope"]["event_id"] for _, r in pairs}
    assert {o["event_id"] for o in acknowledged} == ids
    await faults.ledger_holds(s, ids)  # (those acknowledged before the disk filled among them)
    assert before <= ids
    await faults.views_hold(s, ids, timeout=300)
    assert await rebuild(s) == 0, "the views differ from a fresh rebuild"

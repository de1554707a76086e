"""Benchmark: the real rebuild command over N ledger entries, end to end (projection, indexes, digests, switch).

    PYTHONPATH=. .venv/bin/python -m bench.rebuild [--events 1000000] [--workers 2] [--seed 7]
                                                   [--base 200000 | --real [--builders 2] [--chunk 200000]]
                                                   [--ledger-only | --use-ledger] [--fill {projector,rebuild,none}]

It WRITES THE LEDGER (credit.events), so it refuses to run unless credit.events is empty: run it on
a throw-away stack, e.g. `LEDGER_STACK_DIR=$PWD/.stack-bench ops/stack up --infra-only` with ports of
your own, and `ops/stack purge` afterwards.

1. Builds N sealed LedgerEntry records (bench.projection.build: real signed submissions, valid
   per-entity chains, the projection benchmark's mix) and writes them to credit.events, each in the
   partition of its key. With --real every entry is real: --builders processes (default 2) each build
   the entities whose id falls to them (crc32 of the id modulo the builders), in chunks of about
   --chunk entries written as each is built, an entity drawn again going on from its last version;
   about 0.15 ms of CPU per entry (30 s per chunk of 200,000 with one builder on a free machine: 10
   million in about 25 minutes, and by that about half with two builders; 41 minutes measured with
   one builder on a machine shared with the test suite, docs/benchmarks.md). --ledger-only
   stops there (the ledger stays in the stack); --use-ledger measures on the ledger an earlier
   --ledger-only run wrote, instead of building one. Without --real, --base B builds B real entries
   once and writes ceil(N / B) REPLICAS of them:
   replica k renames every entity (the first two characters of its code or pseudonym become k) and
   every event id (its first two hex digits become k) consistently in the entry and inside the
   submission bytes (same-length substitution, so the Avro stays valid), and re-seals each entity's
   hash chain. The projection does the same work per entry as for distinct real entries; the
   department signatures of renamed submissions no longer match (the projector does not check them:
   the sequencer did) and a natural person's clear ID number repeats across replicas.
2. Fills the live views from them, so that the rebuild has live views to compare with: by default
   2 projector processes (as the rebuild does); with --fill rebuild, by a first run of the rebuild
   command itself onto the empty live views with --force (timed and printed too); with --fill none,
   the live views are used as an earlier run left them. Neither is the figure.
3. Runs `python -m consumers.projector.rebuild --workers W` as a child process and times it from start to exit:
   fresh schema, projection from offset 0, building the secondary indexes, the catch-up under the
   switch lock, the digest of every table of both schemas, the switch. Its own lines (progress,
   phases) are shown. CPU time of the command and its workers, PostgreSQL and the broker is read
   around it. The 10M figure printed at the end is an ESTIMATE (linear), labelled as such.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.projection import TEN_MILLION, Meter, build, infrastructure, machine
from consumers.projector import rebuild as rebuild_cmd
from ledger.platform import config, signing
from ledger.platform.kafka_access import ADMIN, KafkaAccess, access
from ledger.records import chain, submissions
from ledger.rules import loader
from schemas import registry


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


async def _write_ledger(kafka: KafkaAccess, chunks: Iterator[list[tuple[int, bytes, bytes]]], total: int) -> None:
    producer = AIOKafkaProducer(**kafka.options(), acks="all", enable_idempotence=True, linger_ms=5,
                                max_batch_size=262144, max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        pending, written, said = [], 0, time.monotonic()
        for entries in chunks:
            for partition, key, value in entries:
                pending.append(await producer.send(registry.EVENTS.name, value=value, key=key, partition=partition))
                if len(pending) >= 10_000:
                    await asyncio.gather(*pending)
                    written += len(pending)
                    pending = []
                    if time.monotonic() - said > 10:
                        _say(f"  written {written:,} of {total:,}")
                        said = time.monotonic()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def replicas(base: list[tuple[int, bytes, bytes]], total: int) -> Iterator[list[tuple[int, bytes, bytes]]]:
    """`total` entries as replicas of `base` (see the module's help), one list per replica."""
    decoded = [registry.decode(value, "LedgerEntry")[1] for _, _, value in base]
    idents = {e["entity_id"] for e in decoded}
    # renaming keeps the part after the first two characters: it must tell the entities apart
    assert len({i.split(":", 1)[0] + i.split(":", 1)[1][2:] for i in idents}) == len(idents), "tails collide"
    count = -(-total // len(decoded))
    assert count <= 36 * 36 and count <= 256, "too many replicas for two characters: give a larger --base"
    made = 0
    for k in range(count):
        tag36, tag16 = (BASE36[k // 36] + BASE36[k % 36]), f"{k:02x}"
        rename = {i: f"{i.split(':', 1)[0]}:{tag36 if i.startswith('uscc:') else tag16}{i.split(':', 1)[1][2:]}"
                  for i in idents}
        tag = tag16.encode()

        def retag(m: re.Match[bytes], tag: bytes = tag) -> bytes:
            return tag + m.group(0)[2:]

        chains: dict[str, tuple[int, bytes]] = {}
        out = []
        for e in decoded[:total - made]:
            old, new = e["entity_id"], rename[e["entity_id"]]
            sub = UUID.sub(retag, e["submission"])
            if old.startswith("uscc:"):  # the credit code in the subject, renamed like the entity
                sub = sub.replace(old[5:].encode(), new[5:].encode())
            version, prev = chains.get(new, (0, chain.GENESIS))
            assert e["entity_version"] == version + 1
            entry: dict[str, Any] = {**e, "entity_id": new, "submission": sub, "prev_hash": prev,
                                     "event_id": UUID.sub(retag, e["event_id"].encode()).decode(),
                                     "submission_offset": e["submission_offset"] + k * len(decoded)}
            sealed = chain.seal(entry)
            chains[new] = (version + 1, entry["hash"])
            key = new.encode()
            out.append((submissions.partition_of(key, registry.EVENTS.partitions), key, sealed))
        made += len(out)
        _say(f"  replica {k + 1} of {count}: {made:,} of {total:,} entries")
        yield out


def _builder(s: config.Settings, b: int, builders: int, total: int, seed: int, life_share: float, chunk: int,
             summary: Any) -> None:
    """Builder `b` of `builders` (a process of its own): `total` real entries for the entities whose id
    falls to it, built in chunks of about `chunk` and written to credit.events as each is built; its
    counts go to the queue `summary`."""
    def mine(entity_id: str) -> bool:
        return zlib.crc32(entity_id.encode()) % builders == b

    chains: dict[str, tuple[int, bytes]] = {}  # every entity of this builder: (version, hash)
    sub_offsets = [b * 10**12] * registry.EVENTS.partitions  # the submissions' positions, apart per builder
    private_key = signing.new_keypair()[0]
    by_type: dict[str, int] = {}

    def chunks() -> Iterator[list[tuple[int, bytes, bytes]]]:
        made, k = 0, 0
        while made < total:
            t0 = time.perf_counter()
            # drawn for every builder, built for this one: about `chunk` entries
            built = build(chunk * builders, seed * 1_000_000 + k * builders + b, life_share, s.id_pepper,
                          private_key, chains=chains, keep=mine, sub_offsets=sub_offsets)
            # the last chunk is cut: an entity's later versions are left out, its chain stays whole
            out = built.entries[:total - made]
            made, k = made + len(out), k + 1
            counted = built.by_type
            if len(out) < len(built.entries):  # the cut chunk: its types counted from what is written
                counted = {}
                for _, _, value in out:
                    name = registry.decode(value, "LedgerEntry")[1]["event_type"]
                    counted[name] = counted.get(name, 0) + 1
            for name, n in counted.items():
                by_type[name] = by_type.get(name, 0) + n
            _say(f"  builder {b + 1} of {builders}: chunk {k}, {len(out):,} entries in {time.perf_counter() - t0:.1f} s "
                 f"({made:,} of {total:,}; {len(chains):,} entities so far)")
            yield out

    asyncio.run(_write_ledger(access(s, ADMIN), chunks(), total))
    summary.put({"entities": len(chains), "by_type": by_type})


def build_real(s: config.Settings, events: int, builders: int, seed: int, life_share: float,
               chunk: int) -> tuple[int, dict[str, int]]:
    """A ledger of `events` real entries in credit.events, by `builders` processes; (entities, events by type)."""
    ctx = multiprocessing.get_context("spawn")
    summary = ctx.Queue()
    procs = [ctx.Process(target=_builder, args=(s, b, builders, events // builders + (b < events % builders), seed,
                                                life_share, chunk, summary), name=f"ledger-builder-{b}")
             for b in range(builders)]
    for proc in procs:
        proc.start()
    results = [summary.get() for _ in procs]  # before join: a full queue would hold its process back
    for proc in procs:
        proc.join()
        if proc.exitcode:
            sys.exit(f"{proc.name} failed (exit status {proc.exitcode})")
    by_type: dict[str, int] = {}
    for r in results:
        for name, n in r["by_type"].items():
            by_type[name] = by_type.get(name, 0) + n
    return sum(r["entities"] for r in results), by_type


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000, help="ledger entries to write (default 1,000,000)")
    p.add_argument("--workers", type=int, default=2, help="the rebuild's --workers (default 2)")
    p.add_argument("--life-share", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--base", type=int, default=None,
                   help="build this many real entries and write replicas of them up to --events (see above)")
    p.add_argument("--real", action="store_true",
                   help="build every entry for real, no replicas (--builders processes, chunks of --chunk)")
    p.add_argument("--builders", type=int, default=2, help="processes building a --real ledger (default 2)")
    p.add_argument("--chunk", type=int, default=200_000,
                   help="entries a builder builds and writes at a time (default 200,000; bounds its memory)")
    p.add_argument("--ledger-only", action="store_true",
                   help="write the ledger and stop (measure later with --use-ledger)")
    p.add_argument("--use-ledger", action="store_true",
                   help="measure on the ledger already in credit.events (an earlier --ledger-only run's)")
    p.add_argument("--force", action="store_true",
                   help="run the measured rebuild with --force: it switches over even when the live views differ "
                        "(with --fill none on empty live views: the rebuild then fills them, measured)")
    p.add_argument("--fill", choices=("projector", "rebuild", "none"), default="projector",
                   help="how the live views are filled before the measured rebuild (default projector; none: "
                        "as an earlier run left them)")
    a = p.parse_args()

    s = config.load()
    kafka, pg = infrastructure(s)
    present = sum(asyncio.run(rebuild_cmd.end_offsets(s)).values())
    if a.use_ledger and not present:
        sys.exit("--use-ledger needs a ledger in credit.events: write one first with --ledger-only")
    if present and not a.use_ledger:
        sys.exit("bench.rebuild writes credit.events and needs it empty: use a throw-away stack (see --help), "
                 "or --use-ledger to measure on the ledger it holds")
    facts = machine()
    t0 = time.perf_counter()
    if a.use_ledger:
        n, entities, what = present, None, "the ledger an earlier run wrote"
        _say(f"using the {n:,} entries already in {registry.EVENTS.name}")
    elif a.real:
        _say(f"building {a.events:,} real sealed ledger entries with {a.builders} builders (seed {a.seed}) and writing "
             f"them to {registry.EVENTS.name} as they are built ...")
        n = a.events
        entities, by_type = build_real(s, n, a.builders, a.seed, a.life_share, a.chunk)
        what = "every entry real"
        types = ", ".join(f"{k} {v:,}" for k, v in sorted(by_type.items(), key=lambda x: -x[1]))
        _say(f"  {n:,} entries for {entities:,} entities built and written in {time.perf_counter() - t0:.1f} s: {types}")
    else:
        real = min(a.base or a.events, a.events)
        _say(f"building {real:,} sealed ledger entries (seed {a.seed}) ...")
        built = build(real, a.seed, a.life_share, s.id_pepper)
        copies = -(-a.events // len(built.entries)) if a.base else 1
        _say(f"  {len(built.entries):,} entries for {built.entities:,} entities in {built.build_s:.1f} s; writing "
             + (f"{a.events:,} entries, {copies} replicas of them," if a.base else "them")
             + f" to {registry.EVENTS.name} ...")
        n = a.events if a.base else len(built.entries)
        asyncio.run(_write_ledger(access(s, ADMIN), replicas(built.entries, n) if a.base else iter([built.entries]), n))
        entities = built.entities * copies  # the last replica may hold only part of them
        what = f"{real:,} real entries and REPLICAS of them" if a.base else "every entry real"
        del built
        _say(f"  written in {time.perf_counter() - t0:.1f} s")
    end = asyncio.run(rebuild_cmd.end_offsets(s))
    assert sum(end.values()) == n, (end, n)
    if a.ledger_only:
        print(f"ledger      {n:,} entries in {registry.EVENTS.name} ({what}; seed {a.seed}); end offsets {end}; "
              f"written in {time.perf_counter() - t0:.1f} s; measure with --use-ledger")
        return
    t0 = time.perf_counter()
    if a.fill == "none":
        _say("the live views as an earlier run left them (--fill none)")
    elif a.fill == "rebuild":
        _say("filling the live views with a first rebuild onto the empty live views (--force; not the figure) ...")
        first = subprocess.run([sys.executable, "-m", "consumers.projector.rebuild", "--workers", str(a.workers), "--force"],
                               env={**os.environ, "PYTHONPATH": str(config.ROOT)}, stderr=subprocess.PIPE, text=True)
        fill_lines = [x for x in first.stderr.splitlines() if not x.lstrip().startswith(("[", "every record read"))]
        for x in fill_lines:
            _say(f"  | {x}")
        if first.returncode:
            sys.exit(f"the first rebuild failed (exit {first.returncode})")
        _say(f"  first rebuild (onto empty live views) took {time.perf_counter() - t0:.1f} s")
    else:
        _say("filling the live views (2 projector processes; not timed as the rebuild) ...")
        live = asyncio.run(rebuild_cmd.project_into(s, "views", end, 2, rules=loader.load()))
        _say(f"  {live:,} events in the live views in {time.perf_counter() - t0:.1f} s")

    _say(f"running python -m consumers.projector.rebuild --workers {a.workers}{' --force' if a.force else ''} ...")
    load_before = os.getloadavg()
    meter = Meter(pg.pid(), kafka.pid())
    meter.start()
    proc = subprocess.Popen([sys.executable, "-m", "consumers.projector.rebuild", "--workers", str(a.workers),
                             *(["--force"] if a.force else [])],
                            env={**os.environ, "PYTHONPATH": str(config.ROOT)}, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, tuple[str, int]] = {}
    sampler = threading.Thread(target=_sample_rss, args=(proc, peaks), daemon=True)
    sampler.start()
    stderr = proc.stderr.read() if proc.stderr else ""
    proc.wait()
    sampler.join()
    run = subprocess.CompletedProcess(proc.args, proc.returncode, None, stderr)
    cpu = meter.stop()
    # its lines, without the progress lines (the bar while reading, then the entity rows written)
    progress = [x for x in run.stderr.splitlines() if x.lstrip().startswith(("[", "every record read"))]
    lines = [x for x in run.stderr.splitlines() if x not in progress]

    print()
    print(f"Rebuild benchmark, {facts['date']}")
    print(f"machine     {facts['cpu']}, {facts['nproc']} cores, {facts['mem_gib']} GiB, Python {facts['python']}; "
          f"load average at start {facts['load'][0]:.2f} {facts['load'][1]:.2f} {facts['load'][2]:.2f}, "
          f"before the rebuild {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(f"ledger      {n:,} entries in {registry.EVENTS.name}"
          + (f" for up to {entities:,} entities" if entities is not None else "") + f" ({what}; seed {a.seed}); "
          f"end offsets {end}")
    print(f"command     python -m consumers.projector.rebuild --workers {a.workers}{' --force' if a.force else ''}: "
          f"exit status {run.returncode}, "
          f"{cpu['wall_s']:.1f} s wall = {n / cpu['wall_s']:,.0f} events/s end to end")
    for x in lines:
        print(f"            | {x}")
    bars = [x for x in progress if x.lstrip().startswith("[")]
    for last in (bars[-1:] + [x for x in progress if x not in bars][-1:]):
        print(f"            | (progress, last line) {last.strip()}")
    for pid, (name, kib) in sorted(peaks.items()):
        print(f"memory      peak resident set of {name} (pid {pid}, sampled every 0.5 s): {kib / 1024:,.0f} MiB")
    print(f"CPU         cores busy on average: rebuild and its workers {cpu['projector_cores']:.2f}, PostgreSQL "
          f"{cpu['postgres_cores']:.2f}, broker {cpu['broker_cores']:.2f}, other work {cpu['other_cores']:.2f}")
    if run.returncode:
        print(f"FAILED      the rebuild exited with status {run.returncode} after {cpu['wall_s'] / 60:,.1f} min: "
              f"no figure (its last lines above)")
    elif n < TEN_MILLION:
        print(f"ESTIMATE    (not a measurement) 10,000,000 events at this end-to-end rate: "
              f"{TEN_MILLION / (n / cpu['wall_s']) / 60:,.0f} min (target <= 5 min); linear from {n:,} events, it "
              f"ignores the growth of the tables and indexes beyond memory")
    else:
        print(f"MEASURED    {n:,} events rebuilt in {cpu['wall_s'] / 60:,.1f} min (target for 10,000,000: <= 5 min)")
    sys.exit(run.returncode)


def _sample_rss(proc: subprocess.Popen[str], peaks: dict[int, tuple[str, int]]) -> None:
    """The peak VmRSS of the rebuild command and of each of its worker processes, every 0.5 s until it exits."""
    while proc.poll() is None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            pid = int(entry)
            if pid != proc.pid and int(fields.get("PPid", "0").strip() or 0) != proc.pid:
                continue
            rss = int(fields.get("VmRSS", "0 kB").split()[0])
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    tracker = b"resource_tracker" in f.read()
            except OSError:
                continue
            name = ("the rebuild command" if pid == proc.pid else
                    "multiprocessing's resource tracker" if tracker else "a worker process")
            if rss > peaks.get(pid, ("", 0))[1]:
                peaks[pid] = (name, rss)
        time.sleep(0.5)


if __name__ == "__main__":
    main()

"""Producer ingest benchmark: Kafka's own ProducerPerformance against the project's Python producer path.

    PYTHONPATH=. .venv/bin/python -m bench.producer [--records N] [--repeat K] [--json] [--profile]

One run, one broker (the stack's, on LEDGER_KAFKA_PORT), one topic: `bench.producer`, deleted and
recreated at the start with the partition count of credit.submissions, so runs are comparable. Three
measurements, in this order (with --repeat K, K rounds of the three, and the median is reported):

1. Java: org.apache.kafka.tools.ProducerPerformance from the stack's own jars (ops/kafka/lib), N records
   of S bytes, S being the mean size of the project's Avro submission values, acks=all, idempotent,
   linger.ms=5, batch.size=262144, no throttling. Its final summary line is parsed.
2. Python, pre-encoded: N realistic penalty submissions (ops.workload.penalty + submissions.make_batch:
   Avro-encoded and batch-signed per department, 1,000 per signature, keys and headers as on
   credit.submissions) are built first and timed separately ("encode+batch sign rate"); then only
   sending them is timed, one `producer.send` each, with an AIOKafkaProducer configured like
   LedgerClient's (acks=all, idempotence, linger_ms=5, max_batch_size=262144), sends pipelined and
   their futures gathered in chunks, until every record is acknowledged.
3. Python, client path: the same records through the real ledger.client.LedgerClient (one per
   department, side by side, on the benchmark topic and not watching outcomes): `submit_many`
   encodes, batch-signs and sends whole Kafka record batches, until the broker acknowledged the last.
   Its ratio to Java's figure of the same run is printed beside it.

Around each measurement the CPU time of the producer, of the broker and of everything else on the
machine is read from /proc, so a figure taken while something else was busy can be recognised.

If Kafka is not running, the benchmark starts the infrastructure with ops.stack.up(settings,
services=False) and stops what it started at the end. The benchmark topic is deleted at the end
unless --keep-topic.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import logging
import os
import platform
import pstats
import random
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import uvloop

from bench import procfs
from ledger.client import BATCH_RECORDS, LedgerClient
from ledger.platform import config, signing
from ledger.platform.kafka_access import ADMIN, KafkaAccess, access
from ledger.records import submissions
from ops import infra, stack, workload
from schemas import registry

TOPIC = "bench.producer"
PERF_CLASS = "org.apache.kafka.tools.ProducerPerformance"
PRODUCER_PROPS = {"acks": "all", "enable.idempotence": "true", "linger.ms": "5", "batch.size": "262144"}
# The JVM flags of Kafka's bin/kafka-run-class.sh (KAFKA_JVM_PERFORMANCE_OPTS) with the heap of
# bin/kafka-producer-perf-test.sh. Deliberately not ops.infra.kafka_tool's flags: those cap the JIT at C1
# (-XX:TieredStopAtLevel=1), right for one-shot admin tools, wrong for a throughput measurement.
JVM_FLAGS = ["-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
             "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"]
# Kafka 4.4 prints e.g. "200000 records sent, 138792.505205 records/sec (70.02 MB/sec), 26.94 ms avg
# latency, 326.00 ms max latency, 12 ms 50th, 81 ms 95th, 127 ms 99th, 140 ms 99.9th."
SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th")
MB = 1024 * 1024  # ProducerPerformance's "MB" is MiB (bytes / 1024 / 1024)


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine facts and CPU


def machine_facts() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    jars = sorted(infra.KAFKA_LIB.glob("kafka-clients-*.jar"))
    kafka_version = jars[-1].stem.removeprefix("kafka-clients-") if jars else "unknown"
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr
        java_version = java.splitlines()[0] if java else "unknown"
    except (OSError, subprocess.SubprocessError):
        java_version = "unknown"
    import aiokafka
    import cryptography
    import fastavro

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "kafka": kafka_version,
        "java": java_version,
        "aiokafka": aiokafka.__version__,
        "fastavro": fastavro.__version__,
        "cryptography": cryptography.__version__,
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _own_cpu_s() -> float:
    t = os.times()  # this process and its waited-for children (the JVM of ProducerPerformance)
    return t.user + t.system + t.children_user + t.children_system


class Meter:
    """Wall time and CPU time (as cores busy on average) of the producer, the broker and the rest."""

    def __init__(self, broker_pid: int | None) -> None:
        self.broker_pid = broker_pid

    def start(self) -> None:
        self._t, self._own, self._broker, self._busy = (time.perf_counter(), _own_cpu_s(),
                                                        procfs.cpu_s(self.broker_pid), procfs.machine_busy_s())

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._t
        own = _own_cpu_s() - self._own
        broker = procfs.cpu_s(self.broker_pid) - self._broker
        other = max(0.0, procfs.machine_busy_s() - self._busy - own - broker)
        return {"wall_s": round(wall, 3), "producer_cores": round(own / wall, 2),
                "broker_cores": round(broker / wall, 2), "other_cores": round(other / wall, 2)}


# --------------------------------------------------------------------------- the topic


async def recreate_topic(kafka: KafkaAccess, name: str = TOPIC) -> None:
    """Delete `name` if it exists, wait until it is gone, create it again like credit.submissions."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        if name in await admin.list_topics():
            await admin.delete_topics([name])
            deadline = time.monotonic() + 60
            while name in await admin.list_topics():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topic {name} was not deleted within 60 s")
                await asyncio.sleep(0.2)
        t = registry.SUBMISSIONS
        deadline = time.monotonic() + 60
        while True:  # right after a delete the broker may still answer TOPIC_ALREADY_EXISTS (36)
            resp = await admin.create_topics([NewTopic(name, t.partitions, 1, topic_configs=t.configs)])
            errors = [(code, msg) for _, code, *msg in resp.topic_errors if code]
            if not errors:
                break
            if errors[0][0] != 36 or time.monotonic() > deadline:
                raise RuntimeError(f"creating topic {name} failed: {errors}")
            await asyncio.sleep(0.5)
        deadline = time.monotonic() + 60
        while True:  # every partition has a leader before anyone produces
            described = await admin.describe_topics([name])
            parts = described[0]["partitions"] if described and not described[0]["error_code"] else []
            if len(parts) == t.partitions and all(p["leader"] >= 0 for p in parts):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {name} has no leader for every partition after 60 s")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def delete_topic(kafka: KafkaAccess, name: str = TOPIC) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        if name in await admin.list_topics():
            await admin.delete_topics([name])
    finally:
        await admin.close()


# --------------------------------------------------------------------------- the workload


def build_records(n: int, seed: int) -> list[dict[str, Any]]:
    """N penalty records from the three penalty departments, deterministic for a seed."""
    rng = random.Random(seed)
    subjects = workload.subjects(rng, max(1, min(n, 5000)))
    departments = list(workload.PENALTY_DEPARTMENTS)
    return [workload.penalty(rng, rng.choice(subjects), departments[i % len(departments)], seq=i)
            for i in range(n)]


Submission = tuple[bytes, bytes, list[tuple[str, bytes]]]


def by_department(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault(r["envelope"]["source_department"], []).append(r)
    return out


def encode_all(records: list[dict[str, Any]], keys: dict[str, str]) -> list[Submission]:
    """Each department's records encoded and signed in batches of BATCH_RECORDS, as LedgerClient does."""
    out: list[Submission] = []
    for d, recs in by_department(records).items():
        for i in range(0, len(recs), BATCH_RECORDS):
            out += submissions.make_batch(recs[i:i + BATCH_RECORDS], d, keys[d])
    return out


def freeze(on: bool) -> None:
    """Move everything alive now (the pre-built workload) out of the cyclic collector's reach. Without
    it every full collection walks the benchmark's own N records again, which slows the measured loops;
    a producer streaming from a source holds no such heap. --no-gc-freeze keeps it in (as
    `python -m ledger.client FILE`, which reads the whole file first, would)."""
    if on:
        gc.collect()
        gc.freeze()


# --------------------------------------------------------------------------- Java


def java_command(kafka: KafkaAccess, n: int, size: int) -> list[str]:
    props = [f"{a}={b}" for a, b in PRODUCER_PROPS.items()]
    return [infra.java_binary(), *JVM_FLAGS, f"-Dlog4j2.configurationFile={infra.KAFKA_HOME / 'tools-log4j2.yaml'}",
            "-cp", infra.kafka_classpath(), PERF_CLASS, "--topic", TOPIC, "--num-records", str(n), "--record-size",
            str(size), "--throughput", "-1", "--bootstrap-server", kafka.bootstrap_servers, "--command-config",
            str(infra.client_properties(kafka, config.load().stack_dir / "kafka")), "--command-property", *props]


def run_java(cmd: list[str], meter: Meter) -> dict[str, Any]:
    meter.start()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    cpu = meter.stop()
    if r.returncode != 0:
        raise RuntimeError(f"{PERF_CLASS} failed (exit {r.returncode}):\n{(r.stderr or r.stdout)[-2000:]}")
    matches = [m for m in (SUMMARY.search(line) for line in r.stdout.splitlines()) if m]
    if not matches:
        raise RuntimeError(f"no summary line in the {PERF_CLASS} output:\n{r.stdout[-2000:]}")
    m = matches[-1]
    return {
        "summary_line": m.group(0) + ".",
        "records": int(m["records"]), "records_per_s": float(m["rps"]), "mb_per_s": float(m["mbps"]),
        "avg_latency_ms": float(m["avg"]), "max_latency_ms": float(m["max"]),
        "p50_ms": int(m["p50"]), "p95_ms": int(m["p95"]), "p99_ms": int(m["p99"]), "p999_ms": int(m["p999"]),
        "cpu": {**cpu, "note": "over the JVM's whole life, start-up included"},
    }


# --------------------------------------------------------------------------- Python


def _producer(kafka: KafkaAccess) -> Any:
    from aiokafka import AIOKafkaProducer

    # As LedgerClient.start builds it.
    return AIOKafkaProducer(**kafka.options(), enable_idempotence=True, acks="all", linger_ms=5,
                            max_batch_size=262144)


async def _timed_sends(kafka: KafkaAccess, n: int, chunk: int, meter: Meter,
                       one: Callable[[int], tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> dict[str, float]:
    """Send records 0..n-1 (`one(i)` gives key, value, headers) and wait for every acknowledgement.
    Futures are gathered a chunk behind, so the producer always has the next chunk to batch while
    the previous one is in flight. Producer start-up (connection, metadata, producer id) is not timed."""
    producer = _producer(kafka)
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, b"warm-up")
        send = producer.send
        pending: list[Any] = []
        meter.start()
        for i in range(0, n, chunk):
            futs = []
            for j in range(i, min(i + chunk, n)):
                k, v, h = one(j)
                futs.append(await send(TOPIC, key=k, value=v, headers=h))
            if pending:
                await asyncio.gather(*pending)
            pending = futs
        await asyncio.gather(*pending)
        return meter.stop()
    finally:
        await producer.stop()


def send_pre_encoded(kafka: KafkaAccess, subs: list[Submission], chunk: int, meter: Meter) -> dict[str, float]:
    return asyncio.run(_timed_sends(kafka, len(subs), chunk, meter, subs.__getitem__))


def send_client_path(kafka: KafkaAccess, records: list[dict[str, Any]], keys: dict[str, str], chunk: int,
                     meter: Meter) -> dict[str, float]:
    """The real client: one LedgerClient per department (on the benchmark topic, not watching outcomes),
    each `submit_many` of its records (encode, batch-sign, send as whole Kafka record batches) run
    side by side, until the broker acknowledged the last. Client start-up is not timed."""
    return uvloop.run(_client_path(kafka, by_department(records), keys, meter))


async def _client_path(kafka: KafkaAccess, per_department: dict[str, list[dict[str, Any]]], keys: dict[str, str],
                       meter: Meter) -> dict[str, float]:
    clients = [LedgerClient(kafka, d, keys[d], topic=TOPIC) for d in per_department]
    try:
        for c in clients:
            await c.start(watch_outcomes=False)
            await c.producer.send_and_wait(TOPIC, b"warm-up")
        meter.start()
        await asyncio.gather(*(c.submit_many(per_department[c.department]) for c in clients))
        return meter.stop()
    finally:
        for c in clients:
            await c.stop()


def profile_client_path(kafka: KafkaAccess, records: list[dict[str, Any]], keys: dict[str, str], chunk: int,
                        top: int = 25) -> str:
    prof = cProfile.Profile()
    prof.enable()
    send_client_path(kafka, records, keys, chunk, Meter(None))
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    s = config.load()
    kafka, pg = stack.Kafka(s), stack.Postgres(s)
    kafka_was_up, pg_was_up = kafka.pid() is not None, pg.running()
    if not kafka_was_up:
        _say("Kafka is not running: starting the infrastructure (ops.stack.up, services=False)")
        stack.up(s, services=False)
    try:
        return _measure(args, s, kafka.pid())
    finally:
        if not args.keep_topic:
            try:
                asyncio.run(delete_topic(access(s, ADMIN)))
            except Exception as exc:  # the numbers matter more than the cleanup
                _say(f"could not delete {TOPIC}: {exc}")
        if not kafka_was_up:
            _say("stopping what this benchmark started")
            kafka.stop()
            if not pg_was_up:
                pg.stop()


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    mid = statistics.median_low(r["records_per_s"] for r in runs)
    return next(r for r in runs if r["records_per_s"] == mid)


def _python_result(n: int, value_bytes: int, cpu: dict[str, float]) -> dict[str, Any]:
    return {"records_per_s": round(n / cpu["wall_s"], 1), "mb_per_s": round(value_bytes / MB / cpu["wall_s"], 2),
            "cpu": cpu}


def _measure(args: argparse.Namespace, s: config.Settings, broker_pid: int | None) -> dict[str, Any]:
    n = args.records
    facts = machine_facts()
    keys = {d: signing.private_key(s.keys_dir, d) for d in workload.PENALTY_DEPARTMENTS}
    meter = Meter(broker_pid)

    _say(f"building {n} penalty records (seed {args.seed})")
    t0 = time.perf_counter()
    records = build_records(n, args.seed)
    gen_s = time.perf_counter() - t0
    freeze(args.gc_freeze)

    _say("encoding + signing them (timed separately)")
    t0 = time.perf_counter()
    subs = encode_all(records, keys)
    enc_s = time.perf_counter() - t0
    freeze(args.gc_freeze)
    sizes = [len(v) for _, v, _ in subs]
    size = round(statistics.fmean(sizes))
    value_bytes = sum(sizes)
    key_header_bytes = statistics.fmean(len(k) + sum(len(hk) + len(hv) for hk, hv in h) for k, _, h in subs)

    _say(f"recreating topic {TOPIC} ({registry.SUBMISSIONS.partitions} partitions)")
    asyncio.run(recreate_topic(access(s, ADMIN)))
    cmd = java_command(access(s, ADMIN), n, size)

    java_runs: list[dict[str, Any]] = []
    pre_runs: list[dict[str, Any]] = []
    client_runs: list[dict[str, Any]] = []
    for rnd in range(1, args.repeat + 1):
        tag = f"round {rnd}/{args.repeat}: " if args.repeat > 1 else ""
        _say(f"{tag}Java {PERF_CLASS}: {n} records of {size} bytes")
        java_runs.append(run_java(cmd, meter))
        _say(f"  {java_runs[-1]['summary_line']}")
        _say(f"{tag}Python producer, pre-encoded: {n} records")
        pre_runs.append(_python_result(n, value_bytes, send_pre_encoded(access(s, ADMIN), subs, args.chunk,
                                                                        meter)))
        _say(f"  {pre_runs[-1]['records_per_s']:,.0f} records/s")
        _say(f"{tag}Python client path (LedgerClient: encode + batch sign + send): {n} records")
        client_runs.append(_python_result(n, value_bytes, send_client_path(access(s, ADMIN), records, keys,
                                                                           args.chunk, meter)))
        _say(f"  {client_runs[-1]['records_per_s']:,.0f} records/s")
    del subs

    profile = None
    if args.profile:
        m = min(n, args.profile_records)
        _say(f"profiling the client path over {m} records (cProfile; not part of the figures)")
        profile = profile_client_path(access(s, ADMIN), records[:m], keys, args.chunk)

    java, pre, client = _median_run(java_runs), _median_run(pre_runs), _median_run(client_runs)
    shown = ["java", "-Xmx512m", "-XX:+UseG1GC", "...", "-cp", "'ops/kafka/lib/*'", *cmd[cmd.index(PERF_CLASS):]]
    return {
        "records": n,
        "repeat": args.repeat,
        "record_size_bytes": size,
        "value_size_min_max": [min(sizes), max(sizes)],
        "key_and_headers_bytes_mean": round(key_header_bytes, 1),
        "topic": TOPIC,
        "partitions": registry.SUBMISSIONS.partitions,
        "producer_config": PRODUCER_PROPS,
        "chunk": args.chunk,
        "gc_frozen": args.gc_freeze,
        "java_command": " ".join(shown),
        "java": java,
        "python_pre_encoded": pre,
        "python_client_path": client,
        "encode_sign": {"seconds": round(enc_s, 3), "records_per_s": round(n / enc_s, 1)},
        "workload_generation": {"seconds": round(gen_s, 3), "records_per_s": round(n / gen_s, 1)},
        "ratio_pre_encoded_to_java": round(pre["records_per_s"] / java["records_per_s"], 3),
        "ratio_client_path_to_java": round(client["records_per_s"] / java["records_per_s"], 3),
        "runs": {"java": java_runs, "python_pre_encoded": pre_runs, "python_client_path": client_runs},
        "machine": facts,
        "profile": profile,
    }


def table(r: dict[str, Any]) -> str:
    j, pre, cli, enc, m = (r["java"], r["python_pre_encoded"], r["python_client_path"], r["encode_sign"],
                           r["machine"])
    runs = r["runs"]

    def spread(name: str) -> str:
        xs = [x["records_per_s"] for x in runs[name]]
        return f"{min(xs):,.0f}-{max(xs):,.0f}" if len(xs) > 1 else ""

    def cores(x: dict[str, Any]) -> str:
        c = x["cpu"]
        per_core = x["records_per_s"] / c["producer_cores"] if c["producer_cores"] else 0
        return (f"{c['producer_cores']:.2f} / {c['broker_cores']:.2f} / {c['other_cores']:.2f}"
                f"  ({per_core:,.0f} records per producer CPU-second)")

    rows = [
        ("Kafka ProducerPerformance (Java)", j["records_per_s"], f"{j['mb_per_s']:.2f}", "1.00", spread("java"),
         cores(j)),
        ("Python producer, pre-encoded", pre["records_per_s"], f"{pre['mb_per_s']:.2f}",
         f"{r['ratio_pre_encoded_to_java']:.2f}", spread("python_pre_encoded"), cores(pre)),
        ("Python client path (LedgerClient: encode+batch sign+send)", cli["records_per_s"], f"{cli['mb_per_s']:.2f}",
         f"{r['ratio_client_path_to_java']:.2f}", spread("python_client_path"), cores(cli)),
        ("Python encode+batch sign only (no send)", enc["records_per_s"], "-", "-", "", ""),
    ]
    w = max(len(a) for a, *_ in rows)
    what = "median of " + str(r["repeat"]) + " rounds" if r["repeat"] > 1 else "one round"
    lines = [
        f"Producer ingest benchmark ({what}), topic {r['topic']} ({r['partitions']} partitions), "
        f"{' '.join(f'{k}={v}' for k, v in r['producer_config'].items())}, "
        f"gc.freeze() after building: {'yes' if r['gc_frozen'] else 'no'}",
        f"N = {r['records']:,} records; record size {r['record_size_bytes']} B (mean Avro submission value, "
        f"min {r['value_size_min_max'][0]}, max {r['value_size_min_max'][1]}); the Python records also carry "
        f"a key and headers ({r['key_and_headers_bytes_mean']:.0f} B mean), Java's carry neither",
        "",
        f"{'':<{w}}  {'records/s':>10}  {'MiB/s':>6}  {'vs Java':>7}  {'range':>15}  "
        f"CPU cores: producer / broker / other (a busy machine shows in 'other'; the records per producer "
        f"CPU-second compare the producers themselves)",
    ]
    lines += [f"{a:<{w}}  {b:>10,.0f}  {c:>6}  {d:>7}  {e:>15}  {f}" for a, b, c, d, e, f in rows]
    lines += [
        "",
        f"Java latency: avg {j['avg_latency_ms']:.1f} ms, max {j['max_latency_ms']:.0f} ms, p50 {j['p50_ms']} ms, "
        f"p95 {j['p95_ms']} ms, p99 {j['p99_ms']} ms, p99.9 {j['p999_ms']} ms",
        f"Java summary: {j['summary_line']}",
        f"Java command: {r['java_command']}",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}); Python {m['python']}; Kafka {m['kafka']} "
        f"(broker on the same machine); {m['java']}; aiokafka {m['aiokafka']}, fastavro {m['fastavro']}, "
        f"cryptography {m['cryptography']}",
        f"Date: {m['date']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.producer", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", "-n", type=int, default=200_000, help="records per measurement (default 200000)")
    p.add_argument("--repeat", type=int, default=1, help="rounds of the three measurements; the median is "
                   "reported (default 1)")
    p.add_argument("--chunk", type=int, default=5000, help="sends whose futures are gathered together "
                   "(default 5000)")
    p.add_argument("--seed", type=int, default=20261127, help="workload seed")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false", help="leave the pre-built "
                   "workload under the cyclic garbage collector (by default it is frozen out of its reach)")
    p.add_argument("--keep-topic", action="store_true", help=f"keep {TOPIC} (and its data) at the end")
    p.add_argument("--profile", action="store_true", help="afterwards, run the client path under cProfile "
                   "and print the top functions to standard error (not part of the figures)")
    p.add_argument("--profile-records", type=int, default=20_000, help="records for --profile (default 20000)")
    args = p.parse_args(argv)
    if args.records < 1 or args.chunk < 1 or args.repeat < 1:
        p.error("--records, --repeat and --chunk must be positive")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    try:
        result = run(args)
    except (stack.StackError, RuntimeError) as exc:
        _say(f"ERROR: {exc}")
        return 1
    profile = result.pop("profile")
    if profile:
        print(profile, file=sys.stderr)
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

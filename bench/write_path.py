"""The write path in one run, each figure beside its target, Kafka's own Java producer and the peer.

    PYTHONPATH=. .venv/bin/python -m bench.write_path [--quick] [--skip-10m] [--out FILE.json]

Runs, one after the other on the stack of the environment's settings (every other service of the
stack stopped while each is measured, bench/quiet.py):

1. `bench.producer --json`: Kafka's ProducerPerformance (Java), the Python producer with records
   pre-encoded, and the client path (LedgerClient: Avro encode, batch signature, send), on a topic of
   its own;
2. `bench.sequencer --json`: client ingest into credit.submissions, the sequencer judging the
   backlog (steady rate and resident memory), and the eventsourcing peer with 1, 4, 8 and 16 writers;
3. `bench.gateway --json`: open-loop HTTP single events at fixed rates, the sweep for the highest rate
   whose p99 is at most 20 ms, batches of 1,000 with every outcome, and the peer again;
4. `bench.sequencer_live --json` (unless --skip-10m): the sequencer with 10 million event ids in its
   store: resident memory, start to ready, kill -9 to judging again.

Then one table: each figure, its target, and its ratio to Java's or the peer's figure of the same
run, with the load average when it was taken. Stop the demo stack's other work first; the machine
should be quiet (the load average is printed so a busy run can be recognised). It takes about 15
minutes (--quick: smaller runs, about 6).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import quiet
from ledger.platform import config
from ops import stack as ops_stack


def _run(module: str, args: list[str], json_file: Path | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", module, *args]
    print(f"\n$ {' '.join(cmd)}", flush=True)
    started = time.perf_counter()
    if json_file is None:  # the module prints its JSON on standard output
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        result = json.loads(out[out.index("{"):])
    else:
        subprocess.run(cmd, check=True)
        result = json.loads(json_file.read_text())
    print(f"({module}: {time.perf_counter() - started:.0f} s)", flush=True)
    result["load_average_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return result


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def table(r: dict[str, Any]) -> str:
    p, sq, gw, live = r["producer"], r["sequencer"], r["gateway"], r.get("live")
    java = p["java"]["records_per_s"]
    peer = max(sq["peer_best_per_s"], max(x["per_second"] for x in gw["peer"].values()))
    rates = {run["rate"]: run for run in gw["open_loop"]["runs"]}
    top = max(rates.values(), key=lambda x: x["achieved_per_second"])
    best = gw["open_loop"]["best_rate_within_p99"]
    at_best = rates.get(best) if best else None
    rows: list[tuple[str, str, str, str, str]] = [
        ("Kafka ProducerPerformance (Java), acks=all", f"{java:,.0f} rec/s", "-", "1.00x Java",
         p["load_average_after"]),
        ("Python producer, records pre-encoded", f"{p['python_pre_encoded']['records_per_s']:,.0f} rec/s", "-",
         f"{p['ratio_pre_encoded_to_java']:.2f}x Java", ""),
        ("client path: encode + batch sign + send", f"{p['python_client_path']['records_per_s']:,.0f} ev/s",
         ">= 50,000 and >= 0.66x Java", f"{p['ratio_client_path_to_java']:.2f}x Java", ""),
        ("client ingest into credit.submissions (LedgerClient)", f"{sq['client_ingest_per_s']:,} ev/s",
         ">= 50,000", _ratio(sq["client_ingest_per_s"], java) + " Java", sq["load_average"]),
        ("sequencer, steady (backlog)", f"{sq['sequencer_steady_per_s']:,} ev/s", ">= 30,000",
         _ratio(sq["sequencer_steady_per_s"], peer) + " peer", sq["load_average"]),
        ("eventsourcing 9.5.6 + PostgreSQL, best writers", f"{peer:,} ev/s", "-", "1.00x peer", ""),
        ("HTTP single events, highest rate with p99 <= 20 ms", f"{best:,.0f}/s" if best else "none tried held",
         ">= 5,000/s, p99 <= 20 ms, >= 5x peer", _ratio(best, peer) + " peer", ""),
        ("HTTP single events, highest rate reached (open loop)",
         f"{top['achieved_per_second']:,}/s, p99 {top['latency']['p99_ms']:,.0f} ms", "-",
         _ratio(top["achieved_per_second"], peer) + " peer", top.get("load_average", "")),
        ("HTTP batches of 1,000 with every outcome", f"{gw['batch']['per_second']:,} ev/s", ">= 30,000",
         _ratio(gw["batch"]["per_second"], peer) + " peer", gw["batch"].get("load_average", "")),
        ("sequencer resident memory, after the backlog", f"{sq['sequencer_rss_mib']} MiB", "<= 150 MiB", "-", ""),
    ]
    if at_best:
        rows.insert(7, ("  at that rate", f"p50 {at_best['latency']['p50_ms']} ms, p99 {at_best['latency']['p99_ms']} ms",
                        "", "", at_best.get("load_average", "")))
    if live:
        rows += [
            ("sequencer with 10M ids: resident when ready / max judging",
             f"{live['rss_ready_mib']} / {live['rss_max_mib']} MiB", "<= 150 MiB", "-", live["load_average"]),
            ("sequencer with 10M ids: kill -9 -> a new event judged", f"{live['kill9_judging_again_s']} s",
             "<= 10 s", "-", ""),
        ]
    w = [max(len(x[i]) for x in rows) for i in range(5)]
    head = ("path", "figure", "target", "ratio", "load average")
    lines = [" | ".join(h.ljust(w[i]) for i, h in enumerate(head)), "-|-".join("-" * n for n in w)]
    lines += [" | ".join(c.ljust(w[i]) for i, c in enumerate(row)) for row in rows]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.write_path", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller runs (a smoke test of the whole, not figures)")
    p.add_argument("--skip-10m", action="store_true", help="leave out the 10-million-id sequencer run")
    p.add_argument("--out", metavar="FILE", default="/tmp/bench-write-path.json", help="all figures as JSON")
    a = p.parse_args()
    s = config.load()
    ops_stack.up(s, services=False)
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    tmp = Path("/tmp")
    r: dict[str, Any] = {}
    with quiet.only(s, ()):
        r["producer"] = _run("bench.producer", ["--json", "--records", "50000" if a.quick else "200000"])
    r["sequencer"] = _run("bench.sequencer", [
        "--json", str(tmp / "bench-wp-sequencer.json"), "--events", "20000" if a.quick else "100000",
        "--peer-events", "2000" if a.quick else "10000"], tmp / "bench-wp-sequencer.json")
    r["gateway"] = _run("bench.gateway", [
        "--json", str(tmp / "bench-wp-gateway.json"), "--seconds", "5" if a.quick else "10",
        "--rates", "200,500,1000" if a.quick else "250,500,1000,2000,3000,5000",
        "--search-steps", "1" if a.quick else "3", "--batch-events", "5000" if a.quick else "30000",
        "--peer-events", "1000" if a.quick else "5000"], tmp / "bench-wp-gateway.json")
    if not a.skip_10m:
        r["live"] = _run("bench.sequencer_live", [
            "--json", str(tmp / "bench-wp-live.json"), "--ids", "1000000" if a.quick else "10000000"],
            tmp / "bench-wp-live.json")
    Path(a.out).write_text(json.dumps(r, indent=1, default=str) + "\n")
    print(f"\nthe write path, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores; all figures in {a.out}\n")
    print(table(r))


if __name__ == "__main__":
    main()

"""Benchmark: importing a national double-publicity penalty CSV file (GB18030, Chinese headers).

    PYTHONPATH=. .venv/bin/python -m bench.csv_import [--rows 50000] [--entities 10000] [--reimport]

1. Generates N realistic penalty rows (ops.workload subjects: valid credit codes, 20% natural persons
   with resident ID numbers; the date forms of real files; fines in 万元) as one GB18030 CSV file
   with the Chinese headers of docs/domain-notes.md §3.3, and run-unique decision numbers.
2. Parse rate: ``ledger.intake.importer.check`` on the bytes (decode, CSV, map and check every row,
   identity checks, the department's authorization), best and median of --parse-rounds rounds.
3. End to end: ``ledger.intake.importer.import_file`` against the running stack of the environment's
   settings (the demo stack by default), from the bytes until the outcome of every row is read:
   check + sign + submit + the sequencer's judgement. The sequencer bounds this figure.
4. With --reimport: the same file again (every row a DUPLICATE, nothing appended).

It runs `ops/stack up` first if Kafka or the sequencer is not running. It never stops anything.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta

from ledger.domain.local_time import CHINA
from ledger.intake import importer
from ledger.platform import config
from ledger.rules import loader
from ops import stack as ops_stack
from ops import workload
from projections.publicity import fen_to_wanyuan

HEADERS = [
    "行政相对人名称", "行政相对人类别", "行政相对人代码_1（统一社会信用代码）", "行政相对人代码_2（工商注册号）",
    "行政相对人代码_3（组织机构代码）", "法定代表人", "证件类型", "证件号码", "行政处罚决定书文号", "违法行为类型",
    "违法事实", "处罚依据", "处罚类别", "处罚内容", "罚款金额（万元）", "没收违法所得、没收非法财物的金额（万元）",
    "暂扣或吊销证照名称及编号", "处罚决定日期", "处罚有效期", "公示截止期", "处罚机关", "处罚机关统一社会信用代码",
    "数据来源单位", "数据来源单位统一社会信用代码", "备注", "失信程度",
]
SEVERITY = {"minor": "轻微", "general": "一般", "serious": "严重"}
DATE_FORMS = ("{d:%Y-%m-%d}", "{d.year}/{d.month}/{d.day}", "{d:%Y.%m.%d}", "{d:%Y%m%d}",
              "{d.year}年{d.month}月{d.day}日", "{d:%Y-%m-%d} 00:00:00")


def _cpu() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def make_file(rows: int, entities: int, department: str, seed: int) -> bytes:
    rng = random.Random(seed)
    subjects = workload.subjects(rng, entities)
    authority, code = workload.PENALTY_DEPARTMENTS[department]
    today = datetime.now(UTC).astimezone(CHINA).date()
    token = f"B{seed}"
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADERS)
    for i in range(rows):
        s = subjects[i % entities]
        person = s.id_type == "RIC"
        violation, basis, categories, severity = rng.choice(workload.VIOLATIONS)
        decided = max(today - timedelta(days=rng.randrange(1, 400)), date(2019, 7, 1))
        fen = rng.choice([200_000, 500_000, 1_000_000, 3_000_000, 10_000_000, 123_456]) if "罚款" in categories else None
        w.writerow([
            s.name, "自然人" if person else ("个体工商户" if s.id.startswith("92") else "法人及非法人组织"),
            "" if person else s.id, "", "", "" if person else rng.choice(workload.SURNAMES) + rng.choice(workload.GIVEN),
            "身份证" if person else "", s.id if person else "", f"许市监罚〔{decided.year}〕{token}-{i}号", violation,
            f"经查，当事人{violation}，事实清楚，证据确凿。", basis, ";".join(categories),
            "、".join(categories) + (f"，罚款人民币{fen // 100}元" if fen else ""),
            fen_to_wanyuan(fen) if fen else "", "", "", DATE_FORMS[i % len(DATE_FORMS)].format(d=decided), "", "",
            authority, code, authority, code, "", SEVERITY[severity],
        ])
    return buf.getvalue().encode("gb18030")


def _cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process (and its waited-for children), from /proc; 0 if unknown."""
    if not pid:
        return 0.0
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _ensure_stack(s: config.Settings) -> None:
    if ops_stack.Kafka(s).pid() and ops_stack.Service(s, "sequencer").pid():
        return
    print("the stack is not (fully) running: ops/stack up", flush=True)
    ops_stack.up(s)


async def run(args: argparse.Namespace) -> None:
    s = config.load()
    _ensure_stack(s)
    seed = args.seed if args.seed is not None else time.time_ns() % 10**9
    t = time.perf_counter()
    data = make_file(args.rows, args.entities, args.department, seed)
    print(f"generated {args.rows:,} rows, {len(data) / 2**20:.1f} MiB GB18030 in {time.perf_counter() - t:.1f} s",
          flush=True)

    matrix = loader.load_departments()
    parse = []
    for _ in range(args.parse_rounds):
        t = time.perf_counter()
        _, rows = importer.check(data, args.department, matrix)
        parse.append(time.perf_counter() - t)
    valid = sum(1 for r in rows if r.record is not None)
    assert valid == args.rows, f"{args.rows - valid} generated rows were refused"

    pids = {"importer": os.getpid(), "sequencer": ops_stack.Service(s, "sequencer").pid(),
            "broker": ops_stack.Kafka(s).pid()}
    cpu0 = {k: _cpu_seconds(p) for k, p in pids.items()}
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    progress = importer.Progress()
    result = await importer.import_file(s, args.department, data, matrix, progress=progress, timeout=300)
    e2e = time.perf_counter() - t
    sent = (progress.sent_at or 0) - (progress.sending_since or 0)
    cpu = {k: (_cpu_seconds(p) - cpu0[k]) / e2e for k, p in pids.items()}
    load1 = os.getloadavg()[0]
    again = None
    if args.reimport:
        t = time.perf_counter()
        second = await importer.import_file(s, args.department, data, matrix, progress=importer.Progress(),
                                              timeout=300)
        again = (time.perf_counter() - t, second.counts)

    n = args.rows
    print()
    print(f"date        {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine     {_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}; broker, PostgreSQL and "
          f"the stack's services on the same cores")
    print(f"file        {n:,} penalty rows, {args.entities:,} entities (20% natural persons), GB18030, "
          f"{len(data) / 2**20:.1f} MiB, seed {seed}")
    print(f"parse       {n / min(parse):>9,.0f} rows/s best, {n / statistics.median(parse):,.0f} median of "
          f"{len(parse)} (decode + CSV + map + identity checks)")
    print(f"end to end  {n / e2e:>9,.0f} rows/s ({e2e:.1f} s from the bytes to the last outcome; "
          f"{result.check_seconds:.1f} s checking, {result.submit_seconds:.1f} s submitting and waiting: "
          f"{n / result.submit_seconds:,.0f} rows/s) outcomes {dict(result.counts)}")
    print(f"            all {n:,} signed and on the broker {sent:.1f} s after the check ({n / sent:,.0f} rows/s: "
          f"the client path); the rest is waiting for the sequencer's outcomes")
    print("            CPU cores used meanwhile: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()) +
          f"; load average {load0:.1f} before, {load1:.1f} after (2 cores)")
    if again:
        print(f"re-import   {n / again[0]:>9,.0f} rows/s ({again[0]:.1f} s) outcomes {dict(again[1])}")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.csv_import", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--entities", type=int, default=10_000)
    p.add_argument("--department", default="xc-samr")
    p.add_argument("--parse-rounds", type=int, default=3)
    p.add_argument("--reimport", action="store_true", help="import the same file a second time (all DUPLICATE)")
    p.add_argument("--seed", type=int, help="default: new decision numbers every run")
    args = p.parse_args()
    asyncio.run(run(args))
    sys.exit(0)


if __name__ == "__main__":
    main()

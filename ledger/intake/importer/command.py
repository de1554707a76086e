"""The command line: ``python -m ledger.intake.importer --department DEPT FILE`` (see the package doc for
the statuses and the exit status).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop

from ledger.intake import csv_import
from ledger.intake.importer.progress import Progress
from ledger.intake.importer.report import summary, write_report
from ledger.intake.importer.submission import SetupError, import_file
from ledger.platform import config
from ledger.rules import loader


async def _cli(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"无法读取文件 {path} (cannot read the file: {exc.strerror})", file=sys.stderr)
        return 2
    progress = Progress(enabled=not args.no_progress)
    try:
        result = await import_file(config.load(), args.department, data, loader.load_departments(),
                                   dry_run=args.dry_run, progress=progress,
                                   timeout=args.timeout)
    except csv_import.FileRefused as exc:
        progress.finish()
        print(f"{path}: 文件未导入，没有提交任何记录 (file not imported, nothing submitted): {exc}", file=sys.stderr)
        return 2
    except SetupError as exc:
        progress.finish()
        print(f"{path}: 未导入，没有提交任何记录 (not imported, nothing submitted): {exc}", file=sys.stderr)
        return 2
    report = Path(args.report) if args.report else path.with_name(path.stem + ".report.csv")
    write_report(report, result.rows)
    print(summary(path, result, report, args.dry_run))
    return 1 if result.failed else 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m ledger.intake.importer",
        description="Import a national double-publicity CSV file (XK_ licences or CF_ penalties; codes or Chinese "
                    "headers; UTF-8 or GB18030) as a department: check every row, submit the valid ones, wait "
                    "for every outcome and write a per-row report. Re-importing the same file appends nothing "
                    "(every row is a DUPLICATE). Exit status 1 if any row was refused, 2 if nothing was imported.")
    p.add_argument("file", help="the CSV file")
    p.add_argument("--department", required=True, help="the importing department id, e.g. xc-samr; its private "
                   "key is read from LEDGER_KEYS_DIR/<department>.key")
    p.add_argument("--report", help="where to write the per-row report (default: FILE.report.csv beside the file)")
    p.add_argument("--dry-run", action="store_true", help="check the file and write the report; submit nothing")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="give up waiting for outcomes after this many seconds without any (default 120)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    sys.exit(uvloop.run(_cli(p.parse_args(argv))))

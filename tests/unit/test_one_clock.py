"""One clock: nothing but ledger/platform/clock.py reads the wall clock.

Every "today" of the ledger is the China Standard Time date of the one clock, which the composition
root (ops/root.py) builds and hands to the services; a module that called ``date.today()`` (the
machine's zone) or ``datetime.now(UTC).date()`` (the UTC date, a day behind Beijing from 00:00 to
08:00) on its own would decide "today" differently from the sequencer. The scan covers the product
and the tests: a test that read the wall clock itself would pass or fail with the date it runs on.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("schemas", "ledger", "projections", "consumers", "ops", "examples", "tests")
THE_CLOCK = "ledger/platform/clock.py"
# receivers whose methods read the wall clock, and those methods
WALL_CLOCK = {
    "datetime": frozenset({"now", "today", "utcnow"}),
    "date": frozenset({"today"}),
    "time": frozenset({"time", "time_ns", "localtime", "gmtime", "ctime"}),
}


def _receiver(node: ast.expr) -> str | None:
    """``datetime`` for ``datetime.now`` and for ``datetime.datetime.now``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def wall_clock_reads(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = _receiver(node.func.value)
            if receiver in WALL_CLOCK and node.func.attr in WALL_CLOCK[receiver]:
                found.append(f"{name}:{node.lineno}: {receiver}.{node.func.attr}()")
    return found


def _modules() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for top in SCANNED for p in (ROOT / top).rglob("*.py")
                  if ".stack" not in p.parts)


def test_the_scan_finds_every_way_of_reading_the_wall_clock() -> None:
    planted = ("import datetime as dt, time\nfrom datetime import UTC, date, datetime\n"
               "a = datetime.now(UTC).date(), date.today(), datetime.utcnow(), time.time(), dt.datetime.now()\n"
               "b = clock.now(), clock.today(), self.now(), time.monotonic()\n")
    assert sorted(wall_clock_reads(planted, "p.py")) == [
        "p.py:3: date.today()", "p.py:3: datetime.now()", "p.py:3: datetime.now()", "p.py:3: datetime.utcnow()",
        "p.py:3: time.time()"]


def test_the_clock_itself_is_found_reading_it() -> None:
    assert wall_clock_reads((ROOT / THE_CLOCK).read_text(encoding="utf-8"), THE_CLOCK)


@pytest.mark.parametrize("module", [m for m in _modules() if m != THE_CLOCK])
def test_no_module_reads_the_wall_clock_but_the_clock(module: str) -> None:
    assert wall_clock_reads((ROOT / module).read_text(encoding="utf-8"), module) == []

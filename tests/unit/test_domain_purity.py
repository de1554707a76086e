"""The domain is pure: no file, clock or shared mutable state in ledger/domain/*.py.

The import contract "domain-pure" (pyproject.toml) keeps I/O and clock modules out of the domain's
imports; this scan catches what an import contract cannot see: a call of the builtin ``open()``,
``.now()``, ``.today()`` or ``.utcnow()`` (``datetime.now()``, ``date.today()``), ``time.time()``,
and ``global`` statements (module state changed behind the caller's back). "Today" and the rules
come in as values: the callers pass them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "ledger" / "domain"
CLOCK_METHODS = frozenset({"now", "today", "utcnow"})


def violations(source: str, name: str) -> list[str]:
    """Every impure construct of one module, as ``<name>:<line>: <what>``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, name)):
        what = None
        if isinstance(node, ast.Global):
            what = f"global {', '.join(node.names)}"
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "open":
                what = "open()"
            elif isinstance(func, ast.Attribute) and func.attr in CLOCK_METHODS:
                what = f".{func.attr}()"
            elif (isinstance(func, ast.Attribute) and func.attr == "time"
                  and isinstance(func.value, ast.Name) and func.value.id == "time"):
                what = "time.time()"
        if what:
            found.append(f"{name}:{node.lineno}: {what}")
    return found


def test_the_scan_finds_each_kind_of_violation() -> None:
    planted = (
        "import time\nfrom datetime import date, datetime\n_CACHE = {}\n"
        "def f():\n    global _CACHE\n    return open('x').read(), datetime.now(), date.today(), "
        "datetime.utcnow(), time.time()\n"
    )
    assert sorted(violations(planted, "plant.py")) == [
        "plant.py:5: global _CACHE", "plant.py:6: .now()", "plant.py:6: .today()", "plant.py:6: .utcnow()",
        "plant.py:6: open()", "plant.py:6: time.time()",
    ]


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_domain_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), f"ledger/domain/{path.name}") == []

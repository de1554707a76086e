"""The house's rules hold: the import contracts of pyproject.toml ([tool.importlinter]) are kept.

`lint-imports` reads the whole tree's imports (grimp) and checks each contract: the card's layers,
the layers inside ledger and projections, the pure domain, reads never reaching the write side,
independent stream processors, and no cycle between sibling packages or files anywhere. A broken
contract fails this test with lint-imports' own report of the offending import chain.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-logo", "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout and "Contracts: 0 kept" not in done.stdout, done.stdout

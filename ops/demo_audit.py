"""The demo's auditor part (called by ops/demo.py): the commands of README's "For auditors", run
against the demo stack and printed as the auditor would type them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from ledger.platform import config


def _line(text: str = "") -> None:
    print(text, flush=True)


async def _cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(subprocess.run, [sys.executable, "-m", *args], capture_output=True, text=True,
                                   cwd=config.ROOT, env={**os.environ, "PYTHONPATH": str(config.ROOT)})


async def show_audit(s: config.Settings, entity: str, other: str) -> None:
    out = s.stack_dir / "audit-demo"
    out.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{s.api_port}"
    _line(f"\n== For auditors: the history of {entity}, checked against the Kafka log")
    r = await _cmd("projections.audit.auditor", "history", entity)
    lines = r.stdout.strip().splitlines()
    for line in lines[:4] + (["   ..."] if len(lines) > 6 else []) + lines[-2:]:
        _line("   " + line)
    async with aiohttp.ClientSession() as http:
        for q in ("valid_on=2025-03-01", "valid_on=2026-06-01", ""):
            async with http.get(f"{base}/audit/entities/{entity}/as-of?{q}") as resp:
                got: dict[str, Any] = await resp.json()
            listings = ", ".join(f"{x['list_kind']} {x['status']}" for x in got["state"]["listings"].values())
            penalties = ", ".join(x["status"] for x in got["state"]["penalties"].values())
            _line(f"   as of {q.split('=')[1] if q else 'now'}: version {got['state']['version']} of "
                  f"{got['events_in_ledger']}; listings: {listings or 'none'}; penalties: {penalties or 'none'}")
    pub, bundle, other_bundle = out / "notary.pub", out / "bundle.json", out / "other.json"
    _line("\n== Export the bundle, verify it offline (python -m ledger.audit.verify needs only the bundle and the key)")
    for args in (("projections.audit.auditor", "public-key", "--out", str(pub)),
                 ("projections.audit.auditor", "export-bundle", entity, "--out", str(bundle)),
                 ("projections.audit.auditor", "export-bundle", other, "--out", str(other_bundle))):
        r = await _cmd(*args)
        if r.returncode:
            _line(f"   {' '.join(args)}: {r.stderr.strip()}")
            return
    r = await _cmd("ledger.audit.verify", str(bundle), "--public-key", str(pub), "--quiet",
                   "--save-head", str(out / "trusted-head.json"))
    _line(f"   python -m ledger.audit.verify {bundle.name} --public-key {pub.name}: {r.stdout.strip()}")
    partition = json.loads(bundle.read_text())["partition"]
    async with aiohttp.ClientSession() as http, http.get(f"{base}/audit/heads?partition={partition}") as resp:
        heads = (await resp.json())["heads"]
    extra = []
    if len(heads) > 1:
        (out / "old-head.json").write_text(json.dumps(heads[-1]))
        extra = ["--old-head", str(out / "old-head.json")]
    r = await _cmd("ledger.audit.tamper", str(bundle), "--out-dir", str(out / "tampered"), "--other", str(other_bundle),
                   "--notary-key", str(s.keys_dir / "notary" / "notary.key"), *extra)
    _line("\n== Tampered copies (python -m ledger.audit.tamper), each verified the same way (a submission swapped "
          "inside its signed batch, or its batch proof altered, with --department-keys: the operator signed the rest)")
    for path in sorted(Path(out / "tampered").glob("*.json")):
        keys = ["--department-keys", str(s.keys_dir)] if path.stem in ("swapped-in-batch", "altered-batch-proof") else []
        r = await _cmd("ledger.audit.verify", str(path), "--public-key", str(pub), *keys)
        _line(f"   {path.stem:<19} exit {r.returncode}: {r.stdout.strip()[:220]}")
    r = await _cmd("ledger.audit.verify", str(bundle), "--public-key", str(pub), "--trusted-head",
                   str(out / "trusted-head.json"), "--quiet")
    _line(f"   the honest bundle again, against the head saved by the first check: {r.stdout.strip()}")
    _line(f"   files: {out}; heads on credit.checkpoints, proofs at {base}/audit/...; notary metrics "
          f"http://127.0.0.1:{s.metrics_port('notary')}/metrics")
    await _show_portal_checks(s, partition, out / "public")


async def _show_portal_checks(s: config.Settings, partition: int, out: Path) -> None:
    """What anyone can do from the public portal: download the latest signed tree head, the key and
    the verifier, and check the head with nothing else; the operators' dashboard with the alerts."""
    portal = f"http://127.0.0.1:{s.portal_port}"
    out.mkdir(parents=True, exist_ok=True)
    _line(f"\n== The public checks the ledger's signed tree head from the portal: {portal}/tree-head")
    async with aiohttp.ClientSession() as http:
        for path, name in ((f"/tree-head.json?partition={partition}", "tree-head.json"),
                           ("/notary.pub", "notary.pub"), ("/verify.py", "verify.py")):
            async with http.get(portal + path) as resp:
                if resp.status != 200:
                    _line(f"   GET {path}: {resp.status}")
                    return
                (out / name).write_bytes(await resp.read())
        async with http.get(f"{portal}/dashboard") as resp:
            dashboard = await resp.text()
    r = await asyncio.to_thread(subprocess.run, [sys.executable, "-I", "verify.py", "--head", "tree-head.json",
                                                 "--public-key", "notary.pub"], capture_output=True, text=True, cwd=out)
    _line(f"   in {out}, with only the three downloaded files: python verify.py --head tree-head.json "
          f"--public-key notary.pub -> {r.stdout.strip()}")
    departments = dashboard.count('<tr data-department="')
    _line(f"   operators: {portal}/dashboard shows throughput, lag, rejections by reason, late double-publicity "
          f"records, coverage, and the joint-punishment alerts of {departments} implementing departments")

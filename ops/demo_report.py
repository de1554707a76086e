"""The demo's credit report part (called by ops/demo.py): the organisation whose objection and repair
applications the demo filed and answered (ops/demo_objections.py) also lives through every event
family (ops/workload.py every_family_on_display); a reader downloads its credit report (JSON and PDF)
from the query API and the public keys and the verifier from the portal, verifies it offline, sees
one changed byte rejected, reads the objections and repair applications step by step, and looks at
the PDF's first page and the page of that section (rendered to PNG in artifacts/reports/); then a
natural person's report, which verifies by leaf hashes."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pypdfium2

from ledger.client import submit_as_departments
from ledger.platform import config
from ops import workload
from ops.root import CLOCK

ARTIFACTS = config.ROOT / "artifacts" / "reports"


async def _get(http: aiohttp.ClientSession, url: str) -> bytes:
    """GET, asking again while the notary has not yet signed a head covering the entity (503)."""
    for _ in range(24):
        async with http.get(url) as r:
            body = await r.read()
            if r.status == 200:
                return body
            if r.status != 503:
                raise RuntimeError(f"GET {url}: {r.status} {body[:300]!r}")
        await asyncio.sleep(5)
    raise RuntimeError(f"GET {url}: still 503 after two minutes")


async def _verify(directory: Path, report: str) -> subprocess.CompletedProcess[str]:
    """The verifier as the reader downloaded it, alone in the reader's directory (python -I)."""
    return await asyncio.to_thread(subprocess.run, [
        sys.executable, "-I", "verify.py", "--report", report, "--public-key", "notary.pub",
        "--issuer-key", "report-issuer.pub"], cwd=directory, capture_output=True, text=True, timeout=120)


def _matters(report: dict[str, Any]) -> list[str]:
    """The report's objections and repair applications as a reader reads them: one line per matter."""
    section = next(x for x in report["body"]["sections"] if x["key"] == "objections")
    out: dict[str, list[str]] = {}
    for row in section["rows"]:
        c = row["cells"]
        steps = out.setdefault(c["receipt"], [c["matter"].replace("\n", "，")])
        steps.append(f"{c['step']} {c['done_on']}" + (f"，期限 {c['due']}" if c["due"] != "—" else "")
                     + (f" {c['result']}" if c["result"] else "") + f" [{len(row['event_ids'])} 条记录]")
    return [f"{receipt}: " + "；".join(steps) for receipt, steps in out.items()]


async def show(s: config.Settings, rng: random.Random, subject: workload.Subject, person: str | None,
               line: Callable[[str], None]) -> None:
    """The credit report of `subject`, the organisation of the demo's objection and repair applications."""
    api, portal = s.query_api_url, f"http://127.0.0.1:{s.portal_port}"
    reader = s.stack_dir / "report-demo"
    reader.mkdir(parents=True, exist_ok=True)
    # its life's numbers (n < 10**4, "R0nnnn") never meet the penalties the objection part gave it ("R1nnnn")
    phases = workload.every_family_on_display(rng, subject, rng.randrange(10**4), CLOCK.today())
    outcomes = []
    for phase in phases:
        outcomes += await submit_as_departments(s, phase)
    company = outcomes[0]["entity_id"]
    last = max(outcomes, key=lambda o: o["ledger_offset"])
    line(f"\n== A credit report of {subject.name} ({company}: the objection and the repair applications answered "
         f"above, and {len(outcomes)} events of every other family, {dict(Counter(o['status'] for o in outcomes))}), "
         "as a bidder would download it and a bidding agency check it")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        # read your writes: the report waits until the views have the company's last event
        await _get(http, f"{api}/entities/{company}?after={last['ledger_partition']}:{last['ledger_offset']}&wait=30")
        raw = await _get(http, f"{api}/entities/{company}/report.json")
        pdf = await _get(http, f"{api}/entities/{company}/report.pdf")
        for name in ("verify.py", "notary.pub", "report-issuer.pub"):
            (reader / name).write_bytes(await _get(http, f"{portal}/{name}"))
    number = raw.split(b'"report_number":"', 1)[1].split(b'"', 1)[0].decode()
    (reader / f"{number}.json").write_bytes(raw)
    (reader / f"{number}.pdf").write_bytes(pdf)
    line(f"   GET {api}/entities/{company}/report.json and .pdf: report {number} ({len(raw):,} and {len(pdf):,} "
         f"bytes, in {reader}); the portal's entity page links both: {portal}/entity/{company}")
    run = await _verify(reader, f"{number}.json")
    line(f"   python verify.py --report {number}.json --public-key notary.pub --issuer-key report-issuer.pub "
         f"(exit {run.returncode}):\n     {run.stdout.strip()}")
    at = raw.find(b"\xe4\xb8")  # a Chinese character inside the body: its first byte changed
    (reader / "changed.json").write_bytes(raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:])
    run = await _verify(reader, "changed.json")
    line(f"   the same file with one byte changed (byte {at}) (exit {run.returncode}):\n     {run.stdout.strip()[:300]}")
    line("   its objections and repair applications (异议与信用修复申请), each step on its own ledger record:")
    for text in _matters(json.loads(raw)):
        line(f"     {text}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    document = pypdfium2.PdfDocument(pdf)
    pages = [ARTIFACTS / f"{number}-p{i + 1}.png" for i in range(len(document))]
    for i, png in enumerate(pages):
        await asyncio.to_thread(lambda i=i, png=png: document[i].render(scale=1.6).to_pil().save(png))
    at = next((i for i in range(len(document)) if "异议与信用修复申请" in document[i].get_textpage().get_text_range()), 0)
    line(f"   the PDF ({len(document)} pages, the font embedded, a QR code of the number and the signed tree head), "
         f"every page as a reader sees it in {ARTIFACTS}: the first {pages[0].name}; the objections and repair "
         f"applications from page {at + 1} ({pages[at].name})")
    if person is None:
        return
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        raw = await _get(http, f"{api}/entities/{person}/report.json")
    (reader / "person.json").write_bytes(raw)
    run = await _verify(reader, "person.json")
    line(f"   a natural person's report ({person}; the ID number masked, never in clear) (exit {run.returncode}):\n"
         f"     {run.stdout.strip()[:400]}")

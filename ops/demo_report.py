"""The demo's credit report part (called by ops/demo.py): an organisation lives through every event
family (ops/workload.py every_family_on_display); a reader downloads its credit report (JSON and PDF) from the query API and the public keys and the verifier from the portal,
verifies it offline, sees one changed byte rejected, and looks at the PDF's first page (rendered to
PNG in artifacts/reports/); then a natural person's report, which verifies by leaf hashes."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

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


async def show(s: config.Settings, rng: random.Random, person: str | None, line: Callable[[str], None]) -> None:
    api, portal = s.query_api_url, f"http://127.0.0.1:{s.portal_port}"
    reader = s.stack_dir / "report-demo"
    reader.mkdir(parents=True, exist_ok=True)
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    phases = workload.every_family_on_display(rng, subject, rng.randrange(10**5), CLOCK.today())
    outcomes = []
    for phase in phases:
        outcomes += await submit_as_departments(s.bootstrap_servers, s.keys_dir, phase)
    company = outcomes[0]["entity_id"]
    last = max(outcomes, key=lambda o: o["ledger_offset"])
    line(f"\n== A credit report of {subject.name} ({company}: {len(outcomes)} events of every family, "
         f"{dict(Counter(o['status'] for o in outcomes))}), as a bidder would download it and a bidding agency check it")
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
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / f"{number}-p1.png"
    document = pypdfium2.PdfDocument(pdf)
    await asyncio.to_thread(lambda: document[0].render(scale=1.6).to_pil().save(png))
    line(f"   the PDF ({len(document)} pages, the font embedded, a QR code of the number and the signed tree head): "
         f"its first page as a reader sees it: {png}")
    if person is None:
        return
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        raw = await _get(http, f"{api}/entities/{person}/report.json")
    (reader / "person.json").write_bytes(raw)
    run = await _verify(reader, "person.json")
    line(f"   a natural person's report ({person}; the ID number masked, never in clear) (exit {run.returncode}):\n"
         f"     {run.stdout.strip()[:400]}")

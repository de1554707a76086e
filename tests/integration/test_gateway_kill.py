"""Given departments submitting over HTTP (the gateway), when the sequencer is killed with SIGKILL in
the middle of their stream and started again, then every submission the gateway acknowledged (200
ACCEPTED or DUPLICATE, or a 202 whose status URL later said so; a 503 or a lost connection is sent
again with the same event ids, as a department would) is in the ledger exactly once, at the position
its answer named, with contiguous versions; and the views equal a fresh rebuild (issue 18, item 4)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from bench import faults
from bench.gateway import body
from tests.integration.test_projector_faults import _equals_fresh_rebuild
from tests.integration.test_sequencer_kill import penalties

BATCH = 50
CLIENTS = 3


async def _submit(session: aiohttp.ClientSession, base: str, token: str, records: list[dict[str, Any]],
                  answers: dict[str, dict[str, Any]]) -> None:
    """POST the records in batches; a batch the gateway could not hand to Kafka (503, a lost
    connection) is sent again as it was; a 202's pending events are asked for at their status URL."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for i in range(0, len(records), BATCH):
        chunk = records[i:i + BATCH]
        for _attempt in range(60):
            try:
                async with session.post(f"{base}/v1/events:batch?timeout=30", data=body(chunk), headers=headers) as r:
                    status, doc = r.status, await r.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError):
                status, doc = 503, None
            if status in (200, 202):
                break
            assert status in (429, 503), (status, doc)
            await asyncio.sleep(1)
        else:
            raise AssertionError("a batch was never acknowledged")
        for o in doc["outcomes"]:
            while o["status"] == "PENDING":
                async with session.get(f"{base}/v1/outcomes/{o['event_id']}?timeout=30", headers=headers) as r:
                    o = await r.json(content_type=None)
            assert o["status"] in ("ACCEPTED", "DUPLICATE"), o
            answers[o["event_id"]] = o


async def test_submissions_acknowledged_over_http_survive_a_sequencer_kill(settings, services) -> None:
    sequencer = services["sequencer"]
    sequencer.start()
    records = [r for r in penalties("gateway-kill", 1800, subjects=300)]
    token = (settings.keys_dir / "xc-samr.token").read_text().strip()
    base = f"http://127.0.0.1:{settings.gateway_port}"
    answers: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as session:
        share = len(records) // CLIENTS
        sending = asyncio.gather(*(_submit(session, base, token, records[k * share:(k + 1) * share], answers)
                                   for k in range(CLIENTS)))
        await faults.until(lambda: len(answers) >= 300, 120, "300 submissions answered over HTTP")
        old = sequencer.pid()
        sequencer.kill()
        at_kill = len(answers)
        await asyncio.sleep(1)
        await asyncio.to_thread(sequencer.start)
        assert sequencer.pid() not in (None, old)
        await sending
    assert at_kill < len(records), "the kill must come in the middle of the stream"
    ids = {r["envelope"]["event_id"] for r in records}
    assert set(answers) == ids
    entries = await faults.ledger_holds(settings, ids)
    at = {e["event_id"]: (e["_partition"], e["_offset"], e["entity_version"]) for es in entries.values() for e in es}
    for event_id, o in answers.items():  # an answer names the position of the one entry (DUPLICATE: the original)
        assert (o["ledger_partition"], o["ledger_offset"], o["entity_version"]) == at[event_id], o
    await _equals_fresh_rebuild(settings)

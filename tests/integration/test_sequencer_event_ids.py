"""Given submissions waiting on credit.submissions while the sequencer is stopped, so that it reads
them together: the same submission twice and the same event id with other content; when the
sequencer starts, then the first is appended once, the repeat is a DUPLICATE naming its position and
the other content a CONFLICT; and then the same event id about a subject of another partition is a
CONFLICT answered about its own subject. Nothing but the first is appended."""

from __future__ import annotations

import copy
from datetime import date

from ledger.records import submissions
from ops import workload
from schemas import registry
from tests import helpers


async def test_one_batch_holding_a_repeat_and_two_reuses_of_an_event_id(settings, services) -> None:
    rng = helpers.rng("event-ids")
    subject, *others = workload.subjects(rng, 40, persons_share=0.0)
    elsewhere = next(s for s in others if submissions.partition_of(submissions.submission_key("USCC", s.id))
                     != submissions.partition_of(submissions.submission_key("USCC", subject.id)))
    first = workload.penalty(rng, subject, "xc-samr", rng.randrange(10**6), decided=date(2026, 11, 2))
    event_id = first["envelope"]["event_id"]
    changed = copy.deepcopy(first)
    changed["fine_fen"] = (first["fine_fen"] or 0) + 100
    about_another = workload.penalty(rng, elsewhere, "xc-samr", rng.randrange(10**6), decided=date(2026, 11, 2),
                                     event_id=event_id)

    sequencer = services["sequencer"]
    sequencer.stop()
    try:
        async with helpers.client(settings) as c:
            await c.submit_many([first, first, changed])
    finally:
        sequencer.start()

    async def outcomes(n: int) -> list[dict]:  # type: ignore[type-arg]
        found = [registry.decode(v, "Outcome")[1] for _p, _o, k, v in
                 await helpers.read_topic(settings, registry.OUTCOMES) if k == event_id.encode()]
        return found if len(found) >= n else []

    await helpers.wait_until(lambda: outcomes(3), timeout=60, interval=0.5, what="three outcomes")
    async with helpers.client(settings) as c:  # judged in another partition, after the first is committed
        await c.submit_many([about_another])
    answers = await helpers.wait_until(lambda: outcomes(4), timeout=60, interval=0.5, what="four outcomes")
    answers.sort(key=lambda o: o["decided_at"])
    own = "uscc:" + subject.id
    assert [(o["status"], o["entity_id"]) for o in answers] == [
        ("ACCEPTED", own), ("DUPLICATE", own), ("CONFLICT", own), ("CONFLICT", "uscc:" + elsewhere.id)]
    accepted, duplicate = answers[0], answers[1]
    position = (accepted["ledger_partition"], accepted["ledger_offset"], accepted["entity_version"])
    assert (duplicate["ledger_partition"], duplicate["ledger_offset"], duplicate["entity_version"]) == position
    assert duplicate["ledger_offset"] >= 0
    for conflict in answers[2:]:
        assert [(r["field"], r["code"]) for r in conflict["reasons"]] == [("event_id", "event_id.conflict")]
    assert answers[3]["entity_version"] is None and subject.id not in answers[3]["reasons"][0]["message"]

    entries = await helpers.ledger_entries(settings, {own, "uscc:" + elsewhere.id})
    assert [(e["event_id"], e["_partition"], e["_offset"], e["entity_version"]) for e in entries[own]] == [
        (event_id, *position)]
    assert entries.get("uscc:" + elsewhere.id, []) == []

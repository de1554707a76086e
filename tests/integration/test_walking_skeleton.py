"""Given the stack and the ledger's processes, when a department submits a penalty,
then it is sequenced into credit.events and projected into the PostgreSQL view."""

from __future__ import annotations

from ledger.domain import identity
from ledger.records import chain
from ops import workload
from tests import helpers


async def test_a_penalty_reaches_the_ledger_and_the_view(settings, services) -> None:
    rng = helpers.rng("skeleton")
    person, company = workload.subjects(rng, 1, persons_share=1.0)[0], workload.subjects(rng, 1, 0.0)[0]
    records = [workload.penalty(rng, company, "xc-samr", 1), workload.penalty(rng, person, "xc-samr", 2),
               workload.penalty(rng, company, "xc-samr", 3)]

    async with helpers.client(settings) as c:
        outcomes = await c.submit_many_and_wait(records, timeout=30)

    assert [o["status"] for o in outcomes] == ["ACCEPTED"] * 3
    assert [o["entity_version"] for o in outcomes] == [1, 1, 2]
    company_id = "uscc:" + company.id
    assert outcomes[0]["entity_id"] == outcomes[2]["entity_id"] == company_id
    person_id = outcomes[1]["entity_id"]
    assert person_id.startswith("ric:") and person.id not in person_id

    # the ledger: versions 1, 2 for the company, with an intact hash chain
    entries = await helpers.ledger_entries(settings, {company_id, person_id})
    assert [e["entity_version"] for e in entries[company_id]] == [1, 2]
    assert chain.broken_links(entries[company_id]) == []
    assert [e["event_id"] for e in entries[company_id]] == [records[0]["envelope"]["event_id"],
                                                            records[2]["envelope"]["event_id"]]

    # the view, once the projector has caught up
    ids = tuple(r["envelope"]["event_id"] for r in records)
    rows = await helpers.wait_until(lambda: (r := helpers.pg_rows(
        settings, "select event_id, entity_id, subject_name, public_id, ref, kind, status, decision_date "
        "from views.publicity where event_id = any(%s)", (list(ids),))) and len(r) == 3 and r,
        what="three rows in views.publicity")
    by_event = {r[0]: r for r in rows}
    first = by_event[records[0]["envelope"]["event_id"]]
    assert first[1:] == (company_id, company.name, company.id, records[0]["decision_no"], "penalty", "published",
                         records[0]["decision_date"])
    person_row = by_event[records[1]["envelope"]["event_id"]]
    assert person_row[3] == identity.mask_ric(person.id) and person.id not in str(person_row)

    copy = helpers.pg_rows(settings, "select entity_version, kafka_partition, kafka_offset, hash from views.ledger_copy "
                           "where entity_id = %s order by entity_version", (company_id,))
    assert [(v, p, o, bytes(h)) for v, p, o, h in copy] == [
        (e["entity_version"], e["_partition"], e["_offset"], e["hash"]) for e in entries[company_id]]
    # no clear ID number anywhere in PostgreSQL's copy of the ledger: its records hold the masked one
    def holding(text: str) -> int:
        return helpers.pg_rows(settings, "select count(*) from views.ledger_copy where position(%s in record) > 0",
                               (text.encode(),))[0][0]
    assert holding(person.id) == 0 and holding(identity.mask_ric(person.id)) >= 1


def test_every_long_running_process_serves_metrics(settings, services) -> None:
    import urllib.request

    for name, metric in (("sequencer", "ledger_submissions_total"), ("projector", "ledger_projected_events_total")):
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.metrics_port(name)}/metrics", timeout=5) as r:
            assert metric in r.read().decode(), name

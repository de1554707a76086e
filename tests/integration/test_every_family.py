"""Given the running sequencer, when departments submit every event family through the client,
then each lands in credit.events with its version and hash; and every submission the rules forbid
is refused with the field and the reason, leaving the ledger unchanged."""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from datetime import date, timedelta

from ledger.client import submit_as_departments
from ledger.domain.rules import EVENT_TYPES
from ledger.platform import signing
from ledger.records import chain
from ops import workload, workload_objections
from tests import helpers, release_world


async def _submit(settings, phase):  # type: ignore[no-untyped-def]
    return await submit_as_departments(settings, phase)


async def test_every_event_family_lands_with_version_and_hash(settings, services) -> None:
    rng = helpers.rng("families")
    subjects = workload.subjects(rng, 4, persons_share=0.0)
    lives = [workload.life(rng, s, i) for i, s in enumerate(subjects[:2])]
    honours = workload.honour_history(subjects[2])
    requests = workload_objections.request_history(subjects[3], str(rng.randrange(10**5)), helpers.today())
    # a key person outside 禹州市 and 长葛市, whose key-person coverage tests/integration/test_counties.py counts
    person = next(p for p in (workload.subjects(rng, 1, persons_share=1.0)[0] for _ in range(100))
                  if p.id[:6] not in ("411081", "411082"))
    phases = [[e for life in lives for e in life[0]] + workload.honoured_life(subjects[2]) + honours[0] + requests[0]
              + [workload.key_person_registered(person, "teacher", date(2020, 9, 1))],
              [e for life in lives for e in life[1]] + honours[1] + requests[1], requests[2]]
    outcomes = await _submit(settings, phases[0])
    phases[1].append(await release_world.next_release(settings, subjects[0], 32))
    outcomes += await _submit(settings, phases[1])
    outcomes += await _submit(settings, phases[2])

    refused = [(o["event_id"], o["reasons"]) for o in outcomes if o["status"] != "ACCEPTED"]
    assert refused == []
    records = [r for phase in phases for _, r in phase]
    assert {r["envelope"]["event_type"] for r in records} == EVENT_TYPES

    entity_ids = {o["entity_id"] for o in outcomes}
    entries = await helpers.ledger_entries(settings, entity_ids)
    ours = {r["envelope"]["event_id"] for r in records}  # the publisher's entity holds other releases too
    assert sum(e["event_id"] in ours for es in entries.values() for e in es) == len(records)
    for entity, es in entries.items():
        assert [e["entity_version"] for e in es] == list(range(1, len(es) + 1)), entity
        assert chain.broken_links(es) == [], entity
        assert all(len(e["hash"]) == 32 for e in es)
    by_event = {e["event_id"]: e for es in entries.values() for e in es if e["event_id"] in ours}
    for o in outcomes:
        e = by_event[o["event_id"]]
        assert (o["entity_version"], o["ledger_partition"], o["ledger_offset"]) == (
            e["entity_version"], e["_partition"], e["_offset"])
    assert Counter(e["event_type"] for e in by_event.values()) == Counter(r["envelope"]["event_type"] for r in records)


def _with_new_id(dept_rec):  # type: ignore[no-untyped-def]
    dept, rec = copy.deepcopy(dept_rec)
    rec["envelope"]["event_id"] = str(uuid.uuid4())
    return dept, rec


async def test_forbidden_submissions_are_refused_and_append_nothing(settings, services) -> None:
    rng = helpers.rng("forbidden")
    listed, clean = workload.subjects(rng, 2, persons_share=0.0)
    setup = [workload.debtor_listed(listed, "（2026）豫10执77号", date(2026, 10, 12), ground=4),
             workload.workload_penalty(rng, listed, "xc-samr", "许市监罚〔2026〕77号", date(2026, 10, 20), "general"),
             workload.registered(clean, date(2020, 1, 2))]
    assert {o["status"] for o in await _submit(settings, setup)} == {"ACCEPTED"}
    listing_event = setup[0][1]["envelope"]["event_id"]
    minor = workload.Subject("411002201201010012", "RIC", "张小明")  # born 2012: a minor in 2026
    # the future is the clock's: after today in China Standard Time, whatever the date of the run
    next_year, in_a_month = helpers.today().year + 1, helpers.today() + timedelta(days=30)

    cases = [
        (workload.debtor_delisted(clean, "（2026）豫10执77号", date(2026, 11, 2)), "case_no", "list.not_listed"),
        (workload.wage_delisted(listed, "许人社欠薪〔2026〕1号", date(2026, 11, 2), date(2026, 11, 1)),
         "decision_no", "list.not_listed"),
        (workload.repaired(listed, "administrative_penalty", "许市监罚〔2026〕77号", date(2026, 11, 20)),
         "decision_date", "repair.before_minimum_period"),
        (workload.honour(listed, date(2026, 11, 2)), "honour", "honour.blacklisted"),
        (workload.expired(listed, "dishonest_debtor", "（2026）豫10执77号", listing_event, date(2026, 11, 20)),
         "expired_on", "list.period_not_ended"),
        (workload.debtor_listed(minor, "（2026）豫10执78号", date(2026, 11, 2)), "subject.id", "debtor.minor"),
        (workload.procurement_ban(clean, "许财采罚〔2026〕9号", date(2026, 11, 2), months=48), "ban_months",
         "list.period_out_of_range"),
        (workload.feedback(clean, listing_event, date(2026, 11, 2)), "trigger_event_id", "feedback.unknown_trigger"),
        (workload.registered(clean, date(2021, 1, 2)), "registered_on", "entity.already_registered"),
        (workload.debtor_listed(listed, "（2026）豫10执77号", date(2026, 11, 2)), "case_no", "list.already_listed"),
        (workload.penalty_revoked(clean, "许市监罚〔2026〕77号", date(2026, 11, 2)), "penalty_decision_no",
         "penalty.unknown"),
        (workload.tax_rated(clean, next_year, "A", date(2026, 11, 2)), "year", "tax_rating.year"),
        (workload.debtor_listed(listed, "（2026）豫10执79号", in_a_month), "valid_from", "time.future"),
    ]
    entity_ids = {"uscc:" + listed.id, "uscc:" + clean.id}
    before = await helpers.ledger_entries(settings, entity_ids)
    outcomes = await _submit(settings, [_with_new_id(c[0]) for c in cases])
    got = [(o["status"], [(r["field"], r["code"]) for r in o["reasons"]]) for o in outcomes]
    assert got == [("REJECTED", [(field, code)]) for _, field, code in cases]
    assert all(r["message"] for o in outcomes for r in o["reasons"])
    after = await helpers.ledger_entries(settings, entity_ids)
    assert {k: [e["event_id"] for e in v] for k, v in after.items()} == \
        {k: [e["event_id"] for e in v] for k, v in before.items()}


async def test_forged_unsigned_and_unauthorized_submissions_append_nothing(settings, services) -> None:
    from ledger.records import submissions
    from schemas import registry

    rng = helpers.rng("who-may-say-what")
    subject = workload.subjects(rng, 1, persons_share=0.0)[0]
    _, rec = workload.debtor_listed(subject, "（2026）豫10执90号", date(2026, 11, 2))
    court_key = signing.private_key(settings.keys_dir, "xc-court")
    tax_key = signing.private_key(settings.keys_dir, "xc-tax")

    def variant(event_id: str, department: str, key: str | None) -> tuple[bytes, bytes, list]:
        r = copy.deepcopy(rec)
        r["envelope"]["event_id"], r["envelope"]["source_department"] = event_id, department
        k, value, _ = submissions.make(r, department, court_key)
        headers = [("event-id", event_id.encode()), ("department", department.encode())]
        if key is not None:
            headers.append(("signature", signing.sign(key, value)))
        return k, value, headers

    cases = {
        "forged": (variant("forged-" + str(uuid.uuid4()), "xc-court", tax_key), "signature.invalid"),
        "unsigned": (variant("unsigned-" + str(uuid.uuid4()), "xc-court", None), "signature.missing"),
        # the tax bureau signs correctly with its own key, but may not list dishonest debtors
        "unauthorized": (variant("unauth-" + str(uuid.uuid4()), "xc-tax", tax_key), "department.not_authorized"),
        # signed and authorized, but its id holds a line break: refused by the sequencer, whoever produced it
        "line break": (variant("id\n" + str(uuid.uuid4()), "xc-court", court_key), "event_id.character"),
        "too long": (variant("x" * 129 + str(uuid.uuid4()), "xc-court", court_key), "event_id.too_long"),
    }
    async with helpers.client(settings, "xc-court") as c:
        for (key, value, headers), _code in cases.values():
            await c.producer.send_and_wait(registry.SUBMISSIONS.name, key=key, value=value, headers=headers)
        outcomes = {name: await c.outcome(dict(h)["event-id"].decode(), timeout=30)
                    for name, ((_k, _v, h), _code) in cases.items()}
    assert {n: (o["status"], o["reasons"][0]["code"]) for n, o in outcomes.items()} == \
        {n: ("REJECTED", code) for n, (_m, code) in cases.items()}
    assert await helpers.ledger_entries(settings, {"uscc:" + subject.id}) == {}

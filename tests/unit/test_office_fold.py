"""Through the sequencer and the projector's fold over the in-memory broker (tests/fakes.py): a register
reports key persons, a court lists entities of several counties, the credit office approves two
releases and a correction; the ledger numbers them, refuses a number given twice, and the fold writes
every row with its county, the persons' groups, and each release with its entries exactly as approved."""

from __future__ import annotations

import dataclasses
import random
from datetime import date
from pathlib import Path
from typing import Any

from stdnum.cn import ric as stdnum_ric

from ledger.domain import releases
from ledger.platform import signing
from ledger.platform.clock import Clock
from ledger.records import submissions
from ledger.rules import loader
from ledger.sequencer.core import Sequencing
from ledger.sequencer.service import SequencerService
from ops import workload
from projections.rows import Folder, Incoming, Loaded
from schemas import registry
from tests.fakes import FakeKafka, run_until

RULES = loader.load()
PEPPER = b"unit-test-pepper-0123456789"
KEYS = {d: signing.new_keypair() for d in ("xc-court", "xc-justice", "xc-samr", "xc-credit-office")}
TODAY = date(2026, 11, 27)


async def _sequence(kafka: FakeKafka, tmp: Path, recs: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    for dept, rec in recs:
        key, value, headers = submissions.make(rec, dept, KEYS[dept][0])
        kafka.broker.append(registry.SUBMISSIONS.name, submissions.partition_of(key), key, value, headers)
    clock = Clock.on(TODAY)
    core = Sequencing({d: pub for d, (_, pub) in KEYS.items()}, PEPPER, RULES, today=clock.today, now=clock.now)
    outcomes = lambda: {r.key.decode(): registry.decode(r.value, "Outcome")[1]  # noqa: E731
                        for r in kafka.broker.records(registry.OUTCOMES.name) if r.key}
    await run_until(SequencerService(kafka, core, tmp, cache_mib=8),
                    lambda: all(rec["envelope"]["event_id"] in outcomes() for _, rec in recs))
    return outcomes()


def _fold(kafka: FakeKafka) -> Any:
    batch = [Incoming(r.partition, r.offset, r.key, r.value, 1_790_000_000_000)
             for r in kafka.broker.records(registry.EVENTS.name)]
    return Folder(RULES).fold(batch, Loaded({}, set()))


def _entry(row: tuple[Any, ...], version: int) -> dict[str, Any]:
    """A release entry from a list_inserts row of the fold, as the command drafts it."""
    entity, kind, ref, colour, reason, department, listed_on, legal_end, _, _, event, name, public, category, county = row
    return {"colour": colour, "list_kind": kind, "entity_id": entity, "public_id": public, "subject_name": name,
            "category": category, "county": county, "county_name": RULES.divisions.by_id[county].name, "ref": ref,
            "reason": reason, "department": department,
            "department_name": RULES.departments.departments[department].name, "listed_on": listed_on.isoformat(),
            "legal_end": legal_end.isoformat() if legal_end else None, "listing_event_id": event,
            "entity_version": version}


async def test_counties_key_persons_and_releases_from_the_ledger_to_the_rows(tmp_path: Path) -> None:
    rng = random.Random(3)
    yuzhou = dataclasses.replace(workload.subjects(rng, 1, persons_share=0.0)[0], id=workload.make_uscc(rng, "91", "411081"))
    city_level = dataclasses.replace(yuzhou, id=workload.make_uscc(rng, "91", "411000"), name="许昌市本级某公司")
    elsewhere = dataclasses.replace(yuzhou, id=workload.make_uscc(rng, "91", "410102"), name="郑州某公司")
    old_county = workload.Subject(_ric("41102319900101123"), "RIC", "张建安")  # 许昌县 (1986-2016): today's 建安区
    lawyer = workload.subjects(rng, 1, persons_share=1.0)[0]
    listed = [workload.debtor_listed(s, f"（2026）豫10执{i}号", date(2026, 10, 5 + i), ground=4)
              for i, s in enumerate((yuzhou, city_level, elsewhere, old_county))]
    kafka = FakeKafka()
    outcomes = await _sequence(kafka, tmp_path / "s", [
        *listed, workload.key_person_registered(lawyer, "lawyer", date(2024, 3, 1)),
        workload.key_person_registered(lawyer, "enterprise_executive", date(2025, 6, 1))])
    assert {o["status"] for o in outcomes.values()} == {"ACCEPTED"}
    ops = _fold(kafka)
    counties = {row[0]: row[16] for row in ops.entities.values()}
    assert counties[f"uscc:{yuzhou.id}"] == "411081" and counties[f"uscc:{city_level.id}"] == "411000"
    assert counties[f"uscc:{elsewhere.id}"] == "outside"
    assert {row[14] for row in ops.list_inserts} == {"411081", "411000", "outside", "411003"}
    persons = [row for row in ops.entities.values() if row[17]]
    assert [sorted(row[17]) for row in persons] == [["enterprise_executive", "lawyer"]]
    assert persons[0][3].count("*") == 8  # the masked ID number, never the clear one

    entries = [_entry(row, 1) for row in ops.list_inserts]
    approval = workload.release_approved(1, "2026-10", entries, date(2026, 11, 5))
    again = workload.release_approved(1, "2026-10", entries[:1], date(2026, 11, 5))  # number 1 a second time
    correction = workload.release_approved(2, "2026-10", entries[1:], date(2026, 11, 20), corrects=1,
                                           note="撤回第1条：该案已履行完毕，列入有误")
    outcomes = await _sequence(kafka, tmp_path / "s", [approval, again, correction])
    status = {k: (o["status"], [r["code"] for r in o["reasons"]]) for k, o in outcomes.items()}
    assert status[approval[1]["envelope"]["event_id"]] == ("ACCEPTED", [])
    assert status[again[1]["envelope"]["event_id"]] == ("REJECTED", ["release.number"])
    assert status[correction[1]["envelope"]["event_id"]] == ("ACCEPTED", [])

    ops = _fold(kafka)
    assert [(r[0], r[5], r[15]) for r in ops.releases] == [(1, None, 4), (2, 1, 3)]
    assert [r[14] for r in ops.releases] == [approval[1]["content_sha256"], correction[1]["content_sha256"]]
    stored = [dict(zip(("release_no", "seq", *releases.ENTRY_FIELDS), r, strict=True)) for r in ops.release_entries]
    first_release = [{k: v for k, v in e.items() if k not in ("release_no", "seq")} for e in stored if e["release_no"] == 1]
    body = {"period": "2026-10", "title": approval[1]["title"], "corrects": None, "entries": first_release}
    assert releases.content_digest(body) == approval[1]["content_sha256"]  # the rows give the signed digest


def _ric(first17: str) -> str:
    return first17 + stdnum_ric.calc_check_digit(first17 + "0")

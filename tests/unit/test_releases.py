"""红黑榜 releases, pure (ledger/domain/releases.py): the approval judged against the publisher's state,
every refusal naming its field; the number is the publisher's own sequence; the digest is the canonical
content's; a correction names the release it corrects; and the record the command builds
(projections/releases/content.py) is one the rules accept."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ledger.domain import releases
from ledger.domain.decide import decide
from ledger.domain.errors import Rejection
from ledger.domain.model import EntityState, evolve
from ledger.records.events import event_of
from ledger.rules import loader
from ops import workload
from projections.releases import content

BOOK = loader.load()
RULES = BOOK.releases
TODAY = date(2026, 11, 27)
OFFICE = f"uscc:{RULES.publisher_id}"


def _entry(n: int, colour: str = "black", listed_on: str = "2026-10-12", **extra: Any) -> dict[str, Any]:
    return {"colour": colour, "list_kind": "dishonest_debtor" if colour == "black" else "red",
            "entity_id": f"uscc:91411002MA00000{n:03d}", "public_id": f"91411002MA00000{n:03d}",
            "subject_name": f"许昌第{n}有限公司", "category": "enterprise", "county": "411002", "county_name": "魏都区",
            "ref": f"（2026）豫1002执{n}号", "reason": "有履行能力而拒不履行", "department": "xc-court-weidu",
            "department_name": "许昌市魏都区人民法院", "listed_on": listed_on, "legal_end": None,
            "listing_event_id": f"e{n}", "entity_version": 2, **extra}


def _approval(number: int = 1, entries: list[dict[str, Any]] | None = None, period: str = "2026-10",
              corrects: int | None = None, note: str | None = None, **changes: Any) -> tuple[str, dict[str, Any]]:
    dept, rec = workload.release_approved(number, period, entries if entries is not None else [_entry(1), _entry(2, "red")],
                                          date(2026, 11, 5), corrects, note)
    rec.update(changes)
    return dept, rec


def _judge(state: EntityState, dept_rec: tuple[str, dict[str, Any]], entity_id: str = OFFICE) -> EntityState:
    dept, rec = dept_rec
    event = event_of(rec, entity_id=entity_id, department=dept)
    assert decide(state, event, TODAY, BOOK.publication, BOOK.catalogue, key_persons=BOOK.key_persons, releases=RULES) == []
    return evolve(state, event)


def _refused(state: EntityState, dept_rec: tuple[str, dict[str, Any]], entity_id: str = OFFICE) -> tuple[str, str]:
    dept, rec = dept_rec
    with pytest.raises(Rejection) as info:
        decide(state, event_of(rec, entity_id=entity_id, department=dept), TODAY, BOOK.publication, BOOK.catalogue,
               key_persons=BOOK.key_persons, releases=RULES)
    assert info.value.message and "(" in info.value.message  # Chinese, then English in brackets
    return info.value.field, info.value.code


def test_releases_are_numbered_one_after_the_other_by_the_publisher() -> None:
    first = _judge(EntityState(), _approval(1))
    assert releases.last_number(first) == 1 and first.releases["1"]["period"] == "2026-10"
    assert _refused(first, _approval(1)) == ("release_no", "release.number")
    assert _refused(first, _approval(2)) == ("period", "release.period_released")  # a period is released once
    assert _refused(first, _approval(3, period="2026-Q3", entries=[_entry(5, listed_on="2026-08-01")])) == \
        ("release_no", "release.number")
    second = _judge(first, _approval(2, period="2026-Q3", entries=[_entry(5, listed_on="2026-08-01")]))
    assert releases.last_number(second) == 2
    assert EntityState.from_json(second.to_json()) == second


def test_only_the_publisher_approves_a_release_about_itself() -> None:
    assert _refused(EntityState(), _approval(), entity_id="uscc:91411002MA00000001") == ("subject.id", "release.publisher")
    dept, rec = _approval()
    assert _refused(EntityState(), ("xc-samr", rec)) == ("subject.id", "release.publisher")
    with pytest.raises(TypeError, match="release rules"):
        decide(EntityState(), event_of(rec, entity_id=OFFICE, department=dept), TODAY, BOOK.publication)


def test_the_digest_must_be_the_contents() -> None:
    dept, rec = _approval()
    rec["entries"][0]["reason"] = "改过的事由"
    assert _refused(EntityState(), (dept, rec)) == ("content_sha256", "release.digest")


def test_three_different_people_and_dates_in_order() -> None:
    assert _refused(EntityState(), _approval(reviewed_by="张强")) == ("reviewed_by", "release.four_eyes")
    assert _refused(EntityState(), _approval(reviewed_by="李明")) == ("reviewed_by", "release.four_eyes")
    assert _refused(EntityState(), _approval(approved_by=" ")) == ("approved_by", "required")
    assert _refused(EntityState(), _approval(approved_on=date(2026, 11, 4))) == ("approved_on", "time.order")
    assert _refused(EntityState(), _approval(reviewed_on=date(2026, 10, 30))) == ("reviewed_on", "time.order")
    assert _refused(EntityState(), _approval(approved_on=TODAY + timedelta(days=1))) == ("approved_on", "time.future")


def test_a_release_is_drawn_once_its_period_is_over() -> None:
    drawn = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)  # 23:00 on 31 October in Beijing: still October
    assert _refused(EntityState(), _approval(drawn_at=drawn)) == ("drawn_at", "release.period_not_over")
    assert _judge(EntityState(), _approval(drawn_at=datetime(2026, 10, 31, 16, 0, tzinfo=UTC))).releases


@pytest.mark.parametrize(("entries", "field", "code"), [
    ([_entry(1, listed_on="2026-09-30")], "entries[0].listed_on", "release.entry_period"),
    ([_entry(1), _entry(1)], "entries[1]", "release.duplicate_entry"),
    ([_entry(1, colour="red", list_kind="dishonest_debtor")], "entries[0].colour", "release.colour"),
    ([_entry(1, public_id="411002199001011234")], "entries[0].public_id", "release.clear_id_number"),
    ([_entry(1, reason="当事人411002199001011234拒不履行")], "entries[0].reason", "release.clear_id_number"),
    ([_entry(1, subject_name="")], "entries[0].subject_name", "required"),
    ([], "entries", "release.empty"),
])
def test_every_entry_is_checked(entries: list[dict[str, Any]], field: str, code: str) -> None:
    assert _refused(EntityState(), _approval(entries=entries)) == (field, code)


def test_at_most_max_entries() -> None:
    many = [_entry(i) for i in range(RULES.max_entries + 1)]
    assert _refused(EntityState(), _approval(entries=many)) == ("entries", "release.too_large")


def test_the_period_and_the_cadence() -> None:
    dept, rec = _approval(period="2026-10")
    rec["period"] = "2026-13"
    assert _refused(EntityState(), (dept, rec)) == ("period", "release.period")
    assert releases.period_of("2026-q4") == releases.Period("2026-Q4", "quarter", "2026年第4季度", date(2026, 10, 1),
                                                            date(2026, 12, 31))
    for bad in ("2026-00", "1999-01", "2026-Q5", "2026/11", ""):
        with pytest.raises(ValueError):
            releases.period_of(bad)


def test_a_correction_names_the_release_it_corrects() -> None:
    first = _judge(EntityState(), _approval(1))
    assert _refused(first, _approval(2, corrects=1)) == ("correction_note", "required")
    assert _refused(first, _approval(2, corrects=7, note="x")) == ("corrects", "release.unknown")
    assert _refused(first, _approval(2, note="说明")) == ("correction_note", "release.not_a_correction")
    other = [_entry(5, listed_on="2026-08-01")]
    assert _refused(first, _approval(2, period="2026-Q3", entries=other, corrects=1, note="x")) == \
        ("period", "release.correction_period")
    corrected = _judge(first, _approval(2, entries=[_entry(2, "red")], corrects=1, note="撤回第1条：列入有误"))
    assert corrected.releases["1"]["corrected_by"] == 2 and corrected.releases["2"]["corrects"] == 1
    # a correction may withdraw everything; the corrected release is corrected again only through its correction
    assert _refused(corrected, _approval(3, entries=[], corrects=1, note="x")) == ("corrects", "release.already_corrected")
    assert _judge(corrected, _approval(3, entries=[], corrects=2, note="全部撤回")).releases["2"]["corrected_by"] == 3


def test_the_digest_is_the_same_from_avro_dates_or_json_text() -> None:
    _, rec = _approval()
    as_json = json.loads(json.dumps(rec, default=str))
    assert releases.content_digest(rec) == releases.content_digest(as_json) == rec["content_sha256"]
    body = releases.canonical_bytes(releases.content_of(rec))
    assert json.loads(body)["entries"][0]["listed_on"] == "2026-10-12" and b" " not in body.replace("许".encode(), b"")


def test_compare_says_what_a_correction_withdrew_added_and_changed() -> None:
    old = [_entry(1), _entry(2), _entry(3)]
    new = [_entry(1), _entry(3, reason="更正后的事由", entity_version=5), _entry(4)]
    c = releases.compare(old, new)
    assert [e["ref"] for e in c.withdrawn] == [_entry(2)["ref"]] and [e["ref"] for e in c.added] == [_entry(4)["ref"]]
    assert [(a["reason"], b["reason"]) for a, b in c.changed] == [("有履行能力而拒不履行", "更正后的事由")]
    assert releases.compare(old, [dict(e, entity_version=9) for e in old]).changed == []  # a later version only


def test_the_records_event_id_is_the_same_for_the_same_content_and_number() -> None:
    a = content.approval_event_id(1, releases.content_digest(_approval()[1]))
    assert a == _approval()[1]["envelope"]["event_id"] and a.startswith("release-1-")
    _, other = _approval(entries=[_entry(9)])
    assert other["envelope"]["event_id"] != a


def test_the_release_rules_file_is_checked() -> None:
    from ledger.domain.errors import RulesError

    doc = json.loads((loader.default_directory() / "releases.v1.json").read_text(encoding="utf-8"))
    for change, entry in ((lambda d: d["publisher"].update(department="xc-samr"), "publisher.department"),
                          (lambda d: d["publisher"].update(id="91411002MA0000000X"), "publisher.id"),
                          (lambda d: d["cadences"].update(week={"title": "周", "legal_source": "x"}), "cadences.week"),
                          (lambda d: d.update(max_entries=0), "max_entries")):
        bad = copy.deepcopy(doc)
        change(bad)
        with pytest.raises(RulesError) as info:
            releases.parse_release_rules(bad, "releases.v1.json", BOOK.departments)
        assert info.value.entry == entry

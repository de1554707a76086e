"""One conversion of a record into the domain's Event: the Avro form and the JSON form (the ledger
copy's jsonb) of the same record give the same Event, and the envelope never reaches the body."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from ledger.records.events import body_of, event_of

RECORD = {
    "envelope": {"event_id": "e-1", "event_type": "AdministrativePenaltyImposed", "source_department": "xc-samr",
                 "valid_from": date(2026, 3, 2), "valid_to": date(2029, 3, 1),
                 "recorded_at": datetime(2026, 3, 3, 8, 0, tzinfo=UTC),
                 "subject": {"id": "91411002MA90P4R61W", "id_type": "USCC", "name": "许昌测试有限公司"}},
    "penalty_decision_no": "许市监罚〔2026〕1号", "severity": "general",
}


def test_the_avro_and_the_json_form_give_the_same_event() -> None:
    as_json = json.loads(json.dumps(RECORD, default=lambda v: v.isoformat()))
    a = event_of(RECORD, entity_id="uscc:91411002MA90P4R61W")
    b = event_of(as_json, entity_id="uscc:91411002MA90P4R61W")
    assert a == b
    assert a.valid_from == date(2026, 3, 2) and a.valid_to == date(2029, 3, 1)
    assert a.recorded_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert a.department == "xc-samr" and a.event_type == "AdministrativePenaltyImposed"
    assert "envelope" not in a.body and a.body == body_of(RECORD)


def test_the_signing_department_and_the_birth_date_are_the_callers() -> None:
    e = event_of(RECORD, entity_id="ric:abc", department="xc-court", subject_birth_date=date(1990, 1, 2))
    assert e.department == "xc-court" and e.subject_birth_date == date(1990, 1, 2)
    assert event_of({**RECORD, "envelope": {**RECORD["envelope"], "valid_to": None}}, entity_id="x").valid_to is None

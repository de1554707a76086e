"""The catalogue as a schema registry shows it (schemas/subjects.py), and the evolution of HonourAwarded
from v1 to v2 seen by readers that hold only one of the two schemas.

* Subjects follow the TopicRecordNameStrategy, one per topic and record it carries; versions are the
  record name's ids in catalogue order.
* Each served schema text parses alone (no named type left to look up) and decodes what the project
  writes exactly as the project's own decode does, for every sample of every kept version.
* An old reader (v1 schema) reads v2 data, a new one (v2) reads v1 data: fastavro's resolution.
"""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest

from schemas import registry, subjects
from tests.unit.test_schemas import _samples


def test_subjects_are_topic_and_record_names_for_every_topic() -> None:
    subs = subjects.subjects()
    assert subs["credit.lists.current-credit.ListStatus"] == (202, 206)
    assert subs["credit.alerts-credit.Alert"] == (203,)
    assert subs["credit.lists.changes-credit.ListChange"] == (201, 205)
    assert subs["credit.events-credit.LedgerEntry"] == (1, 4, 5)
    assert subs["credit.submissions-credit.HonourAwarded"] == (115, 122)
    assert subs["credit.submissions-credit.EntityRegistered"] == (117, 131)
    assert subs["credit.submissions-credit.ListReleaseApproved"] == (132,)
    assert subs["credit.checkpoints-credit.TreeHead"] == (301,)
    # every topic has its subjects, every catalogued id is in at least one subject
    assert {s.split("-credit.")[0] for s in subs} == {t.name for t in registry.TOPICS}
    assert {i for ids in subs.values() for i in ids} == set(registry.catalogue().by_id)
    assert list(subs) == sorted(subs)
    families = {s.split("-credit.")[1] for s in subs if s.startswith("credit.submissions-")}
    assert families == set(subjects.families()) and "LedgerEntry" not in families and len(families) == 29


def test_versions_and_the_latest() -> None:
    assert subjects.version("credit.events-credit.LedgerEntry", 2) == subjects.Version(
        "credit.events-credit.LedgerEntry", 2, 4)
    assert subjects.version("credit.events-credit.LedgerEntry", -1).id == 5  # type: ignore[union-attr]
    assert subjects.version("credit.events-credit.LedgerEntry", 4) is None
    assert subjects.version("credit.events-credit.LedgerEntry", 0) is None
    assert subjects.version("credit.events-credit.Nothing", 1) is None
    assert subjects.versions_of_id(122) == [subjects.Version("credit.submissions-credit.HonourAwarded", 2, 122)]
    assert {v.subject for v in subjects.versions_of_id(202)} == {
        f"{t.name}-credit.ListStatus" for t in registry.TOPICS if t.value == "ListStatus"}
    assert subjects.versions_of_id(999) == []


@pytest.mark.parametrize("schema_id", sorted(registry.catalogue().by_id))
def test_the_served_schema_stands_alone_and_decodes_what_the_project_writes(schema_id: int) -> None:
    s = registry.catalogue().by_id[schema_id]
    text = subjects.schema_text(schema_id)
    alone = fastavro.parse_schema(json.loads(text))  # no named_schemas: everything is inlined
    assert alone["name"] == f"credit.{s.name}"
    samples = _samples(s.file)
    assert samples, f"no samples for {s.file}"
    for rec in samples:
        data = registry.encode(s.name, rec, version=s.version)
        assert registry.schema_id_of(data) == schema_id
        theirs = fastavro.schemaless_reader(io.BytesIO(data[5:]), alone, None)
        ours = fastavro.schemaless_reader(io.BytesIO(data[5:]), s.parsed, None)
        assert theirs == ours


def _v(version: int) -> Any:
    return fastavro.parse_schema(json.loads(subjects.schema_text(115 if version == 1 else 122)))


def test_an_old_reader_reads_v2_honours_and_a_new_one_reads_v1() -> None:
    v2_record = _samples("HonourAwarded.v2.avsc")[0]
    assert v2_record["document_url"]
    v2_data = registry.encode("HonourAwarded", v2_record)  # the newest: v2
    assert registry.schema_id_of(v2_data) == 122
    old = fastavro.schemaless_reader(io.BytesIO(v2_data[5:]), _v(2), _v(1))  # writer v2, reader v1
    assert "document_url" not in old and old["document_no"] == v2_record["document_no"]
    assert old == {k: v for k, v in registry.decode(v2_data)[1].items() if k != "document_url"}
    v1_data = registry.encode("HonourAwarded", _samples("HonourAwarded.v1.avsc")[0], version=1)
    new = fastavro.schemaless_reader(io.BytesIO(v1_data[5:]), _v(1), _v(2))  # writer v1, reader v2
    assert new["document_url"] is None
    assert new == registry.decode(v1_data)[1]  # the project's decode resolves v1 to v2 the same way

"""The schema registry API (projections/web/schema_registry.py, a process of the stack) as clients
nobody here wrote see it: every route and error body over plain HTTP; confluent-kafka (librdkafka) with
its SchemaRegistryClient and AvroDeserializer reading credit.lists.current, credit.lists.changes and
credit.alerts (read_committed; in a child process on the real clock, tests/librdkafka_read.py) and
decoding every record as the project's own decode does; and the
evolution of HonourAwarded: a v2 submission through the client, judged by the sequencer, on
credit.events and in the views, read by an old consumer that holds the v1 schema only."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import date
from typing import Any

import aiohttp
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer

from ledger.client import submit_as_departments
from ledger.platform import config
from ops import workload
from schemas import registry, subjects
from tests import feeds, helpers

MEDIA = "application/vnd.schemaregistry.v1+json"


def _url(settings: config.Settings) -> str:
    return f"http://127.0.0.1:{settings.registry_port}"


async def _get(settings: config.Settings, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as http, http.request(method, _url(settings) + path, json=body) as r:
        return r.status, await r.json(content_type=None), r.headers["Content-Type"]


async def test_every_route_answers_as_a_confluent_registry(settings, services) -> None:
    status, body, ctype = await _get(settings, "/schemas/ids/202")
    assert status == 200 and ctype.startswith(MEDIA)
    assert body == {"schema": subjects.schema_text(202)} and json.loads(body["schema"])["name"] == "ListStatus"
    assert (await _get(settings, "/schemas/ids/202/versions"))[1] == [
        {"subject": "credit.lists.current-credit.ListStatus", "version": 1}]
    assert (await _get(settings, "/subjects/credit.lists.current-credit.ListStatus/versions"))[1] == [1, 2]
    assert (await _get(settings, "/schemas/types"))[1] == ["AVRO"]
    assert (await _get(settings, "/subjects"))[1] == list(subjects.subjects())
    assert (await _get(settings, "/subjects?subjectPrefix=credit.lists."))[1] == [
        "credit.lists.changes-credit.ListChange", "credit.lists.current-credit.ListStatus"]
    assert (await _get(settings, "/subjects/credit.submissions-credit.HonourAwarded/versions"))[1] == [1, 2]
    status, latest, _ = await _get(settings, "/subjects/credit.submissions-credit.HonourAwarded/versions/latest")
    assert status == 200 and latest == {"subject": "credit.submissions-credit.HonourAwarded", "version": 2, "id": 122,
                                        "schema": subjects.schema_text(122)}
    assert (await _get(settings, "/subjects/credit.events-credit.LedgerEntry/versions/2"))[1]["id"] == 4
    assert (await _get(settings, "/subjects/credit.events-credit.LedgerEntry/versions/-1"))[1]["id"] == 5
    assert (await _get(settings, "/config"))[1] == {"compatibilityLevel": "BACKWARD"}
    # a look-up of a schema under a subject (what a deserializer asks to learn a writer's version)
    status, found, _ = await _get(settings, "/subjects/credit.events-credit.LedgerEntry", "POST",
                                  {"schema": subjects.schema_text(4)})
    assert status == 200 and (found["version"], found["id"]) == (2, 4)
    # the registry's error bodies
    errors = {
        "/schemas/ids/999": (404, 40403), "/schemas/ids/abc": (404, 40403),
        "/subjects/credit.nothing-credit.X/versions": (404, 40401),
        "/subjects/credit.nothing-credit.X/versions/1": (404, 40401),
        "/subjects/credit.events-credit.LedgerEntry/versions/4": (404, 40402),
        "/subjects/credit.events-credit.LedgerEntry/versions/0": (422, 42202),
        "/subjects/credit.events-credit.LedgerEntry/versions/one": (422, 42202),
        "/no/such/route": (404, 404),
    }
    for path, (want_status, code) in errors.items():
        status, body, ctype = await _get(settings, path)
        assert (status, body["error_code"]) == (want_status, code), (path, body)
        assert body["message"] and ctype.startswith(MEDIA), path
    assert (await _get(settings, "/schemas/ids/999"))[1] == {"error_code": 40403, "message": "Schema not found"}
    status, body, _ = await _get(settings, "/subjects/credit.events-credit.LedgerEntry", "POST",
                                 {"schema": subjects.schema_text(202)})
    assert (status, body["error_code"]) == (404, 40403)
    status, body, _ = await _get(settings, "/subjects/credit.events-credit.LedgerEntry/versions", "POST", {})
    assert (status, body["error_code"]) == (405, 405)
    assert helpers.metric(settings, "schema-registry", "ledger_schema_registry_responses_total",
                          'route="/schemas/ids/{id}",status="404"') >= 2


def _consume_all(settings: config.Settings, topic: registry.Topic) -> dict[tuple[int, int], Any]:
    """Every committed record of a topic through librdkafka, decoded by confluent's deserializer with the
    registry (tests/librdkafka_read.py, a child process on the real clock): (partition, offset) -> value
    as JSON text."""
    run = subprocess.run([sys.executable, "-m", "tests.librdkafka_read", feeds.SECTOR, _url(settings),
                          topic.name, str(topic.partitions)], capture_output=True, text=True, timeout=120,
                         env=helpers.real_clock_env(PYTHONPATH=str(config.ROOT)))
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    return {(r["p"], r["o"]): _canonical(r["v"]) for r in rows}


def _canonical(value: Any) -> str:
    """A decoded value as the reader prints it (dates and times as str())."""
    return json.dumps(json.loads(json.dumps(value, default=str, ensure_ascii=False)), sort_keys=True,
                      ensure_ascii=False)


async def test_confluent_kafka_decodes_the_list_feeds_and_the_alerts_with_the_registry(settings, services) -> None:
    rng = helpers.rng("standard-clients")
    company = workload.subjects(rng, 1, persons_share=0.0)[0]
    case = f"（2026）豫10执S{rng.randrange(10**6)}号"
    listing = workload.debtor_listed(company, case, date(2026, 10, 9), ground=1)
    delisting = workload.debtor_delisted(company, case, date(2026, 10, 30))
    outcomes = await submit_as_departments(settings, [listing, delisting])
    assert {o["status"] for o in outcomes} == {"ACCEPTED"}, outcomes
    await feeds.wait_for_alerts(settings, {delisting[1]["envelope"]["event_id"]}, 1)

    for topic, record in ((registry.LISTS_CURRENT, "ListStatus"), (registry.LISTS_CHANGES, "ListChange"),
                          (registry.ALERTS, "Alert")):
        ours = {(p, o): _canonical(registry.decode(v, record)[1])
                for p, o, _, v in await helpers.read_topic(settings, topic)}
        theirs = await asyncio.to_thread(_consume_all, settings, topic)
        assert ours, f"{topic.name} is empty: the test would prove nothing"
        assert theirs.keys() == ours.keys(), topic.name
        for position, value in ours.items():
            assert theirs[position] == value, (topic.name, position)
    entity = f"uscc:{company.id}"
    current = [json.loads(v) for v in theirs.values() if json.loads(v)["entity_id"] == entity]
    assert {a["action"] for a in current} == {"impose", "lift"}  # the alerts: impose, then lift


async def test_a_v2_honour_is_judged_stored_and_read_by_old_and_new_readers(settings, services) -> None:
    rng = helpers.rng("honour-v2")
    company = workload.subjects(rng, 1, persons_share=0.0)[0]
    dept, rec = workload.honour(company, date(2026, 3, 2))
    url = "https://www.xuchang.gov.cn/credit/honours/2026-18.html"
    rec = {**rec, "envelope": {**rec["envelope"], "schema_version": 2}, "document_url": url}
    [outcome] = await submit_as_departments(settings, [(dept, rec)])
    assert outcome["status"] == "ACCEPTED", outcome

    # on credit.events: the submission bytes name the v2 schema (id 122) and carry the new field
    entity = f"uscc:{company.id}"
    [entry] = (await helpers.ledger_entries(settings, {entity}))[entity]
    assert registry.schema_id_of(entry["submission"]) == 122
    assert registry.decode(entry["submission"], "HonourAwarded")[1]["document_url"] == url
    # in the views (the query API's history of the entity)
    await helpers.projected(settings)
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{settings.api_port}/entities/{entity}/history") as r:
        history = await r.json()
    assert [(h["event_type"], h["payload"]["document_url"]) for h in history["items"]] == [("HonourAwarded", url)]

    # an old consumer: confluent-kafka's deserializer with the v1 schema as its reader schema reads v2 data
    client = SchemaRegistryClient({"url": _url(settings)})
    old = AvroDeserializer(client, schema_str=subjects.schema_text(115))(entry["submission"])
    assert "document_url" not in old and old["document_no"] == rec["document_no"]
    # a new one (the registry's latest, v2) reads v2 as written and v1 data with the field null
    new = AvroDeserializer(client, schema_str=client.get_latest_version(
        "credit.submissions-credit.HonourAwarded").schema.schema_str)
    assert new(entry["submission"])["document_url"] == url
    v1_data = registry.encode("HonourAwarded", workload.honour(company, date(2026, 3, 3))[1], version=1)
    assert registry.schema_id_of(v1_data) == 115 and new(v1_data)["document_url"] is None

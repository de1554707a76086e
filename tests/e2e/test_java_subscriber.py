"""A sector system's subscriber in Java (examples/java: kafka-clients 4.4.0 and Avro 1.12.2 from Maven
Central, built by ops/bootstrap): it reads credit.lists.current from the beginning (read_committed),
fetches each writer schema by id from the schema registry API and keeps its own table of current
listings; its table for the test's entities equals the query API's active list entries, and a
delisting is in it as an explicit value (listed = false, no entries)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import date
from typing import Any

import aiohttp

from ledger.client import submit_as_departments
from ledger.platform import config
from ledger.platform.kafka_access import password_file
from ops import workload
from schemas import registry
from tests import feeds, helpers

JAR = config.ROOT / "examples" / "java" / "target" / "credit-subscriber.jar"


async def _api_active(settings: config.Settings, entity: str) -> dict[str, list[list[str]]]:
    async with aiohttp.ClientSession() as http, http.get(
            f"http://127.0.0.1:{settings.api_port}/lists", params={"entity": entity, "size": "500"}) as r:
        assert r.status == 200
        items = (await r.json())["items"]
    out: dict[str, list[list[str]]] = {}
    for i in items:
        if i["status"] == "active":
            out.setdefault(f"{entity}|{i['list_kind']}", []).append([i["ref"], i["event_id"]])
    return {k: sorted(v) for k, v in out.items()}


def _java(settings: config.Settings, entities: list[str]) -> dict[str, Any]:
    assert JAR.is_file(), f"{JAR} is missing: ops/bootstrap builds it (mvn -B -q -f examples/java/pom.xml package)"
    args = ["java", "-jar", str(JAR), "--bootstrap", settings.bootstrap_servers, "--user", feeds.SECTOR,
            "--password-file", str(password_file(settings.keys_dir, feeds.SECTOR)),
            "--registry", f"http://127.0.0.1:{settings.registry_port}"]
    for e in entities:
        args += ["--entity", e]
    run = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


async def test_the_java_subscribers_table_equals_the_query_apis_lists(settings, services) -> None:
    rng = helpers.rng("java-subscriber")
    listed, delisted, honoured = workload.subjects(rng, 3, persons_share=0.0)
    cases = [f"（2026）豫10执J{i}{rng.randrange(10**6)}号" for i in range(3)]
    pairs = [workload.debtor_listed(listed, cases[0], date(2026, 9, 1), ground=1),
             workload.debtor_listed(listed, cases[1], date(2026, 9, 2), ground=2),
             workload.debtor_listed(delisted, cases[2], date(2026, 9, 3), ground=1),
             workload.debtor_delisted(delisted, cases[2], date(2026, 9, 20)),
             workload.honour(honoured, date(2026, 9, 4))]
    outcomes = await submit_as_departments(settings, pairs)
    assert {o["status"] for o in outcomes} == {"ACCEPTED"}, outcomes
    entities = [f"uscc:{s.id}" for s in (listed, delisted, honoured)]
    last_events = {p[1]["envelope"]["event_id"] for p in (pairs[1], pairs[3], pairs[4])}

    async def fed() -> bool:  # the list keeper has committed each entity's last change
        seen = {r["last_event_id"] for r in await feeds.records(settings, registry.LISTS_CURRENT, "ListStatus")}
        return last_events <= seen

    await helpers.wait_until(fed, timeout=60, interval=0.5, what="the list keeper's records of the test's entities")
    await helpers.projected(settings)

    table = await asyncio.to_thread(_java, settings, entities)
    assert set(table) == {f"{entities[0]}|dishonest_debtor", f"{entities[1]}|dishonest_debtor",
                          f"{entities[2]}|red"}
    # the delisting is an explicit value in the Java subscriber's table
    assert table[f"{entities[1]}|dishonest_debtor"] == {"listed": False, "entries": []}
    assert len(table[f"{entities[0]}|dishonest_debtor"]["entries"]) == 2
    java_active = {k: sorted([e["ref"], e["event_id"]] for e in row["entries"])
                   for k, row in table.items() if row["listed"]}
    api_active: dict[str, list[list[str]]] = {}
    for e in entities:
        api_active.update(await _api_active(settings, e))
    assert java_active == api_active
    assert table[f"{entities[0]}|dishonest_debtor"]["entries"][0]["listed_on"] in ("2026-09-01", "2026-09-02")

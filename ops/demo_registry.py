"""The demo's part for subscribers on their own tools (called from ops/demo_feeds.py): the read-only
schema registry API answering as a Confluent registry, and the Java subscriber example
(examples/java, kafka-clients and Avro, built by ops/bootstrap) keeping its table of current listings
from credit.lists.current with the writer schemas fetched from that API."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import aiohttp

from ledger.platform import config
from ledger.platform.kafka_access import password_file

JAR = config.ROOT / "examples" / "java" / "target" / "credit-subscriber.jar"


async def show(s: config.Settings, sector: str, entities: list[str], say: Any) -> None:
    base = f"http://127.0.0.1:{s.registry_port}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async with http.get(f"{base}/subjects") as r:
            subjects = await r.json(content_type=None)
        async with http.get(f"{base}/subjects/credit.lists.current-credit.ListStatus/versions/latest") as r:
            latest = await r.json(content_type=None)
    say(f"\n== Schema registry API ({base}, read-only, Confluent-compatible): {len(subjects)} subjects, e.g. "
        + ", ".join(subjects[:3]))
    say(f"   credit.lists.current-credit.ListStatus: latest version {latest['version']} (schema id {latest['id']}); "
        f"a standard AvroDeserializer fetches each record's writer schema by its id (docs/subscribers.md)")
    if not JAR.is_file():
        say(f"   the Java subscriber is not built ({JAR}); ops/bootstrap builds it")
        return
    args = ["java", "-jar", str(JAR), "--bootstrap", s.bootstrap_servers, "--user", sector,
            "--password-file", str(password_file(s.keys_dir, sector)), "--registry", base]
    for e in entities[:3]:
        args += ["--entity", e]
    run = await asyncio.to_thread(subprocess.run, args, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise RuntimeError(f"the Java subscriber failed (exit {run.returncode}): {run.stderr[-1000:]}")
    table = json.loads(run.stdout)
    say(f"== The Java subscriber (examples/java, java -jar {JAR.relative_to(config.ROOT)}): its table of current "
        f"listings from credit.lists.current, for {len(entities[:3])} of the demo's entities:")
    rows = table.items() if isinstance(table, dict) else enumerate(table)
    for key, value in list(rows)[:6]:
        say(f"   {key}: {json.dumps(value, ensure_ascii=False)[:150]}")

"""Helpers of the list-feed and alert tests: the example sector subscriber as a fixture-friendly
object, and readers of the feeds and the alert topic (real Kafka)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from examples.sector_subscriber import SectorSubscriber
from ledger.domain.alerts import alerts_for
from ledger.platform import config
from ledger.platform.kafka_access import access
from ledger.rules import loader
from schemas import registry
from tests import helpers

# the sector system the tests subscribe as (a sector of the department matrix: it may read the feeds)
SECTOR = "sector-banking"


def subscriber(settings: config.Settings, directory: Path, name: str = "sector") -> SectorSubscriber:
    """An example sector subscriber with its own SQLite file in `directory`."""
    return SectorSubscriber(access(settings, SECTOR), directory / f"{name}.sqlite")


async def records(settings: config.Settings, topic: registry.Topic, schema: str) -> list[dict[str, Any]]:
    """Every committed record of a topic, decoded, with its position and key."""
    return [{**registry.decode(v, schema)[1], "_partition": p, "_offset": o, "_key": k.decode() if k else None}
            for p, o, k, v in await helpers.read_topic(settings, topic)]


async def alerts(settings: config.Settings, event_ids: set[str]) -> list[dict[str, Any]]:
    return [a for a in await records(settings, registry.ALERTS, "Alert") if a["trigger_event_id"] in event_ids]


async def changes(settings: config.Settings, event_ids: set[str]) -> list[dict[str, Any]]:
    return [c for c in await records(settings, registry.LISTS_CHANGES, "ListChange") if c["event_id"] in event_ids]


async def wait_for_alerts(settings: config.Settings, event_ids: set[str], n: int,
                          timeout: float = 60.0) -> list[dict[str, Any]]:
    """Wait until at least `n` alerts of these events are committed; returns them."""
    found: list[dict[str, Any]] = []

    async def enough() -> bool:
        found[:] = await alerts(settings, event_ids)
        return len(found) >= n

    await helpers.wait_until(enough, timeout=timeout, interval=0.5, what=f"{n} alerts of {len(event_ids)} events")
    return found


def expected_alerts(changes: list[dict[str, Any]]) -> set[str]:
    """The ids of the alerts the catalogue calls for, computed from the list changes."""
    catalogue = loader.load_catalogue()
    return {d.alert_id for c in changes for d in alerts_for(
        catalogue, c["change_id"], c["list_kind"], c["category"], c["status"] == "listed", c["active_list_kinds"])}


def duplicates(values: list[str]) -> dict[str, int]:
    return {k: n for k, n in Counter(values).items() if n > 1}

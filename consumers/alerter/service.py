"""The alerter: credit.events -> credit.alerts, the joint-punishment catalogue applied.

For every list change of the ledger (the same ListBook step as the list keeper's,
consumers/list_keeper/core.py) it writes one Alert per (change, measure, implementing department), keyed by
the department (ledger/domain/alerts.py decides: impose on a listing or honour; lift on an ending,
or maintain when another active listing keeps the measure in force), in ONE Kafka transaction with
its input offsets and its own state changelog credit.alerter.state (ledger/platform/transactional.py):
exactly once under kill -9; an entry delivered again is skipped by its entity version. The alert id
is deterministic, so receivers can deduplicate too. It reads the ledger itself, beside the list
keeper rather than behind it, so an alert waits for one transaction after the sequencer's, not two.

Run: python -m ops.run alerter [--instance 0] [--metrics-port 9106] (wired in ops/root.py)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from prometheus_client import Counter

from consumers.list_keeper.core import Output
from consumers.list_keeper.service import ListFollower
from ledger.domain.alerts import alerts_for
from ledger.domain.lists import LISTED
from ledger.domain.punishment import Catalogue
from ledger.domain.rulebook import RuleBook
from ledger.platform.clock import SYSTEM
from ledger.platform.kafka_util import KafkaClients
from ledger.platform.transactional import Out
from schemas import registry

ALERTS = Counter("ledger_alerts_total", "Alerts written, by implementing department and action",
                 ["department", "action"])


def alert_records(catalogue: Catalogue, change: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The Alert records of one ListChange record."""
    listed = change["status"] == LISTED
    out = []
    for d in alerts_for(catalogue, change["change_id"], change["list_kind"], change["category"], listed,
                        change["active_list_kinds"]):
        m = d.measure
        out.append({
            "alert_id": d.alert_id, "department": d.department, "action": d.action, "measure_id": m.id,
            "measure_kind": m.kind, "measure_name": m.name, "measure_name_en": m.name_en,
            "legal_basis": m.legal_basis, "actions": sorted(m.actions), "catalogue_version": catalogue.version,
            "still_in_force_by": list(d.still_in_force_by), "entity_id": change["entity_id"],
            "public_id": change["public_id"], "name": change["name"], "category": change["category"],
            "list_kind": change["list_kind"], "ref": change["ref"], "change_status": change["status"],
            "trigger_event_id": change["event_id"], "trigger_event_type": change["event_type"],
            "ledger_partition": change["ledger_partition"], "ledger_offset": change["ledger_offset"],
            "sequenced_at": change["sequenced_at"], "alerted_at": now,
        })
    return out


class Alerter(ListFollower):
    name = "alerter"
    group = "credit-alerter"
    state_topic = registry.ALERTER_STATE
    counter = ALERTS

    def __init__(self, kafka: KafkaClients, rules: RuleBook, instance: str = "0",
                 clock: Callable[[], datetime] = SYSTEM.now) -> None:
        super().__init__(kafka, rules, instance)
        self.catalogue = rules.catalogue
        self.clock = clock  # the alerts' alerted_at

    def emit(self, partition: int, out: Output) -> list[Out]:
        change = out.change
        alerts = alert_records(self.catalogue, change, self.clock())
        for a in alerts:
            self.counts.append((a["department"], a["action"]))
        if alerts:
            self.log.info("alerts", event_id=change["event_id"], entity=change["entity_id"],
                          list_kind=change["list_kind"], status=change["status"],
                          alerts=[f"{a['department']}:{a['action']}:{a['measure_id']}" for a in alerts])
        return [Out(registry.ALERTS, a["department"].encode(), registry.encode("Alert", a)) for a in alerts]

"""The demo's look at who may touch the log: every party logs in to the brokers as its own principal
(SASL/SCRAM-SHA-512) and the ACLs (ops/access.py) let each do only what it needs. The demo asks the
brokers as each party: what is allowed is allowed, and the rest is refused by the broker itself."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka.errors import KafkaError

from ledger.platform import config
from ledger.platform.kafka_access import ADMIN, LIST_KEEPER, KafkaAccess, access
from ledger.platform.kafka_util import KafkaClients, topic_ends
from ledger.rules import loader
from ledger.sequencer.service import GROUP as SEQUENCER_GROUP
from ops import access as plan
from ops.demo_cluster import quiet_clients
from schemas import registry

DEPARTMENT, SECTOR = "xc-samr", "sector-banking"


async def show(s: config.Settings, line: Callable[[str], None]) -> None:
    grants = plan.plan(loader.load_departments())
    line(f"\n== Who may touch the log: {len(plan.principals(grants))} Kafka principals (each department, sector "
         f"system and process its own, SASL/SCRAM-SHA-512), {len(grants)} ACLs (python -m ops.access show)")
    with quiet_clients():  # (the clients log every refusal the demo provokes)
        await _reads(s, line, SECTOR, registry.LISTS_CURRENT)
        await _reads(s, line, SECTOR, registry.EVENTS, ": its signed submissions hold ID numbers in clear")
        await _reads(s, line, DEPARTMENT, registry.OUTCOMES)
        await _reads(s, line, DEPARTMENT, registry.EVENTS)
        await _reads(s, line, "auditor", registry.EVENTS)
        await _writes(s, line, DEPARTMENT, registry.EVENTS, ": only the sequencer writes the ledger")
        await _writes(s, line, LIST_KEEPER, registry.EVENTS, ", the list keeper's own principal included")
        await _writes(s, line, DEPARTMENT, registry.SUBMISSIONS, ": it could fence the sequencer",
                      transactional_id=f"{SEQUENCER_GROUP}-0")
        wrong = KafkaAccess(s.bootstrap_servers, SECTOR, "not-its-password")
        try:
            await plan.read_refusal(wrong, registry.LISTS_CURRENT)
            line("   a wrong password: connected (it should not have)")
        except KafkaError as exc:  # aiokafka: the bootstrap fails once authentication is refused
            line(f"   {SECTOR} with a wrong password: no connection ({type(exc).__name__})")


async def _reads(s: config.Settings, line: Callable[[str], None], who: str, topic: registry.Topic,
                 note: str = "") -> None:
    refusal = await plan.read_refusal(access(s, who), topic)
    line(f"   {who} reading {topic.name}: " + (f"refused by the broker ({refusal}){note}" if refusal else "allowed"))


async def _writes(s: config.Settings, line: Callable[[str], None], who: str, topic: registry.Topic, note: str = "",
                  **producer: str) -> None:
    before = await _ends(s, topic)
    refusal = await plan.write_refusal(access(s, who), topic, b"\x00 not a ledger entry", **producer)
    kept = "; nothing appended" if await _ends(s, topic) == before else ""
    tid = f" with the transactional id {producer['transactional_id']}" if producer else ""
    line(f"   {who} writing {topic.name}{tid}: " + (f"refused by the broker ({refusal}){kept}{note}" if refusal
                                                    else "allowed"))


async def _ends(s: config.Settings, topic: registry.Topic) -> dict[int, int]:
    """The end of each partition, as the operator sees it: a refused write leaves them where they were."""
    return await topic_ends(KafkaClients(access(s, ADMIN)), topic.name, topic.partitions)

"""Who may touch the log: a Kafka principal per party, and the ACLs that give each only what it needs.

    python -m ops.access show     the plan: one line per principal, resource and operation
    python -m ops.access apply    make the cluster match it (ops/stack up runs this): a SCRAM user for
                                  every principal with the password of its file (LEDGER_KEYS_DIR/kafka/),
                                  the plan's ACLs created, any other ACL and any user outside the plan removed

| principal | may |
|---|---|
| every department of the matrix (its id), the credit office's releases (`python -m projections.releases approve`) as xc-credit-office | write credit.submissions; read credit.outcomes |
| every sector system of the matrix (kind "sector") | also read credit.lists.* and credit.alerts, in consumer groups whose names start with its id |
| auditor | read credit.events and credit.checkpoints, in groups starting with "auditor" |
| ledger-sequencer | read credit.submissions and credit.sequencer.state; write credit.events, credit.outcomes and credit.sequencer.state; its group and transactional ids (credit-sequencer) |
| ledger-projector | read credit.events |
| ledger-list-keeper | read credit.events, credit.lists.current and credit.alerts; write credit.lists.changes, credit.lists.current and credit.alerts; its group and transactional ids (credit-list-keeper), and the catalogue change's (credit-recatalogue) |
| ledger-webhook | read credit.alerts; write credit.alerts.deadletter; its group and transactional ids (credit-webhook) |
| ledger-notary | read credit.events; write credit.checkpoints |
| ledger-scheduler | a department (it submits expiries), and read credit.events (the subjects of what expires) |
| ledger-gateway | write credit.submissions; read credit.outcomes (it submits for the departments) |
| ledger-query-api | read credit.events (the auditors' routes check the copy against the log; the credit reports prove their records with it) |
| ledger-supervision | read credit.outcomes, credit.events and credit.alerts; read, write and create its own topics (credit-supervision-*: its tables' changelogs, faust's leader topic); its group (credit-supervision) |
| ledger-public-intake | write credit.submissions; read credit.outcomes (it submits the public's objections and repair applications) |
| the public (department "public") | nothing: only its intake reaches Kafka |
| ledger-admin | everything: a super user of the brokers (their own principal); ops/stack only |

Reading or writing a topic includes describing it; an idempotent producer needs no more than its
write. A denial is Kafka's TOPIC_AUTHORIZATION_FAILED (GROUP_, TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

`apply` speaks to the brokers with confluent-kafka's admin client (librdkafka), which has the
ACL and SCRAM-user requests aiokafka lacks; ops/stack runs it in a child process on the machine's
real clock (librdkafka's timed waits never return under libfaketime: docs/stack-notes.md).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from consumers.list_keeper import recatalogue
from consumers.list_keeper.service import ListKeeper
from consumers.webhook.service import WebhookDeliverer
from ledger.domain.rules import DepartmentMatrix
from ledger.platform import config
from ledger.platform.kafka_access import (
    ADMIN,
    AUDITOR,
    GATEWAY,
    LIST_KEEPER,
    NOTARY,
    PROJECTOR,
    QUERY_API,
    SCHEDULER,
    SEQUENCER,
    SUPERVISION,
    WEBHOOK,
    KafkaAccess,
    access,
)
from ledger.rules import loader
from ledger.sequencer.service import GROUP as SEQUENCER_GROUP
from schemas import registry
from schemas.registry import Topic

READ, WRITE, CREATE = "READ", "WRITE", "CREATE"
TOPIC, GROUP, TRANSACTIONAL_ID = "TOPIC", "GROUP", "TRANSACTIONAL_ID"
LISTS_PREFIX = "credit.lists."  # every list feed, present and to come
SCRAM_ITERATIONS = 8192
TIMEOUT = 30.0


@dataclass(frozen=True, order=True)
class Grant:
    """One ACL: `principal` may `operation` on the resource `name` (every name starting with it when
    `prefixed`)."""

    principal: str
    resource: str
    name: str
    operation: str
    prefixed: bool = False


class _Plan:
    def __init__(self) -> None:
        self.grants: set[Grant] = set()

    def topics(self, principal: str, operation: str, *topics: Topic) -> None:
        self.grants.update(Grant(principal, TOPIC, t.name, operation) for t in topics)

    def own(self, principal: str, group: str) -> None:
        """A consumer group and the transactional ids `<group>-<instance>` of a stream processor."""
        self.grants.add(Grant(principal, GROUP, group, READ, prefixed=True))
        self.grants.add(Grant(principal, TRANSACTIONAL_ID, f"{group}-", WRITE, prefixed=True))


def plan(matrix: DepartmentMatrix) -> list[Grant]:
    """Every ACL of the cluster, from the department matrix and the ledger's own processes."""
    p = _Plan()
    # departments submit and read the outcomes; the intakes (the gateway, the public intake) submit for
    # them; the public itself never reaches Kafka (only its intake's attestation counts)
    for party in [*(d.id for d in matrix.departments.values() if d.kind != "public"), *matrix.intakes]:
        p.topics(party, WRITE, registry.SUBMISSIONS)
        p.topics(party, READ, registry.OUTCOMES)
    # sector systems follow the list feeds and the alerts
    for d in matrix.departments.values():
        if d.kind == "sector":
            p.grants.add(Grant(d.id, TOPIC, LISTS_PREFIX, READ, prefixed=True))
            p.topics(d.id, READ, registry.ALERTS)
            p.grants.add(Grant(d.id, GROUP, d.id, READ, prefixed=True))
    # auditors read the ledger and the signed tree heads
    p.topics(AUDITOR, READ, registry.EVENTS, registry.CHECKPOINTS)
    p.grants.add(Grant(AUDITOR, GROUP, AUDITOR, READ, prefixed=True))
    # the ledger's own processes: the sequencer is the only writer of credit.events
    p.topics(SEQUENCER, READ, registry.SUBMISSIONS, registry.SEQUENCER_STATE)
    p.topics(SEQUENCER, WRITE, registry.EVENTS, registry.OUTCOMES, registry.SEQUENCER_STATE)
    p.own(SEQUENCER, SEQUENCER_GROUP)
    p.topics(PROJECTOR, READ, registry.EVENTS)
    p.topics(LIST_KEEPER, READ, registry.EVENTS, registry.LISTS_CURRENT, registry.ALERTS)
    p.topics(LIST_KEEPER, WRITE, registry.LISTS_CHANGES, registry.LISTS_CURRENT, registry.ALERTS)
    p.own(LIST_KEEPER, ListKeeper.group)
    p.grants.add(Grant(LIST_KEEPER, TRANSACTIONAL_ID, recatalogue.TRANSACTIONAL_ID, WRITE))
    p.topics(WEBHOOK, READ, registry.ALERTS)
    p.topics(WEBHOOK, WRITE, registry.ALERTS_DEADLETTER)
    p.own(WEBHOOK, WebhookDeliverer.group)
    p.topics(NOTARY, READ, registry.EVENTS)
    p.topics(NOTARY, WRITE, registry.CHECKPOINTS)
    p.topics(SCHEDULER, READ, registry.EVENTS)
    p.topics(GATEWAY, WRITE, registry.SUBMISSIONS)
    p.topics(GATEWAY, READ, registry.OUTCOMES)
    p.topics(QUERY_API, READ, registry.EVENTS)
    # the department supervision (a faust app) counts outcomes, events and alerts, and keeps its tables in
    # topics of its own, which it creates (their names start with its app id); its group is its app id
    p.topics(SUPERVISION, READ, registry.OUTCOMES, registry.EVENTS, registry.ALERTS)
    own_topics = f"{registry.SUPERVISION_APP}-"
    p.grants.update(Grant(SUPERVISION, TOPIC, own_topics, op, prefixed=True) for op in (READ, WRITE, CREATE))
    p.grants.add(Grant(SUPERVISION, GROUP, registry.SUPERVISION_APP, READ, prefixed=True))
    return sorted(p.grants)


def principals(grants: Iterable[Grant]) -> list[str]:
    """Every principal of the plan, and the admin."""
    return sorted({g.principal for g in grants} | {ADMIN})


# --------------------------------------------------------------------------- applying it


def _binding(g: Grant):  # type: ignore[no-untyped-def]
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return AclBinding(ResourceType[g.resource], g.name,
                      ResourcePatternType.PREFIXED if g.prefixed else ResourcePatternType.LITERAL,
                      f"User:{g.principal}", "*", AclOperation[g.operation], AclPermissionType.ALLOW)


def _filter(b):  # type: ignore[no-untyped-def]
    """The filter that matches exactly one ACL binding (to delete it)."""
    from confluent_kafka.admin import AclBindingFilter

    return AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                            b.permission_type)


def _key(b) -> tuple[str, str, str, str, str, str, str]:  # type: ignore[no-untyped-def]
    """An ACL binding as plain values (the broker's answers and ours compare by these)."""
    return (b.restype.name, b.name, b.resource_pattern_type.name, b.principal, b.host, b.operation.name,
            b.permission_type.name)


def apply(s: config.Settings, matrix: DepartmentMatrix) -> dict[str, list[str]]:
    """Make the cluster's users and ACLs those of the plan; what changed, by kind."""
    from confluent_kafka.admin import (
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )

    grants = plan(matrix)
    admin = AdminClient(access(s, ADMIN).librdkafka())
    done: dict[str, list[str]] = {"users": [], "users removed": [], "acls": [], "acls removed": []}

    # users: every principal's password is the one in its file (so a changed file changes it)
    wanted = [p for p in principals(grants) if p != ADMIN]
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    existing = set(admin.describe_user_scram_credentials().result(TIMEOUT))
    changes = [UserScramCredentialUpsertion(p, info, access(s, p).password.encode()) for p in wanted]
    gone = sorted(existing - set(wanted) - {ADMIN})
    changes += [UserScramCredentialDeletion(u, ScramMechanism.SCRAM_SHA_512) for u in gone]
    for future in admin.alter_user_scram_credentials(changes).values():
        future.result(TIMEOUT)
    done["users"] = sorted(set(wanted) - existing)
    done["users removed"] = gone

    # ACLs: the plan's, and nothing else
    every = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    have = {_key(b): b for b in admin.describe_acls(every).result(TIMEOUT)}
    want = {_key(b): b for b in map(_binding, grants)}
    create = [b for k, b in want.items() if k not in have]
    if create:
        for future in admin.create_acls(create).values():
            future.result(TIMEOUT)
    extra = [_filter(b) for k, b in have.items() if k not in want]
    if extra:
        for future in admin.delete_acls(extra).values():
            future.result(TIMEOUT)
    done["acls"] = [f"{b.principal} {b.operation.name} {b.restype.name} {b.name}" for b in create]
    done["acls removed"] = [f"{f.principal} {f.operation.name} {f.restype.name} {f.name}" for f in extra]
    return done


@contextlib.contextmanager
def granted(s: config.Settings, grants: list[Grant]) -> Iterator[None]:
    """These ACLs for the time of the block, then taken away (a benchmark lets a service's principal read
    its own topic; `ops/stack up` would remove them anyway, as they are not in the plan)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(access(s, ADMIN).librdkafka())
    bindings = [_binding(g) for g in grants]
    for future in admin.create_acls(bindings).values():
        future.result(TIMEOUT)
    try:
        yield
    finally:
        for future in admin.delete_acls([_filter(b) for b in bindings]).values():
            future.result(TIMEOUT)


# --------------------------------------------------------------------------- asking the brokers


async def read_refusal(kafka: KafkaAccess, topic: Topic) -> str | None:
    """None when `kafka`'s principal may see the topic (reading needs it); else the broker's refusal.
    (aiokafka's consumer waits for a topic it may not see instead of failing: the describe answers.)"""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import for_code

    admin = AIOKafkaAdminClient(**kafka.options())
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic.name])
    finally:
        await admin.close()
    return None if described["error_code"] == 0 else for_code(described["error_code"]).__name__


async def write_refusal(kafka: KafkaAccess, topic: Topic, value: bytes, **producer: Any) -> str | None:
    """None when `kafka`'s principal wrote `value` to partition 0 of the topic (idempotently, as every
    producer of the ledger); else the broker's refusal (a principal that may write no topic at all is
    refused its producer id already)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import (
        ClusterAuthorizationFailedError,
        TopicAuthorizationFailedError,
        TransactionalIdAuthorizationFailed,
    )

    p = AIOKafkaProducer(**kafka.options(), enable_idempotence=True, **producer)
    try:
        await p.start()
        if "transactional_id" in producer:
            p.begin_transaction()
        await p.send_and_wait(topic.name, value, key=b"probe", partition=0)
        if "transactional_id" in producer:
            await p.commit_transaction()
        return None
    except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError, TransactionalIdAuthorizationFailed) as exc:
        return type(exc).__name__
    finally:
        await p.stop()


def show(grants: list[Grant]) -> str:
    return "\n".join(f"{g.principal:<22} {g.operation:<6} {g.resource:<17} {g.name}{'*' if g.prefixed else ''}"
                     for g in grants)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ops.access", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["show", "apply"])
    args = p.parse_args(argv)
    matrix = loader.load_departments()
    if args.command == "show":
        print(show(plan(matrix)))
        return 0
    done = apply(config.load(), matrix)
    for what, items in done.items():
        if items:
            print(f"{what}: {len(items)}" + (f" ({', '.join(items)})" if what.startswith("users") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

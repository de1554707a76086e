"""The plan of who may touch the log (ops/access.py), as data: what each kind of party may do, and what
nobody but one process may do. The brokers enforcing it: tests/integration/test_access.py."""

from __future__ import annotations

from pathlib import Path

from ledger.platform import config, kafka_access
from ledger.platform import kafka_access as who
from ledger.platform.kafka_access import KafkaAccess
from ledger.rules import loader
from ops import access
from ops.access import READ, TOPIC, WRITE, Grant
from schemas import registry

MATRIX = loader.load_departments()
PLAN = access.plan(MATRIX)


def _topics(principal: str, operation: str) -> set[str]:
    return {g.name + ("*" if g.prefixed else "") for g in PLAN
            if g.principal == principal and g.resource == TOPIC and g.operation == operation}


def _who(operation: str, topic: registry.Topic) -> set[str]:
    return {g.principal for g in PLAN if g.resource == TOPIC and g.operation == operation and (
        g.name == topic.name or (g.prefixed and topic.name.startswith(g.name)))}


def test_only_the_sequencer_writes_the_ledger() -> None:
    assert _who(WRITE, registry.EVENTS) == {who.SEQUENCER}
    assert _who(WRITE, registry.OUTCOMES) == {who.SEQUENCER}


def test_the_ledger_is_read_by_auditors_and_the_ledgers_own_processes_only() -> None:
    assert _who(READ, registry.EVENTS) == {who.AUDITOR, who.PROJECTOR, who.LIST_KEEPER, who.NOTARY, who.SCHEDULER, who.QUERY_API,
                                           who.SUPERVISION}
    assert not any(d in _who(READ, registry.EVENTS) for d in MATRIX.departments if d != who.SCHEDULER)


def test_every_department_submits_and_reads_the_outcomes_and_nothing_else_unless_a_sector_system() -> None:
    for d in MATRIX.departments.values():
        if d.id == who.SCHEDULER or d.kind == "public":
            continue  # the scheduler is also a process of the ledger (below); the public: the next test
        expected = {registry.SUBMISSIONS.name}
        assert _topics(d.id, WRITE) == expected, d.id
        reads = {registry.OUTCOMES.name} | ({"credit.lists.*", registry.ALERTS.name} if d.kind == "sector" else set())
        assert _topics(d.id, READ) == reads, d.id


def test_the_public_never_reaches_kafka_its_intake_submits_for_it() -> None:
    [public] = [d.id for d in MATRIX.departments.values() if d.kind == "public"]
    assert public not in {g.principal for g in PLAN} and public not in access.principals(PLAN)
    assert _topics(who.PUBLIC_INTAKE, WRITE) == {registry.SUBMISSIONS.name}
    assert _topics(who.PUBLIC_INTAKE, READ) == {registry.OUTCOMES.name}
    assert {g.resource for g in PLAN if g.principal == who.PUBLIC_INTAKE} == {access.TOPIC}


def test_sector_systems_read_every_list_feed_and_the_alerts_in_their_own_groups() -> None:
    sectors = [d.id for d in MATRIX.departments.values() if d.kind == "sector"]
    assert sectors
    for s in sectors:
        assert s in _who(READ, registry.LISTS_CURRENT) and s in _who(READ, registry.LISTS_CHANGES)
        assert s in _who(READ, registry.ALERTS)
        assert Grant(s, access.GROUP, s, READ, prefixed=True) in PLAN
        assert s not in _who(READ, registry.EVENTS) | _who(READ, registry.SUBMISSIONS)


def test_auditors_read_the_ledger_and_the_tree_heads() -> None:
    assert _topics(who.AUDITOR, READ) == {registry.EVENTS.name, registry.CHECKPOINTS.name}
    assert _topics(who.AUDITOR, WRITE) == set()


def test_each_process_of_the_ledger_has_its_own_principal_with_its_own_topics() -> None:
    assert _topics(who.SEQUENCER, WRITE) == {registry.EVENTS.name, registry.OUTCOMES.name, registry.SEQUENCER_STATE.name}
    assert _topics(who.PROJECTOR, WRITE) == set() and _topics(who.PROJECTOR, READ) == {registry.EVENTS.name}
    assert _topics(who.LIST_KEEPER, WRITE) == {registry.LISTS_CHANGES.name, registry.LISTS_CURRENT.name,
                                           registry.ALERTS.name}
    assert _topics(who.WEBHOOK, WRITE) == {registry.ALERTS_DEADLETTER.name}
    assert _topics(who.NOTARY, WRITE) == {registry.CHECKPOINTS.name}
    assert _topics(who.GATEWAY, WRITE) == {registry.SUBMISSIONS.name}
    assert _topics(who.QUERY_API, WRITE) == set()
    assert _topics(who.PUBLIC_INTAKE, WRITE) == {registry.SUBMISSIONS.name}
    # the supervision reads what it counts and owns only the topics named after its app id
    assert _topics(who.SUPERVISION, READ) == {registry.OUTCOMES.name, registry.EVENTS.name, registry.ALERTS.name,
                                              f"{registry.SUPERVISION_APP}-*"}
    assert _topics(who.SUPERVISION, WRITE) == {f"{registry.SUPERVISION_APP}-*"}
    assert {g.principal for g in PLAN if g.operation == access.CREATE} == {who.SUPERVISION}
    assert all(t.name.startswith(f"{registry.SUPERVISION_APP}-")
               for t in [*registry.SUPERVISION_CHANGELOGS.values(), registry.SUPERVISION_PROGRESS,
                         registry.SUPERVISION_LEADER])
    # the transactional processes each own their group and transactional ids, and nobody else's
    owned = {g.principal: g.name for g in PLAN if g.resource == access.TRANSACTIONAL_ID and g.prefixed}
    assert owned == {who.SEQUENCER: "credit-sequencer-", who.LIST_KEEPER: "credit-list-keeper-", who.WEBHOOK: "credit-webhook-"}
    assert set(kafka_access.SERVICES) <= set(access.principals(PLAN))


def test_the_admin_is_no_principal_of_the_plan_but_a_user() -> None:
    assert who.ADMIN not in {g.principal for g in PLAN}
    assert who.ADMIN in access.principals(PLAN)


def test_every_topic_of_the_registry_has_a_reader_and_a_writer() -> None:
    for t in registry.TOPICS:
        assert _who(WRITE, t), t.name
        assert _who(READ, t) or t == registry.ALERTS_DEADLETTER, t.name  # the dead letters: for the operator


def test_a_principal_reaches_the_cluster_as_each_client_library_expects(tmp_path: Path) -> None:
    s = config.load({"LEDGER_STACK_DIR": str(tmp_path), "LEDGER_KAFKA_PORT": "35092"})
    made = kafka_access.ensure_passwords(s.keys_dir, [SECTOR := "sector-banking"])
    assert made == [SECTOR] and kafka_access.ensure_passwords(s.keys_dir, [SECTOR]) == []
    path = kafka_access.password_file(s.keys_dir, SECTOR)
    assert path.stat().st_mode & 0o777 == 0o600
    a = kafka_access.access(s, SECTOR)
    assert a.password == path.read_text().strip() and len(a.password) >= 32
    assert a.options()["security_protocol"] == "SASL_PLAINTEXT" and a.options()["sasl_mechanism"] == "SCRAM-SHA-512"
    assert a.librdkafka()["sasl.username"] == SECTOR
    assert f'username="{SECTOR}" password="{a.password}";' in a.java_properties()
    with_tls = KafkaAccess(a.bootstrap_servers, SECTOR, a.password, ca_file=tmp_path / "ca.pem")
    assert with_tls.security_protocol == "SASL_SSL" and with_tls.librdkafka()["ssl.ca.location"].endswith("ca.pem")


def test_a_missing_password_names_the_file_and_what_to_do(tmp_path: Path) -> None:
    s = config.load({"LEDGER_STACK_DIR": str(tmp_path)})
    try:
        kafka_access.access(s, "xc-tax")
    except kafka_access.AccessError as exc:
        assert "xc-tax" in str(exc) and "xc-tax.password" in str(exc) and "ops/stack up" in str(exc)
    else:
        raise AssertionError("a missing password file must be refused")

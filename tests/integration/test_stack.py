"""ops/stack against the real services: idempotent up, clear refusals, fixed partition counts."""

from __future__ import annotations

import dataclasses
import socket

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ledger.platform import config
from ledger.platform.kafka_access import ADMIN, access
from ops import stack as ops_stack
from schemas import registry


def test_up_twice_is_harmless(stack) -> None:
    kafka, pg = ops_stack.Kafka(stack), ops_stack.Postgres(stack)
    before = (kafka.pid(), pg.pid())
    ops_stack.up(stack, services=False)
    assert (kafka.pid(), pg.pid()) == before and all(before)


def test_a_taken_port_is_refused_and_nothing_is_started(stack, tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        other = dataclasses.replace(stack, stack_dir=tmp_path / "other", kafka_port=port)
        with pytest.raises(ops_stack.StackError, match=f"port {port} .* already taken"):
            ops_stack.Kafka(other).start()
        assert ops_stack.Kafka(other).pid() is None


async def test_a_changed_partition_count_refuses_to_start(stack, monkeypatch) -> None:
    name = "test.partition-guard"
    admin = AIOKafkaAdminClient(**access(stack, ADMIN).options())
    await admin.start()
    try:
        if name not in await admin.list_topics():
            await admin.create_topics([NewTopic(name, 2, 1)])
    finally:
        await admin.close()
    monkeypatch.setattr(registry, "TOPICS", (*registry.TOPICS, registry.Topic(name, 3)))
    with pytest.raises(ops_stack.StackError, match="test.partition-guard has 2 partitions, the registry says 3"):
        await ops_stack.ensure_topics(stack)


async def test_the_ledger_topic_keeps_everything_forever(stack) -> None:
    admin = AIOKafkaAdminClient(**access(stack, ADMIN).options())
    await admin.start()
    try:
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        res = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, registry.EVENTS.name)])
        entries = {e[0]: e[1] for e in res[0].resources[0][4]}
    finally:
        await admin.close()
    assert entries["retention.ms"] == "-1"
    assert entries["retention.bytes"] == "-1"
    assert entries["cleanup.policy"] == "delete"


def _free_port(consecutive: int = 1) -> int:
    """A port (and the ones after it) nobody listens on now, below the ephemeral range."""
    for port in range(30000, 32000, 7):
        if all(ops_stack.port_free(port + i) for i in range(consecutive)):
            return port
    raise AssertionError("no free port between 30000 and 32000")


def _other_stack(stack, tmp_path, offset: int):  # type: ignore[no-untyped-def]
    """Settings of a second, throw-away stack on free ports, in a temporary directory."""
    kafka = _free_port(2)
    pg = next(p for p in range(kafka + 2, 32000) if ops_stack.port_free(p))
    span = max(config.SERVICE_PORT_OFFSETS.values()) + 1  # base + each service's offset
    metrics = next(p for p in range(pg + 1, 32000) if all(ops_stack.port_free(p + i) for i in range(span)))
    api = next(p for p in range(metrics + span, 32000) if ops_stack.port_free(p))
    gateway = next(p for p in range(api + 1, 32000) if ops_stack.port_free(p))
    portal = next(p for p in range(gateway + 1, 32000) if ops_stack.port_free(p))
    schemas = next(p for p in range(portal + 1, 32000) if ops_stack.port_free(p))
    intake = next(p for p in range(schemas + 1, 32000) if ops_stack.port_free(p))
    return dataclasses.replace(stack, stack_dir=tmp_path / f"stack{offset}", kafka_port=kafka, pg_port=pg,
                               metrics_base_port=metrics, api_port=api, gateway_port=gateway, portal_port=portal,
                               registry_port=schemas, public_intake_port=intake)


def test_down_leaves_no_process_behind(stack, tmp_path) -> None:
    other = _other_stack(stack, tmp_path, 0)
    ops_stack.up(other, services=True)
    pids = [ops_stack.Kafka(other).pid(), ops_stack.Postgres(other).pid(),
            *(ops_stack.Service(other, n).pid() for n in (*ops_stack.SERVICES, ops_stack.SUPERVISOR))]
    assert all(pids)
    ops_stack.purge(other)
    assert [p for p in pids if ops_stack.alive(p)] == []
    assert not ops_stack.Postgres(other).running()


def test_a_missing_java_is_named(stack, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ops_stack.shutil, "which", lambda name: None)
    with pytest.raises(ops_stack.StackError, match="Java is not installed"):
        ops_stack.Kafka(_other_stack(stack, tmp_path, 2)).start()


def test_a_broker_that_does_not_come_up_is_reported_and_stopped(stack, tmp_path) -> None:
    other = _other_stack(stack, tmp_path, 4)
    kafka = ops_stack.Kafka(other)
    kafka.prepare()
    # storage formatted for another node id: the broker refuses to start
    meta = kafka.data / "meta.properties"
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=7"))
    with pytest.raises(ops_stack.StackError, match="exited with code"):
        kafka.start(timeout=60)
    assert kafka.pid() is None and ops_stack.port_free(other.kafka_port)

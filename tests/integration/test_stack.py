"""ops/stack against the real services: idempotent up, clear refusals, fixed partition counts."""

from __future__ import annotations

import dataclasses
import socket

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

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
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
    await admin.start()
    try:
        if name not in await admin.list_topics():
            await admin.create_topics([NewTopic(name, 2, 1)])
    finally:
        await admin.close()
    monkeypatch.setattr(registry, "TOPICS", (*registry.TOPICS, registry.Topic(name, 3)))
    with pytest.raises(ops_stack.StackError, match="test.partition-guard has 2 partitions, the registry says 3"):
        await ops_stack.ensure_topics(stack.bootstrap_servers)


async def test_the_ledger_topic_keeps_everything_forever(stack) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
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

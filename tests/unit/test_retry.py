"""Retriable Kafka errors (ledger/platform/retry.py; issue 18): a lag probe that fails is skipped and
counted, a call at start-up is tried again with growing pauses, and a batch whose commit times out is
aborted, read again by a new producer with the same transactional id, and written once; and a fenced
producer (a newer instance took over) stops its processor, which writes nothing more."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    IllegalStateError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotCoordinatorError,
    ProducerFenced,
)
from prometheus_client import REGISTRY

from consumers.projector.service import Projector
from ledger.platform import logs, retry
from ledger.platform.transactional import Fenced, TransactionalProcessor
from projections.rows import Folder
from schemas import registry
from tests.fakes import FakeKafka
from tests.unit.test_services import RULES, _outcomes, _penalties, _sequence, _sequencer, _submit

log = logs.get("test")


def _retries(process: str, operation: str) -> float:
    return REGISTRY.get_sample_value("ledger_kafka_retries_total",
                                     {"process": process, "operation": operation}) or 0.0


def test_which_errors_are_retriable() -> None:
    assert retry.retriable(KafkaTimeoutError())  # not marked retriable by aiokafka, but it is one
    assert retry.retriable(KafkaConnectionError()) and retry.retriable(NotCoordinatorError())
    assert retry.retriable(TimeoutError())
    assert not retry.retriable(ValueError("a bug")) and not retry.retriable(registry.SchemaError("bad"))


async def test_a_probe_that_times_out_is_skipped_and_counted_and_a_bug_is_raised() -> None:
    before = _retries("unit", "probe")

    async def times_out() -> int:
        raise KafkaTimeoutError("Failed to get offsets by times in 40000 ms")

    async def bug() -> int:
        raise ValueError("a bug")

    assert await retry.probe(log, "unit", "probe", times_out) is None
    assert _retries("unit", "probe") == before + 1
    with pytest.raises(ValueError):
        await retry.probe(log, "unit", "probe", bug)


async def test_a_call_is_tried_again_with_doubling_pauses_until_it_answers(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pauses: list[float] = []

    async def no_wait(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(retry.asyncio, "sleep", no_wait)
    calls = 0

    async def broker_back_at_the_fifth() -> str:
        nonlocal calls
        calls += 1
        if calls < 5:
            raise KafkaConnectionError("refused")
        return "answered"

    assert await retry.until_done(log, "unit", "start", broker_back_at_the_fifth, retry.Backoff(0.5, 3)) == "answered"
    assert pauses == [0.5, 1, 2, 3]
    calls = -100
    with pytest.raises(KafkaConnectionError):  # a stop in the meantime: the error comes through
        await retry.until_done(log, "unit", "start", broker_back_at_the_fifth, stopping=lambda: True)


class _ProbeFails:
    """A consumer whose end_offsets times out (a paused broker)."""

    def __init__(self, tps: list[TopicPartition]) -> None:
        self.tps = tps

    def assignment(self) -> set[TopicPartition]:
        return set(self.tps)

    async def end_offsets(self, tps: Any) -> dict[TopicPartition, int]:
        raise KafkaTimeoutError("Failed to get offsets by times in 40000 ms")

    async def position(self, tp: TopicPartition) -> int:
        return 0


class _Rebalanced(_ProbeFails):
    """A consumer whose partitions 2 and 3 a rebalance takes while the lag probe waits for the broker
    (3 still in the assignment when asked, gone when its position is)."""

    async def end_offsets(self, tps: Any) -> dict[TopicPartition, int]:
        self.tps = [tp for tp in self.tps if tp.partition != 2]
        return {tp: 10 for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        if tp.partition == 3:
            raise IllegalStateError(f"Partition {tp} is not assigned")
        return 4


async def test_a_partition_revoked_during_the_lag_probe_does_not_stop_the_processor() -> None:
    tps = [TopicPartition(registry.EVENTS.name, p) for p in range(4)]
    await TransactionalProcessor(FakeKafka())._measure_lag(_Rebalanced(tps))  # type: ignore[arg-type]
    assert REGISTRY.get_sample_value("ledger_stream_lag_records", {"processor": "processor", "partition": "1"}) == 6


async def test_a_lag_probe_that_times_out_stops_neither_a_processor_nor_the_projector() -> None:
    tps = [TopicPartition(registry.EVENTS.name, p) for p in range(4)]
    before = (_retries("processor", "lag probe"), _retries("projector", "lag probe"))
    await TransactionalProcessor(FakeKafka())._measure_lag(_ProbeFails(tps))  # type: ignore[arg-type]
    projector = Projector(FakeKafka(), Folder(RULES), "unused")  # type: ignore[arg-type]
    await projector._measure_lag(_ProbeFails(tps), tps, {})  # type: ignore[arg-type]
    assert (_retries("processor", "lag probe"), _retries("projector", "lag probe")) == (before[0] + 1, before[1] + 1)


async def test_a_commit_that_times_out_is_read_again_by_a_new_producer_and_written_once(tmp_path: Path) -> None:
    kafka = FakeKafka()
    kafka.fail_commits, kafka.fail_with = 1, KafkaTimeoutError
    before = _retries("sequencer", "transaction")
    await _sequence(kafka, tmp_path, _penalties(5, seed=4))
    first, second = [p for p in kafka.producers if p.options.get("transactional_id")]
    assert first.options["transactional_id"] == second.options["transactional_id"] == "credit-sequencer-0"
    assert (first.aborts, first.commits) == (1, 0) and second.commits >= 1 and second.aborts == 0
    assert len(kafka.broker.records(registry.EVENTS.name)) == 5
    assert [o["status"] for o in _outcomes(kafka).values()] == ["ACCEPTED"] * 5
    assert _retries("sequencer", "transaction") == before + 1


async def test_a_fenced_producer_stops_the_processor_which_writes_nothing_and_fences_nobody(tmp_path: Path) -> None:
    """A newer instance with the same transactional id took over while this one was paused: its next
    transaction fails with ProducerFenced. It must stop without a new producer (which would fence its
    successor in turn) and without writing anything."""
    kafka = FakeKafka()
    kafka.fail_commits, kafka.fail_with = 1, ProducerFenced
    _submit(kafka, _penalties(5, seed=5))
    sequencer = _sequencer(kafka, tmp_path)
    with pytest.raises(Fenced, match="fenced by a newer instance"):
        await asyncio.wait_for(sequencer.run(), 10)
    assert [p.options["transactional_id"] for p in kafka.producers if p.options.get("transactional_id")] == [
        "credit-sequencer-0"]  # no second producer
    assert kafka.broker.records(registry.EVENTS.name) == [] and _outcomes(kafka) == {}
    assert REGISTRY.get_sample_value("ledger_stream_fenced_total", {"processor": "sequencer"}) >= 1


def test_which_errors_mean_fenced() -> None:
    assert retry.fenced(ProducerFenced())
    # the consumer's heartbeat, answered FENCED_INSTANCE_ID, as aiokafka wraps it
    from aiokafka import errors

    wrapped = errors.KafkaError(f"Unexpected exception in heartbeat task: {errors.for_code(82)()!r}")
    assert retry.fenced(errors.KafkaError(f"Unexpected error during coordination {wrapped!r}"))
    assert not retry.fenced(KafkaTimeoutError()) and not retry.fenced(ValueError("a bug"))


async def test_a_zombie_learns_it_is_fenced_at_its_next_assignment_before_it_restores_or_reads(tmp_path: Path) -> None:
    """An idle zombie has nothing to write that would tell it: the check at each assignment (an empty
    transaction the broker refuses for a stale producer epoch) stops it before its restore."""
    kafka = FakeKafka()
    _submit(kafka, _penalties(3, seed=8))
    made = kafka.producer

    def fenced_producer(**options: Any) -> Any:
        p = made(**options)

        async def refused(offsets: Any, group: str) -> None:
            raise ProducerFenced()

        p.send_offsets_to_transaction = refused  # type: ignore[method-assign]
        return p

    kafka.producer = fenced_producer  # type: ignore[method-assign]
    sequencer = _sequencer(kafka, tmp_path)
    with pytest.raises(Fenced):
        await asyncio.wait_for(sequencer.run(), 10)
    assert sequencer.core.stores == {} and kafka.broker.records(registry.EVENTS.name) == []

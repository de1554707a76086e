"""Read every committed record of a topic with confluent-kafka (librdkafka) and its Schema Registry
client and AvroDeserializer, as a sector system would, and print one JSON line per record:
{"p": partition, "o": offset, "v": the decoded value (dates and times as str())}.

    python -m tests.librdkafka_read <principal> <registry url> <topic> <partitions>

It logs in as the sector system `principal` (SASL/SCRAM, its password from LEDGER_KEYS_DIR/kafka/), on
the cluster of the environment's settings.

Run by tests/integration/test_schema_registry.py in a child process on the machine's real clock
(ops/procs.py real_clock_env): librdkafka's timed waits never return under libfaketime."""

from __future__ import annotations

import json
import sys

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from ledger.platform import config
from ledger.platform.kafka_access import access


def main() -> None:
    principal, url, topic, partitions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    # the newest version of each record's subject is the reader (as the project's decode resolves), the
    # subject named by the TopicRecordNameStrategy; the writer's schema comes by the id in each record
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": url}), conf={
        "use.latest.version": True, "subject.name.strategy": topic_record_subject_name_strategy})
    # a sector system's groups are named after it (its ACLs allow those only)
    consumer = Consumer({**access(config.load(), principal).librdkafka(), "group.id": f"{principal}-standard-clients",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        consumer.assign([TopicPartition(topic, p, -2) for p in range(partitions)])  # -2: the beginning
        at_end: set[int] = set()
        while len(at_end) < partitions:
            msg = consumer.poll(5.0)
            if msg is None:
                sys.exit(f"{topic}: no record and no end of partition within 5 s")
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    sys.exit(f"{topic}: {msg.error()}")
                at_end.add(msg.partition())
                continue
            at_end.discard(msg.partition())
            value = deserialize(msg.value(), SerializationContext(topic, MessageField.VALUE))
            print(json.dumps({"p": msg.partition(), "o": msg.offset(), "v": value}, default=str, ensure_ascii=False))
    finally:
        consumer.close()


if __name__ == "__main__":
    main()

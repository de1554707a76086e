"""The stack's Kafka cluster as settings and files, without starting it: the ports of each node, the
clients' bootstrap list, the copies every partition gets, each node's server.properties, and a stack
directory that keeps the size it was made with."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ledger.platform import config
from ops import infra
from ops import stack as ops_stack


def _settings(tmp_path: Path, **env: str) -> config.Settings:
    return config.load({"LEDGER_STACK_DIR": str(tmp_path / "stack"), "LEDGER_KAFKA_PORT": "35092", **env})


def _properties(path: Path) -> dict[str, str]:
    lines = [x for x in path.read_text().splitlines() if x and not x.startswith("#")]
    return dict(x.split("=", 1) for x in lines)


def test_one_node_by_default(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert s.kafka_brokers == 1 and s.bootstrap_servers == "127.0.0.1:35092" and s.controller_port == 35093
    assert (s.replication_factor, s.min_insync_replicas) == (1, 1)


def test_three_nodes_take_every_second_port_and_all_are_bootstrap_servers(tmp_path: Path) -> None:
    s = _settings(tmp_path, LEDGER_KAFKA_BROKERS="3")
    assert [(s.broker_port(n), s.controller_port_of(n)) for n in (1, 2, 3)] == [(35092, 35093), (35094, 35095),
                                                                                 (35096, 35097)]
    assert s.bootstrap_servers == "127.0.0.1:35092,127.0.0.1:35094,127.0.0.1:35096"
    assert (s.replication_factor, s.min_insync_replicas) == (3, 2)


def test_a_cluster_elsewhere_is_named_by_its_bootstrap_servers(tmp_path: Path) -> None:
    s = _settings(tmp_path, LEDGER_KAFKA_BOOTSTRAP="kafka1.credit.xc:9092,kafka2.credit.xc:9092")
    assert s.bootstrap_servers == "kafka1.credit.xc:9092,kafka2.credit.xc:9092"


def test_each_node_of_three_is_a_voter_with_three_copies_and_two_in_sync(tmp_path: Path) -> None:
    s = _settings(tmp_path, LEDGER_KAFKA_BROKERS="3")
    kafka = infra.Kafka(s)
    assert [n.dir.name for n in kafka.nodes] == ["kafka", "kafka-2", "kafka-3"]
    voters = "1@127.0.0.1:35093,2@127.0.0.1:35095,3@127.0.0.1:35097"
    for node in kafka.nodes:
        node.configure(voters, kafka.admin())
        p = _properties(node.props)
        assert p["node.id"] == str(node.node) and p["controller.quorum.voters"] == voters
        assert p["listeners"] == f"CLIENT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
        assert p["log.dirs"] == str(node.data)
        for key in ("default.replication.factor", "offsets.topic.replication.factor",
                    "transaction.state.log.replication.factor", "share.coordinator.state.topic.replication.factor"):
            assert p[key] == "3", key
        for key in ("min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"):
            assert p[key] == "2", key
        assert p["unclean.leader.election.enable"] == "false"
        assert "@" not in p["log.dirs"] and not [v for v in p.values() if v.startswith("@")]


def test_a_stack_directory_keeps_its_size(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert ops_stack.with_brokers(s, None).kafka_brokers == 1
    assert ops_stack.with_brokers(s, 3).kafka_brokers == 3  # a new stack: as asked
    record = s.stack_dir / "kafka" / "cluster.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"brokers": 3, "cluster_id": "q1Sh-9_ISia_zwGINzRvyQ",
                                  "authentication": "SCRAM-SHA-512"}))
    assert ops_stack.with_brokers(s, None).kafka_brokers == 3  # later commands need no flag
    assert len(infra.Kafka(s).nodes) == 3  # stop and status see every node, whatever the caller assumed
    with pytest.raises(ops_stack.StackError, match=r"cluster of 3 node\(s\).*--brokers 3.*purge"):
        ops_stack.with_brokers(s, 1)
    with pytest.raises(ops_stack.StackError, match="holds a Kafka cluster of 3 node"):
        infra.Kafka(dataclasses.replace(s, kafka_brokers=1)).start()


def test_a_cluster_made_before_authentication_is_refused_with_what_to_do(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    data = s.stack_dir / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("cluster.id=q1Sh-9_ISia_zwGINzRvyQ\nnode.id=1\n")  # no record of SASL
    with pytest.raises(ops_stack.StackError, match=r"before the brokers required authentication.*ops/stack purge"):
        infra.Kafka(s).start()

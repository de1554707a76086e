"""The supervisor's restart policy (ops/supervisor.py) and its restart counts, as `ops/stack status`
and the operator dashboard read them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ledger.platform import config
from ops import procs, supervisor
from projections.web import dashboard


def test_the_pause_doubles_from_one_second_to_a_minute_and_resets_after_a_healthy_run() -> None:
    delays, previous = [], None
    for _ in range(9):
        previous = supervisor.next_delay(previous, ran_for=2.0)
        delays.append(previous)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert supervisor.next_delay(60.0, ran_for=supervisor.HEALTHY_AFTER) == 1
    assert supervisor.next_delay(60.0, ran_for=supervisor.HEALTHY_AFTER - 1) == 60


def test_the_restart_counts_are_read_back_and_a_missing_file_counts_none(tmp_path: Path) -> None:
    s = dataclasses.replace(config.load({}), stack_dir=tmp_path)
    assert procs.read_restarts(s) == {}
    procs.restarts_file(s).write_text('{"notary": 2, "projector": 0}')
    assert procs.read_restarts(s) == {"notary": 2, "projector": 0}
    procs.restarts_file(s).write_text("not json")
    assert procs.read_restarts(s) == {}


def test_the_dashboard_shows_the_restarts_per_service() -> None:
    text = ('# TYPE ledger_service_restarts_total counter\n'
            'ledger_service_restarts_total{kind="notary"} 1.0\n'
            'ledger_service_restarts_total{kind="projector"} 3.0\n')
    f = dashboard.summarise({"supervisor": dashboard.parse(text), "notary": None})
    assert f.restarts == {"notary": 1.0, "projector": 3.0}
    assert f.up == {"notary": False, "supervisor": True}


def test_the_extra_processes_of_a_fault_test_are_found_by_their_pid_files_and_the_supervisor_ignores_them(
        tmp_path: Path) -> None:
    from ops import stack

    s = dataclasses.replace(config.load({}), stack_dir=tmp_path)
    for name in ("list-keeper.pid", "query-api.pid", "list-keeper-successor.pid", "sequencer-instance-2.pid",
                 "schema-registry-x.pid", "restarts.json"):
        (tmp_path / name).write_text("1")
    found = {(svc.name, svc.pidfile.name) for svc in stack.extra_services(s)}
    assert found == {("list-keeper", "list-keeper-successor.pid"), ("sequencer", "sequencer-instance-2.pid"),
                     ("schema-registry", "schema-registry-x.pid")}
    extra = stack.Service(s, "sequencer", label="instance-2", args=("--instance", "2"), metrics_port=1)
    assert extra.command == ["-m", "ops.run", "sequencer", "--instance", "2"] and extra.port == 1
    assert "sequencer-instance-2" not in stack.SERVICES  # the supervisor watches stack.SERVICES only

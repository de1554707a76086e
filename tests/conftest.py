"""Test tiers: tests/unit (pure, no services), tests/integration and tests/e2e (real Kafka and
PostgreSQL). The services are never optional: the first test that needs them starts a separate
test stack (its own ports and state directory, see ops/test) and the session stops what it started.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The test stack: other ports and another directory than the demo stack, so both can run at once.
TEST_ENV = {
    "LEDGER_STACK_DIR": str(ROOT / ".stack-test"),
    "LEDGER_KAFKA_PORT": "29092",
    "LEDGER_PG_PORT": "29432",
    "LEDGER_METRICS_PORT_BASE": "29100",
    "LEDGER_API_PORT": "28080",
    "LEDGER_GATEWAY_PORT": "28081",
    "LEDGER_PORTAL_PORT": "28082",
    "LEDGER_REGISTRY_PORT": "28083",
}
for _k, _v in TEST_ENV.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    from ledger.platform import config

    return config.load()


@pytest.fixture(scope="session")
def stack(settings) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """Kafka and PostgreSQL, running. Started here when not running; stopped at the end if started here."""
    from ops import stack as ops_stack

    kafka, pg = ops_stack.Kafka(settings), ops_stack.Postgres(settings)
    started_here = not (kafka.pid() and pg.running())
    ops_stack.up(settings, services=False)
    yield settings
    if started_here and not os.environ.get("LEDGER_KEEP_STACK"):
        ops_stack.down(settings)


@pytest.fixture(scope="session")
def services(stack):  # type: ignore[no-untyped-def]
    """The sequencer and the projector as real processes of the test stack."""
    from ops import stack as ops_stack

    procs = [ops_stack.Service(stack, name) for name in ops_stack.SERVICES
             if name not in ops_stack.ON_DEMAND_IN_TESTS]
    for p in procs:
        p.start()
    yield {p.name: p for p in procs}
    for p in procs:
        p.stop()


@pytest.fixture(scope="module")
def supervision(settings, services):  # type: ignore[no-untyped-def]
    """The department supervision (ops.stack ON_DEMAND_IN_TESTS), started for the tests of a module."""
    from ops import stack as ops_stack

    svc = ops_stack.Service(settings, "supervision")
    svc.start()
    yield svc
    svc.stop()


# The fault tests: processes killed, paused, fenced or moved, brokers and databases stopped, disks full.
# They test processes, not the calendar, so the CI's second pass under a faked clock (ops/test) leaves
# them out (-m "not faults"); the first pass, on the machine's clock, runs them all.
FAULT_MODULES = frozenset({
    "test_broker_pause.py", "test_disk_full.py", "test_feeds_kill.py", "test_gateway_kill.py",
    "test_projector_faults.py", "test_rebalance_storm.py", "test_sequencer_kill.py", "test_sequencer_restore.py",
    "test_sequencer_store.py", "test_supervisor.py", "test_three_brokers.py", "test_webhook_kill.py", "test_zombies.py"})
FAULT_TESTS = frozenset({"test_killed_twice_in_mid_stream_its_counts_equal_a_recount_of_the_topics"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name == "integration" and (item.path.name in FAULT_MODULES or item.name in FAULT_TESTS):
            item.add_marker(pytest.mark.faults)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis draws from the run's seed too (unless --hypothesis-seed is given), so that
    LEDGER_TEST_SEED replays its examples along with the test worlds."""
    from tests import helpers

    if getattr(config.option, "hypothesis_seed", None) is None:
        config.option.hypothesis_seed = str(helpers.RUN_SEED)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The run's seed (every random world derives from it) and the clock the run sees."""
    from tests import helpers

    faked = os.environ.get("FAKETIME")
    return [f"random worlds: seed {helpers.RUN_SEED} (replay: {helpers.SEED_VARIABLE}={helpers.RUN_SEED})",
            f"clock: today is {helpers.today()} in China Standard Time, now {helpers.CLOCK.now():%Y-%m-%d %H:%M:%S} "
            f"UTC, TZ={os.environ.get('TZ', '(unset)')}"
            + (f", faked by libfaketime from '{faked}'" if faked else "")]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    if terminalreporter.stats.get("failed") or terminalreporter.stats.get("error"):
        from tests import helpers

        terminalreporter.write_line(f"random worlds of this run: seed {helpers.RUN_SEED}; replay them with "
                                    f"{helpers.SEED_VARIABLE}={helpers.RUN_SEED} ops/test ...", yellow=True)

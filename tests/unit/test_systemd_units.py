"""The systemd units of ops/systemd/: every process kind is covered, each runs `python -m ops.run
<kind>` as its own user with the environment file, after Kafka and PostgreSQL, and restarts with the
policy of the stack's supervisor (ops/supervisor.py)."""

from __future__ import annotations

import re
from pathlib import Path

from ledger.platform import config
from ops import root, supervisor

DIR = config.ROOT / "ops" / "systemd"


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections: key -> every value it is given (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}: {raw!r}"
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def words(values: list[str]) -> list[str]:
    return [w for v in values for w in v.split()]


def test_every_kind_is_started_by_the_target() -> None:
    target = unit(DIR / "credit-ledger.target")
    wanted = words(target["Unit"]["Wants"])
    assert sorted(wanted) == sorted(f"credit-ledger@{k}.service" for k in root.KINDS)


def test_the_template_runs_the_kind_as_its_own_user_after_kafka_and_postgresql() -> None:
    u = unit(DIR / "credit-ledger@.service")
    service = u["Service"]
    assert re.fullmatch(r"\S+/\.venv/bin/python -m ops\.run %i", service["ExecStart"][0])
    assert service["User"] != ["root"] and service["User"] == ["credit-ledger"]
    assert service["EnvironmentFile"] == ["/etc/credit-ledger/ledger.env"]
    assert {"kafka.service", "postgresql.service"} <= set(words(u["Unit"]["After"]))
    assert service["KillSignal"] == ["SIGTERM"]  # the harness's clean stop (ledger/platform/process.py)


def test_the_restart_policy_is_the_supervisors() -> None:
    u = unit(DIR / "credit-ledger@.service")
    service = u["Service"]
    assert service["Restart"] == ["on-failure"]  # a stop on purpose is not undone
    first, most = float(service["RestartSec"][0]), float(service["RestartMaxDelaySec"][0])
    steps = int(service["RestartSteps"][0])
    assert (first, most) == (supervisor.FIRST_DELAY, supervisor.MOST_DELAY)
    # systemd grows the pause geometrically from RestartSec to RestartMaxDelaySec in RestartSteps
    # steps: about a doubling per restart, as the supervisor's
    assert abs((most / first) ** (1 / steps) - 2) < 0.05
    assert u["Unit"]["StartLimitIntervalSec"] == ["0"]  # never given up, as the supervisor never gives up


def test_the_environment_file_sets_only_settings_the_code_reads() -> None:
    source = (config.ROOT / "ledger" / "platform" / "config.py").read_text()
    names = [line.split("=", 1)[0].lstrip("# ") for line in (DIR / "ledger.env").read_text().splitlines()
             if re.match(r"#? ?LEDGER_\w+=", line)]
    assert "LEDGER_STACK_DIR" in names and "LEDGER_KEYS_DIR" in names
    assert [n for n in names if f'"{n}"' not in source] == []

"""The Prometheus scrape configuration and alerting rules in ops/prometheus: promtool accepts them,
the rules' own unit tests pass (each alert fires on the series that should raise it), every ledger
service is scraped at the port the stack gives it, and every metric a rule uses is one the code
exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from ledger.platform import config

DIR = Path(__file__).resolve().parents[2] / "ops" / "prometheus"
PROMTOOL = "/usr/bin/promtool"  # Debian package prometheus (ops/bootstrap installs it)


def promtool(*args: str) -> str:
    r = subprocess.run([PROMTOOL, *args], cwd=DIR, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_promtool_accepts_the_config_and_the_rules() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    assert "SUCCESS" in promtool("check", "rules", "rules.yml")


def test_the_alerts_fire_on_their_series() -> None:
    assert "SUCCESS" in promtool("test", "rules", "rules.test.yml")


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(x[5m]) >\n")
    r = subprocess.run([PROMTOOL, "check", "rules", str(bad)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0


def test_every_service_is_scraped_at_its_port() -> None:
    doc = yaml.safe_load((DIR / "prometheus.yml").read_text())
    targets = {c["labels"]["service"]: c["targets"] for job in doc["scrape_configs"] for c in job["static_configs"]}
    settings = config.load({})  # the demo stack's defaults
    assert targets == {name: [f"127.0.0.1:{settings.metrics_port(name)}"] for name in config.SERVICE_PORT_OFFSETS}


def test_every_metric_in_the_rules_is_exported_by_the_code() -> None:
    rules = (DIR / "rules.yml").read_text()
    used = set(re.findall(r"\b(ledger_[a-z_]+)", rules))
    root = Path(__file__).resolve().parents[2]
    source = "\n".join(p.read_text(encoding="utf-8") for d in ("ledger", "consumers", "projections", "ops")
                       for p in (root / d).rglob("*.py"))
    exported = set(re.findall(r'(?:Counter|Gauge|Histogram)\(\s*"(ledger_[a-z_]+)"', source))
    exported |= {n + "_total" for n in exported if not n.endswith("_total")}
    assert used and used <= exported, used - exported

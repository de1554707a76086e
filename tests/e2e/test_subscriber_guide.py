"""The subscriber's guide (docs/subscribers.md) cannot rot: every command block marked
`<!-- guide-test -->` runs as written (bash -e -o pipefail, from the repository's root) against the test
stack, whose ports the commands read from the LEDGER_*_PORT variables, after a court listing that the
blocks can find, read and verify."""

from __future__ import annotations

import re
import subprocess
from datetime import date

import pytest

from ledger.client import submit_as_departments
from ledger.platform import config
from ops import workload
from tests import feeds, helpers

GUIDE = config.ROOT / "docs" / "subscribers.md"
BLOCK = re.compile(r"<!-- guide-test -->\n```sh\n(.*?)\n```", re.S)
BLOCKS = BLOCK.findall(GUIDE.read_text(encoding="utf-8"))


def test_the_guide_has_its_blocks() -> None:
    assert len(BLOCKS) == 6, "docs/subscribers.md: a marked block was lost or added; update this count"
    assert GUIDE.read_text(encoding="utf-8").count("<!-- guide-test -->") == len(BLOCKS)


@pytest.fixture(scope="module")
async def listed(settings, services) -> str:  # type: ignore[no-untyped-def]
    rng = helpers.rng("guide")
    company = workload.subjects(rng, 1, persons_share=0.0)[0]
    listing = workload.debtor_listed(company, f"（2026）豫10执G{rng.randrange(10**6)}号", date(2026, 8, 3), ground=1)
    [outcome] = await submit_as_departments(settings, [listing])
    assert outcome["status"] == "ACCEPTED", outcome
    await feeds.wait_for_alerts(settings, {listing[1]["envelope"]["event_id"]}, 1)
    await helpers.projected(settings)
    return f"uscc:{company.id}"


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_a_guide_block_runs_as_written(block: str, listed: str, settings) -> None:  # type: ignore[no-untyped-def]
    # as a fresh shell in a clone has it: no PYTHONPATH, and the machine's own clock (a faked-clock pass of
    # the suite preloads libfaketime, under which librdkafka's timed waits never return)
    env = {k: v for k, v in helpers.real_clock_env().items() if k != "PYTHONPATH"}
    run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], capture_output=True, text=True,
                         cwd=config.ROOT, env=env, timeout=180)
    assert run.returncode == 0, f"{block}\n--- stdout\n{run.stdout[-2000:]}\n--- stderr\n{run.stderr[-3000:]}"
    assert run.stdout.strip(), block
    if "ledger.audit.verify" in block:
        assert "VERIFIED" in run.stdout
    if "TOPIC_AUTHORIZATION_FAILED" in block:  # the refusal a sector system meets on the ledger itself
        assert "credit.events: refused (TOPIC_AUTHORIZATION_FAILED)" in run.stdout
    if "credit-subscriber.jar" in block:
        assert f'"{listed}|dishonest_debtor"' in run.stdout

"""The PostgreSQL settings that ops/stack starts the server with are the ones docs/architecture.md
explains, one row each, with the same value."""

from __future__ import annotations

from pathlib import Path

from ops.infra import PG_SETTINGS

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def _documented() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### PostgreSQL's settings", 1)[1].split("\n#", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| ")]
    return {name.strip(): value.strip() for name, value in rows if name.strip() != "setting"}


def test_every_setting_is_explained_with_its_value() -> None:
    assert _documented() == PG_SETTINGS


def test_no_setting_trades_durability_for_speed() -> None:
    # a crash may lose the last commits (synchronous_commit off), never corrupt the database
    for unsafe in ("fsync", "full_page_writes"):
        assert unsafe not in PG_SETTINGS

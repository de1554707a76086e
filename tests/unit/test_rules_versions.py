"""Every rules change is a new version; an event judged under an old version keeps its result
(docs/domain-notes.md §14.3): committed rules files never change, the loader keeps every version,
the sequencer stamps what it judged under, and the fold, the list book and the sequencer's later
checks recompute under that version. docs/rules.md lists every rule with its source and is current."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.audit import verify
from ledger.domain.decide import decide
from ledger.domain.errors import Rejection, RulesError
from ledger.domain.lists import legal_end
from ledger.domain.model import EntityState, evolve
from ledger.platform import signing
from ledger.records import chain, submissions
from ledger.records.events import event_of
from ledger.rules import doc, loader
from ledger.sequencer.core import Sequencing
from ops import workload
from projections.rows import Folder, ledger_event
from tests.fakes import with_stores

RULES_DIR = loader.default_directory()
PUBLISHED = RULES_DIR / "published.sha256"
SUBJECT = workload.Subject("91411002MA5FMHPPX6", "USCC", "许昌瑞祥食品有限公司")
TODAY = date(2026, 11, 27)


def _published() -> dict[str, str]:
    lines = [x.split() for x in PUBLISHED.read_text(encoding="utf-8").splitlines() if x and not x.startswith("#")]
    return {file: digest for digest, file in lines}


def test_a_committed_rules_file_never_changes() -> None:
    """Editing a committed version fails here: a change must go into <name>.v<N+1>.json."""
    published = _published()
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in RULES_DIR.glob("*.v*.json")}
    unlisted = sorted(set(on_disk) - set(published))
    assert not unlisted, (f"rules files without a line in {PUBLISHED.name}: {unlisted}; add "
                          "'sha256sum ledger/rules/<file>' once the version is final")
    assert sorted(set(published) - set(on_disk)) == [], "a published rules version was deleted"
    changed = sorted(f for f, digest in published.items() if on_disk[f] != digest)
    assert changed == [], f"committed rules versions were edited in place: {changed}; put the change in a new version"


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    for path in RULES_DIR.glob("*.v*.json"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def _next_version(directory: Path, name: str, change: Any) -> int:
    """Write <name>.v<N+1>.json: a copy of the newest version, changed."""
    newest = max(int(p.name.split(".v")[1].split(".")[0]) for p in directory.glob(f"{name}.v*.json"))
    d = json.loads((directory / f"{name}.v{newest}.json").read_text(encoding="utf-8"))
    d["version"] = newest + 1
    change(d)
    (directory / f"{name}.v{newest + 1}.json").write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    return newest + 1


def _longer_general(d: dict[str, Any]) -> None:
    """A rules change: general penalties under Order 58 shown at most 2 years, court ground 2 lists 3 years."""
    d["penalty_regimes"][-2]["severities"]["general"]["max_months"] = 24
    d["list_kinds"]["dishonest_debtor"]["period"]["months_by_ground"]["2"] = 36


def test_every_version_of_every_file_is_kept_and_the_newest_is_the_named_one(rules_dir: Path) -> None:
    new = _next_version(rules_dir, "publication_periods", _longer_general)
    book = loader.load(rules_dir)
    assert book.publication.version == new and book.stamp["publication_periods"] == new
    assert sorted(book.history["publication_periods"]) == list(range(1, new + 1))
    for name in loader.RULE_FILES:  # the attribute names the other rooms use are the newest version
        # every file a judgement uses is stamped; the divisions only place entities in the views
        assert max(book.history[name]) == book.stamp.get(name, book.divisions.version)
        assert book.at(name, 1).version == 1
    assert set(book.stamp) == set(loader.RULE_FILES) - {"divisions"}
    assert book.at("publication_periods", new - 1) is book.publication.at(new - 1)
    with pytest.raises(KeyError):
        book.at("publication_periods", new + 1)


def test_a_gap_in_the_versions_is_refused(rules_dir: Path) -> None:
    v = _next_version(rules_dir, "credit_grade", lambda d: None)
    (rules_dir / f"credit_grade.v{v}.json").rename(rules_dir / f"credit_grade.v{v + 1}.json")
    text = (rules_dir / f"credit_grade.v{v + 1}.json").read_text(encoding="utf-8")
    (rules_dir / f"credit_grade.v{v + 1}.json").write_text(text.replace(f'"version": {v}', f'"version": {v + 1}'),
                                                             encoding="utf-8")
    with pytest.raises(RulesError, match="without a gap") as info:
        loader.load(rules_dir)
    assert info.value.file.endswith(f"credit_grade.v{v}.json")


def test_an_older_version_is_validated_too(rules_dir: Path) -> None:
    path = rules_dir / "publication_periods.v1.json"
    d = json.loads(path.read_text(encoding="utf-8"))
    d["penalty_regimes"][0]["severities"]["general"]["max_months"] = -1
    path.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RulesError) as info:
        loader.load(rules_dir)
    assert info.value.file.endswith("publication_periods.v1.json")
    assert info.value.entry == "penalty_regimes[0].severities.general.max_months"


def _penalty(decided: date, severity: str = "general") -> tuple[str, dict[str, Any]]:
    return workload.workload_penalty(random.Random(7), SUBJECT, "xc-samr", "许市监罚〔2024〕7号", decided, severity)


def test_the_sequencer_stamps_the_versions_it_judged_under(rules_dir: Path) -> None:
    new = _next_version(rules_dir, "publication_periods", _longer_general)
    priv, pub = signing.new_keypair()
    core = with_stores(Sequencing({"xc-samr": pub}, b"pepper-0123456789abcdef", loader.load(rules_dir),
                                  today=lambda: TODAY, now=lambda: datetime(2026, 11, 27, 2, tzinfo=UTC)))
    key, value, headers = submissions.make(_penalty(date(2024, 3, 1))[1], "xc-samr", priv)
    verdict = core.judge(submissions.partition_of(key), 0, key, value, dict(headers))
    assert verdict.status == "ACCEPTED", verdict.reasons
    assert verdict.entry is not None
    assert verdict.entry["rules_versions"]["publication_periods"] == new
    assert verdict.entry["rules_versions"] == loader.load(rules_dir).stamp
    assert chain.broken_links([verdict.entry]) == []
    # the offline verifier (standard library only) reads the stamp and the hash of a LedgerEntry v2
    parsed = verify.parse_ledger_entry(verdict.entry_bytes)
    assert parsed["rules_versions"] == verdict.entry["rules_versions"]
    assert verify.chain_hash(verdict.entry_bytes, chain.GENESIS) == verdict.entry["hash"]
    penalty = next(iter(verdict.state.penalties.values()))  # type: ignore[union-attr]
    assert penalty["publication_rules"] == new


def _entry(rec: dict[str, Any], versions: dict[str, int] | None) -> dict[str, Any]:
    e = {"entity_id": "uscc:" + SUBJECT.id, "department": "xc-samr"}
    return e if versions is None else {**e, "rules_versions": versions}


def test_a_penalty_judged_under_an_old_version_keeps_its_window(rules_dir: Path) -> None:
    """Judged under v2 (Order 58 general: 1 year); v3 makes it 2 years; the fold and the sequencer's
    expiry check keep the 1 year of v2 for it, and give 2 years to a penalty judged under v3."""
    new = _next_version(rules_dir, "publication_periods", _longer_general)
    book = loader.load(rules_dir)
    decided = date(2024, 3, 1)
    folder = Folder(book)
    assert folder.penalty_window(decided, "general", new - 1)[2] == date(2025, 3, 2)
    assert folder.penalty_window(decided, "general", new)[2] == date(2026, 3, 2)

    _, rec = _penalty(decided)
    old = ledger_event(_entry(rec, {"publication_periods": new - 1}), rec)
    state = evolve(EntityState(), old)
    assert state.penalties[rec["decision_no"]]["publication_rules"] == new - 1
    _, expiry = workload.expired(SUBJECT, "administrative_penalty_publication", rec["decision_no"],
                                 rec["envelope"]["event_id"], date(2025, 3, 2))
    assert decide(state, event_of(expiry, entity_id=old.entity_id), TODAY, book.publication, book.catalogue) == []

    # an entry written before the stamp existed was judged under version 1 of every file
    unstamped = ledger_event(_entry(rec, None), rec)
    assert "publication_rules" not in evolve(EntityState(), unstamped).penalties[rec["decision_no"]]

    fresh = ledger_event(_entry(rec, {"publication_periods": new}), rec)
    with pytest.raises(Rejection) as info:
        decide(evolve(EntityState(), fresh), event_of(expiry, entity_id=fresh.entity_id), TODAY, book.publication,
               book.catalogue)
    assert (info.value.code, "2026-03-02" in info.value.message) == ("publication.period_not_ended", True)


def test_a_listing_keeps_the_end_of_the_version_it_was_judged_under(rules_dir: Path) -> None:
    new = _next_version(rules_dir, "publication_periods", _longer_general)
    book = loader.load(rules_dir)
    _, rec = workload.debtor_listed(SUBJECT, "(2024)豫1002执100号", date(2024, 2, 1), ground=2)
    listed = {k: evolve(EntityState(), ledger_event(_entry(rec, {"publication_periods": k}), rec)) for k in (new - 1, new)}
    ends = {k: legal_end(book.publication, "dishonest_debtor", s.active_listings()[0]) for k, s in listed.items()}
    assert ends == {new - 1: date(2026, 2, 2), new: date(2027, 2, 2)}
    assert ends[new - 1] + timedelta(days=365) == ends[new]


def test_docs_rules_md_is_current() -> None:
    assert doc.DOC.read_text(encoding="utf-8") == doc.render(), "run: python -m ledger.rules.doc"


def test_docs_rules_md_names_every_regime_and_category_with_its_source() -> None:
    text = doc.render()
    periods = json.loads((RULES_DIR / "publication_periods.v2.json").read_text(encoding="utf-8"))
    for item in [*periods["penalty_regimes"], *periods["penalty_categories"]]:
        assert " ".join(item["legal_source"].split()) in text

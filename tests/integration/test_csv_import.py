"""Given the running stack, when a department imports national double-publicity CSV files (a GB18030
penalty file with Chinese headers, a UTF-8-with-BOM licence file with XK_ codes), then the valid
rows are in the ledger with exact fen amounts, every refused row is named with its column and
reason in the report, and importing the same files again appends nothing (every row DUPLICATE)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from ledger.domain import identity
from ledger.intake import csv_import, importer
from ledger.platform import config
from ledger.rules import loader
from schemas import registry
from tests import helpers

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEPT = "xc-samr"
MATRIX = loader.load_departments()


def _fresh(name: str, encoding: str, token: str) -> bytes:
    """The fixture with run-unique decision and licence numbers, so that the test also passes on a
    stack kept from an earlier run (same subjects, new decisions)."""
    text = (FIXTURES / name).read_bytes().decode(encoding)
    text = text.replace("〔2026〕", f"〔2026〕{token}-").replace("JY1411002", f"JY{token}")
    return text.encode(encoding)


def _report(path: Path) -> dict[int, dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return {int(r["row"]): r for r in csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""))}


def _entity_ids(settings: config.Settings, data: bytes) -> set[str]:
    _, rows = csv_import.read_csv(data, DEPT)
    out = set()
    for r in rows:
        if r.record:
            s = r.record["envelope"]["subject"]
            ident = identity.check_uscc(s["id"]) if s["id_type"] == "USCC" else identity.check_ric(s["id"])
            out.add(identity.entity_key(ident, settings.id_pepper))
    return out


def _cli(settings: config.Settings, path: Path, report: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "ledger.intake.importer", "--department", DEPT, str(path),
                           "--report", str(report), "--timeout", "60"],
                          capture_output=True, text=True, env=env, timeout=300)


async def test_import_real_layout_files_then_reimport_appends_nothing(settings, services, tmp_path) -> None:
    token = f"T{helpers.rng('csv-token').randrange(10**9):09d}"
    penalties = tmp_path / "penalties.csv"
    penalties.write_bytes(_fresh("penalties_gb18030.csv", "gb18030", token))
    licences = tmp_path / "licences.csv"
    licences.write_bytes(_fresh("licences_utf8_bom.csv", "utf-8-sig", token))  # (utf-8-sig writes the BOM)

    # --- penalties through the command, as a clerk would run it
    run = _cli(settings, penalties, tmp_path / "penalties.report.csv")
    assert run.returncode == 1, run.stderr  # rows were refused
    assert "decided 26" in run.stderr  # the progress bar's last line
    rep = _report(tmp_path / "penalties.report.csv")
    assert len(rep) == 30
    status = Counter(r["status"] for r in rep.values())
    # 8 rows give a 失信程度 other than their categories give (docs/domain-notes.md §14.1): flagged by the
    # ledger, the department's explicit class kept; row 26 (decided 2018) loads under the 2017-2019 regime
    assert status == {"ACCEPTED": 17, "FLAGGED": 9, "REFUSED-BEFORE-SUBMISSION": 4}, rep
    expected = {10: ("CF_JDRQ 处罚决定日期", "不是真实存在的日期"),
                14: ("CF_NR_FK 罚款金额（万元）", "超过6位小数"),
                18: ("CF_XDR_SHXYM 行政相对人代码_1（统一社会信用代码）", "应为18位"),
                22: ("CF_WSH 行政处罚决定书文号", "不能为空")}
    for row, (fld, why) in expected.items():
        assert rep[row]["field"] == fld and why in rep[row]["reason"], rep[row]
        assert f"row {row}" in run.stdout
    assert rep[26]["status"] == "ACCEPTED"  # history is never refused (docs/domain-notes.md §14.2)
    assert rep[5]["status"] == "FLAGGED" and "严重程度与按处罚类别" in rep[5]["reason"], rep[5]
    assert rep[30]["status"] == "FLAGGED" and rep[30]["field"].startswith("CF_XDR_SHXYM")
    assert all(r["ledger_position"] for r in rep.values() if r["status"] in ("ACCEPTED", "FLAGGED"))

    # --- licences in-process
    lic = await importer.import_file(settings, DEPT, licences.read_bytes(), MATRIX, timeout=60)
    assert lic.counts == {"ACCEPTED": 11, "REFUSED-BEFORE-SUBMISSION": 1}
    (refused,) = [r for r in lic.rows if r.status == importer.REFUSED]
    assert (refused.row, refused.fields) == (9, ["XK_YXQZI 有效期至"])

    # --- the ledger holds exactly the accepted rows, with the fine in exact fen
    accepted = {r["event_id"] for r in rep.values() if r["status"] in ("ACCEPTED", "FLAGGED")} | \
        {r.event_id for r in lic.rows if r.status == importer.ACCEPTED}
    not_accepted = {r["event_id"] for r in rep.values() if r["status"] not in ("ACCEPTED", "FLAGGED")} - {""}
    ids = _entity_ids(settings, penalties.read_bytes()) | _entity_ids(settings, licences.read_bytes())
    entries = await helpers.ledger_entries(settings, ids)
    mine = {e["event_id"]: e for es in entries.values() for e in es if e["event_id"] in accepted | not_accepted}
    assert set(mine) == accepted
    _, rows = csv_import.read_csv(penalties.read_bytes(), DEPT)
    fines = {r.event_id: r.record["fine_fen"] for r in rows if r.record}
    for eid, e in mine.items():
        name, rec = registry.decode(e["submission"])
        assert e["department"] == DEPT and rec["envelope"]["source_department"] == DEPT
        if name == csv_import.PENALTY:
            assert rec["fine_fen"] == fines[eid]
    by_decision = {registry.decode(e["submission"])[1]["decision_no"]: registry.decode(e["submission"])[1]
                   for e in mine.values()}
    assert by_decision[f"许市监罚〔2026〕{token}-100号"]["fine_fen"] == 200_000  # "0.2" 万元
    assert by_decision[f"许市监罚〔2026〕{token}-106号"]["fine_fen"] == 123_456  # "0.123456" 万元
    flagged = next(e for e in mine.values() if e["event_id"] == rep[30]["event_id"])
    assert "uscc.check_character" in flagged["warnings"]

    # --- re-import both files: every submitted row is a DUPLICATE, nothing is appended
    before = await helpers.last_records(settings)
    run2 = _cli(settings, penalties, tmp_path / "again.report.csv")
    again = _report(tmp_path / "again.report.csv")
    lic2 = await importer.import_file(settings, DEPT, licences.read_bytes(), MATRIX, timeout=60)
    assert run2.returncode == 1  # the same rows are refused again
    for row, r in again.items():
        was = rep[row]["status"]
        assert r["status"] == ("DUPLICATE" if was in ("ACCEPTED", "FLAGGED") else was), (row, r)
        if was in ("ACCEPTED", "FLAGGED"):
            assert r["ledger_position"] == rep[row]["ledger_position"] and r["event_id"] == rep[row]["event_id"]
    assert lic2.counts == {"DUPLICATE": 11, "REFUSED-BEFORE-SUBMISSION": 1}
    assert await helpers.last_records(settings) == before

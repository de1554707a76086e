"""A regime for every decision date from 2017 on, and the class of a penalty from its categories
(docs/domain-notes.md §14.1, §14.2; publication_periods.v2.json).

Sources the cases cite: 发改办财金〔2019〕527号 (periods from 2019-07-01, counted from the decision
date), the safer loading rule for 2017-2019 decisions, 行政处罚法 (2021) arts. 9 and 86 (the types;
通报批评, 限制开展生产经营活动, 责令关闭, 限制从业 only from 2021-07-15), NDRC Order 36 (warnings minor),
河南省社会信用条例 art. 19 (at most 5 years from 2020-05-01)."""

from __future__ import annotations

import json
import random
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ledger.domain.decide import decide
from ledger.domain.errors import RulesError
from ledger.domain.model import EntityState
from ledger.intake import csv_import as ci
from ledger.records.events import event_of
from ledger.rules import loader
from ops import workload
from projections.rows import Folder

BOOK = loader.load()
RULES = BOOK.publication
TODAY = date(2026, 11, 27)
SUBJECT = workload.Subject("91411002MA5FMHPPX6", "USCC", "许昌瑞祥食品有限公司")


@pytest.mark.parametrize(
    ("decided", "severity", "end", "regime"),
    [
        # safer loading rule: 527号 windows from the decision date ...
        (date(2018, 12, 1), "general", date(2019, 12, 2), "pre-527-2017"),
        (date(2017, 3, 1), "serious", date(2020, 3, 2), "pre-527-2017"),
        # ... and a record whose 527号 maximum had passed at the cut-over is withdrawn on 2019-07-01
        (date(2017, 3, 1), "general", date(2019, 7, 1), "pre-527-2017"),
        (date(2017, 1, 1), "minor", date(2019, 7, 1), "pre-527-2017"),
        (date(2019, 6, 30), "general", date(2020, 7, 1), "pre-527-2017"),
        # 527号 itself from 2019-07-01
        (date(2019, 7, 1), "general", date(2020, 7, 2), "ndrc-527-2019"),
    ],
)
def test_a_regime_for_every_decision_from_2017(decided: date, severity: str, end: date, regime: str) -> None:
    window = RULES.penalty_window(decided, severity)
    assert (window.start, window.automatic_end, window.regime) == (decided, end, regime)


def test_before_2017_no_publication_period_and_the_record_is_accepted() -> None:
    """History is never refused: a 2016 penalty is accepted with publication.no_period, and its window is empty."""
    _, rec = workload.workload_penalty(random.Random(3), SUBJECT, "xc-samr", "许市监罚〔2016〕3号",
                                       date(2016, 8, 8), "general")
    event = event_of(rec, entity_id="uscc:" + SUBJECT.id)
    assert decide(EntityState(), event, TODAY, RULES, BOOK.catalogue) == ["publication.no_period"]
    start, _, end = Folder(BOOK).penalty_window(date(2016, 8, 8), "general", RULES.version)
    assert start == end == date(2016, 8, 8)


def test_each_regime_keeps_its_start_and_end_condition() -> None:
    by_id = {r.id: r for r in RULES.regimes}
    assert by_id["ndrc-527-2019"].period_start == "decision_date"
    assert (by_id["ndrc-order-36-2025"].period_start, by_id["ndrc-order-36-2025"].end_condition) == (
        "publication_date", "automatic_once_corrected")
    assert by_id["pre-527-2017"].withdrawn_at_cut_over == date(2019, 7, 1)


@pytest.mark.parametrize(
    ("decided", "categories", "severity", "warnings"),
    [
        # revocation, closure, stop orders, occupation bans are serious (§14.1)
        (date(2024, 5, 6), ["吊销许可证件"], "serious", ()),
        (date(2024, 5, 6), ["责令关闭"], "serious", ()),
        (date(2024, 5, 6), ["限制从业"], "serious", ()),
        (date(2024, 5, 6), ["罚款", "没收违法所得"], "general", ()),
        # several types in one decision: the longest period applies
        (date(2024, 5, 6), ["警告", "罚款", "责令停产停业"], "serious", ()),
        # warnings: general before Order 36, minor under it
        (date(2025, 5, 6), ["警告"], "general", ()),
        (date(2026, 5, 6), ["警告"], "minor", ()),
        (date(2026, 5, 6), ["警告", "罚款"], "general", ()),
        # the 1996 law's spelling
        (date(2018, 5, 6), ["吊销营业执照"], "serious", ()),
        # 责令关闭 exists only from 2021-07-15 (行政处罚法 art. 86): flagged on an earlier decision
        (date(2020, 5, 6), ["责令关闭"], "serious", ("penalty.category_before_law",)),
        (date(2024, 5, 6), ["责令改正"], "general", ("penalty.category_unknown",)),
    ],
)
def test_severity_from_the_penalty_categories(decided: date, categories: list[str], severity: str,
                                              warnings: tuple[str, ...]) -> None:
    found = RULES.severity_for(decided, categories)
    assert (found.severity, found.warnings) == (severity, warnings)


def _judge(**changes: Any) -> list[str]:
    _, rec = workload.workload_penalty(random.Random(5), SUBJECT, "xc-samr", "许市监罚〔2024〕5号",
                                       date(2024, 5, 6), "general")
    rec.update(changes)
    return decide(EntityState(), event_of(rec, entity_id="uscc:" + SUBJECT.id), TODAY, RULES, BOOK.catalogue)


def test_an_explicit_severity_that_differs_is_kept_with_a_warning() -> None:
    assert _judge() == []
    assert _judge(penalty_categories=["吊销许可证件"]) == ["penalty.severity_differs_from_categories"]


def test_publicity_until_is_compared_with_the_computed_window() -> None:
    # Order 58 general, decided 2024-05-06: shown up to and including 2025-05-06
    assert _judge(publicity_until=date(2025, 5, 6)) == []
    assert _judge(publicity_until=date(2025, 5, 13)) == ["penalty.publicity_until_differs"]


def _csv(row: dict[str, str]) -> ci.RowResult:
    lines = [",".join(row), ",".join(row.values())]
    _, rows = ci.read_csv("\n".join(lines).encode("utf-8"), "xc-samr", TODAY)
    return rows[0]


def _row(**changes: str) -> dict[str, str]:
    code = workload.make_uscc(random.Random(1))
    row = {"CF_XDR_MC": "许昌瑞祥食品有限公司", "CF_XDR_LB": "法人及非法人组织", "CF_XDR_SHXYM": code,
           "CF_WSH": "许市监罚〔2024〕9001号", "CF_WFXW": "无证生产", "CF_SY": "经查属实", "CF_YJ": "食品安全法第一百二十二条",
           "CF_CFLB": "吊销许可证件;罚款", "CF_NR": "吊销许可证件、罚款", "CF_JDRQ": "2024-05-06",
           "CF_CFJG": "许昌市市场监督管理局", "CF_CFJGDM": "11411000MB1957262W"}
    row.update(changes)
    return row


def test_the_csv_import_derives_the_severity_from_the_categories() -> None:
    """Before: every imported penalty was general (1 year); a revocation is serious (3 years)."""
    result = _csv(_row())
    assert result.record is not None, result.refusals
    assert result.record["severity"] == "serious"
    assert RULES.penalty_window(date(2024, 5, 6), result.record["severity"]).automatic_end == date(2027, 5, 7)
    general = _csv(_row(CF_CFLB="罚款"))
    assert general.record is not None and general.record["severity"] == "general"


def test_a_severity_the_file_gives_is_kept() -> None:
    result = _csv({**_row(), "失信程度": "一般"})
    assert result.record is not None and result.record["severity"] == "general"


def test_henan_ceiling_refuses_a_regime_beyond_five_years(tmp_path: Path) -> None:
    for path in loader.default_directory().glob("*.v*.json"):
        shutil.copy(path, tmp_path / path.name)
    d = json.loads((tmp_path / "publication_periods.v2.json").read_text(encoding="utf-8"))
    d["version"] = 3
    d["penalty_regimes"][-1]["severities"]["serious"]["max_months"] = 61
    (tmp_path / "publication_periods.v3.json").write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(RulesError, match="beyond the ceiling of 60 months") as info:
        loader.load(tmp_path)
    assert info.value.entry == "ceilings[0]"

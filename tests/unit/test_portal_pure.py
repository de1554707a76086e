"""The portal's pure parts: publication periods, the dashboard's summary of a /metrics scrape and
its throughput over recent scrapes, the publication window of a double-publicity record."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.platform.web import BadParameter
from projections.publicity import on_display
from projections.web import dashboard, portal

SEQUENCER = """\
# HELP ledger_submissions_total Submissions judged by the sequencer
# TYPE ledger_submissions_total counter
ledger_submissions_total{status="ACCEPTED"} 120.0
ledger_submissions_total{status="REJECTED"} 7.0
ledger_submissions_created{status="ACCEPTED"} 1.7e9
# HELP ledger_rejections_total Refused submissions by reason code
# TYPE ledger_rejections_total counter
ledger_rejections_total{code="list.not_listed"} 2.0
ledger_rejections_total{code="signature.invalid"} 5.0
# HELP ledger_events_appended_total Ledger entries appended to credit.events
# TYPE ledger_events_appended_total counter
ledger_events_appended_total 120.0
"""
PROJECTOR = """\
# TYPE ledger_projected_events_total counter
ledger_projected_events_total 100.0
# TYPE ledger_projection_lag_seconds gauge
ledger_projection_lag_seconds{partition="0"} 0.0
ledger_projection_lag_seconds{partition="1"} 3.5
# TYPE ledger_projection_lag_records gauge
ledger_projection_lag_records{partition="0"} 0.0
ledger_projection_lag_records{partition="1"} 20.0
"""

ALERTER = """\
# TYPE ledger_alerts_total counter
ledger_alerts_total{department="xc-finance",action="impose"} 4.0
ledger_alerts_total{department="xc-finance",action="lift"} 1.0
ledger_alerts_total{department="sector-banking",action="impose"} 2.0
ledger_alerts_created{department="xc-finance",action="impose"} 1.7e9
"""
WEBHOOK = """\
# TYPE ledger_webhook_deliveries_total counter
ledger_webhook_deliveries_total{department="xc-finance",result="delivered"} 5.0
ledger_webhook_deliveries_total{department="xc-finance",result="retried"} 2.0
"""


@pytest.mark.parametrize(("text", "label", "start", "end"), [
    ("2026-11", "2026年11月", date(2026, 11, 1), date(2026, 11, 30)),
    ("2026-02", "2026年2月", date(2026, 2, 1), date(2026, 2, 28)),
    ("2024-02", "2024年2月", date(2024, 2, 1), date(2024, 2, 29)),
    ("2026-q4", "2026年第4季度", date(2026, 10, 1), date(2026, 12, 31)),
    (" 2026-Q1 ", "2026年第1季度", date(2026, 1, 1), date(2026, 3, 31)),
])
def test_publication_periods(text: str, label: str, start: date, end: date) -> None:
    assert portal.parse_period(text) == (label, start, end)


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-Q0", "2026-Q5", "2026/11", "26-11", "", None,
                                  "2026-11-01", "1899-01"])
def test_bad_periods_name_the_parameter(text: str | None) -> None:
    with pytest.raises(BadParameter) as e:
        portal.parse_period(text)
    assert e.value.name == "period"


def test_summary_of_a_scrape() -> None:
    f = dashboard.summarise({"sequencer": dashboard.parse(SEQUENCER), "projector": dashboard.parse(PROJECTOR),
                             "gateway": None})
    assert f.up == {"gateway": False, "projector": True, "sequencer": True}
    assert (f.appended, f.projected) == (120.0, 100.0)
    assert f.submissions == {"ACCEPTED": 120.0, "REJECTED": 7.0}  # *_created samples left out
    assert list(f.rejections.items()) == [("signature.invalid", 5.0), ("list.not_listed", 2.0)]
    assert (f.max_lag_seconds, f.lag_records_total, f.quarantined) == (3.5, 20.0, None)


def test_summary_when_nothing_answers() -> None:
    f = dashboard.summarise({"sequencer": None, "projector": None})
    assert f.appended is None and f.max_lag_seconds is None and f.rejections == {} and not any(f.up.values())
    assert f.alerts == {} and f.deliveries == {}


def test_alerts_and_deliveries_by_department() -> None:
    f = dashboard.summarise({"list-keeper": dashboard.parse(ALERTER), "webhook": dashboard.parse(WEBHOOK)})
    assert f.alerts == {"sector-banking": {"impose": 2.0}, "xc-finance": {"impose": 4.0, "lift": 1.0}}
    assert list(f.alerts) == ["sector-banking", "xc-finance"]
    assert f.deliveries == {"xc-finance": {"delivered": 5.0, "retried": 2.0}}


def _figures(appended: float | None, projected: float | None = None) -> dashboard.Figures:
    return dashboard.Figures({}, appended, projected, {}, {}, {}, {}, None)


def test_throughput_over_the_window_and_after_a_restart() -> None:
    t = dashboard.Throughput(window=60)
    assert t.rate("appended") is None
    t.add(_figures(100), now=0)
    assert t.rate("appended") is None  # one sample: no rate
    t.add(_figures(400, 10), now=10)
    assert t.rate("appended") == 30.0 and t.rate("projected") is None
    t.add(_figures(1000, 70), now=70)  # the sample at 0 left the window
    assert t.rate("appended") == 10.0 and t.rate("projected") == 1.0
    t.add(_figures(50), now=80)  # the sequencer restarted: its counter began again
    assert t.rate("appended") is None
    t.add(_figures(250), now=90)
    assert t.rate("appended") == 20.0


def test_publicity_window() -> None:
    today = date(2026, 11, 27)
    rec = {"status": "published", "window_start": "2026-06-16", "automatic_end": "2027-06-17"}
    assert on_display(rec, today)
    assert not on_display({**rec, "automatic_end": "2026-11-27"}, today)
    assert not on_display({**rec, "status": "repaired"}, today)
    assert on_display({"status": "valid", "window_start": None, "automatic_end": None}, today)
    assert not on_display({**rec, "window_start": "2026-12-01"}, today)

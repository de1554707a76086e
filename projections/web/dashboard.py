"""The operator dashboard's figures from the ledger's own Prometheus metrics.

Every long-running process serves /metrics on 127.0.0.1 at the metrics base port + its offset
(ledger/platform/config.py SERVICE_PORT_OFFSETS). `scrape` reads them all (Prometheus text format, parsed
with prometheus_client.parser); `summarise` (pure) turns one scrape into the dashboard's figures;
`Throughput` keeps the counters of recent scrapes and answers events per second over the last
minute. The figures from the views (late double-publicity records, coverage) come from
projections/queries.py, not from here.

Alerts by department come from the list keeper's `ledger_alerts_total{department,action}` and the
webhook deliveries from `ledger_webhook_deliveries_total{department,result}`: counters since each
process started (the alert topic itself is the durable record).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ledger.platform import config

# sample name -> [(labels, value)]
Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> Samples:
    """The samples of one /metrics page by sample name (``*_created`` timestamps left out)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not s.name.endswith("_created"):
                out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out


async def scrape(settings: config.Settings, timeout: float = 2.0) -> dict[str, Samples | None]:
    """Every service's /metrics, by service name; None for a service that does not answer."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:

        async def one(name: str) -> Samples | None:
            try:
                async with session.get(f"http://127.0.0.1:{settings.metrics_port(name)}/metrics") as r:
                    if r.status != 200:
                        return None
                    return parse(await r.text())
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return None

        names = sorted(config.SERVICE_PORT_OFFSETS)
        results = await asyncio.gather(*(one(n) for n in names))
    return dict(zip(names, results, strict=True))


def _total(samples: Samples | None, name: str) -> float | None:
    if samples is None or name not in samples:
        return None
    return sum(v for _, v in samples[name])


def _by_label(samples: Samples | None, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in (samples or {}).get(name, []):
        key = labels.get(label, "")
        out[key] = out.get(key, 0.0) + value
    return out


def _by_two_labels(samples: Samples | None, name: str, row: str, column: str) -> dict[str, dict[str, float]]:
    """{row label: {column label: value}}, rows sorted by name."""
    out: dict[str, dict[str, float]] = {}
    for labels, value in (samples or {}).get(name, []):
        cells = out.setdefault(labels.get(row, ""), {})
        cells[labels.get(column, "")] = cells.get(labels.get(column, ""), 0.0) + value
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Figures:
    """One scrape, summarised."""

    up: dict[str, bool]
    appended: float | None  # ledger entries appended (sequencer)
    projected: float | None  # ledger entries applied to the views (projector)
    submissions: dict[str, float]  # by outcome status
    rejections: dict[str, float]  # by reason code, largest first
    lag_seconds: dict[str, float]  # by partition
    lag_records: dict[str, float]  # by partition
    quarantined: float | None
    alerts: dict[str, dict[str, float]] = field(default_factory=dict)  # department -> action -> count
    deliveries: dict[str, dict[str, float]] = field(default_factory=dict)  # department -> result -> count
    restarts: dict[str, float] = field(default_factory=dict)  # service -> times the supervisor started it again

    @property
    def max_lag_seconds(self) -> float | None:
        return max(self.lag_seconds.values()) if self.lag_seconds else None

    @property
    def lag_records_total(self) -> float | None:
        return sum(self.lag_records.values()) if self.lag_records else None


def summarise(scraped: dict[str, Samples | None]) -> Figures:
    seq, proj = scraped.get("sequencer"), scraped.get("projector")
    rejections = _by_label(seq, "ledger_rejections_total", "code")
    return Figures(
        up={name: samples is not None for name, samples in sorted(scraped.items())},
        appended=_total(seq, "ledger_events_appended_total"),
        projected=_total(proj, "ledger_projected_events_total"),
        submissions=_by_label(seq, "ledger_submissions_total", "status"),
        rejections=dict(sorted(rejections.items(), key=lambda kv: (-kv[1], kv[0]))),
        lag_seconds=_by_label(proj, "ledger_projection_lag_seconds", "partition"),
        lag_records=_by_label(proj, "ledger_projection_lag_records", "partition"),
        quarantined=_total(proj, "ledger_projection_quarantined_total"),
        alerts=_by_two_labels(scraped.get("list-keeper"), "ledger_alerts_total", "department", "action"),
        deliveries=_by_two_labels(scraped.get("webhook"), "ledger_webhook_deliveries_total", "department", "result"),
        restarts=_by_label(scraped.get("supervisor"), "ledger_service_restarts_total", "kind"),
    )


def lag_samples(scraped: dict[str, Samples | None]) -> dict[str, float]:
    """The lag series the department supervision records every 30 s for the dashboard's chart (a
    service that does not answer gives no value): the projector's lag in seconds (the largest
    partition's) and in records, and the list keeper's records behind."""
    figures = summarise(scraped)
    keeper = [v for labels, v in (scraped.get("list-keeper") or {}).get("ledger_stream_lag_records", [])
              if labels.get("processor") == "list-keeper"]
    out = {"projector_lag_seconds": figures.max_lag_seconds, "projector_lag_records": figures.lag_records_total,
           "list_keeper_lag_records": sum(keeper) if keeper else None}
    return {k: v for k, v in out.items() if v is not None}


@dataclass
class Throughput:
    """Counters of recent scrapes -> events per second over the last `window` seconds. A counter
    that went down (a restarted process) starts the window again."""

    window: float = 60.0
    samples: deque[tuple[float, dict[str, float]]] = field(default_factory=lambda: deque(maxlen=256))

    def add(self, figures: Figures, now: float | None = None) -> None:
        counters = {k: v for k, v in (("appended", figures.appended), ("projected", figures.projected))
                    if v is not None}
        self.samples.append((time.monotonic() if now is None else now, counters))

    def rate(self, counter: str) -> float | None:
        """Per second between the oldest sample inside the window and the newest; None when there
        are not two samples of the counter at least a second apart."""
        if not self.samples:
            return None
        t_last, last = self.samples[-1]
        if counter not in last:
            return None
        start: tuple[float, float] | None = None
        for t, counters in self.samples:
            if t_last - t > self.window or counter not in counters:
                continue
            if counters[counter] > last[counter]:  # reset after this sample: only later ones count
                start = None
                continue
            if start is None:
                start = (t, counters[counter])
        if start is None or t_last - start[0] < 1.0:
            return None
        return (last[counter] - start[1]) / (t_last - start[0])

    def as_dict(self) -> dict[str, Any]:
        return {"appended_per_s": self.rate("appended"), "projected_per_s": self.rate("projected"),
                "window_s": self.window}

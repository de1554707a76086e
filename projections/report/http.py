"""The credit report routes of the query API (registered by projections/web/api.py with `install`).

  /entities/{entity_id}/report.json   the entity's credit report, issued now (the same number as a
                                      report issued today at the same state of its views), as the
                                      JSON file that `python -m ledger.audit.verify --report` checks
  /entities/{entity_id}/report.pdf    the same report as a PDF (Chinese, QR code, how to verify it)
  /reports/{number}.json              a report exactly as issued; 404 for a number never issued
  /reports/{number}.pdf               its PDF
  /reports/issuer-key                 the report issuer's Ed25519 public key (hex) and key id

A report is refused with 503 and Retry-After while the notary has not yet signed a tree head
covering the entity's records (a few seconds after its latest event), and 404 for an entity the
views do not know. docs/architecture.md, "Credit reports".
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg_pool
from aiohttp import web
from prometheus_client import Counter

from ledger.audit import verify
from ledger.domain import identity
from ledger.domain.rulebook import RuleBook
from ledger.platform import config, logs
from ledger.platform.clock import Clock
from ledger.platform.web import BadParameter, json_response
from projections.audit.http import READER
from projections.report import issue, pdf

log = logs.get("credit-report")

REPORTS = Counter("ledger_credit_reports_total", "Credit reports served, by format and outcome (issued: a new "
                  "number; again: the report of a number issued before; unavailable: refused for now)",
                  ["format", "outcome"])
CONTENT_TYPES = {"json": "application/json", "pdf": "application/pdf"}
PATHS = ("/entities/{entity_id}/report.json", "/entities/{entity_id}/report.pdf", "/reports/{number}.json",
         "/reports/{number}.pdf", "/reports/issuer-key")


def _error(status: int, message: str, retry_after: int | None = None) -> web.Response:
    return json_response({"error": message}, status,
                         headers={"Retry-After": str(retry_after)} if retry_after is not None else None)


async def _file(document: bytes, number: str, fmt: str) -> web.Response:
    body = document if fmt == "json" else await asyncio.to_thread(pdf.render, json.loads(document))
    return web.Response(body=body, content_type=CONTENT_TYPES[fmt], charset="utf-8" if fmt == "json" else None,
                        headers={"Content-Disposition": f'attachment; filename="{number}.{fmt}"'})


def install(app: web.Application, pool_key: web.AppKey[psycopg_pool.AsyncConnectionPool],
            settings_key: web.AppKey[config.Settings], clock_key: web.AppKey[Clock], rules: RuleBook,
            wait_s: float = 15.0) -> None:
    """Add the report routes; they read the ledger through the audit routes' Kafka reader (install those first)."""

    async def entity_report(request: web.Request, fmt: str) -> web.Response:
        entity_id = request.match_info["entity_id"]
        if not identity.ENTITY_ID.fullmatch(entity_id):
            raise BadParameter("entity_id", "not an entity id (uscc:<18 characters> or ric:<32 hex digits>)")
        issuer = issue.load_issuer(request.app[settings_key].keys_dir)
        if issuer is None:
            REPORTS.labels(fmt, "unavailable").inc()
            return _error(503, "报告出具方的签名密钥尚未配置，暂不能出具信用报告 (no report issuer key: ops/stack up "
                               "creates the development one)")
        today = request.app[clock_key].today()
        try:
            async with request.app[pool_key].connection() as conn:
                issued = await issue.build(conn, request.app[READER], entity_id, today, rules, issuer, wait_s)
                new = await issue.keep(conn, issued, entity_id, today)
            response = await _file(issued.document, issued.number, fmt)
        except issue.ReportError as e:
            REPORTS.labels(fmt, "unavailable").inc()
            return _error(e.status, e.message, e.retry_after)
        except pdf.FontMissing as e:
            REPORTS.labels(fmt, "unavailable").inc()
            return _error(503, f"报告字体未安装，暂不能生成 PDF ({e})")
        REPORTS.labels(fmt, "issued" if new else "again").inc()
        log.info("credit report", report_number=issued.number, entity_id=entity_id, format=fmt, new=new,
                 bytes=len(issued.document))
        return response

    async def entity_json(request: web.Request) -> web.Response:
        return await entity_report(request, "json")

    async def entity_pdf(request: web.Request) -> web.Response:
        return await entity_report(request, "pdf")

    async def issued_report(request: web.Request, fmt: str) -> web.Response:
        number = request.match_info["number"]
        if not verify.REPORT_NUMBER.fullmatch(number):
            raise BadParameter("number", "not a report number (XCCR-<issue date YYYYMMDD>-<16 hex digits>)")
        async with request.app[pool_key].connection() as conn:
            document = await issue.fetch(conn, number)
        if document is None:
            return _error(404, f"没有编号为 {number} 的信用报告 (no report was issued under this number)")
        try:
            response = await _file(document, number, fmt)
        except pdf.FontMissing as e:
            return _error(503, f"报告字体未安装，暂不能生成 PDF ({e})")
        REPORTS.labels(fmt, "again").inc()
        return response

    async def issued_json(request: web.Request) -> web.Response:
        return await issued_report(request, "json")

    async def issued_pdf(request: web.Request) -> web.Response:
        return await issued_report(request, "pdf")

    async def issuer_key(request: web.Request) -> web.Response:
        key = issue.issuer_public_key(request.app[settings_key].keys_dir)
        if key is None:
            return _error(404, "报告出具方的公钥尚未生成 (no report issuer key yet)")
        payload: dict[str, Any] = {"public_key": key, "key_id": verify.key_id(key), "algorithm": "Ed25519"}
        return json_response(payload)

    for path, handler in zip(PATHS, (entity_json, entity_pdf, issued_json, issued_pdf, issuer_key), strict=True):
        app.router.add_get(path, handler)

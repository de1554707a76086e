"""The portal's 红黑榜 releases: every approved release exactly as the ledger holds it, with its downloads.

    /releases?county=               the approved releases, newest first (with a county: its entries in each)
    /releases/{n}?county=           第N期: who approved it, where it is on the ledger, its digest; for a
                                    correction what it withdrew, added and changed; the black and red
                                    entries (with a county: that county's only)
    /releases/{n}.pdf               the PDF (Chinese font embedded; the same bytes every time)
    /releases/{n}.csv               the entries as CSV (UTF-8 with BOM, Chinese header)
    /releases/{n}.json              the canonical content: its SHA-256 is the digest the approval carries

Every page and file is made from the views' ``releases`` and ``release_entries`` (the approval's own
content, projected from the ledger) after checking that they give the approved digest; the live lists
are never read for a release (projections/releases/reads.py).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from ledger.domain import releases as domain_releases
from ledger.platform.web import BadParameter, Handler
from projections.releases import content as release_content
from projections.releases import pdf as pdf_file
from projections.releases import reads
from projections.web import api
from projections.web.pages import form_request, render
from projections.web.params import Params
from projections.web.pool import POOL

__all__ = ["PDF_CACHE", "ROUTES", "county_param"]

PDF_CACHE = web.AppKey("release_pdfs", OrderedDict)
PDF_CACHE_SIZE = 16  # PDFs kept per process (a release never changes, so a kept one is always right)
NUMBER = r"{number:[0-9]{1,9}}"


def county_param(request: web.Request, p: Params) -> str | None:
    """The ``county`` parameter: a county id of ledger/rules/divisions (BadParameter naming it otherwise)."""
    counties = request.app[api.COUNTIES]
    county = p.text("county", 20)
    if county is not None and county not in counties:
        raise BadParameter("county", f"unknown county '{county}'; known: {', '.join(counties)}")
    return county


async def _frozen(request: web.Request) -> reads.Frozen | web.Response:
    number = int(request.match_info["number"])
    async with request.app[POOL].connection() as conn:
        try:
            found = await reads.frozen(conn, number)
        except reads.ContentMismatch:
            return render(request, "error.html", status=500, title="发布内容校验失败",
                               message=f"第{number}期的存储内容与批准时的内容摘要不一致，暂停公示，请联系信用办。")
    if found is None:
        return render(request, "error.html", status=404, title="没有这一期红黑榜",
                           message=f"尚未发布第{number}期红黑榜。")
    return found


async def release_index(request: web.Request) -> web.Response:
    p = Params(form_request(request), frozenset({"county"}))
    county = county_param(request, p)
    async with request.app[POOL].connection() as conn:
        rows = await reads.listing(conn, county)
    return render(request, "releases.html", releases=rows, county=county or "")


async def release_page(request: web.Request) -> web.Response:
    p = Params(form_request(request), frozenset({"county"}))
    county = county_param(request, p)
    found = await _frozen(request)
    if isinstance(found, web.Response):
        return found
    correction = await _correction(request, found)
    shown = [e for e in found.entries if county is None or e["county"] == county]
    return render(request, "release.html", r=found.release, entries=shown, county=county or "",
                       correction=correction, total=len(found.entries),
                       publisher=request.app[api.PUBLISHER])


async def _download(request: web.Request, ext: str,
                    make: Callable[[reads.Frozen], Awaitable[tuple[bytes, str]]]) -> web.StreamResponse:
    """A release as a file ``credit-release-<n>.<ext>``: ``make`` gives its bytes and content type."""
    Params(request)
    found = await _frozen(request)
    if isinstance(found, web.Response):
        return found
    body, content_type = await make(found)
    return web.Response(body=body, headers={
        "Content-Type": content_type,
        "Content-Disposition": f'attachment; filename="credit-release-{found.release["release_no"]}.{ext}"'})


async def _correction(request: web.Request, found: reads.Frozen) -> domain_releases.Correction | None:
    """What a correction withdrew, added and changed in the release it corrects (None for a release)."""
    if found.release["corrects"] is None:
        return None
    async with request.app[POOL].connection() as conn:
        corrected = await reads.frozen(conn, found.release["corrects"])
    return domain_releases.compare(corrected.entries, found.entries) if corrected else None


async def release_pdf(request: web.Request) -> web.StreamResponse:
    async def make(found: reads.Frozen) -> tuple[bytes, str]:
        cache = request.app[PDF_CACHE]
        key = (found.release["release_no"], found.release["content_sha256"])
        if key not in cache:
            cache[key] = await asyncio.to_thread(
                pdf_file.render, found.release, found.entries, request.app[api.SETTINGS].pdf_font,
                await _correction(request, found), request.app[api.PUBLISHER])
            while len(cache) > PDF_CACHE_SIZE:
                cache.popitem(last=False)
        return cache[key], "application/pdf"

    return await _download(request, "pdf", make)


async def release_csv(request: web.Request) -> web.StreamResponse:
    async def make(found: reads.Frozen) -> tuple[bytes, str]:
        buffer = io.StringIO()
        buffer.write("\ufeff")  # a byte-order mark: Excel opens the Chinese text as UTF-8
        writer = csv.writer(buffer)
        writer.writerow([title for _, title in release_content.CSV_COLUMNS])
        writer.writerows(release_content.csv_rows(found.entries))
        return buffer.getvalue().encode("utf-8"), "text/csv; charset=utf-8"

    return await _download(request, "csv", make)


async def release_json(request: web.Request) -> web.StreamResponse:
    async def make(found: reads.Frozen) -> tuple[bytes, str]:
        return found.content, "application/json; charset=utf-8"

    return await _download(request, "json", make)


ROUTES: tuple[tuple[str, Handler], ...] = (
    ("/releases", release_index),
    (f"/releases/{NUMBER}", release_page),
    (f"/releases/{NUMBER}.pdf", release_pdf),
    (f"/releases/{NUMBER}.csv", release_csv),
    (f"/releases/{NUMBER}.json", release_json),
)

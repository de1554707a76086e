"""The PDF of an approved 红黑榜 release: reportlab, A4 landscape, the Chinese font embedded (a subset of
WenQuanYi Micro Hei, Debian package fonts-wqy-microhei, installed by ops/bootstrap).

The PDF is a rendering of the release as the ledger holds it (the views' ``releases`` row and its
``release_entries``), never of the live lists. It is written in reportlab's invariant mode (no creation
time, a fixed document id), so the same release always gives the same bytes: a file downloaded today and
one downloaded after the lists changed are identical.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus.doctemplate import BaseDocTemplate

from ledger.domain import releases
from projections import queries

__all__ = ["render"]

FONT = "WenQuanYiMicroHei"
_COLUMNS = (("序号", 12), ("主体名称", 46), ("统一社会信用代码/身份证号码", 44), ("县（市、区）", 20),
            ("名单类型", 36), ("列入事由", 50), ("认定部门", 36), ("列入日期", 20))


@cache
def _font(path: str) -> str:
    """Register the TrueType collection's first face once per process (reportlab embeds the subset used)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"the PDF font {path} is missing: install the Debian package fonts-wqy-microhei "
                                "(ops/bootstrap does) or set LEDGER_PDF_FONT")
    pdfmetrics.registerFont(TTFont(FONT, path, subfontIndex=0))
    return FONT


def _styles(font: str) -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=font, fontSize=8.5, leading=11, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=17, leading=23, alignment=1, spaceAfter=4),
        "subtitle": ParagraphStyle("subtitle", parent=base, fontSize=10, leading=14, alignment=1, spaceAfter=8),
        "meta": ParagraphStyle("meta", parent=base, fontSize=8.5, leading=12, textColor=colors.HexColor("#333333")),
        "heading": ParagraphStyle("heading", parent=base, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4),
        "cell": base,
        "head": ParagraphStyle("head", parent=base, textColor=colors.white),
    }


def _e(text: Any) -> str:
    """Text for a reportlab Paragraph (its mini-markup escaped)."""
    return str("" if text is None else text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(release: Mapping[str, Any], entries: Sequence[Mapping[str, Any]], font_path: str,
           correction: releases.Correction | None = None, publisher: str = "") -> bytes:
    """The PDF bytes of a release: its heading, who drafted, reviewed and approved it, where it is on the
    ledger and its digest; for a correction what it corrects; then the black and the red entries."""
    font = _font(font_path)
    s = _styles(font)
    n = release["release_no"]
    story: list[Any] = [
        Paragraph(_e(f"第{n}期　{release['title']}"), s["title"]),
        Paragraph(_e(f"{publisher}发布　{queries.plain(release['approved_on'])}"), s["subtitle"]),
        Paragraph(_e(f"起草：{release['drafted_by']}　审核：{release['reviewed_by']}（{queries.plain(release['reviewed_on'])}）"
                     f"　批准：{release['approved_by']}（{queries.plain(release['approved_on'])}）　名单截取时间："
                     f"{queries.plain(release['drawn_at'])[:19].replace('T', ' ')} UTC"), s["meta"]),
        Paragraph(_e(f"账本位置：credit.events 第 {release['kafka_partition']} 分区 第 {release['kafka_offset']} 条"
                     f"（事件 {release['event_id']}）　内容摘要 SHA-256：{release['content_sha256']}"), s["meta"]),
    ]
    if release.get("corrects") is not None:
        story.append(Paragraph(_e(f"本期更正第{release['corrects']}期：{release.get('correction_note') or ''}"),
                               s["heading"]))
        if correction is not None:
            story.append(Paragraph(_e(f"撤回 {len(correction.withdrawn)} 条，新增 {len(correction.added)} 条，"
                                      f"更正 {len(correction.changed)} 条。第{release['corrects']}期的其余内容不变。"),
                                   s["meta"]))
    for colour, heading in (("black", "黑名单（失信惩戒对象）"), ("red", "红名单（守信激励对象）")):
        chosen = [e for e in entries if e["colour"] == colour]
        story.append(Paragraph(_e(f"{heading}　共 {len(chosen)} 条"), s["heading"]))
        if chosen:
            story.append(_table(chosen, s))
    story.append(Spacer(1, 6))
    story.append(Paragraph(_e("本期内容经信用办批准后写入信用账本（ListReleaseApproved），发布后不再修改；更正另发一期。"
                              "自然人身份证号码已脱敏。"), s["meta"]))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=12 * mm, bottomMargin=14 * mm, invariant=1,
                            title=f"第{n}期 {release['title']}", author=publisher, subject=release["content_sha256"],
                            creator="credit-ledger")
    footer = f"第{n}期　{release['title']}　SHA-256 {release['content_sha256'][:16]}…"

    def page(canvas: Any, document: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(font, 7.5)
        canvas.drawString(12 * mm, 7 * mm, footer)
        canvas.drawRightString(landscape(A4)[0] - 12 * mm, 7 * mm, f"第 {document.page} 页")
        canvas.restoreState()

    doc.build(story, onFirstPage=page, onLaterPages=page)
    return buffer.getvalue()


def _table(entries: Sequence[Mapping[str, Any]], s: Mapping[str, ParagraphStyle]) -> LongTable:
    head = [Paragraph(_e(title), s["head"]) for title, _ in _COLUMNS]
    rows = [head]
    for i, e in enumerate(entries, 1):
        kind = queries.LIST_KIND_TITLES.get(e["list_kind"], e["list_kind"])
        rows.append([Paragraph(_e(v), s["cell"]) for v in (
            i, e["subject_name"], e["public_id"], e["county_name"], kind, f"{e['reason']}（{e['ref']}）",
            e["department_name"], queries.plain(e["listed_on"]))])
    table = LongTable(rows, colWidths=[w * mm for _, w in _COLUMNS], repeatRows=1)
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#8a1c1c")),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f4f4f4")]),
    ]))
    return table

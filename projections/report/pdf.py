"""A credit report's PDF: the report file (its JSON, as issued) laid out for a reader, in Chinese
(reportlab; the WenQuanYi Micro Hei font embedded), with a QR code of the report number and the
signed tree head, the line that says how to verify it, and every page marked with the number.

The PDF is a rendering of the issued JSON and of nothing else, so the same report always gives the
same PDF (reportlab's invariant mode: no creation time, a fixed document id); the JSON is what
verifies (ledger/audit/verify.py --report).
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import qrcode
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from ledger.domain.local_time import CHINA
from projections.report import document

# Debian package fonts-wqy-microhei (ops/bootstrap installs it when it is missing)
FONT_FILE = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
FONT = "WenQuanYiMicroHei"
MARGIN = 15 * mm
WIDTH = A4[0] - 2 * MARGIN
ORDINALS = "一二三四五六七八九十"
EVENT_TITLES = {
    "AdministrativeLicenceGranted": "行政许可", "AdministrativeLicenceChanged": "行政许可变更",
    "AdministrativeLicenceRevoked": "行政许可撤销", "AdministrativePenaltyImposed": "行政处罚",
    "AdministrativePenaltyRevoked": "行政处罚撤销", "DishonestDebtorListed": "列入失信被执行人名单",
    "DishonestDebtorDelisted": "移出失信被执行人名单", "MajorTaxViolationListed": "列入重大税收违法失信主体名单",
    "MajorTaxViolationDelisted": "移出重大税收违法失信主体名单", "TaxCreditRated": "纳税信用评价",
    "WageArrearsListed": "列入拖欠农民工工资失信名单", "WageArrearsDelisted": "移出拖欠农民工工资失信名单",
    "ProcurementBanImposed": "政府采购禁止参加", "CreditRepaired": "信用修复", "HonourAwarded": "红名单、荣誉",
    "HonourRevoked": "荣誉撤销", "HonourExpired": "荣誉期满", "CreditCommitmentMade": "信用承诺",
    "EntityRegistered": "主体登记", "PunishmentFeedbackReported": "联合惩戒反馈", "ListingExpired": "公示、名单期满",
    "ObjectionFiled": "异议受理", "ObjectionForwarded": "异议转办", "ObjectionAnswered": "异议答复",
    "RepairApplied": "信用修复申请", "RepairAccepted": "修复申请受理", "RepairRefused": "修复申请不予受理",
    "RepairDecided": "信用修复决定",
}


# relative column widths by column key (a section's other columns: 10)
COLUMN_WEIGHTS = {"basis": 24, "reason": 12, "content": 24, "address": 18, "title": 16, "department": 13,
                  "authority": 16, "list": 11, "ref": 12, "target_ref": 13, "repair_no": 13, "status": 11,
                  "kind": 8, "points": 6, "until": 12, "listed_on": 12, "legal_end": 12, "decision_date": 12,
                  "registered_on": 12, "made_on": 12, "receipt": 21, "matter": 18, "step": 11, "done_on": 11,
                  "due": 13, "result": 8, "explanation": 16}


class FontMissing(RuntimeError):
    """The Chinese font is not installed: the PDF cannot be made (the message names the package)."""


@cache
def font() -> str:
    if not FONT_FILE.exists():
        raise FontMissing(f"the Chinese font {FONT_FILE} is missing: install the Debian package fonts-wqy-microhei "
                          "(ops/bootstrap does)")
    pdfmetrics.registerFont(TTFont(FONT, str(FONT_FILE), subfontIndex=0))
    return FONT


@cache
def _styles() -> dict[str, ParagraphStyle]:
    f = font()
    base = ParagraphStyle("base", fontName=f, fontSize=8.5, leading=11.5, wordWrap="CJK")
    return {
        "base": base,
        "title": ParagraphStyle("title", base, fontSize=20, leading=26, alignment=1, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", base, fontSize=10, leading=14, alignment=1, textColor=colors.grey),
        "h2": ParagraphStyle("h2", base, fontSize=11.5, leading=16, spaceBefore=9, spaceAfter=4,
                             textColor=colors.HexColor("#16365c")),
        "cell": ParagraphStyle("cell", base, fontSize=7.8, leading=10.2),
        "head": ParagraphStyle("head", base, fontSize=7.8, leading=10.2, textColor=colors.white),
        "note": ParagraphStyle("note", base, fontSize=7.8, leading=10.5, textColor=colors.HexColor("#444444")),
        "small": ParagraphStyle("small", base, fontSize=6.8, leading=8.8, textColor=colors.HexColor("#444444")),
        "caption": ParagraphStyle("caption", base, fontSize=6.8, leading=8.8, alignment=1, textColor=colors.grey),
        "verify": ParagraphStyle("verify", base, fontSize=8.5, leading=12, borderColor=colors.HexColor("#16365c"),
                                 borderWidth=0.8, borderPadding=6, backColor=colors.HexColor("#eef3f9")),
    }


def _p(text: Any, style: str = "cell") -> Paragraph:
    """A paragraph of plain text: markup characters escaped, each line break kept."""
    escaped = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br/>")
    return Paragraph(escaped, _styles()[style])


class QRCode(Flowable):
    """A QR code drawn as vector squares (crisp at any zoom), with its quiet zone."""

    def __init__(self, payload: str, size: float = 34 * mm) -> None:
        super().__init__()
        code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
        code.add_data(payload)
        code.make(fit=True)
        self.matrix = code.get_matrix()
        self.size = size

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.size, self.size

    def draw(self) -> None:
        n = len(self.matrix)
        cell = self.size / n
        c = self.canv
        c.setFillColor(colors.white)
        c.rect(0, 0, self.size, self.size, stroke=0, fill=1)
        c.setFillColor(colors.black)
        for y, line in enumerate(self.matrix):
            for x, dark in enumerate(line):
                if dark:
                    c.rect(x * cell, self.size - (y + 1) * cell, cell, cell, stroke=0, fill=1)


def _table(rows: list[list[Any]], widths: list[float], header: bool = True) -> Table:
    t = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9aa7b8")),
             ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
             ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    if header:
        style.append(("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#16365c")))
        style += [("BACKGROUND", (0, i), (-1, i), colors.HexColor("#f3f6fa")) for i in range(2, len(rows), 2)]
    t.setStyle(TableStyle(style))
    return t


def _china_time(iso: str) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def _head_text(head: dict[str, Any]) -> str:
    signed = datetime.fromtimestamp(int(head["timestamp_ms"]) / 1000, CHINA).strftime("%Y-%m-%d %H:%M:%S")
    return (f"{head['topic']} 第 {head['partition']} 分区，树大小 {head['tree_size']}，签名时间 {signed}（北京时间），"
            f"公钥标识 {head['key_id']}，根哈希 {head['root']}")


def _front(report: dict[str, Any]) -> list[Any]:
    body = report["body"]
    s, ledger = body["subject"], body["ledger"]
    id_title = "身份证号码（脱敏）" if s["id_type"] == "RIC" else "统一社会信用代码"
    facts = [("报告编号", report["report_number"]), ("出具日期", body["issued_on"]),
             ("出具单位", body["issuer"]["name"]), ("信用主体", s["name"]), (id_title, s["public_id"]),
             ("主体类别", s["category_title"]),
             ("账本位置", f"{ledger['topic']} 第 {ledger['partition']} 分区，截至该主体第 {ledger['entity_version']} "
                      f"条记录（最近更新 {_china_time(ledger['last_change'])}）"),
             ("签名树头", _head_text(body["tree_head"]))]
    info = _table([[_p(k), _p(v)] for k, v in facts], [27 * mm, WIDTH - 27 * mm - 42 * mm], header=False)
    info.setStyle(TableStyle([("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef3f9"))]))
    qr = Table([[QRCode(document.qr_payload(report))], [_p("扫码核对报告编号与签名树头", "caption")]],
               colWidths=[40 * mm])
    qr.setStyle(TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    top = Table([[info, qr]], colWidths=[WIDTH - 42 * mm, 42 * mm])
    top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                             ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    return [_p(body["title"], "title"), _p(body["issuer"]["name"], "subtitle"), Spacer(1, 5 * mm), top,
            Spacer(1, 3 * mm), _p(f"核验方法：{document.how_to_verify(report['report_number'])}", "verify"),
            Spacer(1, 3 * mm), _p(body["scope"], "note")]


def _section(n: int, section: dict[str, Any], versions: dict[str, int]) -> list[Any]:
    title = _p(f"{ORDINALS[n] if n < len(ORDINALS) else n + 1}、{section['title']}", "h2")
    if not section["rows"]:
        out: list[Any] = [KeepTogether([title, _p(section["empty"], "base")])]
    else:
        columns = section["columns"]
        rec_width = 16 * mm
        weights = [COLUMN_WEIGHTS.get(k, 10) for k, _ in columns]
        widths = [(WIDTH - rec_width) * w / sum(weights) for w in weights] + [rec_width]
        rows = [[_p(t, "head") for _, t in columns] + [_p("账本记录", "head")]]
        for row in section["rows"]:
            refs = " ".join(f"#{versions[e]}" for e in row["event_ids"] if e in versions)
            rows.append([_p(row["cells"].get(k, "")) for k, _ in columns] + [_p(refs, "small")])
        out = [title, _table(rows, widths)]
    if section.get("note"):
        out.append(_p(section["note"], "note"))
    return out


def _records(body: dict[str, Any]) -> list[Any]:
    rows = [[_p(t, "head") for t in ("记录", "事件", "报送部门", "入账时间（北京）", "叶序号", "证明方式", "事件编号")]]
    for r in body["records"]:
        rows.append([_p(f"#{r['version']}"), _p(EVENT_TITLES.get(r["event_type"], r["event_type"])),
                     _p(body["departments"].get(r["department"], r["department"])), _p(_china_time(r["sequenced_at"])), _p(r["leaf_index"]),
                     _p("记录原文＋包含证明" if "entry" in r else "叶哈希＋包含证明"), _p(r["event_id"], "small")])
    widths = [12 * mm, 40 * mm, 26 * mm, 25 * mm, 15 * mm, 26 * mm]
    return [_p("附：账本记录与包含证明", "h2"), _p(body["proves"], "note"), Spacer(1, 2 * mm),
            _table(rows, widths + [WIDTH - sum(widths)])]


class _Numbered(Canvas):
    """Draws, on every page, the report number and "page n of N" (known once every page is laid out)."""

    number = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 (reportlab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(font(), 7.5)
            self.setFillColor(colors.grey)
            self.drawString(MARGIN, 9 * mm, f"信用许昌 公共信用信息报告  报告编号 {self.number}")
            self.drawRightString(A4[0] - MARGIN, 9 * mm, f"第 {self._pageNumber} 页，共 {total} 页")
            super().showPage()
        super().save()


def render(report: dict[str, Any]) -> bytes:
    """The PDF of an issued report (its parsed JSON)."""
    body = report["body"]
    versions = {r["event_id"]: r["version"] for r in body["records"]}
    story: list[Any] = _front(report)
    for n, section in enumerate(body["sections"]):
        story += _section(n, section, versions)
    story += _records(body)
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=16 * mm, title=f"{body['title']} {report['report_number']}",
                            author=body["issuer"]["name"], subject=body["subject"]["name"], invariant=1)
    canvas = type("ReportCanvas", (_Numbered,), {"number": report["report_number"]})
    doc.build(story, canvasmaker=canvas)
    return out.getvalue()

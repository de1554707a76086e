"""One cell's value: dates as real files write them (``2024-05-06``, ``2024/5/6``, ``2024.05.06``,
``20240506``, ``2024年5月6日``, with an optional time such as ``2024-05-06 00:00:00`` and full-width
digits), amounts in 万元 to fen exactly (``0.2`` -> 200,000 fen; a fraction of a fen is refused,
never rounded), text without control characters, category lists. ``CellError`` otherwise.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from ledger.domain.money import wanyuan_to_fen
from ledger.intake.csv_import.problems import CellError

MAX_FEN = 2**63 - 1  # Avro long
MAX_QUOTED = 40  # characters of a cell value quoted in a message


def quote(value: str) -> str:
    return value if len(value) <= MAX_QUOTED else value[:MAX_QUOTED] + "…"


_TIME = re.compile(r"(.+?)(?:[ T]+[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)")
_DATE_FORMS = (  # ASCII digits only (after NFKC): \d would also take Arabic-Indic and other digits
    re.compile(r"([0-9]{4})([-/.])([0-9]{1,2})\2([0-9]{1,2})"),
    re.compile(r"([0-9]{4})()([0-9]{2})([0-9]{2})"),
    re.compile(r"([0-9]{4})(年)([0-9]{1,2})月([0-9]{1,2})日?"),
)


def parse_date(text: str) -> date:
    """A date as real files write it (see the module doc); ``CellError`` otherwise."""
    t = unicodedata.normalize("NFKC", text).strip()
    timed = _TIME.fullmatch(t)
    if timed:
        t = timed.group(1).strip()
    for form in _DATE_FORMS:
        m = form.fullmatch(t)
        if m:
            y, _, mo, d = m.groups()
            try:
                return date(int(y), int(mo), int(d))
            except ValueError:
                raise CellError("date.impossible", f"“{quote(text)}”不是真实存在的日期 "
                                                   f"(this date does not exist)") from None
    raise CellError("date.format", f"“{quote(text)}”不是可识别的日期，请使用如 2024-05-06、2024/5/6、"
                                   f"20240506、2024年5月6日 的格式 (not a recognised date; write e.g. 2024-05-06)")


_PLAIN_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def parse_wanyuan(text: str) -> int:
    """An amount in 万元 as the national files give it, in fen, exactly: ``"0.2"`` -> 200000.

    Accepted: digits with an optional decimal part, full-width digits, surrounding spaces, a
    trailing 万元 unit. Zeros after the 6th decimal change nothing and are accepted; any other 7th
    decimal is a fraction of a fen and refused, as are negative amounts, exponents, thousands
    separators and anything else. The conversion itself is ``ledger.domain.money.wanyuan_to_fen``."""
    t = unicodedata.normalize("NFKC", text).strip()
    t = t.removesuffix("万元").strip()
    if t.startswith("-") and _PLAIN_DECIMAL.fullmatch(t[1:]):
        raise CellError("money.negative", f"“{quote(text)}”：金额不能为负数 (an amount cannot be negative)")
    m = _PLAIN_DECIMAL.fullmatch(t)
    if m is None:
        raise CellError("money.format", f"“{quote(text)}”不是以万元为单位的金额，应为数字，如 0.2 表示2000元 "
                                        f"(not an amount in 万元 (10,000 yuan): write a number, e.g. 0.2 for 2,000 yuan)")
    whole, fraction = m.group(1), (m.group(2) or "").rstrip("0")
    if len(fraction) > 6:
        raise CellError("money.precision", f"“{quote(text)}”超过6位小数（不足1分），不能精确换算为分 "
                                           f"(more than 6 decimals of 万元 is a fraction of a fen; give at most 6)")
    if len(whole.lstrip("0")) > 13:
        raise CellError("money.too_large", f"“{quote(text)}”：金额过大 (the amount is too large)")
    fen = wanyuan_to_fen(str(int(whole)) + ("." + fraction if fraction else ""))
    if fen > MAX_FEN:
        raise CellError("money.too_large", f"“{quote(text)}”：金额过大 (the amount is too large)")
    return fen


BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def clean_text(value: str) -> str:
    t = value.strip()
    if BAD_CHARS.search(t):
        raise CellError("text.control_characters", "含有控制字符或无效字符 (contains control or invalid characters)")
    return t


def categories(value: str) -> list[str]:
    return [p.strip() for p in re.split(r"[；;、，,]", value) if p.strip()]

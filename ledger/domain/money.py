"""Money, exactly: amounts are integer fen; the national files give 万元."""

from __future__ import annotations

import re
from decimal import Decimal

FEN_PER_WANYUAN = 1_000_000  # 1 万元 = 10 000 元 = 1 000 000 分


def fen_to_wanyuan(fen: int) -> str:
    """An amount in fen as the national files give it, in 万元 (fen / 1 000 000): exact, at most 6
    decimals, no trailing zeros, no exponent. ``200000`` -> ``"0.2"`` (罚款2000元), ``0`` -> ``"0"``.
    The Decimal is built from text (``"<fen>e-6"``), so no context precision ever rounds it."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"an amount in fen must be an int, got {fen!r}")
    text = format(Decimal(f"{fen}e-6"), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


_WANYUAN = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]{1,6}))?")


def wanyuan_to_fen(text: str) -> int:
    """The inverse of ``fen_to_wanyuan``: ``"0.2"`` -> ``200000``. ``ValueError`` for anything that
    is not a plain decimal with at most 6 decimals (a 7th decimal would be a fraction of a fen)."""
    match = _WANYUAN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an amount in 万元 with at most 6 decimals: {text!r}")
    sign, whole, fraction = match.groups()
    fen = int(whole) * FEN_PER_WANYUAN + int((fraction or "").ljust(6, "0"))
    return -fen if sign else fen

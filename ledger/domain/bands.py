"""Score bands: a score from 0 to 100 read as a letter, the way the rules files list them (the credit
grade's ``credit_grade.v<N>.json``, the department assessment's ``department_assessment.v<N>.json``).

Bands are listed from the best down, each with the lowest score it takes; the last starts at 0, so
every score has one. ``parse_bands`` checks a file's list (``RulesError`` through the ``Reader``:
which entry and why); ``Band`` and ``band_for`` are what the readers use. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.domain.ruledoc import Reader

__all__ = ["LOWEST", "HIGHEST", "Band", "band_for", "parse_bands"]

LOWEST, HIGHEST = 0, 100


@dataclass(frozen=True)
class Band:
    grade: str
    min_score: int
    title: str = ""  # the grade's name where the file gives one (the credit grade's 诚信 titles)


def band_for(bands: tuple[Band, ...], score: float) -> Band:
    """The best band whose lowest score the score reaches (the last band starts at 0)."""
    for band in bands:
        if score >= band.min_score:
            return band
    return bands[-1]


def parse_bands(reader: Reader, value: Any, *, titled: bool) -> tuple[Band, ...]:
    """The file's ``bands``: each a distinct ``grade`` and a whole-number ``min_score`` (and a ``title``
    when ``titled``), strictly descending, the last at 0."""
    items = reader.array(value, "bands")
    if not items:
        reader.fail("bands", "at least one band is required")
    bands: list[Band] = []
    for i, item in enumerate(items):
        entry = f"bands[{i}]"
        reader.keys(item, entry, {"grade", "min_score", "title"} if titled else {"grade", "min_score"})
        letter = reader.text(item["grade"], f"{entry}.grade")
        low = item["min_score"]
        if isinstance(low, bool) or not isinstance(low, int) or not LOWEST <= low <= HIGHEST:
            reader.fail(f"{entry}.min_score", f"must be a whole number of points from {LOWEST} to {HIGHEST}, "
                                              f"got {low!r}")
        if any(b.grade == letter for b in bands):
            reader.fail(f"{entry}.grade", f"grade '{letter}' is listed twice")
        if bands and low >= bands[-1].min_score:
            reader.fail(f"{entry}.min_score", f"{low} must be below {bands[-1].min_score} "
                                              "(bands are listed from the best grade down)")
        bands.append(Band(letter, low, reader.text(item["title"], f"{entry}.title") if titled else ""))
    if bands[-1].min_score != LOWEST:
        reader.fail(f"bands[{len(bands) - 1}].min_score",
                    f"the last band must start at {LOWEST} so that every score has a grade")
    return tuple(bands)

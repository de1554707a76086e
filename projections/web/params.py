"""What a read request asks, checked: its query string (`Params`, against the parameters its route
takes; `after=` and `wait=` of read-your-writes) and the identifiers people type (`identify`: a
unified social credit code or a resident ID number). Shared by the query API and the portal; a
parameter that cannot be used is a BadParameter naming it and why (answered 400 by each service).
"""

from __future__ import annotations

import re
from datetime import date

from aiohttp import web

from ledger.domain import identity
from ledger.domain.errors import Rejection
from ledger.platform.web import BadParameter
from projections import queries
from schemas import registry

MAX_WAIT, DEFAULT_WAIT = 30.0, 5.0
COMMON_PARAMS = frozenset({"after", "wait"})
PAGE_PARAMS = frozenset({"page", "size"})


class Params:
    """The query string of one request, checked against the parameters its route takes."""

    def __init__(self, request: web.Request, allowed: frozenset[str] = frozenset()) -> None:
        self.q = request.query
        takes = allowed | COMMON_PARAMS
        for name in self.q:
            if name not in takes:
                raise BadParameter(name, f"unknown parameter; this route takes {', '.join(sorted(takes))}")
            if len(self.q.getall(name)) > 1:
                raise BadParameter(name, "given more than once")

    def text(self, name: str, max_length: int = 200) -> str | None:
        value = self.q.get(name)
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise BadParameter(name, "empty; leave the parameter out instead")
        if len(value) > max_length:
            raise BadParameter(name, f"longer than {max_length} characters")
        return value

    def choice(self, name: str, choices: tuple[str, ...] | frozenset[str]) -> str | None:
        value = self.text(name)
        if value is not None and value not in choices:
            raise BadParameter(name, f"'{value}' is not one of {', '.join(sorted(choices))}")
        return value

    def integer(self, name: str, default: int, low: int, high: int | None = None) -> int:
        value = self.text(name)
        if value is None:
            return default
        if not re.fullmatch(r"[0-9]+", value):
            raise BadParameter(name, f"'{value[:40]}' is not a whole number")
        n = int(value)
        if n < low or (high is not None and n > high):
            raise BadParameter(name, f"{n} is out of range ({low}..{high if high is not None else ''})")
        return n

    def day(self, name: str) -> date | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
                raise ValueError
            return date.fromisoformat(value)
        except ValueError:
            raise BadParameter(name, f"'{value[:40]}' is not a date YYYY-MM-DD") from None

    def period(self) -> tuple[date | None, date | None]:
        start, end = self.day("from"), self.day("to")
        if start and end and start > end:
            raise BadParameter("from", f"{start} is after to={end}")
        return start, end

    def paging(self) -> tuple[int, int]:
        return (self.integer("page", 1, 1, 1_000_000),
                self.integer("size", queries.DEFAULT_SIZE, 1, queries.MAX_SIZE))


def parse_after(value: str | None) -> tuple[int, int] | None:
    """`after=<partition>:<offset>` -> (partition, offset); BadParameter naming `after` otherwise."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*([0-9]+)\s*:\s*([0-9]+)\s*", value)
    if not m:
        raise BadParameter("after", f"'{value[:40]}' is not <partition>:<offset> (e.g. 2:1041), the ledger "
                           "position of a submission's outcome")
    partition, offset = int(m.group(1)), int(m.group(2))
    if partition >= registry.EVENTS.partitions:
        raise BadParameter("after", f"partition {partition} does not exist ({registry.EVENTS.name} has "
                           f"{registry.EVENTS.partitions} partitions, 0..{registry.EVENTS.partitions - 1})")
    return partition, offset


def parse_wait(value: str | None) -> float:
    if value is None:
        return DEFAULT_WAIT
    try:
        seconds = float(value)
    except ValueError:
        raise BadParameter("wait", f"'{value[:40]}' is not a number of seconds") from None
    if not 0 <= seconds <= MAX_WAIT:  # also refuses nan
        raise BadParameter("wait", f"{value} is out of range (0..{MAX_WAIT:g} seconds)")
    return seconds


def identify(raw: str, id_type: str | None) -> tuple[list[tuple[str, identity.Identity]], dict[str, Rejection]]:
    """The identities `raw` can be (a resident ID number, a USCC, or, rarely, both forms), and the
    rejections of the forms it cannot be. `id_type` (USCC or RIC) restricts the check to one form."""
    found: list[tuple[str, identity.Identity]] = []
    refused: dict[str, Rejection] = {}
    checks = {"RIC": lambda: identity.check_ric(raw, field="id"),
              "USCC": lambda: identity.check_uscc(raw, field="id")}
    for kind, check in checks.items():
        if id_type not in (None, kind):
            continue
        try:
            found.append((kind, check()))
        except Rejection as r:
            refused[kind] = r
    # a code without warnings first, then an ID number, then a code with a wrong check character
    found.sort(key=lambda f: (f[0] == "USCC" and bool(f[1].warnings), f[0] != "USCC"))
    return found, refused


def primary_rejection(raw: str, refused: dict[str, Rejection]) -> Rejection:
    """Of two rejections, the one of the form the input looks like (digits only: an ID number)."""
    if len(refused) == 1:
        return next(iter(refused.values()))
    looks_personal = re.fullmatch(r"[0-9]+X?", identity.normalise(raw)) is not None
    return refused["RIC"] if looks_personal else refused["USCC"]

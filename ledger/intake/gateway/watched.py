"""A file of the keys dir the gateway reads again when it changes, without a restart (the tokens,
the limits): looked at (stat) at most every `recheck` seconds, parsed again when its modification
time or size changed. A file that cannot be read or parsed again keeps what was loaded before (and
is logged); at start it is an error, unless `missing` says what an absent file means.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from ledger.platform import logs

log = logs.get("gateway")

T = TypeVar("T")


class Watched(Generic[T]):
    def __init__(self, path: Path, parse: Callable[[bytes], T], what: str, recheck_seconds: float = 5.0,
                 missing: Callable[[], T] | None = None, absent: str = "") -> None:
        self.path, self.parse, self.what, self.recheck = path, parse, what, recheck_seconds
        self.missing, self.absent = missing, absent
        self._stamp: tuple[int, int] | None = None
        self._checked = time.monotonic()
        self.value: T = self._load(None)  # type: ignore[assignment]

    def _load(self, value: T | None) -> T | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            if self.missing is None:
                raise FileNotFoundError(f"no {self.what} at {self.path}: {self.absent}") from None
            if self._stamp is not None or value is None:
                self._stamp = None
                log.info(f"{self.what}: no file, the defaults apply", path=str(self.path))
                return self.missing()
            return value
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp and value is not None:
            return value
        try:
            parsed = self.parse(self.path.read_bytes())
        except ValueError as exc:
            raise ValueError(f"{self.path}: {exc}") from None
        self._stamp = stamp
        log.info(f"{self.what} loaded", path=str(self.path))
        return parsed

    def current(self) -> T:
        """The file's content as last parsed, read again first if `recheck` seconds have passed."""
        now = time.monotonic()
        if now - self._checked > self.recheck:
            self._checked = now
            try:
                self.value = self._load(self.value)  # type: ignore[assignment]
            except (OSError, ValueError) as exc:  # keep what was loaded before
                log.error(f"{self.what} not reloaded", error=str(exc))
        return self.value

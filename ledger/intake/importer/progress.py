"""The import's progress bar on stderr (rows read, submitted, decided, rate and ETA).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A plain-text progress bar on stderr: rows read, submitted, decided, rate and ETA. On a
    terminal one line redrawn at most 10 times a second; otherwise one line every 5 seconds."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.read = self.to_submit = self.submitted = self.decided = 0
        self.started = time.monotonic()
        self.sending_since: float | None = None
        self.sent_at: float | None = None  # when the broker had acknowledged every submission
        self._last = 0.0
        self._width = 0

    def line(self) -> str:
        if self.sending_since is None:
            rate = self.read / max(time.monotonic() - self.started, 1e-9)
            return f"checking: {self.read:,} rows read · {rate:,.0f} rows/s"
        total = max(self.to_submit, 1)
        done = self.decided / total
        bar = "#" * int(done * 24) + "." * (24 - int(done * 24))
        elapsed = max(time.monotonic() - self.sending_since, 1e-9)
        rate = self.decided / elapsed
        left = self.to_submit - self.decided
        eta = f"{int(left / rate) // 60}:{int(left / rate) % 60:02d}" if rate > 0 else "--:--"
        return (f"[{bar}] {done:4.0%} read {self.read:,} · submitted {self.submitted:,}/{self.to_submit:,} · "
                f"decided {self.decided:,} · {rate:,.0f} rows/s · ETA {eta}")

    def update(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self.tty else 5.0):
            return
        self._last = now
        text = self.line()
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.update(force=True)
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()

"""What the benchmarks read of a process from /proc."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int | str | None = "self") -> float:
    """A process's resident memory (VmRSS) in MiB; 0.0 when there is no such process."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_busy_s() -> float:
    """CPU seconds spent by all CPUs outside idle and iowait since boot."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f[:8]) - f[3] - f[4]) / TICK  # user nice system idle iowait irq softirq steal


def cpu_s(pid: int | str | None) -> float:
    """A process's CPU seconds (user + system) since it started; 0.0 when there is no such process."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime

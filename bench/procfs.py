"""What the benchmarks read of a process from /proc."""

from __future__ import annotations


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

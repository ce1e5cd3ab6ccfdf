"""Process measurements from /proc and `resource`, shared by both SDK drivers.

Standard library only: the official SDK's driver imports this module from the
peer environment, where durable is not installed. Linux only (/proc).
"""

from __future__ import annotations

import os
import resource

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """Return the user plus system CPU time of this process, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float | None:
    """Return the user plus system CPU time of process `pid`, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat_file:
            stat = stat_file.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces, so split after its closing bracket.
    fields = stat[stat.rindex(")") + 2:].split()
    # utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def resident_bytes(pid: int) -> int | None:
    """Return the resident set size (VmRSS) of process `pid` in bytes, or None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status_file:
            for line in status_file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None

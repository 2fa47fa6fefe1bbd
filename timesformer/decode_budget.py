"""A memory budget for decoded video frames, shared by the threads of one process.

A server decodes several uploads at once; each decode first takes its estimated bytes from the budget and gives
them back when its frames are no longer needed, so together they never hold more than the budget. A request
larger than the whole budget is refused at once. One that fits, but not beside the decodes under way, waits for
them to give memory back (decodes take seconds) for up to `WAIT_S`, and is refused only if that is not enough:
a busy server serialises its decodes instead of turning users away, yet no request waits without end.

The budget is TIMESFORMER_DECODE_BUDGET_MB if set, else `FRACTION` of the memory available when it is first
needed. This file imports nothing from its package: `video.py`, run by path in a checking child, loads it by path.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "TIMESFORMER_DECODE_BUDGET_MB"
FRACTION = 0.5  # of the memory available
WAIT_S = 10.0  # the longest a request waits for others to give memory back
MB = 2**20

_changed = threading.Condition()  # guards _held; notified whenever memory is given back
_held = 0  # bytes reserved by the decodes under way


def budget_bytes() -> int:
    """The budget: TIMESFORMER_DECODE_BUDGET_MB if set, else FRACTION of the memory available when first asked."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return _default_budget()
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = -1.0
    if not megabytes > 0:
        raise ValueError(f"{ENV} must be a positive number of megabytes, got {text!r}")
    return int(megabytes * MB)


@functools.cache
def _default_budget() -> int:
    """Fixed once: memory that later decodes take must not shrink the budget they are counted against."""
    return int(FRACTION * available_bytes())


def available_bytes() -> int:
    """MemAvailable, capped by a cgroup v2 limit (a container's); physical memory where /proc is missing (macOS)."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    fields = dict(line.split(":", 1) for line in meminfo.read_text().splitlines() if ":" in line)
    available = int(fields["MemAvailable"].split()[0]) * 1024
    limit, current = Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")
    if limit.exists() and current.exists() and limit.read_text().strip() != "max":
        available = min(available, int(limit.read_text()) - int(current.read_text()))
    return available


@contextmanager
def reserved(nbytes: int, what: str, error: type[Exception]) -> Iterator[None]:
    """Hold `nbytes` of the budget while the body runs, or raise `error` with a message: "{what} needs about ..."."""
    global _held
    budget = budget_bytes()
    with _changed:
        if nbytes > budget or not _changed.wait_for(lambda: _held + nbytes <= budget, timeout=WAIT_S):
            if nbytes > budget:
                why = f"more than the decode budget of {budget / MB:,.1f} MB: use fewer frames or downscale it"
            else:
                why = (
                    f"but the videos being decoded now hold {_held / MB:,.1f} MB of the {budget / MB:,.1f} MB "
                    "decode budget: try again in a minute"
                )
            raise error(f"{what} needs about {nbytes / MB:,.1f} MB, {why}")
        _held += nbytes
    try:
        yield
    finally:
        with _changed:
            _held -= nbytes
            _changed.notify_all()


def held_bytes() -> int:
    """Bytes reserved by the decodes under way."""
    with _changed:
        return _held

"""Named crash points, for the crash-safety tests (as SQLite's test builds have).

The indexer and the search-index build call ``crash_point(NAME)`` at the moments
where a crash matters: between the phases of a run and on either side of every
commit and rename. Normally that is all they do. With the environment variable

    DEVISE_APP_CRASH_AT=NAME[:N]

the process SIGKILLs itself the Nth time (default: the first) it passes point
NAME, from whichever thread passes it, so a test can crash the real CLI at an
exact moment however fast or slow the machine is. ``DEVISE_APP_CRASH_SIGNAL=INT``
sends SIGINT instead (a Ctrl+C at that moment). With ``DEVISE_APP_CRASH_TRACE=1``
every point passed is written to stderr as ``crash point NAME N``, so a test can
wait for a moment of a run before killing it itself.

The variables are read once, at import; unset, a crash point is one test of a
module global. ``POINTS`` lists every point (an index run's in the order it
passes them, then learning's); a name not in it is an error, so a point cannot
be renamed without its tests.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import Counter

CRASH_AT_VARIABLE = "DEVISE_APP_CRASH_AT"
TRACE_VARIABLE = "DEVISE_APP_CRASH_TRACE"
SIGNAL_VARIABLE = "DEVISE_APP_CRASH_SIGNAL"

# An index run passes these, in this order (the search-index build's also after
# learning); tests/reliability/test_crash_safety.py kills the CLI at each.
INDEXING: tuple[str, ...] = (
    "after-scan",  # the folders scanned, nothing written
    "after-embed",  # in the model thread: a batch embedded, its vectors not yet handed over
    "before-commit",  # a batch's rows written inside its transaction, not committed
    "after-commit",  # a batch committed
    "after-removal",  # the photos deleted from disk removed from the catalog
    "after-batches",  # every batch committed, the run not yet marked complete
    "before-index-build",  # the catalog complete, the search index not yet rebuilt
    "after-index-temp",  # the new index written to its temporary file
    "before-index-replace",  # the old index unloaded, the new one not yet renamed over it
    "after-index-replace",  # the new index in place, its sidecar still the old one
    "before-sidecar-replace",  # the new sidecar written to its temporary file
    "after-sidecar",  # the new index and its sidecar in place
)
# Learning from labels passes these (tests/reliability/test_learn_atomic.py).
LEARNING: tuple[str, ...] = (
    "learn-head-written",  # the new head beside the old one, the catalog unchanged
    "learn-committed",  # vectors and fingerprint committed, the new head not yet renamed
)
POINTS = INDEXING + LEARNING


def _parse(value: str | None) -> tuple[str, int] | None:
    """``NAME[:N]`` as (NAME, N); ValueError for an unknown point or a bad count."""
    if not value:
        return None
    name, _, count = value.partition(":")
    if name not in POINTS:
        raise ValueError(f"{CRASH_AT_VARIABLE}: no crash point named {name!r} (known: {', '.join(POINTS)})")
    hit = int(count) if count else 1
    if hit < 1:
        raise ValueError(f"{CRASH_AT_VARIABLE}: the count must be 1 or more, not {hit}")
    return name, hit


_target = _parse(os.environ.get(CRASH_AT_VARIABLE))
_trace = os.environ.get(TRACE_VARIABLE) == "1"
_signal = (
    signal.SIGINT if os.environ.get(SIGNAL_VARIABLE) == "INT" else getattr(signal, "SIGKILL", signal.SIGTERM)
)
_armed = _target is not None or _trace
_passed: Counter[str] = Counter()
_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Die here by SIGKILL if the environment asks for it (see the module docstring)."""
    if _armed:
        _pass(name)


def _pass(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"no crash point named {name!r}")
    with _lock:
        _passed[name] += 1
        count = _passed[name]
        if _trace:
            sys.stderr.write(f"crash point {name} {count}\n")
            sys.stderr.flush()
        if _target == (name, count):
            os.kill(os.getpid(), _signal)  # SIGTERM where there is no SIGKILL: Windows

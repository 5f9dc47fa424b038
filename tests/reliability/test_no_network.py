"""No network, seen from outside the process: strace records every network system
call of the real CLI and the real window (native libraries included, which a
Python-level socket guard cannot see) and none may reach an internet address.

Local sockets (AF_UNIX: D-Bus, the X server) and netlink (interface lookups by
the C library) are not network traffic. Each process is watched for SOAK_S
seconds at least: the telemetry that ONNX Runtime's GPU build sends when it is
not turned off starts after about 9 s of a process's life. That is a length of
watching, not a wait for something to happen, so a faster or slower machine
gives the same verdict.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_support import distinct_photos

# CI watches each process 12 s and indexes 12 photos; scripts/no-network-soak.sh
# runs the full check (a window open 60 s, an index of 4,000 photos).
SOAK_S = float(os.environ.get("DEVISE_APP_SOAK_S", "12"))
SOAK_PHOTOS = int(os.environ.get("DEVISE_APP_SOAK_PHOTOS", "12"))
INTERNET = re.compile(r"AF_INET6?\b|sin6?_port|sa_family=AF_INET")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="strace is Linux only")]


def _strace() -> str:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (scripts/setup.sh test installs it)")
    if subprocess.run([strace, "-f", "-o", os.devnull, "true"], capture_output=True).returncode != 0:
        pytest.skip("strace cannot trace here (ptrace is not permitted)")
    return strace


def _internet_calls(trace: Path) -> list[str]:
    return [line for line in trace.read_text(errors="replace").splitlines() if INTERNET.search(line)]


def _traced(trace: Path, argv: list[str]) -> list[str]:
    return [_strace(), "-f", "-qq", "-e", "trace=network", "-o", str(trace), *argv]


def test_an_index_run_and_a_search_make_no_network_calls(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    distinct_photos(photos, SOAK_PHOTOS)
    library = tmp_path / "library"
    script = (
        "import sys, time\n"
        "from collections import deque\n"
        "from pathlib import Path\n"
        "from devise_app.engine.search import Library\n"
        "started = time.monotonic()\n"
        "with Library(Path(sys.argv[1])) as library:\n"
        "    last = deque(library.index([Path(sys.argv[2])]), maxlen=1)[0]\n"
        f"    assert last.summary.indexed == {SOAK_PHOTOS}, last.summary\n"
        "    print('indexed', last.summary.indexed, 'in', round(time.monotonic() - started, 1), 's')\n"
        "    assert library.search('cat', top=3)\n"
        f"    time.sleep(max(0.0, {SOAK_S} - (time.monotonic() - started)))\n"
    )
    trace = tmp_path / "index.trace"
    done = subprocess.run(
        _traced(trace, [sys.executable, "-c", script, str(library), str(photos)]),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    calls = trace.read_text(errors="replace").splitlines()
    print(done.stdout.strip(), f"; {len(calls)} network system calls traced, none to the internet")
    assert _internet_calls(trace) == []


def test_the_window_makes_no_network_calls(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # private user folders: tests/conftest.py
    trace = tmp_path / "window.trace"
    window = subprocess.Popen(
        _traced(trace, [sys.executable, "-m", "devise_app"]),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        try:
            window.wait(SOAK_S)
            pytest.fail(
                f"the window ended by itself: {window.stderr.read()[-2000:] if window.stderr else ''}"
            )
        except subprocess.TimeoutExpired:
            pass  # still open after the whole watch, as it should be
    finally:
        window.send_signal(signal.SIGTERM)
        try:
            window.wait(30)
        except subprocess.TimeoutExpired:
            window.kill()
            window.wait()
    calls = trace.read_text(errors="replace").splitlines()
    local = sum("AF_UNIX" in call or "AF_NETLINK" in call for call in calls)
    print(f"window open {SOAK_S:.0f} s: {len(calls)} network system calls traced ({local} local)")
    assert _internet_calls(trace) == []


def test_the_check_sees_an_internet_socket(tmp_path: Path) -> None:
    """The check can fail: a process that opens an internet socket (no traffic) is caught."""
    trace = tmp_path / "socket.trace"
    code = "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()"
    subprocess.run(_traced(trace, [sys.executable, "-c", code]), check=True, timeout=120)
    assert _internet_calls(trace)

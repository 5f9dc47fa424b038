"""The README's set-up script: once the app is installed, a run installs nothing
and prints nothing (the first round reinstalled the package on every
``scripts/run-app.sh`` and printed 53 lines of setuptools warnings first)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STAMP = PROJECT_ROOT / ".venv" / ".devise-app-installed"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="bash script")


def _setup(*extras: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "setup.sh"), *extras],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip


@pytest.mark.skipif(not STAMP.is_file(), reason="the checkout was not set up with scripts/setup.sh")
def test_setup_with_nothing_to_install_is_quiet_and_installs_nothing() -> None:
    assert _setup("test").returncode == 0  # brings an out-of-date install up to date first
    installed = STAMP.stat().st_mtime_ns
    for extras in (["test"], []):  # the test command's set-up, then the app command's
        done = _setup(*extras)
        assert done.returncode == 0, done.stderr
        assert (done.stdout, done.stderr) == ("", ""), extras
    assert STAMP.stat().st_mtime_ns == installed, "nothing may be reinstalled"

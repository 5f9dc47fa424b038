"""Issue 13's acceptance check for watching, end to end through the real command:
``devise-app watch`` picks up N photos copied into a watched folder (with ``cp -r``,
as a user would) and their removal (``rm -r``), with nothing indexed twice.

    .venv/bin/python scripts/watch-acceptance.py [N]

Makes N distinct small photos (crops of scikit-image's samples), starts
``devise-app watch`` on an empty folder with a new library, copies them in, reads
the run lines it prints until they add up to N indexed, checks the catalog (N
rows, N distinct paths, N photos), then removes them and waits for N removed.
Everything is in a temporary folder; the per-user folders point there too.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_watch import make_photos  # the test's photo maker


def counted(stdout: object, what: str, total: int) -> tuple[int, list[str]]:
    count, lines = 0, []
    while count < total:
        line = stdout.readline()  # type: ignore[attr-defined]
        if not line:
            raise SystemExit("devise-app watch ended early")
        lines.append(line.rstrip())
        print("   ", line.rstrip(), flush=True)
        parts = dict((p.split()[1], int(p.split()[0])) for p in line.split("  ", 1)[1].split(", "))
        count += parts[what]
    return count, lines


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for kind in ("data", "cache", "config"):
            os.environ[f"DEVISE_APP_{kind.upper()}_DIR"] = str(tmp / kind)
        source, watched, library = tmp / "source", tmp / "watched", tmp / "library"
        make_photos(source / "holiday", n)
        watched.mkdir()
        command = [sys.executable, "-m", "devise_app", "watch", str(watched), "--library", str(library)]
        print("$", " ".join(command), flush=True)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stderr is not None
        print("   ", process.stderr.readline().rstrip())
        started = time.monotonic()
        subprocess.run(["cp", "-r", str(source / "holiday"), str(watched)], check=True)
        print(f"$ cp -r {source / 'holiday'} {watched}   # {n} photos")
        indexed, _ = counted(process.stdout, "indexed", n)
        elapsed = time.monotonic() - started
        with sqlite3.connect(library / "catalog.sqlite") as db:
            rows, paths, photos = db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT path), SUM(state = 'indexed') FROM photos"
            ).fetchone()
        print(f"indexed {indexed} in {elapsed:.1f} s; catalog: {rows} rows, {paths} paths, {photos} indexed")
        subprocess.run(["rm", "-r", str(watched / "holiday")], check=True)
        print(f"$ rm -r {watched / 'holiday'}")
        removed, _ = counted(process.stdout, "removed", n)
        with sqlite3.connect(library / "catalog.sqlite") as db:
            left = db.execute("SELECT COUNT(*) FROM photos").fetchone()[0]
        print(f"removed {removed}; catalog rows left: {left}")
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)
        print("   ", process.stderr.read().strip(), f"(exit {code})")
        ok = indexed == rows == paths == photos == n and removed == n and left == 0 and code == 0
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

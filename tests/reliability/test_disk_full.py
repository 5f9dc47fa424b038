"""A full disk, for real: a tiny tmpfs mounted in a private mount namespace
(``unshare -rm``; skipped where the machine does not allow it). Exporting labels
onto it must fail with one line that says the disk is full, and leave the
previous export whole (it was truncated to nothing before the write was made
atomic)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_support import cli_command, distinct_photos, run_cli

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="tmpfs and mount namespaces are Linux")


def _can_mount_tmpfs(where: Path) -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run(
        [unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o size=16k tmpfs {where}"], capture_output=True
    )
    return probe.returncode == 0


def _labelled_library(tmp_path: Path, photos: int, labelled: int) -> Path:
    """A library of ``photos`` distinct photos, the first ``labelled`` of them labelled."""
    made = distinct_photos(tmp_path / "photos", photos)
    library = tmp_path / "library"
    assert run_cli("index", made[0].parent, "--library", library).returncode == 0
    assert run_cli("label", "add", "Holidays", *made[:labelled], "--library", library).returncode == 0
    return library


def test_a_label_export_onto_a_full_disk_says_so_and_keeps_the_old_file(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _can_mount_tmpfs(disk):
        pytest.skip("tmpfs cannot be mounted here (no user or mount namespaces)")
    library = _labelled_library(tmp_path, photos=6, labelled=6)
    old = json.dumps({"format": "devise-app labels", "version": 1, "labels": {"Old": []}})
    export = disk / "labels.json"
    script = (
        f"mount -t tmpfs -o size=16k tmpfs {disk} && printf '%s' '{old}' > {export} && "
        f"(dd if=/dev/zero of={disk}/filler bs=4096 count=16 2>/dev/null; true) && "
        f"{' '.join(cli_command('label', 'export', export, '--library', library))}; "
        f'echo "exit=$?"; cat {export}'
    )
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert "exit=1" in done.stdout, (done.stdout, done.stderr)
    assert done.stdout.strip().endswith(old), "the previous export must be left whole"
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "No space left on device" in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_an_index_run_on_a_full_disk_says_disk_full_and_resumes_once_there_is_room(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _can_mount_tmpfs(disk):
        pytest.skip("tmpfs cannot be mounted here (no user or mount namespaces)")
    photos = distinct_photos(tmp_path / "photos", 40)
    library = disk / "library"
    index = " ".join(cli_command("index", photos[0].parent, "--library", library))
    script = (
        f"mount -t tmpfs -o size=1m tmpfs {disk} && "
        f"(dd if=/dev/zero of={disk}/filler bs=4096 count=200 2>/dev/null; true) && "
        f'{index}; echo "first=$?" >&2; rm {disk}/filler; {index}; echo "second=$?" >&2'
    )
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    first, second = done.stderr.split("first=")
    assert first.rstrip().splitlines()[-1].startswith("devise-app: error: "), done.stderr
    assert "full" in first.splitlines()[-1] and "no transaction is active" not in first, done.stderr
    assert second.startswith("1"), done.stderr
    assert "second=0" in done.stderr, done.stderr
    assert "the library holds 40 photos" in done.stdout
    assert "Traceback" not in done.stderr


LEARN_CHECK = """
import sqlite3, sys
from pathlib import Path
library = Path(sys.argv[1])
db = sqlite3.connect(f"file:{library / 'catalog.sqlite'}?immutable=1", uri=True)
heads = db.execute("SELECT DISTINCT head FROM photos WHERE vector IS NOT NULL").fetchall()
meta = db.execute("SELECT value FROM meta WHERE key = 'head'").fetchall()
print("heads", sorted(h for (h,) in heads), "meta", [m for (m,) in meta],
      "files", sorted(p.name for p in library.iterdir() if "head" in p.name))
"""


@pytest.mark.parametrize("room", ["not for the new head", "for the head, not the re-projection", "read-only"])
def test_learning_on_a_full_or_read_only_disk_changes_nothing_and_says_why(tmp_path: Path, room: str) -> None:
    """Issue 12: a full disk or a read-only catalog during ``learn`` left the new
    head beside the old vectors. The library is on a real tmpfs, filled so that
    the new head does not fit, or fits but the catalog's transaction does not."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _can_mount_tmpfs(disk):
        pytest.skip("tmpfs cannot be mounted here (no user or mount namespaces)")
    source = _labelled_library(tmp_path, photos=14, labelled=4)
    trial = tmp_path / "trial"
    shutil.copytree(source, trial)
    assert run_cli("learn", "--library", trial).returncode == 0
    head_size = (trial / "learned_head.npz").stat().st_size

    library = disk / "library"
    learn = shlex.join(cli_command("learn", "--library", library))
    check = shlex.join([sys.executable, "-c", LEARN_CHECK, str(library)])
    leave = {
        "not for the new head": head_size - 64 * 1024,
        "for the head, not the re-projection": head_size + 64 * 1024,
    }
    filler = (
        f"import os; s = os.statvfs({str(disk)!r}); "
        f"free = s.f_bavail * s.f_frsize - {leave.get(room, 0)}; "
        f"open({str(disk / 'filler')!r}, 'wb').write(bytes(max(0, free)))"
    )
    fill = (
        f"mount -o remount,ro {disk}" if room == "read-only" else shlex.join([sys.executable, "-c", filler])
    )
    script = (
        f"mount -t tmpfs -o size=64m tmpfs {disk} && cp -a {source} {library} && {fill} && "
        f'{learn}; echo "first=$?" >&2; {check}; '
        f'(rm -f {disk}/filler; mount -o remount,rw {disk}); {learn}; echo "second=$?" >&2; {check}'
    )
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    assert "first=" in done.stderr, (done.stdout, done.stderr)
    first, second = done.stderr.split("first=")
    assert "Traceback" not in done.stderr, done.stderr
    error = first.rstrip().splitlines()[-1]

    assert error.startswith("devise-app: error: "), done.stderr
    expected = {"read-only": "is read-only", "not for the new head": "No space left on device"}
    assert expected.get(room, "database or disk is full") in error, error
    before, after = [line for line in done.stdout.splitlines() if line.startswith("heads")]
    assert before == "heads ['shipped'] meta [] files []", "the library must be unchanged (never learned)"
    assert second.startswith("1") and "second=0" in done.stderr, done.stderr
    assert after.startswith("heads ['") and "files ['learned_head.npz']" in after
    assert "shipped" not in after.split("files")[0], after

"""Crash safety (issue 7): `devise-app index` killed with SIGKILL at random
moments, again and again, loses nothing.

The real CLI indexes a folder of 48 small real photos in a subprocess and is
killed at least KILLS times, after a random delay (fixed seed) counted from one
of three moments picked at random: the start of the process (most kills then
land while it starts, scans and loads the model), its first commit (between
batches) or the moment the catalog holds every photo (around the Annoy
build). Between runs the folder changes (a photo added, 18 rewritten with new
content, one renamed: two batches of work) and labels are put on indexed
photos through the Library API. After every kill:

- the catalog passes ``PRAGMA integrity_check`` and ``foreign_key_check``;
- no path is catalogued twice, and no photo that was indexed is lost;
- every label put so far is still on its photo;
- the Annoy file, if there is one, is the one from before the run or a whole
  new one built from the catalog as it now is (every vector in it matches);
  temporary files may be left, but are never the index, and the next build
  removes them;
- the sidecar, if there is one, is whole JSON.

Then a last run, not killed, completes and every photo is catalogued exactly
once, with its labels. The outcome of each kill (what the killed run had got
to) is printed: run pytest with -s to see it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reliability_support import cli_command, distinct_photos, run_cli, write_distinct_photo

from devise_app.engine.search import Library

PROJECT_ROOT = Path(__file__).resolve().parents[2]

KILLS = 20
PHOTOS = 48
SEED = 2024

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def _digest(path: Path) -> bytes | None:
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    except FileNotFoundError:
        return None


class LibraryState:
    """What is in a library's files, read through a connection of our own."""

    def __init__(self, library_dir: Path) -> None:
        self.dir = library_dir
        self.indexed: dict[int, str] = {}
        self.mtimes: dict[str, int] = {}
        self.vectors: dict[int, np.ndarray] = {}
        self.labels: set[tuple[str, int]] = set()
        self.duplicates: list[Any] = []
        self.generation = 0
        if not (library_dir / "catalog.sqlite").exists():  # killed before it was made
            self.integrity, self.foreign_keys = [("ok",)], []
            return
        conn = sqlite3.connect(library_dir / "catalog.sqlite", timeout=30)
        try:
            self.integrity = conn.execute("PRAGMA integrity_check").fetchall()
            self.foreign_keys = conn.execute("PRAGMA foreign_key_check").fetchall()
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'photos'").fetchall():
                return  # killed before its schema was made: nothing half made either
            self.duplicates = conn.execute(
                "SELECT path FROM photos GROUP BY path HAVING COUNT(*) > 1"
            ).fetchall()
            rows = conn.execute(
                "SELECT id, path, mtime_ns, vector FROM photos WHERE state = 'indexed'"
            ).fetchall()
            self.indexed = {int(photo_id): str(path) for photo_id, path, _, _ in rows}
            self.mtimes = {str(path): int(mtime) for _, path, mtime, _ in rows}
            self.vectors = {
                int(photo_id): np.frombuffer(vector, np.float32) for photo_id, _, _, vector in rows
            }
            self.labels = set(
                conn.execute(
                    "SELECT labels.name, photo_labels.photo_id FROM photo_labels "
                    "JOIN labels ON labels.id = photo_labels.label_id"
                ).fetchall()
            )
            self.generation = int(
                conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
            )
        finally:
            conn.close()

    def check_index(self, before: bytes | None) -> str:
        """'none', 'old' or 'new'; fails unless a new index matches the catalog."""
        from annoy import AnnoyIndex

        index_path = self.dir / "vectors.annoy"
        digest = _digest(index_path)
        sidecar = self.dir / "vectors.json"
        if sidecar.exists():
            json.loads(sidecar.read_text())  # whole, or this raises
        if digest is None:
            return "none"
        if digest == before:
            return "old"
        assert self.vectors, "an index without photos"
        dim = len(next(iter(self.vectors.values())))
        index = AnnoyIndex(dim, "angular")
        assert index.load(os.fspath(index_path), prefault=False)
        try:
            assert index.get_n_items() == max(self.vectors) + 1
            for photo_id, vector in self.vectors.items():
                stored = np.asarray(index.get_item_vector(photo_id), dtype=np.float32)
                assert float(stored @ vector) / float(np.linalg.norm(stored) * np.linalg.norm(vector)) > 0.999
        finally:
            index.unload()
        return "new"


def _catalog_now(library_dir: Path) -> tuple[int, dict[str, int]]:
    """(generation, {path: mtime_ns} of indexed photos), or (-1, {}) before the
    catalog and its schema exist; read-only, never waiting for the writer."""
    db = library_dir / "catalog.sqlite"
    if not db.exists():
        return -1, {}
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=0.1)
        try:
            generation = int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
            rows = conn.execute("SELECT path, mtime_ns FROM photos WHERE state = 'indexed'").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return -1, {}
    return generation, {str(path): int(mtime) for path, mtime in rows}


def _kill_when(run: subprocess.Popen[bytes], ready: Callable[[], bool], delay: float) -> None:
    """SIGKILL ``run`` ``delay`` seconds after ``ready()`` (polled) turns true,
    unless it ends first."""
    while not ready():
        if run.poll() is not None:
            return
        time.sleep(0.005)
    try:
        run.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGKILL)


class Folder:
    """The photo folder, changed between runs so that every run has work to do.

    Half the photos get new content now and then, the other half are renamed
    now and then, never both: a photo whose content changed while it moved is,
    rightly, a deleted photo and a new one, which would muddle the check that
    no photo is ever lost.
    """

    def __init__(self, folder: Path, rng: random.Random) -> None:
        self.folder = folder
        self.rng = rng
        self.next_photo = PHOTOS
        photos = distinct_photos(folder, PHOTOS)
        self.rewritable = photos[: PHOTOS // 2]
        self.movable = photos[PHOTOS // 2 :]

    @property
    def photos(self) -> list[Path]:
        return self.rewritable + self.movable

    def change(self) -> None:
        self.add()
        for path in self.rng.sample(self.rewritable, 18):  # new content under the same name
            write_distinct_photo(path, self.next_photo)
            self.next_photo += 1
        position = self.rng.randrange(len(self.movable))  # a move: the photo keeps its id and labels
        old = self.movable[position]
        self.movable[position] = old.rename(old.with_name(f"renamed{self.next_photo:03d}.jpg"))
        self.next_photo += 1

    def add(self) -> None:
        self.rewritable.append(
            write_distinct_photo(self.folder / f"added{self.next_photo:03d}.jpg", self.next_photo)
        )
        self.next_photo += 1


def _phase(state: LibraryState, before: LibraryState, index: str) -> str:
    """What the killed run had got to, from what it left."""
    if index == "new":
        return "after the new index was in place"
    if state.generation == before.generation:
        return "before its first write"
    return "after writing some or all batches, before the new index"


def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path, encoder: Any, vocabulary: Any) -> None:
    rng = random.Random(SEED)
    folder = Folder(tmp_path / "photos", rng)
    library_dir = tmp_path / "library"
    labelled: set[tuple[str, int]] = set()  # (label, photo id) put between runs
    ever_indexed: dict[int, str] = {}
    outcomes: Counter[str] = Counter()
    kills = runs = 0
    started = time.monotonic()

    while kills < KILLS:
        runs += 1
        assert runs <= 3 * KILLS, "the runs finish before they can be killed: lower the delays"
        before = LibraryState(library_dir)
        index_before = _digest(library_dir / "vectors.annoy")
        on_disk = {os.fspath(photo): os.stat(photo).st_mtime_ns for photo in folder.photos}
        run = subprocess.Popen(
            cli_command("index", folder.folder, "--library", library_dir),
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        moment = rng.choice(["start", "start", "first commit", "all photos in"])
        generation = before.generation

        def committed(generation: int = generation) -> bool:
            return _catalog_now(library_dir)[0] > generation

        def caught_up(on_disk: dict[str, int] = on_disk) -> bool:
            return _catalog_now(library_dir)[1].items() >= on_disk.items()

        if moment == "start":
            _kill_when(run, lambda: True, rng.uniform(0.0, 1.5))
        elif moment == "first commit":
            _kill_when(run, committed, rng.uniform(0.0, 0.8))
        else:
            _kill_when(run, caught_up, rng.uniform(0.0, 0.2))
        run.communicate()
        if run.returncode == -signal.SIGKILL:
            kills += 1
            outcome = ""
        else:
            assert run.returncode == 0, run.stderr
            outcome = "finished before the kill"

        state = LibraryState(library_dir)
        assert state.integrity == [("ok",)]
        assert state.foreign_keys == []
        assert state.duplicates == []
        assert labelled <= state.labels, "a label was lost"
        assert set(ever_indexed) <= set(state.indexed), "an indexed photo was lost"
        index = state.check_index(index_before)
        outcomes[outcome or f"killed {_phase(state, before, index)}"] += 1
        ever_indexed.update(state.indexed)

        # Labels on two photos indexed by now, through the API the GUI uses.
        with Library(library_dir, encoder=encoder, vocabulary=vocabulary) as library:
            current = [Path(path) for path in state.indexed.values() if Path(path).exists()]
            for photo in rng.sample(current, min(2, len(current))):
                label = f"run {runs}"
                library.add_label(label, [photo])
                labelled.add((label, next(i for i, p in state.indexed.items() if p == os.fspath(photo))))
        folder.change()

    # A last run, not killed, completes.
    folder.add()
    final = run_cli("index", folder.folder, "--library", library_dir)
    assert final.returncode == 0, final.stderr
    assert "Traceback" not in final.stderr
    state = LibraryState(library_dir)
    assert state.integrity == [("ok",)]
    assert sorted(state.indexed.values()) == sorted(os.fspath(photo) for photo in folder.photos)
    assert len(state.indexed) == len(folder.photos)
    for path in state.indexed.values():  # each row describes the file as it now is
        assert state.mtimes[path] == os.stat(path).st_mtime_ns
    assert labelled <= state.labels
    assert state.check_index(None) == "new"
    assert not list(library_dir.glob("*.tmp-*"))

    elapsed = time.monotonic() - started
    print(f"\nSIGKILL: {kills} kills in {runs} runs ({elapsed:.0f} s), 0 integrity failures, "
          f"{len(labelled)} labels kept, {len(folder.photos)} photos once each")  # fmt: skip
    for outcome, count in sorted(outcomes.items()):
        print(f"  {count:>3}  {outcome}")

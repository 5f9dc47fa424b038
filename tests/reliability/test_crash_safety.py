"""Crash safety (issues 7 and 10): `devise-app index` killed with SIGKILL loses
nothing, whether it dies at a chosen moment or at a random one, on a machine of
any speed.

Chosen moments. The indexer and the search-index build pass named crash points
(``devise_app.engine.faults``); with ``DEVISE_APP_CRASH_AT=NAME:N`` the real CLI
SIGKILLs itself the Nth time it passes NAME. Every case starts from a library
indexed and labelled in this process (36 real photos), changes the folder (one
photo deleted, one renamed, one added, 18 rewritten: a batch of the move, then two
batches to embed), runs the CLI with one crash point, and checks that it died
by SIGKILL, the invariants below, and what the point promises (nothing
committed before the first commit; the old index until the new one is renamed
over it; a new sidecar only after its rename). Then a run without a crash
completes. Every point is covered by construction: a point added to
``faults.INDEXING`` without a case here fails ``test_every_crash_point_has_a_case``.

Random moments. A chain of CLI runs over one library (48 photos, changed before
every run, labels put on between runs through the Library API), each killed a
random delay (fixed seed) after a random crash point it passes: the points are
traced on stderr (``DEVISE_APP_CRASH_TRACE=1``), so the test waits for the run
to get there, not for the clock. A run that ends before its kill is a clean run;
nothing asserts that a kill landed (the chosen moments guarantee the kills).

After every kill:

- the catalog passes ``PRAGMA integrity_check`` and ``foreign_key_check``;
- no path is catalogued twice, and no photo that was indexed is lost;
- every label put so far is still on its photo;
- the Annoy file is the one from before the run or a whole new one built from
  the catalog as it now is (every vector in it matches); temporary files may be
  left, but are never the index, and the next build removes them;
- the sidecar, if there is one, is whole JSON.

After the last run every photo is catalogued exactly once, as the file now is,
with its labels, and the index is new. Run pytest with -s to see the outcome of
each random kill. All but two chosen moments are marked slow (``-m "not slow"``
keeps one commit and one rename).
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
from collections import Counter, deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reliability_support import cli_command, distinct_photos, run_cli, write_distinct_photo

from devise_app.engine.faults import CRASH_AT_VARIABLE, INDEXING, TRACE_VARIABLE
from devise_app.engine.search import Library

PROJECT_ROOT = Path(__file__).resolve().parents[2]
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
        self.index_digest = _digest(library_dir / "vectors.annoy")
        sidecar = library_dir / "vectors.json"
        self.sidecar = json.loads(sidecar.read_text()) if sidecar.exists() else None  # whole, or this raises
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

        if self.index_digest is None:
            return "none"
        if self.index_digest == before:
            return "old"
        assert self.vectors, "an index without photos"
        dim = len(next(iter(self.vectors.values())))
        index = AnnoyIndex(dim, "angular")
        assert index.load(os.fspath(self.dir / "vectors.annoy"), prefault=False)
        try:
            assert index.get_n_items() == max(self.vectors) + 1
            for photo_id, vector in self.vectors.items():
                stored = np.asarray(index.get_item_vector(photo_id), dtype=np.float32)
                assert float(stored @ vector) / float(np.linalg.norm(stored) * np.linalg.norm(vector)) > 0.999
        finally:
            index.unload()
        return "new"

    def leftovers(self) -> list[str]:
        return sorted(path.name for path in self.dir.glob("*.tmp-*"))


class Folder:
    """The photo folder, changed between runs so that every run has work to do.

    Half the photos get new content now and then, the other half are renamed
    now and then, never both: a photo whose content changed while it moved is,
    rightly, a deleted photo and a new one, which would muddle the check that
    no photo is ever lost. Only photos deleted on purpose may go.
    """

    def __init__(self, folder: Path, rng: random.Random, photos: int) -> None:
        self.folder = folder
        self.rng = rng
        self.next_photo = photos
        made = distinct_photos(folder, photos)
        self.rewritable = made[: photos // 2]
        self.movable = made[photos // 2 :]

    @property
    def photos(self) -> list[Path]:
        return self.rewritable + self.movable

    def change(self) -> None:
        """One photo added, 18 rewritten with new content, one renamed."""
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

    def delete(self) -> Path:
        """Delete the last movable photo (never labelled here); its path."""
        path = self.movable.pop()
        path.unlink()
        return path


class Expected:
    """What must hold after every kill, kept up to date as the test goes."""

    def __init__(self) -> None:
        self.labelled: set[tuple[str, int]] = set()  # (label, photo id) put so far
        self.ever_indexed: dict[int, str] = {}
        self.may_go: set[int] = set()  # photos deleted on purpose

    def check(self, state: LibraryState, index_before: bytes | None) -> str:
        """Fail unless the invariants hold; what the index is ('none', 'old', 'new')."""
        assert state.integrity == [("ok",)]
        assert state.foreign_keys == []
        assert state.duplicates == []
        assert self.labelled <= state.labels, "a label was lost"
        assert set(self.ever_indexed) - self.may_go <= set(state.indexed), "an indexed photo was lost"
        index = state.check_index(index_before)
        self.ever_indexed.update(state.indexed)
        return index

    def label(self, library_dir: Path, state: LibraryState, photos: list[Path], name: str) -> None:
        """Put label ``name`` on ``photos`` through the API the GUI uses."""
        with Library(library_dir, create=False) as library:
            library.add_label(name, photos)
        ids = {path: photo_id for photo_id, path in state.indexed.items()}
        self.labelled |= {(name, ids[os.fspath(photo)]) for photo in photos}

    def check_complete(self, library_dir: Path, folder: Folder) -> None:
        """After a run that was not killed: every photo once, as it now is, with its labels."""
        state = LibraryState(library_dir)
        assert state.integrity == [("ok",)]
        assert sorted(state.indexed.values()) == sorted(os.fspath(photo) for photo in folder.photos)
        assert len(state.indexed) == len(folder.photos)
        for path in state.indexed.values():  # each row describes the file as it now is
            assert state.mtimes[path] == os.stat(path).st_mtime_ns
        assert self.labelled <= state.labels
        assert state.check_index(None) == "new"
        assert state.sidecar is not None and state.sidecar["generation"] == state.generation
        assert state.leftovers() == []


def _index_completely(library_dir: Path, folder: Folder) -> None:
    result = run_cli("index", folder.folder, "--library", library_dir)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


# -- chosen moments -----------------------------------------------------------------

PHOTOS = 36
# (point, hit): a run with the folder changed as above commits three batches (the
# move; then 16 and 3 photos to embed) and embeds two of them.
QUICK = {("after-commit", 2), ("after-index-replace", 1)}
CASES = [
    ("after-scan", 1),
    ("before-commit", 1),
    ("after-commit", 1),
    ("after-removal", 1),
    ("after-embed", 1),
    ("before-commit", 2),
    ("after-commit", 2),
    ("after-embed", 2),
    ("before-commit", 3),
    ("after-commit", 3),
    ("after-batches", 1),
    ("before-index-build", 1),
    ("after-index-temp", 1),
    ("before-index-replace", 1),
    ("after-index-replace", 1),
    ("before-sidecar-replace", 1),
    ("after-sidecar", 1),
]
NOTHING_COMMITTED = {("after-scan", 1), ("before-commit", 1)}
NEW_INDEX_FROM = INDEXING.index("after-index-replace")
NEW_SIDECAR_FROM = INDEXING.index("after-sidecar")
LEFTOVER = {
    "after-index-temp": "vectors.annoy.tmp-",
    "before-index-replace": "vectors.annoy.tmp-",
    "before-sidecar-replace": "vectors.json.tmp-",
}


def test_every_crash_point_has_a_case() -> None:
    assert {point for point, _ in CASES} == set(INDEXING)


def _labelled_library(tmp_path: Path, encoder: Any, vocabulary: Any) -> tuple[Folder, Path, Expected]:
    """A library of PHOTOS photos indexed in this process (with the session's
    model), four of them labelled, and its search index built."""
    folder = Folder(tmp_path / "photos", random.Random(SEED), PHOTOS)
    library_dir = tmp_path / "library"
    with Library(library_dir, encoder=encoder, vocabulary=vocabulary) as library:
        assert deque(library.index([folder.folder]), maxlen=1)[0].finished
    expected = Expected()
    state = LibraryState(library_dir)
    expected.ever_indexed.update(state.indexed)
    expected.label(library_dir, state, folder.rewritable[:2] + folder.movable[:2], "kept")
    return folder, library_dir, expected


@pytest.mark.parametrize(
    ("point", "hit"),
    [pytest.param(*case, marks=() if case in QUICK else pytest.mark.slow) for case in CASES],
    ids=[f"{point}:{hit}" for point, hit in CASES],
)
def test_killed_at_a_crash_point_loses_nothing(
    tmp_path: Path, encoder: Any, vocabulary: Any, point: str, hit: int
) -> None:
    folder, library_dir, expected = _labelled_library(tmp_path, encoder, vocabulary)
    before = LibraryState(library_dir)
    deleted = folder.delete()
    expected.may_go.add(next(i for i, path in before.indexed.items() if path == os.fspath(deleted)))
    folder.change()

    killed = run_cli(
        "index", folder.folder, "--library", library_dir, env={CRASH_AT_VARIABLE: f"{point}:{hit}"}
    )
    assert killed.returncode == -signal.SIGKILL, f"not killed at {point}:{hit}: {killed.stderr}"

    state = LibraryState(library_dir)
    index = expected.check(state, before.index_digest)
    committed = state.generation > before.generation
    assert committed == ((point, hit) not in NOTHING_COMMITTED)
    assert index == ("new" if INDEXING.index(point) >= NEW_INDEX_FROM else "old")
    new_sidecar = state.sidecar != before.sidecar
    assert new_sidecar == (INDEXING.index(point) >= NEW_SIDECAR_FROM)
    if point in LEFTOVER:
        assert [name for name in state.leftovers() if name.startswith(LEFTOVER[point])]

    _index_completely(library_dir, folder)
    expected.check_complete(library_dir, folder)


def test_an_unknown_crash_point_is_refused(tmp_path: Path) -> None:
    result = run_cli("index", tmp_path, "--library", tmp_path / "library", env={CRASH_AT_VARIABLE: "nowhere"})
    assert result.returncode != 0
    assert "no crash point named 'nowhere'" in result.stderr


# -- random moments -----------------------------------------------------------------

RANDOM_RUNS = 12
RANDOM_PHOTOS = 48
# Points every run of the chain passes, each with the longest delay to kill after
# it: the kills spread over the whole run (most land; one that does not is a clean run).
ANCHORS = {
    "after-scan": 0.3,
    "after-commit": 0.15,
    "after-embed": 0.1,
    "after-batches": 0.03,
    "after-index-temp": 0.005,
}


def _kill_after(run: subprocess.Popen[str], anchor: str, delay: float) -> list[str]:
    """SIGKILL ``run`` ``delay`` seconds after it passes crash point ``anchor``
    for the first time, unless it ends first; the crash points it passed."""
    assert run.stderr is not None
    passed = []
    for line in run.stderr:
        if line.startswith("crash point "):
            passed.append(line.split()[2])
            if passed[-1] == anchor:
                break
    else:
        pytest.fail(f"the run ended without passing {anchor}; it passed {passed}")
    try:
        run.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGKILL)
    passed += [line.split()[2] for line in run.stderr if line.startswith("crash point ")]
    run.wait()
    return passed


def _outcome(returncode: int, passed: list[str]) -> str:
    if returncode == 0:
        return "finished before the kill"
    assert returncode == -signal.SIGKILL, f"the run failed by itself: exit status {returncode}"
    return f"killed after {passed[-1] if passed else 'starting'}"


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path, encoder: Any, vocabulary: Any) -> None:
    rng = random.Random(SEED)
    folder = Folder(tmp_path / "photos", rng, RANDOM_PHOTOS)
    library_dir = tmp_path / "library"
    expected = Expected()
    outcomes: Counter[str] = Counter()
    started = time.monotonic()

    for number in range(1, RANDOM_RUNS + 1):
        before = LibraryState(library_dir)
        anchor = rng.choice(sorted(ANCHORS))
        delay = rng.uniform(0.0, ANCHORS[anchor])
        run = subprocess.Popen(
            cli_command("index", folder.folder, "--library", library_dir),
            cwd=PROJECT_ROOT,
            env={**os.environ, TRACE_VARIABLE: "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        with run:
            passed = _kill_after(run, anchor, delay)
        outcomes[_outcome(run.returncode, passed)] += 1

        state = LibraryState(library_dir)
        expected.check(state, before.index_digest)
        current = [Path(path) for path in state.indexed.values() if Path(path).exists()]
        if current:
            expected.label(library_dir, state, rng.sample(current, min(2, len(current))), f"run {number}")
        folder.change()

    folder.add()
    _index_completely(library_dir, folder)
    expected.check_complete(library_dir, folder)

    kills = sum(count for outcome, count in outcomes.items() if outcome.startswith("killed"))
    print(f"\nSIGKILL: {kills} kills in {RANDOM_RUNS} runs ({time.monotonic() - started:.0f} s), "
          f"{len(expected.labelled)} labels kept, {len(folder.photos)} photos once each")  # fmt: skip
    for outcome, count in sorted(outcomes.items()):
        print(f"  {count:>3}  {outcome}")

"""Two writers on one library (issue 7): the GUI and the CLI, or two index runs,
at the same time. Writes are serialised (SQLite's write lock, taken up front,
with a busy timeout; see devise_app/engine/catalog.py), readers never see a half-built
index, and nothing is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reliability_support import catalog_rows, cli_command, distinct_photos

from devise_app.engine import ann
from devise_app.engine.ann import VectorIndex
from devise_app.engine.catalog import CATALOG_FILENAME, MIGRATIONS, Catalog
from devise_app.engine.search import Library

PROJECT_ROOT = Path(__file__).resolve().parents[2]

RunIndex = Callable[..., Any]


def _start_cli(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cli_command(*args),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _paths_once(library_dir: Path) -> list[str]:
    """Every catalogued path, checking that none is there twice."""
    rows = catalog_rows(library_dir, "SELECT path, COUNT(*) FROM photos GROUP BY path")
    assert all(count == 1 for _, count in rows)
    return sorted(str(path) for path, _ in rows)


def _open_together(library_dir: Path, connections: int) -> list[BaseException]:
    """Open the catalog in ``library_dir`` from several threads at the same moment."""
    barrier = threading.Barrier(connections)
    errors: list[BaseException] = []

    def open_catalog() -> None:
        barrier.wait()
        try:
            Catalog.open(library_dir).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_catalog) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_connections_opening_a_new_library_at_once(tmp_path: Path) -> None:
    """Four connections (as the GUI and CLI processes have) create one new
    library together. Before the fix all but one failed with 'table photos
    already exists' (each read schema version 0 before another migrated), or
    with 'database is locked' from switching the new file to WAL."""
    for attempt in range(20):
        library_dir = tmp_path / f"library{attempt}"
        assert _open_together(library_dir, 4) == []
        catalog = Catalog(library_dir / CATALOG_FILENAME)
        assert catalog.schema_version == len(MIGRATIONS)
        catalog.close()


def test_two_index_runs_on_one_folder_at_once(tmp_path: Path) -> None:
    """Two `devise-app index` processes on the same folder and library (the CLI
    while the GUI indexes). Before the fix one of them stopped with
    'UNIQUE constraint failed: photos.path' and a traceback."""
    folder = tmp_path / "photos"
    photos = distinct_photos(folder, 40)
    library_dir = tmp_path / "library"
    Catalog.open(library_dir).close()  # both find the library made; racing its creation is tested above

    runs = [_start_cli("index", folder, "--library", library_dir) for _ in range(2)]
    results = [run.communicate(timeout=120) for run in runs]

    for run, (out, err) in zip(runs, results, strict=True):
        assert run.returncode == 0, err
        assert "Traceback" not in err
        assert "the library holds 40 photos" in out
    assert _paths_once(library_dir) == sorted(os.fspath(photo) for photo in photos)
    rows = catalog_rows(library_dir, "SELECT COUNT(*) FROM photos WHERE state = 'indexed'")
    assert rows == [(40,)]


def test_the_gui_labels_and_searches_while_the_cli_indexes(
    tmp_path: Path, encoder: Any, vocabulary: Any
) -> None:
    """The CLI indexes 48 photos in a subprocess; meanwhile this process, as the
    GUI does, labels photos as they appear and searches, through its own
    connection. Every label is kept, every search is answered from a whole
    index, every photo is catalogued once."""
    folder = tmp_path / "photos"
    photos = distinct_photos(folder, 48)
    library_dir = tmp_path / "library"
    Catalog.open(library_dir).close()

    cli = _start_cli("index", folder, "--library", library_dir)
    labelled: dict[str, str] = {}  # photo path -> label put on it while the CLI ran
    searches = 0
    with Library(library_dir, encoder=encoder, vocabulary=vocabulary) as gui:
        while cli.poll() is None:
            indexed = [path for path, _ in catalog_rows(library_dir, "SELECT path, 1 FROM photos")]
            for path in indexed:
                if path not in labelled:
                    label = f"seen {len(labelled)}"
                    gui.add_label(label, [Path(str(path))])
                    labelled[str(path)] = label
            hits = gui.search("cat", top=50)
            searches += 1
            assert len({hit.photo_id for hit in hits}) == len(hits)
            assert all(hit.path.is_file() for hit in hits)
            if labelled:
                path, label = next(iter(labelled.items()))
                assert [hit.path for hit in gui.search(f'label:"{label}"')][:1] == [Path(path)]
            time.sleep(0.02)
        _, err = cli.communicate(timeout=60)
        assert cli.returncode == 0, err
        assert "Traceback" not in err and "locked" not in err

        # Nothing lost: all photos once, every label where it was put.
        assert _paths_once(library_dir) == sorted(os.fspath(photo) for photo in photos)
        for path, label in labelled.items():
            assert gui.labels_of(Path(path)) == [label]
        assert len(gui.search("cat", top=100)) == 48  # the GUI's index caught up
    assert searches >= 3
    assert 0 < len(labelled) <= 48


@pytest.fixture
def two_builders(tmp_path: Path) -> Iterator[tuple[Catalog, VectorIndex, VectorIndex]]:
    """A catalog with two photos, and two VectorIndex objects on it, each with its
    own connection, as two processes have."""
    library_dir = tmp_path / "library"
    writer = Catalog.open(library_dir)
    rng = np.random.default_rng(1)
    for i in range(2):
        vector = rng.standard_normal(8).astype(np.float32)
        writer.put_photo(
            None,
            f"/photos/{i}.jpg",
            1,
            1,
            bytes([i]),
            vector / np.linalg.norm(vector),
            np.zeros(4),
            head="shipped",
        )
    first, second = Catalog.open(library_dir), Catalog.open(library_dir)
    yield writer, VectorIndex(library_dir, first), VectorIndex(library_dir, second)
    for catalog in (writer, first, second):
        catalog.close()


def test_interleaved_index_builds_never_leave_a_stale_index(
    two_builders: tuple[Catalog, VectorIndex, VectorIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes rebuild the Annoy index for different catalog generations,
    their renames interleaved: the older build's index file lands last, the
    newer build's sidecar last. Before the fix the library was left with an
    index that lacked the newest photo under a sidecar claiming it was current,
    so no search found that photo until the catalog changed again."""
    writer, older, newer = two_builders
    older_building = threading.Event()
    newer_replaced = threading.Event()
    older_done = threading.Event()
    real_write_index = ann.write_index
    real_write_json = ann._atomic_write_json

    def write_index(*args: Any, **kwargs: Any) -> Path:
        if threading.current_thread().name == "older":
            older_building.set()
            newer_replaced.wait(timeout=1.5)  # with the lock the newer build waits for this one
        return real_write_index(*args, **kwargs)

    def write_json(*args: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "newer":
            newer_replaced.set()
            older_done.wait(timeout=5)
        real_write_json(*args, **kwargs)

    monkeypatch.setattr(ann, "write_index", write_index)
    monkeypatch.setattr(ann, "_atomic_write_json", write_json)

    def build_older() -> None:
        older.ensure_current()
        older_done.set()

    older_thread = threading.Thread(target=build_older, name="older")
    older_thread.start()
    assert older_building.wait(timeout=5)  # it has read the two photos
    vector = np.ones(8, dtype=np.float32) / np.sqrt(8)
    newest = writer.put_photo(None, "/photos/newest.jpg", 1, 1, b"new", vector, np.zeros(4), head="shipped")
    newer_thread = threading.Thread(target=newer.ensure_current, name="newer")
    newer_thread.start()
    older_thread.join(timeout=10)
    newer_thread.join(timeout=10)
    monkeypatch.undo()

    library_dir = writer.path.parent
    reader_catalog = Catalog.open(library_dir)
    reader = VectorIndex(library_dir, reader_catalog)
    try:
        assert reader.search(vector, k=1)[0][0] == newest
        assert not list(library_dir.glob("*.tmp-*"))
    finally:
        reader.close()
        reader_catalog.close()
        older.close()
        newer.close()


def test_leftovers_of_a_killed_build_are_removed(
    two_builders: tuple[Catalog, VectorIndex, VectorIndex],
) -> None:
    """Temporary files of a build killed before its rename are removed by the
    next build (under the lock no other build can be writing them)."""
    writer, index, _ = two_builders
    library_dir = writer.path.parent
    (library_dir / "vectors.annoy.tmp-4242-1").write_bytes(b"half an index")
    (library_dir / "vectors.json.tmp-4242").write_text("{")
    assert index.ensure_current()
    assert not list(library_dir.glob("*.tmp-*"))
    index.close()


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_search_behind_a_stopped_rebuild_gives_up_with_a_message(tmp_path: Path) -> None:
    """Another process holds the index lock and never lets go (stopped, in a debugger):
    the search says what it waits for and gives up, instead of waiting forever."""
    from reliability_support import distinct_photos, run_cli

    photos = distinct_photos(tmp_path / "photos", 6)
    library = tmp_path / "library"
    assert run_cli("index", photos[0].parent, "--library", library).returncode == 0
    (library / ann.SIDECAR_FILENAME).unlink()  # the next search must rebuild, under the lock
    hold = (
        "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(library / ann.LOCK_FILENAME)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waited = run_cli("search", "cat", "--library", library, env={ann.LOCK_WAIT_ENV: "1"})
        assert waited.returncode == 1
        assert "another devise-app process is rebuilding" in waited.stderr
        assert "Traceback" not in waited.stderr
    finally:
        holder.communicate("", timeout=30)
    assert run_cli("search", "cat", "--library", library).returncode == 0

"""A damaged search index is rebuilt from the catalog, never trusted: Annoy reads
its file as it is, and random bytes of the right size made every search die with
SIGSEGV (exit 139, no message); a zero-filled file answered "(no photos)". The
real CLI runs in a subprocess, so a crash would show as its exit status."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from reliability_support import distinct_photos, run_cli

from devise_app.engine.ann import INDEX_FILENAME, SIDECAR_FILENAME


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("damaged")
    distinct_photos(base / "photos", 12)
    done = run_cli("index", base / "photos", "--library", base / "library")
    assert done.returncode == 0, done.stderr
    return base / "library"


def _damage(library: Path, tmp_path: Path, how: str) -> Path:
    copy = tmp_path / "library"
    copy.mkdir()
    for item in library.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    index, sidecar = copy / INDEX_FILENAME, copy / SIDECAR_FILENAME
    size = index.stat().st_size
    if how == "random bytes":
        index.write_bytes(os.urandom(size))
    elif how == "zeros":
        index.write_bytes(bytes(size))
    elif how == "truncated":
        index.write_bytes(index.read_bytes()[: size // 3])
    elif how == "sidecar of wrong types":
        data = json.loads(sidecar.read_text())
        sidecar.write_text(json.dumps({**data, "dim": "many", "count": [1]}))
    elif how == "sidecar not JSON":
        sidecar.write_text("{ not json")
    return copy


@pytest.mark.parametrize(
    "how", ["random bytes", "zeros", "truncated", "sidecar of wrong types", "sidecar not JSON"]
)
def test_a_damaged_index_is_rebuilt_and_searches_answer(indexed: Path, tmp_path: Path, how: str) -> None:
    library = _damage(indexed, tmp_path, how)
    photo = next((indexed.parent / "photos").iterdir())
    for command in (["search", "cat", "--top", "3"], ["similar", str(photo), "--top", "3"]):
        done = run_cli(*command, "--json", "--library", library)
        assert done.returncode == 0, (how, done.returncode, done.stderr[-1500:])
        assert "Traceback" not in done.stderr
        assert len(json.loads(done.stdout)["results"]) == 3, how


def test_a_damaged_stored_vector_is_left_out_then_embedded_again(indexed: Path, tmp_path: Path) -> None:
    """A row whose vector BLOB has the wrong length made every search raise; one whose
    features are NaN gave a NaN vector. Both are left out of searches, and the next
    index run embeds them again."""
    import sqlite3

    library = _damage(indexed, tmp_path, "nothing")
    with sqlite3.connect(library / "catalog.sqlite") as conn:
        first, second = [row[0] for row in conn.execute("SELECT id FROM photos ORDER BY id LIMIT 2")]
        conn.execute("UPDATE photos SET vector = ? WHERE id = ?", (b"\\x00" * 12, first))
        nan_vector = conn.execute("SELECT vector FROM photos WHERE id = ?", (second,)).fetchone()[0]
        conn.execute("UPDATE photos SET vector = ? WHERE id = ?", (b"\\xff" * len(nan_vector), second))
    done = run_cli("search", "cat", "--top", "20", "--json", "--library", library)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["results"]) == 10  # the 12 photos less the two damaged ones
    again = run_cli("index", indexed.parent / "photos", "--library", library)
    assert again.returncode == 0, again.stderr
    assert "indexed          2" in again.stdout  # both damaged photos, and only those
    done = run_cli("search", "cat", "--top", "20", "--json", "--library", library)
    assert len(json.loads(done.stdout)["results"]) == 12

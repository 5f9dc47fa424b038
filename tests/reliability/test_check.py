"""``devise-app check [--repair]`` finds each kind of damage, caused for real in a
real library's files, says what it found, mends what can be mended, and leaves a
library whose searches answer. The real CLI runs in a subprocess."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from reliability_support import catalog_rows, distinct_photos, run_cli

from devise_app.engine.ann import INDEX_FILENAME
from devise_app.engine.catalog import CATALOG_FILENAME

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("check")
    photos = distinct_photos(base / "photos", 12)
    library = base / "library"
    assert run_cli("index", base / "photos", "--library", library).returncode == 0
    assert run_cli("label", "add", "Zorblax", *photos[:3], "--library", library).returncode == 0
    assert run_cli("learn", "--library", library).returncode == 0
    assert run_cli("search", "cat", "--library", library).returncode == 0  # the index is built
    return library


@pytest.fixture
def library(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "library"
    copy.mkdir()
    for item in pristine.iterdir():
        if item.is_file():
            (copy / item.name).write_bytes(item.read_bytes())
            os.utime(copy / item.name, ns=(item.stat().st_atime_ns, item.stat().st_mtime_ns))
    return copy


def _check(library: Path, *extra: str) -> tuple[int, dict[str, object]]:
    done = run_cli("check", "--json", *extra, "--library", library)
    assert done.stderr == "" or "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def _problems(report: dict[str, object]) -> list[tuple[str, str, int, bool]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [(f["part"], f["problem"].split(":")[0], f["count"], f["repaired"]) for f in findings]


def _raw_sql(library: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    """Change the catalog behind the library's back (no generation bump, no checks)."""
    db = sqlite3.connect(library / CATALOG_FILENAME)
    try:
        db.execute(sql, params)
        db.commit()
    finally:
        db.close()


def _searches(library: Path) -> None:
    done = run_cli("search", "cat", "Zorblax", "--json", "--library", library)
    assert done.returncode == 0, done.stderr
    assert all(json.loads(line)["results"] for line in done.stdout.splitlines())


def test_a_sound_library_is_sound(library: Path) -> None:
    rc, report = _check(library)
    assert (rc, report["sound"], report["findings"]) == (0, True, [])
    assert (report["photos"], report["vectors"], report["labels"]) == (12, 12, 1)


def test_a_vector_overwritten_in_the_catalog_is_found_and_re_projected(library: Path) -> None:
    (photo_id, vector), *_ = catalog_rows(library, "SELECT id, vector FROM photos ORDER BY id LIMIT 1")
    assert isinstance(vector, bytes)
    wrong = np.roll(np.frombuffer(vector, np.float32), 5).tobytes()  # unit length, of the right size
    _raw_sql(library, "UPDATE photos SET vector = ? WHERE id = ?", (wrong, photo_id))
    rc, report = _check(library)
    assert rc == 1 and _problems(report) == [
        ("vectors", "damaged vectors", 1, False),
        ("index", "the search index holds other vectors than the catalog", 1, False),  # its old copy
    ]
    rc, report = _check(library, "--repair")  # the index is then behind the catalog: rebuilt at a search
    assert rc == 0 and _problems(report) == [("vectors", "damaged vectors", 1, True)]
    assert _check(library) == (0, {**report, "findings": []})
    _searches(library)


def test_a_vector_of_another_head_is_re_projected(library: Path) -> None:
    _raw_sql(library, "UPDATE photos SET head = 'shipped' WHERE id IN (SELECT id FROM photos LIMIT 2)")
    rc, report = _check(library, "--repair")
    assert rc == 0 and _problems(report) == [("vectors", "not made by the head in use", 2, True)]
    assert _check(library)[1]["findings"] == []


def test_damaged_features_are_queued_to_be_embedded_again(library: Path) -> None:
    (photo_id, features), *_ = catalog_rows(library, "SELECT id, features FROM photos ORDER BY id LIMIT 1")
    assert isinstance(features, bytes)
    nan = np.full(len(features) // 2, np.nan, np.float16).tobytes()
    _raw_sql(library, "UPDATE photos SET features = ? WHERE id = ?", (nan, photo_id))
    rc, report = _check(library, "--repair")
    assert rc == 0 and _problems(report) == [("vectors", "photos whose stored features are damaged", 1, True)]
    assert catalog_rows(library, "SELECT state FROM photos WHERE id = ?", (photo_id,)) == [("stale",)]
    assert run_cli("rescan", "--library", library).returncode == 0  # embeds it again
    assert _check(library)[1]["findings"] == []
    _searches(library)


def test_an_index_file_of_random_bytes_is_found_and_rebuilt(library: Path) -> None:
    index = library / INDEX_FILENAME
    index.write_bytes(os.urandom(index.stat().st_size))
    rc, report = _check(library)
    assert rc == 1
    assert _problems(report) == [
        ("index", "the search index file (vectors.annoy) changed since it was built", 1, False)
    ]
    rc, report = _check(library, "--repair")
    assert rc == 0 and [p[3] for p in _problems(report)] == [True]
    assert _check(library)[1]["findings"] == []
    _searches(library)


def test_an_index_holding_other_vectors_than_the_catalog_is_rebuilt(library: Path) -> None:
    """The file is the one its sidecar describes, but the catalog's vectors changed
    behind the index's back (without the generation that tells it to rebuild)."""
    rows = catalog_rows(library, "SELECT id, features, vector FROM photos ORDER BY id")
    (first_id, _, first_vector), (second_id, _, second_vector) = rows[:2]
    _raw_sql(library, "UPDATE photos SET vector = ? WHERE id = ?", (second_vector, first_id))
    _raw_sql(library, "UPDATE photos SET vector = ? WHERE id = ?", (first_vector, second_id))
    rc, report = _check(library)
    assert rc == 1
    assert ("index", "the search index holds other vectors than the catalog", 1, False) in _problems(report)
    rc, report = _check(library, "--repair")
    assert rc == 0 and all(p[3] for p in _problems(report))
    assert _check(library)[1]["findings"] == []


def test_a_damaged_sqlite_index_is_rebuilt(library: Path) -> None:
    """An SQLite index whose entries do not match its table (here: declared over
    another column than it was built from), as integrity_check reports it."""
    db = sqlite3.connect(library / CATALOG_FILENAME)
    try:
        db.execute("PRAGMA writable_schema = ON")
        declared = "CREATE INDEX photos_hash ON photos (size)"
        db.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'photos_hash'", (declared,))
        db.commit()
    finally:
        db.close()
    rc, report = _check(library)
    assert rc == 1 and [(p[0], p[3]) for p in _problems(report)] == [("catalog", False)]
    rc, report = _check(library, "--repair")
    assert rc == 0 and [(p[0], p[3]) for p in _problems(report)] == [("catalog", True)]
    assert _check(library)[1]["findings"] == []
    _searches(library)


def test_the_text_report_says_what_to_do(library: Path) -> None:
    (library / INDEX_FILENAME).write_bytes(b"\0" * 1024)
    done = run_cli("check", "--library", library)
    assert done.returncode == 1
    assert "index: 1 × the search index file (vectors.annoy) changed since it was built" in done.stdout
    assert "run with --repair" in done.stdout
    done = run_cli("check", "--repair", "--library", library)
    assert done.returncode == 0 and "repaired: the library is sound now" in done.stdout

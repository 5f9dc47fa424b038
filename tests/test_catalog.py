from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from devise_app.engine.catalog import (
    CATALOG_FILENAME,
    ERROR,
    INDEXED,
    MIGRATIONS,
    STALE,
    Catalog,
    LibraryError,
)


@pytest.fixture
def catalog(tmp_path: Path):
    cat = Catalog.open(tmp_path / "lib")
    yield cat
    cat.close()


def _vector(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _put(catalog: Catalog, path: str, seed: int, photo_id: int | None = None) -> int:
    features = np.random.default_rng(seed).random(1280).astype(np.float32)
    return catalog.put_photo(
        photo_id, path, 100 + seed, seed, bytes([seed]) * 16, _vector(seed), features, head="shipped"
    )


def test_new_catalog_has_current_schema_in_wal_mode(catalog: Catalog) -> None:
    assert catalog.schema_version == len(MIGRATIONS)
    assert catalog.generation() == 0
    with sqlite3.connect(catalog.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"photos", "labels", "photo_labels", "meta"} <= tables


def test_reopening_keeps_data(tmp_path: Path) -> None:
    with_data = Catalog.open(tmp_path)
    _put(with_data, "/p/a.jpg", 1)
    with_data.close()
    again = Catalog.open(tmp_path, create=False)
    assert again.photo_count() == 1
    assert again.schema_version == len(MIGRATIONS)
    again.close()


def test_missing_library_is_an_error_when_not_creating(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="no photo library"):
        Catalog.open(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / CATALOG_FILENAME) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(LibraryError, match="newer devise-app"):
        Catalog.open(tmp_path)


def test_damaged_catalog_is_a_library_error(tmp_path: Path) -> None:
    (tmp_path / CATALOG_FILENAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(LibraryError, match="cannot read the photo catalog"):
        Catalog.open(tmp_path)


def test_vectors_and_features_round_trip(catalog: Catalog) -> None:
    a = _put(catalog, "/p/a.jpg", 1)
    b = _put(catalog, "/p/b.jpg", 2)
    catalog.put_error(None, "/p/bad.jpg", 0, 0, None, "corrupt")
    ids, vectors = catalog.vectors()
    assert ids.tolist() == [a, b]
    assert vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[1], _vector(2))
    feature_ids, features = catalog.features()
    assert feature_ids.tolist() == [a, b]
    expected = np.random.default_rng(2).random(1280).astype(np.float32)
    np.testing.assert_allclose(features[1], expected, rtol=1e-3)  # stored as float16
    assert catalog.photo_count() == 2
    assert catalog.errors() == [("/p/bad.jpg", "corrupt")]
    assert catalog.vector_of("/p/bad.jpg") is None
    stored = catalog.vector_of("/p/a.jpg")
    assert stored is not None and stored[0] == a
    assert catalog.embedding_with_hash(bytes([2]) * 16) is not None
    assert catalog.paths_of([a, b, 999]) == {a: "/p/a.jpg", b: "/p/b.jpg"}


def test_generation_counts_changes_to_photos_only(catalog: Catalog) -> None:
    photo = _put(catalog, "/p/a.jpg", 1)
    assert catalog.generation() == 1
    with catalog.transaction():  # one transaction, one bump
        _put(catalog, "/p/b.jpg", 2)
        _put(catalog, "/p/c.jpg", 3)
    assert catalog.generation() == 2
    catalog.touch(photo, 5, 5)
    catalog.add_label(catalog.create_label("x"), [photo])
    assert catalog.generation() == 2
    catalog.delete_photos([photo])
    assert catalog.generation() == 3


def test_failed_transaction_leaves_nothing(catalog: Catalog) -> None:
    with pytest.raises(RuntimeError), catalog.transaction():
        _put(catalog, "/p/a.jpg", 1)
        raise RuntimeError("killed")
    assert catalog.records() == []
    assert catalog.generation() == 0


def test_update_keeps_the_id(catalog: Catalog) -> None:
    photo = _put(catalog, "/p/a.jpg", 1)
    assert _put(catalog, "/q/moved.jpg", 1, photo_id=photo) == photo
    assert [record.path for record in catalog.records()] == ["/q/moved.jpg"]


def test_another_model_makes_vectors_stale(catalog: Catalog) -> None:
    assert catalog.use_model("m1") is False
    _put(catalog, "/p/a.jpg", 1)
    catalog.put_error(None, "/p/bad.jpg", 0, 0, None, "corrupt")
    assert catalog.use_model("m1") is False
    generation = catalog.generation()
    assert catalog.use_model("m2") is True
    assert {record.path: record.state for record in catalog.records()} == {
        "/p/a.jpg": STALE,
        "/p/bad.jpg": ERROR,
    }
    assert catalog.photo_count() == 0
    assert catalog.generation() == generation + 1
    ids, _ = catalog.features()
    catalog.set_vectors(ids, np.stack([_vector(9)]), head="shipped")
    assert [record.state for record in catalog.records() if record.path == "/p/a.jpg"] == [INDEXED]


def test_labels(catalog: Catalog) -> None:
    a = _put(catalog, "/p/a.jpg", 1)
    b = _put(catalog, "/p/b.jpg", 2)
    cats = catalog.create_label("Cats")
    assert catalog.create_label("cats") == cats  # names are case-insensitive
    beach = catalog.create_label("Beach")
    catalog.add_label(cats, [a, b])
    catalog.add_label(cats, [a])  # twice is fine
    catalog.add_label(beach, [b])
    assert catalog.labels() == [("Beach", 1), ("Cats", 2)]
    assert catalog.labels_of(b) == ["Beach", "Cats"]
    assert catalog.photos_with_labels([cats]) == [(a, "/p/a.jpg"), (b, "/p/b.jpg")]
    assert catalog.photos_with_labels([cats, beach]) == [(b, "/p/b.jpg")]
    catalog.remove_label(cats, [a])
    assert catalog.photos_with_labels([cats]) == [(b, "/p/b.jpg")]
    catalog.delete_photos([b])  # labels of a deleted photo go with it
    assert catalog.labels() == [("Beach", 0), ("Cats", 0)]
    assert catalog.delete_label("BEACH")
    assert catalog.label_id("beach") is None


def test_the_head_of_each_vector_is_recorded_also_for_rows_older_than_the_record(tmp_path: Path) -> None:
    """Migration 3 names the library's head (meta "head") on every existing vector."""
    library = tmp_path / "lib"
    library.mkdir()
    db = sqlite3.connect(library / CATALOG_FILENAME)
    for script in MIGRATIONS[:2]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 2")
    rows = [
        (f"/p/{i}.jpg", 1, 1, bytes([i]), "indexed", None, _vector(i).tobytes(), b"\0" * 8, 0.0)
        for i in (1, 2)
    ]
    rows.append(("/p/bad.jpg", 1, 1, None, "error", "corrupt", None, None, 0.0))
    db.executemany(
        "INSERT INTO photos (path, size, mtime_ns, hash, state, error, vector, features, indexed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    db.execute("INSERT INTO meta (key, value) VALUES ('head', 'abc123')")
    db.commit()
    db.close()
    catalog = Catalog.open(library)
    try:
        assert catalog.schema_version == len(MIGRATIONS) >= 3
        assert catalog.vector_heads() == {"abc123": 2}
        assert catalog.ids_not_from_head("abc123") == []
        ids, _ = catalog.features()
        catalog.set_vectors(ids[:1], _vector(7)[None], head="shipped")
        assert catalog.vector_heads() == {"abc123": 1, "shipped": 1}
        assert catalog.ids_not_from_head("abc123") == [int(ids[0])]
    finally:
        catalog.close()


def test_labels_in_use_are_those_an_indexed_photo_carries(catalog: Catalog) -> None:
    shown = _put(catalog, "/p/a.jpg", 1)
    broken = catalog.put_error(None, "/p/bad.jpg", 0, 0, None, "corrupt")
    for name, photo in (("Grandma", shown), ("Broken", broken)):
        catalog.add_label(catalog.create_label(name), [photo])
    catalog.create_label("Empty")
    assert catalog.labels_in_use() == ["Grandma"]

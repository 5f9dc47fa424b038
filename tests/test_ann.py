from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devise_app.engine import ann
from devise_app.engine.ann import INDEX_FILENAME, SIDECAR_FILENAME, AnnIndex, VectorIndex, exact_search
from devise_app.engine.catalog import Catalog
from devise_app.engine.evaluation import unit_rows


def _vectors(count: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return unit_rows(np.random.default_rng(seed).standard_normal((count, dim))).astype(np.float32)


@pytest.fixture
def catalog(tmp_path: Path):
    cat = Catalog.open(tmp_path)
    yield cat
    cat.close()


def _fill(catalog: Catalog, vectors: np.ndarray, start: int = 0) -> None:
    with catalog.transaction():
        for i, vector in enumerate(vectors, start):
            catalog.put_photo(
                None, f"/p/{i}.jpg", 1, 1, i.to_bytes(16, "big"), vector, np.zeros(4), head="shipped"
            )


def test_exact_search_orders_by_cosine() -> None:
    vectors = _vectors(50)
    ids = np.arange(100, 150)
    query = vectors[7] + 0.1 * vectors[3]
    found = exact_search(ids, vectors, query, 5)
    scores = vectors @ (query / np.linalg.norm(query))
    assert [item for item, _ in found] == (ids[np.argsort(-scores)[:5]]).tolist()
    assert found[0][1] == pytest.approx(scores.max(), abs=1e-6)
    assert exact_search(ids[:0], vectors[:0], query, 5) == []


def test_small_index_is_exact(tmp_path: Path) -> None:
    vectors = _vectors(300)
    ids = np.arange(1, 301) * 3  # item ids are photo ids, not positions
    index = AnnIndex.build(tmp_path / "x.annoy", ids, vectors)
    for query in _vectors(20, seed=1):
        found = index.query(query, 10)
        expected = exact_search(ids, vectors, query, 10)
        assert [item for item, _ in found] == [item for item, _ in expected]
        np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], atol=1e-4)
    index.close()
    assert [p.name for p in tmp_path.iterdir()] == ["x.annoy"]  # the temporary file is gone


def test_large_index_has_high_recall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann, "MIN_SEARCH_K", 500)  # make the search approximate at this size
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((100, 32))  # photo vectors gather around words
    vectors = unit_rows(centres[rng.integers(0, 100, 5000)] + 0.5 * rng.standard_normal((5000, 32)))
    vectors = vectors.astype(np.float32)
    ids = np.arange(5000)
    index = AnnIndex.build(tmp_path / "x.annoy", ids, vectors)
    recalls = []
    for query in vectors[:100]:
        exact = {item for item, _ in exact_search(ids, vectors, query, 10)}
        recalls.append(len(exact & {item for item, _ in index.query(query, 10)}) / 10)
    index.close()
    assert np.mean(recalls) >= 0.9


def test_rebuilt_only_when_the_catalog_changed(tmp_path: Path, catalog: Catalog) -> None:
    vectors = _vectors(20)
    _fill(catalog, vectors[:10])
    index = VectorIndex(tmp_path, catalog)
    assert index.search(vectors[3], 1)[0][0] == catalog.photo_id("/p/3.jpg")
    assert index.builds == 1
    index_file = tmp_path / INDEX_FILENAME
    stamp = index_file.stat().st_mtime_ns
    index.search(vectors[4], 3)
    assert not index.ensure_current()
    assert index.builds == 1
    assert index_file.stat().st_mtime_ns == stamp

    _fill(catalog, vectors[10:], start=10)
    assert index.search(vectors[15], 1)[0][0] == catalog.photo_id("/p/15.jpg")
    assert index.builds == 2
    index.close()

    reopened = VectorIndex(tmp_path, catalog)  # another process, same catalog: loads, no rebuild
    assert reopened.search(vectors[15], 1)[0][0] == catalog.photo_id("/p/15.jpg")
    assert reopened.builds == 0
    reopened.close()


def test_damaged_sidecar_or_index_means_rebuild(tmp_path: Path, catalog: Catalog) -> None:
    vectors = _vectors(5)
    _fill(catalog, vectors)
    VectorIndex(tmp_path, catalog).ensure_current()
    (tmp_path / SIDECAR_FILENAME).write_text("{not json")
    index = VectorIndex(tmp_path, catalog)
    assert index.ensure_current()
    index.close()
    (tmp_path / INDEX_FILENAME).write_bytes(b"")
    index = VectorIndex(tmp_path, catalog)
    assert len(index.search(vectors[0], 5)) == 5
    assert index.builds == 1
    index.close()


def test_empty_catalog(tmp_path: Path, catalog: Catalog) -> None:
    index = VectorIndex(tmp_path, catalog)
    assert index.search(_vectors(1)[0], 5) == []
    assert not (tmp_path / INDEX_FILENAME).exists()
    _fill(catalog, _vectors(2))
    assert len(index.search(_vectors(1)[0], 5)) == 2
    catalog.delete_photos([record.id for record in catalog.records()])
    assert index.search(_vectors(1)[0], 5) == []
    index.close()

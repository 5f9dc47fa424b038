"""Learning is one transaction: the head and the vectors it produced change
together or not at all (devise_app/engine/labels.py), also against an index run
going on at the same time.

The real CLI learns and is SIGKILLed at each of learning's crash points
(DEVISE_APP_CRASH_AT); afterwards every stored vector must be the projection of
the head the library then uses, searches by label must work, and a second
``learn`` must finish. The concurrent case interleaves a real index run and a
real learn in one process at a chosen moment (between two batches).
"""

from __future__ import annotations

import signal
import sys
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reliability_support import distinct_photos, run_cli

from devise_app.engine import labels
from devise_app.engine.learning import LearnedHead
from devise_app.engine.search import Library

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
VECTOR_TOLERANCE = 3e-4


def _assert_consistent(library_dir: Path, encoder: Any, vocabulary: Any) -> LearnedHead | None:
    """Every stored vector comes from the head the library uses; returns that head."""
    with Library(library_dir, encoder=encoder, vocabulary=vocabulary, create=False) as library:
        assert library.search("Zorblax", top=3), "a label search works"
        catalog = library.catalog
        assert not (library_dir / labels.NEXT_HEAD_FILE).exists(), "settled: no half-made head left"
        learned = LearnedHead.load(labels.head_path(library_dir))
        assert labels.stored_fingerprint(catalog) == labels.head_fingerprint(library_dir)
        assert catalog.vector_heads() == {labels.head_fingerprint(library_dir): library.photo_count()}
        ids, features = catalog.features()
        _, vectors = catalog.vectors()
        expected = learned.head.project(features) if learned else encoder.project(features)
        # float16 features move a vector by under 1e-4; learning one label moves some by 1e-3
        error = np.abs(expected - vectors).max(axis=1)
        assert error.max() < VECTOR_TOLERANCE, (
            f"{int((error >= VECTOR_TOLERANCE).sum())} of {len(ids)} vectors of another head"
        )
        assert [name for name, count in library.labels() if count] == ["Zorblax"]
        return learned


@pytest.fixture
def labelled_library(tmp_path: Path) -> Path:
    photos = distinct_photos(tmp_path / "photos", 14)
    library = tmp_path / "library"
    assert run_cli("index", photos[0].parent, "--library", library).returncode == 0
    assert run_cli("label", "add", "Zorblax", *photos[:3], "--library", library).returncode == 0
    return library


@pytest.mark.parametrize("point", ["learn-head-written", "learn-committed"])
def test_a_learn_killed_at_any_point_leaves_head_and_vectors_together(
    labelled_library: Path, point: str, encoder: Any, vocabulary: Any
) -> None:
    killed = run_cli("learn", "--library", labelled_library, env={"DEVISE_APP_CRASH_AT": point})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    learned = _assert_consistent(labelled_library, encoder, vocabulary)
    # before the commit nothing changed; after it, the new head is the one in use
    assert (learned is not None) == (point == "learn-committed")
    finished = run_cli("learn", "--library", labelled_library)
    assert finished.returncode == 0, finished.stderr
    assert _assert_consistent(labelled_library, encoder, vocabulary) is not None


@pytest.mark.parametrize(
    ("point", "said"),
    [
        ("learn-head-written", "interrupted; the library is unchanged"),
        ("learn-committed", "interrupted after learning; the labels are learned"),
    ],
)
def test_ctrl_c_during_a_learn_says_truly_what_happened(
    labelled_library: Path, point: str, said: str, encoder: Any, vocabulary: Any
) -> None:
    """Issue 12: Ctrl+C at the moment the new head was written said "the library is
    unchanged", which was false. The interrupt is a real SIGINT at that moment."""
    env = {"DEVISE_APP_CRASH_AT": point, "DEVISE_APP_CRASH_SIGNAL": "INT"}
    interrupted = run_cli("learn", "--library", labelled_library, env=env)
    assert interrupted.returncode == 130, interrupted.stderr
    assert interrupted.stderr.strip().splitlines()[-1] == f"devise-app: {said}"
    learned = _assert_consistent(labelled_library, encoder, vocabulary)
    assert (learned is not None) == (point == "learn-committed")


def test_an_index_run_during_a_learn_stores_the_new_heads_vectors(
    tmp_path: Path, encoder: Any, vocabulary: Any
) -> None:
    photos = distinct_photos(tmp_path / "photos", 6)
    library_dir = tmp_path / "library"
    with Library(library_dir, encoder=encoder, vocabulary=vocabulary) as library:
        deque(library.index([photos[0].parent]), maxlen=1)
        library.add_label("Zorblax", photos[:3])
        distinct_photos(tmp_path / "photos", 40, start=6)  # work for a second run
        run = library.index([photos[0].parent], batch_size=8)
        assert next(p for p in run if p.indexed >= 8)  # stopped between two committed batches
        with Library(library_dir, encoder=encoder, vocabulary=vocabulary) as other:  # "another process"
            deque(other.learn(), maxlen=1)
        last = deque(run, maxlen=1)[0]
        assert last.summary is not None and last.summary.indexed == 40
    learned = _assert_consistent(library_dir, encoder, vocabulary)
    assert learned is not None
    with Library(library_dir, encoder=encoder, vocabulary=vocabulary) as library:
        _, features = library.catalog.features()
    moved = np.abs(learned.head.project(features) - encoder.project(features)).max(axis=1)
    assert (moved > 3 * VECTOR_TOLERANCE).any(), "the check must see the difference between the heads"


def test_vectors_a_writer_could_not_head_are_recorded_and_repaired(
    labelled_library: Path, encoder: Any, vocabulary: Any
) -> None:
    """Each vector names its head; one stored by a writer that could not tell which
    head made it (its head file gone at that moment), or by another head, is
    re-projected by the next run, and the library's own check says all is well."""
    assert run_cli("learn", "--library", labelled_library).returncode == 0
    with Library(labelled_library, encoder=encoder, vocabulary=vocabulary) as library:
        catalog = library.catalog
        ids, _ = catalog.vectors()
        wrong = np.ones((2, encoder.dim), np.float32) / np.sqrt(encoder.dim)
        catalog.set_vectors(ids[:1], wrong[:1], head=labels.UNKNOWN_HEAD)
        catalog.set_vectors(ids[1:2], wrong[1:], head=labels.SHIPPED_HEAD)
        assert catalog.vector_heads()[labels.UNKNOWN_HEAD] == 1
    with Library(labelled_library, encoder=encoder, vocabulary=vocabulary) as library:
        assert labels.reconcile(library.catalog, labelled_library, library.shipped_projection) == 2
        assert labels.reconcile(library.catalog, labelled_library, library.shipped_projection) == 0
    _assert_consistent(labelled_library, encoder, vocabulary)


@pytest.mark.parametrize("damage", ["truncated", "wrong shape"])
def test_a_damaged_learned_head_is_set_aside_and_searches_answer(
    labelled_library: Path, damage: str, encoder: Any, vocabulary: Any
) -> None:
    assert run_cli("learn", "--library", labelled_library).returncode == 0
    head = labels.head_path(labelled_library)
    if damage == "truncated":
        head.write_bytes(head.read_bytes()[:1000])
    else:
        with np.load(head) as data:
            arrays = {key: data[key] for key in data.files}
        arrays["label_vectors"] = arrays["label_vectors"][:, :7]
        arrays["codes"] = arrays["codes"][:, :3]
        np.savez(head, **arrays)
    for command in (["search", "Zorblax"], ["search", "cat"]):
        done = run_cli(*command, "--library", labelled_library)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert (labelled_library / "learned_head.damaged.npz").exists()
    assert run_cli("index", labelled_library.parent / "photos", "--library", labelled_library).returncode == 0
    _assert_consistent(labelled_library, encoder, vocabulary)  # back on the shipped head, consistently

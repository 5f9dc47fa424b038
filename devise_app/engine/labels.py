"""A library's labels as teachers: its own learned head, kept in step with the catalog.

The library folder may hold ``learned_head.npz`` (devise_app.engine.learning). Every
stored vector must come from the head in use, and the catalog says which one
that is: the fingerprint of the head (meta key ``head``), written in the same
transaction that re-projects the vectors. Learning changes the two together or
not at all:

1. the new head is written beside the old one, as ``learned_head.next.npz``;
2. one catalog transaction re-projects every stored vector with it and records
   its fingerprint (the commit is the moment the library changes);
3. the new head is renamed over the old one.

A crash, a full disk or a read-only catalog before the commit leaves the old
head, the old vectors and a stray next file, which ``settle_head`` removes; a
crash after it leaves the new vectors and a next file whose fingerprint the
catalog names, which ``settle_head`` renames into place. Every reader settles
first, under the same lock as learning.

Each stored vector also names the head that made it (the catalog's ``head``
column). An index run makes each batch's vectors inside the batch's transaction
with the head in use at that moment (``current_head``), so a learn committing
during the run cannot leave vectors of the old head behind; and ``reconcile``
(at the start of every index run, and in ``devise-app check --repair``)
re-projects any vector that the head in use did not make.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np

from devise_app.engine import config
from devise_app.engine.catalog import FEATURE_DTYPE, SHIPPED_HEAD, UNKNOWN_HEAD, Catalog
from devise_app.engine.faults import crash_point
from devise_app.engine.indexer import HeadedVectors
from devise_app.engine.learning import HEAD_FILE, LearnedHead, LearnProgress, learn
from devise_app.engine.model import Embedding, ImageEncoder
from devise_app.engine.vocabulary import Vocabulary

log = logging.getLogger("devise_app.labels")

HEAD_META_KEY = "head"
LABELS_FORMAT = "devise-app labels"
NEXT_HEAD_FILE = "learned_head.next.npz"
LEARN_LOCK_FILE = "learn.lock"


def head_path(library_dir: Path) -> Path:
    return library_dir / HEAD_FILE


def _file_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def head_fingerprint(library_dir: Path) -> str:
    path = head_path(library_dir)
    return _file_fingerprint(path) if path.exists() else SHIPPED_HEAD


def stored_fingerprint(catalog: Catalog) -> str:
    """The head the catalog's vectors come from."""
    return catalog.get_meta(HEAD_META_KEY) or SHIPPED_HEAD


@contextlib.contextmanager
def learn_lock(library_dir: Path) -> Iterator[None]:
    """Held while a head changes and while one is settled (POSIX advisory lock)."""
    try:
        import fcntl
    except ImportError:  # Windows: the head change is still ordered, only not locked
        yield
        return
    with (library_dir / LEARN_LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def settle_head(catalog: Catalog, library_dir: Path) -> None:
    """Finish or undo a head change that a crash interrupted (see the module docstring)."""
    pending = library_dir / NEXT_HEAD_FILE
    if not pending.exists():
        return
    with learn_lock(library_dir):
        if not pending.exists():
            return
        try:
            committed = _file_fingerprint(pending) == stored_fingerprint(catalog)
        except OSError:
            committed = False
        if committed:
            os.replace(pending, head_path(library_dir))
        else:
            pending.unlink(missing_ok=True)


class HeadedEncoder:
    """An encoder whose vectors come from a library's learned head (the CNN is shared)."""

    def __init__(self, inner: ImageEncoder, head: LearnedHead):
        self.inner = inner
        self.learned = head

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed(self, batch: np.ndarray) -> Embedding:
        embedding = self.inner.embed(batch)
        return Embedding(self.learned.head.project(embedding.features), embedding.features, embedding.logits)

    def project(self, features: np.ndarray) -> np.ndarray:
        return self.learned.head.project(features)


def with_head(encoder: ImageEncoder, head: LearnedHead) -> ImageEncoder:
    return cast(ImageEncoder, HeadedEncoder(encoder, head))


Projection = Callable[[np.ndarray], np.ndarray]


def reproject(catalog: Catalog, project: Projection, fingerprint: str) -> int:
    """Make every stored vector that another head made with head ``fingerprint``,
    from its stored features, and name it the head in use, in one transaction (read
    inside it, so no photo stored meanwhile by another process is missed). The
    number of vectors re-computed."""
    with catalog.transaction():
        ids = catalog.ids_not_from_head(fingerprint)
        if ids:
            ids_array, features = catalog.features(ids)
            catalog.set_vectors(ids_array, project(features), head=fingerprint)
        catalog.set_meta(HEAD_META_KEY, fingerprint)
    return len(ids)


def current_head(catalog: Catalog, library_dir: Path, shipped: Callable[[], Projection]) -> HeadedVectors:
    """For an index run: given a batch's features inside its transaction, the head in
    use at that moment and the batch's vectors made by it, so every stored vector
    names the head that made it, also when a learn commits during the run. (The
    features are rounded as the catalog stores them: a copy of a photo, or a later
    re-projection, gets the very same vector.) ``shipped`` gives the model's own
    head's projection, asked for only when it is the one in use."""
    heads: dict[str, Projection] = {}

    def projector(fingerprint: str) -> Projection | None:
        if fingerprint not in heads:
            if fingerprint == SHIPPED_HEAD:
                heads[fingerprint] = shipped()
            for path in (library_dir / NEXT_HEAD_FILE, head_path(library_dir)):  # next: until renamed
                if fingerprint not in heads and path.exists() and _file_fingerprint(path) == fingerprint:
                    learned = LearnedHead.load(path)
                    if learned is not None:
                        heads[fingerprint] = learned.head.project
        return heads.get(fingerprint)

    def vectors(features: np.ndarray) -> tuple[str, np.ndarray]:
        fingerprint = stored_fingerprint(catalog)
        project = projector(fingerprint)
        if project is None:  # its file is gone: the stored vectors say so, and reconcile repairs
            fingerprint, project = UNKNOWN_HEAD, shipped()
        stored = np.asarray(features).astype(FEATURE_DTYPE).astype(np.float32)
        return fingerprint, project(stored)

    return vectors


def _check_shape(learned: LearnedHead, path: Path) -> None:
    """ValueError unless the head makes vectors of the shipped model's size."""
    from devise_app.engine.model import read_manifest

    dim = int(read_manifest(config.models_dir())["dim"])
    head = learned.head
    head.check(path, head.fc_weight.shape[1], dim)
    if learned.label_vectors.shape != (len(learned.label_names), dim):
        raise ValueError(
            f"label vectors of shape {learned.label_vectors.shape}, not ({len(learned.label_names)}, {dim})"
        )


def load_learned(library_dir: Path) -> LearnedHead | None:
    """The library's learned head, if it has one. A damaged or wrong-shape file (it
    made every search end in a traceback) is renamed aside, logged, and the library
    goes on with the shipped head: its labels stay, and ``learn`` makes a new one."""
    path = head_path(library_dir)
    try:
        learned = LearnedHead.load(path)
        if learned is not None:
            _check_shape(learned, path)
        return learned
    except Exception as exc:  # numpy and zipfile raise many kinds for a damaged .npz
        aside = path.with_name("learned_head.damaged.npz")
        log.warning("learned head %s is damaged (%s): set aside as %s", path, exc, aside.name)
        with contextlib.suppress(OSError):  # read-only folder: it stays, and is tried again
            os.replace(path, aside)
        return None


def reconcile(catalog: Catalog, library_dir: Path, shipped: Callable[[], Projection]) -> int:
    """Re-project the stored vectors that the head in use did not make (a learn that a
    crash interrupted, a damaged head set aside, a vector stored by a writer that
    could not know the head); the number re-projected. Reads only an index of the
    catalog when all is well. ``shipped`` gives the model's own head's projection,
    asked for only to go back to it."""
    settle_head(catalog, library_dir)
    fingerprint = head_fingerprint(library_dir)
    if catalog.vector_heads().keys() <= {fingerprint} and stored_fingerprint(catalog) == fingerprint:
        return 0
    learned = load_learned(library_dir)
    fingerprint = head_fingerprint(library_dir)  # "shipped" if a damaged head was set aside
    count = reproject(catalog, learned.head.project if learned else shipped(), fingerprint)
    if count:
        log.warning("%d stored vectors were not made by the head in use: re-projected", count)
    return count


def labelled_features(catalog: Catalog) -> dict[str, np.ndarray]:
    """Label name -> stored CNN features of its indexed photos (labels without photos left out)."""
    result = {}
    for name, count in catalog.labels():
        label_id = catalog.label_id(name)
        if not count or label_id is None:
            continue
        _, features = catalog.features(photo_id for photo_id, _ in catalog.photos_with_labels([label_id]))
        if len(features):
            result[name] = features
    return result


def learn_library(
    catalog: Catalog,
    library_dir: Path,
    encoder: ImageEncoder,
    vocabulary: Vocabulary,
    labelled: Mapping[str, np.ndarray],
    cancel: threading.Event | None = None,
) -> Generator[LearnProgress, None, None]:
    """Learn the library's head from ``labelled`` (see labelled_features), save it,
    re-project every photo.

    Yields progress; a cancel (the event, or closing the generator) before the
    end leaves the library exactly as it was.
    """
    result: LearnedHead | None = None
    for progress in learn(encoder.head, labelled, vocabulary):
        if cancel is not None and cancel.is_set():
            return
        if progress.finished:
            result = progress.result
            break
        yield progress
    assert result is not None
    commit_head(catalog, library_dir, result)
    yield LearnProgress(progress.steps, progress.steps, progress.loss, finished=True, result=result)


def commit_head(catalog: Catalog, library_dir: Path, result: LearnedHead) -> None:
    """Put a new head in use with the vectors it makes, together or not at all."""
    settle_head(catalog, library_dir)
    pending = library_dir / NEXT_HEAD_FILE
    with learn_lock(library_dir):
        committed = False
        try:
            result.save(pending)
            crash_point("learn-head-written")
            reproject(catalog, result.head.project, _file_fingerprint(pending))
            committed = True
            crash_point("learn-committed")
            os.replace(pending, head_path(library_dir))
        finally:
            if not committed:
                pending.unlink(missing_ok=True)


def export_labels(catalog: Catalog) -> dict[str, Any]:
    """Labels and the paths of their photos, as a JSON-ready document."""
    labels = {}
    for name, _ in catalog.labels():
        label_id = catalog.label_id(name)
        labels[name] = sorted(path for _, path in catalog.photos_with_labels([label_id] if label_id else []))
    return {"format": LABELS_FORMAT, "version": 1, "labels": labels}


def parse_labels(text: str | bytes) -> Mapping[str, list[str]]:
    """The labels of an exported document, as text or as the file's bytes (UTF-8, or
    UTF-16/32 with their byte-order mark, as JSON allows); ValueError says what is wrong."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a labels file: {exc}") from None
    except UnicodeDecodeError:
        raise ValueError("not a labels file: it is not UTF-8 (or UTF-16/32) text") from None
    except RecursionError:
        raise ValueError("not a labels file: it is nested too deeply") from None
    if not isinstance(document, dict) or document.get("format") != LABELS_FORMAT:
        raise ValueError(f'not a labels file (expected "format": "{LABELS_FORMAT}")')
    labels = document.get("labels")
    if not isinstance(labels, dict) or not all(
        isinstance(paths, list) and all(isinstance(p, str) for p in paths) for paths in labels.values()
    ):
        raise ValueError("a labels file maps each label name to a list of photo paths")
    return labels

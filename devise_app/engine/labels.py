"""A library's labels as teachers: its own learned head, kept in step with the catalog.

The library folder may hold ``learned_head.npz`` (devise_app.engine.learning). Every
stored vector must come from the head in use, so the catalog records the
fingerprint of that head (meta key ``head``) in the same transaction that
re-projects the vectors. After a crash between writing a new head and
re-projecting, the fingerprints differ and ``reconcile`` re-projects again:
the library never mixes vectors of two heads for long, and loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np

from devise_app.engine.catalog import Catalog
from devise_app.engine.learning import HEAD_FILE, LearnedHead, LearnProgress, learn
from devise_app.engine.model import Embedding, ImageEncoder
from devise_app.engine.vocabulary import Vocabulary

SHIPPED_HEAD = "shipped"
HEAD_META_KEY = "head"
LABELS_FORMAT = "devise-app labels"


def head_path(library_dir: Path) -> Path:
    return library_dir / HEAD_FILE


def head_fingerprint(library_dir: Path) -> str:
    path = head_path(library_dir)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.exists() else SHIPPED_HEAD


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


def reproject(catalog: Catalog, project: Any, fingerprint: str) -> None:
    """Re-compute every stored vector from its stored features, in one transaction."""
    ids, features = catalog.features()
    with catalog.transaction():
        if len(ids):
            catalog.set_vectors(ids, project(features))
        catalog.set_meta(HEAD_META_KEY, fingerprint)


def reconcile(catalog: Catalog, library_dir: Path, get_encoder: Callable[[], ImageEncoder]) -> bool:
    """Re-project when the stored vectors do not come from the head in use; True if it did.
    ``get_encoder`` is called only to go back to the shipped head (the model loads slowly)."""
    fingerprint = head_fingerprint(library_dir)
    if (catalog.get_meta(HEAD_META_KEY) or SHIPPED_HEAD) == fingerprint:
        return False
    learned = LearnedHead.load(head_path(library_dir))
    reproject(catalog, learned.head.project if learned else get_encoder().project, fingerprint)
    return True


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
    result.save(head_path(library_dir))
    reproject(catalog, result.head.project, head_fingerprint(library_dir))
    yield LearnProgress(progress.steps, progress.steps, progress.loss, finished=True, result=result)


def export_labels(catalog: Catalog) -> dict[str, Any]:
    """Labels and the paths of their photos, as a JSON-ready document."""
    labels = {}
    for name, _ in catalog.labels():
        label_id = catalog.label_id(name)
        labels[name] = sorted(path for _, path in catalog.photos_with_labels([label_id] if label_id else []))
    return {"format": LABELS_FORMAT, "version": 1, "labels": labels}


def parse_labels(text: str) -> Mapping[str, list[str]]:
    """The labels of an exported document; ValueError says what is wrong."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a labels file: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != LABELS_FORMAT:
        raise ValueError(f'not a labels file (expected "format": "{LABELS_FORMAT}")')
    labels = document.get("labels")
    if not isinstance(labels, dict) or not all(
        isinstance(paths, list) and all(isinstance(p, str) for p in paths) for paths in labels.values()
    ):
        raise ValueError("a labels file maps each label name to a list of photo paths")
    return labels

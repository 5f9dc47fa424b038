"""Write models/vocabulary.npz: GloVe words (int8, one scale per row) and the
1000 class labels (their full visual-semantic vectors, names and aliases)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from devise_app.training.labels import ImageNetClass, LabelSpace, WordSpace
from devise_app.training.wordnet import Synset, wnid_offset


def quantise_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = np.abs(vectors).max(axis=1, keepdims=True) / 127.0
    scale = np.maximum(scale, 1e-12)
    return np.round(vectors / scale).astype(np.int8), scale[:, 0].astype(np.float32)


def _text(lines: list[str]) -> np.ndarray:
    for line in lines:
        if "\n" in line:
            raise ValueError(f"entry with a newline: {line!r}")
    return np.frombuffer("\n".join(lines).encode("utf-8"), dtype=np.uint8)


def class_aliases(classes: list[ImageNetClass], synsets: dict[int, Synset], names: list[str]) -> list[str]:
    """Other WordNet lemma names of each class ("tabby cat" -> tabby), when unambiguous."""
    taken = {n.lower() for n in names}
    candidates: list[tuple[str, int]] = []
    for c in classes:
        for lemma in synsets[wnid_offset(c.wnid)].lemmas:
            if lemma.lower() not in taken:
                candidates.append((lemma.lower(), c.index))
    counts = Counter(alias for alias, _ in candidates)
    return [f"{alias}\t{index}" for alias, index in dict.fromkeys(candidates) if counts[alias] == 1]


def write_vocabulary(
    path: Path,
    space: WordSpace,
    size: int,
    labels: LabelSpace,
    classes: list[ImageNetClass],
    synsets: dict[int, Synset],
    class_vectors: np.ndarray,
) -> None:
    words = [w for w in space.words[:size] if w.isprintable() and w.strip() == w and w]
    rows = [space.rank[w] for w in words]
    quantised, scale = quantise_rows(space.unit[rows])
    np.savez_compressed(
        path,
        words=_text(words),
        word_vectors=quantised,
        word_scale=scale,
        class_names=_text(labels.names),
        class_wnids=_text([c.wnid for c in classes]),
        class_aliases=_text(class_aliases(classes, synsets, labels.names)),
        class_vectors=class_vectors.astype(np.float32),
    )

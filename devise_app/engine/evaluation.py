"""Retrieval metrics shared by the model build and ``devise-app bench quality``.

All inputs are unit-norm row vectors, so a dot product is a cosine. ``unit_rows`` and
``softmax`` come from ``devise_app.engine.vectors`` (imported from here too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from devise_app.engine.vectors import softmax, unit_rows

HIT_KS = (1, 2, 5, 10, 20)


def true_label_ranks(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of each row's true label among its scores (ties count against)."""
    true_scores = scores[np.arange(len(labels)), labels]
    return (scores > true_scores[:, None]).sum(axis=1) + ((scores == true_scores[:, None]).sum(axis=1) - 1)


def flat_hits(scores: np.ndarray, labels: np.ndarray, ks: Sequence[int] = HIT_KS) -> dict[int, float]:
    """Photo -> label: share of photos whose true label is among the k best."""
    ranks = true_label_ranks(scores, labels)
    return {k: float((ranks < k).mean()) for k in ks}


def text_to_photo(
    query_vectors: np.ndarray, photo_vectors: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """Class name -> photos: R@1, R@10 and MRR of the first photo of the queried class.

    ``query_vectors[c]`` is class c's query; classes without a photo are skipped.
    """
    return name_retrieval(query_vectors @ photo_vectors.T, labels)


def name_retrieval(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``text_to_photo`` from a score matrix: ``scores[c]`` ranks the photos for class c's query."""
    classes = np.unique(labels)
    scores = scores[classes]  # (classes, photos)
    relevant = labels[None, :] == classes[:, None]
    best_relevant = np.where(relevant, scores, -np.inf).max(axis=1)
    first_rank = (scores > best_relevant[:, None]).sum(axis=1)
    return {
        "R@1": float((first_rank < 1).mean()),
        "R@10": float((first_rank < 10).mean()),
        "MRR": float((1.0 / (first_rank + 1)).mean()),
    }


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = relevant[order]
    if not hits.any():
        return 0.0
    precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hit.mean())


def hypernym_map(
    word_vectors: np.ndarray, members: Sequence[np.ndarray], photo_vectors: np.ndarray, labels: np.ndarray
) -> float:
    """Mean average precision of hypernym words ("dog", "vehicle") over photos,
    a photo being relevant when its class lies below the hypernym."""
    return hypernym_map_of_scores(word_vectors @ photo_vectors.T, members, labels)


def hypernym_map_of_scores(scores: np.ndarray, members: Sequence[np.ndarray], labels: np.ndarray) -> float:
    """``hypernym_map`` from a score matrix: ``scores[i]`` ranks the photos for hypernym i."""
    aps = [
        average_precision(row, np.isin(labels, classes)) for row, classes in zip(scores, members, strict=True)
    ]
    return float(np.mean(aps)) if aps else float("nan")


def conse(logits: np.ndarray, label_vectors: np.ndarray, top: int = 10) -> np.ndarray:
    """ConSE (Norouzi et al. 2014): probability-weighted mean of the top-T label vectors."""
    probs = softmax(logits)
    cutoff = np.sort(probs, axis=1)[:, -top][:, None]
    weights = np.where(probs >= cutoff, probs, 0.0)
    return unit_rows(weights @ label_vectors)

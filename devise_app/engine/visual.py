"""What a label's photos share in how they look, for ranking the rest by it.

A label such as "Grandma" or "our red bike" names something no word vector
holds: the only evidence is its photos. Their word-space vectors pass through
the 1000 ImageNet classes and lose most of what makes an everyday photo itself
(a kitchen, a street, a face). The CNN's pooled features keep it. They are
projected onto the directions the classifier itself separates classes along
(the top right singular vectors of its centred weight matrix, so no photo is
needed to choose them), unit-normed, and a label's visual prototype is the mean
of its photos' projections.

Measured on the COCO development sample (../shared/datasets/coco-sample; 31
categories of 15-150 photos, 5 photos labelled per category, three seeds), the
mean AP of ranking the other photos: word-space prototype 0.355, visual
prototype 0.398 at 128 dimensions (0.386 at 64, 0.397 at 256), the two mixed
half and half 0.401. Those figures chose ``VISUAL_DIM`` and ``VISUAL_SHARE``;
nothing was trained on the photos.

With the MiniLM model, end to end through ``devise-app bench learn`` (k = 5), the
share trades the two benchmarks against each other: 0 gives ImageNet concepts
0.582 -> 0.687 and COCO categories 0.376 -> 0.283 (worse than typing the word);
0.25 gives 0.686 and 0.382; 0.5 gives 0.635 and 0.412. Everyday labels are what
people make, so the share is 0.5.
"""

from __future__ import annotations

import functools

import numpy as np

from devise_app.engine.vectors import unit_rows

VISUAL_DIM = 128
VISUAL_SHARE = 0.5  # of a label search's score; the rest is the label vector's cosine


@functools.lru_cache(maxsize=4)
def _basis(weight_bytes: bytes, shape: tuple[int, int], dims: int) -> np.ndarray:
    weight = np.frombuffer(weight_bytes, dtype=np.float32).reshape(shape).astype(np.float64)
    _, _, right = np.linalg.svd(weight - weight.mean(axis=0), full_matrices=False)
    return np.ascontiguousarray(right[:dims].T, dtype=np.float32)  # (features, dims)


def visual_basis(classifier_weight: np.ndarray, dims: int = VISUAL_DIM) -> np.ndarray:
    """(feature_dim, dims): the classifier's main directions (computed once per weight)."""
    weight = np.ascontiguousarray(classifier_weight, dtype=np.float32)
    return _basis(weight.tobytes(), (int(weight.shape[0]), int(weight.shape[1])), dims)


def visual_rows(features: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Pooled CNN features -> unit rows in the visual space."""
    return unit_rows(np.asarray(features, dtype=np.float32) @ basis)


def visual_scores(labelled: np.ndarray, candidates: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Cosine of each candidate's features to the prototype of the labelled photos' features."""
    if not len(labelled) or not len(candidates):
        return np.zeros(len(candidates), dtype=np.float32)
    prototype = unit_rows(visual_rows(labelled, basis).mean(axis=0))
    return visual_rows(candidates, basis) @ prototype

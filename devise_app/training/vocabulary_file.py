"""Write models/vocabulary.npz (format 2): the known words, the describe words with
their vectors in the word space (int8, one scale per row), the 1000 class labels
(full visual-semantic vectors, names, WordNet ids, aliases), the WordNet concepts
with the classes below them, the class names that typed mean a word's usual sense,
the words for people with the classes that show people (what they wear), the
classes whose definitions name a word for people or a noun with no class
("kitchen": microwave), the nouns of several words with no classes, and the
projection from the text encoder's space."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from devise_app.training.labels import ImageNetClass
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


def class_aliases(
    classes: list[ImageNetClass], synsets: dict[int, Synset], names: list[str]
) -> dict[str, int]:
    """Other WordNet lemma names of each class ("tabby" -> tabby cat's index), when unambiguous."""
    taken = {n.lower() for n in names}
    candidates: list[tuple[str, int]] = []
    for c in classes:
        for lemma in synsets[wnid_offset(c.wnid)].lemmas:
            if lemma.lower() not in taken:
                candidates.append((lemma.lower(), c.index))
    counts = Counter(alias for alias, _ in candidates)
    return {alias: index for alias, index in dict.fromkeys(candidates) if counts[alias] == 1}


def write_vocabulary(
    path: Path,
    *,
    known: list[str],
    words: list[str],
    word_vectors: np.ndarray,
    names: list[str],
    classes: list[ImageNetClass],
    aliases: dict[str, int],
    class_vectors: np.ndarray,
    concepts: dict[str, list[int]],
    usual_sense_names: list[str],
    people_words: list[str],
    people_classes: list[int],
    compound_nouns: list[str],
    mentioning_classes: dict[str, list[int]],
    verb_nouns: list[str],
    definition_words: list[str],
    text_mean: np.ndarray,
    text_projection: np.ndarray,
) -> None:
    quantised, scale = quantise_rows(word_vectors)
    np.savez_compressed(
        path,
        known_words=_text(known),
        words=_text(words),
        word_vectors=quantised,
        word_scale=scale,
        class_names=_text(names),
        class_wnids=_text([c.wnid for c in classes]),
        class_aliases=_text([f"{alias}\t{index}" for alias, index in aliases.items()]),
        class_vectors=class_vectors.astype(np.float32),
        concepts=_text([f"{word}\t{' '.join(map(str, members))}" for word, members in concepts.items()]),
        usual_sense_names=_text(usual_sense_names),
        people_words=_text(people_words),
        people_classes=np.array(people_classes, dtype=np.int32),
        compound_nouns=_text(compound_nouns),
        mentioning_classes=_text(
            [f"{word}\t{' '.join(map(str, found))}" for word, found in mentioning_classes.items()]
        ),
        verb_nouns=_text(verb_nouns),
        class_definition_words=_text(definition_words),
        text_mean=text_mean.astype(np.float32),
        text_projection=text_projection.astype(np.float32),
    )

"""The 1000 ImageNet classes, their display names and the hypernym query set.

Class names come from ``imagenet_classes.tsv``; the three pairs of classes that
share a name ("crane" the bird and the machine) are told apart by a WordNet hint.
GloVe 6B's word list (only its frequency order: its vectors are no longer used)
chooses the hypernym queries, as in MODEL_NOTES. The label vectors themselves are
made by the text encoder (text_space.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib import resources

import numpy as np

from devise_app.training.wordnet import Synset, ancestors, wnid_offset


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str
    name: str


def load_classes() -> list[ImageNetClass]:
    text = resources.files("devise_app.training").joinpath("imagenet_classes.tsv").read_text()
    classes = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            index, wnid, name = line.split("\t")
            classes.append(ImageNetClass(int(index), wnid, name))
    return classes


class WordSpace:
    """GloVe words in frequency order (their ranks choose the hypernym queries)."""

    def __init__(self, words: list[str]):
        self.words = words
        self.rank = {w: i for i, w in enumerate(words)}


def unique_names(classes: list[ImageNetClass], synsets: dict[int, Synset]) -> list[str]:
    """Class names, with a WordNet hint added where two classes share one."""
    counts = Counter(c.name.lower() for c in classes)
    names = []
    for c in classes:
        if counts[c.name.lower()] == 1:
            names.append(c.name)
            continue
        synset = synsets[wnid_offset(c.wnid)]
        parent = synsets[synset.hypernyms[0]].lemmas[0] if synset.hypernyms else "thing"
        names.append(f"{c.name} ({parent})")
    return names


def classes_below(classes: list[ImageNetClass], synsets: dict[int, Synset]) -> dict[int, set[int]]:
    """Each synset with ImageNet classes at or below it -> those classes."""
    below: dict[int, set[int]] = {}
    for c in classes:
        offset = wnid_offset(c.wnid)
        for node in (offset, *ancestors(synsets, offset)):
            below.setdefault(node, set()).add(c.index)
    return below


def hypernym_queries(
    space: WordSpace, synsets: dict[int, Synset], below: dict[int, set[int]]
) -> tuple[list[str], list[np.ndarray]]:
    """One-word WordNet hypernyms with 5..300 of the classes below them (``below``,
    from ``classes_below``) whose word is among GloVe's 30k most frequent
    (MODEL_NOTES' protocol; synsets sharing a word are merged)."""
    members: dict[str, set[int]] = {}
    for ancestor, below_it in below.items():
        if not 5 <= len(below_it) <= 300:
            continue
        for lemma in synsets[ancestor].lemmas:
            word = lemma.lower()
            if word.isalpha() and space.rank.get(word, 1 << 30) < 30_000:
                members.setdefault(word, set()).update(below_it)
                break
    words = sorted(members)
    return words, [np.array(sorted(members[w])) for w in words]

"""Word vectors for the 1000 ImageNet classes and the hypernym query set.

Each class gets a vector built from WordNet: its own lemma names, its gloss and
its ancestors ("dog", "mammal", ...), all in GloVe space. Classes whose name has
no GloVe word (23 of them) still get a meaningful vector from the gloss and the
ancestors, and classes that share a name ("crane" the bird and the machine) are
told apart by their glosses and ancestors.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources

import numpy as np

from devise_app.engine.vectors import unit_rows
from devise_app.training.wordnet import Synset, ancestors, wnid_offset

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = frozenset(
    """a an the of and or in on at to for with by from as is are be that which who its it this
    their his her used usually especially often having has have any some such other not no
    very small large one two three into than more most also can may""".split()
)
GLOSS_VOCAB = 100_000  # gloss words rarer than this are mostly noise


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str
    name: str


@dataclass
class LabelSpace:
    names: list[str]  # unique display names, index order
    vectors: np.ndarray  # (1000, dim), unit rows
    hypernym_words: list[str]
    hypernym_members: list[np.ndarray]  # class indices below each hypernym word


def load_classes() -> list[ImageNetClass]:
    text = resources.files("devise_app.training").joinpath("imagenet_classes.tsv").read_text()
    classes = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            index, wnid, name = line.split("\t")
            classes.append(ImageNetClass(int(index), wnid, name))
    return classes


class WordSpace:
    """GloVe words and unit vectors, with phrase averaging."""

    def __init__(self, words: list[str], vectors: np.ndarray):
        self.words = words
        self.unit = unit_rows(vectors)
        self.rank = {w: i for i, w in enumerate(words)}

    def phrase(self, text: str, max_rank: int | None = None) -> np.ndarray | None:
        tokens = [
            t
            for t in TOKEN.findall(text.lower())
            if t in self.rank and (max_rank is None or self.rank[t] < max_rank)
        ]
        if not tokens:
            return None
        return unit_rows(self.unit[[self.rank[t] for t in tokens]].mean(axis=0))

    def gloss(self, text: str) -> np.ndarray | None:
        definition = text.split('"')[0]  # drop quoted usage examples
        words = [w for w in TOKEN.findall(definition.lower()) if w not in STOPWORDS]
        return self.phrase(" ".join(words), max_rank=GLOSS_VOCAB)


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


def class_vector(
    space: WordSpace,
    synsets: dict[int, Synset],
    offset: int,
    gloss_weight: float,
    ancestor_weight: float,
    decay: float,
) -> np.ndarray:
    synset = synsets[offset]
    parts: list[tuple[float, np.ndarray | None]] = []
    lemma_vectors = [v for v in (space.phrase(lemma) for lemma in synset.lemmas) if v is not None]
    if lemma_vectors:
        # the first lemma is the common name: count it twice
        parts.append((1.0, unit_rows(np.mean([lemma_vectors[0], *lemma_vectors], axis=0))))
    parts.append((gloss_weight, space.gloss(synset.gloss)))
    total = np.zeros(space.unit.shape[1], dtype=np.float64)
    weight_sum = 0.0
    for ancestor, depth in ancestors(synsets, offset).items():
        vector = space.phrase(synsets[ancestor].lemmas[0])
        if vector is not None:
            total += decay ** (depth - 1) * vector
            weight_sum += decay ** (depth - 1)
    if weight_sum:
        parts.append((ancestor_weight, unit_rows(total / weight_sum)))
    mix = sum(w * v for w, v in parts if v is not None)
    return unit_rows(np.asarray(mix, dtype=np.float32))


def hypernym_queries(
    space: WordSpace, synsets: dict[int, Synset], classes: list[ImageNetClass]
) -> tuple[list[str], list[np.ndarray]]:
    """One-word WordNet hypernyms with 5..300 of the classes below them whose word is
    among GloVe's 30k most frequent (MODEL_NOTES' protocol; synsets sharing a word
    are merged)."""
    below: dict[int, set[int]] = {}
    for c in classes:
        for ancestor in ancestors(synsets, wnid_offset(c.wnid)):
            below.setdefault(ancestor, set()).add(c.index)
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


def build_label_space(
    space: WordSpace,
    synsets: dict[int, Synset],
    classes: list[ImageNetClass],
    gloss_weight: float,
    ancestor_weight: float,
    decay: float,
) -> LabelSpace:
    vectors = np.stack(
        [
            class_vector(space, synsets, wnid_offset(c.wnid), gloss_weight, ancestor_weight, decay)
            for c in classes
        ]
    )
    words, members = hypernym_queries(space, synsets, classes)
    return LabelSpace(unique_names(classes, synsets), vectors, words, members)

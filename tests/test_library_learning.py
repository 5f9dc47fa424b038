"""Labels that teach, through the Library facade and the CLI (real model, SQLite, Annoy)."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage
from PIL import Image, ImageOps

from devise_app.engine import labels
from devise_app.engine.catalog import LibraryError
from devise_app.engine.imaging import load_model_input
from devise_app.engine.learning import LearnedHead, learn

SKIMAGE = Path(skimage.__file__).parent / "data"
CAT_VIEWS = ["cat-a.png", "cat-b.png", "cat-c.png", "cat-d.png"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Four views of the cat photo and five other photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    cat = Image.open(SKIMAGE / "chelsea.png").convert("RGB")
    w, h = cat.size
    views = [cat, cat.crop((0, 0, w * 3 // 4, h)), ImageOps.mirror(cat), cat.crop((w // 4, 0, w, h))]
    for name, view in zip(CAT_VIEWS, views, strict=True):
        view.save(folder / name)
    for name in ["coffee.png", "rocket.jpg", "motorcycle_left.png", "astronaut.png", "camera.png"]:
        Image.open(SKIMAGE / name).convert("RGB").save(folder / (Path(name).stem + ".png"))
    return folder


@pytest.fixture
def indexed(library: Any, folder: Path, run_index: Callable[..., Any]) -> Any:
    run_index(library, [folder])
    return library


def learn_all(library: Any) -> Any:
    last = deque(library.learn(), maxlen=1)[0]
    assert last.finished
    return last.result


def stored_vectors(library: Any) -> dict[str, np.ndarray]:
    ids, vectors = library.catalog.vectors()
    paths = library.catalog.paths_of(ids.tolist())
    return {Path(paths[int(i)]).name: v for i, v in zip(ids, vectors, strict=True)}


def test_an_invented_label_finds_unlabelled_photos_of_its_kind(indexed: Any, folder: Path) -> None:
    indexed.add_label("Zorblax", [folder / "cat-a.png", folder / "cat-b.png"])
    learn_all(indexed)
    hits = indexed.search("zorblax", top=4)
    assert {h.path.name for h in hits[:2]} == {"cat-a.png", "cat-b.png"}
    assert all(h.score == 1.0 for h in hits[:2])
    assert {h.path.name for h in hits[2:4]} == {"cat-c.png", "cat-d.png"}


def test_a_label_search_counts_the_photos_like_its_own_as_good_matches(indexed: Any, folder: Path) -> None:
    """The window shows a result's good matches: a label search showed only the
    labelled photos (1.0 each) once its other scores stopped being cosines, the
    cut-off being taken from the labelled photos' 1.0."""
    indexed.add_label("Zorblax", [folder / "cat-a.png", folder / "cat-b.png"])
    learn_all(indexed)
    result = indexed.find("Zorblax", top=10)
    good = {hit.path.name for hit in result.hits[: result.good]}
    assert {"cat-a.png", "cat-b.png", "cat-c.png", "cat-d.png"} <= good
    assert result.good < len(result.hits)  # the cut still leaves the unlike photos out


def test_labels_mix_into_word_arithmetic(indexed: Any, folder: Path) -> None:
    indexed.add_label("Grandma", [folder / "coffee.png"])
    before = indexed.search("label:Grandma + cup", top=1)  # the mean of its photos, before learning
    assert before[0].path.name == "coffee.png"
    learn_all(indexed)
    after = indexed.search("label:Grandma + cup", top=1)
    assert after[0].path.name == "coffee.png"
    assert [h.path.name for h in indexed.search("label:Grandma")] == ["coffee.png"]


def test_reprojection_matches_a_full_reembedding(indexed: Any, folder: Path, encoder: Any) -> None:
    indexed.add_label("pet", [folder / "cat-a.png"])
    result = learn_all(indexed)
    stored = stored_vectors(indexed)
    names = sorted(stored)
    fresh = encoder.embed(np.stack([load_model_input(folder / n) for n in names]))
    np.testing.assert_allclose(
        np.stack([stored[n] for n in names]), result.head.project(fresh.features), atol=2e-3
    )  # features are float16


def test_photos_indexed_after_learning_use_the_library_head(
    indexed: Any, folder: Path, tmp_path: Path, run_index: Callable[..., Any], encoder: Any
) -> None:
    indexed.add_label("pet", [folder / "cat-a.png"])
    result = learn_all(indexed)
    later = tmp_path / "later"
    later.mkdir()
    Image.open(SKIMAGE / "horse.png").convert("RGB").save(later / "horse.png")
    run_index(indexed, [later])
    features = encoder.embed(load_model_input(later / "horse.png")[None]).features
    expected = result.head.project(features.astype(np.float16).astype(np.float32))  # as stored
    np.testing.assert_allclose(stored_vectors(indexed)["horse.png"], expected[0], atol=1e-5)


def test_cancelled_learning_leaves_the_library_as_it_was(indexed: Any, folder: Path) -> None:
    indexed.add_label("pet", [folder / "cat-a.png"])
    before = stored_vectors(indexed)
    generation = indexed.catalog.generation()
    cancel = threading.Event()
    steps = indexed.learn(cancel)
    next(steps)
    cancel.set()
    assert list(steps) == []
    assert not labels.head_path(indexed.path).exists()
    assert indexed.catalog.generation() == generation
    after = stored_vectors(indexed)
    assert all(np.array_equal(before[n], after[n]) for n in before)


def test_a_crash_between_saving_the_head_and_reprojecting_is_repaired(
    indexed: Any, folder: Path, encoder: Any, vocabulary: Any, run_index: Callable[..., Any]
) -> None:
    # the state a kill leaves behind: a new head on disk, the vectors of the old one
    _, features = indexed.catalog.features()
    last = deque(learn(encoder.head, {"pet": features[:1]}, vocabulary, steps=30), maxlen=1)[0]
    last.result.save(labels.head_path(indexed.path))
    reopened = type(indexed)(indexed.path, encoder=encoder, vocabulary=vocabulary)
    run_index(reopened, [folder])
    expected = last.result.head.project(reopened.catalog.features()[1])
    np.testing.assert_allclose(reopened.catalog.vectors()[1], expected, atol=1e-5)
    reopened.close()


def test_learning_needs_labelled_photos(indexed: Any) -> None:
    with pytest.raises(LibraryError, match="label some photos first"):
        indexed.learn()


def test_describe_suggests_the_library_labels(indexed: Any, folder: Path) -> None:
    indexed.add_label("Grandma", [folder / "cat-a.png", folder / "cat-b.png"])
    learn_all(indexed)
    suggestions = [(s.text, s.is_label) for s in indexed.describe(folder / "cat-c.png", top=5)]
    assert ("Grandma", True) in suggestions


def test_saved_head_is_reloaded_by_a_new_library_object(
    indexed: Any, folder: Path, encoder: Any, vocabulary: Any
) -> None:
    indexed.add_label("Zorblax", [folder / "cat-a.png"])
    learn_all(indexed)
    reopened = type(indexed)(indexed.path, encoder=encoder, vocabulary=vocabulary)
    assert reopened.search("zorblax", top=1)[0].path.name == "cat-a.png"
    assert isinstance(LearnedHead.load(labels.head_path(indexed.path)), LearnedHead)
    reopened.close()


def test_cli_learn_and_label_export_import(
    indexed: Any, folder: Path, tmp_path: Path, shared_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from devise_app.cli import main

    library = str(indexed.path)
    indexed.close()
    assert main(["label", "add", "Zorblax", str(folder / "cat-a.png"), "--library", library]) == 0
    assert main(["learn", "--library", library, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == ["Zorblax"]
    export = tmp_path / "labels.json"
    assert main(["label", "export", str(export), "--library", library]) == 0
    document = json.loads(export.read_text())
    assert document["labels"] == {"Zorblax": [str(folder / "cat-a.png")]}
    assert main(["label", "remove", "Zorblax", str(folder / "cat-a.png"), "--library", library]) == 0
    assert main(["label", "import", str(export), "--library", library]) == 0
    assert "imported 1 label;" in capsys.readouterr().out
    assert main(["label", "list", "--json", "--library", library]) == 0
    assert json.loads(capsys.readouterr().out) == {"labels": [{"name": "Zorblax", "photos": 1}]}
    export.write_text("{not json")
    assert main(["label", "import", str(export), "--library", library]) == 1
    assert "not a labels file" in capsys.readouterr().err


def test_describe_leaves_out_labels_that_do_not_fit(indexed: Any, folder: Path) -> None:
    indexed.add_label("Grandma", [folder / "cat-a.png", folder / "cat-b.png"])
    learn_all(indexed)
    assert not any(s.is_label for s in indexed.describe(folder / "coffee.png", top=10))


def test_the_visual_prototype_is_centred_on_the_photos_compared() -> None:
    """CL2N: what every photo shares (here a large common component, as ReLU6 features
    all point one way) is taken out before the cosine, so a candidate sharing the
    labelled photos' own direction ranks first, and one that only shares the common
    part does not score near 1."""
    from devise_app.engine.visual import visual_scores

    rng = np.random.default_rng(0)
    common = np.full(64, 3.0)
    own, other = np.eye(64)[0], np.eye(64)[1]
    labelled = np.stack([common + own + 0.1 * rng.standard_normal(64) for _ in range(3)])
    candidates = np.stack(
        [common + own + 0.1 * rng.standard_normal(64)]
        + [common + other + 0.1 * rng.standard_normal(64) for _ in range(5)]
        + [common + 0.1 * rng.standard_normal(64) for _ in range(5)]
    )
    scores = visual_scores(labelled, candidates)
    assert scores.shape == (11,) and scores.dtype == np.float32
    assert np.all(np.abs(scores) <= 1 + 1e-5)
    assert scores[0] > 0.5 and scores[0] > max(scores[1:]) + 0.3
    assert max(scores[1:]) < 0.5  # uncentred, every cosine here is above 0.98
    assert visual_scores(labelled, candidates[:0]).shape == (0,)
    assert not visual_scores(labelled[:0], candidates).any()


def test_the_visual_prototype_ranks_other_views_of_the_labelled_photos_first(
    indexed: Any, encoder: Any, folder: Path
) -> None:
    """What a label's photos share in how they look (devise_app.engine.visual)."""
    from devise_app.engine.visual import visual_scores

    names = [*CAT_VIEWS, "coffee.png", "rocket.png", "motorcycle_left.png", "astronaut.png", "camera.png"]
    features = encoder.embed(np.stack([load_model_input(folder / n) for n in names])).features
    scores = visual_scores(features[:2], features[2:])
    others = scores[2:]
    assert min(scores[:2]) > max(others), dict(zip(names[2:], scores.round(3), strict=True))


def test_a_label_search_reranks_by_looks_without_starting_the_model(
    indexed: Any, folder: Path, vocabulary: Any
) -> None:
    indexed.add_label("Zorblax", [folder / "cat-a.png", folder / "cat-b.png"])
    reader = type(indexed)(indexed.path, vocabulary=vocabulary)  # no encoder given
    hits = reader.search("Zorblax", top=4)
    assert [hit.path.name for hit in hits[:2]] == ["cat-a.png", "cat-b.png"]
    assert {hit.path.name for hit in hits[2:]} == {"cat-c.png", "cat-d.png"}
    assert reader._encoder is None, "a label search must not start an inference session"
    reader.close()


def test_an_import_with_a_bad_label_name_applies_nothing(indexed: Any, folder: Path) -> None:
    photo = str(folder.resolve() / "cat-a.png")
    document = {
        "format": labels.LABELS_FORMAT,
        "version": 1,
        "labels": {"first": [photo], 'bad "quoted" name': [photo], "last": [photo, photo, "/nowhere.jpg"]},
    }
    with pytest.raises(LibraryError, match="quotes"):
        indexed.import_labels(json.dumps(document))
    assert indexed.labels() == []  # all or nothing: the first label was not applied either
    del document["labels"]['bad "quoted" name']
    applied, missing = indexed.import_labels(json.dumps(document))
    assert applied == 2 and missing == ["/nowhere.jpg"]
    assert indexed.labels() == [("first", 1), ("last", 1)]


def test_an_import_naming_a_path_no_file_system_can_hold_reports_it_missing(
    indexed: Any, folder: Path
) -> None:
    """Issue 12: a path with a lone surrogate ("\\udcff" is valid JSON) ended the
    import in a UnicodeEncodeError traceback; it is a photo not in the library."""
    photo = str(folder.resolve() / "cat-a.png")
    text = '{"format": "devise-app labels", "version": 1, "labels": {"Pets": ["/p/\\udcff.jpg", %s]}}'
    applied, missing = indexed.import_labels(text % json.dumps(photo))
    assert (applied, missing) == (1, ["/p/\udcff.jpg"])
    assert indexed.labels() == [("Pets", 1)]


def test_labels_that_differ_only_in_a_non_ascii_capital_keep_their_own_photos(
    indexed: Any, folder: Path
) -> None:
    """SQLite holds "Ärger" and "ärger" as two labels; learning must not swap them."""
    indexed.add_label("Ärger", [folder / "cat-a.png", folder / "cat-b.png"])
    indexed.add_label("ärger", [folder / "coffee.png"])
    result = learn_all(indexed)
    vectors = stored_vectors(indexed)
    upper, lower = result.label_vector("Ärger"), result.label_vector("ärger")
    assert upper @ vectors["cat-c.png"] > upper @ vectors["coffee.png"]
    assert lower @ vectors["coffee.png"] > lower @ vectors["cat-c.png"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-32"])
def test_a_labels_file_in_any_json_encoding_imports(
    indexed: Any, folder: Path, tmp_path: Path, encoding: str
) -> None:
    document = {
        "format": labels.LABELS_FORMAT,
        "version": 1,
        "labels": {"Ärger": [str(folder.resolve() / "cat-a.png")]},
    }
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding=encoding)
    assert indexed.import_labels(path.read_bytes()) == (1, [])
    assert indexed.labels() == [("Ärger", 1)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"format": "devise-app labels", "labels": {"Café": []}}'.encode("latin-1"), "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
    ids=["latin-1", "deeply nested"],
)
def test_a_bad_labels_file_is_one_clear_error(indexed: Any, content: bytes, reason: str) -> None:
    with pytest.raises(LibraryError, match=reason):
        indexed.import_labels(content)


def test_a_label_name_is_at_most_200_characters(indexed: Any, folder: Path) -> None:
    with pytest.raises(LibraryError, match="at most 200"):
        indexed.add_label("x" * 10_000, [folder / "cat-a.png"])
    indexed.add_label("y" * 200, [folder / "cat-a.png"])
    assert indexed.search("y" * 200, top=1)[0].path.name == "cat-a.png"

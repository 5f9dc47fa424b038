"""``bench index`` runs at toy sizes, ``bench quality``'s everyday table scores real
photos, and no benchmark needs the test extra (scikit-image). These tests check what
is printed, never timings."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from devise_app.bench import common
from devise_app.bench import index as bench_index
from devise_app.engine.imaging import load_model_input

SKIMAGE_PHOTOS = Path(__import__("skimage").__file__).parent / "data"
# In a child process without scikit-image (as after ``pip install devise-app``).
BENCH_WITHOUT_SKIMAGE = """
import sys
sys.modules["skimage"] = None  # any import of it fails, as when it is not installed
from pathlib import Path
from devise_app.bench import index
sys.exit(index.main(Path(sys.argv[1]), sizes=index.TINY))
"""


def test_bench_index_runs_at_tiny_sizes(
    shared_model: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(common, "SAMPLE_DIR", tmp_path / "nowhere")
    assert bench_index.main(sizes=bench_index.TINY) == 0
    out = capsys.readouterr().out
    assert f"The ImageNet sample photos are not at {tmp_path / 'nowhere'}" in out
    assert "Sample: 8 generated photos." in out
    for measure in [
        "sample: end-to-end (8 photos", "sample: model only, preprocessed", "sample: end-to-end / model only",
        "1 MP JPEG: end-to-end (4 photos", "decode + preprocess, 1 thread", "Annoy 500 x 50-d: build",
        "Annoy query top 10: p50", "Annoy recall@10 vs exact", "| met |",
    ]:  # fmt: skip
        assert measure in out, measure


def test_bench_index_rejects_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_index.main(tmp_path / "missing", sizes=bench_index.TINY) == 1
    assert "no such folder" in capsys.readouterr().err


def test_bench_index_needs_no_scikit_image(tmp_path: Path) -> None:
    """It ended in ``ModuleNotFoundError: No module named 'skimage'`` without the
    test extra: it cut its 12 MP photos from scikit-image's sample photos."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.png", "coffee.png", "astronaut.png"):
        shutil.copyfile(SKIMAGE_PHOTOS / name, photos / name)
    done = subprocess.run(
        [sys.executable, "-c", BENCH_WITHOUT_SKIMAGE, str(photos)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "1 MP JPEG: end-to-end (4 photos" in done.stdout


def test_generated_sample_needs_no_scikit_image(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setattr(common, "SAMPLE_DIR", tmp_path / "nowhere")
    sample = common.sample_photos(None, tmp_path / "generated", bench_index.TINY)
    assert sample.generated and len(sample.paths) == 8
    large = common.make_photos(tmp_path / "large", 2, (1200, 900), 2, sample.sources())
    for path in [*sample.paths, *large]:
        with Image.open(path) as photo:
            assert photo.format == "JPEG"
            assert photo.size in {(320, 240), (1200, 900)}


def test_generated_pictures_look_like_photos() -> None:
    """Not flat: a smooth field with shapes and grain (what the decoder must work through)."""
    import numpy as np

    pictures = common.generated_pictures(count=3)
    assert len(pictures) == 3
    for picture in pictures:
        assert picture.shape == (480, 640, 3) and picture.dtype == np.uint8
        assert picture.std() > 20
    assert not np.array_equal(pictures[0], pictures[1])


def test_source_pictures_spread_over_the_sample(tmp_path: Path) -> None:
    paths = []
    for i in range(20):
        path = tmp_path / f"{i:02d}.png"
        Image.new("RGB", (40, 30), (i * 10, 0, 0)).save(path)
        paths.append(path)
    pictures = common.source_pictures(paths)
    assert len(pictures) == common.SOURCE_COUNT
    assert pictures[0][0, 0, 0] == 0 and pictures[-1][0, 0, 0] > 100


def test_everyday_queries_find_the_photos_their_captions_describe(
    encoder: Any, vocabulary: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The everyday table scores the app's ranking against what human captions say;
    here four real photos with captions written for them, each query relevant to one."""
    from devise_app.bench.everyday import EverydayQueries, caption_text, everyday_table, relevant

    captions = {
        "chelsea.png": "A cat lying on a rug.",
        "coffee.png": "Food and a cup of coffee in a room.",
        "motorcycle_left.png": "A red motorcycle, a kind of bike.",
        "rocket.jpg": "A rocket in the sky.",
        "astronaut.png": "A woman in a space suit.",
    }
    tags = {"chelsea.png": ["cat"], "coffee.png": ["cup"], "astronaut.png": ["person"]}
    entries = [
        {"file": name, "captions": [text], "tags": tags.get(name, [])} for name, text in captions.items()
    ]
    assert caption_text(entries[0]) == " a cat lying on a rug "
    assert relevant([" a cat lying on a rug "], (("cat", "cats"), ("rug",))).tolist() == [True]
    assert relevant([" a category of cars "], (("cat",),)).tolist() == [False]  # whole words only
    embedding = encoder.embed(np.stack([load_model_input(SKIMAGE_PHOTOS / name) for name in captions]))
    queries = everyday_table(
        entries, embedding.vectors, embedding.logits, embedding.features, vocabulary, min_relevant=1
    )
    printed = capsys.readouterr().out
    result = queries.mean_aps(embedding.vectors, embedding.logits, embedding.features)
    assert "| one word | 5 |" in printed  # cat, food, bike, sky, room
    assert result["one word"] == pytest.approx(1.0)  # each one's photo ranks first
    assert "| words for people | 1 |" in printed  # woman
    assert result["words for people"] == pytest.approx(1.0)
    # "a room with no people": the coffee, in a room and not tagged with a person
    assert "| asking not to see | 1 |" in printed
    rooms = [{"captions": ["A room."], "tags": tags} for tags in (["person"], ["chair"], [])]
    (_, wanted), *_ = EverydayQueries.embed(rooms, vocabulary, min_relevant=1).groups["asking not to see"]
    assert wanted.tolist() == [False, True, True]
    assert result["asking not to see"] == pytest.approx(1.0)
    # each answered by the photo whose caption names its answer: "puppy - dog + cat" and
    # "dog - bark + meow" (cat), "plate - food + drink" (cup), "bicycle - pedals + engine"
    assert "| word arithmetic: analogies | 4 |" in printed
    assert result["word arithmetic: analogies"] == pytest.approx(1.0)
    assert "| word arithmetic: sums | 0 |" in printed  # no caption names both terms of one


def test_descriptions_are_scored_by_the_classes_that_answer_them(
    encoder: Any, vocabulary: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bench quality``'s description line on four real photos: each description
    finds the photo of the class that answers it first."""
    from devise_app.bench.quality import answer_classes, answered_line

    photos = {
        "chelsea.png": "tiger cat",
        "coffee.png": "espresso",
        "rocket.jpg": "missile",
        "motorcycle_left.png": "moped",
    }
    described = {
        "a small pet that purrs": ("domestic cat",),
        "a strong coffee drink": ("espresso",),
        "a weapon that flies": ("missile",),
        "a motorbike with pedals": ("moped",),
    }
    assert vocabulary.class_index("tiger cat") in answer_classes(("domestic cat",), vocabulary)
    labels = np.array([vocabulary.class_index(name) for name in photos.values()])
    embedding = encoder.embed(np.stack([load_model_input(SKIMAGE_PHOTOS / name) for name in photos]))
    answered_line(
        "descriptions", described, vocabulary, embedding.vectors, embedding.logits, embedding.features, labels
    )
    printed = capsys.readouterr().out
    assert printed.startswith(
        "descriptions (4, answered by photos of the classes the answer names): mAP 1.000"
    )


def test_every_answer_of_the_class_answered_queries_names_classes(vocabulary: Any) -> None:
    """An answer that names no class would score 0 whatever the app does."""
    from devise_app.bench import quality

    sets = (quality.ANALOGIES, quality.DESCRIPTIONS, quality.CHECK_DESCRIPTIONS, quality.CHECK_ANALOGIES)
    for queries in sets:
        for text, names in queries.items():
            assert quality.answer_classes(names, vocabulary), text

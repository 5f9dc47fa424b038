"""The fast paths give the same answers as the plain ones, and ``bench speed`` runs
(at toy sizes: these tests check correctness, never timings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from devise_app.bench import common as bench_common
from devise_app.bench import speed as bench_speed
from devise_app.engine import imaging
from devise_app.engine.model import ImageEncoder

SKIMAGE_PHOTOS = Path(__import__("skimage").__file__).parent / "data"


def _batch(count: int, seed: int = 0) -> np.ndarray:
    shape = (count, 3, imaging.INPUT_SIZE, imaging.INPUT_SIZE)
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


@pytest.mark.parametrize("count", [1, 2, 5, 16])
def test_split_batches_give_the_same_outputs(encoder: Any, count: int) -> None:
    batch = _batch(count)
    whole = encoder._run(batch)  # one run over the whole batch
    split = encoder.embed(batch)  # cut over encoder.parallel concurrent runs
    for name in ("vectors", "features", "logits"):
        np.testing.assert_allclose(getattr(split, name), getattr(whole, name), rtol=1e-5, atol=1e-5)


def test_io_binding_path_matches_plain_run(encoder: Any) -> None:
    batch = _batch(3, seed=1)
    bound, plain = encoder._run_bound(batch, "cpu"), encoder._run(batch)
    np.testing.assert_allclose(bound.vectors, plain.vectors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bound.features, plain.features, rtol=1e-5, atol=1e-5)


def test_threads_set_the_number_of_concurrent_runs() -> None:
    encoder = ImageEncoder(device="cpu", threads=3)
    try:
        assert (encoder.parallel, encoder.batch_size) == (3, 16)
        assert encoder.session.get_session_options().intra_op_num_threads == 1
        batch = _batch(7, seed=2)
        np.testing.assert_allclose(encoder.embed(batch).vectors, encoder._run(batch).vectors, atol=1e-5)
    finally:
        encoder.close()
    encoder.embed(_batch(2))  # closing only stops the helper threads; they come back when needed


def test_indexed_vectors_equal_one_photo_at_a_time(
    library: Any, photo_dir: Path, run_index: Any, encoder: Any
) -> None:
    """The pipeline (decoders in a thread pool, batches split over concurrent runs)
    stores what the sequential path computes for each photo alone: the same
    features, and the vector the head makes of them as the catalog stores them."""
    summary = run_index(library, [photo_dir])
    assert summary.indexed == len(list(photo_dir.iterdir()))
    for path in sorted(photo_dir.iterdir()):
        stored = library.catalog.vector_of(os.fspath(path))
        assert stored is not None, path
        alone = encoder._run(imaging.load_model_input(path)[None])
        _, features = library.catalog.features([stored[0]])
        np.testing.assert_allclose(features[0], alone.features[0], rtol=1e-2, atol=1e-3)  # float16
        np.testing.assert_allclose(stored[1], alone.vectors[0], atol=1e-4)
        np.testing.assert_allclose(stored[1], encoder.project(features)[0], atol=1e-5)


@pytest.mark.parametrize("name", ["chelsea.png", "rocket.jpg", "astronaut.png", "coffee.png"])
def test_one_pass_resize_matches_resize_then_crop(name: str) -> None:
    fast = imaging.load_model_input(SKIMAGE_PHOTOS / name)
    plain = bench_speed.naive_model_input(SKIMAGE_PHOTOS / name)
    assert fast.shape == plain.shape == (3, imaging.INPUT_SIZE, imaging.INPUT_SIZE)
    assert fast.dtype == np.float32
    assert np.abs(fast - plain).max() <= 1 / imaging.PIXEL_SCALE + 1e-6  # one level at most


def test_large_photo_reduction_stays_close(tmp_path: Path) -> None:
    big = Image.open(SKIMAGE_PHOTOS / "astronaut.png").convert("RGB").resize((3000, 2000))
    big.save(tmp_path / "big.png")
    fast = imaging.load_model_input(tmp_path / "big.png")
    plain = bench_speed.naive_model_input(tmp_path / "big.png")
    levels = np.abs(fast - plain) * imaging.PIXEL_SCALE
    assert levels.mean() < 0.5 and levels.max() <= 4


def test_small_and_odd_photos_still_fill_the_input(tmp_path: Path) -> None:
    for size in [(50, 30), (224, 224), (1000, 100), (100, 1000)]:
        path = tmp_path / f"{size[0]}x{size[1]}.png"
        Image.new("RGB", size, (255, 0, 0)).save(path)
        pixels = imaging.load_model_input(path)
        assert pixels.shape == (3, imaging.INPUT_SIZE, imaging.INPUT_SIZE)
        np.testing.assert_allclose(pixels[0], (255 - 127) / 128)
        np.testing.assert_allclose(pixels[1:], (0 - 127) / 128)


def test_bench_speed_runs_at_tiny_sizes(shared_model: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_speed.main(sizes=bench_speed.TINY) == 0
    out = capsys.readouterr().out
    for measure in [
        "end-to-end / ceiling", "end-to-end / naive", "model-only ceiling", "naive (full decode",
        "query top 10 p50", "recall@10 vs exact", "peak RSS", "rescan of 300 unchanged files (303 unchanged)",
        "not measured: no GPU machine was available",
    ]:  # fmt: skip
        assert measure in out, measure
    assert "| met |" in out


def test_bench_speed_says_when_the_sample_is_absent(
    shared_model: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench_common, "SAMPLE_DIR", tmp_path / "nowhere")
    sizes = bench_speed.tiny_sizes(ann_sizes=(200,), memory_sizes=(), rescan_files=10)
    assert bench_speed.main(sizes=sizes) == 0
    out = capsys.readouterr().out
    assert f"The ImageNet sample photos are not at {tmp_path / 'nowhere'}" in out
    assert "8 generated photos" in out


def test_bench_speed_rejects_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_speed.main(tmp_path / "missing", sizes=bench_speed.TINY) == 1
    assert "no such folder" in capsys.readouterr().err


def test_first_paint_is_reported(tmp_path: Path) -> None:
    """The app started as the bench starts it prints its first paint and quits."""
    (seconds,) = bench_speed.measure_first_paint(tmp_path, runs=1)
    assert 0 < seconds < 120


def test_cli_dispatches_bench_speed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from devise_app.cli import main

    seen: list[Any] = []
    monkeypatch.setattr(bench_speed, "main", lambda images=None: seen.append(images) or 7)
    assert main(["bench", "speed"]) == 7
    assert main(["bench", "speed", "--images", str(tmp_path)]) == 7
    assert seen == [None, tmp_path]

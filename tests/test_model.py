"""The shipped model on real photos: preprocessing, outputs, providers, file errors.

With either ONNX Runtime wheel (onnxruntime-gpu or plain onnxruntime).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
import skimage
from PIL import Image

from devise_app.engine import imaging
from devise_app.engine.model import (
    CPU,
    CUDA,
    ImageEncoder,
    ModelFileError,
    choose_providers,
    nvidia_driver_present,
)
from devise_app.engine.query import query_vector

SKIMAGE_PHOTOS = Path(skimage.__file__).parent / "data"
# The package depends on onnxruntime-gpu where NVIDIA ships CUDA (Linux x86-64, Windows)
# and on plain onnxruntime elsewhere: the tests hold for both wheels.
CUDA_BUILD = CUDA in onnxruntime.get_available_providers()

GRID_PHOTOS = [
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "camera.png",
    "astronaut.png",
    "horse.png",
]


@pytest.fixture(scope="module")
def embedded(encoder: Any) -> tuple[list[str], Any]:
    batch = np.stack([imaging.load_model_input(SKIMAGE_PHOTOS / name) for name in GRID_PHOTOS])
    return GRID_PHOTOS, encoder.embed(batch)


def test_preprocessing_shape_and_range() -> None:
    array = imaging.load_model_input(SKIMAGE_PHOTOS / "chelsea.png")
    assert array.shape == (3, imaging.INPUT_SIZE, imaging.INPUT_SIZE)
    assert array.dtype == np.float32
    assert -1.0 <= array.min() < -0.5 and 0.5 < array.max() <= 1.0


def test_preprocessing_uses_short_side_and_centre() -> None:
    # a wide image: left third red, middle third green, right third blue
    pixels = np.zeros((300, 900, 3), dtype=np.uint8)
    pixels[:, :300, 0] = 255
    pixels[:, 300:600, 1] = 255
    pixels[:, 600:, 2] = 255
    array = imaging.to_model_input(Image.fromarray(pixels))
    centre = array[:, 112, 112] * imaging.PIXEL_SCALE + imaging.PIXEL_MEAN
    assert centre.round().tolist() == [0.0, 255.0, 0.0]


def test_outputs_are_unit_vectors(embedded: tuple[list[str], Any], encoder: Any) -> None:
    _, embedding = embedded
    assert embedding.vectors.shape == (len(GRID_PHOTOS), encoder.dim)
    assert embedding.features.shape == (len(GRID_PHOTOS), encoder.feature_dim)
    np.testing.assert_allclose(np.linalg.norm(embedding.vectors, axis=1), 1.0, atol=1e-5)


def test_numpy_head_matches_onnx(embedded: tuple[list[str], Any], encoder: Any) -> None:
    _, embedding = embedded
    np.testing.assert_allclose(encoder.project(embedding.features), embedding.vectors, atol=1e-5)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("cat", "chelsea.png"),
        ("coffee", "coffee.png"),
        ("motorcycle", "motorcycle_left.png"),
        ("rocket", "rocket.jpg"),
    ],
)
def test_word_ranks_the_right_photo_first(
    embedded: tuple[list[str], Any], vocabulary: Any, query: str, expected: str
) -> None:
    names, embedding = embedded
    scores = embedding.vectors @ query_vector(query, vocabulary)
    assert names[int(np.argmax(scores))] == expected


def test_words_for_a_photo(embedded: tuple[list[str], Any], vocabulary: Any) -> None:
    names, embedding = embedded
    words = [w for w, _ in vocabulary.nearest(embedding.vectors[names.index("coffee.png")], 5)]
    assert "espresso" in words


def test_cpu_asked_for() -> None:
    assert choose_providers("cpu", [CUDA, CPU], driver_present=True) == ([CPU], "CPU (asked for)")


def test_no_cuda_build_or_driver_means_cpu_with_a_reason() -> None:
    providers, note = choose_providers("auto", [CPU], driver_present=True)
    assert providers == [CPU] and "no CUDA support" in note
    providers, note = choose_providers("auto", [CUDA, CPU], driver_present=False)
    assert providers == [CPU] and "no NVIDIA GPU driver" in note


def _why_cpu() -> str:
    """What the note says when CUDA is asked for but cannot be used, with this wheel."""
    return "CUDA was asked for" if CUDA_BUILD else "no CUDA support"


@pytest.mark.skipif(
    CUDA_BUILD and nvidia_driver_present(), reason="a GPU may be usable here: nothing to fall back from"
)
def test_cuda_asked_for_but_unusable_falls_back_to_cpu(capfd: pytest.CaptureFixture[str]) -> None:
    encoder = ImageEncoder(device="cuda")
    assert encoder.provider == CPU
    assert _why_cpu() in encoder.provider_note
    batch = imaging.load_model_input(SKIMAGE_PHOTOS / "coffee.png")[None]
    assert encoder.embed(batch).vectors.shape == (1, encoder.dim)


def test_the_automatic_choice_says_why() -> None:
    encoder = ImageEncoder(device="auto")
    if not CUDA_BUILD:
        assert (encoder.provider, encoder.provider_note) == (
            CPU,
            "CPU (this ONNX Runtime build has no CUDA support)",
        )
    elif not nvidia_driver_present():
        assert (encoder.provider, encoder.provider_note) == (CPU, "CPU (no NVIDIA GPU driver found)")
    elif encoder.provider == CUDA:
        assert encoder.provider_note == "CUDA GPU"
    else:
        assert encoder.provider == CPU and _why_cpu() in encoder.provider_note
    batch = imaging.load_model_input(SKIMAGE_PHOTOS / "coffee.png")[None]
    assert encoder.embed(batch).vectors.shape == (1, encoder.dim)


def _copy_models(tmp_path: Path) -> Path:
    from devise_app.engine import config

    target = tmp_path / "models"
    shutil.copytree(config.models_dir(), target)
    return target


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="missing"):
        ImageEncoder(model_dir=tmp_path / "nowhere")


def test_wrong_model_version_is_a_clear_error(tmp_path: Path) -> None:
    models = _copy_models(tmp_path)
    manifest = json.loads((models / "manifest.json").read_text())
    manifest["format_version"] = 999
    (models / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="version 999"):
        ImageEncoder(model_dir=models)


def test_truncated_onnx_file_is_a_clear_error(tmp_path: Path) -> None:
    models = _copy_models(tmp_path)
    onnx = models / "devise.onnx"
    onnx.write_bytes(onnx.read_bytes()[:100_000])
    with pytest.raises(ModelFileError, match="cannot be loaded"):
        ImageEncoder(model_dir=models)


def test_truncated_vocabulary_is_a_clear_error(tmp_path: Path) -> None:
    from devise_app.engine.vocabulary import Vocabulary

    models = _copy_models(tmp_path)
    vocabulary = models / "vocabulary.npz"
    vocabulary.write_bytes(vocabulary.read_bytes()[:50_000])
    with pytest.raises(ModelFileError, match="damaged"):
        Vocabulary.load(models)


@pytest.mark.skipif(sys.platform == "win32", reason="shell scripts as planted programs")
def test_looking_for_a_gpu_driver_runs_no_program(tmp_path: Path) -> None:
    """ctypes.util.find_library ran ldconfig, gcc and ld through PATH: a planted gcc ran."""
    planted = tmp_path / "bin"
    planted.mkdir()
    ran = tmp_path / "ran"
    for name in ("gcc", "cc", "ld", "ldconfig", "objdump"):
        (planted / name).write_text(f"#!/bin/sh\necho {name} >> {ran}\nexit 1\n")
        (planted / name).chmod(0o755)
    code = "from devise_app.engine.model import nvidia_driver_present; nvidia_driver_present()"
    env = {**os.environ, "PATH": f"{planted}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    assert not ran.exists(), ran.read_text()

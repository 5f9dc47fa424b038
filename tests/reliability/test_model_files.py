"""Bad model or vocabulary files (issue 7): the real CLI, in a subprocess, with
DEVISE_APP_MODELS_DIR pointing at a broken copy of models/, prints one clear
line on stderr and exits 1; never a traceback.

(The GUI's dialog for the same errors is tested in tests/gui/test_app.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reliability_support import SKIMAGE_PHOTOS, run_cli

from devise_app.engine import config
from devise_app.engine.search import Library

Break = Callable[[Path], None]


def _truncate(name: str, keep: int) -> Break:
    def fault(models: Path) -> None:
        for path in models.glob(name):
            data = path.read_bytes()
            path.unlink()  # a symlink to the real file: replace it, never write through it
            path.write_bytes(data[:keep])

    return fault


def _remove(name: str) -> Break:
    def fault(models: Path) -> None:
        for path in models.glob(name):
            path.unlink()

    return fault


def _manifest(change: Callable[[dict[str, Any]], object]) -> Break:
    def fault(models: Path) -> None:
        manifest = json.loads((models / "manifest.json").read_text())
        replacement = change(manifest)
        (models / "manifest.json").unlink()
        (models / "manifest.json").write_text(json.dumps(manifest if replacement is None else replacement))

    return fault


def _npz(name: str, change: Callable[[dict[str, np.ndarray]], None]) -> Break:
    def fault(models: Path) -> None:
        with np.load(models / name) as data:
            arrays = dict(data)
        change(arrays)
        (models / name).unlink()
        np.savez(models / name, **arrays)

    return fault


def _drop_key(key: str) -> Callable[[dict[str, Any]], None]:
    def change(mapping: dict[str, Any]) -> None:
        del mapping[key]

    return change


def _narrow(key: str, columns: int) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays[key] = arrays[key][:, :columns]

    return change


def _wrong_version(manifest: dict[str, Any]) -> None:
    manifest["format_version"] = 999


# name -> (fault, command, what the message names). "describe" needs the model and
# the vocabulary, "search" the vocabulary only, "index" the model only.
CASES: dict[str, tuple[Break, str, str]] = {
    "models folder missing": (lambda models: shutil.rmtree(models), "describe", "is missing"),
    "ONNX file missing": (_remove("*.onnx"), "index", ".onnx is missing"),
    "ONNX file truncated": (_truncate("*.onnx", 100_000), "describe", ".onnx cannot be loaded"),
    "ONNX file empty": (_truncate("*.onnx", 0), "describe", ".onnx cannot be loaded"),
    "head missing": (_remove("head.npz"), "describe", "head.npz is missing"),
    "head truncated": (_truncate("head.npz", 1000), "describe", "head.npz is damaged"),
    "head of another model": (
        _npz("head.npz", _narrow("fc_weight", 5)),
        "describe",
        "does not fit the model",
    ),
    "manifest missing": (_remove("manifest.json"), "describe", "manifest.json is missing"),
    "manifest of a newer version": (_manifest(_wrong_version), "describe", "format version 999"),
    "manifest not an object": (_manifest(lambda manifest: [1, 2]), "describe", "not a JSON object"),
    "manifest without dim": (_manifest(_drop_key("dim")), "describe", "'dim' is None"),
    "manifest not JSON": (_truncate("manifest.json", 10), "describe", "manifest.json is unreadable"),
    "vocabulary missing": (_remove("vocabulary.npz"), "search", "vocabulary.npz is missing"),
    "vocabulary truncated": (_truncate("vocabulary.npz", 50_000), "search", "vocabulary.npz is damaged"),
    "vocabulary without an array": (
        _npz("vocabulary.npz", _drop_key("word_scale")),
        "search",
        "vocabulary.npz is damaged",
    ),
    "vocabulary of another model": (
        _npz("vocabulary.npz", _narrow("class_vectors", 7)),
        "search",
        "does not fit the model",
    ),
}


def _broken_copy(tmp: Path, name: str, fault: Break) -> Path:
    """models/ as symlinks to the shipped files, then broken as the case says."""
    models = tmp / name.replace(" ", "-") / "models"
    models.mkdir(parents=True)
    for path in config.models_dir().iterdir():
        if path.is_file():
            (models / path.name).symlink_to(path)
    fault(models)
    return models


def _digests() -> dict[str, bytes]:
    return {
        path.name: hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
        for path in sorted(config.models_dir().iterdir())
        if path.is_file()  # not __pycache__ (models/ is a package: devise_app.models)
    }


@pytest.fixture(scope="module")
def shipped() -> dict[str, bytes]:
    return _digests()


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory, photo_library: tuple[Path, Path], shipped: dict[str, bytes]
) -> dict[str, Any]:
    """Every case run at once (four at a time): each is a fresh interpreter."""
    photos, library = photo_library
    base = tmp_path_factory.mktemp("broken-models")
    arguments = {
        "describe": ("describe", photos / "chelsea.png"),
        "search": ("search", "cat", "--library", library),
        "index": ("index", photos, "--library", base / "new-library"),
    }

    def run(name: str) -> Any:
        fault, command, _ = CASES[name]
        models = _broken_copy(base, name, fault)
        return run_cli(*arguments[command], env={"DEVISE_APP_MODELS_DIR": os.fspath(models)})

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(CASES, pool.map(run, CASES), strict=True))


@pytest.fixture(scope="module")
def photo_library(
    tmp_path_factory: pytest.TempPathFactory, encoder: Any, vocabulary: Any
) -> tuple[Path, Path]:
    """A folder with a photo and a library indexed from it with the good model."""
    base = tmp_path_factory.mktemp("good")
    photos = base / "photos"
    photos.mkdir()
    shutil.copyfile(SKIMAGE_PHOTOS / "chelsea.png", photos / "chelsea.png")
    with Library(base / "library", encoder=encoder, vocabulary=vocabulary) as library:
        deque(library.index([photos]), maxlen=1)
    return photos, base / "library"


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_model_file_is_one_clear_line(case: str, outcomes: dict[str, Any]) -> None:
    result = outcomes[case]
    fragment = CASES[case][2]
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("devise-app: error: ")
    assert fragment in lines[0]
    assert result.stdout == ""


def test_the_shipped_files_are_untouched(outcomes: dict[str, Any], shipped: dict[str, bytes]) -> None:
    """The broken copies are symlinks replaced, never written through."""
    assert _digests() == shipped

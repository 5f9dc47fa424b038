"""Helpers shared by the reliability tests: distinct real photos, the real CLI in a
subprocess, and direct looks at a library's files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import skimage
from PIL import Image

from devise_app.config import PROJECT_ROOT

SKIMAGE_PHOTOS = Path(skimage.__file__).parent / "data"
# Colour photos of distinct things.
SOURCES = (
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "astronaut.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
)


def source_photo(name: str) -> Image.Image:
    with Image.open(SKIMAGE_PHOTOS / name) as img:
        return img.convert("RGB")


def distinct_photos(folder: Path, count: int, side: int = 256, start: int = 0) -> list[Path]:
    """``count`` small JPEGs in ``folder``, each a different crop of a scikit-image
    photo (so every file has its own bytes and its own vector)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [source_photo(name) for name in SOURCES]
    paths = []
    for i in range(start, start + count):
        img = sources[i % len(sources)]
        k = i // len(sources) + 1
        width, height = img.size
        left, top = (k * 13) % (width // 3), (k * 7) % (height // 3)
        crop = img.crop((left, top, left + 2 * width // 3, top + 2 * height // 3))
        crop.thumbnail((side, side))
        path = folder / f"photo{i:03d}.jpg"
        crop.save(path, quality=90)
        paths.append(path)
    return paths


def cli_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "devise_app", *(os.fspath(arg) for arg in args)]


def run_cli(
    *args: object, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``devise-app ARGS`` in a fresh interpreter (the per-user folders the
    autouse fixture set in os.environ go with it)."""
    return subprocess.run(
        cli_command(*args),
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def catalog_rows(library_dir: Path, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    """Rows of a query on a library's catalog, through a connection of our own."""
    conn = sqlite3.connect(library_dir / "catalog.sqlite", timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

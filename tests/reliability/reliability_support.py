"""Helpers shared by the reliability tests: distinct real photos, the real CLI in a
subprocess, and direct looks at a library's files."""

from __future__ import annotations

import functools
import os
import sqlite3
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import skimage
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


@functools.cache
def _sources() -> tuple[Image.Image, ...]:
    return tuple(source_photo(name) for name in SOURCES)


def write_distinct_photo(path: Path, index: int, side: int = 256) -> Path:
    """Write photo number ``index`` to ``path`` (as JPEG): a crop of a
    scikit-image photo that differs from every other index, so every file has
    its own bytes and its own vector."""
    sources = _sources()
    img = sources[index % len(sources)]
    k = index // len(sources) + 1
    width, height = img.size
    # (13k, 7k) repeats after 170 steps on a 512-px photo: the added k // 170 keeps thousands apart
    left, top = (k * 13) % (width // 3), (k * 7 + k // 170) % (height // 3)
    crop = img.crop((left, top, left + 2 * width // 3, top + 2 * height // 3))
    crop.thumbnail((side, side))
    path.parent.mkdir(parents=True, exist_ok=True)
    crop.save(path, format="JPEG", quality=90)
    return path


def distinct_photos(folder: Path, count: int, side: int = 256, start: int = 0) -> list[Path]:
    """``count`` small JPEGs ``photoNNN.jpg`` in ``folder``, numbers ``start`` on."""
    return [write_distinct_photo(folder / f"photo{i:03d}.jpg", i, side) for i in range(start, start + count)]


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


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, bit_depth: int, colour_type: int, rows: Iterator[bytes]) -> bytes:
    """A PNG written by hand (Pillow cannot write 48-bit RGB or claim any size)."""
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(b"\x00" + row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def decompression_bomb(side: int) -> bytes:
    """A real 1-bit PNG of side x side black pixels: about 110 kB on disk for
    30000 x 30000 (900 megapixels, 2.7 GB as RGB)."""
    row = bytes((side + 7) // 8)
    return png(side, side, 1, 0, (row for _ in range(side)))

"""``devise-app bench index``: how fast photos get indexed and searched on this machine.

Prints one table:

- end-to-end photos/s: the real ``Library.index`` run (scan, hash, decode in the
  thread pool, model, catalog writes, Annoy build) into a temporary library;
- model-only photos/s: the same encoder on batches of the same size, preprocessed
  in advance (no decoding): the ceiling, and end-to-end's share of it;
- decode + preprocess ms per photo on one thread;

on the ImageNet sample photos (``../shared/datasets/imagenet-sample``, or
``--images DIR``; generated photos when absent, and the table says so) and on
64 generated 12-megapixel JPEGs; then Annoy query latency and recall@10 against
exact search on 100k synthetic 50-d vectors. Targets are printed beside the numbers.
Files are read once before timing, so the numbers are CPU work, not disk speed;
model-only and end-to-end runs alternate three times and the best of each is
shown, so that other work on the machine disturbs the ratio less.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from devise_app.bench.common import dataset_dir
from devise_app.engine import imaging

if TYPE_CHECKING:
    from devise_app.engine.model import ImageEncoder

SAMPLE_DIR = dataset_dir("imagenet-sample")
GENERATED_SAMPLE_COUNT = 200
LARGE_COUNT = 64
LARGE_SIZE = (4000, 3000)
MODEL_ONLY_LIMIT = 320  # photos preprocessed in advance (about 0.6 MB each in memory)
REPEATS = 3
ANN_ITEMS = 100_000
ANN_DIM = 50
ANN_QUERIES = 1000

TARGET_RATIO = 0.75
TARGET_LARGE_RATE = 40.0
TARGET_QUERY_P50_MS = 5.0

SOURCE_PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
    "camera.png", "horse.png", "hubble_deep_field.jpg", "retina.jpg",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    measure: str
    value: str
    target: str = ""
    met: bool | None = None


def _images_in(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if imaging.is_image_path(path) and path.is_file())


def _source_images() -> list[np.ndarray]:
    """The scikit-image sample photos as RGB arrays: real content to make photos from."""
    from PIL import Image
    from skimage import data

    folder = Path(data.__file__).parent
    return [
        np.asarray(Image.open(folder / name).convert("RGB"))
        for name in SOURCE_PHOTOS
        if (folder / name).exists()
    ]


def _make_photos(folder: Path, count: int, size: tuple[int, int], seed: int) -> list[Path]:
    """``count`` JPEGs (quality 90) of ``size``: random crops of the scikit-image
    photos, scaled up (bicubic). Being smooth, they compress to about 0.9 MB at 12
    MP; camera files with sensor grain are larger and slower to decode."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    sources = _source_images()
    width, height = size

    def make(i: int) -> Path:
        local = np.random.default_rng(seed + i)
        source = sources[i % len(sources)]
        h, w = source.shape[:2]
        crop_w = int(w * local.uniform(0.6, 1.0))
        crop_h = min(h, int(crop_w * height / width))
        top, left = local.integers(0, h - crop_h + 1), local.integers(0, w - crop_w + 1)
        img = Image.fromarray(source[top : top + crop_h, left : left + crop_w])
        if i % 2:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = folder / f"photo_{i:04d}.jpg"
        img.resize(size, Image.Resampling.BICUBIC).save(path, quality=90)
        return path

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(make, range(count)))


def _warm_cache(paths: Sequence[Path]) -> None:
    for path in paths:
        path.read_bytes()


@dataclass(frozen=True)
class PipelineResult:
    photos: int
    megabytes: float  # mean file size
    end_to_end: float  # photos/s
    model_only: float  # photos/s
    decode_ms: float  # per photo, one thread


def timed_index_run(library_dir: Path, encoder: ImageEncoder, folder: Path) -> tuple[int, float]:
    """Index ``folder`` into a new library: (photos indexed, photos per second)."""
    from devise_app.engine.search import Library

    with Library(library_dir, encoder=encoder) as library:
        started = time.perf_counter()
        summary = None
        for progress in library.index([folder]):
            summary = progress.summary
        elapsed = time.perf_counter() - started
    assert summary is not None
    return summary.indexed, summary.indexed / elapsed


def measure_pipeline(
    folder: Path, encoder: ImageEncoder, workdir: Path, repeats: int = REPEATS
) -> PipelineResult:
    """Model-only and end-to-end runs, alternated ``repeats`` times so both see the
    same conditions; the best of each counts (other load only ever slows a run)."""
    paths = _images_in(folder)
    _warm_cache(paths)
    megabytes = sum(path.stat().st_size for path in paths) / len(paths) / 1e6

    subset = paths[:MODEL_ONLY_LIMIT]
    started = time.perf_counter()
    inputs = [imaging.load_model_input(path) for path in subset]
    decode_ms = (time.perf_counter() - started) * 1000 / len(subset)
    batch = encoder.batch_size
    batches = [np.stack(inputs[i : i + batch]) for i in range(0, len(inputs), batch)]
    del inputs
    encoder.embed(batches[0])  # warm-up

    model_only = end_to_end = 0.0
    indexed = 0
    for attempt in range(repeats):
        started = time.perf_counter()
        for chunk in batches:
            encoder.embed(chunk)
        model_only = max(model_only, len(subset) / (time.perf_counter() - started))

        indexed, rate = timed_index_run(workdir / f"library-{attempt}", encoder, folder)
        end_to_end = max(end_to_end, rate)
    return PipelineResult(indexed, megabytes, end_to_end, model_only, decode_ms)


@dataclass(frozen=True)
class AnnResult:
    build_s: float
    p50_ms: float
    p99_ms: float
    recall: float


def measure_ann(
    folder: Path, items: int = ANN_ITEMS, dim: int = ANN_DIM, queries: int = ANN_QUERIES
) -> AnnResult:
    """Annoy on clustered synthetic unit vectors (photo vectors gather around
    words), against exact search with the same vectors."""
    from devise_app.engine.ann import AnnIndex, exact_search
    from devise_app.engine.evaluation import unit_rows

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((items // 50, dim))
    vectors = unit_rows(
        centres[rng.integers(0, len(centres), items)] + 0.5 * rng.standard_normal((items, dim))
    )
    vectors = vectors.astype(np.float32)
    ids = np.arange(items, dtype=np.int64)
    probes = unit_rows(
        centres[rng.integers(0, len(centres), queries)] + 0.5 * rng.standard_normal((queries, dim))
    )

    started = time.perf_counter()
    index = AnnIndex.build(folder / "bench.annoy", ids, vectors)
    build_s = time.perf_counter() - started
    latencies, recalls = [], []
    for probe in probes.astype(np.float32):
        started = time.perf_counter()
        found = index.query(probe, 10)
        latencies.append(time.perf_counter() - started)
        exact = {item for item, _ in exact_search(ids, vectors, probe, 10)}
        recalls.append(len(exact & {item for item, _ in found}) / 10)
    index.close()
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    return AnnResult(build_s, float(p50), float(p99), float(np.mean(recalls)))


def _pipeline_rows(
    name: str, result: PipelineResult, rate_target: Callable[[PipelineResult], tuple[str, bool | None]]
) -> list[Row]:
    ratio = result.end_to_end / result.model_only
    rate_text, rate_met = rate_target(result)
    return [
        Row(
            f"{name}: end-to-end ({result.photos} photos, {result.megabytes:.1f} MB each)",
            f"{result.end_to_end:.1f} photos/s",
            rate_text,
            rate_met,
        ),
        Row(f"{name}: model only, preprocessed", f"{result.model_only:.1f} photos/s"),
        Row(
            f"{name}: end-to-end / model only",
            f"{ratio:.2f}",
            f">= {TARGET_RATIO}" if name.startswith("sample") else "",
            ratio >= TARGET_RATIO if name.startswith("sample") else None,
        ),
        Row(f"{name}: decode + preprocess, 1 thread", f"{result.decode_ms:.1f} ms/photo"),
    ]


def _print_table(rows: Sequence[Row]) -> None:
    met = {None: "", True: "yes", False: "NO"}
    table = [("measure", "value", "target", "met")]
    table += [(row.measure, row.value, row.target, met[row.met]) for row in rows]
    widths = [max(len(cells[i]) for cells in table) for i in range(4)]
    rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    print("\n".join([rule, line(table[0]), rule, *(line(cells) for cells in table[1:]), rule]))


def main(images: Path | None = None) -> int:
    from devise_app.engine.model import ImageEncoder

    encoder = ImageEncoder()
    load = f", load average {os.getloadavg()[0]:.1f} before starting" if hasattr(os, "getloadavg") else ""
    print(f"devise-app bench index: {os.cpu_count()} CPU cores{load}; model on {encoder.provider_note}")
    with tempfile.TemporaryDirectory(prefix="devise-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if images is not None:
            if not images.is_dir():
                print(f"devise-app: error: no such folder: {images}")
                return 1
            sample, sample_name = images, f"photos in {images}"
        elif SAMPLE_DIR.is_dir():
            sample, sample_name = SAMPLE_DIR, f"the ImageNet sample photos in {SAMPLE_DIR}"
        else:
            print(
                f"The ImageNet sample photos are not at {SAMPLE_DIR}: "
                f"using {GENERATED_SAMPLE_COUNT} generated 500x375 photos instead."
            )
            sample = tmp / "sample"
            _make_photos(sample, GENERATED_SAMPLE_COUNT, (500, 375), seed=1)
            sample_name = "generated photos"
        print(
            f"Sample: {sample_name}. Generating {LARGE_COUNT} JPEGs of {LARGE_SIZE[0]}x{LARGE_SIZE[1]} …",
            flush=True,
        )
        large = tmp / "large"
        _make_photos(large, LARGE_COUNT, LARGE_SIZE, seed=2)

        print("Measuring the sample photos …", flush=True)
        sample_result = measure_pipeline(sample, encoder, tmp / "sample-libraries")
        print("Measuring the 12 MP JPEGs …", flush=True)
        large_result = measure_pipeline(large, encoder, tmp / "large-libraries")
        print(f"Measuring Annoy on {ANN_ITEMS:,} vectors …", flush=True)
        ann = measure_ann(tmp)

    rows = _pipeline_rows("sample", sample_result, lambda r: ("", None))
    rows += _pipeline_rows(
        "12 MP JPEG",
        large_result,
        lambda r: (f">= {TARGET_LARGE_RATE:.0f} photos/s", r.end_to_end >= TARGET_LARGE_RATE),
    )
    rows += [
        Row(f"Annoy {ANN_ITEMS // 1000}k x {ANN_DIM}-d: build", f"{ann.build_s:.1f} s"),
        Row(
            "Annoy query top 10: p50",
            f"{ann.p50_ms:.2f} ms",
            f"<= {TARGET_QUERY_P50_MS:.0f} ms",
            ann.p50_ms <= TARGET_QUERY_P50_MS,
        ),
        Row("Annoy query top 10: p99", f"{ann.p99_ms:.2f} ms"),
        Row("Annoy recall@10 vs exact", f"{ann.recall:.3f}"),
    ]
    _print_table(rows)
    return 0

"""Helpers every benchmark shares: where the evaluation photos are, the photos a
benchmark makes for itself, the timed runs ``bench index`` and ``bench speed``
both make (the indexing pipeline, Annoy), and the table they print.

Nothing here needs the test extra: photos are made from the sample photos when
they are there, else from pictures generated here (scikit-image's sample photos
are a test fixture, not a benchmark dependency).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from devise_app.engine import imaging
from devise_app.engine.vectors import unit_rows

if TYPE_CHECKING:
    from devise_app.engine.indexer import IndexSummary
    from devise_app.engine.model import ImageEncoder
    from devise_app.engine.search import Library

DATASETS_ENV = "DEVISE_APP_DATASETS"
SOURCE_COUNT = 9  # pictures that generated photos are cut from
DECODE_TIMING_LIMIT = 300  # photos timed one by one for the decoding's time per photo


def dataset_dir(name: str) -> Path:
    """``shared/datasets/NAME``: under ``$DEVISE_APP_DATASETS`` when set, else the
    first ``shared/datasets`` beside the working folder or one of its parents (a
    checkout sits next to ``shared/``). The path may not exist; callers say so."""
    override = os.environ.get(DATASETS_ENV)
    if override:
        return Path(override) / name
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "datasets" / name
        if candidate.is_dir():
            return candidate
    return here.parent / "shared" / "datasets" / name


SAMPLE_DIR = dataset_dir("imagenet-sample")


@dataclass(frozen=True)
class Sizes:
    """How much work each part of a benchmark does; each benchmark reads the
    fields it uses and has its own full set (``bench.speed.FULL``,
    ``bench.index.FULL``), and a test runs either in seconds with tiny ones."""

    sample_limit: int | None = None  # photos of the sample set (None: all)
    generated_sample: int = 200  # photos made when the sample set is absent
    generated_sample_size: tuple[int, int] = (500, 375)
    large_count: int = 48
    large_size: tuple[int, int] = (4000, 3000)
    model_only_limit: int | None = None  # photos preprocessed in advance (about 0.6 MB each)
    naive_limit: int = 32  # photos run through the naive pipeline (it is slow)
    repeats: int = 2
    ann_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    ann_queries: int = 300
    rescan_files: int = 100_000
    memory_sizes: tuple[int, ...] = (100_000, 1_000_000)
    first_paint_runs: int = 3
    gui: bool = True


# -- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    measure: str
    value: str
    target: str = ""
    met: bool | None = None


def print_table(rows: Sequence[Row]) -> None:
    met = {None: "", True: "yes", False: "NO"}
    table = [("measure", "value", "target", "met")]
    table += [(row.measure, row.value, row.target, met[row.met]) for row in rows]
    widths = [max(len(cells[i]) for cells in table) for i in range(4)]
    rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    print("\n".join([rule, line(table[0]), rule, *(line(cells) for cells in table[1:]), rule]))


def say(message: str) -> None:
    print(message, flush=True)


def load_average(when: str, separator: str = ", ") -> str:
    """``", load average 1.2 WHEN"`` where the system has one, else ``""``."""
    return f"{separator}load average {os.getloadavg()[0]:.1f} {when}" if hasattr(os, "getloadavg") else ""


def machine_line(bench: str, encoder: ImageEncoder, more: str = "") -> str:
    """The first line of a benchmark's output: the machine and where the model runs."""
    cores = f"{os.cpu_count()} CPU cores{load_average('before starting')}"
    return f"devise-app bench {bench}: {cores}; model on {encoder.provider_note}{more}"


def count_label(n: int) -> str:
    """1000000 -> "1M", 100000 -> "100k", 300 -> "300"."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# -- photos ----------------------------------------------------------------------------------


def folder_missing(images: Path | None) -> bool:
    """Whether ``--images DIR`` names no folder (said on stderr)."""
    if images is None or images.is_dir():
        return False
    print(f"devise-app: error: no such folder: {images}", file=sys.stderr)
    return True


def images_in(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if imaging.is_image_path(path) and path.is_file())


@dataclass(frozen=True)
class PhotoSet:
    paths: list[Path]
    name: str  # how the output names the set
    generated: bool  # made here because the sample photos are absent

    def sources(self) -> list[np.ndarray]:
        """Pictures to cut more photos from: some of these photos, or (when they were
        generated) the generated pictures they were cut from."""
        return generated_pictures() if self.generated else source_pictures(self.paths)


def sample_photos(images: Path | None, workdir: Path, sizes: Sizes) -> PhotoSet:
    """The photos ``--images DIR`` names, else the ImageNet sample photos, else
    ``sizes.generated_sample`` generated ones (in ``workdir``)."""
    if images is not None:
        return PhotoSet(images_in(images)[: sizes.sample_limit], f"photos in {images}", False)
    if SAMPLE_DIR.is_dir():
        paths = images_in(SAMPLE_DIR)[: sizes.sample_limit]
        return PhotoSet(paths, f"the ImageNet sample photos in {SAMPLE_DIR}", False)
    count = sizes.generated_sample
    paths = make_photos(workdir, count, sizes.generated_sample_size, seed=1, sources=generated_pictures())
    return PhotoSet(paths, f"{count} generated photos", True)


def usable_sample(images: Path | None, workdir: Path, sizes: Sizes) -> PhotoSet | None:
    """``sample_photos``, saying when the photos had to be generated; None (with a
    one-line error) when ``--images DIR`` holds no photos."""
    sample = sample_photos(images, workdir, sizes)
    if sample.generated:
        say(missing_sample_note(sizes.generated_sample))
    if not sample.paths:
        print(f"devise-app: error: no photos in {images}", file=sys.stderr)
        return None
    return sample


def missing_sample_note(count: int) -> str:
    return f"The ImageNet sample photos are not at {SAMPLE_DIR}: {count} generated photos stand in for them."


def source_pictures(photos: Sequence[Path]) -> list[np.ndarray]:
    """Pictures to cut generated photos from, as RGB arrays: ``SOURCE_COUNT`` of
    ``photos`` spread over the set (real content, as a camera's would be), or
    generated pictures when there are none."""
    from PIL import Image

    if not photos:
        return generated_pictures()
    step = max(1, len(photos) // SOURCE_COUNT)
    pictures = []
    for path in list(photos)[::step][:SOURCE_COUNT]:
        with Image.open(path) as opened:
            pictures.append(np.asarray(opened.convert("RGB")))
    return pictures


def generated_pictures(
    count: int = SOURCE_COUNT, size: tuple[int, int] = (640, 480), seed: int = 0
) -> list[np.ndarray]:
    """``count`` made-up pictures with a photo's broad make-up: a smooth field of
    colour, a dozen soft-edged shapes and a fine grain."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    width, height = size
    pictures = []
    for _ in range(count):
        field = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
        img = Image.fromarray(field).resize(size, Image.Resampling.BICUBIC)
        draw = ImageDraw.Draw(img)
        for _ in range(12):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            r = int(rng.integers(height // 20, height // 4))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape((x - r, y - r, x + r, y + r), fill=colour)
        soft = np.asarray(img.filter(ImageFilter.GaussianBlur(2)), dtype=np.float32)
        grain = rng.normal(0.0, 4.0, soft.shape).astype(np.float32)
        pictures.append(np.clip(soft + grain, 0, 255).astype(np.uint8))
    return pictures


def make_photos(
    folder: Path, count: int, size: tuple[int, int], seed: int, sources: Sequence[np.ndarray]
) -> list[Path]:
    """``count`` JPEGs (quality 90) of ``size``: random crops of ``sources``, scaled
    (bicubic), every other one mirrored. Scaled up from small pictures they are
    smooth and compress to about 0.9 MB at 12 MP; camera files with sensor grain
    are larger and slower to decode."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
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


def link_folder(folder: Path, paths: Sequence[Path]) -> Path:
    """A new folder of numbered links to exactly ``paths``, so that photos of the
    same name in different folders all count, and nothing is copied."""
    folder.mkdir(parents=True)
    for i, path in enumerate(paths):
        (folder / f"{i:06d}-{path.name}").symlink_to(path.resolve())
    return folder


def warm_cache(paths: Sequence[Path]) -> None:
    """Read each file once, so that timings measure CPU work, not the disk."""
    for path in paths:
        path.read_bytes()


# -- the indexing pipeline ---------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineResult:
    photos: int
    megabytes: float  # mean file size
    end_to_end: float  # photos/s, the real index run
    ceiling: float  # photos/s, the model alone on inputs preprocessed in advance
    decode_ms: float  # wall time per photo to decode and preprocess (one thread)
    decode_cpu_ms: float  # CPU time of the same
    model_cpu_ms: float  # CPU time per photo in the model-only runs

    @property
    def ceiling_ratio(self) -> float:
        return self.end_to_end / self.ceiling

    @property
    def cpu_bound_limit(self) -> float:
        """The best end-to-end / ceiling ratio possible when every core is busy: the
        model's CPU time over the model's plus the decoding's."""
        return self.model_cpu_ms / (self.model_cpu_ms + self.decode_cpu_ms)


def index_to_end(library: Library, folders: Sequence[Path]) -> tuple[float, IndexSummary]:
    """Run an index of ``folders`` to its end: (seconds, its summary)."""
    started = time.perf_counter()
    summary = None
    for progress in library.index(folders):
        summary = progress.summary
    assert summary is not None
    return time.perf_counter() - started, summary


def timed_index_run(library_dir: Path, encoder: ImageEncoder, folder: Path) -> tuple[int, float]:
    """Index ``folder`` into a new library: (photos indexed, photos per second)."""
    from devise_app.engine.search import Library

    with Library(library_dir, encoder=encoder) as library:
        seconds, summary = index_to_end(library, [folder])
    return summary.indexed, summary.indexed / seconds


def decode_times(paths: Sequence[Path]) -> tuple[float, float]:
    """Wall and CPU milliseconds per photo of decoding and preprocessing, one photo
    after another, keeping nothing (as the pipeline does: its buffers are reused;
    keeping every result would also count the kernel handing out fresh memory)."""
    imaging.load_model_input(paths[0])
    started, cpu = time.perf_counter(), time.thread_time()
    for path in paths:
        imaging.load_model_input(path)
    wall_ms = (time.perf_counter() - started) * 1000 / len(paths)
    return wall_ms, (time.thread_time() - cpu) * 1000 / len(paths)


def measure_pipeline(
    paths: Sequence[Path], encoder: ImageEncoder, workdir: Path, sizes: Sizes
) -> PipelineResult:
    """The real index run of ``paths`` and the model alone on the same photos
    preprocessed in advance (the ceiling), alternated ``sizes.repeats`` times so
    both see the same conditions; the best of each counts (other load only ever
    slows a run)."""
    folder = link_folder(workdir / "photos", paths)
    warm_cache(paths)
    megabytes = sum(path.stat().st_size for path in paths) / len(paths) / 1e6
    decode_ms, decode_cpu_ms = decode_times(paths[:DECODE_TIMING_LIMIT])

    inputs = [imaging.load_model_input(path) for path in paths[: sizes.model_only_limit]]
    batch = encoder.batch_size
    batches = [np.stack(inputs[i : i + batch]) for i in range(0, len(inputs), batch)]
    count = len(inputs)
    del inputs
    encoder.embed(batches[0])  # warm-up

    ceiling = end_to_end = 0.0
    model_cpu_ms = float("inf")
    indexed = 0
    for attempt in range(sizes.repeats):
        started, cpu = time.perf_counter(), time.process_time()
        for chunk in batches:
            encoder.embed(chunk)
        ceiling = max(ceiling, count / (time.perf_counter() - started))
        model_cpu_ms = min(model_cpu_ms, (time.process_time() - cpu) * 1000 / count)

        indexed, rate = timed_index_run(workdir / f"library-{attempt}", encoder, folder)
        end_to_end = max(end_to_end, rate)
    return PipelineResult(indexed, megabytes, end_to_end, ceiling, decode_ms, decode_cpu_ms, model_cpu_ms)


# -- Annoy --------------------------------------------------------------------------------------


def cluster_centres(count: int, dim: int) -> np.ndarray:
    """The centres of ``count`` clustered vectors: one per 50 (photo vectors gather
    around words)."""
    return np.random.default_rng(0).standard_normal((max(1, count // 50), dim)).astype(np.float32)


def clustered_vectors(count: int, dim: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """``count`` float32 unit vectors: random ``centres`` plus Gaussian noise, so
    that neighbours are not trivially far apart."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, dim), np.float32)
    for start in range(0, count, 100_000):  # in slices: no float64 copy of a million rows
        n = min(100_000, count - start)
        chunk = centres[rng.integers(0, len(centres), n)]
        chunk += 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
        out[start : start + n] = unit_rows(chunk)
    return out


def _indexed_vectors(count: int, dim: int) -> np.ndarray:
    return clustered_vectors(count, dim, seed=1, centres=cluster_centres(count, dim))


@dataclass(frozen=True)
class AnnResult:
    items: int
    build_s: float
    file_mb: float
    p50_ms: float
    p99_ms: float
    recall: float


def build_ann(path: Path, count: int, dim: int) -> float:
    """Build the app's Annoy index of ``count`` clustered vectors at ``path``; seconds taken."""
    from devise_app.engine.ann import AnnIndex

    vectors = _indexed_vectors(count, dim)
    started = time.perf_counter()
    AnnIndex.build(path, np.arange(count, dtype=np.int64), vectors).close()
    return time.perf_counter() - started


def measure_ann(path: Path, count: int, dim: int, queries: int, build_s: float) -> AnnResult:
    """Latency and recall@10 against exact search of the app's queries (its own
    settings, ``devise_app.engine.ann``) on the index ``build_ann`` made at ``path``."""
    from devise_app.engine.ann import AnnIndex, exact_search

    vectors = _indexed_vectors(count, dim)  # the same as built
    probes = clustered_vectors(queries, dim, seed=2, centres=cluster_centres(count, dim))
    ids = np.arange(count, dtype=np.int64)
    index = AnnIndex(path, dim)
    for probe in probes[:10]:  # page in what a first query touches, as a warm app would have
        index.query(probe, 10)
    latencies, recalls = [], []
    for probe in probes:
        started = time.perf_counter()
        found = index.query(probe, 10)
        latencies.append(time.perf_counter() - started)
        exact = {item for item, _ in exact_search(ids, vectors, probe, 10)}
        recalls.append(len(exact & {item for item, _ in found}) / len(exact))
    index.close()
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    megabytes = path.stat().st_size / 1e6
    return AnnResult(count, build_s, megabytes, float(p50), float(p99), float(np.mean(recalls)))

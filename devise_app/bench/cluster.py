"""``devise-app bench cluster``: the Ray engine against the plain indexer, and what
10M photos would take on a cluster.

On the sample photos (``--images DIR``, else the ImageNet sample, else generated
photos), each into a new library:

- the plain indexer (``Library.index``): photos/s;
- the Ray engine (``engine.cluster``) on a local Ray with 1 and with 2 model
  workers, and with 1 on blocks of 96 photos as GPU actors get them: photos/s of
  each run, Ray's start measured apart (once, before them all);
- the overhead per photo: Ray's wall time per photo minus the plain run's, and
  the driver's own CPU time per photo: all of it (Ray Data's scheduling threads
  included, part of which is a fixed cost per second, not per photo) and that of
  the thread that receives the results and writes the catalog;
- whether the Ray library is the plain one: the same catalog rows, the same
  vectors (to 1e-5), the same top 10 for ``QUERIES`` (the issue's acceptance check).

Then a projection, clearly marked as one, for ``PROJECTED_PHOTOS`` photos on N GPU
nodes: from the decode CPU time per photo and the driver's CPU time per photo
(at blocks of 96) measured here, and an assumed model rate per GPU (no GPU is measured here).
A node embeds min(GPU rate, cores × 1000 / decode ms) photos/s, and N nodes are
capped by the one driver that writes the catalog.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from devise_app.bench import common
from devise_app.bench.common import Row, Sizes

if TYPE_CHECKING:
    from devise_app.engine.indexer import IndexSummary
    from devise_app.engine.search import Library

FULL = Sizes()
TINY = Sizes(sample_limit=24, generated_sample=24, generated_sample_size=(320, 240))
# (name, model workers, photos per block): the last one has the blocks GPU actors
# get, and its driver cost per photo goes into the projection.
RAY_RUNS = (
    ("1 model worker", 1, None),
    ("2 model workers", 2, None),
    ("1 model worker, blocks of 96 (as on GPUs)", 1, 96),
)
TOP = 10
VECTOR_TOLERANCE = 1e-5
# Twenty everyday queries, all in the shipped vocabulary.
QUERIES = (
    "dog", "cat", "bird", "fish", "car", "boat", "flower", "food", "tree", "house",
    "beach", "mountain", "snake", "insect", "fruit", "bridge", "clock", "shoe", "guitar", "horse",
)  # fmt: skip
PROJECTED_PHOTOS = 10_000_000
PROJECTED_NODES = (1, 4, 16, 64)
ASSUMED_GPU_RATE = 1200.0  # photos/s one GPU embeds at 288 px in batches of 96 (2,000 at 224): an assumption
ASSUMED_NODE_CORES = 32  # decode cores per GPU node: an assumption


# -- comparing two libraries ------------------------------------------------------------------


def library_contents(library_dir: Path) -> dict[str, Any]:
    """What a library holds, for comparison: its photo rows (id, path, size, mtime,
    hash, state, error) and each indexed photo's vector and features by id."""
    from devise_app.engine.catalog import Catalog

    catalog = Catalog.open(library_dir, create=False)
    try:
        rows = sorted((r.id, r.path, r.size, r.mtime_ns, r.hash, r.state, r.error) for r in catalog.records())
        ids, vectors = catalog.vectors()
        feature_ids, features = catalog.features()
    finally:
        catalog.close()
    return {"rows": rows, "ids": ids, "vectors": vectors, "feature_ids": feature_ids, "features": features}


def differences(a: dict[str, Any], b: dict[str, Any], tolerance: float = VECTOR_TOLERANCE) -> list[str]:
    """How two ``library_contents`` differ, one line each; empty when they agree."""
    found = []
    if a["rows"] != b["rows"]:
        only_a, only_b = set(a["rows"]) - set(b["rows"]), set(b["rows"]) - set(a["rows"])
        found.append(f"catalog rows differ: {sorted(only_a)[:3]} vs {sorted(only_b)[:3]}")
    for ids, values in (("ids", "vectors"), ("feature_ids", "features")):
        if not np.array_equal(a[ids], b[ids]):
            found.append(f"{values}: different photos")
        elif len(a[values]) and not np.allclose(a[values], b[values], atol=tolerance, rtol=0):
            found.append(f"{values} differ by up to {np.abs(a[values] - b[values]).max():.2e}")
    return found


def top_hits(library: Library, queries: Iterable[str] = QUERIES, top: int = TOP) -> dict[str, list[str]]:
    """The top ``top`` photo paths of each query."""
    return {query: [os.fspath(hit.path) for hit in library.search(query, top)] for query in queries}


def summary_facts(summary: IndexSummary) -> tuple[object, ...]:
    """What two runs' summaries must share (everything but the time taken)."""
    skipped = sorted((os.fspath(item.path), item.reason) for item in summary.skipped)
    return summary.indexed, summary.unchanged, summary.moved, summary.removed, skipped, summary.cancelled


# -- the runs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    photos: int
    seconds: float
    driver_cpu: float  # this process's CPU seconds during the run (Ray Data's threads included)
    writer_cpu: float  # the CPU seconds of the thread that received and stored the results

    @property
    def rate(self) -> float:
        return self.photos / self.seconds


def _run(progress: Iterable[Any]) -> tuple[Timed, IndexSummary]:
    started, cpu, thread_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    summary = None
    for item in progress:
        summary = item.summary
    assert summary is not None
    seconds = time.perf_counter() - started
    timed = Timed(summary.indexed, seconds, time.process_time() - cpu, time.thread_time() - thread_cpu)
    return timed, summary


def projection_rows(decode_cpu_ms: float, driver_ms: float) -> list[Row]:
    """The cost model (see the module docstring), one row per cluster size."""
    node_rate = min(ASSUMED_GPU_RATE, ASSUMED_NODE_CORES * 1000.0 / decode_cpu_ms)
    driver_rate = 1000.0 / driver_ms if driver_ms > 0 else float("inf")
    rows = [
        Row(
            "PROJECTION: one GPU node",
            f"{node_rate:,.0f} photos/s",
            f"assumed {ASSUMED_GPU_RATE:,.0f}/s per GPU, {ASSUMED_NODE_CORES} decode cores",
        ),
        Row("PROJECTION: driver (catalog writes) limit", f"{driver_rate:,.0f} photos/s"),
    ]
    for nodes in PROJECTED_NODES:
        rate = min(nodes * node_rate, driver_rate)
        hours = PROJECTED_PHOTOS / rate / 3600
        bound = "driver-bound" if rate == driver_rate else "node-bound"
        rows.append(
            Row(
                f"PROJECTION: {common.count_label(PROJECTED_PHOTOS)} photos on {nodes} GPU nodes",
                f"{hours:,.1f} h ({hours * nodes:,.0f} GPU-node-hours)",
                bound,
            )
        )
    return rows


def main(images: Path | None = None, sizes: Sizes = FULL) -> int:
    from devise_app.engine import cluster

    if images is not None and not images.is_dir():
        print(f"devise-app: error: no such folder: {images}", file=sys.stderr)
        return 1
    if not cluster.ray_available():
        print(f"devise-app: error: {cluster.INSTALL_HINT}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="devise-bench-cluster-") as tmp_name:
        return _measure(images, sizes, Path(tmp_name))


def _measure(images: Path | None, sizes: Sizes, tmp: Path) -> int:
    from devise_app.engine import cluster
    from devise_app.engine.model import ImageEncoder
    from devise_app.engine.search import Library

    encoder = ImageEncoder()
    common.say(common.machine_line("cluster", encoder, f"; Ray {_ray_version()}"))
    sample = common.usable_sample(images, tmp / "generated", sizes)
    if sample is None:
        return 1
    folder = common.link_folder(tmp / "photos", sample.paths)
    common.warm_cache(sample.paths)
    _, decode_cpu_ms = common.decode_times(sample.paths[: common.DECODE_TIMING_LIMIT])

    common.say(f"Sample: {sample.name}. The plain indexer …")
    with Library(tmp / "plain", encoder=encoder) as library:
        plain, plain_summary = _run(library.index([folder]))
        plain_hits = top_hits(library)
    plain_contents = library_contents(tmp / "plain")

    workers = max(count for _, count, _ in RAY_RUNS)
    options = cluster.RayOptions(local_cpus=max(os.cpu_count() or 1, workers + 1))
    session = cluster.start_local(options)
    try:
        runs: dict[str, tuple[Timed, list[str]]] = {}
        for i, (name, count, batch) in enumerate(RAY_RUNS):
            common.say(f"Ray, {name} …")
            run_options = cluster.RayOptions(model_workers=count, model_batch=batch)
            runs[name] = _ray_run(tmp / f"ray-{i}", folder, run_options, encoder, plain_summary)
            runs[name][1].extend(differences(library_contents(tmp / f"ray-{i}"), plain_contents))
            if i == 0:
                with Library(tmp / f"ray-{i}", encoder=encoder) as library:
                    if top_hits(library) != plain_hits:
                        runs[name][1].append(f"top {TOP} differ for some of the {len(QUERIES)} queries")
    finally:
        session.close()
    common.print_table(_rows(plain, runs, session.start_seconds, decode_cpu_ms))
    return 0


def _ray_run(
    library_dir: Path, folder: Path, options: Any, encoder: Any, plain_summary: IndexSummary
) -> tuple[Timed, list[str]]:
    from devise_app.engine import cluster
    from devise_app.engine.search import Library

    with Library(library_dir, encoder=encoder) as library:
        timed, summary = _run(cluster.index_on_ray(library, [folder], options))
    problems = [] if summary_facts(summary) == summary_facts(plain_summary) else ["summaries differ"]
    return timed, problems


def _rows(
    plain: Timed, runs: dict[str, tuple[Timed, list[str]]], start_s: float, decode_cpu_ms: float
) -> list[Row]:
    rows = [
        Row(f"plain indexer ({plain.photos} photos)", f"{plain.rate:.1f} photos/s"),
        Row("Ray: local start (once)", f"{start_s:.1f} s"),
    ]
    for name, (timed, _) in runs.items():
        overhead = (1 / timed.rate - 1 / plain.rate) * 1000
        rows += [
            Row(f"Ray, {name}", f"{timed.rate:.1f} photos/s"),
            Row(f"Ray, {name}: overhead per photo vs plain (wall)", f"{overhead:+.1f} ms"),
            Row(
                f"Ray, {name}: driver CPU per photo (writer thread)",
                f"{_ms(timed.driver_cpu, timed.photos)} ms ({_ms(timed.writer_cpu, timed.photos)})",
            ),
        ]
    same = not any(problems for _, problems in runs.values())
    rows.append(
        Row(
            f"Ray library = plain library (rows, vectors, top {TOP} of {len(QUERIES)} queries)",
            "same" if same else "; ".join(p for _, ps in runs.values() for p in ps)[:200],
            "same",
            same,
        )
    )
    rows.append(Row("decode + preprocess CPU, 1 thread", f"{decode_cpu_ms:.1f} ms/photo"))
    gpu_sized = runs[RAY_RUNS[-1][0]][0]  # the driver's cost per photo at the blocks GPU actors get
    return rows + projection_rows(decode_cpu_ms, gpu_sized.driver_cpu / gpu_sized.photos * 1000)


def _ms(seconds: float, photos: int) -> str:
    return f"{seconds / photos * 1000:.2f}"


def _ray_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("ray")

"""The Ray engine's acceptance check through the real command (issue 14):

    .venv/bin/python scripts/check-ray-engine.py [FOLDER]   # default: ../shared/datasets/imagenet-sample

runs ``devise-app index FOLDER --library L1 --engine ray`` and a plain
``devise-app index FOLDER --library L2`` (new libraries in a temporary folder),
then compares the two: the catalog rows (ids, paths, sizes, mtimes, hashes,
states, errors), the vectors and features (to 1e-5), and the top 10 of 20
queries. Prints what differs and exits 1, or says they are the same.
tests/test_cluster.py checks the same on scikit-image's photos.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devise_app.bench.cluster import QUERIES, differences, library_contents, top_hits
from devise_app.bench.common import dataset_dir


def index(folder: Path, library: Path, *extra: str) -> float:
    """Run the command; the seconds it took."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "devise_app", "index", str(folder), "--library", str(library), *extra]
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def main() -> int:
    from devise_app.engine.search import Library

    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else dataset_dir("imagenet-sample")
    with tempfile.TemporaryDirectory(prefix="devise-check-ray-") as tmp_name:
        tmp = Path(tmp_name)
        ray_s = index(folder, tmp / "L1", "--engine", "ray")
        plain_s = index(folder, tmp / "L2")
        found = differences(library_contents(tmp / "L1"), library_contents(tmp / "L2"))
        with Library(tmp / "L1") as ray_library, Library(tmp / "L2") as plain_library:
            ray_hits, plain_hits = top_hits(ray_library), top_hits(plain_library)
        found += [f"top 10 of {query!r} differ" for query in QUERIES if ray_hits[query] != plain_hits[query]]
        photos = len(library_contents(tmp / "L2")["ids"])
    print(f"{folder}: {photos} photos; Ray run {ray_s:.1f} s, plain run {plain_s:.1f} s")
    for line in found:
        print(f"DIFFERENT: {line}")
    if not found:
        print(f"same catalog rows, vectors (to 1e-5) and top 10 for {len(QUERIES)} queries")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Nearest-neighbour search over the catalog's vectors with Annoy.

One code path for every library size: an Annoy index (angular metric, item id =
photo id), queried with ``search_k`` at least ``MIN_SEARCH_K``. Annoy gathers
candidates until it holds ``search_k`` of them, so a library smaller than that is
searched exhaustively (exact results), and a large one gets high recall
(``devise-app bench speed`` measures recall@10 against ``exact_search`` up to a
million vectors).

The index file is written to a temporary file in the library folder and then
``os.replace``'d over the old one, and loaded memory-mapped (``prefault=False``),
so opening a large library costs almost nothing. A JSON sidecar, written the same
way after the index, records the catalog generation the index was built from; the
index is rebuilt only when the catalog's generation differs.

Several processes may search one library (the GUI while ``devise-app index``
runs). Rebuilds take an exclusive lock on ``vectors.lock`` (``flock``; on Windows
``msvcrt.locking``) and look at the sidecar again once they hold it: two
builders interleaving their two renames could otherwise leave one's index under
the other's newer sidecar, a stale index that nothing would rebuild. Under the
lock no other build is running, so temporary files found then are leftovers of a
killed build and are removed. Each step of a rebuild is a crash point for the
tests (``devise_app.engine.faults``).

Annoy trusts its file: one overwritten with random bytes of the right size made
every query die with SIGSEGV, and a zero-filled one answered "no photos". So the
sidecar also records the file's size, modification time and a digest of its
first and last megabyte, checked before the file is loaded; an index that does
not match is rebuilt from the catalog instead (a full-content check would read
hundreds of megabytes at every start; ``devise-app check`` is the place for that).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from devise_app.engine.catalog import Catalog
from devise_app.engine.errors import LibraryError
from devise_app.engine.faults import crash_point

log = logging.getLogger("devise_app.ann")

INDEX_FILENAME = "vectors.annoy"
# How long a rebuild waits for another process's rebuild (which takes seconds even
# at a million photos) before it gives up with a message; the variable overrides.
LOCK_WAIT_ENV = "DEVISE_APP_LOCK_WAIT_S"
DEFAULT_LOCK_WAIT_S = 120.0
LOCK_POLL_S = 0.05
SIDECAR_FILENAME = "vectors.json"
LOCK_FILENAME = "vectors.lock"
METRIC: Final[Literal["angular"]] = "angular"
# Chosen with ``devise-app bench speed`` at 1M clustered 114-d vectors (2-core CPU):
# 10 trees, search_k 5000: recall@10 0.955, p50 1.1 ms; 16 trees, search_k 4000:
# recall@10 0.975, p50 1.0 ms, a 660 MB file (590 MB with 10) and a 1.6 times
# longer build; 20 trees, search_k 3000: 0.972, 1.1 ms, 713 MB. At the model's
# 128-d now, 16 trees and search_k 4000: recall@10 0.969, p50 1.53 ms, 716 MB.
N_TREES = 16
MIN_SEARCH_K = 4_000


def angular_to_cosine(distance: np.ndarray) -> np.ndarray:
    """Annoy's angular distance is sqrt(2 - 2 cos) for unit vectors."""
    return 1.0 - np.square(distance) / 2.0


def exact_search(ids: np.ndarray, vectors: np.ndarray, query: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k best (id, cosine) by brute force; the reference for recall."""
    if len(ids) == 0 or k <= 0:
        return []
    scores = vectors @ (query / max(float(np.linalg.norm(query)), 1e-12))
    k = min(k, len(ids))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in best]


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    crash_point("before-sidecar-replace")
    os.replace(tmp, path)


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` against other processes, and
    against other open files of it in this process."""
    with open(path, "a+b") as file:
        if sys.platform == "win32":
            import msvcrt

            while True:
                try:
                    msvcrt.locking(file.fileno(), msvcrt.LK_LOCK, 1)  # gives up after 10 s: retry
                    break
                except OSError:
                    continue
            try:
                yield
            finally:
                file.seek(0)
                msvcrt.locking(file.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            _wait_for_lock(file.fileno(), path)
            try:
                yield
            finally:
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)


def _lock_wait_s() -> float:
    try:
        return max(0.0, float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_S)))
    except ValueError:
        return DEFAULT_LOCK_WAIT_S


def _wait_for_lock(descriptor: int, path: Path) -> None:
    """Take the lock, waiting at most ``_lock_wait_s()``: a process that holds it and
    is stopped (Ctrl+Z, a debugger) used to make every search wait forever, silently."""
    import fcntl

    deadline = time.monotonic() + _lock_wait_s()
    said = False
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LibraryError(
                    f"another devise-app process is rebuilding this library's search index and has not "
                    f"finished in {_lock_wait_s():.0f} s (it holds {path}); if it was stopped, resume or "
                    "end it, then try again"
                ) from None
            if not said:
                log.warning("waiting for another process to finish the search index (%s)", path)
                said = True
            time.sleep(LOCK_POLL_S)


def write_index(path: Path, ids: np.ndarray, vectors: np.ndarray, n_trees: int = N_TREES) -> Path:
    """Build an index of (N,) ids and (N, dim) vectors into a temporary file beside
    ``path``, and return that file: the caller ``os.replace``s it over ``path``."""
    from annoy import AnnoyIndex

    index = AnnoyIndex(vectors.shape[1], METRIC)
    for item, vector in zip(ids.tolist(), vectors, strict=True):
        index.add_item(item, vector)
    index.build(n_trees, n_jobs=-1)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        index.save(os.fspath(tmp))
        index.unload()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


class AnnIndex:
    """A built Annoy index, memory-mapped from its file."""

    def __init__(self, path: Path, dim: int) -> None:
        from annoy import AnnoyIndex

        self.path = path
        self.dim = dim
        self._index = AnnoyIndex(dim, METRIC)
        if not self._index.load(os.fspath(path), prefault=False):
            raise OSError(f"cannot load the vector index {path}")
        self.count = self._index.get_n_items()

    @classmethod
    def build(cls, path: Path, ids: np.ndarray, vectors: np.ndarray, n_trees: int = N_TREES) -> AnnIndex:
        """Build from (N,) ids and (N, dim) vectors, write it atomically to ``path``, load it."""
        tmp = write_index(path, ids, vectors, n_trees)
        os.replace(tmp, path)
        return cls(path, vectors.shape[1])

    def query(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k nearest (id, cosine), best first."""
        if k <= 0 or self.count == 0:
            return []
        search_k = max(MIN_SEARCH_K, k * N_TREES * 4)
        items, distances = self._index.get_nns_by_vector(
            np.asarray(vector, dtype=np.float32).tolist(), k, search_k=search_k, include_distances=True
        )
        scores = angular_to_cosine(np.asarray(distances, dtype=np.float64))
        return [(int(item), float(score)) for item, score in zip(items, scores, strict=True)]

    def item_vector(self, item: int) -> np.ndarray:
        return np.asarray(self._index.get_item_vector(item), dtype=np.float32)

    def problem_with(self, ids: np.ndarray, vectors: np.ndarray) -> str | None:
        """Whether it holds exactly these vectors under these ids (None: it does)."""
        if self.count != (int(ids.max()) + 1 if len(ids) else 0):
            return "the search index holds other photos than the catalog"
        for start in range(0, len(ids), CHECK_CHUNK):
            stored = np.stack([self.item_vector(int(i)) for i in ids[start : start + CHECK_CHUNK]])
            expected = vectors[start : start + CHECK_CHUNK]
            norms = np.linalg.norm(stored, axis=1) * np.linalg.norm(expected, axis=1)
            cosine = (stored * expected).sum(axis=1) / np.maximum(norms, 1e-12)
            if (1.0 - cosine > CHECK_TOLERANCE).any():
                return "the search index holds other vectors than the catalog"
        return None

    def close(self) -> None:
        self._index.unload()


CHECK_CHUNK = 4096
CHECK_TOLERANCE = 1e-4  # cosine distance of the index's copy of a vector to the catalog's
SAMPLE_BYTES = 1 << 20  # of each end of the index file, for its stamp


@dataclass(frozen=True)
class FileStamp:
    """What an index file was when it was built: any write since changes it."""

    size: int
    mtime_ns: int
    sample: str  # digest of the first and last SAMPLE_BYTES

    @classmethod
    def of(cls, path: Path) -> FileStamp | None:
        try:
            with path.open("rb") as file:
                st = os.fstat(file.fileno())
                digest = hashlib.blake2b(file.read(SAMPLE_BYTES), digest_size=16)
                if st.st_size > SAMPLE_BYTES:
                    file.seek(max(SAMPLE_BYTES, st.st_size - SAMPLE_BYTES))
                    digest.update(file.read(SAMPLE_BYTES))
        except OSError:
            return None
        return cls(st.st_size, st.st_mtime_ns, digest.hexdigest())


@dataclass(frozen=True)
class IndexInfo:
    """The sidecar: what the index file on disk was built from."""

    generation: int
    count: int
    dim: int
    trees: int
    built_at: float
    file: FileStamp | None = None  # None: no file (an empty library)

    @classmethod
    def parse(cls, text: str) -> IndexInfo | None:
        """The sidecar's contents, or None if they are not a whole, well-typed sidecar."""
        try:
            data = json.loads(text)
            raw = data.get("file")
            stamp = FileStamp(int(raw["size"]), int(raw["mtime_ns"]), str(raw["sample"])) if raw else None
            info = cls(
                int(data["generation"]), int(data["count"]), int(data["dim"]), int(data["trees"]),
                float(data["built_at"]), stamp,
            )  # fmt: skip
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return None
        if info.count < 0 or info.dim <= 0 or (info.count and info.file is None):
            return None  # an older sidecar without a stamp: rebuild once
        return info


class VectorIndex:
    """The library's search index, kept in step with its catalog. Thread-safe.

    Queries and the swap to a new index take a short lock; building a new index
    (the slow part) happens outside it, so readers wait only for the swap.
    """

    def __init__(self, library_dir: Path, catalog: Catalog) -> None:
        self.index_path = library_dir / INDEX_FILENAME
        self.sidecar_path = library_dir / SIDECAR_FILENAME
        self.lock_path = library_dir / LOCK_FILENAME
        self._catalog = catalog
        self._index: AnnIndex | None = None
        self._generation: int | None = None  # what self._index (or the empty index) reflects
        self._lock = threading.Lock()  # guards _index and _generation; held while querying
        self._build_lock = threading.Lock()  # one load or rebuild at a time
        self.builds = 0  # how many times this object rebuilt the index (tests look)

    def _read_sidecar(self) -> IndexInfo | None:
        try:
            return IndexInfo.parse(self.sidecar_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None

    def ensure_current(self, allow_stale: bool = False) -> bool:
        """Load or rebuild the index so it reflects the catalog; True if it was rebuilt.

        With ``allow_stale`` an index already loaded is kept as it is: searches
        during an index run use it rather than rebuilding after every batch.
        """
        if allow_stale and self._generation is not None:
            return False
        with self._build_lock:
            if self._load_current(self._catalog.generation()):
                return False
            with _exclusive(self.lock_path):
                # Another process may have built it while this one waited for the lock.
                generation = self._catalog.generation()
                if self._load_current(generation):
                    return False
                self._remove_leftovers()
                self._rebuild(generation)
                return True

    def _load_current(self, generation: int) -> bool:
        """Whether the index of ``generation`` is loaded now (loading it from its
        file if the sidecar says that file is of that generation)."""
        if self._generation == generation:
            return True
        info = self._read_sidecar()
        if info is None or info.generation != generation:
            return False
        if info.count and FileStamp.of(self.index_path) != info.file:
            return False  # overwritten, truncated or damaged since it was built: rebuild
        try:
            self._swap(generation, lambda: AnnIndex(self.index_path, info.dim) if info.count else None)
        except OSError:
            return False  # missing or damaged: rebuild
        return True

    def _remove_leftovers(self) -> None:
        """Temporary files of builds that were killed; call with the lock held."""
        for name in (INDEX_FILENAME, SIDECAR_FILENAME):
            for leftover in self.index_path.parent.glob(f"{name}.tmp-*"):
                with suppress(OSError):  # gone already, or in use (Windows): the next build tries
                    leftover.unlink()

    def _swap(self, generation: int, make: Callable[[], AnnIndex | None]) -> None:
        """Unload the current index, then put what ``make`` returns in its place."""
        with self._lock:
            if self._index is not None:
                self._index.close()  # before touching its file: Windows cannot replace a mapped file
            self._index = None
            self._generation = None
            self._index = make()
            self._generation = generation

    def _rebuild(self, generation: int) -> None:
        crash_point("before-index-build")
        started = time.time()
        ids, vectors = self._catalog.vectors()
        if len(ids):
            tmp = write_index(self.index_path, ids, vectors)
            crash_point("after-index-temp")

            def install() -> AnnIndex:
                crash_point("before-index-replace")
                os.replace(tmp, self.index_path)
                return AnnIndex(self.index_path, vectors.shape[1])

            try:
                self._swap(generation, install)
            finally:
                tmp.unlink(missing_ok=True)
            crash_point("after-index-replace")
            stamp = FileStamp.of(self.index_path)
        else:
            stamp = None

            def remove() -> None:
                self.index_path.unlink(missing_ok=True)

            self._swap(generation, remove)
        info = IndexInfo(generation, len(ids), vectors.shape[1], N_TREES, started, stamp)
        _atomic_write_json(self.sidecar_path, asdict(info))
        crash_point("after-sidecar")
        self.builds += 1

    def problem(self) -> str | None:
        """What is wrong with the index on disk, or None. An index behind the catalog,
        or not built yet, is not damage: the next search builds it."""
        with self._build_lock, _exclusive(self.lock_path):
            info = self._read_sidecar()
            if info is None:
                if self.index_path.exists():
                    return f"the search index's sidecar ({SIDECAR_FILENAME}) is missing or damaged"
                return None
            if info.generation != self._catalog.generation() or not info.count:
                return None
            if FileStamp.of(self.index_path) != info.file:
                return f"the search index file ({INDEX_FILENAME}) changed since it was built"
            ids, vectors = self._catalog.vectors()
            if info.count != len(ids) or info.dim != (vectors.shape[1] if len(ids) else info.dim):
                return (
                    f"the search index holds {info.count} photos of {info.dim} dimensions, the catalog other"
                )
            try:
                index = AnnIndex(self.index_path, info.dim)
            except OSError as exc:
                return f"the search index cannot be loaded: {exc}"
            try:
                return index.problem_with(ids, vectors)
            finally:
                index.close()

    def rebuild(self) -> None:
        """Build the index anew from the catalog, whatever the sidecar says."""
        with self._build_lock, _exclusive(self.lock_path):
            self._remove_leftovers()
            self._rebuild(self._catalog.generation())

    def search(self, vector: np.ndarray, k: int, allow_stale: bool = False) -> list[tuple[int, float]]:
        """The k nearest indexed photos as (photo id, cosine), best first."""
        self.ensure_current(allow_stale)
        with self._lock:
            return [] if self._index is None else self._index.query(vector, k)

    def close(self) -> None:
        with self._build_lock, self._lock:
            if self._index is not None:
                self._index.close()
            self._index = None
            self._generation = None

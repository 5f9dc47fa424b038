"""Scanning folders and bringing the catalog up to date, as a generator of progress.

``index_folders`` is a plain generator: the CLI prints what it yields, the GUI
runs it in a worker thread and forwards what it yields as signals. It can be
cancelled between batches with a ``threading.Event``; everything written until
then is committed batch by batch, so the next run resumes where it stopped.

A run goes like this:

1. Scan the folders (recursively; hidden entries and the folders and files the
   catalog lists as excluded skipped; symlinks followed, each directory visited
   once by (st_dev, st_ino), so loops end; broken links reported).
2. Compare with the catalog: a file with the size and mtime it had is unchanged
   (a file that failed before is not retried until it changes); a catalogued file
   under a scanned folder that was not found is missing, and so is one outside
   them whose file is gone, if a new file has its size (a folder renamed, then
   indexed under its new name; only those matched by content move, the others
   are left for a run over their own folder).
3. Work through the new and changed files in batches. A thread pool reads each
   file, hashes it (blake2b of the whole file: exact, and at about 1 GB/s cheap
   next to decoding) and, unless an indexed photo already has those bytes,
   decodes and preprocesses it; Pillow and hashlib release the GIL, so the next
   batches decode while the model runs on this one, in a thread of its own, while
   the batch before it is written to the catalog. A file whose bytes match a
   missing photo is that photo moved: its row (id, labels, vector) takes the new
   path and nothing is re-embedded. Files of the same size as some missing
   photo go first, so once they are done the remaining missing photos are known
   to be deleted, and are removed before the long part of the run.
4. Files that cannot be read are recorded with the reason and counted; they
   never stop the run. A file that vanishes or changes while it is being read
   is reported but not recorded, so the next run looks at it afresh; a name
   that is not valid UTF-8 is reported and left alone (the catalog cannot hold it).
   Each photo read also gets its date taken (``imaging.date_taken``: EXIF, else
   the file's mtime), read from the header by the same worker.

The model is loaded only when the first photo needs embedding, once per run.

Loading and embedding can be done elsewhere: a ``Loader`` (``index_folders(...,
loader=)``; the Ray engine, ``devise_app.engine.cluster``, is one) is handed the
files of step 3 and yields them back loaded and embedded, in order, in batches;
everything else (scan, compare, moves, removals, what is stored and counted) is
this module's, whichever does the heavy part.
The moments where a crash matters (after the scan, on either side of each
batch's commit, in the model thread, after the removals, after the last batch)
are crash points for the tests (``devise_app.engine.faults``).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from devise_app.engine import imaging
from devise_app.engine.catalog import ERROR, INDEXED, STALE, UNKNOWN_HEAD, Catalog, LibraryError, PhotoRecord
from devise_app.engine.faults import crash_point

if TYPE_CHECKING:
    from devise_app.engine.model import ImageEncoder

log = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 16  # for an encoder that suggests none
HASH_CHUNK = 1 << 20
SCAN_PROGRESS_EVERY = 500  # files
VANISHED = "file vanished"
CHANGED = "file changed while being indexed; the next run indexes it"
NOT_UTF8 = "name is not valid UTF-8 (cannot be stored in the catalog)"
# Files that were not there, or not whole, when read: reported, but not recorded in
# the catalog, so that the next run looks at them afresh.
NOT_RECORDED = frozenset({VANISHED, CHANGED})

# Given a batch's features inside its transaction: the fingerprint of the head in
# use and the vectors it makes of them (devise_app.engine.labels.current_head).
HeadedVectors = Callable[[np.ndarray], tuple[str, np.ndarray]]

# Memory for model input: every photo becomes a (3, INPUT_SIZE, INPUT_SIZE) float32
# array, and a run holds at most five batches of them at once: the stacked copies
# of the batch being embedded and of the next one (a photo's own array is dropped
# once it is stacked), the batch being stacked and two batches decoding ahead. A
# batch is capped at MAX_BATCH_BYTES, whatever batch size the caller or the encoder asks.
IMAGE_INPUT_BYTES = 3 * imaging.INPUT_SIZE * imaging.INPUT_SIZE * np.dtype(np.float32).itemsize
MAX_BATCH_BYTES = 64 << 20


@dataclass(frozen=True)
class SkippedFile:
    path: Path
    reason: str


@dataclass(frozen=True)
class IndexSummary:
    """The outcome of one run."""

    indexed: int  # new or changed photos now searchable
    unchanged: int
    moved: int  # recognised by content after a move or rename; not re-embedded
    removed: int  # deleted from disk, so dropped from the catalog
    skipped: tuple[SkippedFile, ...]  # could not be indexed, with the reason
    cancelled: bool
    elapsed: float

    def skipped_reasons(self) -> Counter[str]:
        return Counter(item.reason for item in self.skipped)


@dataclass(frozen=True)
class IndexProgress:
    """One step of a run. The last one has ``finished`` True and a ``summary``."""

    phase: str  # "scanning", "indexing", "finished"
    done: int  # files dealt with (unchanged ones included)
    total: int  # image files found (so far, while scanning)
    indexed: int
    unchanged: int
    moved: int
    removed: int
    skipped: int
    current: Path | None
    elapsed: float
    eta: float | None  # seconds left, once there is a rate to go by
    summary: IndexSummary | None = None

    @property
    def finished(self) -> bool:
        return self.summary is not None


@dataclass(frozen=True)
class FoundFile:
    path: str
    size: int
    mtime_ns: int


def check_folders(folders: Sequence[Path | str]) -> list[Path]:
    """The folders as absolute real paths; LibraryError for one that is not a folder."""
    if not folders:
        raise LibraryError("no folder to index")
    roots = []
    for folder in folders:
        root = Path(os.path.realpath(folder))
        if not root.exists():
            raise LibraryError(f"no such folder: {folder}")
        if not root.is_dir():
            raise LibraryError(f"not a folder: {folder}")
        roots.append(root)
    return roots


def _os_error_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(exc, FileNotFoundError):
        return VANISHED
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot read: {exc.strerror or exc}"


def max_batch_size() -> int:
    """The most photos one batch may hold (see MAX_BATCH_BYTES)."""
    return max(1, MAX_BATCH_BYTES // IMAGE_INPUT_BYTES)


def _storable(name: str) -> bool:
    """Whether a name can go into the catalog: SQLite text is UTF-8, and a name
    that is not valid UTF-8 comes from the OS with surrogate escapes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan(
    roots: Sequence[Path],
    skipped: list[SkippedFile],
    unreadable: list[str],
    excluded: frozenset[str] = frozenset(),
) -> Iterator[FoundFile]:
    """Every image file under ``roots``, each directory visited once, except the
    folders and files in ``excluded`` (absolute paths).

    Problems are appended to ``skipped``; folders that could not be listed also
    go to ``unreadable`` (their catalogued photos must not count as deleted).
    Files and folders whose names are not valid UTF-8 are skipped: the catalog
    cannot hold them, and one such name used to stop the whole run.
    """
    seen_dirs: set[tuple[int, int]] = set()
    for root in roots:
        if not _storable(os.fspath(root)):
            skipped.append(SkippedFile(root, f"folder {NOT_UTF8}"))
            continue
        stack = [os.fspath(root)]
        while stack:
            folder = stack.pop()
            try:
                st = os.stat(folder)
                if (st.st_dev, st.st_ino) in seen_dirs:
                    continue
                seen_dirs.add((st.st_dev, st.st_ino))
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda entry: entry.name)
            except OSError as exc:
                skipped.append(SkippedFile(Path(folder), f"cannot read folder: {_os_error_reason(exc)}"))
                unreadable.append(folder)
                continue
            subfolders = []
            for entry in entries:
                if entry.name.startswith(".") or entry.path in excluded:
                    continue
                try:
                    if entry.is_dir():
                        if _storable(entry.name):
                            subfolders.append(entry.path)
                        else:
                            skipped.append(SkippedFile(Path(entry.path), f"folder {NOT_UTF8}"))
                    elif imaging.is_image_path(entry.name):
                        if not _storable(entry.name):
                            skipped.append(SkippedFile(Path(entry.path), f"file {NOT_UTF8}"))
                        elif entry.is_file():
                            st = entry.stat()
                            yield FoundFile(entry.path, st.st_size, st.st_mtime_ns)
                        elif entry.is_symlink():
                            skipped.append(SkippedFile(Path(entry.path), "broken link"))
                except OSError as exc:
                    skipped.append(SkippedFile(Path(entry.path), _os_error_reason(exc)))
            stack.extend(reversed(subfolders))  # depth first, in name order


def hash_file(path: str) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.digest()


@dataclass
class _Loaded:
    """What a worker thread made of one file."""

    hash: bytes | None = None
    pixels: np.ndarray | None = None  # model input; None when not decoded
    error: str | None = None
    vector: np.ndarray | None = None  # once embedded, or reused from a photo with the same bytes
    features: np.ndarray | None = None
    taken_at: float | None = None  # from the photo's EXIF; None: its mtime is used


def _load(found: FoundFile, reusable: frozenset[bytes]) -> _Loaded:
    """Hash a file and, unless its bytes are already embedded, decode it. Never raises."""
    try:
        content_hash = hash_file(found.path)
    except OSError as exc:
        return _Loaded(error=_os_error_reason(exc))
    if content_hash in reusable:
        return _unless_changed(found, _Loaded(hash=content_hash, taken_at=imaging.date_taken(found.path)))
    return _unless_changed(found, _decode(found.path, content_hash))


def _unless_changed(found: FoundFile, loaded: _Loaded) -> _Loaded:
    """``loaded``, unless the file changed since the scan saw it: its hash and its
    pixels may then come from different bytes, and the vector stored under that
    hash would be handed on to any other file with those bytes."""
    try:
        st = os.stat(found.path)
    except OSError as exc:
        return _Loaded(error=_os_error_reason(exc))
    if (st.st_size, st.st_mtime_ns) != (found.size, found.mtime_ns):
        return _Loaded(error=CHANGED)
    return loaded


def _decode(path: str, content_hash: bytes | None) -> _Loaded:
    try:
        pixels = imaging.load_model_input(path)
        return _Loaded(hash=content_hash, pixels=pixels, taken_at=imaging.date_taken(path))
    except imaging.ImageDecodeError as exc:
        return _Loaded(hash=content_hash, error=str(exc))
    except Exception as exc:  # a broken file must not stop the run, whatever Pillow raises
        return _Loaded(hash=content_hash, error=f"cannot decode: {type(exc).__name__}: {exc}")


# The seam for another engine: the per-file step of this pipeline, which a loader
# runs where the files are decoded, and what it makes of a file.
load_file = _load
LoadedFile = _Loaded
# A loader gets the files to load, in order, and the hashes whose vectors the
# catalog already has. It yields them back in the same order, in batches of
# (path, what it made of the file): with an error, or with its vector and
# features, or (the bytes already embedded, or it does not embed) neither.
Loader = Callable[[Sequence[FoundFile], frozenset[bytes]], Iterator[list[tuple[str, _Loaded]]]]


def _done(loaded: _Loaded) -> Future[_Loaded]:
    future: Future[_Loaded] = Future()
    future.set_result(loaded)
    return future


@dataclass
class _Embedding:
    """A batch on its way through the model: the photos to embed and their stacked pixels."""

    photos: list[_Loaded]
    pixels: np.ndarray | None


@dataclass
class _Run:
    """The state of one run."""

    catalog: Catalog
    get_encoder: Callable[[], ImageEncoder]
    batch_size: int | None  # None: the encoder's suggestion once it is made, DEFAULT_BATCH_SIZE before
    cancel: threading.Event
    loader: Loader | None = None  # None: this process loads and embeds (``process``)
    # given a batch's features inside its transaction: the head in use and the vectors
    # it makes of them (devise_app.engine.labels.current_head); None: the vectors are
    # stored as made, their head unknown (a library re-projects them)
    headed_vectors: HeadedVectors | None = None
    encoder: ImageEncoder | None = None  # made by the first batch with photos to embed
    started: float = field(default_factory=time.monotonic)
    total: int = 0
    done: int = 0
    indexed: int = 0
    unchanged: int = 0
    moved: int = 0
    removed: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    missing_by_hash: dict[bytes, list[int]] = field(default_factory=dict)
    work_done: int = 0  # files loaded in this run, for the rate
    work_started: float | None = None
    current: Path | None = None

    def progress(self, phase: str, summary: IndexSummary | None = None) -> IndexProgress:
        now = time.monotonic()
        eta = None
        if self.work_started is not None and self.work_done:
            rate = self.work_done / max(now - self.work_started, 1e-9)
            eta = (self.total - self.done) / rate
        return IndexProgress(
            phase, self.done, self.total, self.indexed, self.unchanged, self.moved, self.removed,
            len(self.skipped), self.current, now - self.started, eta, summary,
        )  # fmt: skip

    def summary(self, cancelled: bool) -> IndexSummary:
        summary = IndexSummary(
            self.indexed, self.unchanged, self.moved, self.removed, tuple(self.skipped), cancelled,
            time.monotonic() - self.started,
        )  # fmt: skip
        log.info(
            "index run %s after %.1f s: %d indexed, %d unchanged, %d moved, %d removed, %d skipped",
            "cancelled" if cancelled else "finished", summary.elapsed, self.indexed, self.unchanged,
            self.moved, self.removed, len(self.skipped),
        )  # fmt: skip
        return summary

    def batch_limit(self) -> int:
        """How many photos the next batch takes."""
        size = self.batch_size
        if size is None:
            size = int(getattr(self.encoder, "batch_size", DEFAULT_BATCH_SIZE))
        return max(1, min(size, max_batch_size()))

    def make_encoder(self) -> ImageEncoder:
        """The run's encoder: made once, when the first photo needs embedding."""
        if self.encoder is None:
            self.encoder = self.get_encoder()
        return self.encoder

    # -- storing one batch ----------------------------------------------------

    def prepare_batch(self, batch: list[tuple[FoundFile, PhotoRecord | None, _Loaded]]) -> _Embedding:
        """Take the vectors of files whose bytes are already embedded from the
        catalog, and stack the pixels of the others for the model (dropping each
        photo's own copy: only the stacked one stays alive while it waits)."""
        for i, (found, row, loaded) in enumerate(batch):
            if loaded.error is not None or loaded.pixels is not None or loaded.vector is not None:
                continue
            if row is not None and row.state == INDEXED and row.hash == loaded.hash:
                continue  # same bytes, new mtime: just touched
            assert loaded.hash is not None
            reused = self.catalog.embedding_with_hash(loaded.hash)
            if reused is None:  # that photo changed since the run began: decode after all
                batch[i] = (found, row, _unless_changed(found, _decode(found.path, loaded.hash)))
            else:
                loaded.vector, loaded.features = reused
        embeddable = [loaded for _, _, loaded in batch if loaded.pixels is not None]
        if not embeddable:
            return _Embedding([], None)
        self.make_encoder()  # first needed here when the photos' stored vectors vanished since loading
        stacked = np.stack([loaded.pixels for loaded in embeddable])  # type: ignore[misc]
        for loaded in embeddable:
            loaded.pixels = None
        return _Embedding(embeddable, stacked)

    def embed_batch(self, job: _Embedding) -> None:
        """Run the model on a prepared batch (in the model thread)."""
        if job.pixels is None:
            return
        assert self.encoder is not None
        embedding = self.encoder.embed(job.pixels)
        job.pixels = None
        crash_point("after-embed")
        for i, loaded in enumerate(job.photos):
            loaded.vector, loaded.features = embedding.vectors[i], embedding.features[i]

    def store_batch(self, batch: list[tuple[FoundFile, PhotoRecord | None, _Loaded]]) -> None:
        """Write an embedded batch in one short transaction (so readers never wait
        for the model)."""
        with self.catalog.transaction():
            head = self.refresh_vectors([loaded for _, _, loaded in batch if loaded.vector is not None])
            for found, row, loaded in batch:
                if loaded.error is not None:
                    self.store_error(found, row, loaded)
                elif loaded.vector is None:
                    assert row is not None
                    self.catalog.touch(row.id, found.size, found.mtime_ns)
                    self.unchanged += 1
                else:
                    self.store_photo(found, row, loaded, head)
            crash_point("before-commit")
        crash_point("after-commit")

    def refresh_vectors(self, embedded: list[_Loaded]) -> str:
        """Inside the batch's transaction: the vectors of the head in use now (a learn
        may have committed during this run, and a reused vector may come from another
        head); the head's fingerprint."""
        if self.headed_vectors is None or not embedded:
            return UNKNOWN_HEAD
        head, fresh = self.headed_vectors(np.stack([loaded.features for loaded in embedded]))  # type: ignore[misc]
        for loaded, vector in zip(embedded, fresh, strict=True):
            loaded.vector = vector
        return head

    def store_photo(self, found: FoundFile, row: PhotoRecord | None, loaded: _Loaded, head: str) -> None:
        assert loaded.hash is not None and loaded.vector is not None and loaded.features is not None
        photo_id = row.id if row is not None else None
        if photo_id is None and self.missing_by_hash.get(loaded.hash):
            photo_id = self.missing_by_hash[loaded.hash].pop()  # moved: keep its id and labels
            self.moved += 1
        else:
            self.indexed += 1
        self.catalog.put_photo(
            photo_id, found.path, found.size, found.mtime_ns, loaded.hash, loaded.vector, loaded.features,
            loaded.taken_at, head=head,
        )  # fmt: skip

    def store_error(self, found: FoundFile, row: PhotoRecord | None, loaded: _Loaded) -> None:
        assert loaded.error is not None
        self.skipped.append(SkippedFile(Path(found.path), loaded.error))
        if loaded.error not in NOT_RECORDED:
            self.catalog.put_error(
                row.id if row else None, found.path, found.size, found.mtime_ns, loaded.hash, loaded.error
            )

    # -- the pipeline ---------------------------------------------------------

    def process(
        self, work: list[tuple[FoundFile, PhotoRecord | None]], workers: int
    ) -> Iterator[IndexProgress]:
        """Load, embed and store ``work``, batch by batch, as a pipeline: a thread
        pool decodes two batches ahead, a model thread embeds one batch while
        this thread writes the one before it (and stacks the next), so that the
        model never waits for the catalog and the decoders never wait for the
        model.

        Stops early when cancelled, after the batch last reported (one being
        embedded then is dropped); the caller checks ``self.cancel`` afterwards.
        """
        if not work:
            return
        if self.work_started is None:
            self.work_started = time.monotonic()
        if self.loader is not None:
            yield from self.process_loaded(self.loader, work)
            return
        reusable = self.catalog.indexed_hashes()
        todo = iter(work)
        pending: deque[tuple[FoundFile, PhotoRecord | None, Future[_Loaded]]] = deque()
        embedding: deque[tuple[list[tuple[FoundFile, PhotoRecord | None, _Loaded]], Future[None]]] = deque()
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="devise-decode")
        model = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devise-embed")

        def submit_ahead() -> None:
            while len(pending) < 2 * self.batch_limit():
                item = next(todo, None)
                if item is None:
                    return
                pending.append((item[0], item[1], pool.submit(_load, item[0], reusable)))

        def take_batch() -> list[tuple[FoundFile, PhotoRecord | None, _Loaded]]:
            taken = [pending.popleft() for _ in range(min(self.batch_limit(), len(pending)))]
            submit_ahead()  # the next batches decode while this one is embedded
            batch = [(found, row, future.result()) for found, row, future in taken]
            if self.encoder is None and any(loaded.pixels is not None for *_, loaded in batch):
                self.make_encoder()  # its batch size applies from this batch on
                for found, row, loaded in reversed(batch[self.batch_limit() :]):
                    pending.appendleft((found, row, _done(loaded)))
                del batch[self.batch_limit() :]
            return batch

        def store_oldest() -> IndexProgress:
            batch, job = embedding.popleft()
            job.result()
            self.store_batch(batch)
            self.done += len(batch)
            self.work_done += len(batch)
            self.current = Path(batch[-1][0].path)
            return self.progress("indexing")

        try:
            submit_ahead()
            while pending and not self.cancel.is_set():
                batch = take_batch()
                embedding.append((batch, model.submit(self.embed_batch, self.prepare_batch(batch))))
                if len(embedding) > 1:
                    yield store_oldest()
            while embedding and not self.cancel.is_set():
                yield store_oldest()
        finally:
            for *_, future in pending:
                future.cancel()
            for _, job in embedding:
                job.cancel()
            model.shutdown(wait=True)
            pool.shutdown(wait=True)

    def process_loaded(
        self, loader: Loader, work: list[tuple[FoundFile, PhotoRecord | None]]
    ) -> Iterator[IndexProgress]:
        """``process`` with the loading and embedding done by ``loader``: each batch
        it yields is stored as the pipeline stores its own (a photo whose reused
        vector vanished meanwhile is embedded here). Stops after the batch last
        reported when cancelled, and closes the loader. The rate for the ETA is
        timed from the first batch back (a loader may take long to start: a cluster)."""
        batches = loader([found for found, _ in work], self.catalog.indexed_hashes())
        todo = iter(work)
        first = not self.work_done
        try:
            for loaded in batches:
                if first:
                    self.work_started = time.monotonic()
                batch = []
                for path, item in loaded:
                    found, row = next(todo)
                    if path != found.path:
                        raise RuntimeError(f"the loader sent {path!r} back in the place of {found.path!r}")
                    batch.append((found, row, item))
                self.embed_batch(self.prepare_batch(batch))
                self.store_batch(batch)
                self.done += len(batch)
                self.work_done += 0 if first else len(batch)
                first = False
                self.current = Path(batch[-1][0].path) if batch else self.current
                yield self.progress("indexing")
                if self.cancel.is_set():
                    return
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()


def _vanished_elsewhere(
    records: Sequence[PhotoRecord], scanned: tuple[str, ...], sizes: set[int]
) -> list[PhotoRecord]:
    """Catalogued photos outside the scanned folders whose files are gone, of a size
    some new file has: a folder renamed or moved, then indexed under its new name.
    They can be matched by content like any missing photo (keeping their labels),
    but an unmatched one stays: its folder may only be unmounted."""
    if not sizes:
        return []
    return [
        record
        for record in records
        if record.size in sizes and record.hash is not None and record.state != ERROR
        and not record.path.startswith(scanned) and not os.path.lexists(record.path)
    ]  # fmt: skip


def index_folders(
    catalog: Catalog,
    folders: Sequence[Path],
    get_encoder: Callable[[], ImageEncoder],
    model_id: str,
    cancel: threading.Event | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    loader: Loader | None = None,
    headed_vectors: HeadedVectors | None = None,
) -> Iterator[IndexProgress]:
    """Bring the catalog up to date with ``folders``, yielding progress.

    ``get_encoder`` is called at most once per run, when the first photo needs
    embedding, so a run that finds nothing new, or only moved or touched files,
    never loads the model; ``batch_size`` defaults to the encoder's suggestion
    (batches read before the model is needed take ``DEFAULT_BATCH_SIZE``).
    ``model_id`` names the model the vectors come from; when it differs from the
    catalog's, every photo is re-embedded. ``loader`` loads and embeds elsewhere
    (see ``Loader``); ``get_encoder`` then serves only the rare photo whose stored
    vector vanished while it was loaded. ``headed_vectors`` makes each batch's
    vectors with the head in use when it is stored (labels.current_head). The last
    item yielded has ``finished`` True and the summary.
    """
    roots = check_folders(folders)
    run = _Run(catalog, get_encoder, batch_size, cancel or threading.Event(), loader, headed_vectors)
    workers = workers or max(1, os.cpu_count() or 1)
    catalog.use_model(model_id)
    log.info("index run started: %s", ", ".join(str(root) for root in roots))

    # 1. scan
    unreadable: list[str] = []
    found_files: list[FoundFile] = []
    for found in scan(roots, run.skipped, unreadable, frozenset(catalog.excluded())):
        found_files.append(found)
        if len(found_files) % SCAN_PROGRESS_EVERY == 0:
            run.total = len(found_files)
            run.current = Path(found.path)
            yield run.progress("scanning")
            if run.cancel.is_set():
                yield run.progress("finished", run.summary(cancelled=True))
                return
    crash_point("after-scan")

    # 2. compare with the catalog
    records = catalog.records()
    by_path = {record.path: record for record in records}
    found_paths = {found.path for found in found_files}
    prefixes = tuple(os.path.join(root, "") for root in roots)
    kept = tuple(os.path.join(folder, "") for folder in unreadable)
    missing = [
        record
        for record in records
        if record.path.startswith(prefixes) and not record.path.startswith(kept)
        and record.path not in found_paths
    ]  # fmt: skip
    for record in missing:
        if record.hash is not None:
            run.missing_by_hash.setdefault(record.hash, []).append(record.id)
    missing_sizes = {record.size for record in missing}
    new_sizes = {found.size for found in found_files if found.path not in by_path}
    moved_in = _vanished_elsewhere(records, prefixes, new_sizes - missing_sizes)
    for record in moved_in:
        run.missing_by_hash.setdefault(record.hash, []).append(record.id)  # type: ignore[arg-type]
    missing_sizes |= {record.size for record in moved_in}

    moves: list[tuple[FoundFile, PhotoRecord | None]] = []
    others: list[tuple[FoundFile, PhotoRecord | None]] = []
    for found in found_files:
        row = by_path.get(found.path)
        if (
            row is not None
            and row.state != STALE
            and (row.size, row.mtime_ns) == (found.size, found.mtime_ns)
        ):
            if row.state == ERROR:
                run.skipped.append(SkippedFile(Path(found.path), row.error or "could not be read"))
            else:
                run.unchanged += 1
            run.done += 1
        elif row is None and found.size in missing_sizes:
            moves.append((found, row))
        else:
            others.append((found, row))
    run.total = len(found_files)
    yield run.progress("indexing")

    # 3. possible moves first, then the deleted photos go, then the rest
    yield from run.process(moves, workers)
    if not run.cancel.is_set():
        elsewhere = {record.id for record in moved_in}  # not this run's to remove: not scanned
        gone = [i for ids in run.missing_by_hash.values() for i in ids if i not in elsewhere]
        gone += [record.id for record in missing if record.hash is None]
        catalog.delete_photos(gone)
        crash_point("after-removal")
        run.removed = len(gone)
        run.missing_by_hash.clear()
        yield from run.process(others, workers)

    cancelled = run.cancel.is_set()
    if not cancelled:
        crash_point("after-batches")
        catalog.set_meta("last_indexed_at", repr(time.time()))
    run.current = None
    yield run.progress("finished", run.summary(cancelled))

"""Watching folders: the library follows what happens in them, while it runs. No Qt here.

``FolderWatcher(library, folders).start()`` keeps a library up to date with its
folders until ``stop()``. The CLI's ``devise-app watch`` runs one in the
foreground; the window can run one beside itself and show each ``WatchRun``.

Design:

- **Events only mark folders dirty.** watchdog (inotify, FSEvents, ReadDirectoryChangesW;
  a polling observer where the native one cannot be had, e.g. when inotify is out
  of watches) calls ``_on_event`` on its own thread, which only notes which watched
  folder changed and when. Nothing is decided from single events: they can be lost
  (a full kernel queue) or arrive in any order.
- **Debounced and batched.** A worker thread waits until no event has arrived for
  ``quiet`` seconds (``max_delay`` caps the wait during an endless stream, so a
  long copy is indexed as it goes), then runs one ordinary incremental index run
  (``Library.index``) over the dirty folders. That run compares the whole folder
  with the catalog, so whatever the events were (thousands of files, a folder
  moved in or out, a rename), one run puts the catalog right: new and changed
  photos are embedded once, moved ones keep their vectors and labels, deleted ones
  go. A burst that goes on during a run makes the folder dirty again, and the next
  run picks up the rest. A run that changed something is followed by one more,
  which normally finds nothing: it catches changes whose events the kernel dropped.
- **Folders that go away** (a disk unmounted, a folder moved or deleted) keep
  their photos in the library: that a folder is missing says nothing about its
  photos. The worker checks each watched folder every ``poll`` seconds; one that
  is gone or was replaced (another inode) is unwatched, and watched again, and
  indexed, once it is back.
- Runs are reported as ``WatchRun`` items: through ``on_run`` (on the worker
  thread) and ``next_run()``, which tests and faces can wait on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devise_app.engine import imaging
from devise_app.engine.indexer import IndexSummary, check_folders

if TYPE_CHECKING:
    from devise_app.engine.search import Library

log = logging.getLogger(__name__)
QUIET_S = 1.5  # no event for this long: the burst is over, index it
MAX_DELAY_S = 30.0  # index at least this often while events keep coming
POLL_S = 1.0  # how often watched folders are checked for having gone or come back
IGNORED_EVENTS = frozenset({"opened", "closed_no_write", "attrib"})
# watchdog's inotify observer warns on its own thread when a folder that left a watched
# tree comes back into it (it re-adds the folder's watch, which is what is wanted).
warnings.filterwarnings("ignore", "Callback with id", RuntimeWarning, r"watchdog\.observers\.inotify")


@dataclass(frozen=True)
class WatchRun:
    """One index run the watcher made, and what it found."""

    folders: tuple[Path, ...]  # the folders indexed
    missing: tuple[Path, ...]  # watched folders that were not there (their photos kept)
    summary: IndexSummary | None  # None when no folder could be indexed, or on error
    error: str | None = None  # a user error that stopped the run (one line)

    @property
    def changed(self) -> bool:
        summary = self.summary
        return summary is not None and bool(summary.indexed or summary.moved or summary.removed)


@dataclass
class _Root:
    path: Path
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) when watched; None: not watched now
    watch: Any = None
    observer: Any = None


@dataclass
class _Pending:
    dirty: set[Path] = field(default_factory=set)
    first: float = 0.0
    last: float = 0.0


class FolderWatcher:
    """Keeps ``library`` up to date with ``folders`` while started (see the module docstring)."""

    def __init__(
        self,
        library: Library,
        folders: Sequence[Path],
        *,
        quiet: float = QUIET_S,
        max_delay: float = MAX_DELAY_S,
        poll: float = POLL_S,
        initial_run: bool = True,
        on_run: Callable[[WatchRun], None] | None = None,
    ) -> None:
        """``initial_run``: index the folders once at start (what changed while nobody watched)."""
        self.library = library
        self._roots = [_Root(root) for root in check_folders(folders)]
        self.quiet, self.max_delay, self.poll = quiet, max_delay, poll
        self._on_run = on_run
        self._runs: queue.Queue[WatchRun] = queue.Queue()
        self._cond = threading.Condition()
        self._pending = _Pending()
        self._stopping = threading.Event()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Any = None
        self._running = False  # a run is going (guarded by _cond)
        if initial_run:
            self._mark({root.path for root in self._roots})

    @property
    def folders(self) -> list[Path]:
        return [root.path for root in self._roots]

    # -- life cycle ---------------------------------------------------------------

    def start(self) -> None:
        from watchdog.observers import Observer

        self._observer = Observer()
        self._observer.start()  # first: a folder scheduled now is watched at once, or fails here
        for root in self._roots:
            self._watch(root)
        self._thread = threading.Thread(target=self._work, name="devise-watch", daemon=True)
        self._thread.start()
        log.info("watching %s", ", ".join(map(str, self.folders)))

    def stop(self, timeout: float | None = None) -> None:
        """Stop watching; a run in progress is cancelled (what it committed is kept)."""
        self._stopping.set()
        self._cancel.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        for root in self._roots:
            self._unwatch(root)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        log.info("stopped watching")

    def __enter__(self) -> FolderWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_run(self, timeout: float | None = None) -> WatchRun | None:
        """The next run's report, waiting up to ``timeout`` seconds; None if none came."""
        try:
            return self._runs.get(timeout=timeout)
        except queue.Empty:
            return None

    def is_idle(self) -> bool:
        """No change waiting to be indexed and no run going."""
        with self._cond:
            return not self._pending.dirty and not self._running

    # -- events (on watchdog's thread) ------------------------------------------------

    def _on_event(self, root: Path, event: Any) -> None:
        if event.event_type in IGNORED_EVENTS or (event.is_directory and event.event_type == "modified"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(self._relevant(root, os.fsdecode(path), event.is_directory) for path in paths if path):
            self._mark({root})

    @staticmethod
    def _relevant(root: Path, path: str, is_directory: bool) -> bool:
        """Whether a change to ``path`` can change the library: a photo, or a folder,
        not hidden (the scan skips hidden entries)."""
        try:
            parts = Path(path).relative_to(root).parts
        except ValueError:
            return True  # outside the folder (the folder itself moved): check it
        if any(part.startswith(".") for part in parts):
            return False
        return is_directory or not parts or imaging.is_image_path(path)

    def _mark(self, roots: set[Path]) -> None:
        now = time.monotonic()
        with self._cond:
            if not self._pending.dirty:
                self._pending.first = now
            self._pending.dirty |= roots
            self._pending.last = now
            self._cond.notify_all()

    # -- watching and unwatching folders -------------------------------------------------

    def _watch(self, root: _Root) -> None:
        from watchdog.events import FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                watcher._on_event(root.path, event)

        try:
            st = root.path.stat()
        except OSError:
            return  # not there now: watched once it is back
        try:
            root.watch = self._observer.schedule(Handler(), os.fspath(root.path), recursive=True)
        except OSError as exc:  # e.g. out of inotify watches: poll this folder instead
            from watchdog.observers.polling import PollingObserver

            log.warning("cannot watch %s natively (%s); polling it", root.path, exc)
            root.observer = PollingObserver(timeout=self.poll)
            root.watch = root.observer.schedule(Handler(), os.fspath(root.path), recursive=True)
            root.observer.start()
        root.identity = (st.st_dev, st.st_ino)

    def _unwatch(self, root: _Root) -> None:
        observer = root.observer or self._observer
        if root.watch is not None and observer is not None:
            with contextlib.suppress(KeyError, OSError):  # its emitter already ended with the folder
                observer.unschedule(root.watch)
            if root.observer is not None:
                root.observer.stop()
        root.watch, root.observer, root.identity = None, None, None

    def _check_roots(self) -> None:
        """Unwatch folders that went away or were replaced; watch (and index) those back."""
        for root in self._roots:
            try:
                st = root.path.stat()
                identity: tuple[int, int] | None = (st.st_dev, st.st_ino) if root.path.is_dir() else None
            except OSError:
                identity = None
            if root.identity is not None and (identity != root.identity or not self._alive(root)):
                log.info("watched folder gone or replaced: %s", root.path)
                self._unwatch(root)
            if root.identity is None and identity is not None:
                log.info("watched folder back: %s", root.path)
                self._watch(root)
                self._mark({root.path})

    def _alive(self, root: _Root) -> bool:
        """Whether the folder's watch still has a running emitter (watchdog ends it when
        the watched folder itself is deleted or moved)."""
        observer = root.observer or self._observer
        return any(
            emitter.watch == root.watch and emitter.is_alive()
            for emitter in getattr(observer, "emitters", ())
        )

    # -- the worker ------------------------------------------------------------------

    def _work(self) -> None:
        checked = 0.0
        while not self._stopping.is_set():
            if time.monotonic() - checked >= self.poll:
                self._check_roots()
                checked = time.monotonic()
            batch = self._take_batch(checked + self.poll)
            if batch:
                report = self._index(batch)
                if report.changed:
                    self._mark(set(report.folders))  # one more look: events may have been dropped
                self._publish(report)

    def _take_batch(self, until: float) -> list[Path]:
        """The dirty folders once their events have been quiet long enough; [] when
        ``until`` (the next folder check) comes first."""
        with self._cond:
            while not self._stopping.is_set():
                now = time.monotonic()
                pending = self._pending
                if pending.dirty:
                    ready_at = min(pending.last + self.quiet, pending.first + self.max_delay)
                    if now >= ready_at:
                        batch = sorted(pending.dirty)
                        pending.dirty = set()
                        self._running = True
                        return batch
                    wake = min(ready_at, until)
                else:
                    wake = until
                if now >= wake:
                    return []
                self._cond.wait(wake - now)
            return []

    def _index(self, batch: list[Path]) -> WatchRun:
        from devise_app.engine.errors import UserError

        present = tuple(folder for folder in batch if folder.is_dir())
        missing = tuple(folder for folder in batch if folder not in present)
        if not present:
            return self._done(WatchRun((), missing, None))
        try:
            progress = deque(self.library.index(list(present), cancel=self._cancel), maxlen=1)
            summary = progress[0].summary if progress else None
            return self._done(WatchRun(present, missing, summary))
        except UserError as exc:
            log.warning("watch run failed: %s", exc)
            return self._done(WatchRun(present, missing, None, str(exc)))
        except OSError as exc:  # a folder vanishing in the middle of the scan, a disk error
            log.warning("watch run failed: %s", exc)
            self._mark(set(present))
            return self._done(WatchRun(present, missing, None, str(exc)))

    def _done(self, report: WatchRun) -> WatchRun:
        with self._cond:
            self._running = False
        return report

    def _publish(self, report: WatchRun) -> None:
        self._runs.put(report)
        if self._on_run is not None:
            try:
                self._on_run(report)
            except Exception:  # a face's callback must not end the watching
                log.exception("on_run callback failed")

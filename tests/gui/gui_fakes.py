"""A small stand-in for ``devise_app.search.Library`` with the same interface.

It "recognises" the scikit-image sample photos by file name, so GUI tests of
layout, drag and drop, cancelling and responsiveness run fast and exactly; the
tests in ``test_end_to_end.py`` use the real library and model.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from devise_app.imaging import is_image_path

WORDS = {
    "chelsea": ["cat", "kitten", "animal", "pet"],
    "coffee": ["coffee", "cup", "espresso", "drink"],
    "rocket": ["rocket", "missile", "launch", "space"],
    "motorcycle_left": ["motorcycle", "moped", "bike", "vehicle"],
    "camera": ["camera", "tripod", "man", "photographer"],
    "astronaut": ["astronaut", "woman", "space", "suit"],
    "horse": ["horse", "animal", "silhouette"],
}
VOCABULARY = sorted(
    {word for words in WORDS.values() for word in words} | {"car", "catalog", "category", "dog"}
)


class FakeQueryError(Exception):
    def __init__(self, message: str, suggestions: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.suggestions = list(suggestions)


try:  # the real error class, once the core provides it
    from devise_app.query import QueryError as _RealQueryError
except ImportError:  # pragma: no cover - depends on the core's progress
    QueryError: type[Exception] = FakeQueryError
else:
    QueryError = _RealQueryError


class LibraryError(Exception):
    pass


def _query_error(message: str, suggestions: Sequence[str] = ()) -> Exception:
    try:
        return QueryError(message, list(suggestions))  # type: ignore[call-arg]
    except TypeError:
        error = QueryError(message)
        error.suggestions = list(suggestions)  # type: ignore[attr-defined]
        return error


@dataclass(frozen=True)
class Hit:
    photo_id: int
    path: Path
    score: float


@dataclass(frozen=True)
class Summary:
    indexed: int
    unchanged: int
    moved: int
    removed: int
    skipped: tuple[object, ...]
    cancelled: bool
    elapsed: float


@dataclass(frozen=True)
class Progress:
    phase: str
    done: int
    total: int
    indexed: int
    unchanged: int
    moved: int
    removed: int
    skipped: int
    current: Path | None
    elapsed: float
    eta: float | None
    summary: Summary | None = None

    @property
    def finished(self) -> bool:
        return self.summary is not None


class FakeVocabulary:
    def complete(self, prefix: str, n: int = 10) -> list[str]:
        return [word for word in VOCABULARY if word.startswith(prefix.lower())][:n]

    def suggest(self, word: str, n: int = 5) -> list[str]:
        return [w for w in VOCABULARY if w[:2] == word[:2]][:n]


@dataclass
class FakeLibrary:
    path: Path
    delay: float = 0.0  # seconds per photo while indexing (to test cancel and responsiveness)
    photos: dict[str, int] = field(default_factory=dict)
    label_names: dict[str, set[str]] = field(default_factory=dict)  # label -> photo paths
    closed: bool = False
    last_indexed: float | None = None
    calls: list[str] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.vocabulary = FakeVocabulary()
        self.encoder = SimpleNamespace(
            provider="CPUExecutionProvider", provider_note="", model_name="fake-devise"
        )
        self._lock = threading.Lock()

    def _note(self, name: str) -> None:
        self.calls.append(name)
        self.threads.add(threading.get_ident())

    # -- indexing
    def index(self, folders: Sequence[Path], cancel: threading.Event | None = None) -> Iterator[Progress]:
        self._note("index")
        for folder in folders:
            if not Path(folder).is_dir():
                raise LibraryError(f"not a folder: {folder}")
        return self._run(list(folders), cancel)

    def _run(self, folders: list[Path], cancel: threading.Event | None) -> Iterator[Progress]:
        start = time.monotonic()
        yield Progress("scanning", 0, 0, 0, 0, 0, 0, 0, None, 0.0, None)
        files = sorted(p for folder in folders for p in Path(folder).rglob("*") if is_image_path(p))
        indexed = unchanged = 0
        cancelled = False
        for done, path in enumerate(files, 1):
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            if self.delay:
                time.sleep(self.delay)
            key = os.path.realpath(path)
            with self._lock:
                if key in self.photos:
                    unchanged += 1
                else:
                    self.photos[key] = len(self.photos) + 1
                    indexed += 1
            elapsed = time.monotonic() - start
            eta = elapsed / done * (len(files) - done)
            yield Progress("indexing", done, len(files), indexed, unchanged, 0, 0, 0, path, elapsed, eta)
        summary = Summary(indexed, unchanged, 0, 0, (), cancelled, time.monotonic() - start)
        if not cancelled:
            self.last_indexed = time.time()
        yield Progress(
            "finished",
            indexed + unchanged,
            len(files),
            indexed,
            unchanged,
            0,
            0,
            0,
            None,
            summary.elapsed,
            0.0,
            summary,
        )

    def photo_count(self) -> int:
        self._note("photo_count")
        return len(self.photos)

    def last_indexed_at(self) -> float | None:
        return self.last_indexed

    # -- searching
    def _words_of(self, path: str) -> list[str]:
        stem = Path(path).stem
        for key, words in WORDS.items():
            if stem.startswith(key):
                return words
        return []

    def search(self, query: str, top: int = 20) -> list[Hit]:
        self._note("search")
        query = query.strip()
        if query.lower().startswith("label:"):
            name = query[len("label:") :].strip().strip('"')
            if name not in self.label_names:
                raise _query_error(f"no label named '{name}'", [f"label:{n}" for n in self.label_names][:3])
            paths = sorted(self.label_names[name])
            return [Hit(self.photos[p], Path(p), 1.0) for p in paths if p in self.photos][:top]
        words = [w for w in query.replace("+", " ").replace("-", " ").split() if w]
        for word in words:
            if word.lower() not in VOCABULARY:
                raise _query_error(f"unknown word '{word}'", FakeVocabulary().suggest(word))
        hits = []
        for path, photo_id in self.photos.items():
            known = self._words_of(path)
            score = sum(1.0 / (1 + known.index(w)) for w in words if w in known) / len(words)
            hits.append(Hit(photo_id, Path(path), round(0.1 + 0.8 * score, 4)))
        hits.sort(key=lambda hit: (-hit.score, hit.photo_id))
        return [hit for hit in hits if hit.score > 0.1][:top]

    def similar(self, photo: Path, top: int = 20) -> list[Hit]:
        self._note("similar")
        words = self._words_of(str(photo))
        key = os.path.realpath(photo)
        hits = [
            Hit(pid, Path(p), 0.5 + 0.1 * len(set(words) & set(self._words_of(p))))
            for p, pid in self.photos.items()
            if p != key
        ]
        hits.sort(key=lambda hit: -hit.score)
        return hits[:top]

    def describe(self, photo: Path, top: int = 10) -> list[tuple[str, float]]:
        self._note("describe")
        return [(word, 0.9 - 0.1 * rank) for rank, word in enumerate(self._words_of(str(photo)))][:top]

    # -- labels
    def _key(self, photo: Path) -> str:
        key = os.path.realpath(photo)
        if key not in self.photos:
            raise LibraryError(f"not a photo of the library: {photo}")
        return key

    def create_label(self, name: str) -> None:
        self._note("create_label")
        self.label_names.setdefault(name.strip(), set())

    def delete_label(self, name: str) -> None:
        self.label_names.pop(name, None)

    def add_label(self, name: str, photos: Sequence[Path]) -> None:
        self._note("add_label")
        keys = [self._key(photo) for photo in photos]
        self.label_names.setdefault(name.strip(), set()).update(keys)

    def remove_label(self, name: str, photos: Sequence[Path]) -> None:
        self._note("remove_label")
        keys = {self._key(photo) for photo in photos}
        self.label_names.get(name, set()).difference_update(keys)

    def labels(self) -> list[tuple[str, int]]:
        return sorted(((name, len(paths)) for name, paths in self.label_names.items()), key=lambda x: x[0])

    def labels_of(self, photo: Path) -> list[str]:
        key = self._key(photo)
        return sorted(name for name, paths in self.label_names.items() if key in paths)

    def close(self) -> None:
        self.closed = True

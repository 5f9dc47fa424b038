"""A small hand-written stand-in for the library, for testing the GUI's parts alone.

:class:`StandInLibrary` implements :class:`devise_app.gui.ports.LibraryPort` with a
few photos in memory: a query finds the photos whose file name contains its word,
an unknown word raises the engine's ``QueryError`` with spellings, and the long jobs
are generators that wait at a gate between items, so a test decides when they move
on. Every call is recorded (``calls``), with the thread it ran on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from devise_app.engine.care import DuplicateGroup, PhotoFilter, PhotoInfo
from devise_app.engine.check import CheckReport, Finding
from devise_app.engine.errors import LibraryError, QueryError
from devise_app.engine.indexer import IndexProgress, IndexSummary
from devise_app.engine.learning import LearnProgress
from devise_app.engine.search import ModelInfo, SearchHit, SearchResult, Suggestion
from devise_app.gui.ports import LibraryPort

WORDS = ("cat", "coffee", "dog", "horse", "rocket", "kitten", "espresso")


@dataclass
class StandInWords:
    """A vocabulary: ``words`` are the common ones, ``rare`` the names and misspellings
    a real vocabulary also completes from; ``complete`` lists both, most frequent first."""

    words: list[str] = field(default_factory=lambda: list(WORDS))
    rare: list[str] = field(default_factory=lambda: ["dogg", "doggett", "cattle-ranch", "dogan"])
    classes: tuple[str, ...] = ("great white shark",)
    completed_on: list[int] = field(default_factory=list)  # the thread of each complete()

    def is_class(self, word: str) -> bool:
        return word in self.classes

    def complete(self, prefix: str, n: int = 10) -> list[str]:
        self.completed_on.append(threading.get_ident())
        entries = [*self.words[:3], *self.rare, *self.words[3:], "dogs", *self.classes]
        return [word for word in entries if word.startswith(prefix)][:n]


@dataclass
class Gate:
    """Lets a stand-in job take ``steps`` more steps (``open()``: all of them)."""

    event: threading.Event = field(default_factory=threading.Event)

    def open(self) -> None:
        self.event.set()

    def wait(self) -> None:
        assert self.event.wait(30), "the test never opened the gate"


class StandInLibrary:
    def __init__(self, folder: Path, names: Sequence[str] = ("cat.png", "coffee.png", "horse.png")) -> None:
        self.path = folder / "library"
        self.photos_dir = folder / "photos"
        self.photos_dir.mkdir(parents=True, exist_ok=True)
        self.photos: list[Path] = []
        for name in names:
            self.add_photo(name)
        self.label_photos: dict[str, set[Path]] = {}
        self.calls: list[tuple[str, int]] = []  # (method, thread id)
        self.gate = Gate()
        self.job_steps = 3
        self.learned_at: float | None = None
        self.closed = False
        self.last_cancel: threading.Event | None = None
        self.roots: list[Path] = [self.photos_dir]
        self.kept_out: list[Path] = []  # excluded folders and files
        self.trashed: list[Path] = []
        self.trash_works = True
        self.words = StandInWords()
        self.findings: tuple[Finding, ...] = ()  # what check() finds (and mends, with repair)

    def add_photo(self, name: str) -> Path:
        path = self.photos_dir / name
        Image.new("RGB", (32, 24), (len(name) * 20 % 255, 90, 140)).save(path)
        self.photos.append(path)
        return path

    def _called(self, name: str) -> None:
        self.calls.append((name, threading.get_ident()))

    def called(self, name: str) -> bool:
        return any(call == name for call, _ in self.calls)

    def _hit(self, path: Path, score: float = 1.0) -> SearchHit:
        return SearchHit(self.photos.index(path) + 1, path, score)

    @property
    def vocabulary(self) -> StandInWords:
        self._called("vocabulary")
        return self.words

    def model_info(self) -> ModelInfo:
        self._called("model_info")
        return ModelInfo("stand-in", "CPUExecutionProvider", "", self.path / "model")

    def photo_count(self) -> int:
        self._called("photo_count")
        return len(self.photos)

    def last_indexed_at(self) -> float | None:
        return 1_700_000_000.0 if self.photos else None

    def last_learned_at(self) -> float | None:
        return self.learned_at

    def folders(self) -> list[Path]:
        return list(self.roots)

    def find(
        self, query: str, top: int = 20, filters: PhotoFilter | None = None, read_typos: bool = True
    ) -> SearchResult:
        self._called("find")
        if query.lower().startswith("label:"):
            name = query[len("label:") :].strip('"')
            return SearchResult(
                [self._hit(p) for p in sorted(self.label_photos.get(name, set()))], graded=False
            )
        word = query.strip().lower()
        if word not in WORDS:
            near = [known for known in WORDS if known[0] == word[:1]]
            raise QueryError(f"Unknown word '{word}'.", near, word=word)
        hits = [self._hit(p, 0.9) for p in self.photos if word in p.name]
        others = [self._hit(p, 0.1) for p in self.photos if word not in p.name]
        return SearchResult((hits + others)[:top], good_count=len(hits))

    def browse(
        self, sort: str = "date", filters: PhotoFilter | None = None, top: int | None = None
    ) -> list[PhotoInfo]:
        self._called("browse")
        photos = sorted(self.photos) if sort == "name" else list(reversed(self.photos))
        return [PhotoInfo(self.photos.index(p) + 1, p, 0.0, 1) for p in photos][:top]

    def similar(self, photo: Path, top: int = 20) -> list[SearchHit]:
        self._called("similar")
        return [self._hit(p, 0.5) for p in self.photos if p != photo][:top]

    def describe(self, photo: Path, top: int = 10) -> list[Suggestion]:
        self._called("describe")
        return [Suggestion(photo.stem, 0.9), Suggestion("animal", 0.5)][:top]

    def duplicates(self, near: bool = True) -> list[DuplicateGroup]:
        infos = tuple(PhotoInfo(i + 1, p, 0.0, 1) for i, p in enumerate(self.photos[:2]))
        return [DuplicateGroup(True, infos, 1.0)]

    def labels(self) -> list[tuple[str, int]]:
        self._called("labels")
        return sorted((name, len(photos)) for name, photos in self.label_photos.items())

    def photo_labels(self) -> dict[Path, list[str]]:
        mapping: dict[Path, list[str]] = {}
        for name, photos in sorted(self.label_photos.items()):
            for photo in photos:
                mapping.setdefault(photo, []).append(name)
        return mapping

    def create_label(self, name: str) -> None:
        self._called("create_label")
        self.label_photos.setdefault(name, set())

    def rename_label(self, name: str, new_name: str) -> None:
        if name not in self.label_photos:
            raise LibraryError(f"no label named '{name}'")
        self.label_photos[new_name] = self.label_photos.pop(name)

    def delete_label(self, name: str) -> None:
        del self.label_photos[name]

    def add_label(self, name: str, photos: Sequence[Path]) -> None:
        self._called("add_label")
        self.label_photos.setdefault(name, set()).update(Path(p) for p in photos)

    def remove_label(self, name: str, photos: Sequence[Path]) -> None:
        self.label_photos[name].difference_update(Path(p) for p in photos)

    def export_labels_to(self, path: Path) -> tuple[int, int]:
        lines = [f"{name}\t{photo}" for name, photos in self.label_photos.items() for photo in photos]
        path.write_text("\n".join(lines))
        return len(self.label_photos), len(lines)

    def import_labels(self, text: str | bytes) -> tuple[int, list[str]]:
        raw = text.decode() if isinstance(text, bytes) else text
        names, missing = set(), []
        for line in raw.splitlines():
            name, photo = line.split("\t")
            if Path(photo) in self.photos:
                self.add_label(name, [Path(photo)])
                names.add(name)
            else:
                missing.append(photo)
        return len(names), missing

    def index(
        self, folders: Sequence[Path], cancel: threading.Event | None = None
    ) -> Iterator[IndexProgress]:
        self._called("index")
        self.last_cancel = cancel
        return self._index_run(cancel)

    def rescan(self, cancel: threading.Event | None = None) -> Iterator[IndexProgress]:
        self._called("rescan")
        return self.index(self.folders(), cancel)

    def _index_run(self, cancel: threading.Event | None) -> Iterator[IndexProgress]:
        total, done = self.job_steps, 0
        for done in range(1, total + 1):
            self.gate.wait()
            if cancel is not None and cancel.is_set():
                break
            yield IndexProgress("indexing", done, total, done, 0, 0, 0, 0, None, 0.1, 1.0)
        stopped = cancel is not None and cancel.is_set()
        summary = IndexSummary(done, 0, 0, 0, (), stopped, 0.5)
        yield IndexProgress("finished", done, total, done, 0, 0, 0, 0, None, 0.5, None, summary)

    def learn(self, cancel: threading.Event | None = None) -> Iterator[LearnProgress]:
        self._called("learn")
        self.last_cancel = cancel
        for step in range(1, self.job_steps + 1):
            self.gate.wait()
            if cancel is not None and cancel.is_set():
                return
            yield LearnProgress(step, self.job_steps, 0.5)
        self.learned_at = 1_700_000_100.0
        # the window reads only the learned head's label names
        yield LearnProgress(self.job_steps, self.job_steps, 0.1, finished=True, result=LearnedStandIn())  # type: ignore[arg-type]

    def remove_photos(self, photos: Sequence[Path], trash: bool = False) -> int:
        self._called("remove_photos")
        gone = [p for p in self.photos if p in set(map(Path, photos))]
        if trash:
            self._trash(gone)
        else:
            self.kept_out += gone
        self.photos = [p for p in self.photos if p not in gone]
        return len(gone)

    def _trash(self, paths: Sequence[Path]) -> None:
        if not self.trash_works:
            raise LibraryError(f"cannot move {paths[0]} to the trash: no trash folder on this disk")
        self.trashed += paths

    def remove_folder(self, folder: Path, trash: bool = False) -> int:
        self._called("remove_folder")
        folder = Path(folder)
        inside = [root for root in self.roots if root == folder or root.is_relative_to(folder)]
        if not inside and not any(folder.is_relative_to(root) for root in self.roots):
            raise LibraryError(f"not a folder of the library: {folder}")
        if trash:
            self._trash([folder])
        elif not inside:
            self.kept_out.append(folder)
        self.roots = [root for root in self.roots if root not in inside]
        gone = [p for p in self.photos if p.is_relative_to(folder)]
        self.photos = [p for p in self.photos if p not in gone]
        return len(gone)

    def exclude_folder(self, folder: Path) -> int:
        self._called("exclude_folder")
        self.kept_out.append(Path(folder))
        gone = [p for p in self.photos if p.is_relative_to(folder)]
        self.photos = [p for p in self.photos if p not in gone]
        return len(gone)

    def include(self, path: Path) -> None:
        self._called("include")
        if Path(path) not in self.kept_out:
            raise LibraryError(f"not excluded from the library: {path}")
        self.kept_out.remove(Path(path))

    def excluded(self) -> list[Path]:
        return sorted(self.kept_out)

    def check(self, repair: bool = False) -> CheckReport:
        self._called("check")
        self.gate.wait()
        findings = tuple(
            Finding(f.part, f.problem, f.count, repair and f.repaired, f.hint) for f in self.findings
        )
        return CheckReport(len(self.photos), len(self.photos), len(self.label_photos), findings)

    def close(self) -> None:
        self.closed = True


@dataclass
class LearnedStandIn:
    """What the window reads of a learned head: the names of the labels it learned."""

    label_names: list[str] = field(default_factory=lambda: ["pets"])


def as_port(library: StandInLibrary) -> LibraryPort:
    """mypy checks here that the stand-in is a ``LibraryPort`` (``mypy tests/gui/stand_in.py``)."""
    return library

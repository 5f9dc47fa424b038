"""What the window asks of a photo library: the calls the GUI makes, as a ``Protocol``.

The engine's :class:`devise_app.engine.search.Library` satisfies it (mypy checks that
where the app hands one to the window); the GUI's tests hand the controllers a small
stand-in instead (tests/gui/stand_in.py), so a controller can be tested alone,
without the model, the catalog or the search index.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from devise_app.engine.care import DuplicateGroup, PhotoFilter, PhotoInfo
    from devise_app.engine.check import CheckReport
    from devise_app.engine.indexer import IndexProgress
    from devise_app.engine.learning import LearnProgress
    from devise_app.engine.search import ModelInfo, SearchHit, SearchResult, Suggestion


class WordSource(Protocol):
    """The vocabulary, as far as completing a word goes."""

    @property
    def words(self) -> Sequence[str]:
        """The frequent, real words (the ones a photo is described with)."""

    def is_class(self, word: str) -> bool: ...

    def complete(self, prefix: str, n: int = 10) -> list[str]: ...


class LibraryPort(Protocol):
    """Every call the GUI makes into a library (all of them off the GUI thread)."""

    path: Path

    @property
    def vocabulary(self) -> WordSource: ...

    def model_info(self) -> ModelInfo: ...

    def photo_count(self) -> int: ...

    def last_indexed_at(self) -> float | None: ...

    def last_learned_at(self) -> float | None: ...

    def folders(self) -> list[Path]: ...

    # searching
    def find(
        self, query: str, top: int = 20, filters: PhotoFilter | None = None, read_typos: bool = True
    ) -> SearchResult: ...

    def browse(
        self, sort: str = "date", filters: PhotoFilter | None = None, top: int | None = None
    ) -> list[PhotoInfo]: ...

    def similar(self, photo: Path, top: int = 20) -> list[SearchHit]: ...

    def describe(self, photo: Path, top: int = 10) -> list[Suggestion]: ...

    def duplicates(self, near: bool = True) -> list[DuplicateGroup]: ...

    # labels
    def labels(self) -> list[tuple[str, int]]: ...

    def photo_labels(self) -> dict[Path, list[str]]: ...

    def create_label(self, name: str) -> None: ...

    def rename_label(self, name: str, new_name: str) -> None: ...

    def delete_label(self, name: str) -> None: ...

    def add_label(self, name: str, photos: Sequence[Path]) -> None: ...

    def remove_label(self, name: str, photos: Sequence[Path]) -> None: ...

    def export_labels_to(self, path: Path) -> tuple[int, int]: ...

    def import_labels(self, text: str | bytes) -> tuple[int, list[str]]: ...

    # long jobs: generators of progress, cancelled between batches
    def index(
        self, folders: Sequence[Path], cancel: threading.Event | None = None
    ) -> Iterator[IndexProgress]: ...

    def rescan(self, cancel: threading.Event | None = None) -> Iterator[IndexProgress]: ...

    def learn(self, cancel: threading.Event | None = None) -> Iterator[LearnProgress]: ...

    # library care
    def remove_photos(self, photos: Sequence[Path], trash: bool = False) -> int: ...

    def remove_folder(self, folder: Path, trash: bool = False) -> int: ...

    def exclude_folder(self, folder: Path) -> int: ...

    def include(self, path: Path) -> None: ...

    def excluded(self) -> list[Path]: ...

    def check(self, repair: bool = False) -> CheckReport: ...

    def close(self) -> None: ...

"""Shared fixtures: private user folders for every test, the real model loaded
once per session, and real photos (scikit-image's sample photos, which install
with the test extra) copied into temporary folders."""

from __future__ import annotations

import shutil
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage

SKIMAGE_PHOTOS = Path(skimage.__file__).parent / "data"
# Photos whose content the model recognises well (see research notes): name -> a word for it.
PHOTOS = {
    "chelsea.png": "cat",
    "coffee.png": "espresso",
    "rocket.jpg": "missile",
    "motorcycle_left.png": "moped",
    "astronaut.png": "astronaut",
}


@pytest.fixture(autouse=True)
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point the per-user data, cache and config folders at the test's tmp_path."""
    dirs = {}
    for kind in ("data", "cache", "config"):
        dirs[kind] = tmp_path / f"user-{kind}"
        monkeypatch.setenv(f"DEVISE_APP_{kind.upper()}_DIR", str(dirs[kind]))
    return dirs


@pytest.fixture
def private_trash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own home trash, whatever test imported send2trash first: it reads
    XDG_DATA_HOME once, at import, into module globals. Returns its files folder."""
    import os

    from send2trash import plat_other

    data = tmp_path / "trash-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(data))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(data / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(data / "Trash"))
    return data / "Trash" / "files"


@pytest.fixture(scope="session")
def encoder() -> Any:
    """The shipped model on the CPU, loaded once."""
    from devise_app.engine.model import ImageEncoder

    return ImageEncoder(device="cpu")


@pytest.fixture(scope="session")
def vocabulary() -> Any:
    from devise_app.engine.vocabulary import Vocabulary

    return Vocabulary.load()


class CountingEncoder:
    """Wraps the real encoder and counts the photos it embeds."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.embedded = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def embed(self, batch: np.ndarray) -> Any:
        self.embedded += len(batch)
        return self.inner.embed(batch)


@pytest.fixture
def counting_encoder(encoder: Any) -> CountingEncoder:
    return CountingEncoder(encoder)


@pytest.fixture
def copy_photo() -> Callable[[str, Path], Path]:
    """copy_photo("chelsea.png", dest): a scikit-image photo copied to ``dest``
    (a file path, or a folder without a suffix to copy into under the same name)."""

    def copy(name: str, dest: Path) -> Path:
        if not dest.suffix:  # a folder
            dest = dest / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SKIMAGE_PHOTOS / name, dest)
        return dest

    return copy


@pytest.fixture
def photo_dir(tmp_path: Path, copy_photo: Callable[[str, Path], Path]) -> Path:
    """A folder holding the photos of ``PHOTOS``."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        copy_photo(name, folder)
    return folder


@pytest.fixture
def library(tmp_path: Path, counting_encoder: CountingEncoder, vocabulary: Any) -> Iterator[Any]:
    """An empty library in tmp_path using the shared model (embeddings counted)."""
    from devise_app.engine.search import Library

    with Library(tmp_path / "library", encoder=counting_encoder, vocabulary=vocabulary) as lib:
        yield lib


@pytest.fixture
def run_index() -> Callable[..., Any]:
    """run_index(library, folders, **options): run an index to the end, return the summary."""

    def run(library: Any, folders: list[Path], **options: Any) -> Any:
        last = deque(library.index(folders, **options), maxlen=1)[0]
        assert last.finished
        return last.summary

    return run


@pytest.fixture
def shared_model(monkeypatch: pytest.MonkeyPatch, encoder: Any, vocabulary: Any) -> None:
    """Make code that loads the model itself (the CLI) get the session's copies."""
    import devise_app.engine.model
    import devise_app.engine.vocabulary

    monkeypatch.setattr(devise_app.engine.model, "ImageEncoder", lambda *args, **kwargs: encoder)
    monkeypatch.setattr(
        devise_app.engine.vocabulary.Vocabulary, "load", classmethod(lambda cls, *a, **k: vocabulary)
    )

"""Browsing, filters, library care and duplicates, on a real library of real photos
(scikit-image's samples, the real model, SQLite and Annoy)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import skimage
from PIL import Image, ImageEnhance

from devise_app.engine.catalog import CATALOG_FILENAME, MIGRATIONS, Catalog
from devise_app.engine.errors import LibraryError
from devise_app.engine.search import Library, PhotoFilter

SKIMAGE_PHOTOS = Path(skimage.__file__).parent / "data"
RunIndex = Callable[..., Any]


def _save_with_date(source: str, dest: Path, taken: str | None) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    if taken is not None:
        exif.get_ifd(0x8769)[0x9003] = taken
    Image.open(SKIMAGE_PHOTOS / source).convert("RGB").save(dest, quality=92, exif=exif)
    return dest


@pytest.fixture
def dated(tmp_path: Path, library: Any, run_index: RunIndex) -> Path:
    """A library of photos taken on known days, in two folders, one without EXIF."""
    root = tmp_path / "pictures"
    _save_with_date("chelsea.png", root / "2019" / "cat.jpg", "2019:07:14 10:20:30")
    _save_with_date("coffee.png", root / "2019" / "coffee.jpg", "2019:01:02 08:00:00")
    _save_with_date("rocket.jpg", root / "2021" / "rocket.jpg", "2021:03:04 12:00:00")
    _save_with_date("astronaut.png", root / "2021" / "astronaut.jpg", None)
    os.utime(root / "2021" / "astronaut.jpg", (datetime(2020, 5, 5).timestamp(),) * 2)
    run_index(library, [root])
    return root


def _names(photos: Any) -> list[str]:
    return [photo.path.name for photo in photos]


def test_browse_newest_first_by_date_taken_or_by_name(library: Any, dated: Path) -> None:
    photos = library.browse()
    assert _names(photos) == ["rocket.jpg", "astronaut.jpg", "cat.jpg", "coffee.jpg"]
    assert photos[0].taken == datetime(2021, 3, 4, 12, 0, 0)
    assert photos[1].taken == datetime(2020, 5, 5)  # no EXIF: the file's time
    assert _names(library.browse(sort="name")) == ["cat.jpg", "coffee.jpg", "astronaut.jpg", "rocket.jpg"]
    assert _names(library.browse(top=2)) == ["rocket.jpg", "astronaut.jpg"]
    with pytest.raises(LibraryError, match="sort"):
        library.browse(sort="size")


def test_filters_for_browse_and_search(library: Any, dated: Path) -> None:
    assert _names(library.browse(folder=dated / "2019")) == ["cat.jpg", "coffee.jpg"]
    since, until = datetime(2019, 6, 1), datetime(2021, 1, 1)
    assert _names(library.browse(filters=PhotoFilter(since=since, until=until))) == [
        "astronaut.jpg",
        "cat.jpg",
    ]
    library.add_label("favourite", [dated / "2019" / "coffee.jpg", dated / "2021" / "rocket.jpg"])
    assert _names(library.browse(label="favourite")) == ["rocket.jpg", "coffee.jpg"]

    assert library.search("cat", top=1)[0].path.name == "cat.jpg"
    in_2021 = library.search("cat", top=10, filters=PhotoFilter(folder=dated / "2021"))
    assert sorted(_names(in_2021)) == ["astronaut.jpg", "rocket.jpg"]
    favourite_cats = library.search("cat", top=10, filters=PhotoFilter(label="favourite", since=since))
    assert _names(favourite_cats) == ["rocket.jpg"]
    assert library.search("cat", top=3, filters=PhotoFilter()) == library.search("cat", top=3)
    hit = library.search("espresso", top=1)[0]
    assert hit.path.name == "coffee.jpg" and hit.taken_at == datetime(2019, 1, 2, 8).timestamp()
    with pytest.raises(LibraryError, match="no label"):
        library.browse(label="nope")


def test_exact_copies_show_once_with_their_count(
    tmp_path: Path, library: Any, photo_dir: Path, run_index: RunIndex
) -> None:
    for i in range(9):  # nine identical copies used to head the results
        shutil.copyfile(photo_dir / "chelsea.png", photo_dir / f"copy{i}.png")
    run_index(library, [photo_dir])
    hits = library.search("cat", top=3)
    assert hits[0].copies == 10 and len({hit.path.name for hit in hits}) == 3
    assert [hit.copies for hit in hits[1:]] == [1, 1]
    photos = library.browse(sort="name")
    assert len(photos) == 5 and sum(photo.copies for photo in photos) == 14
    (group,) = [group for group in library.duplicates(near=False) if group.exact]
    assert len(group.photos) == 10 and group.similarity == 1.0


def test_near_duplicates_are_grouped(
    tmp_path: Path, library: Any, photo_dir: Path, run_index: RunIndex
) -> None:
    cat = Image.open(photo_dir / "chelsea.png").convert("RGB")
    cat.save(photo_dir / "cat-q60.jpg", quality=60)
    cat.resize((cat.width // 2, cat.height // 2)).save(photo_dir / "cat-small.png")
    ImageEnhance.Brightness(cat).enhance(1.3).save(photo_dir / "cat-bright.png")
    rocket = Image.open(photo_dir / "rocket.jpg")
    w, h = rocket.size
    rocket.crop((w // 20, h // 20, w - w // 20, h - h // 20)).save(photo_dir / "rocket-crop.jpg", quality=90)
    run_index(library, [photo_dir])
    groups = library.duplicates()
    assert not any(group.exact for group in groups)
    as_names = sorted(sorted(p.path.name for p in group.photos) for group in groups)
    assert as_names == [
        ["cat-bright.png", "cat-q60.jpg", "cat-small.png", "chelsea.png"],
        ["rocket-crop.jpg", "rocket.jpg"],
    ]  # coffee, the astronaut and the motorcycle are in no group
    assert all(0.88 <= group.similarity < 1.0 for group in groups)


def test_remove_photos_and_folders_and_exclude(
    tmp_path: Path, library: Any, dated: Path, run_index: RunIndex
) -> None:
    assert library.folders() == [dated]
    assert library.remove_photos([dated / "2019" / "cat.jpg"]) == 1
    assert "cat.jpg" not in _names(library.browse())
    assert (dated / "2019" / "cat.jpg").exists()  # only the library forgot it
    assert library.exclude_folder(dated / "2021") == 2
    assert _names(library.browse()) == ["coffee.jpg"]

    summary = deque_last(library.rescan())
    assert summary.indexed == 0  # the removed photo and the excluded folder stay out
    assert _names(library.browse()) == ["coffee.jpg"]
    assert sorted(p.name for p in library.excluded()) == ["2021", "cat.jpg"]
    library.include(dated / "2021")
    deque_last(library.rescan())
    assert sorted(_names(library.browse())) == ["astronaut.jpg", "coffee.jpg", "rocket.jpg"]
    library.exclude_folder(dated / "2021")
    deque_last(library.index([dated / "2021"]))  # asked for by name: wanted again
    assert [p.name for p in library.excluded()] == ["cat.jpg"]
    deque_last(library.rescan())
    assert sorted(_names(library.browse())) == ["astronaut.jpg", "coffee.jpg", "rocket.jpg"]

    assert library.remove_folder(dated) == 3
    assert library.folders() == [] and library.photo_count() == 0
    with pytest.raises(LibraryError, match="not a folder of the library"):
        library.remove_folder(tmp_path)
    with pytest.raises(LibraryError, match="not a photo of the library"):
        library.remove_photos([dated / "2019" / "coffee.jpg"])


def test_removed_to_the_trash(library: Any, dated: Path, private_trash: Path) -> None:
    assert library.remove_photos([dated / "2019" / "cat.jpg"], trash=True) == 1
    assert not (dated / "2019" / "cat.jpg").exists()
    assert [p.name for p in private_trash.iterdir()] == ["cat.jpg"]
    assert library.excluded() == []  # nothing to exclude: the file is gone
    assert library.remove_folder(dated / "2021", trash=True) == 2
    assert not (dated / "2021").exists()
    assert _names(library.browse()) == ["coffee.jpg"]


def test_rescan_with_a_folder_that_is_not_there(
    tmp_path: Path, library: Any, dated: Path, run_index: RunIndex
) -> None:
    other = tmp_path / "disk"
    _save_with_date("coffee.png", other / "b.jpg", None)
    run_index(library, [other])
    assert library.folders() == sorted([dated, other])
    other.rename(tmp_path / "unmounted")
    deque_last(library.rescan())
    assert library.photo_count() == 5  # the missing folder's photo is kept
    shutil.rmtree(dated)
    with pytest.raises(LibraryError, match="none of the library's folders"):
        library.rescan()


def test_a_library_from_before_dates_and_folders_opens_and_catches_up(
    tmp_path: Path, dated: Path, library: Any, encoder: Any, vocabulary: Any
) -> None:
    library.close()
    db = tmp_path / "library" / CATALOG_FILENAME
    with sqlite3.connect(db) as conn:  # back to schema 1, as an older devise-app left it
        conn.executescript(
            "DROP INDEX photos_head; ALTER TABLE photos DROP COLUMN head; "
            "DROP INDEX photos_taken; ALTER TABLE photos DROP COLUMN taken_at; "
            "DROP TABLE folders; DROP TABLE excluded; PRAGMA user_version = 1;"
        )
    with Library(tmp_path / "library", encoder=encoder, vocabulary=vocabulary) as old:
        assert old.catalog.schema_version == len(MIGRATIONS)
        assert old.photo_count() == 4
        by_file_time = old.browse()
        assert by_file_time[0].taken_at == pytest.approx((dated / by_file_time[0].path).stat().st_mtime)
        assert old.folders() == [dated / "2019", dated / "2021"]  # inferred: the folders holding photos
        deque_last(old.rescan())  # reads the dates taken of the photos catalogued without one
        assert _names(old.browse()) == ["rocket.jpg", "astronaut.jpg", "cat.jpg", "coffee.jpg"]
    assert Catalog.open(tmp_path / "library").schema_version == len(MIGRATIONS)


def deque_last(progress: Any) -> Any:
    from collections import deque

    last = deque(progress, maxlen=1)[0]
    assert last.finished
    return last.summary

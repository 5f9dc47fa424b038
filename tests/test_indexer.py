"""The indexer with the real model on real photos: formats, orientation, bad
files, incremental runs, moves, cancelling and awkward folder trees."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage
from PIL import Image

from devise_app.engine.catalog import Catalog, LibraryError
from devise_app.engine.indexer import check_folders, index_folders

CopyPhoto = Callable[[str, Path], Path]
RunIndex = Callable[..., Any]
SKIMAGE_PHOTOS = Path(skimage.__file__).parent / "data"


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _vector(library: Any, path: Path) -> np.ndarray:
    stored = library.catalog.vector_of(os.fspath(path))
    assert stored is not None, f"{path} is not indexed"
    return stored[1]


def test_every_format(tmp_path: Path, library: Any, run_index: RunIndex) -> None:
    import pillow_heif

    folder = tmp_path / "formats"
    folder.mkdir()
    cat = Image.open(SKIMAGE_PHOTOS / "chelsea.png").convert("RGB")
    coffee = Image.open(SKIMAGE_PHOTOS / "coffee.png").convert("RGB").resize(cat.size)
    cat.save(folder / "cat.png")
    cat.save(folder / "cat.jpg", quality=92)
    cat.save(folder / "cat.JPEG", quality=92)  # suffixes in any case
    cat.save(folder / "cat.webp", quality=92)
    cat.save(folder / "cat.bmp")
    cat.save(folder / "cat.tiff")
    cat.save(folder / "cat.gif", save_all=True, append_images=[coffee], duration=100)  # first frame counts
    pillow_heif.from_pillow(cat).save(folder / "cat.heic", quality=90)
    (folder / "notes.txt").write_text("not a photo")

    summary = run_index(library, [folder])

    assert summary.skipped == ()
    assert summary.indexed == 8
    reference = _vector(library, folder / "cat.png")
    for name in ("cat.jpg", "cat.JPEG", "cat.webp", "cat.bmp", "cat.tiff", "cat.heic"):
        assert cosine(_vector(library, folder / name), reference) > 0.95, name
    coffee.save(tmp_path / "coffee.png")
    gif = _vector(library, folder / "cat.gif")
    assert cosine(gif, reference) > 0.8
    assert cosine(gif, reference) > cosine(
        gif, library.encoder.embed(_model_input(tmp_path / "coffee.png")).vectors[0]
    )


def _model_input(path: Path) -> np.ndarray:
    from devise_app.engine.imaging import load_model_input

    return load_model_input(path)[None]


def test_exif_orientation_is_applied(tmp_path: Path, library: Any, run_index: RunIndex) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    upright = Image.open(SKIMAGE_PHOTOS / "rocket.jpg").convert("RGB")  # portrait, 427x640
    upright.save(folder / "upright.jpg", quality=95)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # how a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    stored.save(folder / "oriented.jpg", quality=95, exif=exif)
    stored.save(folder / "sideways.jpg", quality=95)  # the same pixels without the tag

    run_index(library, [folder])

    oriented = _vector(library, folder / "oriented.jpg")
    assert cosine(oriented, _vector(library, folder / "upright.jpg")) > 0.98
    assert cosine(oriented, _vector(library, folder / "sideways.jpg")) < 0.95


def test_bad_files_are_recorded_and_do_not_stop_the_run(
    tmp_path: Path, library: Any, run_index: RunIndex, copy_photo: CopyPhoto
) -> None:
    folder = tmp_path / "photos"
    copy_photo("chelsea.png", folder)
    copy_photo("coffee.png", folder)
    (folder / "empty.jpg").write_bytes(b"")
    rocket = (SKIMAGE_PHOTOS / "rocket.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(rocket[: len(rocket) // 2])
    (folder / "noise.png").write_bytes(np.random.default_rng(0).bytes(5000))
    (folder / "text.jpg").write_text("hello, I am not a photo\n")

    summary = run_index(library, [folder])

    assert summary.indexed == 2
    bad = {item.path.name: item.reason for item in summary.skipped}
    assert set(bad) == {"empty.jpg", "truncated.jpg", "noise.png", "text.jpg"}
    assert "truncated" in bad["truncated.jpg"]
    assert bad["text.jpg"] == "not a recognised image format"
    assert {Path(path).name for path, _ in library.catalog.errors()} == set(bad)
    assert library.photo_count() == 2

    # Unchanged bad files are reported again but not retried; a repaired one is indexed.
    (folder / "truncated.jpg").write_bytes(rocket)
    summary = run_index(library, [folder])
    assert summary.indexed == 1
    assert summary.unchanged == 2
    assert {item.path.name for item in summary.skipped} == {"empty.jpg", "noise.png", "text.jpg"}
    assert library.photo_count() == 3


def test_incremental_runs(
    tmp_path: Path, library: Any, counting_encoder: Any, run_index: RunIndex, copy_photo: CopyPhoto
) -> None:
    folder = tmp_path / "photos"
    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        copy_photo(name, folder)
    first = run_index(library, [folder])
    assert (first.indexed, first.unchanged, first.moved, first.removed) == (3, 0, 0, 0)
    assert counting_encoder.embedded == 3
    cat_id = library.catalog.photo_id(os.fspath(folder / "chelsea.png"))
    library.add_label("Pets", [folder / "chelsea.png"])

    again = run_index(library, [folder])
    assert (again.indexed, again.unchanged, again.moved, again.removed) == (0, 3, 0, 0)
    assert counting_encoder.embedded == 3

    # modified: other content under the same name
    old_vector = _vector(library, folder / "coffee.png")
    copy_photo("motorcycle_left.png", folder / "coffee.png")
    # deleted
    (folder / "rocket.jpg").unlink()
    # moved and renamed
    (folder / "sub").mkdir()
    (folder / "chelsea.png").rename(folder / "sub" / "my cat.png")
    # added
    copy_photo("astronaut.png", folder)

    changed = run_index(library, [folder])
    assert (changed.indexed, changed.unchanged, changed.moved, changed.removed) == (2, 0, 1, 1)
    assert counting_encoder.embedded == 5  # the moved photo was not embedded again
    assert cosine(_vector(library, folder / "coffee.png"), old_vector) < 0.9
    assert library.catalog.photo_id(os.fspath(folder / "sub" / "my cat.png")) == cat_id
    assert library.labels_of(folder / "sub" / "my cat.png") == ["Pets"]
    assert library.photo_count() == 3

    # a copy reuses the stored vector; a touched file keeps its vector
    shutil.copy(folder / "astronaut.png", folder / "astronaut copy.png")
    os.utime(folder / "coffee.png", ns=(1, 1))
    copied = run_index(library, [folder])
    assert (copied.indexed, copied.unchanged) == (1, 3)
    assert counting_encoder.embedded == 5
    assert library.photo_count() == 4
    np.testing.assert_allclose(  # the same features through the same head (to float rounding)
        _vector(library, folder / "astronaut copy.png"), _vector(library, folder / "astronaut.png"), atol=1e-6
    )


def test_only_the_scanned_folders_lose_deleted_photos(
    tmp_path: Path, library: Any, run_index: RunIndex, copy_photo: CopyPhoto
) -> None:
    one, two = tmp_path / "one", tmp_path / "one-two"  # a name that starts like the other
    copy_photo("chelsea.png", one)
    copy_photo("coffee.png", two)
    run_index(library, [one, two])
    (two / "coffee.png").unlink()
    summary = run_index(library, [one])
    assert summary.removed == 0
    assert library.photo_count() == 2
    assert run_index(library, [two]).removed == 1


def test_a_renamed_folder_keeps_its_photos_labels(
    tmp_path: Path, library: Any, counting_encoder: Any, run_index: RunIndex, copy_photo: CopyPhoto
) -> None:
    """Issue 12: a folder renamed, then indexed under its new name, kept its labels on
    the dead rows, and lost them when the old folder was cleaned up."""
    old, other = tmp_path / "Trip 2024", tmp_path / "elsewhere"
    copy_photo("chelsea.png", old)
    copy_photo("coffee.png", old)
    copy_photo("rocket.jpg", other)
    run_index(library, [old, other])
    library.add_label("Holiday", [old / "chelsea.png"])
    cat_id = library.catalog.photo_id(os.fspath(old / "chelsea.png"))
    (other / "rocket.jpg").rename(tmp_path / "rocket moved out of sight.jpg")  # gone, and not scanned
    new = old.rename(tmp_path / "Trip to Rome")

    summary = run_index(library, [new])
    assert (summary.indexed, summary.moved, summary.removed) == (0, 2, 0)
    assert counting_encoder.embedded == 3  # nothing embedded again
    assert library.catalog.photo_id(os.fspath(new / "chelsea.png")) == cat_id
    assert library.labels_of(new / "chelsea.png") == ["Holiday"]
    assert library.photo_count() == 3  # the unmatched photo elsewhere is not this run's to drop

    assert run_index(library, [other]).removed == 1  # its own folder's run drops it
    assert library.labels() == [("Holiday", 1)]


def test_another_model_means_embedding_again(tmp_path: Path, counting_encoder: Any, photo_dir: Path) -> None:
    catalog = Catalog.open(tmp_path / "lib")

    def run(model_id: str) -> Any:
        return list(index_folders(catalog, [photo_dir], lambda: counting_encoder, model_id))[-1]

    run("model-1")
    assert counting_encoder.embedded == 5
    run("model-1")
    assert counting_encoder.embedded == 5
    last = run("model-2")
    assert counting_encoder.embedded == 10
    assert last.summary.indexed == 5
    assert catalog.photo_count() == 5
    catalog.close()


def test_cancel_then_resume(tmp_path: Path, library: Any, run_index: RunIndex, copy_photo: CopyPhoto) -> None:
    folder = tmp_path / "photos"
    names = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "motorcycle_left.png", "camera.png"]
    for name in names:
        copy_photo(name, folder)
    cancel = threading.Event()
    seen = []
    for progress in library.index([folder], cancel=cancel, batch_size=2):
        seen.append(progress)
        if progress.done >= 2:
            cancel.set()
    summary = seen[-1].summary
    assert summary.cancelled
    assert summary.indexed == 2
    assert library.photo_count() == 2
    assert [p.finished for p in seen].count(True) == 1 and seen[-1].finished
    assert library.search("cat", top=10)  # what was indexed is searchable already

    resumed = run_index(library, [folder], batch_size=2)
    assert not resumed.cancelled
    assert (resumed.indexed, resumed.unchanged) == (4, 2)
    assert library.photo_count() == 6


def test_progress_reports(tmp_path: Path, library: Any, photo_dir: Path) -> None:
    items = list(library.index([photo_dir], batch_size=2))
    assert [item.done for item in items if item.phase == "indexing"] == [0, 2, 4, 5]
    assert all(item.total == 5 for item in items)
    assert items[-1].phase == "finished" and items[-1].finished
    assert not any(item.finished for item in items[:-1])
    assert items[2].eta is not None and items[2].eta >= 0
    assert items[2].current is not None and items[2].current.parent == photo_dir


def test_symlink_loops_broken_links_and_hidden_files(
    tmp_path: Path, library: Any, run_index: RunIndex, copy_photo: CopyPhoto
) -> None:
    root = tmp_path / "photos"
    copy_photo("chelsea.png", root / "a")
    outside = copy_photo("coffee.png", tmp_path / "elsewhere")
    (root / "a" / "loop").symlink_to(root)  # a loop back to the top
    (root / "a" / "self").symlink_to(root / "a")
    (root / "coffee link.png").symlink_to(outside)  # a link to a file is followed
    (root / "broken.jpg").symlink_to(tmp_path / "nothing.jpg")
    (root / "circular.jpg").symlink_to(root / "circular.jpg")
    copy_photo("rocket.jpg", root / ".hidden")
    copy_photo("astronaut.png", root / "a" / ".secret.png")

    summary = run_index(library, [root])

    assert summary.indexed == 2
    assert {(item.path.name, item.reason) for item in summary.skipped} == {
        ("broken.jpg", "broken link"),
        ("circular.jpg", "symlink loop"),
    }
    indexed = sorted(Path(record.path).relative_to(root).as_posix() for record in library.catalog.records())
    assert indexed == ["a/chelsea.png", "coffee link.png"]


def test_unreadable_folder_keeps_its_photos(
    tmp_path: Path,
    library: Any,
    run_index: RunIndex,
    copy_photo: CopyPhoto,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "photos"
    locked = root / "locked"
    copy_photo("chelsea.png", locked)
    run_index(library, [root])

    real_scandir = os.scandir

    def scandir(path: Any) -> Any:  # chmod 0 does not stop root, so refuse it here
        if os.fspath(path) == os.fspath(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    summary = run_index(library, [root])
    assert summary.removed == 0
    assert [(item.path, item.reason) for item in summary.skipped] == [
        (locked, "cannot read folder: permission denied")
    ]
    assert library.photo_count() == 1


def test_folders_are_checked_first(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="no such folder"):
        check_folders([tmp_path / "missing"])
    (tmp_path / "file.jpg").write_bytes(b"")
    with pytest.raises(LibraryError, match="not a folder"):
        check_folders([tmp_path / "file.jpg"])
    with pytest.raises(LibraryError):
        check_folders([])
    assert check_folders([tmp_path / "." / ""]) == [Path(os.path.realpath(tmp_path))]


def test_scanning_reports_progress_and_can_be_cancelled(
    tmp_path: Path, library: Any, monkeypatch: pytest.MonkeyPatch, copy_photo: CopyPhoto
) -> None:
    import devise_app.engine.indexer

    monkeypatch.setattr(devise_app.engine.indexer, "SCAN_PROGRESS_EVERY", 2)
    folder = tmp_path / "photos"
    for i in range(5):
        copy_photo("coffee.png", folder / f"{i}.png")
    cancel = threading.Event()
    items = []
    for item in library.index([folder], cancel=cancel):
        items.append(item)
        cancel.set()
    assert [(item.phase, item.total) for item in items] == [("scanning", 2), ("finished", 2)]
    assert items[-1].summary.cancelled
    assert library.photo_count() == 0


class EncoderFactory:
    """Hands out the session's real encoder, counting how often it is asked for one."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.encoder


def test_the_model_is_loaded_only_when_a_photo_needs_embedding(
    tmp_path: Path,
    encoder: Any,
    vocabulary: Any,
    photo_dir: Path,
    run_index: RunIndex,
    copy_photo: CopyPhoto,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through a fresh Library each time, as every `devise-app index` makes one: an
    unchanged, touched or moved photo needs no model (loading it takes seconds on CUDA)."""
    import devise_app.engine.model
    from devise_app.engine.search import Library

    made = EncoderFactory(encoder)
    monkeypatch.setattr(devise_app.engine.model, "ImageEncoder", made)

    def rescan() -> Any:
        with Library(tmp_path / "library", vocabulary=vocabulary) as library:
            return run_index(library, [photo_dir])

    assert rescan().indexed == 5
    assert made.calls == 1
    assert rescan().unchanged == 5
    os.utime(photo_dir / "coffee.png", ns=(1, 1))  # the same bytes, another mtime
    (photo_dir / "rocket.jpg").rename(photo_dir / "moved rocket.jpg")
    touched = rescan()
    assert (touched.unchanged, touched.moved, touched.indexed) == (4, 1, 0)
    assert made.calls == 1
    copy_photo("camera.png", photo_dir)
    assert rescan().indexed == 1
    assert made.calls == 2


def test_a_run_asks_for_its_encoder_once(tmp_path: Path, encoder: Any, photo_dir: Path) -> None:
    made = EncoderFactory(encoder)
    catalog = Catalog.open(tmp_path / "lib")
    try:
        last = list(index_folders(catalog, [photo_dir], made, "model-1", batch_size=2))[-1]
    finally:
        catalog.close()
    assert last.summary.indexed == 5  # in three batches
    assert made.calls == 1


def test_a_learned_head_is_put_on_the_model_once_per_run(
    tmp_path: Path,
    library: Any,
    photo_dir: Path,
    run_index: RunIndex,
    copy_photo: CopyPhoto,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from devise_app.engine import labels

    run_index(library, [photo_dir])
    library.add_label("Tabby", [photo_dir / "chelsea.png"])
    learned = next(item for item in library.learn() if item.finished).result
    real_with_head = labels.with_head
    heads: list[Any] = []

    def with_head(*args: Any) -> Any:
        heads.append(real_with_head(*args))
        return heads[-1]

    monkeypatch.setattr(labels, "with_head", with_head)
    new = tmp_path / "new"
    for name in ("camera.png", "horse.png", "hubble_deep_field.jpg", "retina.jpg", "page.png"):
        copy_photo(name, new)

    assert run_index(library, [photo_dir, new], batch_size=2).indexed == 5  # in three batches
    assert len(heads) == 1
    _, features = library.catalog.features()
    _, vectors = library.catalog.vectors()
    np.testing.assert_allclose(vectors, learned.head.project(features), atol=2e-3)  # features are float16

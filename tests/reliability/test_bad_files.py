"""Bad input never stops an index run (issue 7).

Each bad file sits in a folder beside good photos: it is skipped with its reason,
counted in the summary, recorded in the catalog where it is a file that exists
(files that vanish or change mid-read are not recorded, so the next run looks
again; links, loops and folders are reported by the scan), and the good photos
still get indexed. Unusual but valid photos (CMYK, 16-bit, palette with
transparency, animations, huge or damaged EXIF) are indexed, and their vectors
match the photo as it looks.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from reliability_support import (
    SKIMAGE_PHOTOS,
    cli_command,
    cosine,
    decompression_bomb,
    distinct_photos,
    png,
    run_cli,
    source_photo,
)

from devise_app.cli import main
from devise_app.engine import imaging
from devise_app.engine.indexer import CHANGED, VANISHED

RunIndex = Callable[..., Any]
GOOD = 2  # good photos beside each bad file


# -- making bad files ------------------------------------------------------------------


def _exif_ifd(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """An EXIF block with one IFD of (tag, type, count, 4-byte value) entries."""
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + value for tag, kind, count, value in entries
    )
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


BadFile = Callable[[Path], tuple[Path, str, bool]]  # folder -> (path, reason fragment, in catalog)


def _zero_bytes(folder: Path) -> tuple[Path, str, bool]:
    path = folder / "empty.jpg"
    path.write_bytes(b"")
    return path, "empty file", True


def _truncated_jpeg(folder: Path) -> tuple[Path, str, bool]:
    path = folder / "truncated.jpg"
    data = (SKIMAGE_PHOTOS / "rocket.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path, "truncated", True


def _random_png(folder: Path) -> tuple[Path, str, bool]:
    path = folder / "noise.png"
    path.write_bytes(np.random.default_rng(7).bytes(20_000))
    return path, "not a recognised image format", True


def _text_jpg(folder: Path) -> tuple[Path, str, bool]:
    path = folder / "notes.jpg"
    path.write_text("Shopping list: eggs, milk.\n" * 20)
    return path, "not a recognised image format", True


def _bomb(folder: Path) -> tuple[Path, str, bool]:
    path = folder / "bomb.png"
    path.write_bytes(decompression_bomb(30_000))
    return path, "image too large", True


def _just_over_the_cap(folder: Path) -> tuple[Path, str, bool]:
    """Above MAX_IMAGE_PIXELS but below twice it, where Pillow only warns."""
    side = int(imaging.MAX_IMAGE_PIXELS**0.5) + 100
    path = folder / "large.png"
    path.write_bytes(decompression_bomb(side))
    return path, "image too large", True


def _broken_symlink(folder: Path) -> tuple[Path, str, bool]:
    path = folder / "broken.jpg"
    path.symlink_to(folder / "no-such-photo.jpg")
    return path, "broken link", False


def _symlink_loop(folder: Path) -> tuple[Path, str, bool]:
    path = folder / "loop.jpg"
    path.symlink_to(path)  # (a loop of two links reports both; see also the folder loop below)
    return path, "symlink loop", False


BAD_FILES: dict[str, BadFile] = {
    "zero-byte file": _zero_bytes,
    "truncated JPEG": _truncated_jpeg,
    "random bytes named .png": _random_png,
    "text named .jpg": _text_jpg,
    "decompression bomb (30000x30000 PNG)": _bomb,
    "just over the pixel cap": _just_over_the_cap,
    "broken symlink": _broken_symlink,
    "symlink loop": _symlink_loop,
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with GOOD good photos."""
    folder = tmp_path / "photos"
    distinct_photos(folder, GOOD)
    return folder


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_file_is_skipped_with_its_reason(
    kind: str, folder: Path, library: Any, run_index: RunIndex
) -> None:
    path, reason, in_catalog = BAD_FILES[kind](folder)

    summary = run_index(library, [folder])

    assert summary.indexed == GOOD  # the run went on
    assert [item.path for item in summary.skipped] == [path]
    assert reason in summary.skipped[0].reason
    assert library.photo_count() == GOOD
    problems = library.problems()
    if in_catalog:
        assert problems == [(path, summary.skipped[0].reason)]
    else:
        assert problems == []

    summary = run_index(library, [folder])  # reported again, not retried, nothing else changes
    assert [item.path for item in summary.skipped] == [path]
    assert (summary.indexed, summary.unchanged) == (0, GOOD)


# -- valid photos in unusual forms -----------------------------------------------------


def _embed(encoder: Any, img: Image.Image) -> np.ndarray:
    return np.asarray(encoder.embed(imaging.to_model_input(img)[None]).vectors[0])


def _rgb16_png(img: Image.Image) -> bytes:
    pixels = np.asarray(img, dtype=np.uint16) * 257
    return png(img.width, img.height, 16, 2, (row.astype(">u2").tobytes() for row in pixels))


def _on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    return white


Valid = Callable[[Path, Image.Image], Image.Image]  # (path to write, photo) -> how it should look


def _cmyk_jpeg(path: Path, cat: Image.Image) -> Image.Image:
    cat.convert("CMYK").save(path.with_suffix(".jpg"), quality=95)
    return cat


def _png_16_bit_rgb(path: Path, cat: Image.Image) -> Image.Image:
    path.with_suffix(".png").write_bytes(_rgb16_png(cat))
    return cat


def _png_16_bit_grey(path: Path, cat: Image.Image) -> Image.Image:
    grey = np.asarray(cat.convert("L"), dtype=np.uint16)
    Image.fromarray(grey * 257).save(path.with_suffix(".png"))
    return Image.fromarray(grey.astype(np.uint8)).convert("RGB")


def _palette_with_transparency(path: Path, cat: Image.Image) -> Image.Image:
    palette = cat.quantize(64)
    transparent = int(np.bincount(np.asarray(palette).ravel()).argmax())  # the commonest colour
    palette.save(path.with_suffix(".png"), transparency=transparent)
    with Image.open(path.with_suffix(".png")) as saved:
        assert saved.mode == "P" and "transparency" in saved.info
        return _on_white(saved)


def _animated_gif(path: Path, cat: Image.Image) -> Image.Image:
    others = [source_photo(name).resize(cat.size) for name in ("coffee.png", "rocket.jpg")]
    cat.save(path.with_suffix(".gif"), save_all=True, append_images=others, duration=100, loop=0)
    with Image.open(path.with_suffix(".gif")) as saved:
        assert saved.n_frames == 3
        return saved.convert("RGB")  # the first frame, with the GIF's colours


def _huge_exif_jpeg(path: Path, cat: Image.Image) -> Image.Image:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: the orientation must still be read from the huge block
    exif[0x010E] = "x" * 64_000  # ImageDescription: a JPEG APP1 segment holds at most 64 kB
    sideways = cat.transpose(Image.Transpose.ROTATE_90)
    sideways.save(path.with_suffix(".jpg"), exif=exif.tobytes(), quality=95)
    assert len(exif.tobytes()) > 64_000
    return cat


def _huge_exif_png(path: Path, cat: Image.Image) -> Image.Image:
    exif = Image.Exif()
    exif[0x010E] = "y" * 4_000_000  # a 4 MB eXIf chunk
    cat.save(path.with_suffix(".png"), exif=exif.tobytes())
    return cat


def _large_text_chunk_png(path: Path, cat: Image.Image) -> Image.Image:
    """A 3 MB XMP-like zTXt chunk, which inflates past Pillow's default 1 MB limit."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("XML:com.adobe.xmp", "<x:xmpmeta>" + "a" * 3_000_000 + "</x:xmpmeta>", zip=True)
    cat.save(path.with_suffix(".png"), pnginfo=info)
    return cat


def _damaged_exif(path: Path, cat: Image.Image) -> Image.Image:
    """Orientation 6 beside an XResolution stored as text: Pillow's exif_transpose
    raised TypeError on it, and the photo was refused."""
    exif = _exif_ifd([(0x0112, 3, 1, struct.pack("<HH", 6, 0)), (0x011A, 2, 4, b"abc\x00")])
    cat.transpose(Image.Transpose.ROTATE_90).save(path.with_suffix(".jpg"), exif=exif, quality=95)
    return cat


VALID: dict[str, Valid] = {
    "CMYK JPEG": _cmyk_jpeg,
    "16-bit RGB PNG": _png_16_bit_rgb,
    "16-bit greyscale PNG": _png_16_bit_grey,
    "palette PNG with transparency": _palette_with_transparency,
    "animated GIF": _animated_gif,
    "JPEG with a 64 kB EXIF block": _huge_exif_jpeg,
    "PNG with a 4 MB EXIF block": _huge_exif_png,
    "PNG with a 3 MB compressed text chunk": _large_text_chunk_png,
    "JPEG with a damaged EXIF block": _damaged_exif,
}


@pytest.mark.parametrize("kind", list(VALID))
def test_an_unusual_valid_photo_is_indexed(
    kind: str, folder: Path, library: Any, run_index: RunIndex, encoder: Any
) -> None:
    cat = source_photo("chelsea.png")
    expected = VALID[kind](folder / "odd", cat)
    (path,) = folder.glob("odd.*")

    summary = run_index(library, [folder])

    assert summary.skipped == ()
    assert summary.indexed == GOOD + 1
    stored = library.catalog.vector_of(os.fspath(path))
    assert stored is not None
    assert cosine(stored[1], _embed(encoder, expected)) > 0.97
    if kind == "animated GIF":  # the first frame, not the others
        coffee = source_photo("coffee.png").resize(cat.size)
        assert cosine(stored[1], _embed(encoder, coffee)) < 0.8


# What devise_app.engine.imaging installs for the app; pytest's own "error" filter would hide it.
@pytest.mark.filterwarnings(r"ignore::UserWarning:PIL\.TiffImagePlugin")
def test_damaged_exif_blocks_never_stop_decoding(tmp_path: Path) -> None:
    """Random damage to the entries of a real EXIF block: open_image decodes every
    photo (Pillow's EXIF writer raised struct.error or TypeError from
    exif_transpose on some 1% of them, and those photos were refused)."""
    rng = np.random.default_rng(25)  # a seed where the old code refused 5 of the 300
    img = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    exif = Image.Exif()
    tags = {
        0x0112: 6,
        0x010E: "a photo",
        0x011A: 72.0,
        0x011B: 72.0,
        0x0128: 2,
        0x010F: "Camera",
        0x0131: "sw",
    }
    for tag, value in tags.items():
        exif[tag] = value
    block = exif.tobytes()
    entries_end = len(b"Exif\x00\x00") + 8 + 2 + 12 * len(tags)  # header, IFD offset, count, entries
    path = tmp_path / "damaged.jpg"
    for _ in range(300):
        damaged = bytearray(block)
        for position in rng.integers(8, entries_end, size=rng.integers(1, 4)):
            damaged[position] = rng.integers(0, 256)
        img.save(path, exif=bytes(damaged))
        decoded = imaging.open_image(path)
        assert decoded.mode == "RGB" and sorted(decoded.size) == [24, 32]


# -- files that vanish or change while the run reads them ------------------------------


@pytest.fixture
def on_open(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, Callable[[Path], None]], list[Path]]:
    """on_open(path, fault): run ``fault(path)`` just before the indexer decodes
    that file (after the scan saw it and after it was hashed); returns the list
    of paths the fault hit."""

    def install(target: Path, fault: Callable[[Path], None]) -> list[Path]:
        real_open_image = imaging.open_image
        hit: list[Path] = []

        def open_image(path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Image.Image:
            if Path(path) == target and not hit:
                hit.append(target)
                fault(target)
            return real_open_image(path, *args, **kwargs)

        monkeypatch.setattr(imaging, "open_image", open_image)
        return hit

    return install


def test_a_file_that_vanishes_during_the_run(
    folder: Path, library: Any, run_index: RunIndex, on_open: Any
) -> None:
    doomed = distinct_photos(folder, 1, start=GOOD)[0]
    hit = on_open(doomed, Path.unlink)

    summary = run_index(library, [folder])

    assert hit == [doomed]
    assert [(item.path, item.reason) for item in summary.skipped] == [(doomed, VANISHED)]
    assert summary.indexed == GOOD
    assert library.catalog.photo_id(os.fspath(doomed)) is None  # nothing recorded for a file that is gone
    assert library.problems() == []


def test_a_file_that_changes_during_the_run(
    folder: Path, library: Any, run_index: RunIndex, on_open: Any, encoder: Any
) -> None:
    """The file is rewritten with another photo between hashing and decoding.
    Before the fix its row paired the old bytes' hash with the new photo's
    vector, and a later copy of the old photo was given that wrong vector."""
    changing = folder / "changing.png"
    shutil.copyfile(SKIMAGE_PHOTOS / "chelsea.png", changing)
    hit = on_open(changing, lambda path: shutil.copyfile(SKIMAGE_PHOTOS / "rocket.jpg", path))

    summary = run_index(library, [folder])

    assert hit == [changing]
    assert [(item.path, item.reason) for item in summary.skipped] == [(changing, CHANGED)]
    assert summary.indexed == GOOD
    assert library.catalog.photo_id(os.fspath(changing)) is None

    # The next run indexes the new content; a copy of the old photo gets its own vector.
    shutil.copyfile(SKIMAGE_PHOTOS / "chelsea.png", folder / "copy of the old.png")
    summary = run_index(library, [folder])
    assert summary.skipped == ()
    assert summary.indexed == 2
    rocket = _embed(encoder, source_photo("rocket.jpg"))
    chelsea = _embed(encoder, source_photo("chelsea.png"))
    assert cosine(library.catalog.vector_of(os.fspath(changing))[1], rocket) > 0.97
    assert cosine(library.catalog.vector_of(os.fspath(folder / "copy of the old.png"))[1], chelsea) > 0.97


# -- awkward folders and names ---------------------------------------------------------


def _without_dac_override() -> list[str] | None:
    """A command prefix that runs a program as root without the capabilities that
    let root read any folder, so chmod 000 stops it; None if there is none here."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "pass"], capture_output=True, check=False)
    return prefix if probe.returncode == 0 else None


def test_an_unreadable_folder_is_reported_and_keeps_its_photos(tmp_path: Path, folder: Path) -> None:
    """chmod 000 on a real folder, and the real CLI. Root reads any folder, so
    as root the CLI runs without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (setpriv)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        found = _without_dac_override()
        if found is None:
            pytest.skip("running as root, where chmod 000 does not stop reads, and setpriv cannot drop that")
        prefix = found
    locked = folder / "locked"
    distinct_photos(locked, 2, start=10)
    library_dir = tmp_path / "library"

    def index() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, *cli_command("index", folder, "--library", library_dir)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip

    first = index()
    assert first.returncode == 0, first.stderr
    assert "the library holds 4 photos" in first.stdout
    locked.chmod(0)
    try:
        second = index()
    finally:
        locked.chmod(0o755)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert f"{locked}: cannot read folder: permission denied" in second.stdout
    assert "the library holds 4 photos" in second.stdout  # its photos are not taken for deleted
    assert "removed          0" in second.stdout


def test_a_directory_symlink_loop_and_deep_nesting(tmp_path: Path, library: Any, run_index: RunIndex) -> None:
    root = tmp_path / "photos"
    deep = root.joinpath(*(["d"] * 200))
    distinct_photos(deep, 1)
    (deep / "back to the top").symlink_to(root)
    (root / "d" / "self").symlink_to(root / "d")
    distinct_photos(root, 1, start=1)

    summary = run_index(library, [root])

    assert summary.skipped == ()
    assert summary.indexed == 2  # each folder visited once, however it is reached
    assert library.catalog.photo_id(os.fspath(deep / "photo000.jpg")) is not None


ODD_NAMES = (
    "with space.jpg",
    "new\nline.jpg",
    "tab\there.jpg",
    "ünïcödé 猫.jpg",
    "emoji 🐱.jpg",
    "quote\" 'and' back\\slash.jpg",
    "-starts with a dash.jpg",
    "%s %d {} $HOME.jpg",
)


def test_odd_names_are_indexed_searched_and_labelled(
    tmp_path: Path, shared_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "photos"
    sources = distinct_photos(tmp_path / "sources", len(ODD_NAMES))
    odd_folder = folder / "folder with ünïcödé\nand a newline"
    odd_folder.mkdir(parents=True)
    for source, name in zip(sources, ODD_NAMES, strict=True):
        source.rename(odd_folder / name)
    library_dir = tmp_path / "library"

    assert main(["index", os.fspath(folder), "--library", os.fspath(library_dir)]) == 0
    out = capsys.readouterr().out
    assert f"the library holds {len(ODD_NAMES)} photos" in out
    assert "skipped          0" in out

    paths = [os.fspath(odd_folder / name) for name in ODD_NAMES]
    assert main(["label", "add", "odd", *paths, "--library", os.fspath(library_dir)]) == 0
    assert main(["search", "label:odd", "--json", "--top", "50", "--library", os.fspath(library_dir)]) == 0
    found = json.loads(capsys.readouterr().out)
    assert sorted(hit["path"] for hit in found["results"]) == sorted(paths)


@pytest.mark.skipif(sys.platform != "linux", reason="needs a file system that takes any bytes as a name")
def test_names_that_are_not_utf8(tmp_path: Path, folder: Path, library: Any, run_index: RunIndex) -> None:
    """A Latin-1 file name and folder name. Before the fix the first such name
    raised UnicodeEncodeError in SQLite and stopped every run for good; and the
    CLI, on a strict UTF-8 stdout, raised printing it."""
    photo = distinct_photos(tmp_path / "sources", 2)
    bad_file = os.fsdecode(os.fsencode(folder) + b"/caf\xe9.jpg")
    bad_folder = os.fsdecode(os.fsencode(folder) + b"/\xe9t\xe9")
    os.rename(photo[0], bad_file)
    os.mkdir(bad_folder)
    os.rename(photo[1], os.path.join(bad_folder, "inside.jpg"))
    expected = [
        (Path(bad_file), "file name is not valid UTF-8 (cannot be stored in the catalog)"),
        (Path(bad_folder), "folder name is not valid UTF-8 (cannot be stored in the catalog)"),
    ]

    summary = run_index(library, [folder])

    assert summary.indexed == GOOD
    assert sorted((item.path, item.reason) for item in summary.skipped) == sorted(expected)

    cli = run_cli("index", folder, "--library", tmp_path / "cli-library", env={"PYTHONIOENCODING": "utf-8"})
    assert cli.returncode == 0, cli.stderr
    assert cli.stderr == ""
    assert f"the library holds {GOOD} photos" in cli.stdout
    assert f"{folder}/caf\\udce9.jpg: file name is not valid UTF-8" in cli.stdout


def test_the_cli_reports_every_bad_file_and_indexes_the_rest(
    tmp_path: Path, folder: Path, shared_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """All the bad files of BAD_FILES in one folder, through the command line."""
    expected = dict(make(folder)[:2] for make in BAD_FILES.values())
    library_dir = tmp_path / "library"

    code = main(["index", os.fspath(folder), "--library", os.fspath(library_dir)])

    captured = capsys.readouterr()
    assert code == 0
    assert "Traceback" not in captured.err
    assert f"the library holds {GOOD} photos" in captured.out
    assert f"skipped    {len(expected):>7}" in captured.out
    for path, reason in expected.items():
        assert any(line.startswith(f"  {path}: ") and reason in line for line in captured.out.splitlines()), (
            path,
            reason,
        )

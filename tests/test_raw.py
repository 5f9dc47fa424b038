"""Camera RAW files, for real: DNGs written with tifffile (a Bayer mosaic made from
a scikit-image photo, with the DNG tags LibRaw needs), read through rawpy, indexed
and searched. One carries a JPEG preview (as cameras write them), one a bitmap
preview, one none (LibRaw then develops the mosaic at half size)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage
import tifffile
from PIL import Image

from devise_app.engine import imaging
from devise_app.engine.errors import ImageDecodeError

SKIMAGE_PHOTOS = Path(skimage.__file__).parent / "data"
WHITE = 4000
# XYZ -> linear sRGB: the "camera" of these files sees linear sRGB.
XYZ_TO_CAMERA = (3.2406, -1.5372, -0.4986, -0.9689, 1.8758, 0.0415, 0.0557, -0.2040, 1.0570)
TAKEN = "2019:07:14 10:20:30"


def _srational(values: tuple[float, ...]) -> list[int]:
    return [part for value in values for part in (round(value * 10000), 10000)]


def _mosaic(rgb: np.ndarray) -> np.ndarray:
    """An RGGB Bayer mosaic of a photo, linear, 16-bit, white at WHITE."""
    height, width = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    linear = (rgb[:height, :width].astype(np.float64) / 255.0) ** 2.2 * WHITE
    cfa = np.empty((height, width), np.uint16)
    cfa[0::2, 0::2] = linear[0::2, 0::2, 0]
    cfa[0::2, 1::2] = linear[0::2, 1::2, 1]
    cfa[1::2, 0::2] = linear[1::2, 0::2, 1]
    cfa[1::2, 1::2] = linear[1::2, 1::2, 2]
    return cfa


CAMERA_TAGS = [
    (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
    (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
    (271, "s", 0, "devise-app", True),  # Make
    (272, "s", 0, "Synthetic", True),  # Model
    (50708, "s", 0, "devise-app Synthetic", True),  # UniqueCameraModel
]
RAW_TAGS = [
    (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
    (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
    (50710, "B", 3, (0, 1, 2), True),  # CFAPlaneColor
    (50717, "I", 1, WHITE, True),  # WhiteLevel
    (50721, "2i", 9, _srational(XYZ_TO_CAMERA), True),  # ColorMatrix1
    (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
    (50728, "2I", 3, [10000, 10000] * 3, True),  # AsShotNeutral
]


def write_dng(path: Path, photo: str, preview: str | None, taken: str | None = TAKEN) -> Path:
    """A DNG of a scikit-image photo: IFD 0 the preview (``"jpeg"``, ``"bitmap"``)
    with the RAW mosaic in its SubIFD, or (``None``) the mosaic alone in IFD 0."""
    rgb = np.asarray(Image.open(SKIMAGE_PHOTOS / photo).convert("RGB"))
    cfa = _mosaic(rgb)
    if preview is None:
        tifffile.imwrite(
            path, cfa, photometric=32803, subfiletype=0, datetime=taken, extratags=CAMERA_TAGS + RAW_TAGS
        )
        return path
    first = np.frombuffer(_jpeg(rgb), np.uint8)[None, :] if preview == "jpeg" else rgb
    with tifffile.TiffWriter(path) as dng:
        dng.write(
            first,
            photometric="minisblack" if preview == "jpeg" else "rgb",
            subfiletype=1,
            subifds=1,
            datetime=taken,
            extratags=CAMERA_TAGS,
        )
        dng.write(cfa, photometric=32803, subfiletype=0, extratags=RAW_TAGS)
    if preview == "jpeg":
        _make_jpeg_strip(path, rgb.shape[1], rgb.shape[0])
    return path


def _jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _make_jpeg_strip(path: Path, width: int, height: int) -> None:
    """Turn IFD 0, written as one row of bytes holding a JPEG, into a JPEG-compressed
    YCbCr image (tifffile writes JPEG only with imagecodecs; its tags can be rewritten)."""
    with tifffile.TiffFile(path, mode="r+b") as dng:
        tags = dng.pages[0].tags  # type: ignore[union-attr]
        tags["ImageWidth"].overwrite(width)
        tags["ImageLength"].overwrite(height)
        tags["RowsPerStrip"].overwrite(height)
        tags["Compression"].overwrite(7)
        tags["PhotometricInterpretation"].overwrite(6)
        tags["BitsPerSample"].overwrite((8, 8, 8))
        tags["SamplesPerPixel"].overwrite(3)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("preview", ["jpeg", "bitmap", None])
def test_a_dng_opens_upright_and_like_its_photo(tmp_path: Path, preview: str | None) -> None:
    dng = write_dng(tmp_path / "cat.dng", "chelsea.png", preview)
    img = imaging.open_image(dng)
    original = Image.open(SKIMAGE_PHOTOS / "chelsea.png").convert("RGB")
    assert img.mode == "RGB"
    if preview is None:  # the mosaic (450 wide: whole 2x2 cells) developed at half size
        assert img.size == (original.width // 2, original.height // 2)
    else:  # the preview itself: 451 wide, the mosaic was not developed
        assert img.size == original.size
    assert img.width > img.height  # landscape, like the photo
    ours = np.asarray(img.resize((64, 48)), np.float64).mean(axis=2).ravel()
    theirs = np.asarray(original.resize((64, 48)), np.float64).mean(axis=2).ravel()
    assert np.corrcoef(ours, theirs)[0, 1] > 0.9


def test_date_taken_from_a_raw_file_and_from_exif(tmp_path: Path) -> None:
    from datetime import datetime

    expected = datetime(2019, 7, 14, 10, 20, 30).timestamp()
    assert imaging.date_taken(write_dng(tmp_path / "a.dng", "chelsea.png", "jpeg")) == expected
    assert imaging.date_taken(write_dng(tmp_path / "b.dng", "chelsea.png", None, taken=None)) is None
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = TAKEN
    exif[0x0132] = "2001:01:01 00:00:00"  # DateTime: DateTimeOriginal wins
    Image.open(SKIMAGE_PHOTOS / "coffee.png").convert("RGB").save(tmp_path / "c.jpg", exif=exif)
    assert imaging.date_taken(tmp_path / "c.jpg") == expected
    assert imaging.date_taken(SKIMAGE_PHOTOS / "coffee.png") is None


def test_broken_raw_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "empty.nef").write_bytes(b"")
    (tmp_path / "text.cr2").write_text("not a raw file at all")
    good = write_dng(tmp_path / "cut.dng", "chelsea.png", None).read_bytes()
    (tmp_path / "cut.dng").write_bytes(good[: len(good) // 3])
    with pytest.raises(ImageDecodeError, match="empty file"):
        imaging.open_image(tmp_path / "empty.nef")
    for name in ("text.cr2", "cut.dng"):
        with pytest.raises(ImageDecodeError, match="RAW file"):
            imaging.open_image(tmp_path / name)
    with pytest.raises(ImageDecodeError, match="vanished"):
        imaging.open_image(tmp_path / "gone.arw")


def test_a_folder_of_raw_files_indexes_and_searches(
    tmp_path: Path, library: Any, run_index: Callable[..., Any]
) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    write_dng(folder / "cat.dng", "chelsea.png", "jpeg")
    write_dng(folder / "cat-nopreview.DNG", "chelsea.png", None)
    write_dng(folder / "coffee.dng", "coffee.png", "bitmap")
    write_dng(folder / "rocket.dng", "rocket.jpg", "jpeg")
    summary = run_index(library, [folder])
    assert summary.skipped == ()
    assert summary.indexed == 4
    assert library.search("cat", top=1)[0].path.name.startswith("cat")
    assert {hit.path.name for hit in library.search("cat", top=2)} == {"cat.dng", "cat-nopreview.DNG"}
    assert library.search("espresso", top=1)[0].path.name == "coffee.dng"
    a = library.catalog.vector_of(os.fspath(folder / "cat.dng"))[1]
    b = library.catalog.vector_of(os.fspath(folder / "cat-nopreview.DNG"))[1]
    assert _cosine(a, b) > 0.8  # the developed mosaic and the camera's preview agree
    (photo,) = [p for p in library.browse() if p.path.name == "cat.dng"]
    assert photo.taken.strftime("%Y:%m:%d %H:%M:%S") == TAKEN


def test_exif_times() -> None:
    from datetime import datetime, timedelta, timezone

    assert imaging.parse_exif_time("2019:07:14 10:20:30") == datetime(2019, 7, 14, 10, 20, 30).timestamp()
    zoned = datetime(2019, 7, 14, 10, 20, 30, tzinfo=timezone(timedelta(hours=2)))
    assert imaging.parse_exif_time("2019:07:14 10:20:30", "+02:00") == zoned.timestamp()
    assert (
        imaging.parse_exif_time(b"2019:07:14 10:20:30\x00") == datetime(2019, 7, 14, 10, 20, 30).timestamp()
    )
    for blank in ("0000:00:00 00:00:00", "    :  :     :  :  ", "", None, 42):
        assert imaging.parse_exif_time(blank) is None

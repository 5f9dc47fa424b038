"""Opening photos and turning them into model input. No Qt here.

The preprocessing constants below are the single definition shared by the app,
the model build (``devise_app.training``) and the benchmarks.

Camera RAW files (``RAW_SUFFIXES``) are read with rawpy (LibRaw). Every camera
embeds a JPEG (or bitmap) preview, usually 1-2 MP or full size, already
developed with the camera's own colours: that preview is used whenever its
short side is large enough (``PREVIEW_MIN_SIDE``, or what the caller asked for),
which keeps indexing a RAW about as fast as a JPEG. Only a file without a usable
preview is demosaiced, at half size (LibRaw's 2x2 binning: four times fewer
pixels and no interpolation), which is still far more than the model needs.

``date_taken`` reads when a photo was taken: EXIF DateTimeOriginal, else EXIF
DateTime (for RAW files, LibRaw's timestamp, which comes from the same tags).
EXIF times carry no zone unless OffsetTimeOriginal says one; they are taken as
local wall-clock time, as cameras and other photo apps do.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from devise_app.engine.errors import ImageDecodeError

# EfficientNet-Lite preprocessing: short side to 288 (bilinear), centre crop 288,
# then (x - 127) / 128 per channel, RGB, channels first. (Lite0 was trained at 224;
# the whole short side at 288 sees more of an everyday photo: see the model card.)
RESIZE_SHORT_SIDE = 288
INPUT_SIZE = 288
PIXEL_MEAN = 127.0
PIXEL_SCALE = 128.0

# Photos larger than this are refused rather than decoded (decompression bombs).
MAX_IMAGE_PIXELS = 120_000_000

RAW_SUFFIXES = frozenset({".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2"})
IMAGE_SUFFIXES = (
    frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"})
    | RAW_SUFFIXES
)
# A RAW file's embedded preview is used when its short side reaches this, or the
# size the caller asked for if smaller; else the RAW data is developed at half size.
PREVIEW_MIN_SIDE = 512
# EXIF tags for when a photo was taken.
_EXIF_IFD = 0x8769
_DATE_TIME = 0x0132
_DATE_TIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
# LibRaw's flip -> the transpose that makes a RAW preview upright (postprocess turns the RAW data itself).
_RAW_FLIPS = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# A PNG's text chunks are metadata the app never reads, but Pillow refuses the
# whole photo when one inflates past 1 MB (cameras and editors write large XMP
# and ICC blocks). The limit per chunk is raised; Pillow's cap on all text of one
# file (PngImagePlugin.MAX_TEXT_MEMORY, 64 MB) still bounds the memory.
PngImagePlugin.MAX_TEXT_CHUNK = 16 * 1024 * 1024
# Pillow only warns between MAX_IMAGE_PIXELS and twice that; the app refuses those
# too. The filter is installed once, here: ``warnings.catch_warnings()`` around each
# decode swaps the process-wide filter list, and the decoder threads doing that at
# once left filters behind or dropped them (tests/reliability).
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
# A damaged EXIF block does not make a photo unusable: its pixels are used as they
# are, without Pillow's complaints about the metadata on stderr.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.TiffImagePlugin")

# EXIF orientation -> the transpose that makes the photo upright.
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_heif_registered = False


def _register_heif() -> None:
    global _heif_registered
    if _heif_registered:
        return
    _heif_registered = True
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # optional: HEIC files are then reported as unreadable
        pass


def is_image_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


class PixelBudget:
    """How many decoded pixels the whole process holds at once, across all decoder
    threads. A 120-megapixel photo takes about 0.8 GB while it is decoded and turned
    upright, so "memory is bounded" did not hold with one such photo per thread on a
    many-core machine (6.65 GB with 8 threads). A photo waits until its pixels fit;
    one larger than the whole budget waits until it is alone."""

    def __init__(self, pixels: int) -> None:
        self.pixels = pixels
        self._in_use = 0
        self._changed = threading.Condition()

    def _fits(self, pixels: int) -> bool:
        return self._in_use == 0 or self._in_use + pixels <= self.pixels

    def try_acquire(self, pixels: int) -> bool:
        with self._changed:
            if not self._fits(pixels):
                return False
            self._in_use += pixels
            return True

    def acquire(self, pixels: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._fits(pixels))
            self._in_use += pixels

    def release(self, pixels: int) -> None:
        with self._changed:
            self._in_use -= pixels
            self._changed.notify_all()

    @contextlib.contextmanager
    def hold(self, pixels: int) -> Iterator[None]:
        self.acquire(pixels)
        try:
            yield
        finally:
            self.release(pixels)


# Two of the largest photos the app accepts at once (about 1.6 GB), whatever the thread count.
DECODE_BUDGET = PixelBudget(2 * MAX_IMAGE_PIXELS)


def open_image(path: str | os.PathLike[str], min_side: int = RESIZE_SHORT_SIDE) -> Image.Image:
    """Decode a photo as upright RGB, at least ``min_side`` pixels on its short side
    where the original allows, using JPEG draft decoding to skip needless pixels."""
    suffix = Path(path).suffix.lower()
    if suffix in RAW_SUFFIXES:
        return _open_raw(path, min_side)
    if suffix in {".heic", ".heif"}:
        _register_heif()
    try:
        with Image.open(path) as img:
            img.seek(0)  # first frame of animations
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ImageDecodeError(
                    f"image too large ({img.width}x{img.height} pixels, limit {MAX_IMAGE_PIXELS})"
                )
            if img.format == "JPEG":
                _draft_for_short_side(img, min_side)
            with DECODE_BUDGET.hold(img.width * img.height):
                img.load()
                return _to_rgb(_upright(img))
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large: {exc}") from exc
    except FileNotFoundError as exc:
        raise ImageDecodeError("file vanished") from exc
    except PermissionError as exc:
        raise ImageDecodeError("permission denied") from exc
    except Image.UnidentifiedImageError as exc:
        if _is_empty(path):
            raise ImageDecodeError("empty file (0 bytes)") from exc
        raise ImageDecodeError("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from exc


def _open_raw(path: str | os.PathLike[str], min_side: int) -> Image.Image:
    """A camera RAW file as upright RGB: its embedded preview if large enough, else
    the RAW data developed at half size with the camera's white balance."""
    import rawpy

    try:
        with open(path, "rb") as file, rawpy.imread(file) as raw:  # open(): the usual OSErrors
            preview = _raw_preview(raw, min(min_side, PREVIEW_MIN_SIDE))
            if preview is not None:
                return preview
            width, height = raw.sizes.raw_width, raw.sizes.raw_height
            if width * height > 4 * MAX_IMAGE_PIXELS:  # half size: a quarter of the pixels
                raise ImageDecodeError(f"RAW image too large ({width}x{height} pixels)")
            pixels = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
            return Image.fromarray(np.ascontiguousarray(pixels[..., :3]))
    except ImageDecodeError:
        raise
    except FileNotFoundError as exc:
        raise ImageDecodeError("file vanished") from exc
    except PermissionError as exc:
        raise ImageDecodeError("permission denied") from exc
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        if _is_empty(path):
            raise ImageDecodeError("empty file (0 bytes)") from exc
        if isinstance(exc, rawpy.LibRawFileUnsupportedError):
            raise ImageDecodeError("not a recognised camera RAW file") from exc
        raise ImageDecodeError(f"corrupt or truncated RAW file: {type(exc).__name__}: {exc}") from exc


def _raw_preview(raw: object, min_side: int) -> Image.Image | None:
    """The RAW file's embedded preview as upright RGB, if it has one with a short
    side of at least ``min_side``; None otherwise (also for an unreadable one)."""
    import rawpy

    try:
        thumb = raw.extract_thumb()  # type: ignore[attr-defined]
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    except rawpy.LibRawError:
        return None
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG:
            with Image.open(io.BytesIO(thumb.data)) as jpeg:
                if min(jpeg.size) < min_side or jpeg.width * jpeg.height > MAX_IMAGE_PIXELS:
                    return None
                _draft_for_short_side(jpeg, min_side)
                jpeg.load()
                oriented = jpeg.getexif().get(0x0112, 1) not in (None, 1)
                img = _to_rgb(_upright(jpeg) if oriented else jpeg)
        else:
            img = Image.fromarray(np.ascontiguousarray(thumb.data[..., :3]).astype(np.uint8))
            oriented = False
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None  # a damaged preview: develop the RAW data instead
    if min(img.size) < min_side:
        return None
    method = None if oriented else _RAW_FLIPS.get(raw.sizes.flip)  # type: ignore[attr-defined]
    return img if method is None else img.transpose(method)


def date_taken(path: str | os.PathLike[str]) -> float | None:
    """When the photo was taken (seconds since the epoch), from its EXIF
    DateTimeOriginal or DateTime (LibRaw's timestamp for RAW files); None when it
    has none or cannot be read. Reads only the file's header."""
    try:
        if Path(path).suffix.lower() in RAW_SUFFIXES:
            return _raw_date_taken(path)
        if Path(path).suffix.lower() in {".heic", ".heif"}:
            _register_heif()
        with Image.open(path) as img:
            exif = img.getexif()
            sub = exif.get_ifd(_EXIF_IFD)
            text = sub.get(_DATE_TIME_ORIGINAL) or exif.get(_DATE_TIME)
            offset = sub.get(_OFFSET_TIME_ORIGINAL) if sub.get(_DATE_TIME_ORIGINAL) else None
            return parse_exif_time(text, offset)
    except Exception:  # no date is not a reason to skip a photo, whatever the file holds
        return None


def _raw_date_taken(path: str | os.PathLike[str]) -> float | None:
    import rawpy

    with open(path, "rb") as file, rawpy.imread(file) as raw:
        stamp = raw.other.timestamp
    if stamp is None or stamp.year <= 1970:  # LibRaw's 0: no date in the file
        return None
    return float(stamp.timestamp())


def parse_exif_time(text: object, offset: object = None) -> float | None:
    """Seconds since the epoch of an EXIF time ("2019:07:14 10:20:30"), local time
    unless ``offset`` ("+02:00") gives the zone; None for a blank or invalid one."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if isinstance(offset, str):
        with contextlib.suppress(ValueError):  # an unreadable offset: local time
            moment = datetime.strptime(f"{moment:%Y-%m-%d %H:%M:%S}{offset.strip()}", "%Y-%m-%d %H:%M:%S%z")
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _upright(img: Image.Image) -> Image.Image:
    """The photo turned as its EXIF orientation says. ``exif_transpose`` also
    rewrites the EXIF block, and raises (struct.error, TypeError, ...) on some
    damaged ones: the orientation is then applied here, or ignored if unreadable."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:
        pass
    try:
        method = _ORIENTATIONS.get(img.getexif().get(0x0112))  # type: ignore[arg-type]
    except Exception:
        return img
    return img if method is None else img.transpose(method)


def _is_empty(path: str | os.PathLike[str]) -> bool:
    try:
        return os.stat(path).st_size == 0
    except OSError:
        return False


def _draft_for_short_side(img: Image.Image, min_side: int) -> None:
    width, height = img.size
    scale = 1
    while scale < 8 and min(width, height) // (scale * 2) >= min_side:
        scale *= 2
    if scale > 1:
        img.draft("RGB", (width // scale, height // scale))


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(img, dtype=np.float64)
        top = array.max() or 1.0
        return Image.fromarray((array * (255.0 / top)).astype(np.uint8)).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def resize_and_crop(img: Image.Image) -> Image.Image:
    """Short side to RESIZE_SHORT_SIDE (bilinear), then the central INPUT_SIZE square.

    Done in one resampling pass over only the source region that becomes the
    square (Pillow's ``box``): the same filter width and pixel centres as resizing
    the whole photo and then cropping, for about half the work; values differ
    from the two-step result by at most one level (rounding). Large reductions
    (photos not decoded in draft mode, e.g. 12-megapixel PNG or HEIC) first
    average whole pixel blocks (``reducing_gap``), which is much cheaper than a
    wide bilinear kernel and indistinguishable from it at this size.
    """
    width, height = img.size
    scale = RESIZE_SHORT_SIDE / min(width, height)
    new_width, new_height = max(INPUT_SIZE, round(width * scale)), max(INPUT_SIZE, round(height * scale))
    left = (new_width - INPUT_SIZE) // 2
    top = (new_height - INPUT_SIZE) // 2
    sx, sy = width / new_width, height / new_height
    box = (left * sx, top * sy, (left + INPUT_SIZE) * sx, (top + INPUT_SIZE) * sy)
    return img.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)


def to_model_input(img: Image.Image) -> np.ndarray:
    """A (3, INPUT_SIZE, INPUT_SIZE) float32 array ready for the model."""
    pixels = np.asarray(resize_and_crop(img if img.mode == "RGB" else img.convert("RGB")))
    out = np.empty((3, INPUT_SIZE, INPUT_SIZE), np.float32)
    # one pass from uint8 straight into the channels-first result; exact, 1/128 being a power of 2
    np.subtract(pixels.transpose(2, 0, 1), np.float32(PIXEL_MEAN), out=out)
    out *= np.float32(1.0 / PIXEL_SCALE)
    return out


def load_model_input(path: str | os.PathLike[str]) -> np.ndarray:
    return to_model_input(open_image(path))

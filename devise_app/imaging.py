"""Opening photos and turning them into model input. No Qt here.

The preprocessing constants below are the single definition shared by the app,
the model build (``devise_app.training``) and the benchmarks.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# EfficientNet-Lite preprocessing: short side to 256 (bilinear), centre crop 224,
# then (x - 127) / 128 per channel, RGB, channels first.
RESIZE_SHORT_SIDE = 256
INPUT_SIZE = 224
PIXEL_MEAN = 127.0
PIXEL_SCALE = 128.0

# Photos larger than this are refused rather than decoded (decompression bombs).
MAX_IMAGE_PIXELS = 120_000_000

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)

Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS

_heif_registered = False


class ImageDecodeError(Exception):
    """A file could not be read as a photo; the message says why."""


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


def open_image(path: str | os.PathLike[str], min_side: int = RESIZE_SHORT_SIDE) -> Image.Image:
    """Decode a photo as upright RGB, at least ``min_side`` pixels on its short side
    where the original allows, using JPEG draft decoding to skip needless pixels."""
    if Path(path).suffix.lower() in {".heic", ".heif"}:
        _register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.seek(0)  # first frame of animations
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise ImageDecodeError(
                        f"image too large ({img.width}x{img.height} pixels, limit {MAX_IMAGE_PIXELS})"
                    )
                if img.format == "JPEG":
                    _draft_for_short_side(img, min_side)
                img.load()
                return _to_rgb(ImageOps.exif_transpose(img) or img)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"image too large: {exc}") from exc
    except FileNotFoundError as exc:
        raise ImageDecodeError("file vanished") from exc
    except PermissionError as exc:
        raise ImageDecodeError("permission denied") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageDecodeError("not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from exc


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
    """Short side to RESIZE_SHORT_SIDE, then the central INPUT_SIZE square."""
    width, height = img.size
    scale = RESIZE_SHORT_SIDE / min(width, height)
    new_size = (max(INPUT_SIZE, round(width * scale)), max(INPUT_SIZE, round(height * scale)))
    img = img.resize(new_size, Image.Resampling.BILINEAR)
    left = (new_size[0] - INPUT_SIZE) // 2
    top = (new_size[1] - INPUT_SIZE) // 2
    return img.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))


def to_model_input(img: Image.Image) -> np.ndarray:
    """A (3, INPUT_SIZE, INPUT_SIZE) float32 array ready for the model."""
    pixels = np.asarray(resize_and_crop(img.convert("RGB")), dtype=np.float32)
    return ((pixels - PIXEL_MEAN) / PIXEL_SCALE).transpose(2, 0, 1).copy()


def load_model_input(path: str | os.PathLike[str]) -> np.ndarray:
    return to_model_input(open_image(path))

"""How the window words numbers, times and outcomes (no widgets here)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devise_app.engine.indexer import IndexSummary


def number(value: int) -> str:
    """``"1 234"``: a number as the window writes it (a blank between thousands)."""
    return f"{value:,}".replace(",", " ")


def count(value: int, noun: str, plural: str | None = None) -> str:
    """``"1 photo"``, ``"1 234 photos"`` (a thin space-like blank between thousands)."""
    word = noun if value == 1 else plural or noun + "s"
    return f"{number(value)} {word}"


def shortened(text: str, limit: int = 80) -> str:
    """A query as the results header shows it: at most ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def format_when(timestamp: float | None, now: float | None = None) -> str:
    if timestamp is None:
        return "never"
    age = (now if now is not None else time.time()) - timestamp
    if age < 60:
        return "just now"
    if age < 3600:
        return f"{int(age // 60)} min ago"
    if age < 86400:
        return f"{int(age // 3600)} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def provider_text(provider: str | None) -> str:
    if not provider:
        return "…"
    if "CUDA" in provider or "Tensorrt" in provider or "TensorRT" in provider:
        return "GPU (CUDA)"
    if "CoreML" in provider:
        return "Apple Neural Engine"
    if "DirectML" in provider or "Dml" in provider:
        return "GPU (DirectML)"
    if "CPU" in provider:
        return "CPU"
    return provider.replace("ExecutionProvider", "")


def describe_summary(summary: IndexSummary) -> str:
    parts = [f"{summary.indexed} new"]
    parts += [
        f"{value} {word}" for value, word in ((summary.moved, "moved"), (summary.removed, "removed")) if value
    ]
    if summary.skipped:
        parts.append(f"{len(summary.skipped)} could not be read")
    took = f" in {format_duration(summary.elapsed)}"
    if summary.cancelled:
        return f"Indexing cancelled{took} ({', '.join(parts)}); the rest is indexed next time."
    return f"Indexing done{took}: {', '.join(parts)}."


def library_title(library: Path, default: Path) -> str:
    """What the window title calls a library: nothing for the default one (the title
    is then the app's name alone), else its folder's name, with the folder above it
    when the name says nothing by itself ("usb/library" for /media/usb/library)."""
    if _same_folder(library, default):
        return ""
    name = library.name or str(library)
    if name.lower() in GENERIC_LIBRARY_NAMES and library.parent.name:
        return f"{library.parent.name}/{name}"
    return name


def window_title(library: Path, default: Path, progress: str = "") -> str:
    """The window's own title, to which Qt adds " — devise-app": "Pictures",
    "Indexing 59% · Pictures", or for the default library "" and "Indexing 59%"."""
    return " · ".join(part for part in (progress, library_title(library, default)) if part)


GENERIC_LIBRARY_NAMES = frozenset({"library", "devise-app", "devise_app", "data"})


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.expanduser().resolve() == b.expanduser().resolve()
    except (OSError, RuntimeError):
        return a == b

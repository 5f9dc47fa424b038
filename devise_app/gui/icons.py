"""The app's icons and style sheet, read from the ``resources/`` folder.

The SVG icons are drawn with ``currentColor``; :func:`icon` paints them in the
palette's text colour so they suit both light and dark themes.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

from devise_app.engine import config

_ICON_SIZES = (16, 24, 32, 48, 64)


def resources_dir() -> Path:
    return config.resources_dir()


def style_sheet() -> str:
    """The app's Qt style sheet, or an empty string if it is missing."""
    path = resources_dir() / "style.qss"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _svg_text(name: str) -> str | None:
    try:
        return (resources_dir() / "icons" / f"{name}.svg").read_text(encoding="utf-8")
    except OSError:
        return None


def render_svg(name: str, size: int, color: QColor | None = None) -> QPixmap:
    """``resources/icons/NAME.svg`` as a square pixmap, ``currentColor`` set to ``color``."""
    text = _svg_text(name)
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    if text is None:
        return pixmap
    if color is None:
        color = _text_color()
    renderer = QSvgRenderer(QByteArray(text.replace("currentColor", color.name()).encode()))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return pixmap


def icon(name: str) -> QIcon:
    """A themed icon from ``resources/icons``; cached per colour scheme."""
    return _icon(name, _text_color().name())


@cache
def _icon(name: str, color_name: str) -> QIcon:
    result = QIcon()
    color = QColor(color_name)
    for size in _ICON_SIZES:
        result.addPixmap(render_svg(name, size, color))
    return result


def app_icon() -> QIcon:
    result = QIcon()
    for size in _ICON_SIZES:
        result.addPixmap(render_svg("app", size, QColor("#ffffff")))
    return result


def _text_color() -> QColor:
    app = QGuiApplication.instance()
    if app is None:
        return QColor("#555555")
    palette = QGuiApplication.palette()
    return palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText)


ICON_SIZE = QSize(20, 20)

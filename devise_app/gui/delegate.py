"""Painting of one grid cell: thumbnail, label chips and the file name."""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from devise_app.gui.icons import render_svg
from devise_app.gui.models import Role, ThumbnailState

PADDING = 8
RADIUS = 6.0
MIN_SIZE = 64
MAX_SIZE = 320
DEFAULT_SIZE = 160
SCALED_CACHE_ITEMS = 600


class ThumbnailDelegate(QStyledItemDelegate):
    """Draws a square cell: the photo fitted in ``size`` x ``size``, chips, name."""

    def __init__(self, size: int = DEFAULT_SIZE, parent=None) -> None:
        super().__init__(parent)
        self._size = size
        self._placeholders: dict[tuple[str, int, str, float], QPixmap] = {}
        # Thumbnails scaled to the cell size, so repainting is a plain copy.
        self._scaled: OrderedDict[tuple[int, int, int, float], QPixmap] = OrderedDict()

    @property
    def thumbnail_size(self) -> int:
        return self._size

    def set_thumbnail_size(self, size: int) -> None:
        self._size = max(MIN_SIZE, min(MAX_SIZE, size))
        self._scaled.clear()
        self._placeholders.clear()

    def cell_size(self, option_font: QFont | None = None) -> QSize:
        metrics = QFontMetrics(option_font) if option_font is not None else None
        text_height = metrics.height() if metrics is not None else 18
        return QSize(self._size + 2 * PADDING, self._size + 2 * PADDING + text_height + 2)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return self.cell_size(option.font)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        palette = option.palette
        # The view may give a cell wider than needed (it spreads the columns); centre in it.
        left = option.rect.x() + max(0, (option.rect.width() - self._size - 2 * PADDING) // 2)
        cell_width = self._size + 2 * PADDING
        cell = QRectF(left, option.rect.y(), cell_width, option.rect.height()).adjusted(2, 2, -2, -2)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)

        if selected or hovered:
            color = QColor(palette.color(QPalette.ColorRole.Highlight))
            color.setAlpha(90 if selected else 35)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(cell, RADIUS + 2, RADIUS + 2)

        frame = QRect(left + PADDING, option.rect.y() + PADDING, self._size, self._size)
        pixmap = index.data(Role.Thumbnail)
        device = painter.device()
        ratio = device.devicePixelRatioF() if device is not None else 1.0
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            image_rect = _fit(pixmap.size(), frame)
            painter.drawPixmap(image_rect.topLeft(), self.rounded(pixmap, image_rect.size(), ratio))
        else:
            broken = index.data(Role.ThumbnailState) == ThumbnailState.Broken
            painter.drawPixmap(frame.topLeft(), self._placeholder(frame.size(), palette, broken, ratio))
            image_rect = frame

        labels = index.data(Role.Labels) or []
        if labels:
            self._paint_chips(painter, image_rect, labels, option.font)
        copies = int(index.data(Role.Copies) or 1)
        if copies > 1:  # exact copies are shown once, with their count
            metrics = QFontMetrics(option.font)
            text = f"×{copies}"
            width, height = metrics.horizontalAdvance(text) + 10, metrics.height() + 2
            self._chip(
                painter, QRectF(image_rect.right() - width - 4, image_rect.top() + 4, width, height), text
            )

        text_top = frame.bottom() + 4
        text_rect = QRect(left + PADDING, text_top, self._size, option.rect.bottom() - text_top)
        name = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        metrics = QFontMetrics(option.font)
        painter.setFont(option.font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(
            text_rect,
            int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop),
            metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, text_rect.width()),
        )
        if option.state & QStyle.StateFlag.State_HasFocus and selected:
            pen_color = QColor(palette.color(QPalette.ColorRole.Highlight))
            painter.setPen(pen_color)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(cell.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS + 2, RADIUS + 2)
        painter.restore()

    def rounded(self, pixmap: QPixmap, size: QSize, ratio: float = 1.0) -> QPixmap:
        """``pixmap`` scaled to ``size`` (logical pixels) with rounded corners, made once
        and cached. On a screen with ``ratio`` device pixels per logical pixel the tile
        holds ``size`` × ``ratio`` pixels, so it stays crisp (a 1x tile is blown up)."""
        key = (pixmap.cacheKey(), size.width(), size.height(), ratio)
        tile = self._scaled.get(key)
        if tile is not None:
            self._scaled.move_to_end(key)
            return tile
        scaled = pixmap.scaled(
            _device_size(size, ratio),
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        scaled.setDevicePixelRatio(ratio)
        tile = _blank(size, ratio)
        painter = QPainter(tile)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        path = QPainterPath()
        path.addRoundedRect(QRectF(0, 0, size.width(), size.height()), RADIUS, RADIUS)
        painter.setClipPath(path)
        painter.drawPixmap(0, 0, scaled)
        painter.end()
        self._scaled[key] = tile
        while len(self._scaled) > SCALED_CACHE_ITEMS:
            self._scaled.popitem(last=False)
        return tile

    def _placeholder(self, size: QSize, palette: QPalette, broken: bool, ratio: float = 1.0) -> QPixmap:
        """The tile shown until a thumbnail arrives (or when it cannot be made)."""
        text = palette.color(QPalette.ColorRole.Text)
        key = ("broken" if broken else "photo", size.width(), text.name(QColor.NameFormat.HexArgb), ratio)
        tile = self._placeholders.get(key)
        if tile is not None:
            return tile
        tile = _blank(size, ratio)
        painter = QPainter(tile)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        base = QColor(text)
        base.setAlpha(22)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(base)
        painter.drawRoundedRect(QRectF(0, 0, size.width(), size.height()), RADIUS, RADIUS)
        glyph_size = max(16, min(48, size.width() // 4))
        glyph_color = QColor(text)
        glyph_color.setAlpha(90)
        glyph = render_svg(key[0], round(glyph_size * ratio), glyph_color)
        glyph.setDevicePixelRatio(ratio)
        painter.drawPixmap((size.width() - glyph_size) // 2, (size.height() - glyph_size) // 2, glyph)
        painter.end()
        self._placeholders[key] = tile
        return tile

    def _paint_chips(self, painter: QPainter, image_rect: QRect, labels: list[str], base_font: QFont) -> None:
        font = QFont(base_font)
        font.setPointSizeF(max(6.5, base_font.pointSizeF() * 0.8))
        font.setWeight(QFont.Weight.DemiBold)
        metrics = QFontMetrics(font)
        painter.setFont(font)
        height = metrics.height() + 2
        x = image_rect.left() + 4
        y = image_rect.bottom() - height - 3
        right = image_rect.right() - 4
        for position, name in enumerate(labels):
            rest = len(labels) - position
            text = name
            width = metrics.horizontalAdvance(text) + 10
            more_width = metrics.horizontalAdvance(f"+{rest}") + 10
            if x + width > right - (more_width + 3 if rest > 1 else 0):
                text = (
                    f"+{rest}"
                    if position
                    else metrics.elidedText(name, Qt.TextElideMode.ElideRight, right - x - 10)
                )
                width = metrics.horizontalAdvance(text) + 10
                self._chip(painter, QRectF(x, y, width, height), text)
                break
            self._chip(painter, QRectF(x, y, width, height), text)
            x += width + 3

    @staticmethod
    def _chip(painter: QPainter, rect: QRectF, text: str) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 28, 185))
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)


def _device_size(size: QSize, ratio: float) -> QSize:
    return QSize(round(size.width() * ratio), round(size.height() * ratio))


def _blank(size: QSize, ratio: float) -> QPixmap:
    """A transparent pixmap of ``size`` logical pixels at ``ratio`` device pixels each."""
    tile = QPixmap(_device_size(size, ratio))
    tile.setDevicePixelRatio(ratio)
    tile.fill(Qt.GlobalColor.transparent)
    return tile


def _fit(size: QSize, frame: QRect) -> QRect:
    """``size`` scaled to fit in ``frame``, centred."""
    if size.width() <= 0 or size.height() <= 0:
        return frame
    scaled = size.scaled(frame.size(), Qt.AspectRatioMode.KeepAspectRatio)
    x = frame.x() + (frame.width() - scaled.width()) // 2
    y = frame.y() + (frame.height() - scaled.height()) // 2
    return QRect(x, y, scaled.width(), scaled.height())

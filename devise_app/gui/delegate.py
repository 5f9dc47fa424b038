"""Painting of one grid cell: thumbnail, label chips and the file name."""

from __future__ import annotations

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


class ThumbnailDelegate(QStyledItemDelegate):
    """Draws a square cell: the photo fitted in ``size`` x ``size``, chips, name."""

    def __init__(self, size: int = DEFAULT_SIZE, parent=None) -> None:
        super().__init__(parent)
        self._size = size
        self._glyphs: dict[tuple[str, int, str], QPixmap] = {}

    @property
    def thumbnail_size(self) -> int:
        return self._size

    def set_thumbnail_size(self, size: int) -> None:
        self._size = max(MIN_SIZE, min(MAX_SIZE, size))

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
        cell = QRectF(option.rect).adjusted(2, 2, -2, -2)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)

        if selected or hovered:
            color = QColor(palette.color(QPalette.ColorRole.Highlight))
            color.setAlpha(90 if selected else 35)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(cell, RADIUS + 2, RADIUS + 2)

        frame = QRect(option.rect.x() + PADDING, option.rect.y() + PADDING, self._size, self._size)
        pixmap = index.data(Role.Thumbnail)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            target = _fit(pixmap.size(), frame)
            path = QPainterPath()
            path.addRoundedRect(QRectF(target), RADIUS, RADIUS)
            painter.setClipPath(path)
            painter.drawPixmap(target, pixmap)
            painter.setClipping(False)
            image_rect = target
        else:
            state = index.data(Role.ThumbnailState)
            self._paint_placeholder(painter, frame, palette, broken=state == ThumbnailState.Broken)
            image_rect = frame

        labels = index.data(Role.Labels) or []
        if labels:
            self._paint_chips(painter, image_rect, labels, option.font)

        text_top = frame.bottom() + 4
        text_rect = QRect(option.rect.x() + PADDING, text_top, self._size, option.rect.bottom() - text_top)
        name = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        metrics = QFontMetrics(option.font)
        painter.setFont(option.font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(
            text_rect, int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop),
            metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, text_rect.width()),
        )
        if option.state & QStyle.StateFlag.State_HasFocus and selected:
            pen_color = QColor(palette.color(QPalette.ColorRole.Highlight))
            painter.setPen(pen_color)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(cell.adjusted(0.5, 0.5, -0.5, -0.5), RADIUS + 2, RADIUS + 2)
        painter.restore()

    def _paint_placeholder(self, painter: QPainter, frame: QRect, palette: QPalette, broken: bool) -> None:
        base = QColor(palette.color(QPalette.ColorRole.Text))
        base.setAlpha(22)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(base)
        painter.drawRoundedRect(QRectF(frame), RADIUS, RADIUS)
        glyph_size = max(16, min(48, frame.width() // 4))
        glyph_color = QColor(palette.color(QPalette.ColorRole.Text))
        glyph_color.setAlpha(90)
        glyph = self._glyph("broken" if broken else "photo", glyph_size, glyph_color)
        painter.drawPixmap(frame.center().x() - glyph_size // 2, frame.center().y() - glyph_size // 2, glyph)

    def _glyph(self, name: str, size: int, color: QColor) -> QPixmap:
        key = (name, size, color.name(QColor.NameFormat.HexArgb))
        pixmap = self._glyphs.get(key)
        if pixmap is None:
            pixmap = render_svg(name, size, color)
            self._glyphs[key] = pixmap
        return pixmap

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
                text = f"+{rest}" if position else metrics.elidedText(name, Qt.TextElideMode.ElideRight, right - x - 10)
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


def _fit(size: QSize, frame: QRect) -> QRect:
    """``size`` scaled to fit in ``frame``, centred."""
    if size.width() <= 0 or size.height() <= 0:
        return frame
    scaled = size.scaled(frame.size(), Qt.AspectRatioMode.KeepAspectRatio)
    x = frame.x() + (frame.width() - scaled.width()) // 2
    y = frame.y() + (frame.height() - scaled.height()) // 2
    return QRect(x, y, scaled.width(), scaled.height())

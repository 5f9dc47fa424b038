"""Dialogs: the large photo preview and the "words for this photo" list."""

from __future__ import annotations

import functools
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from devise_app.engine.imaging import open_image
from devise_app.gui.icons import icon
from devise_app.gui.thumbnails import pil_to_qimage
from devise_app.gui.workers import Worker, WorkerPool

if TYPE_CHECKING:
    from devise_app.engine.search import Suggestion

PREVIEW_MAX_SIDE = 2400


def load_preview(path: Path, max_side: int = PREVIEW_MAX_SIDE) -> QImage:
    """The photo, upright and at most ``max_side`` pixels; for worker threads."""
    with open_image(path, min_side=max_side // 2) as picture:
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return pil_to_qimage(picture)


class PreviewDialog(QDialog):
    """A large view of one photo; Left/Right step through the results."""

    def __init__(
        self,
        pool: WorkerPool,
        count: int,
        path_at: Callable[[int], Path],
        row: int,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("previewDialog")
        self._pool = pool
        self._count = count
        self._path_at = path_at
        self._row = row
        self._pixmap = QPixmap()
        self._loading_row = -1

        self._image = QLabel()
        self._image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self._image.setMinimumSize(200, 200)
        self._caption = QLabel()
        self._caption.setObjectName("previewCaption")
        self._caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._caption.setWordWrap(True)

        self._previous = QPushButton("‹ Previous")
        self._next = QPushButton("Next ›")
        self._previous.clicked.connect(lambda: self.show_row(self._row - 1))
        self._next.clicked.connect(lambda: self.show_row(self._row + 1))
        for button in (self._previous, self._next):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        # The keys step through the photos, so no button may take the focus (a
        # focused Close button ate Space, Left and Right); Escape still closes.
        for close_button in close.buttons():
            close_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        bottom = QHBoxLayout()
        bottom.addWidget(self._previous)
        bottom.addWidget(self._next)
        bottom.addWidget(self._caption, 1)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self._image, 1)
        layout.addLayout(bottom)
        self.resize(QSize(1000, 760))
        self.show_row(row)

    @property
    def row(self) -> int:
        return self._row

    def show_row(self, row: int) -> None:
        if not 0 <= row < self._count:
            return
        self._row = row
        path = self._path_at(row)
        self.setWindowTitle(f"{path.name} — {row + 1} of {self._count}")
        self._caption.setText(str(path))
        self._previous.setEnabled(row > 0)
        self._next.setEnabled(row < self._count - 1)
        self._image.setText("Loading…")
        self._pixmap = QPixmap()
        self._loading_row = row
        worker = Worker(lambda: (row, load_preview(path)), name="preview")
        worker.signals.returned.connect(self._on_loaded)
        worker.signals.errored.connect(self._on_failed)
        self._pool.start(worker)

    def _on_loaded(self, result: tuple[int, QImage]) -> None:
        row, image = result
        if row != self._loading_row:
            return  # the user moved on meanwhile
        self._pixmap = QPixmap.fromImage(image)
        self._rescale()

    def _on_failed(self, exc: Exception) -> None:
        self._image.setText(f"Cannot show this photo: {exc}")

    def _rescale(self) -> None:
        if self._pixmap.isNull():
            return
        self._image.setPixmap(
            self._pixmap.scaled(
                self._image.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Left, Qt.Key.Key_PageUp, Qt.Key.Key_Backspace):
            self.show_row(self._row - 1)
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_PageDown, Qt.Key.Key_Space):
            self.show_row(self._row + 1)
        elif key == Qt.Key.Key_Home:
            self.show_row(0)
        elif key == Qt.Key.Key_End:
            self.show_row(self._count - 1)
        else:
            super().keyPressEvent(event)


class WordsDialog(QDialog):
    """What fits a photo: the user's own labels first, then the model's nearest words;
    each with a one-click button that puts it on the photo as a label.

    ``Library.describe`` gives ``Suggestion`` entries; the library's own labels
    (``is_label``) are shown as label chips.
    """

    labelRequested = Signal(str)  # the label name to put on the photo
    searchRequested = Signal(str)

    def __init__(self, photo: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("wordsDialog")
        self.setWindowTitle(f"Words for {photo.name}")
        self._photo = photo
        self._entries: list[Suggestion] = []
        self._buttons: dict[tuple[str, bool], QPushButton] = {}  # (text, is_label) -> its button

        self._thumbnail = QLabel()
        self._thumbnail.setFixedSize(QSize(160, 160))
        self._thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        heading = QLabel(
            f"<b>{escape(photo.name)}</b><br>Your labels that fit it, and what the model sees. "
            "One click puts one on the photo."
        )
        heading.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self._thumbnail)
        top.addWidget(heading, 1)

        self._status = QLabel("Finding words…")
        self._grid = QGridLayout()
        self._grid.setColumnStretch(1, 1)
        words = QWidget()
        words.setLayout(self._grid)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(words)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self._status)
        layout.addWidget(scroll, 1)
        layout.addWidget(close)
        self.resize(460, 520)

    def set_thumbnail(self, pixmap: QPixmap | None) -> None:
        if pixmap is not None and not pixmap.isNull():
            self._thumbnail.setPixmap(
                pixmap.scaled(
                    self._thumbnail.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def set_words(self, words: list[Suggestion], applied: set[str] | None = None) -> None:
        """Show ``describe``'s entries: the user's labels first, as label chips."""
        applied = applied or set()
        mine = [entry for entry in words if entry.is_label]
        model = [entry for entry in words if not entry.is_label]
        self._status.setText("" if words else "The model found no words for this photo.")
        self._status.setVisible(not words)
        top_score = max((entry.score for entry in words), default=1.0) or 1.0
        row = 0
        for title, entries in (("Your labels", mine), ("Words the model sees", model)):
            if not entries or not mine:  # a heading only where both kinds are shown
                row = self._add_rows(entries, row, top_score)
                continue
            heading = QLabel(f"<b>{title}</b>")
            heading.setObjectName("wordsHeading")
            self._grid.addWidget(heading, row, 0, 1, 3)
            row = self._add_rows(entries, row + 1, top_score)
        for name in applied:
            self.mark_applied(name)

    def _add_rows(self, entries: list[Suggestion], row: int, top_score: float) -> int:
        for entry in entries:
            score = entry.score
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(int(1000 * max(0.0, score) / top_score))
            bar.setTextVisible(False)
            bar.setFixedHeight(8)
            bar.setToolTip(f"similarity {score:.3f}")
            title: QWidget
            name = entry.text
            if not entry.is_label:
                link = QLabel(f'<a href="{escape(name)}">{escape(name)}</a>')
                link.setToolTip(f"Search for “{name}”")
                link.linkActivated.connect(self.searchRequested)
                title = link
                button = QPushButton(icon("label"), "Label")
                button.setToolTip(f"Put the label “{name}” on this photo")
            else:
                title = self._label_chip(name, score)
                button = QPushButton(icon("label"), "Apply")
                button.setObjectName("applyLabelButton")
                button.setToolTip(f"Put your label “{name}” on this photo")
            button.clicked.connect(functools.partial(self.labelRequested.emit, name))
            self._entries.append(entry)
            self._buttons[(name, entry.is_label)] = button
            self._grid.addWidget(title, row, 0)
            self._grid.addWidget(bar, row, 1)
            self._grid.addWidget(button, row, 2)
            row += 1
        return row

    def _label_chip(self, name: str, score: float) -> QFrame:
        """One of the user's own labels, drawn apart from the words: tag glyph, name, "your label"."""
        chip = QFrame()
        chip.setObjectName("labelChip")
        chip.setToolTip(f"Your label “{name}” fits this photo (similarity {score:.3f})")
        glyph = QLabel()
        glyph.setPixmap(icon("label").pixmap(QSize(14, 14)))
        link = QLabel(f'<a href="{escape(name)}"><b>{escape(name)}</b></a>')
        link.setToolTip(f"Show the photos labelled “{name}”, then the ones most like them")
        link.linkActivated.connect(self.searchRequested)
        hint = QLabel("your label")
        hint.setObjectName("hintLabel")
        layout = QHBoxLayout(chip)
        layout.setContentsMargins(8, 3, 12, 3)
        layout.setSpacing(4)
        layout.addWidget(glyph)
        layout.addWidget(link)
        layout.addWidget(hint)
        layout.addStretch(1)
        return chip

    def set_error(self, message: str) -> None:
        self._status.setText(message)
        self._status.setVisible(True)

    def words(self) -> list[str]:
        """The model's words, in the order shown (after the user's labels)."""
        return [entry.text for entry in self._entries if not entry.is_label]

    def label_suggestions(self) -> list[str]:
        """The names of the user's labels that fit the photo, best first."""
        return [entry.text for entry in self._entries if entry.is_label]

    def button_for(self, text: str, is_label: bool = False) -> QPushButton:
        """The apply button of a word, or of one of the user's labels."""
        return self._buttons[(text, is_label)]

    def mark_applied(self, name: str) -> None:
        """Label ``name`` is on the photo now: disable every button that applies it."""
        for (text, _is_label), button in self._buttons.items():
            if text == name:
                button.setText("Labeled ✓")
                button.setEnabled(False)

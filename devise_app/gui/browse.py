"""The bar above the grid that sorts and filters what it shows.

Without a query the grid lists the library itself (``Library.browse``): newest
first by date taken, or by name. With a query the order is relevance unless the
user picks another. The folder and label filters narrow both, and combine with
a query (``Library.find(..., filters=)``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QWidget

from devise_app.engine.care import PhotoFilter

RELEVANCE, DATE, NAME = "relevance", "date", "name"
_SORTS = ((RELEVANCE, "Best match"), (DATE, "Newest"), (NAME, "Name"))


class BrowseBar(QWidget):
    """Sort order, folder and label: what the grid shows and in what order."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("browseBar")
        self.sort_box = QComboBox()
        for key, text in _SORTS:
            self.sort_box.addItem(text, key)
        self.sort_box.setToolTip("The order of the photos; without a query, best match means newest first")
        self.folder_box = QComboBox()
        self.folder_box.setToolTip("Only the photos in this folder (and below it)")
        self.label_box = QComboBox()
        self.label_box.setToolTip("Only the photos with this label")
        self.set_folders([])
        self.set_labels([])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.folder_box)
        layout.addWidget(self.label_box)
        layout.addWidget(self.sort_box)
        for box in (self.sort_box, self.folder_box, self.label_box):
            # narrow, so the bar never sets the window's minimum width; the list shows names whole
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(6)
            box.activated.connect(lambda _index: self.changed.emit())

    def sort(self, has_query: bool) -> str:
        """The order asked for; "relevance" means newest first when there is no query."""
        key = str(self.sort_box.currentData())
        return DATE if key == RELEVANCE and not has_query else key

    def photo_filter(self) -> PhotoFilter | None:
        folder, label = self.folder_box.currentData(), self.label_box.currentData()
        if folder is None and label is None:
            return None
        return PhotoFilter(folder=Path(folder) if folder else None, label=label)

    def set_folders(self, folders: list[Path]) -> None:
        self._refill(
            self.folder_box, "All folders", [(folder.name or str(folder), str(folder)) for folder in folders]
        )

    def set_labels(self, names: list[str]) -> None:
        self._refill(self.label_box, "Any label", [(name, name) for name in names])

    def _refill(self, box: QComboBox, everything: str, items: list[tuple[str, str]]) -> None:
        """New choices, keeping the current one while it is still offered."""
        current = box.currentData()
        box.blockSignals(True)
        box.clear()
        box.addItem(everything, None)
        for text, data in items:
            box.addItem(text, data)
            box.setItemData(box.count() - 1, data, Qt.ItemDataRole.ToolTipRole)
        index = box.findData(current) if current is not None else 0
        box.setCurrentIndex(max(index, 0))
        box.blockSignals(False)

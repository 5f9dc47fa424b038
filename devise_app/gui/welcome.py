"""The first-start page: an empty library, and one click to fill it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, QStandardPaths, Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from devise_app.gui.icons import app_icon, icon


def pictures_folder() -> Path | None:
    """The user's Pictures folder, if the platform has one and it exists."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    if not location:
        return None
    path = Path(location)
    return path if path.is_dir() else None


class WelcomePage(QWidget):
    indexPicturesRequested = Signal(Path)
    chooseFolderRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("welcomePage")
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(QSize(96, 96)))
        logo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title = QLabel("Find your photos by what is in them")
        title.setObjectName("welcomeTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text = QLabel(
            "devise-app looks at each photo once and remembers what it shows. "
            "Then type a word such as <i>cat</i>, <i>coffee</i> or <i>boat</i>, "
            "or even <i>king - man + woman</i>, and it finds the photos that match. "
            "Everything stays on this computer."
        )
        text.setObjectName("welcomeText")
        text.setWordWrap(True)
        text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        text.setMaximumWidth(560)

        self._pictures = pictures_folder()
        self.pictures_button = QPushButton(icon("folder-add"), "")
        self.pictures_button.setObjectName("primaryButton")
        self.pictures_button.setIconSize(QSize(20, 20))
        if self._pictures is not None:
            self.pictures_button.setText(f"Index my Pictures folder  ({self._pictures})")
            self.pictures_button.clicked.connect(lambda: self.indexPicturesRequested.emit(self._pictures))
        else:
            self.pictures_button.setText("No Pictures folder found")
            self.pictures_button.setEnabled(False)
        self.choose_button = QPushButton("Choose a folder…")
        self.choose_button.clicked.connect(lambda: self.chooseFolderRequested.emit())
        hint = QLabel("or drop a folder anywhere on this window")
        hint.setObjectName("hintLabel")
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)

        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(logo)
        layout.addSpacing(8)
        layout.addWidget(title)
        layout.addWidget(text, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(16)
        layout.addWidget(self.pictures_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.choose_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(hint)
        layout.addStretch(3)

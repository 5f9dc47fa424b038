"""Try a drag with the real pointer: the label "sky" from the labels panel onto the
first photo of the grid, moved by xdotool under an X server (Xvfb and a window
manager), then a screenshot. The pytest-qt tests go through Qt's drop-target
search; this goes through the X server, as a user's mouse does.

    Xvfb :99 -screen 0 1280x900x24 & DISPLAY=:99 openbox &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python scripts/xvfb-drag-label.py WORKDIR SHOT.png

Needs xdotool and ImageMagick's ``import``; prints the photo's labels after the drop.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

import skimage
from PySide6.QtCore import QTimer

from devise_app.engine.search import Library
from devise_app.gui.app import create_application, open_settings
from devise_app.gui.main_window import MainWindow

PHOTOS = ["chelsea.png", "coffee.png", "rocket.jpg", "astronaut.png", "horse.png", "motorcycle_left.png"]


def main(workdir: Path, shot: Path) -> int:
    photos = workdir / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        shutil.copy(Path(skimage.__file__).parent / "data" / name, photos / name)
    library = Library(workdir / "library")
    deque(library.index([photos]), maxlen=1)
    library.create_label("sky")
    app = create_application()
    window = MainWindow(library, open_settings())
    window.resize(1100, 750)
    window.show()
    state: dict[str, Any] = {}

    def drag() -> None:
        labels, grid = window.labels_view, window.results_view
        start = labels.viewport().mapToGlobal(labels.visualRect(window.labels_model.index(0, 0)).center())
        end = grid.viewport().mapToGlobal(grid.visualRect(window.results_model.index(0, 0)).center())
        state["photo"] = window.results_model.photo(0).path
        steps = ["mousemove", str(start.x()), str(start.y()), "sleep", "0.3", "mousedown", "1"]
        for i in range(1, 11):
            x, y = start.x() + (end.x() - start.x()) * i // 10, start.y() + (end.y() - start.y()) * i // 10
            steps += ["sleep", "0.1", "mousemove", str(x), str(y)]
        state["xdotool"] = subprocess.Popen(["xdotool", *steps, "sleep", "0.4", "mouseup", "1"])
        QTimer.singleShot(200, wait_for_the_drop)

    def wait_for_the_drop() -> None:
        if state["xdotool"].poll() is None:
            QTimer.singleShot(200, wait_for_the_drop)
            return
        QTimer.singleShot(1500, finish)

    def finish() -> None:
        subprocess.run(["import", "-window", "root", str(shot)], check=False)
        print(f"labels on {state['photo'].name}: {library.labels_of(state['photo'])}")
        app.quit()

    def when_shown(count: int) -> None:
        if count and "shown" not in state:
            state["shown"] = QTimer.singleShot(800, drag)

    def search() -> None:  # listened to from here: the grid first shows the library's newest photos
        window.resultsShown.connect(when_shown)
        window.search("rocket")

    QTimer.singleShot(1500, search)
    QTimer.singleShot(60_000, app.quit)
    app.exec()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))

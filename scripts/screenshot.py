#!/usr/bin/env python3
"""Make docs/screenshot.png: the real main window, with results, grabbed offscreen.

Runs with a temporary library, cache and settings (the user's own are never
touched): indexes scikit-image's sample photos, labels two of them, runs a query,
waits for the thumbnails, then grabs the window.

    .venv/bin/python scripts/screenshot.py [--query animal] [--out docs/screenshot.png]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = (
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "camera.png",
    "astronaut.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "coins.png",
    "moon.png",
    "page.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "color.png",
    "ihc.png",
    "clock_motion.png",
)


def wait_for(app: object, condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", default="animal")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument("--size", default="1280x820", help="window size, WIDTHxHEIGHT")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))

    with tempfile.TemporaryDirectory(prefix="devise-screenshot-") as tmp:
        base = Path(tmp)
        for name in ("DATA", "CACHE", "CONFIG"):
            os.environ[f"DEVISE_APP_{name}_DIR"] = str(base / name.lower())
        photos = base / "Pictures"
        photos.mkdir()
        import skimage

        data = Path(skimage.__file__).parent / "data"
        for name in PHOTOS:
            if (data / name).is_file():
                shutil.copy(data / name, photos / name)

        from devise_app.engine.search import Library
        from devise_app.gui.app import create_application, open_settings
        from devise_app.gui.main_window import MainWindow

        app = create_application(["devise-app"])
        library = Library(base / "library")
        window = MainWindow(library, open_settings())
        width, height = (int(part) for part in args.size.split("x"))
        window.resize(width, height)
        window.show()

        finished: list[object] = []
        window.indexFinished.connect(finished.append)
        window.start_index([photos])
        wait_for(app, lambda: bool(finished), 300, "indexing")
        refreshed: list[bool] = []
        window.libraryRefreshed.connect(lambda: refreshed.append(True))
        wait_for(app, lambda: bool(refreshed), 60, "the library statistics")

        labelled: list[bool] = []
        window.labelsUpdated.connect(lambda: labelled.append(True))
        window.add_label("pets", [photos / "chelsea.png", photos / "horse.png"])
        window.add_label(
            "space", [photos / "rocket.jpg", photos / "astronaut.png", photos / "hubble_deep_field.jpg"]
        )
        window.create_label("holidays")
        wait_for(app, lambda: len(labelled) >= 3, 60, "the labels")

        shown: list[int] = []
        window.resultsShown.connect(shown.append)
        window.search_box.setText(args.query)
        window.run_search_box()
        wait_for(app, lambda: bool(shown), 60, "the results")
        grid = window.results_view
        grid.setFocus()
        model = window.results_model
        grid.setCurrentIndex(model.index(0, 0))
        wait_for(
            app,
            lambda: model.loader.pending() == 0 and len(model.pixmap_cache) >= min(model.rowCount(), 12),
            60,
            "the thumbnails",
        )
        window.statusBar().clearMessage()
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)

        args.out.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(args.out)):
            raise SystemExit(f"could not write {args.out}")
        print(f"wrote {args.out} ({shown[0]} results for {args.query!r})")
        window.close()
        window.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A tour of the window as a user takes it: real pointer moves, clicks, drags and key
presses (xdotool) on the real window under an X server (Xvfb and openbox), on a
library of about 1,400 photos, with screenshots, and the window's stalls timed from
outside with ``_NET_WM_PING`` (scripts/xvfb-ping.py) while it indexes ~1,000 photos
and after a 500-character query.

    Xvfb :99 -screen 0 1280x800x24 & DISPLAY=:99 openbox &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb .venv/bin/python scripts/xvfb-tour.py WORKDIR SHOTS_DIR XLIB_DIR

WORKDIR (under /tmp) gets the library and a folder the window watches; the photos
are read where they lie (../shared/datasets/coco-sample, imagenet-sample). XLIB_DIR
holds python-xlib for the pinger. Each step prints what the window showed
(``SEEN ...``) and the pinger's figures; ``SHOTS_DIR/tour.json`` keeps them.
The app runs in this process, so the script can read what the window shows; every
input reaches it through the X server, as a user's would.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"
COCO, IMAGENET = DATASETS / "coco-sample", DATASETS / "imagenet-sample"


def setup(workdir: Path) -> tuple[Path, Path]:
    """A library holding the COCO sample and a small watched folder of our own photos."""
    from PIL import Image

    from devise_app.engine.search import Library

    if workdir.exists():
        shutil.rmtree(workdir)
    for name in ("DATA", "CACHE", "CONFIG"):
        os.environ[f"DEVISE_APP_{name}_DIR"] = str(workdir / "user" / name.lower())
    os.environ["XDG_DATA_HOME"] = str(workdir / "user" / "xdg-data")  # the trash
    watched = workdir / "watched"
    watched.mkdir(parents=True)
    sources = sorted(COCO.glob("*.jpg"))
    rng = random.Random(13)
    for i in range(40):  # 12 now, 28 copied in later to see the watcher pick them up
        image = Image.open(sources[i]).convert("RGB")
        w, h = image.size
        left, top = rng.randrange(0, w // 5), rng.randrange(0, h // 5)
        crop = image.crop((left, top, left + w * 4 // 5, top + h * 4 // 5)).resize((400, 300))
        folder = watched if i < 12 else workdir / "later"
        folder.mkdir(exist_ok=True)
        crop.save(folder / f"mine_{i:02d}.jpg", quality=90)
    library_dir = workdir / "library"
    with Library(library_dir) as library:
        for folder in (COCO, watched):
            deque(library.index([folder]), maxlen=1)
    return library_dir, watched


class Tour:
    def __init__(self, window: Any, shots: Path, workdir: Path, xlib: Path, watched: Path) -> None:
        from PySide6.QtCore import QObject, Signal

        class Bridge(QObject):
            run = Signal(object)

        self.window = window
        self.shots = shots
        self.workdir = workdir
        self.xlib = xlib
        self.watched = watched
        self.seen: list[dict[str, Any]] = []
        self.bridge = Bridge()
        self.bridge.run.connect(self._on_gui)

    # ------------------------------------------------------------ the GUI thread, from here
    @staticmethod
    def _on_gui(item: tuple[Callable[[], Any], Future[Any]]) -> None:
        fn, future = item
        try:
            future.set_result(fn())
        except BaseException as exc:
            future.set_exception(exc)

    def gui(self, fn: Callable[[], Any]) -> Any:
        future: Future[Any] = Future()
        self.bridge.run.emit((fn, future))
        return future.result(timeout=60)

    def wait(self, what: str, cond: Callable[[], Any], timeout: float = 60) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.gui(cond):
                return True
            time.sleep(0.1)
        print(f"TIMEOUT waiting for {what}", flush=True)
        return False

    # ------------------------------------------------------------ the user's hands
    @staticmethod
    def xdo(*args: object) -> None:
        subprocess.run(["xdotool", *map(str, args)], check=True)

    def click(self, point: tuple[int, int], button: int = 1, mods: str = "") -> None:
        self.xdo("mousemove", *point, "sleep", 0.15)
        if mods:
            self.xdo("keydown", mods, "click", button, "keyup", mods)
        else:
            self.xdo("click", button)
        time.sleep(0.3)

    def key(self, *keys: str) -> None:
        for key in keys:
            self.xdo("key", "--clearmodifiers", key)
            time.sleep(0.25)

    def type(self, text: str, delay_ms: int = 12) -> None:
        self.xdo("type", "--delay", delay_ms, text)
        time.sleep(0.3)

    def drag(self, start: tuple[int, int], end: tuple[int, int]) -> None:
        steps: list[object] = ["mousemove", *start, "sleep", 0.3, "mousedown", 1]
        for i in range(1, 13):
            x = start[0] + (end[0] - start[0]) * i // 12
            y = start[1] + (end[1] - start[1]) * i // 12
            steps += ["sleep", 0.08, "mousemove", x, y]
        self.xdo(*steps, "sleep", 0.4, "mouseup", 1)
        time.sleep(0.8)

    # ------------------------------------------------------------ where things are
    def photo_point(self, row: int) -> tuple[int, int]:
        def at() -> tuple[int, int]:
            view, model = self.window.results_view, self.window.results_model
            point = view.viewport().mapToGlobal(view.visualRect(model.index(row, 0)).center())
            return point.x(), point.y()

        return self.gui(at)

    def label_point(self, name: str) -> tuple[int, int]:
        def at() -> tuple[int, int]:
            view, model = self.window.labels_view, self.window.labels_model
            row = model.names().index(name)
            point = view.viewport().mapToGlobal(view.visualRect(model.index(row, 0)).center())
            return point.x(), point.y()

        return self.gui(at)

    def widget_point(self, get: Callable[[], Any], x: float = 0.5, y: float = 0.5) -> tuple[int, int]:
        from PySide6.QtCore import QPoint

        def at() -> tuple[int, int]:
            widget = get()
            point = widget.mapToGlobal(QPoint(int(widget.width() * x), int(widget.height() * y)))
            return point.x(), point.y()

        return self.gui(at)

    def menu(self, title: str, action_id: str) -> None:
        """Open a menu of the menu bar with the pointer and click one of its items."""
        bar = self.window.menuBar()

        def title_point() -> tuple[int, int]:
            action = next(a for a in bar.actions() if a.text().replace("&", "") == title)
            point = bar.mapToGlobal(bar.actionGeometry(action).center())
            return point.x(), point.y()

        self.click(self.gui(title_point))

        def item_point() -> tuple[int, int] | None:
            from PySide6.QtWidgets import QApplication, QMenu

            popup = QApplication.activePopupWidget()
            if not isinstance(popup, QMenu):
                return None
            action = self.window.action(action_id)
            point = popup.mapToGlobal(popup.actionGeometry(action).center())
            return point.x(), point.y()

        self.wait(f"the {title} menu", lambda: item_point() is not None, 5)
        self.click(self.gui(item_point))

    # ------------------------------------------------------------ what the window shows
    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        time.sleep(0.6)
        subprocess.run(["import", "-window", "root", "-colors", "256", f"PNG8:{path}"], check=True)
        return path

    def header(self) -> str:
        from PySide6.QtGui import QTextDocument

        def text() -> str:
            document = QTextDocument()
            document.setHtml(self.window.results_info.text())
            return document.toPlainText()

        return self.gui(text)

    def line(self) -> str:
        from PySide6.QtGui import QTextDocument

        def text() -> str:
            label = self.window.query_message
            if not label.isVisible():
                return ""
            document = QTextDocument()
            document.setHtml(label.text())
            return document.toPlainText()

        return self.gui(text)

    def grid(self, n: int = 6) -> list[str]:
        model = self.window.results_model
        return self.gui(lambda: [model.photo(r).path.name for r in range(min(n, model.rowCount()))])

    def count(self) -> int:
        return self.gui(self.window.results_model.rowCount)

    def status(self) -> str:
        return self.gui(lambda: self.window.statusBar().currentMessage())

    def record(self, flow: str, seen: str, shot: str = "", ok: bool = True) -> None:
        entry = {"flow": flow, "seen": seen, "shot": shot, "ok": ok}
        self.seen.append(entry)
        print(f"SEEN {'ok ' if ok else 'BAD'} {flow}: {seen}" + (f" [{shot}]" if shot else ""), flush=True)

    def search(self, text: str, delay_ms: int = 12) -> None:
        self.click(self.widget_point(lambda: self.window.search_box, 0.3))
        self.key("ctrl+a", "BackSpace")
        self.type(text, delay_ms)
        generation = self.gui(lambda: self.window.results_model.generation)
        self.key("Return")
        self.wait(
            f"results for {text[:30]}",
            lambda: (
                self.window.results_model.generation != generation
                and not self.window.results_info.text().startswith("Searching")
            ),
            60,
        )
        time.sleep(0.5)

    def ping(self, seconds: float, name: str) -> subprocess.Popen[bytes]:
        wid = self.gui(lambda: int(self.window.winId()))
        env = {**os.environ, "PYTHONPATH": str(self.xlib)}
        out = self.workdir / f"ping-{name}.json"
        script = ROOT / "scripts" / "xvfb-ping.py"
        return subprocess.Popen([sys.executable, str(script), str(wid), str(seconds), str(out)], env=env)

    def ping_result(self, process: subprocess.Popen[bytes], name: str) -> dict[str, Any]:
        process.terminate()
        process.wait(30)
        result = json.loads((self.workdir / f"ping-{name}.json").read_text())
        result.pop("latencies_ms", None)
        print(f"PING {name}: {json.dumps(result)}", flush=True)
        return result

    # ------------------------------------------------------------ the flows
    def run(self) -> None:
        w = self.window
        steps: list[Callable[[], None]] = [
            self.index_while_pinging,
            self.browse_and_sort,
            self.search_with_cut_off,
            self.no_good_matches,
            self.analogy,
            self.labels_by_drag,
            self.preview_keys,
            self.rename_delete_undo,
            self.remove_rescan,
            self.duplicates,
            self.watching,
            self.long_query,
            self.check_and_folders,
        ]
        self.wait("the window", lambda: w.isVisible() and w.photo_count, 60)
        time.sleep(2)
        for step in steps:
            try:
                step()
            except Exception:
                traceback.print_exc()
                self.record(
                    step.__name__, "the step failed: " + traceback.format_exc().splitlines()[-1], ok=False
                )
                self.key("Escape")

    def index_while_pinging(self) -> None:
        w = self.window
        before = self.gui(lambda: w.photo_count)
        pinger = self.ping(240, "indexing")
        time.sleep(1.5)
        self.key("ctrl+o")  # Library ▸ Add folder…
        self.wait("the folder dialog", lambda: _active_dialog() is not None, 10)
        time.sleep(0.8)
        self.key("ctrl+a")
        self.type(str(IMAGENET), 5)
        self.key("Return")
        started = self.wait("indexing to start", lambda: w.jobs.running == "index", 15)
        if not started:
            self.key("Escape")
            self.record("add a folder (Ctrl+O)", "the folder dialog did not start an index run", ok=False)
            self.gui(lambda: w.start_index([IMAGENET]))
        self.wait("a few photos indexed", lambda: "Indexing" in w.jobs.panel.label.text(), 60)
        time.sleep(6)
        self.shot("01-indexing")
        panel = self.gui(lambda: w.jobs.panel.label.text())
        title = self.gui(w.windowTitle)
        self.wait("indexing to end", lambda: w.jobs.running is None, 400)
        self.wait("the count", lambda: w.photo_count and w.photo_count > before, 30)
        time.sleep(2)
        stalls = self.ping_result(pinger, "indexing")
        after = self.gui(lambda: w.photo_count)
        self.record(
            "add a folder with Ctrl+O (typed path), index ~1,000 photos",
            f"progress panel '{panel}', title '{title}'; {before} -> {after} photos; "
            f"status '{self.status()}'; pings {stalls}",
            "01-indexing.png",
        )
        self.pings = {"indexing": stalls}

    def browse_and_sort(self) -> None:
        w = self.window
        self.wait(
            "browsing", lambda: w.searching.shown is not None and w.searching.shown.kind == "browse", 20
        )
        self.shot("02-browse")
        self.record(
            "browse before any query (newest first)",
            f"header '{self.header()}', first photos {self.grid(4)}",
            "02-browse.png",
        )
        self.click(self.widget_point(lambda: w.browse_bar.sort_box))  # opens the list
        self.key("Down", "Down", "Return")  # Best match -> Newest -> Name
        time.sleep(1.5)
        by_name = self.grid(4)
        sort = self.gui(lambda: w.browse_bar.sort_box.currentText())
        self.click(self.widget_point(lambda: w.browse_bar.folder_box))
        self.key("Down", "Return")
        time.sleep(1.5)
        folder = self.gui(lambda: w.browse_bar.folder_box.currentText())
        self.shot("03-sorted-filtered")
        self.record(
            "sort by name, then filter to a folder (pointer on the combo boxes, keys in their lists)",
            f"sort '{sort}': {by_name}; folder '{folder}': header '{self.header()}', {self.grid(3)}",
            "03-sorted-filtered.png",
        )
        self.click(self.widget_point(lambda: w.browse_bar.folder_box))
        self.key("Home", "Return")
        self.click(self.widget_point(lambda: w.browse_bar.sort_box))
        self.key("Home", "Return")
        time.sleep(1)

    def search_with_cut_off(self) -> None:
        w = self.window
        self.search("dog")
        header, shown = self.header(), self.count()
        self.shot("04-search-dog")
        self.record(
            "search 'dog' (cut-off)",
            f"header '{header}', grid {shown} photos: {self.grid(5)}",
            "04-search-dog.png",
        )
        x, y = self.widget_point(lambda: w.results_info, 0.0, 0.5)
        self.click((x + 25, y))  # the "Show N weaker" link starts the header
        time.sleep(1)
        self.record(
            "click 'Show N weaker'", f"grid {shown} -> {self.count()} photos; header '{self.header()}'"
        )

    def no_good_matches(self) -> None:
        self.search("tax form")
        self.shot("05-no-good-matches")
        self.record(
            "search 'tax form' (nothing like it in the library)",
            f"line '{self.line()}', header '{self.header()}', grid {self.count()}",
            "05-no-good-matches.png",
        )

    def analogy(self) -> None:
        self.search("king - man + woman")
        self.shot("06-analogy")
        self.record(
            "search 'king - man + woman'",
            f"header '{self.header()}', first {self.grid(3)}",
            "06-analogy.png",
        )

    def labels_by_drag(self) -> None:
        w = self.window
        self.search("elephant")
        self.click(self.widget_point(lambda: w.labels.new_label_edit))
        self.type("elephants")
        self.key("Return")
        self.wait("the label", lambda: "elephants" in w.labels_model.names(), 10)
        self.click(self.widget_point(lambda: w.labels.new_label_edit))
        self.type("big animals")
        self.key("Return")
        self.wait("the second label", lambda: "big animals" in w.labels_model.names(), 10)
        self.click(self.photo_point(0))
        self.click(self.photo_point(1), mods="ctrl")
        paths = self.gui(lambda: [str(p) for p in w.photos.selected_paths()])
        self.drag(self.photo_point(1), self.label_point("elephants"))
        ok = self.wait(
            "photos dropped on the label", lambda: w.labels.label_map.get(paths[0]) == ["elephants"], 10
        )
        on_label = self.gui(
            lambda: sorted(Path(p).name for p, names in w.labels.label_map.items() if "elephants" in names)
        )
        self.record("drag 2 selected photos onto the label 'elephants'", f"the label is on {on_label}", ok=ok)
        target = self.gui(lambda: str(w.results_model.photo(2).path))
        self.click(self.photo_point(5))  # select another photo: the label goes on the one under the drop
        self.drag(self.label_point("big animals"), self.photo_point(2))
        ok = self.wait(
            "the label dropped on a photo", lambda: "big animals" in w.labels.label_map.get(target, []), 10
        )
        self.shot("07-labels-dragged")
        self.record(
            "drag the label 'big animals' onto the third photo",
            f"labels of {Path(target).name}: {self.gui(lambda: w.labels.label_map.get(target))}; "
            f"status '{self.status()}'; undo reads '{self.gui(lambda: w.action('undo').text())}'",
            "07-labels-dragged.png",
            ok=ok,
        )
        self.key("ctrl+z")
        ok = self.wait("undo", lambda: "big animals" not in w.labels.label_map.get(target, []), 10)
        self.record(
            "Ctrl+Z after the drop",
            f"labels of {Path(target).name}: {self.gui(lambda: w.labels.label_map.get(target))}; "
            f"status '{self.status()}'",
            ok=ok,
        )

    def preview_keys(self) -> None:
        w = self.window
        self.click(self.photo_point(0))
        self.key("space")
        self.wait("the preview", lambda: w.photos.preview_dialog is not None, 10)
        time.sleep(1)
        rows = [self.gui(lambda: w.photos.preview_dialog.row)]
        for key in ("Right", "Right", "Left", "space"):
            self.key(key)
            time.sleep(0.5)
            rows.append(self.gui(lambda: w.photos.preview_dialog.row))
        self.shot("08-preview")
        self.key("Escape")
        self.record(
            "Space on a photo, then Right, Right, Left, Space in the preview",
            f"preview rows {rows} (expect [0, 1, 2, 1, 2])",
            "08-preview.png",
            ok=rows == [0, 1, 2, 1, 2],
        )

    def rename_delete_undo(self) -> None:
        w = self.window
        self.click(self.label_point("elephants"))
        self.key("F2")
        self.wait("the rename dialog", lambda: _active_dialog() is not None, 5)
        self.key("ctrl+a")
        self.type("Elephants we saw")
        self.key("Return")
        ok = self.wait("the rename", lambda: "Elephants we saw" in w.labels_model.names(), 10)
        self.record(
            "F2 on the label, type a new name, Enter", f"labels {self.gui(w.labels_model.names)}", ok=ok
        )
        self.click(self.label_point("Elephants we saw"))
        self.key("Delete")
        self.wait("the question", lambda: _active_dialog() is not None, 5)
        time.sleep(0.5)
        self.key("Return")
        ok = self.wait("the delete", lambda: "Elephants we saw" not in w.labels_model.names(), 10)
        self.record(
            "Del on the label, Enter on the question", f"labels {self.gui(w.labels_model.names)}", ok=ok
        )
        undo_text = self.gui(lambda: w.action("undo").text())
        self.click(self.widget_point(lambda: w.results_view, 0.9, 0.95))  # the grid's empty corner
        self.key("ctrl+z")
        ok = self.wait("the undo", lambda: "Elephants we saw" in w.labels_model.names(), 10)
        carried = self.gui(
            lambda: sorted(Path(p).name for p, n in w.labels.label_map.items() if "Elephants we saw" in n)
        )
        self.shot("09-undo-delete")
        self.record(
            f"Ctrl+Z ('{undo_text}')",
            f"labels {self.gui(w.labels_model.names)}; 'Elephants we saw' is back on {carried}; "
            f"status '{self.status()}'",
            "09-undo-delete.png",
            ok=ok and len(carried) == 2,
        )

    def remove_rescan(self) -> None:
        w = self.window
        self.search("dog")
        before = self.gui(lambda: w.photo_count)
        gone = self.gui(lambda: str(w.results_model.photo(0).path))
        x, y = self.photo_point(0)
        self.click((x, y))
        self.click((x, y), button=3)  # the photo menu
        self.wait("the photo menu", lambda: _popup() is not None, 5)
        self.key("Up", "Return")  # its last item: Remove from library…
        self.wait("the question", lambda: _active_dialog() is not None, 5)
        time.sleep(0.5)
        self.key("Return")
        ok = self.wait("the removal", lambda: w.photo_count == before - 1, 15)
        self.record(
            "right-click a photo ▸ Remove from library…, Enter",
            f"{before} -> {self.gui(lambda: w.photo_count)} photos; {Path(gone).name} in the grid: "
            f"{Path(gone).name in self.grid(50)}; file still there: {Path(gone).exists()}; "
            f"status '{self.status()}'",
            ok=ok,
        )
        os.utime(self.watched / "mine_00.jpg")  # touched on disk: the rescan sees a changed file
        self.gui(w.statusBar().clearMessage)
        self.key("F5")  # so quick that it may end before it is seen running: wait for its summary
        self.wait("the rescan", lambda: w.statusBar().currentMessage().startswith("Indexing done"), 120)
        time.sleep(1)
        self.record(
            "F5 (rescan)",
            f"status '{self.status()}'; {self.gui(lambda: w.photo_count)} photos (the removed one stays out)",
        )

    def duplicates(self) -> None:
        self.menu("Library", "duplicates")
        self.wait(
            "duplicates",
            lambda: (
                self.window.searching.shown.kind == "duplicates"
                and "duplicate" in self.window.results_info.text()
            ),
            60,
        )
        time.sleep(1.5)
        self.shot("10-duplicates")
        self.record(
            "Library ▸ Find duplicates (pointer on the menu)",
            f"header '{self.header()}', first {self.grid(6)}",
            "10-duplicates.png",
        )

    def watching(self) -> None:
        w = self.window
        before = self.gui(lambda: w.photo_count)
        self.search("")  # an empty query: the library itself
        index = self.gui(lambda: w.browse_bar.folder_box.findText("watched"))
        self.click(self.widget_point(lambda: w.browse_bar.folder_box))
        self.key("Home", *["Down"] * index, "Return")
        self.wait("the folder's photos", lambda: w.results_model.rowCount() == 12, 15)
        folder = self.gui(lambda: w.browse_bar.folder_box.currentText())
        shown_before = self.count()
        later = sorted((self.workdir / "later").iterdir())
        for path in later:
            shutil.copy(path, self.watched / path.name)
        ok = self.wait("the watcher", lambda: w.photo_count >= before + len(later), 90)
        self.wait("the grid", lambda: w.results_model.rowCount() == 12 + len(later), 20)
        time.sleep(2)
        self.shot("11-watching")
        self.record(
            f"copy {len(later)} photos into the watched folder (a file manager's copy)",
            f"{before} -> {self.gui(lambda: w.photo_count)} photos; folder filter '{folder}': grid "
            f"{shown_before} -> {self.count()}, header '{self.header()}'; status '{self.status()}'",
            "11-watching.png",
            ok=ok,
        )
        self.click(self.widget_point(lambda: w.browse_bar.folder_box))
        self.key("Home", "Return")

    def long_query(self) -> None:
        w = self.window
        width = self.gui(lambda: w.frameGeometry().width())
        text = ("a dog running on the beach with a red ball near the sea " * 10)[:500]
        self.click(self.widget_point(lambda: w.search_box, 0.3))
        self.key("ctrl+a", "BackSpace")
        pinger = self.ping(120, "typing")
        time.sleep(0.5)
        self.type(text, 20)  # 50 characters a second: a fast typist
        time.sleep(1)
        typing = self.ping_result(pinger, "typing")
        generation = self.gui(lambda: w.results_model.generation)
        pinger = self.ping(120, "long-query")
        time.sleep(0.5)
        self.key("Return")
        self.wait(
            "the answer",
            lambda: (
                w.results_model.generation != generation and not w.results_info.text().startswith("Search")
            ),
            60,
        )
        time.sleep(4)
        stalls = self.ping_result(pinger, "long-query")
        after = self.gui(lambda: w.frameGeometry().width())
        self.shot("12-long-query")
        self.record(
            f"a {len(text)}-character query, typed at 50 characters a second, then Enter",
            f"window {width} -> {after} px wide; header '{self.header()[:90]}…'; line '{self.line()[:80]}'; "
            f"pings while typing {typing}; after Enter {stalls}",
            "12-long-query.png",
            ok=after <= width,
        )
        self.pings["typing-500"] = typing
        self.pings["after-500-query"] = stalls
        self.click(self.widget_point(lambda: w.search_box, 0.3))
        self.key("ctrl+a", "BackSpace", "Return")

    def check_and_folders(self) -> None:
        w = self.window
        self.menu("Library", "folders")
        self.wait(
            "the folders dialog", lambda: w.care.dialog is not None and w.care.dialog.folders.count() > 0, 10
        )
        folders = self.gui(
            lambda: [w.care.dialog.folders.item(r).text() for r in range(w.care.dialog.folders.count())]
        )
        excluded = self.gui(
            lambda: [w.care.dialog.excluded.item(r).text() for r in range(w.care.dialog.excluded.count())]
        )
        self.shot("13-folders")
        self.record(
            "Library ▸ Folders…",
            f"folders {folders}; kept out {[Path(p).name for p in excluded]}",
            "13-folders.png",
        )
        self.key("Escape")
        self.menu("Library", "check")
        ok = self.wait("the check", lambda: w.care.last_report is not None, 120)
        time.sleep(1)
        self.shot("14-check")
        report = self.gui(lambda: w.care.last_report)
        self.record("Library ▸ Check library…", f"report {report}", "14-check.png", ok=ok and report.sound)
        self.key("Return")


def _active_dialog() -> Any:
    from PySide6.QtWidgets import QApplication, QDialog

    widget = QApplication.activeModalWidget() or QApplication.activeWindow()
    return widget if isinstance(widget, QDialog) else None


def _popup() -> Any:
    from PySide6.QtWidgets import QApplication

    return QApplication.activePopupWidget()


def main(workdir: Path, shots: Path, xlib: Path) -> int:
    shots.mkdir(parents=True, exist_ok=True)
    library_dir, watched = setup(workdir)
    from PySide6.QtCore import QTimer

    from devise_app.engine.search import Library
    from devise_app.gui.app import create_application, open_settings
    from devise_app.gui.main_window import MainWindow

    app = create_application()
    window = MainWindow(Library(library_dir), open_settings())
    window.watch_library()
    window.showMaximized()
    tour = Tour(window, shots, workdir, xlib, watched)
    tour.pings = {}

    def drive() -> None:
        try:
            tour.run()
        finally:
            (shots / "tour.json").write_text(json.dumps({"flows": tour.seen, "pings": tour.pings}, indent=1))
            tour.gui(app.quit)

    QTimer.singleShot(500, lambda: threading.Thread(target=drive, daemon=True).start())
    app.exec()
    window.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))

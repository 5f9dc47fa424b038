"""The window's actions and menus, declared as data.

Each :class:`ActionSpec` names its handler as an attribute path on the window
(``"photos.open_selected"``: the photo-actions controller's method), so the table
below reads as the app's list of commands, and :func:`build_actions` makes the
``QAction`` objects from it. Menus and the toolbar list action ids; ``"-"`` is a
separator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QToolBar, QWidget

from devise_app.gui.icons import icon

Key = str | QKeySequence.StandardKey
SEPARATOR = "-"


@dataclass(frozen=True)
class ActionSpec:
    id: str
    text: str
    handler: str  # attribute path on the window, called with no arguments
    shortcuts: tuple[Key, ...] = ()
    icon: str | None = None
    tip: str = ""  # tooltip and status tip; the text (without "…") when empty
    photos: bool = False  # acts on the selected photos: enabled only while some are
    grid: bool = False  # its shortcut works while the grid has the focus


@dataclass(frozen=True)
class MenuSpec:
    title: str
    items: tuple[str, ...]


Std = QKeySequence.StandardKey
ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec(
        "add_folder", "Add folder…", "jobs.choose_folder", (Std.Open,), "folder-add",
        "Index a folder of photos into this library",
    ),
    ActionSpec(
        "rescan", "Rescan library", "jobs.rescan", (Std.Refresh,), None,
        "Bring the library up to date with all its folders: new, changed, moved and deleted photos",
    ),
    ActionSpec(
        "duplicates", "Find duplicates", "searching.show_duplicates", (), None,
        "Show the identical copies and near-duplicates (re-saved, resized, cropped), group by group",
    ),
    ActionSpec(
        "remove_photos", "Remove from library…", "photos.remove_selected", (), None,
        "Take the selected photos out of the library (the files stay where they are)", photos=True,
    ),
    ActionSpec(
        "folders", "Folders…", "care.show_folders", (), None,
        "The folders this library indexes: remove one, keep a sub-folder out, let one back in",
    ),
    ActionSpec(
        "check", "Check library…", "care.check_library", (), None,
        "Look for damage in the catalog, the stored vectors and the search index, and mend it",
    ),
    ActionSpec(
        "undo", "Undo", "labels.undo_stack.undo", (Std.Undo,), None,
        "Take back the last change to labels (Ctrl+Z)",
    ),
    ActionSpec("redo", "Redo", "labels.undo_stack.redo", (Std.Redo,), None, "Make the change again"),
    ActionSpec(
        "cancel", "Cancel indexing", "jobs.cancel", (), "stop",
        "Stop indexing; what is done is kept and the rest is indexed next time",
    ),
    ActionSpec(
        "preview", "Preview", "photos.preview_current", ("Space",), "preview",
        "Show the photo large (Space); Left/Right step through the results", photos=True, grid=True,
    ),
    ActionSpec(
        "open", "Open", "photos.open_selected", ("Ctrl+Return",), "open-external",
        "Open in the system's photo viewer (Ctrl+Enter)", photos=True, grid=True,
    ),
    ActionSpec(
        "show_folder", "Show in folder", "photos.show_in_folder", ("Ctrl+Shift+Return",), "show-folder",
        "Show the file in its folder", photos=True, grid=True,
    ),
    ActionSpec(
        "similar", "Find similar", "photos.find_similar", ("Ctrl+Shift+S",), "similar",
        "Photos that look like this one (Ctrl+Shift+S)", photos=True, grid=True,
    ),
    ActionSpec(
        "words", "Words for this photo…", "photos.words_for_current", ("Ctrl+D",), "words",
        "Your labels that fit this photo and the words the model sees in it; one click applies one (Ctrl+D)",
        photos=True, grid=True,
    ),
    ActionSpec(
        "copy_path", "Copy path", "photos.copy_paths", (Std.Copy,), None, photos=True, grid=True
    ),
    ActionSpec("zoom_in", "Larger thumbnails", "zoom_in", (Std.ZoomIn, "Ctrl+="), "zoom-in"),
    ActionSpec("zoom_out", "Smaller thumbnails", "zoom_out", (Std.ZoomOut,), "zoom-out"),
    ActionSpec("zoom_reset", "Default thumbnail size", "reset_zoom", ("Ctrl+0",)),
    ActionSpec("focus_search", "Search", "searching.focus", (Std.Find, "Ctrl+L", "/"), "search"),
    ActionSpec(
        "back", "Back", "searching.go_back", ("Alt+Left", "Back"), None,
        "Back to what the grid showed before: the search, the library, similar photos (Alt+Left)",
    ),
    ActionSpec(
        "learn", "Learn from labels", "labels.learn_from_labels", ("Ctrl+Shift+L",), "learn",
        "Teach the model your labels, so searches for them (and for similar photos) "
        "find the unlabelled photos too (Ctrl+Shift+L)",
    ),
    ActionSpec(
        "export_labels", "Export labels…", "labels.choose_export_file", (), None,
        "Save every label and the paths of its photos to a JSON file",
    ),
    ActionSpec(
        "import_labels", "Import labels…", "labels.choose_import_file", (), None,
        "Put the labels of an exported JSON file on this library's photos",
    ),
    ActionSpec("quit", "Quit", "close", (Std.Quit,)),
    ActionSpec("search_tips", "Search tips", "show_search_help"),
    ActionSpec("about", "About devise-app", "show_about"),
)  # fmt: skip

MENUS: tuple[MenuSpec, ...] = (
    MenuSpec(
        "&Library",
        (
            "add_folder",
            "rescan",
            "folders",
            "duplicates",
            "check",
            "cancel",
            "-",
            "learn",
            "export_labels",
            "import_labels",
            "-",
            "quit",
        ),
    ),
    MenuSpec("&Edit", ("undo", "redo")),
    MenuSpec("&Photo", ("preview", "open", "show_folder", "similar", "words", "copy_path")),
    MenuSpec(
        "&View", ("focus_search", "back", "-", "zoom_in", "zoom_out", "zoom_reset", "-", "labels_panel")
    ),
    MenuSpec("&Help", ("search_tips", "about")),
)
TOOLBAR = ("add_folder", "back", "-", "preview", "open", "show_folder", "similar", "words")
# the photo context menu; its label submenus come after PHOTO_MENU_TOP
PHOTO_MENU_TOP = ("preview", "open", "show_folder", "-", "similar", "words")
PHOTO_MENU_BOTTOM = ("copy_path", "remove_photos")


def handler(target: object, spec: ActionSpec) -> Callable[[], Any]:
    """The method ``spec`` names on ``target`` (AttributeError if there is none)."""
    found: Callable[[], Any] = attrgetter(spec.handler)(target)
    return found


def build_actions(
    parent: QWidget, target: object, specs: Iterable[ActionSpec] = ACTIONS
) -> dict[str, QAction]:
    """One ``QAction`` per spec, its ``triggered`` connected to the named handler."""
    actions: dict[str, QAction] = {}
    for spec in specs:
        action = QAction(spec.text, parent)
        if spec.icon:
            action.setIcon(icon(spec.icon))
        if spec.shortcuts:
            action.setShortcuts([QKeySequence(key) for key in spec.shortcuts])
        tip = spec.tip or spec.text.replace("…", "")
        action.setToolTip(tip)
        action.setStatusTip(tip)
        call = handler(target, spec)
        action.triggered.connect(lambda _checked=False, call=call: call())
        actions[spec.id] = action
    return actions


def fill(container: QMenu | QToolBar, ids: Iterable[str], actions: Mapping[str, QAction]) -> None:
    for item in ids:
        if item == SEPARATOR:
            container.addSeparator()
        else:
            container.addAction(actions[item])


def build_menus(
    menu_bar: QMenuBar, actions: Mapping[str, QAction], menus: Iterable[MenuSpec] = MENUS
) -> None:
    for spec in menus:
        menu = menu_bar.addMenu(spec.title)
        fill(menu, spec.items, actions)

"""The Help menu's two boxes."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

SEARCH_TIPS = (
    "<p><b>Words</b>: <i>cat</i>, <i>sailboat</i>, <i>coffee cup</i>. Words that are not "
    "labels of any training photo work too, because the model knows which words are related. "
    "Whole sentences work: <i>a dog running on the beach</i>. A typo is read as the word "
    "you meant (<i>a dgo</i> searches for a dog; the line under the box says so, and "
    "<b>Search as typed</b> there takes it back).</p>"
    "<p><b>Leaving things out</b>: <i>a kitchen with no people</i>, <i>a street without cars</i> "
    "rank the photos that show people or cars lower.</p>"
    "<p><b>Arithmetic</b>: <i>king - man + woman</i>, <i>2*dog + beach</i>.</p>"
    "<p><b>Labels</b>: <i>label:holidays</i> finds the photos you labeled, "
    '<i>label:"two words"</i> for names with spaces. A label’s name alone (<i>Grandma</i>) '
    "lists its photos first, then the ones most like them; in a sentence "
    "(<i>Grandma at the beach</i>) it is read as the label too, as <i>label:Grandma + beach</i> "
    "mixes a label with words.</p>"
    "<p><b>Learn from labels</b> (Ctrl+Shift+L) teaches the model your labels, so they also "
    "find the photos you have not labelled.</p>"
    "<p><b>Similar photos</b>: drop a photo on the search box, "
    "or select one and press Ctrl+Shift+S.</p>"
    "<p><b>Back</b> (Alt+Left, or the mouse’s back button) shows again what the grid "
    "showed before: the last search, the library, similar photos, duplicates.</p>"
)


def show_search_tips(parent: QWidget) -> None:
    QMessageBox.information(parent, "Search tips", SEARCH_TIPS)


def show_about(parent: QWidget, library: Path) -> None:
    QMessageBox.about(
        parent,
        "About devise-app",
        "<h3>devise-app</h3><p>Search your own photos by meaning with a DeViSE visual-semantic "
        "embedding model. Everything runs on this computer.</p>"
        f"<p>Library: {escape(str(library))}</p>",
    )

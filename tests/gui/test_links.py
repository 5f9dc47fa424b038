"""Links in rich text carry names exactly: ``&``, quotes and ``<`` survive the trip
through Qt's HTML (single-quoted attributes kept ``&amp;``: a click on the label
``Mom & Dad`` searched for ``Mom &amp; Dad``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLabel

from devise_app.engine.search import Suggestion
from devise_app.gui.dialogs import WordsDialog

NAMES = ["Mom & Dad", "C++", 'it\'s "x" <b>', "a+b"]


def _click_link(qtbot: Any, label: QLabel) -> None:
    qtbot.mouseClick(label, Qt.MouseButton.LeftButton, pos=QPoint(4, label.height() // 2))


@pytest.mark.parametrize("is_label", [True, False])
def test_words_dialog_links_search_for_the_exact_name(qtbot: Any, tmp_path: Path, is_label: bool) -> None:
    dialog = WordsDialog(tmp_path / "photo.jpg")
    qtbot.addWidget(dialog)
    dialog.set_words([Suggestion(name, 0.5, is_label) for name in NAMES])
    dialog.show()
    qtbot.waitExposed(dialog)
    links = [label for label in dialog.findChildren(QLabel) if "<a href" in label.text()]
    assert len(links) == len(NAMES)
    for link, name in zip(links, NAMES, strict=True):
        with qtbot.waitSignal(dialog.searchRequested) as searched:
            _click_link(qtbot, link)
        assert searched.args == [name]

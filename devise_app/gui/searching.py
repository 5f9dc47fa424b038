"""The search bar and what it shows: queries, browsing, similar photos, duplicates.

:class:`SearchController` owns the search box, the results header and the browse
bar, runs each search on the query thread and shows the answer in the shared
results model, only if no newer search started meanwhile
(``ResultsModel.generation``). What it last showed is remembered, so a finished
index run, a learn run or a label change can show it again up to date, and so is
what it showed before that (up to ``HISTORY`` views), for Back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy

from devise_app.engine.errors import QueryError
from devise_app.engine.query import label_query
from devise_app.engine.search import SearchHit, SearchResult
from devise_app.gui.browse import NAME, RELEVANCE, BrowseBar
from devise_app.gui.calls import AS_TYPED_LINK, Calls, Feedback, user_message
from devise_app.gui.models import Photo, ResultsModel
from devise_app.gui.ports import LibraryPort, WordSource
from devise_app.gui.text import count, number, shortened
from devise_app.gui.views import CommonWords, ResultsView, SearchBox, expression_completions

MAX_RESULTS = 1000
BROWSE_PAGE = 1000  # photos the grid shows of the library at a time ("Show N more" adds a page)
EXAMPLES = ("cat", "beach", "bicycle", "coffee")  # offered, as links, before the first search
HISTORY = 20  # what the grid showed before, for Back
QUERY_PHOTO_SIZE = 28  # the header's thumbnail of the photo a "like" view is like


@dataclass
class Page:
    """The library as browsed: every photo listed, and how many of them the grid shows."""

    generation: int
    photos: list[Photo]
    shown: int
    order: str  # "date" or "name"


@dataclass(frozen=True)
class Shown:
    """What the grid shows: ``kind`` is "query", "browse", "similar" or "duplicates"."""

    kind: str
    value: str = ""  # the query text, or the photo's path


def in_order(found: SearchResult, sort: str) -> SearchResult:
    """The good matches by date taken or by name when asked; the weaker ones stay
    after them, by relevance."""
    if sort == RELEVANCE or not found.hits:
        return found
    good_count = found.good
    good, weaker = list(found.hits[:good_count]), found.hits[good_count:]
    if sort == NAME:
        good.sort(key=lambda hit: (hit.path.name.lower(), str(hit.path)))
    else:
        good.sort(key=lambda hit: -(hit.taken_at or 0.0))
    return replace(found, hits=good + weaker, good_count=good_count)


def replace_unknown_word(query: str, word: str | None, suggestion: str) -> str:
    """The query with ``word`` (the one a QueryError named) replaced by ``suggestion``."""
    if suggestion.lower().startswith("label:"):
        replaced = re.sub(r'(?i)label:(?:"[^"]*"|\S+)', lambda _m: suggestion, query, count=1)
        return replaced if replaced != query else suggestion
    if word:
        pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
        if pattern.search(query):
            return pattern.sub(lambda _m: suggestion, query, count=1)
    return suggestion  # no idea which word was meant: the suggestion alone is a fair query


class SearchController(QObject):
    resultsShown = Signal(int)  # number of photos now in the grid
    queryFailed = Signal(str)  # the inline message
    wordsSetAside = Signal(list)  # the unknown words a query left out (it was answered from the rest)
    backChanged = Signal(bool)  # whether there is a view to go back to

    def __init__(
        self,
        library: LibraryPort,
        calls: Calls,
        feedback: Feedback,
        model: ResultsModel,
        view: ResultsView,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.model = model
        self.view = view
        self.box = SearchBox()
        self.box.setMinimumHeight(34)
        self.info = QLabel()  # the results header: "12 photos for “cat”"
        self.info.setObjectName("resultsInfo")
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        self.info.linkActivated.connect(self._on_link)
        self.query_photo = QLabel()  # beside the header: the photo the grid is like
        self.query_photo.setObjectName("queryPhoto")
        self.query_photo.setFixedSize(QUERY_PHOTO_SIZE, QUERY_PHOTO_SIZE)
        self.query_photo.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.query_photo.hide()
        model.loader.ready.connect(self._on_thumbnail)
        self.browse_bar = BrowseBar()
        self.browse_bar.changed.connect(self.rerun)
        self.photo_count: int | None = None  # of the library; set by the window
        self.shown: Shown | None = None
        self.history: list[Shown] = []  # what the grid showed before, the latest last
        self._going_back = False
        self._calls = calls
        self._feedback = feedback
        self._answer: tuple[int, str, SearchResult] | None = None  # for "show weaker matches"
        self._error_word: str | None = None  # the word the last QueryError named
        self.page_size = BROWSE_PAGE
        self._page: Page | None = None  # the library as browsed, for "show more"
        self.box.returnPressed.connect(self.run_box)
        self.box.photoDropped.connect(self.find_similar)
        self.box.textChanged.connect(lambda text: None if text.strip() else feedback.hush())
        feedback.line.suggestionClicked.connect(self.use_suggestion)
        feedback.line.asTypedClicked.connect(lambda: self.search(self.box.text(), read_typos=False))

    def set_words(self, words: WordSource, label_names: Callable[[], list[str]]) -> None:
        """Complete the last word of the query: a label's name, or a common word."""
        common = CommonWords(words)
        self.box.word_completer.set_source(
            lambda text: expression_completions(text, common.complete, label_names)
        )

    def focus(self) -> None:
        self.box.setFocus()
        self.box.selectAll()

    def run_box(self) -> None:
        self.search(self.box.text())

    def search(self, text: str, read_typos: bool = True) -> None:
        """Run a query (words, arithmetic, ``label:NAME``) and show its photos; with
        ``read_typos`` False its unknown words are set aside, not read as others."""
        text = text.strip()
        self.box.word_completer.hide_popup()
        if self.box.text().strip() != text:
            self.box.setText(text)
        if not text:
            self._feedback.hush()
            if self.photo_count:
                self.browse()
            else:
                self.model.clear()
                self.shown = None
                self.update_empty_message()
            return
        self._show(Shown("query", text))
        sort, filters = self.browse_bar.sort(has_query=True), self.browse_bar.photo_filter()
        self._start(
            lambda: in_order(
                self.library.find(text, top=MAX_RESULTS, filters=filters, read_typos=read_typos), sort
            ),
            f"for “{shortened(text)}”",
        )

    def browse(self) -> None:
        """Show the library's photos without a query, sorted and filtered by the browse bar."""
        self._show(Shown("browse"))
        sort, filters = self.browse_bar.sort(has_query=False), self.browse_bar.photo_filter()

        def listing() -> SearchResult:
            # every photo (each content once), so the header can say how many there are;
            # the grid shows them a page at a time
            photos = self.library.browse(sort, filters)
            return SearchResult([SearchHit(p.photo_id, p.path, 1.0, p.copies) for p in photos], graded=False)

        self._start(listing, "in the library", paged=sort)

    def find_similar(self, photo: Path) -> None:
        """Show the photos that look like ``photo`` (in the library or not)."""
        photo = Path(photo)
        self._show(Shown("similar", str(photo)))
        self.box.clear()
        self._start(
            lambda: SearchResult(self.library.similar(photo, top=MAX_RESULTS), graded=False),
            f"like {photo.name}",
        )
        self.query_photo.setToolTip(f"Photos like this one: {photo}")
        self.query_photo.clear()
        self.query_photo.show()
        self.model.loader.request(str(photo))  # its thumbnail, beside the header

    def _on_thumbnail(self, path: str, image: QImage) -> None:
        if self.shown is not None and self.shown.kind == "similar" and path == self.shown.value:
            size = QUERY_PHOTO_SIZE
            pixmap = QPixmap.fromImage(image).scaled(
                size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
            )
            self.query_photo.setPixmap(pixmap)

    def show_duplicates(self) -> None:
        """Every photo of each duplicate group, group after group (an exact group lists
        each copy); select and remove the extras."""
        self._show(Shown("duplicates"))
        self.box.clear()

        def groups() -> SearchResult:
            hits = [
                SearchHit(photo.photo_id, photo.path, group.similarity, 1, photo.taken_at)
                for group in self.library.duplicates()
                for photo in group.photos
            ]
            return SearchResult(hits, graded=False)

        self._start(groups, "in duplicate groups")

    def _show(self, shown: Shown) -> None:
        """The grid now shows ``shown``; what it showed before goes on the Back list
        (unless Back is what brought it back)."""
        if self.shown is not None and shown != self.shown and not self._going_back:
            self.history.append(self.shown)
            del self.history[:-HISTORY]
            self.backChanged.emit(True)
        self.shown = shown

    @property
    def can_go_back(self) -> bool:
        return bool(self.history)

    def go_back(self) -> None:
        """Show again what the grid showed before (the query back in the box)."""
        if not self.history:
            return
        previous = self.history.pop()
        if previous.kind != "query":
            self.box.clear()
        self._going_back = True
        try:
            self._show_again(previous)
        finally:
            self._going_back = False
        if not self.history:
            self.backChanged.emit(False)

    def rerun(self) -> None:
        """Show what the grid shows again, up to date."""
        if self.shown is not None:
            self._show_again(self.shown)

    def _show_again(self, shown: Shown) -> None:
        if shown.kind == "query":
            self.search(shown.value)
        elif shown.kind == "browse":
            self.browse()
        elif shown.kind == "duplicates":
            self.show_duplicates()
        else:
            self.find_similar(Path(shown.value))

    def labels_changed(self, label_names: list[str]) -> None:
        """A query that names a label lists that label's photos first: show it again."""
        if self.shown is None or self.shown.kind != "query":
            return
        query = self.shown.value
        if "label:" in query or query.strip().lower() in {name.lower() for name in label_names}:
            self.rerun()

    def label_renamed(self, old: str, new: str) -> None:
        """A label shown by its query was renamed (its photos follow the new name) or
        deleted (the library is shown instead of an error about a gone label)."""
        named = (label_query(old), f"label:{old}")

        def names_it(shown: Shown) -> bool:
            return shown.kind == "query" and shown.value.strip() in named

        self.history = [  # Back leads to the new name, never to a gone one
            Shown("query", label_query(new)) if names_it(shown) else shown
            for shown in self.history
            if new or not names_it(shown)
        ]
        self.backChanged.emit(self.can_go_back)
        if self.shown is not None and names_it(self.shown):
            if new:
                self.shown = Shown("query", label_query(new))  # the same view: not one to go back to
                self.search(label_query(new))
            else:
                self.shown = None  # the gone label's photos: not one to go back to either
                self.box.clear()
                self.search("")

    def use_suggestion(self, suggestion: str) -> None:
        """A spelling under the box was clicked: it replaces the word it was offered for."""
        self.box.setText(replace_unknown_word(self.box.text(), self._error_word, suggestion))
        self.run_box()

    def _start(self, fn: Callable[[], SearchResult], description: str, paged: str = "") -> None:
        """Run ``fn`` on the query thread and show what it found; ``paged`` (the sort
        order of a browse) shows it a page at a time."""
        generation = self.model.new_generation()
        self._page = None
        self.query_photo.hide()  # find_similar shows it again
        self.info.setText(f"Searching {description}…")
        self._calls.call(
            fn,
            lambda found: self.show_results(generation, description, found, paged=paged),
            lambda exc: self.on_error(generation, exc),
        )

    def show_results(
        self,
        generation: int,
        description: str,
        found: SearchResult,
        weaker_too: bool = False,
        paged: str = "",
    ) -> None:
        """Show the good matches; the weaker ones only when asked ("show weaker matches").
        ``paged`` (a browse's sort order): the first page of them, "Show N more" for the next."""
        every = [Photo.from_hit(hit) for hit in found.hits]
        photos = every if weaker_too else every[: found.good]
        if paged:
            page = Page(generation, photos, min(len(photos), self.page_size), paged)
            photos = photos[: page.shown]
        if not self.model.set_results(photos, generation):
            return  # a newer search started meanwhile
        self._answer = (generation, description, found)
        if self.shown is not None and self.shown.kind == "similar" and self.query_photo.pixmap().isNull():
            self.model.loader.request(self.shown.value)  # showing the results dropped the request
        if paged:
            self._page = page
        if not weaker_too:  # the line under the box was said for this search already
            self._say_what_was_found(found, description)
        if photos:
            self.view.scrollToTop()
            self.view.setCurrentIndex(self.model.index(0, 0))
            self.view.selectionModel().clearSelection()
        elif not every:
            message = f"No photos found {escape(description)}."
            if self.photo_count == 0:
                message += " The library is empty: add a folder first."
            self._feedback.say(message)
            self.queryFailed.emit(message)
        if paged:
            self._set_page_header(description)
        else:
            self._set_header(
                len(photos),
                len(every) - len(photos),
                description,
                found.nearest_words,
                found.without,
                found.labels,
            )
        self.resultsShown.emit(len(photos))

    def show_more(self) -> None:
        """The next page of the library below the photos shown (the grid keeps its place)."""
        page = self._page
        if page is None or page.generation != self.model.generation or page.shown >= len(page.photos):
            return
        more = page.photos[page.shown : page.shown + self.page_size]
        if self.model.append_results(more, page.generation):
            page.shown += len(more)
            self._set_page_header("in the library")
            self.resultsShown.emit(self.model.rowCount())

    def _set_page_header(self, description: str) -> None:
        """ "1 407 photos in the library", or, while the grid holds only the first pages,
        "Show 407 more · The newest 1 000 of 1 407 photos in the library"."""
        page = self._page
        assert page is not None
        total = len(page.photos)
        if page.shown >= total:
            self._set_header(total, 0, description, [])
            return
        more = number(min(self.page_size, total - page.shown))
        which = "newest" if page.order == "date" else "first"
        text = f"The {which} {number(page.shown)} of {count(total, 'photo')} {description}"
        self.info.setText(f'<a href="more">Show {more} more</a> · {escape(text)}')
        self.info.setToolTip(f"{text}; “Show {more} more” adds the next ones")

    def _set_header(
        self,
        shown: int,
        hidden: int,
        description: str,
        nearest: list[str],
        without: Sequence[str] = (),
        labels: Sequence[str] = (),
    ) -> None:
        # the link first: a narrow window cuts the end of this line off, never the link
        weaker = f'<a href="weaker">Show {hidden} weaker</a> · ' if hidden else ""
        near = f" ≈ {', '.join(nearest)}" if nearest else ""
        lower = f" · {', '.join(without)} ranked lower" if without else ""
        named = f" · label {', '.join(labels)}" if labels else ""
        self.info.setText(f"{weaker}{count(shown, 'photo')} {escape(description + near + lower + named)}")
        self.info.setToolTip(f"{shown} photos {description}{near}{lower}{named}")
        if hidden and not shown:
            self.view.set_empty_message(
                "No good matches", "“Show weaker” above lists the nearest photos anyway."
            )
        else:
            self.view.set_empty_message("No photos found", "Try another word, or check the spelling.")

    def _say_what_was_found(self, found: SearchResult, description: str) -> None:
        """The line under the search box: words left out, no good matches, or nothing."""
        self._error_word = None
        if found.ignored_words or found.corrected:
            self._say_read_or_set_aside(found.corrected, found.ignored_words)
        elif found.hits and not found.good:
            near = found.nearest_words
            nearest = f" It comes nearest to {escape(', '.join(near))}." if near else ""
            self._feedback.say(f"No good matches {escape(description)}.{nearest}")
        elif found.hits:
            self._feedback.hush()

    def _say_read_or_set_aside(
        self, corrected: list[tuple[str, str]], ignored: list[tuple[str, list[str]]]
    ) -> None:
        """Under the box: the typos read as other words (with a link to search as
        typed), and the words left out (the first one's spellings are links)."""
        read = " ".join(
            f"Searched for “{escape(meant)}” instead of “{escape(typed)}”." for typed, meant in corrected
        )
        if corrected:
            read += f' <a href="{AS_TYPED_LINK}">Search as typed</a>.'
        if not ignored:
            self._feedback.say(read)
            return
        words = ", ".join(f"“{escape(word)}”" for word, _ in ignored)
        first, spellings = ignored[0]
        self._error_word = first
        verb = "is" if len(ignored) == 1 else "are"
        left_out = f"{words} {verb} not a word the model knows, so it was left out."
        self._feedback.say(f"{read} {left_out}".strip(), suggestions=spellings[:6])
        self.wordsSetAside.emit([word for word, _ in ignored])

    def show_weaker_matches(self) -> None:
        """Show the whole result list of the current search, weaker matches included."""
        if self._answer is not None and self._answer[0] == self.model.generation:
            self.show_results(*self._answer, weaker_too=True)

    def on_error(self, generation: int, exc: BaseException) -> None:
        if generation != self.model.generation:
            return
        self.info.setText("")
        if isinstance(exc, QueryError):
            self._error_word = exc.word
            self.model.clear()  # old results under the message read as its answer
            shown = exc.message if exc.suggestions else user_message(exc)  # the links offer them
            self._feedback.say(escape(shown), error=True, suggestions=exc.suggestions[:6])
            self.queryFailed.emit(user_message(exc))
            return
        self.queryFailed.emit(user_message(exc))
        self._feedback.show_error(exc)

    def update_empty_message(self) -> None:
        """Before any search: what the empty grid says, and examples to click above it."""
        if self.model.rowCount() or self.shown is not None:
            return
        photos = self.photo_count or 0
        if photos:
            links = ", ".join(f'<a href="search:{word}">{word}</a>' for word in EXAMPLES)
            self.info.setText(f"Try {links}…")
            hint = f"Type a word above to search {count(photos, 'photo')}, or click an example."
        else:
            self.info.setText("")
            hint = "Add a folder of photos to start."
        self.view.set_empty_message("What are you looking for?", hint)

    def _on_link(self, link: str) -> None:
        if link.startswith("search:"):
            self.search(link[len("search:") :])
        elif link == "more":
            self.show_more()
        else:
            self.show_weaker_matches()

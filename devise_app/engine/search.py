"""The one API the CLI and the GUI both call: a photo library and what to ask of it.

``Library`` opens its catalog, the image encoder and the vocabulary only when
first needed, so constructing one is free and ``describe`` works without a
library folder at all. It may be shared by the GUI thread and one worker thread:
the catalog and the search index guard themselves, and a lock here guards the
lazily made parts. Searches made while an index run is going use the search
index as it was (rebuilding it after every batch would be wasted work); the run
brings it up to date before its last progress item.

Results hold each content once: exact copies (the same bytes) are folded into
the best-ranked one, whose ``copies`` counts them. ``browse`` lists photos without
a query, and a ``care.PhotoFilter`` (folder, date range, label) narrows a browse
or a search. Library care (removing, excluding, rescanning, duplicates) lives in
``devise_app.engine.care``; the methods here are its typed face.

Errors meant for the user are typed and carry a one-line message:
``LibraryError`` (library, folders, photos, labels), ``QueryError`` (query text),
``ModelFileError`` (model files), ``ImageDecodeError`` (a photo that cannot be read).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from devise_app.engine import care, config, imaging, labels
from devise_app.engine.ann import VectorIndex
from devise_app.engine.catalog import Catalog, LibraryError
from devise_app.engine.indexer import IndexProgress, check_folders, index_folders

if TYPE_CHECKING:
    from devise_app.engine.check import CheckReport
    from devise_app.engine.learning import LearnedHead, LearnProgress
    from devise_app.engine.model import Head, ImageEncoder
    from devise_app.engine.query import QueryVector
    from devise_app.engine.vocabulary import Vocabulary

__all__ = [
    "DuplicateGroup", "Library", "LibraryError", "ModelInfo", "PhotoFilter", "PhotoInfo", "SearchHit",
    "SearchResult", "Suggestion", "describe_photo",
]  # fmt: skip
PhotoFilter = care.PhotoFilter
PhotoInfo = care.PhotoInfo
DuplicateGroup = care.DuplicateGroup

log = logging.getLogger("devise_app.search")
_LABEL_SCORE = 1.0
# The CNN features every model of this project shares (EfficientNet-Lite0's pooled
# features); a model with other features names them in its manifest ("features").
DEFAULT_FEATURES = "efficientnet-lite0 pooled 1280"
FEATURES_META_KEY = "features"
MAX_LABEL_LENGTH = 200  # longer names could be stored but not typed as a query (at most 1000 characters)
RERANKED_CANDIDATES = 1000  # a label search re-ranks this many of the index's nearest photos
_model_ids: dict[tuple[str, int, int], str] = {}  # (file, size, mtime_ns) -> digest, per process


@dataclass(frozen=True)
class SearchHit:
    photo_id: int
    path: Path
    score: float
    copies: int = 1  # photos of the library with exactly these bytes, this one included
    taken_at: float | None = None  # seconds since the epoch: EXIF date taken, else the file's mtime


@dataclass(frozen=True)
class SearchResult:
    """What a query found, the typos it read as known words ("read 'dgo' as 'dog'"),
    and the words it set aside (unknown to the model), each with close spellings, so
    a face can say "'xyzzy' was left out; did you mean ...?"."""

    hits: list[SearchHit]
    ignored_words: list[tuple[str, list[str]]] = field(default_factory=list)
    # the vocabulary entries nearest to an arithmetic query's vector ("king - man + woman" -> queen)
    nearest_words: list[str] = field(default_factory=list)
    # what the query asked not to see ("a kitchen with no people" -> people), ranked lower
    without: list[str] = field(default_factory=list)
    # the typos it read as known words, (typed, read as): ("dgo", "dog")
    corrected: list[tuple[str, str]] = field(default_factory=list)
    # the label names it read inside its text ("Grandma at the beach" -> Grandma)
    labels: list[str] = field(default_factory=list)

    graded: bool = True  # False: a ranking with no cut-off ("photos like this one")
    good_count: int | None = None  # set when the hits were put in another order than by score

    @property
    def good(self) -> int:
        """How many of the leading hits are good matches (devise_app.engine.relevance)."""
        from devise_app.engine.relevance import good_matches

        if self.good_count is not None:
            return self.good_count
        return good_matches([hit.score for hit in self.hits]) if self.graded else len(self.hits)


@dataclass(frozen=True)
class Suggestion:
    """A word for a photo (``describe``): a vocabulary word, or one of the library's labels."""

    text: str
    score: float
    is_label: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """What the status bar says about the model: its name and where it runs."""

    name: str
    provider: str  # the ONNX Runtime execution provider, e.g. "CPUExecutionProvider"
    provider_note: str  # why it runs there, when that is worth a line ("" otherwise)
    model_dir: Path


def _scores_of(hits: Sequence[SearchHit], ids: np.ndarray) -> np.ndarray:
    """The scores of ``hits`` in the order of ``ids`` (photo ids among them)."""
    score = {hit.photo_id: hit.score for hit in hits}
    return np.array([score[i] for i in ids.tolist()], dtype=np.float32)


def _rescored(hits: Sequence[SearchHit], ids: np.ndarray, scores: np.ndarray) -> list[SearchHit]:
    """``hits`` with the new ``scores`` of the photos ``ids`` (the others keep theirs), best first."""
    rescored = dict(zip(ids.tolist(), scores.tolist(), strict=True))
    ranked = [replace(hit, score=rescored[hit.photo_id]) if hit.photo_id in rescored else hit for hit in hits]
    return sorted(ranked, key=lambda hit: -hit.score)


def _sole_label(query: str) -> str | None:
    """The NAME of a query that is just ``label:NAME``, else None (QueryError if malformed)."""
    from devise_app.engine.query import Label, Sum, parse

    node = parse(query)
    if (
        isinstance(node, Sum)
        and len(node.terms) == 1
        and node.terms[0][0] > 0
        and isinstance(node.terms[0][1], Label)
    ):
        return node.terms[0][1].name
    return None


def _prefixed_label(text: str) -> tuple[str, bool] | None:
    """NAME of ``label:NAME`` or ``label:"NAME"`` taken whole with no parsing, so
    that any label name (``label:C++``, ``label:Mom & Dad``) can be looked up as it
    is; and whether the query can only mean that label (NAME quoted, or with no
    spaces: ``label:Grandma + beach`` may be arithmetic)."""
    if not text.lower().startswith("label:"):
        return None
    name = text[len("label:") :].strip()
    if len(name) >= 2 and name[0] == name[-1] == '"' and '"' not in name[1:-1]:
        name = name[1:-1].strip()
        return (name, True) if name else None
    return (name, not any(char.isspace() for char in name)) if name else None


def model_identity(model_dir: Path) -> str:
    """A fingerprint of the model files that decide the image vectors (the ONNX
    graph and the head), so that vectors from another model are never mixed in."""
    from devise_app.engine.model import HEAD_FILE, ONNX_FILE, ModelFileError

    digest = hashlib.blake2b(digest_size=12)
    for name in (ONNX_FILE, HEAD_FILE):
        path = model_dir / name
        try:
            st = path.stat()
        except OSError:
            raise ModelFileError(f"model file {path} is missing") from None
        key = (os.fspath(path), st.st_size, st.st_mtime_ns)
        if key not in _model_ids:
            with path.open("rb") as file:
                _model_ids[key] = hashlib.file_digest(file, "blake2b").hexdigest()
        digest.update(_model_ids[key].encode())
    return digest.hexdigest()


def _embed_photo(encoder: ImageEncoder, photo: Path) -> np.ndarray:
    if not photo.is_file():
        raise LibraryError(f"no such photo: {photo}")
    pixels = imaging.load_model_input(photo)
    return np.asarray(encoder.embed(pixels[None]).vectors[0], dtype=np.float32)


def describe_photo(
    photo: Path, top: int = 10, encoder: ImageEncoder | None = None, vocabulary: Vocabulary | None = None
) -> list[Suggestion]:
    """The vocabulary words nearest to a photo's vector; needs no library."""
    return Library(encoder=encoder, vocabulary=vocabulary, create=False).describe(photo, top)


class Library:
    """A photo library: a folder with the catalog and the search index."""

    def __init__(
        self,
        path: Path | None = None,
        encoder: ImageEncoder | None = None,
        vocabulary: Vocabulary | None = None,
        *,
        create: bool = True,
    ) -> None:
        """``create=False`` makes using a library that does not exist yet an error
        (for commands that only read) instead of creating an empty one."""
        self.path = Path(path) if path is not None else config.default_library_dir()
        self._create = create
        self._encoder = encoder
        self._vocabulary = vocabulary
        self._catalog: Catalog | None = None
        self._vectors: VectorIndex | None = None
        self._learned: LearnedHead | bool | None = False  # False: not loaded yet
        self._shipped: Head | None = None
        self._runs = 0  # index runs in progress
        self._lock = threading.RLock()  # guards the catalog, the search index and _runs
        self._model_lock = threading.Lock()  # guards loading the model files (slow)

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- lazily loaded parts ----------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        with self._lock:
            if self._catalog is None:
                self._catalog = Catalog.open(self.path, create=self._create)
                labels.settle_head(self._catalog, self.path)  # finish or undo a learn a crash interrupted
            return self._catalog

    @property
    def encoder(self) -> ImageEncoder:
        with self._model_lock:
            if self._encoder is None:
                from devise_app.engine.model import ImageEncoder

                self._encoder = ImageEncoder()
            return self._encoder

    @property
    def vocabulary(self) -> Vocabulary:
        with self._model_lock:
            if self._vocabulary is None:
                from devise_app.engine.vocabulary import Vocabulary

                self._vocabulary = Vocabulary.load()
            return self._vocabulary

    def _shipped_head(self) -> Head:
        """The model's own head, without starting an inference session when none is loaded."""
        if self._encoder is not None:
            return self._encoder.head
        if self._shipped is None:
            from devise_app.engine.model import HEAD_FILE, Head

            self._shipped = Head.load(self._model_dir() / HEAD_FILE)
        return self._shipped

    def shipped_projection(self) -> Callable[[np.ndarray], np.ndarray]:
        """Features -> vectors by the model's own head (numpy; no inference session)."""
        return self._shipped_head().project

    def _learned_head(self) -> LearnedHead | None:
        """The library's own head (learned from its labels), if it has one."""
        from devise_app.engine.learning import LearnedHead

        with self._model_lock:
            if self._learned is False:
                self._learned = labels.load_learned(self.path)
            return self._learned if isinstance(self._learned, LearnedHead) else None

    def _photo_encoder(self) -> ImageEncoder:
        """The encoder for new photos: the shipped CNN with this library's head."""
        learned = self._learned_head()
        return labels.with_head(self.encoder, learned) if learned else self.encoder

    def _vector_index(self) -> VectorIndex:
        with self._lock:
            if self._vectors is None:
                self._adopt_current_model()
                self._vectors = VectorIndex(self.path, self.catalog)
            return self._vectors

    def _model_dir(self) -> Path:
        return self._encoder.model_dir if self._encoder is not None else config.models_dir()

    def _adopt_current_model(self) -> bool:
        """A library indexed with an earlier model (an app update): re-project its stored
        CNN features with the current model's head, in one transaction, so its vectors
        have the current model's size and meaning without decoding a photo again (the
        old vectors made every search fail: "Vector has wrong length"). A head learned
        for the old model cannot serve the new one: it is kept aside, renamed, and the
        labels stay to learn from again. True if the library was re-projected."""
        from devise_app.engine.model import HEAD_FILE, Head, read_manifest

        catalog = self.catalog
        stored = catalog.get_meta("model_id")
        current = self._model_id()
        if stored is None or stored == current:
            return False
        model_dir = self._model_dir()
        features = str(read_manifest(model_dir).get("features", DEFAULT_FEATURES))
        if (catalog.get_meta(FEATURES_META_KEY) or DEFAULT_FEATURES) != features:
            return False  # other CNN features: the next index run embeds every photo again
        head = Head.load(model_dir / HEAD_FILE)
        with labels.learn_lock(self.path):
            learned = labels.head_path(self.path)
            if learned.exists():
                os.replace(learned, learned.with_name(f"learned_head.model-{stored[:12]}.npz"))
            with catalog.transaction():
                ids, stored_features = catalog.features()
                if len(ids):
                    catalog.set_vectors(ids, head.project(stored_features), head=labels.SHIPPED_HEAD)
                catalog.set_meta(labels.HEAD_META_KEY, labels.SHIPPED_HEAD)
                catalog.set_meta("model_id", current)
                catalog.set_meta(FEATURES_META_KEY, features)
        with self._model_lock:
            self._learned = False
        log.info("library re-projected for model %s: %d photos", current, len(ids))
        return True

    def _model_id(self) -> str:
        model_id = getattr(self._encoder, "model_id", None)  # an encoder may name its model itself
        if isinstance(model_id, str):
            return model_id
        model_dir = self._encoder.model_dir if self._encoder is not None else config.models_dir()
        return model_identity(model_dir)

    # -- indexing ---------------------------------------------------------------

    def index(
        self,
        folders: Sequence[Path],
        cancel: threading.Event | None = None,
        batch_size: int | None = None,
    ) -> Generator[IndexProgress, None, None]:
        """Bring the library up to date with ``folders``; see ``devise_app.engine.indexer``.

        Checks the folders at once (LibraryError), then returns the progress
        generator (``close()`` it to stop early). The search index is brought up
        to date before the last item (``finished`` True, with the summary).
        """
        roots = check_folders(folders)
        catalog = self.catalog
        catalog.add_folders(map(str, roots))  # the library's folders, for rescan and watching
        for root in roots:  # a folder asked for by name is wanted, even if it was excluded
            catalog.include(str(root))
        model_id = self._model_id()
        self._adopt_current_model()  # an app update's new head: re-project rather than re-embed
        catalog.requeue_damaged()  # a damaged stored vector is embedded again by this run
        labels.reconcile(
            catalog, self.path, self.shipped_projection
        )  # after a crash in the middle of learning

        def run() -> Generator[IndexProgress, None, None]:
            with self._lock:
                self._runs += 1
            try:
                headed = labels.current_head(catalog, self.path, self.shipped_projection)
                for progress in index_folders(
                    catalog, roots, self._photo_encoder, model_id, cancel, batch_size, headed_vectors=headed
                ):
                    if progress.finished:
                        self._vector_index().ensure_current()
                    yield progress
            finally:
                with self._lock:
                    self._runs -= 1

        return run()

    def model_info(self) -> ModelInfo:
        """The image model's name and where it runs (loads the model if needed)."""
        encoder = self.encoder
        return ModelInfo(encoder.name, encoder.provider, encoder.provider_note, encoder.model_dir)

    def head_in_use(self) -> str:
        """A fingerprint of the head the stored vectors come from ("shipped" before any learning)."""
        return labels.stored_fingerprint(self.catalog)

    def last_learned_at(self) -> float | None:
        """When the library's own head was last learned (seconds since the epoch), if ever."""
        try:
            return labels.head_path(self.path).stat().st_mtime
        except OSError:
            return None

    def photo_count(self) -> int:
        return self.catalog.photo_count()

    def last_indexed_at(self) -> float | None:
        """When the last complete index run ended (seconds since the epoch)."""
        value = self.catalog.get_meta("last_indexed_at")
        return None if value is None else float(value)

    def problems(self) -> list[tuple[Path, str]]:
        """Files that could not be indexed, with the reason."""
        return [(Path(path), reason) for path, reason in self.catalog.errors()]

    # -- searching --------------------------------------------------------------

    def search(self, query: str, top: int = 20, filters: care.PhotoFilter | None = None) -> list[SearchHit]:
        """Photos matching a query, best first; ``find`` also says what the query set aside."""
        return self.find(query, top, filters).hits

    def find(
        self, query: str, top: int = 20, filters: care.PhotoFilter | None = None, read_typos: bool = True
    ) -> SearchResult:
        """Photos matching a query, best first, the typos it read as known words (none
        with ``read_typos`` False) and the words it set aside. Raises
        QueryError for a query that cannot be answered (nothing usable in it, an
        unknown label). ``filters`` keeps only the photos it admits (LibraryError
        for an unknown label in it).

        A query that is exactly a label's name (whatever characters it holds:
        ``C++``, ``Mom & Dad``) is looked up before any parsing and answered by
        ``search_label``. A query that is just ``label:NAME`` lists the photos
        carrying that label (score 1.0). Anything else is turned into a vector by
        the query language, ``label:NAME`` standing for the label's vector.
        """
        from devise_app.engine.query import check_text, embed_query

        check_text(query)
        allowed = care.allowed_ids(self.catalog, filters)
        if allowed is not None:
            return self._filtered_search(query, top, allowed, read_typos)
        text = query.strip()
        if self.catalog.label_id(text) is not None:
            return self._label_result(text, top)
        prefixed = _prefixed_label(text)
        if prefixed is not None:
            prefixed_name, only_label = prefixed
            if only_label or self.catalog.label_id(prefixed_name) is not None:
                return SearchResult(self.label_photos(prefixed_name, top))  # QueryError if unknown
        name = _sole_label(query)
        if name is not None:
            return SearchResult(self._labelled_hits(name, top))
        labels = self.catalog.labels_in_use()
        embedded = embed_query(query, self.vocabulary, self._label_vector, read_typos, labels)
        if embedded.concepts or embedded.avoided or embedded.feedback:
            hits = self._reranked(embedded, top)
        else:
            hits = self._nearest(embedded.vector, top)
        return SearchResult(
            hits,
            embedded.ignored_words,
            list(embedded.nearest_words),
            without=list(embedded.avoided_words),
            corrected=list(embedded.corrected_words),
            labels=list(embedded.labels),
        )

    def _reranked(self, embedded: QueryVector, top: int) -> list[SearchHit]:
        """The index's nearest photos re-ranked by the classifier's evidence for the
        concepts the query names (devise_app.engine.concepts) and, where the query asks
        for it, by the look of its best photos (``visual.with_feedback``)."""
        from devise_app.engine.concepts import class_probabilities
        from devise_app.engine.visual import ranked_scores

        nearest = self._nearest(embedded.vector, max(top, RERANKED_CANDIDATES))
        # beyond the first RERANKED_CANDIDATES (a filter asking for many) the cosine order stands
        candidates, rest = nearest[:RERANKED_CANDIDATES], nearest[RERANKED_CANDIDATES:]
        ids, features = self.catalog.features(hit.photo_id for hit in candidates)
        if len(ids) < 2:
            return nearest[:top]
        # learning leaves the classifier (fc) as shipped
        probabilities = class_probabilities(features, self._shipped_head())
        scores = ranked_scores(embedded, _scores_of(candidates, ids), probabilities, features)
        return (_rescored(candidates, ids, scores) + rest)[:top]

    def _filtered_search(
        self, query: str, top: int, allowed: frozenset[int], read_typos: bool = True
    ) -> SearchResult:
        """``find`` among ``allowed`` photos: the unfiltered ranking, asked for more
        until enough of it passes (or all of it was seen)."""
        total = self.catalog.photo_count()
        want = top
        while True:
            found = self.find(query, want, read_typos=read_typos)
            hits = self._admitted(found.hits, allowed)
            if len(hits) >= top or want >= total:
                return SearchResult(
                    hits[:top],
                    found.ignored_words,
                    found.nearest_words,
                    without=found.without,
                    corrected=found.corrected,
                    labels=found.labels,
                )
            want = min(total, want * 4)

    def _admitted(self, hits: list[SearchHit], allowed: frozenset[int]) -> list[SearchHit]:
        """The hits a filter admits. A hit standing for exact copies is admitted through
        a copy that the filter admits, shown in its place."""
        kept = []
        for hit in hits:
            if hit.photo_id in allowed:
                kept.append(hit)
            elif hit.copies > 1:
                copy = care.admitted_copy(self.catalog, hit.photo_id, allowed)
                if copy is not None:
                    kept.append(SearchHit(copy.id, Path(copy.path), hit.score, copy.copies, copy.taken_at))
        return kept

    def browse(
        self,
        sort: str = "date",
        filters: care.PhotoFilter | None = None,
        top: int | None = None,
        *,
        folder: Path | None = None,
        since: float | None = None,
        until: float | None = None,
        label: str | None = None,
    ) -> list[care.PhotoInfo]:
        """The library's photos without a query, each content once (``copies`` counts
        exact copies): ``sort="date"``, newest taken first, or ``"name"``, by path.
        ``filters`` or the keywords (folder, taken since/until, label) narrow it."""
        if filters is None:
            filters = care.PhotoFilter(folder, since, until, label)
        return care.browse(self.catalog, sort, filters, top)

    def search_label(self, name: str, top: int = 20) -> list[SearchHit]:
        """The photos carrying label ``name`` (score 1.0), then the other photos most
        like them: the search index's nearest to the label's vector, re-ranked by
        how much they look like the labelled photos (devise_app.engine.visual).
        QueryError if there is no such label."""
        hits, _ = self._label_hits(name, top)
        return hits

    def _label_hits(self, name: str, top: int) -> tuple[list[SearchHit], int]:
        """``search_label``'s hits, and how many of them carry the label."""
        labelled = self._labelled_hits(name, top)
        if len(labelled) >= top or not labelled:
            return labelled, len(labelled)
        exclude = frozenset(hit.photo_id for hit in labelled)
        wanted = top - len(labelled)
        vector = self._label_vector(name)
        candidates = self._nearest(vector, max(wanted, RERANKED_CANDIDATES), exclude)
        return labelled + self._rerank_visually(name, vector, candidates)[:wanted], len(labelled)

    def _label_result(self, name: str, top: int) -> SearchResult:
        """``search_label`` graded: the photos carrying the label are good matches, and
        the cut-off among the others is taken from the best of them (their scores mix
        cosines with the shared concept and the look, so the labelled photos' 1.0 is
        no yardstick for them)."""
        from devise_app.engine.relevance import good_matches

        hits, labelled = self._label_hits(name, top)
        return SearchResult(hits, good_count=labelled + good_matches([hit.score for hit in hits[labelled:]]))

    def _rerank_visually(self, name: str, vector: np.ndarray, candidates: list[SearchHit]) -> list[SearchHit]:
        """``candidates`` (their scores: cosines to the label's ``vector``) re-ranked as
        a label search ranks them (devise_app.engine.visual.label_scores)."""
        from devise_app.engine.query import mentioned_concepts
        from devise_app.engine.visual import label_scores

        label_id = self._label_id_for_query(name)
        own_ids = [i for i, _ in self.catalog.photos_with_labels([label_id])]
        _, own = self.catalog.features(own_ids)
        ids, features = self.catalog.features(hit.photo_id for hit in candidates)
        if not len(own) or not len(ids):
            return candidates
        scores = label_scores(
            _scores_of(candidates, ids),
            own,
            features,
            self._shipped_head(),  # learning leaves the classifier (fc) as shipped
            self.vocabulary,
            mentioned_concepts(name, self.vocabulary),  # read as text, never parsed as a query
            self.catalog.vectors_of(own_ids) @ vector,
        )
        return _rescored(candidates, ids, scores)

    def label_photos(self, name: str, top: int = 20) -> list[SearchHit]:
        """Just the photos carrying label ``name`` (score 1.0), by path; what
        ``label:NAME`` finds. QueryError if there is no such label."""
        return self._labelled_hits(name, top)

    def photo_labels(self) -> dict[Path, list[str]]:
        """Every labelled indexed photo and the names of its labels (for the grid's chips)."""
        return {Path(path): names for path, names in self.catalog.label_assignments().items()}

    def _labelled_hits(self, name: str, top: int) -> list[SearchHit]:
        photos = self.catalog.photos_with_labels([self._label_id_for_query(name)])[:top]
        return [SearchHit(photo_id, Path(path), _LABEL_SCORE) for photo_id, path in photos]

    def _label_vector(self, name: str) -> np.ndarray:
        """What ``label:NAME`` stands for: the vector learned for it, else the mean of its photos."""
        from devise_app.engine.query import QueryError

        label_id = self._label_id_for_query(name)
        learned = self._learned_head()
        vector = learned.label_vector(name) if learned else None
        if vector is not None:
            return vector
        ids = [photo_id for photo_id, _ in self.catalog.photos_with_labels([label_id])]
        vectors = self.catalog.vectors_of(ids)
        if not len(vectors):
            raise QueryError(f"label:{name} has no indexed photos yet.")
        mean = vectors.mean(axis=0)
        return np.asarray(mean / max(float(np.linalg.norm(mean)), 1e-12), dtype=np.float32)

    def _label_id_for_query(self, name: str) -> int:
        """The id of label ``name``; else QueryError suggesting the library's label names
        close to it, case aside: names that start with it, names it misspells, and names
        whose start it misspells (``Goood`` for ``Good dogs``)."""
        from devise_app.engine.query import QueryError, label_query

        label_id = self.catalog.label_id(name)
        if label_id is None:
            known = {label.casefold(): label for label, _ in reversed(self.catalog.labels())}
            typed = name.strip().casefold()

            def closeness(folded: str) -> float:
                if typed and folded.startswith(typed):
                    return 1.0
                whole = difflib.SequenceMatcher(None, typed, folded).ratio()
                start = difflib.SequenceMatcher(None, typed, folded[: len(typed)]).ratio()
                if len(typed) < 3:
                    start = 0.0
                return max(whole if whole >= 0.6 else 0.0, start if start >= 0.75 else 0.0)

            scored = sorted((-closeness(folded), folded) for folded in known)
            close = [folded for score, folded in scored if score < 0][:5]
            raise QueryError(f"No label named {name!r}.", [label_query(known[folded]) for folded in close])
        return label_id

    def _nearest(
        self, vector: np.ndarray, top: int, exclude: frozenset[int] = frozenset()
    ) -> list[SearchHit]:
        """The ``top`` photos nearest to ``vector``, each content once: the index is
        asked for more while exact copies fold the list below ``top`` (until it has
        no more to give)."""
        want = top + len(exclude)
        while True:
            # While an index run is going, search the index as it was; the run updates it at its end.
            pairs = self._vector_index().search(vector, want, allow_stale=self._runs > 0)
            hits = self._hits([(i, score) for i, score in pairs if i not in exclude])
            if len(hits) >= top or len(pairs) < want:
                return hits[:top]
            want *= 2

    def _hits(self, pairs: Sequence[tuple[int, float]]) -> list[SearchHit]:
        """Ranked (id, score) pairs as hits, exact copies folded into the best-ranked one."""
        return [
            SearchHit(row.id, Path(row.path), score, row.copies, row.taken_at)
            for row, score in care.collapse(self.catalog, pairs)
        ]

    def similar(self, photo: Path, top: int = 20) -> list[SearchHit]:
        """Photos like ``photo``: its stored vector if it is in the library (and
        then not itself among the results), else the vector of the file."""
        stored = self._stored_vector(photo)
        if stored is not None:
            photo_id, vector = stored
            return self._nearest(vector, top, frozenset({photo_id}))
        return self._nearest(_embed_photo(self._photo_encoder(), Path(photo)), top)

    def _stored_vector(self, photo: Path) -> tuple[int, np.ndarray] | None:
        for path in _catalog_paths(photo):
            stored = self.catalog.vector_of(path)
            if stored is not None:
                return stored
        return None

    def describe(self, photo: Path, top: int = 10) -> list[Suggestion]:
        """Suggested labels for a photo: in an existing library, its own labels that fit
        the photo about as well as they fit their own photos (``is_label``), then
        the nearest vocabulary words."""
        stored = self._stored_vector(photo) if self._library_exists() else None
        vector = stored[1] if stored else _embed_photo(self._photo_encoder(), Path(photo))
        fitting = self._fitting_labels(vector) if self._library_exists() else []
        words = [Suggestion(word, score) for word, score in self.vocabulary.nearest(vector, k=top)]
        return (fitting + words)[:top]

    def _fitting_labels(self, vector: np.ndarray) -> list[Suggestion]:
        fitting = []
        for name, count in self.catalog.labels():
            if not count:
                continue
            label_vector = self._label_vector(name)
            label_id = self.catalog.label_id(name)
            own = self.catalog.vectors_of(i for i, _ in self.catalog.photos_with_labels([label_id or 0]))
            score = float(label_vector @ vector)
            if len(own) and score >= 0.9 * float((own @ label_vector).min()):
                fitting.append(Suggestion(name, score, is_label=True))
        return sorted(fitting, key=lambda suggestion: -suggestion.score)

    def _library_exists(self) -> bool:
        return self._catalog is not None or (self.path / "catalog.sqlite").exists()

    # -- learning from labels -----------------------------------------------------

    def learn(self, cancel: threading.Event | None = None) -> Generator[LearnProgress, None, None]:
        """Teach the library's own head from its labels (devise_app.engine.learning), then
        re-project every photo and rebuild the search index. A generator of
        progress; cancelling (the event, or closing it) leaves the library as it was.
        Raises LibraryError when no photo carries a label.
        """
        labelled = labels.labelled_features(self.catalog)
        if not labelled:
            raise LibraryError("no labelled photos to learn from: label some photos first")
        return self._learn(labelled, cancel)

    def _learn(
        self, labelled: dict[str, np.ndarray], cancel: threading.Event | None
    ) -> Generator[LearnProgress, None, None]:
        steps = labels.learn_library(self.catalog, self.path, self.encoder, self.vocabulary, labelled, cancel)
        for progress in steps:
            if progress.finished:
                with self._model_lock:
                    self._learned = progress.result
                self._vector_index().ensure_current()
            yield progress

    def export_labels(self) -> dict[str, object]:
        """Every label and the paths of its photos, ready for JSON."""
        return labels.export_labels(self.catalog)

    def export_labels_to(self, path: Path) -> tuple[int, int]:
        """Write ``export_labels`` to ``path`` as JSON, atomically (a failed write
        leaves the previous file whole): (labels, photos) written."""
        document = labels.export_labels(self.catalog)
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        path = Path(path)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with temporary.open("w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        named = document["labels"]
        return len(named), len({photo for photos in named.values() for photo in photos})

    def import_labels(self, text: str | bytes) -> tuple[int, list[str]]:
        """Apply an exported labels document: (labels applied, paths not in this library)."""
        try:
            document = labels.parse_labels(text)
        except ValueError as exc:
            raise LibraryError(str(exc)) from None
        # every name checked before anything changes, then one transaction: a bad name
        # in the middle of a file applied the first half of it
        checked = {_check_label_name(name): paths for name, paths in document.items()}
        missing: list[str] = []
        with self.catalog.transaction():
            for name, paths in checked.items():
                ids = {path: self.catalog.photo_id(path) for path in dict.fromkeys(paths)}  # each path once
                missing += [path for path, photo_id in ids.items() if photo_id is None]
                found = [photo_id for photo_id in ids.values() if photo_id is not None]
                self.catalog.add_label(self.catalog.create_label(name), found)
        return len(document), missing

    # -- labels -------------------------------------------------------------------

    def create_label(self, name: str) -> None:
        self.catalog.create_label(_check_label_name(name))

    def rename_label(self, name: str, new_name: str) -> None:
        """Rename a label; its photos keep it. LibraryError for an unknown label, a bad
        new name or one another label has. (What was learned for it is learned under
        the old name: learning again takes the new one.)"""
        import sqlite3

        new_name = _check_label_name(new_name)
        try:
            renamed = self.catalog.rename_label(name.strip(), new_name)
        except sqlite3.IntegrityError:
            raise LibraryError(f"there is already a label named '{new_name}'") from None
        if not renamed:
            raise LibraryError(f"no label named '{name}'")

    def delete_label(self, name: str) -> None:
        if not self.catalog.delete_label(name.strip()):
            raise LibraryError(f"no label named '{name}'")

    def add_label(self, name: str, photos: Sequence[Path]) -> None:
        """Put label ``name`` (created if new) on photos of the library."""
        photo_ids = self._photo_ids(photos)
        self.catalog.add_label(self.catalog.create_label(_check_label_name(name)), photo_ids)

    def remove_label(self, name: str, photos: Sequence[Path]) -> None:
        label_id = self.catalog.label_id(name.strip())
        if label_id is None:
            raise LibraryError(f"no label named '{name}'")
        self.catalog.remove_label(label_id, self._photo_ids(photos))

    def labels(self) -> list[tuple[str, int]]:
        """Every label with the number of photos carrying it."""
        return self.catalog.labels()

    def labels_of(self, photo: Path) -> list[str]:
        return self.catalog.labels_of(self._photo_ids([photo])[0])

    def _photo_ids(self, photos: Sequence[Path]) -> list[int]:
        ids = []
        for photo in photos:
            for path in _catalog_paths(photo):
                photo_id = self.catalog.photo_id(path)
                if photo_id is not None:
                    ids.append(photo_id)
                    break
            else:
                raise LibraryError(f"not a photo of the library: {photo}")
        return ids

    # -- library care (devise_app.engine.care) -------------------------------------

    def folders(self) -> list[Path]:
        """The folders the library indexes (for a library made before they were
        recorded: the top-most folders holding its photos)."""
        return care.known_folders(self.catalog)

    def excluded(self) -> list[Path]:
        """Folders and files kept out of the library."""
        return [Path(path) for path in self.catalog.excluded()]

    def rescan(
        self, cancel: threading.Event | None = None, batch_size: int | None = None
    ) -> Generator[IndexProgress, None, None]:
        """``index`` over all the library's folders that are there now (a folder on
        a disk that is not mounted keeps its photos); LibraryError if none is."""
        care.backfill_dates(self.catalog)
        present = [folder for folder in self.folders() if folder.is_dir()]
        if not present:
            raise LibraryError("none of the library's folders is there to rescan")
        return self.index(present, cancel, batch_size)

    def remove_photos(self, photos: Sequence[Path], trash: bool = False) -> int:
        """Take photos out of the library, and later scans (``trash``: move the files
        to the system trash instead); how many were removed."""
        return care.remove_photos(self.catalog, photos, trash)

    def remove_folder(self, folder: Path, trash: bool = False) -> int:
        """Take a folder and its photos out of the library (``trash``: move it to the
        system trash too); how many photos were removed."""
        return care.remove_folder(self.catalog, folder, trash)

    def exclude_folder(self, folder: Path) -> int:
        """Keep a folder (say, a sub-folder of an indexed one) out of the library;
        its photos are removed (how many)."""
        return care.exclude_folder(self.catalog, folder)

    def include(self, path: Path) -> None:
        """Let an excluded folder or file back in: the next rescan indexes it."""
        care.include(self.catalog, path)

    def duplicates(self, near: bool = True) -> list[care.DuplicateGroup]:
        """Exact copies (the same bytes), then near-duplicates (re-saved, resized or
        cropped copies: alike CNN features), each a group."""
        return care.duplicates(self.catalog, near)

    def check(self, repair: bool = False) -> CheckReport:
        """Look for damage in every part of the library; with ``repair``, mend what
        can be mended (see devise_app.engine.check)."""
        from devise_app.engine.check import check_library

        with self._lock:
            vectors = self._vector_index()
            report = check_library(self.catalog, self.path, self._shipped_head(), vectors, repair)
        with self._model_lock:
            self._learned = False  # a damaged head may have been set aside
        return report

    def close(self) -> None:
        with self._lock:
            if self._vectors is not None:
                self._vectors.close()
                self._vectors = None
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None


def _catalog_paths(photo: Path) -> list[str]:
    """The paths a photo may be catalogued under: as given (made absolute), and
    with symlinks resolved (the indexer resolves the folders it is given)."""
    return list(dict.fromkeys((os.path.abspath(photo), os.path.realpath(photo))))


def _check_label_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise LibraryError("a label needs a name")
    if len(name) > MAX_LABEL_LENGTH:
        raise LibraryError(f"a label name has at most {MAX_LABEL_LENGTH} characters, not {len(name)}")
    if '"' in name or any(not char.isprintable() for char in name):
        raise LibraryError(f"a label name cannot contain quotes or control characters: {name!r}")
    return name

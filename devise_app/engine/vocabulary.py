"""Words and labels in the model's space (``models/vocabulary.npz``, format 2).

The word space is the text encoder's (``devise_app.engine.text``: all-MiniLM-L6-v2),
projected onto the span of the 1000 label texts (``text_mean``, ``text_projection``)
and renormalised: ``word_dim`` dimensions. In the full space a text is that vector
followed by zeros in the label-code part. The file holds:

- ``known_words``: every word the model knows (WordNet 3.0's lemmas and their
  irregular forms, and GloVe 6B's 100k most frequent words), most frequent first.
  Any text can be embedded; a query word outside this list is a likely typo, read
  as the likeliest frequent word near it (``devise_app.engine.spelling``) or set
  aside (``devise_app.engine.query``).
- ``words`` / ``word_vectors``: the describe words (frequent nouns and adjectives)
  with their vectors, int8 with one scale per row, for "words for this photo"
  and the nearest words of a query.
- the 1000 ImageNet class labels ("great white shark", "tabby cat", ...), whose
  vectors have both parts, with their WordNet aliases. A class name shadows
  other readings of the same text, since the class vector is that text made precise.
- ``concepts``: every WordNet noun with ImageNet classes at or below it ("dog",
  "fruit", "vehicle") and those classes. A query naming a concept is mixed with
  the mean vector of its classes (``concept_vector``).
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from devise_app.engine import config
from devise_app.engine.model import REBUILD_HINT, ModelFileError, read_manifest
from devise_app.engine.spelling import Speller

if TYPE_CHECKING:
    from devise_app.engine.text import TextEncoder

VOCABULARY_FILE = "vocabulary.npz"
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")  # a word of a query or a name
# A concept query: this share of its own text vector, the rest from the mean of the
# vectors of the ImageNet classes below it (chosen on pseudo-validation and the COCO
# development set, see models/MODEL_CARD.md).
CONCEPT_TEXT_WEIGHT = 0.5


def fold(text: str) -> str:
    """Lower case with compatibility forms and accents folded, as the text encoder's
    own normaliser folds them ("Café" -> "cafe", "naïve" -> "naive", "ﬁsh" -> "fish"):
    the key every lookup of a word, name or phrase uses."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _lines(array: np.ndarray) -> list[str]:
    return bytes(array).decode("utf-8").split("\n") if array.size else []


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def concept_vector(text_vector: np.ndarray, member_vectors: np.ndarray) -> np.ndarray:
    """A concept's query vector: its text (full space, zero code part) mixed with the
    normalised mean of the full vectors of the classes below it."""
    members = _unit(member_vectors.mean(axis=0))
    return _unit(CONCEPT_TEXT_WEIGHT * _unit(text_vector) + (1 - CONCEPT_TEXT_WEIGHT) * members)


# common English plurals no suffix rule undoes
IRREGULAR_PLURALS = {
    "men": "man", "women": "woman", "children": "child", "mice": "mouse", "geese": "goose",
    "feet": "foot", "teeth": "tooth", "oxen": "ox", "knives": "knife", "wives": "wife",
    "leaves": "leaf", "loaves": "loaf", "shelves": "shelf", "wolves": "wolf", "calves": "calf",
    "halves": "half", "lives": "life", "scarves": "scarf", "policemen": "policeman",
    "firemen": "fireman", "businessmen": "businessman", "fishermen": "fisherman",
}  # fmt: skip


def plural_bases(word: str) -> Iterator[str]:
    """The word and the singulars it may be the plural or possessive of (dogs -> dog,
    berries -> berry, children -> child)."""
    yield word
    if word in IRREGULAR_PLURALS:
        yield IRREGULAR_PLURALS[word]
    if word.endswith(("'s", "’s")):
        yield word[:-2]
    if len(word) > 3 and word.endswith("ies"):
        yield word[:-3] + "y"
    if len(word) > 3 and word.endswith("es"):
        yield word[:-2]
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        yield word[:-1]


def base_forms(word: str) -> Iterator[str]:
    """``plural_bases``, then the stems of an -ing or -ed verb form (skiing -> ski,
    baked -> bake, shopping -> shop)."""
    yield from plural_bases(word)
    for ending, longer_than in (("ing", 4), ("ed", 3)):
        if len(word) > longer_than and word.endswith(ending):
            stem = word[: -len(ending)]
            yield stem
            yield stem + "e" if ending == "ing" else word[:-1]
            if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] in "bdgmnprt":
                yield stem[:-1]  # a doubled last consonant: shopping, sledding


class Vocabulary:
    def __init__(
        self,
        words: list[str],
        word_vectors: np.ndarray,
        class_names: list[str],
        class_vectors: np.ndarray,
        aliases: dict[str, int],
        known_words: list[str] | None = None,
        concepts: dict[str, list[int]] | None = None,
        text_mean: np.ndarray | None = None,
        text_projection: np.ndarray | None = None,
        model_dir: Path | None = None,
        people_words: list[str] | None = None,
        people_classes: list[int] | None = None,
        mentioning_classes: dict[str, tuple[int, ...]] | None = None,
        usual_sense_names: list[str] | None = None,
        compound_nouns: list[str] | None = None,
        verb_nouns: list[str] | None = None,
        definition_words: list[str] | None = None,
    ):
        self.words = words
        self.word_dim = word_vectors.shape[1]
        self.dim = class_vectors.shape[1]
        self._word_vectors = word_vectors  # (W, word_dim) unit rows
        self._word_index = {fold(w): i for i, w in enumerate(words)}
        self.class_names = class_names
        self.class_vectors = class_vectors  # (C, dim) unit rows
        self._class_index = {fold(name): i for i, name in enumerate(class_names)}
        for alias, index in aliases.items():
            self._class_index.setdefault(fold(alias), index)
        for name in usual_sense_names or ():  # "plane" means airliners; "carpenter's plane" the class
            self._class_index.pop(name, None)
        self.known_words = known_words if known_words is not None else list(words)
        self._known_rank = {fold(w): i for i, w in enumerate(self.known_words)}
        self._concepts = concepts or {}
        self._people_words = frozenset(people_words or ())
        self.people_classes = tuple(people_classes or ())
        self._mentioning_classes = mentioning_classes or {}
        self._compound_nouns = frozenset(compound_nouns or ())
        self._verb_nouns = None if verb_nouns is None else frozenset(verb_nouns)
        self._definition_lines = definition_words or []
        self._text_mean = text_mean
        self._text_projection = text_projection
        self.model_dir = model_dir
        self._encoder: TextEncoder | None = None
        self._encoder_lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path | None = None) -> Vocabulary:
        """The vocabulary of the model in ``model_dir``; ModelFileError if it is
        missing, damaged or of another model (its dimensions checked against the
        manifest, which also checks the format version)."""
        model_dir = model_dir or config.models_dir()
        path = model_dir / VOCABULARY_FILE
        try:
            with np.load(path) as data:
                word_vectors = data["word_vectors"].astype(np.float32)
                word_vectors *= data["word_scale"][:, None]
                norms = np.sqrt(np.einsum("ij,ij->i", word_vectors, word_vectors))
                word_vectors /= np.maximum(norms, 1e-12)[:, None]
                words = _lines(data["words"])
                known = _lines(data["known_words"])
                class_names = _lines(data["class_names"])
                class_vectors = data["class_vectors"].astype(np.float32)
                aliases = {}
                for line in _lines(data["class_aliases"]):
                    alias, index = line.split("\t")
                    aliases[alias] = int(index)
                concepts = {}
                for line in _lines(data["concepts"]):
                    word, members = line.split("\t")
                    concepts[word] = [int(m) for m in members.split()]
                text_mean = data["text_mean"].astype(np.float32)
                text_projection = data["text_projection"].astype(np.float32)
                # absent from vocabularies built before them: no people evidence then
                people_words = _lines(data["people_words"]) if "people_words" in data else []
                people_classes = data["people_classes"].tolist() if "people_classes" in data else []
                usual = _lines(data["usual_sense_names"]) if "usual_sense_names" in data else []
                compounds = _lines(data["compound_nouns"]) if "compound_nouns" in data else []
                verb_nouns = _lines(data["verb_nouns"]) if "verb_nouns" in data else None
                has_definitions = "class_definition_words" in data
                definitions = _lines(data["class_definition_words"]) if has_definitions else []
                mentioning = {}
                for line in _lines(data["mentioning_classes"]) if "mentioning_classes" in data else []:
                    word, members = line.split("\t")
                    mentioning[word] = tuple(int(m) for m in members.split())
        except FileNotFoundError:
            raise ModelFileError(f"vocabulary {path} is missing; " + REBUILD_HINT) from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelFileError(f"vocabulary {path} is damaged: {exc}") from None
        if (
            len(words) != len(word_vectors)
            or len(class_names) != len(class_vectors)
            or len(definitions) not in (0, len(class_names))
        ):
            raise ModelFileError(f"vocabulary {path} is inconsistent (entry and vector counts differ)")
        manifest = read_manifest(model_dir)
        dims = (word_vectors.shape[1], class_vectors.shape[1] if class_vectors.ndim == 2 else -1)
        if (
            dims != (manifest.get("word_dim", dims[0]), manifest["dim"])
            or text_projection.shape[1:] != (dims[0],)
            or text_mean.shape != text_projection.shape[:1]
        ):
            raise ModelFileError(
                f"vocabulary {path} does not fit the model (words of {dims[0]} and vectors of "
                f"{dims[1]} dimensions, the model's are {manifest['dim']}); " + REBUILD_HINT
            )
        return cls(
            words,
            word_vectors,
            class_names,
            class_vectors,
            aliases,
            known,
            concepts,
            text_mean,
            text_projection,
            model_dir,
            people_words,
            people_classes,
            mentioning,
            usual,
            compounds,
            verb_nouns,
            definitions,
        )

    # -- the text encoder ------------------------------------------------------------

    @property
    def text_encoder(self) -> TextEncoder:
        """The text encoder of this model (loaded on first use; ModelFileError if missing)."""
        with self._encoder_lock:
            if self._encoder is None:
                from devise_app.engine.text import TextEncoder

                self._encoder = TextEncoder(self.model_dir or config.models_dir())
            return self._encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, word_dim) unit vectors of texts in the word space."""
        if not texts:
            return np.zeros((0, self.word_dim), dtype=np.float32)
        if self._text_mean is None or self._text_projection is None:
            raise ModelFileError("this vocabulary has no text projection; " + REBUILD_HINT)
        raw = self.text_encoder.embed(texts)
        reduced = (raw - self._text_mean) @ self._text_projection
        return (reduced / np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12)).astype(
            np.float32
        )

    def text_vector(self, text: str) -> np.ndarray:
        """A text's unit vector in the full space (zeros in the code part)."""
        return self.pad(self.encode([text])[0])

    # -- entries ---------------------------------------------------------------------

    def __contains__(self, word: str) -> bool:
        key = fold(word).strip()
        return key in self._class_index or self.known_form(key) is not None

    def known_form(self, word: str) -> str | None:
        """The known word ``word`` is, or is inflected from (lower case); None if unknown."""
        key = fold(word).strip()
        for form in base_forms(key):
            if form in self._known_rank or form in self._word_index:
                return form
        return None

    @functools.cached_property
    def _completion_index(self) -> tuple[list[str], np.ndarray]:
        """Every entry in sorted order, and each one's completion rank (built once, on
        first use): a known word's frequency rank, and after every known word the other
        entries (class names and aliases) in their sorted order. A prefix is a range of
        the sorted list (``bisect``), and its best-ranked entries are the smallest ranks
        of that range, found by ``np.argpartition`` without sorting the range: a
        one-letter prefix covers ~20k entries, and sorting them took 30-130 ms."""
        entries = sorted(self._known_rank.keys() | self._class_index.keys())
        after_known = len(self.known_words)
        ranks = np.fromiter(
            (self._known_rank.get(entry, after_known + i) for i, entry in enumerate(entries)),
            dtype=np.int64,
            count=len(entries),
        )
        return entries, ranks

    def is_class(self, word: str) -> bool:
        return fold(word).strip() in self._class_index

    @functools.cached_property
    def _plain_class_index(self) -> dict[str, int]:
        """Class names and aliases by their words alone ("crane wading bird")."""
        return {" ".join(WORD.findall(name)): index for name, index in reversed(self._class_index.items())}

    def class_index(self, text: str) -> int | None:
        """The class a text names (its name or a WordNet alias, any case, punctuation
        aside), else None."""
        key = fold(text).strip()
        index = self._class_index.get(key)
        return index if index is not None else self._plain_class_index.get(" ".join(WORD.findall(key)))

    def concept_classes(self, text: str) -> list[int]:
        """The ImageNet classes at or below the WordNet noun ``text`` names (empty if none)."""
        return self._concepts.get(fold(text).strip(), [])

    def people_evidence(self, text: str) -> tuple[tuple[int, ...], ...]:
        """The class sets that show the people a word for people names: what people
        wear (``people_classes``) and the classes whose definition names the word
        ("baby": crib, cradle; "woman": bikini), when there are any; none for any
        other text (or a vocabulary built without people evidence)."""
        if not self.people_classes or not self.is_people_word(text):
            return ()
        mentioning = self._mentioning_classes.get(fold(text).strip())
        return (self.people_classes, mentioning) if mentioning else (self.people_classes,)

    def associated_classes(self, word: str) -> tuple[int, ...]:
        """For a noun that names no class, concept or person, the classes whose
        definitions name it ("kitchen": microwave, toaster, waffle iron), when there
        are a few; none for any other text."""
        key = fold(word).strip()
        if self.is_people_word(key):
            return ()
        return self._mentioning_classes.get(key, ())

    def is_people_word(self, text: str) -> bool:
        """Whether ``text`` is a noun whose first WordNet sense is a person or people (woman, child)."""
        return fold(text).strip() in self._people_words

    def verb_names_noun(self, word: str) -> bool:
        """Whether the -ing and -ed forms of ``word`` name what the word names as a noun
        ("skiing": the ski; not "flying": a fly, nor "watching": a watch). A vocabulary
        built before this list lets every form name it."""
        return self._verb_nouns is None or word in self._verb_nouns

    def is_compound_noun(self, text: str) -> bool:
        """Whether a lower-case text of two or three words is a WordNet noun with no
        classes of its own ("tennis player", "parking lot")."""
        return text in self._compound_nouns

    @functools.cached_property
    def label_text_vectors(self) -> np.ndarray:
        """(C, word_dim) the unit word parts of the class labels: their label texts."""
        words = self.class_vectors[:, : self.word_dim]
        return (words / np.maximum(np.linalg.norm(words, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def concept_class_sets(self) -> set[tuple[int, ...]]:
        """Every distinct set of ImageNet classes some WordNet concept spans, sorted."""
        return set(self._concept_sets)

    @functools.cached_property
    def _concept_sets(self) -> frozenset[tuple[int, ...]]:
        return frozenset(tuple(sorted(members)) for members in self._concepts.values() if members)

    @functools.cached_property
    def _concepts_by_size(self) -> list[tuple[frozenset[int], tuple[int, ...]]]:
        return [(frozenset(members), members) for members in sorted(self._concept_sets, key=len)]

    def concepts_holding(self, classes: Iterable[int]) -> Iterator[tuple[int, ...]]:
        """The class sets of the WordNet concepts that hold all of ``classes``, smallest first."""
        wanted = frozenset(classes)
        return (members for held, members in self._concepts_by_size if wanted <= held)

    def is_concept(self, members: Iterable[int]) -> bool:
        """Whether a set of classes is all those below some WordNet concept."""
        return tuple(sorted(members)) in self._concept_sets

    @functools.cached_property
    def _definition_words(self) -> list[frozenset[str]]:
        return [frozenset(line.split()) for line in self._definition_lines]  # on first use, not at start-up

    def definition_words(self, index: int) -> frozenset[str]:
        """The words that define a class, in every base form: those of its WordNet
        definition and of its ancestors' definitions and names (none in a vocabulary
        built before this list)."""
        return self._definition_words[index] if self._definition_lines else frozenset()

    def concept_vector(self, text: str) -> np.ndarray | None:
        """The query vector of a WordNet concept with classes below it, else None."""
        members = self.concept_classes(text)
        if not members:
            return None
        return concept_vector(self.text_vector(text), self.class_vectors[members])

    def vector(self, word: str) -> np.ndarray:
        """The unit vector of a class label, a concept or any known word, in the full space."""
        key = fold(word).strip()
        if key in self._class_index:
            return self.class_vectors[self._class_index[key]].copy()
        if key not in self:
            raise KeyError(word)
        concept = self.concept_vector(key)
        return concept if concept is not None else self.text_vector(key)

    def is_word(self, word: str) -> bool:
        """Whether ``word`` is a known word (class labels aside)."""
        return self.known_form(word) is not None

    def word_vector(self, word: str) -> np.ndarray:
        """The word's own text vector (word part only), even where a label shadows it."""
        index = self._word_index.get(fold(word))
        if index is not None:
            return self._word_vectors[index]
        return self.encode([fold(word)])[0]

    def frequent_words(self, n: int) -> tuple[list[str], np.ndarray]:
        """The n most frequent describe words and their (word part) unit vectors."""
        return self.words[:n], self._word_vectors[:n]

    def pad(self, word_vector: np.ndarray) -> np.ndarray:
        full = np.zeros(self.dim, dtype=np.float32)
        full[: self.word_dim] = word_vector
        return full

    def nearest(
        self, vector: np.ndarray, k: int = 10, exclude: Iterable[str] = ()
    ) -> list[tuple[str, float]]:
        """The k entries with the highest cosine to ``vector`` (class labels included)."""
        vector = np.asarray(vector, dtype=np.float32)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        excluded = {fold(w) for w in exclude}
        word_scores = self._word_vectors @ vector[: self.word_dim]
        class_scores = self.class_vectors @ vector
        candidates: list[tuple[float, str]] = []
        want = k + len(excluded) + k  # room for class names shadowing a word
        for index in np.argpartition(-word_scores, min(want, len(word_scores) - 1))[:want]:
            candidates.append((float(word_scores[index]), self.words[index]))
        for index in np.argpartition(-class_scores, min(want, len(class_scores) - 1))[:want]:
            candidates.append((float(class_scores[index]), self.class_names[index]))
        results: list[tuple[str, float]] = []
        seen: set[str] = set()
        for score, word in sorted(candidates, reverse=True):
            key = fold(word)
            if key in excluded or key in seen:
                continue
            if not self.is_class(word) or self.class_names[self._class_index[key]] == word:
                seen.add(key)
                results.append((word, score))
            if len(results) == k:
                break
        return results

    @functools.cached_property
    def speller(self) -> Speller:
        """Corrections for unknown words: the frequent known words, and the words that
        name what photos show (built on first use)."""
        photo_words = [*self._class_index, *self._concepts, *self._people_words, *self._mentioning_classes]
        return Speller(self.known_words, photo_words)

    def correction(self, word: str) -> str | None:
        """The known word an unknown one most likely meant ("dgo" -> "dog"), else None."""
        return self.speller.correct(fold(word).strip())

    def suggest(self, word: str, n: int = 5) -> list[str]:
        """Known spellings close to an unknown word, likeliest first."""
        return self.speller.candidates(fold(word).strip(), n)

    def complete(self, prefix: str, n: int = 10) -> list[str]:
        """Entries starting with ``prefix``, most frequent words first, then labels
        (and the other entries) in alphabetical order."""
        key = fold(prefix)
        if not key or n <= 0:
            return []
        entries, ranks = self._completion_index
        start = bisect.bisect_left(entries, key)
        end = bisect.bisect_left(entries, key + "\uffff", lo=start)
        found = ranks[start:end]
        if len(found) > n:
            best = np.argpartition(found, n - 1)[:n]
            order = best[np.argsort(found[best], kind="stable")]
        else:
            order = np.argsort(found, kind="stable")
        return [entries[start + int(i)] for i in order]

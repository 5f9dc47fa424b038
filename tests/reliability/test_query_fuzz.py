"""Any text is a query (issues 7 and 11): whatever is typed, the query language
answers with a unit vector or one QueryError with a reason, never another
exception; caption-like sentences of known words always give a vector.

Property-based, on the real vocabulary: arbitrary text (lone surrogates
included, as a command line with bad bytes gives them), and a grammar-aware
strategy that mixes known and unknown words, class labels, phrases, operators,
weights, quotes, brackets, odd spaces and ``label:``; then both through the
Library facade (catalog labels, the Annoy index). Over 12 000 generated queries,
derandomized so that CI is reproducible.

Hypothesis spends about 1.5 ms on each example whatever its size, so each
example carries ten queries. A grammar query is drawn as bytes that a small
generator reads as its choices: one cheap draw that still shrinks. Every text
term goes through the real text encoder (a few ms each), so the counts are
smaller than with the GloVe word space before.
``Vocabulary.suggest`` and ``Vocabulary.correction`` (close spellings for an
unknown word and the word it most likely meant, a scan of 100k words each) are
replaced by stand-ins of the same types in the bulk tests; a small test gives the
real ones arbitrary words.
"""

from __future__ import annotations

import copy
import shutil
import unicodedata
import zlib
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import SKIMAGE_PHOTOS

from devise_app.engine import config
from devise_app.engine.model import read_manifest
from devise_app.engine.query import (
    MAX_NESTING,
    MAX_QUERY_LENGTH,
    QueryError,
    embed_query,
    parse,
    query_vector,
    query_words,
)
from devise_app.engine.search import Library

DIM = int(read_manifest(config.models_dir())["dim"])

SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
PER_EXAMPLE = 10  # queries checked by each example
TEXT_EXAMPLES = 250  # x 10 queries
GRAMMAR_EXAMPLES = 250  # x 10 queries
CAPTION_EXAMPLES = 100  # x 10 sentences
LIBRARY_EXAMPLES = 60  # x 5 queries

KNOWN_LABELS = ("Grandma", "Summer 2024", "ünïcödé")

# Tokens of the grammar-aware strategy, besides known words and class labels.
UNKNOWN_WORDS = ("zqxjv", "dogg", "caaat", "ünïcödéx", "猫猫", "xn--dog", "qwertyuiopasdf", "a-b-c-d-e")
TRICKY_WORDS = (
    "dog's", "u.s.", "rock-n-roll", "at&t", "İstanbul", "ǅ", "ß", "ﬁsh", "ｄｏｇ", "e\u0301", "\u202edog",
    "Dog", "DOG", "great", "white", "shark", "-", "'", "&", ".", "a.", "_", "x" * 80,
)  # fmt: skip
OPERATORS = ("+", "-", "*", "(", ")", "--", "**", "+-", "*(", ")(", "/", ",", ";", "=", "^", "!", "?")
NUMBERS = (
    "0",
    "1",
    "2",
    "0.5",
    ".5",
    "1.",
    "100",
    "100.0001",
    "1e3",
    "9" * 30,
    "0000",
    "٣",
    "²",
    "-1",
    "007",
)
QUOTES = ('"', '""', '" "', '"dog"', '"great white shark"', '"(bird)"', '"! ?"', '"dog', 'dog"', "'dog'")
LABELS = (
    "label:", "label:Grandma", 'label:"Summer 2024"', 'label:""', "label:(", "LABEL:Grandma", "label:label:x",
    "label:ünïcödé", 'label:"ünïcödé"', "label:Nobody", "label:*", 'label:"a"b"', "label:\udcff",
)  # fmt: skip
SPACES = (" ", " ", " ", "", "\t", "\n", "\u00a0", "\u2003", "\u200b", "\u3000", "  ")


@pytest.fixture(scope="module")
def known_words(vocabulary: Any) -> tuple[str, ...]:
    """Every 50th of the 5000 commonest words, and class labels (multi-word, some
    with brackets)."""
    return (*vocabulary.words[:5000:50], *vocabulary.class_names[::25])


class _Choices:
    """Bytes read one at a time as choices; zeros once they run out, so that a
    query always ends (a zero byte stops a sum and picks a plain word)."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.position = 0

    def __call__(self, options: int) -> int:
        byte = self.blob[self.position] if self.position < len(self.blob) else 0
        self.position += 1
        return byte % options

    def pick(self, options: tuple[str, ...]) -> str:
        return options[self(len(options))]


def grammar_query(blob: bytes, words: tuple[str, ...]) -> str:
    """Bytes -> a query that mostly follows the grammar, with faults mixed in:
    unknown words, stray operators, unclosed or too deep brackets, odd spaces."""
    choose = _Choices(blob)
    return _sum(choose, words, depth=0)


def _sum(choose: _Choices, words: tuple[str, ...], depth: int) -> str:
    text = choose.pick(("", "", "", "-", "+")) + _term(choose, words, depth)
    while choose(3):  # another term, two times in three
        operator = choose.pick(("+", "-", "+", "-", "+", "-", "", "*", "**", "+-", "/", ","))
        text += choose.pick(SPACES) + operator + choose.pick(SPACES) + _term(choose, words, depth)
    return text


def _term(choose: _Choices, words: tuple[str, ...], depth: int) -> str:
    weight = choose.pick(NUMBERS) + choose.pick(("*", " * ", "", " ")) if choose(4) == 0 else ""
    kind = choose(12)
    if kind < 5:  # one to three known words: a word, a phrase or a class label
        return " ".join(choose.pick(words) for _ in range(1 + choose(3)))
    if kind == 5:
        return weight + choose.pick(QUOTES)
    if kind == 6:
        return weight + choose.pick(LABELS)
    if kind == 7:
        return weight + choose.pick(UNKNOWN_WORDS + TRICKY_WORDS)
    if kind == 8:
        return choose.pick(OPERATORS)  # a stray operator
    if kind in (9, 10):  # brackets, now and then left open
        inner = _sum(choose, words, depth + 1) if depth < MAX_NESTING + 2 else choose.pick(words)
        return weight + "(" + inner + choose.pick((")", ")", ")", ")", ""))
    levels = choose(2 * MAX_NESTING)  # a run of (weighted) brackets, up to twice too deep
    opening = choose.pick(("(", "2*(", "100*(", "-("))
    return opening * levels + choose.pick(words) + ")" * levels


GRAMMAR_BLOBS = st.lists(st.binary(max_size=40), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE)
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
TEXTS = st.lists(ANY_TEXT, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE)


@pytest.fixture(scope="module")
def quick_vocabulary(vocabulary: Any) -> Any:
    """The real vocabulary with stand-ins for ``suggest`` and ``correction`` of the same types."""
    quick = copy.copy(vocabulary)
    quick.suggest = lambda word, n=5: [w for w in ("dog", "cat") if w[:1] == word[:1].lower()][:n]
    quick.correction = lambda word: "dog" if word[:1].lower() == "d" else None
    return quick


def label_vector(name: str) -> np.ndarray:
    """What a library answers for ``label:NAME``: a vector for a known label,
    QueryError for another."""
    if name.lower() not in {label.lower() for label in KNOWN_LABELS}:
        raise QueryError(f"No label named {name!r}.")
    rng = np.random.default_rng(zlib.crc32(name.lower().encode()))
    return rng.standard_normal(DIM).astype(np.float32)


def check(text: str, vocabulary: Any) -> None:
    """A unit vector of the vocabulary's dimension, or a QueryError with a message."""
    try:
        vector = query_vector(text, vocabulary, label_vector)
    except QueryError as exc:
        assert str(exc).strip()
        return
    assert vector.dtype == np.float32
    assert vector.shape == (vocabulary.dim,)
    assert np.all(np.isfinite(vector))
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    assert isinstance(query_words(parse(text)), list)


@settings(max_examples=TEXT_EXAMPLES, **SETTINGS)
@given(texts=TEXTS)
def test_any_text_gives_a_vector_or_a_query_error(texts: list[str], quick_vocabulary: Any) -> None:
    for text in texts:
        check(text, quick_vocabulary)


@settings(max_examples=GRAMMAR_EXAMPLES, **SETTINGS)
@given(blobs=GRAMMAR_BLOBS)
def test_grammar_aware_queries_give_a_vector_or_a_query_error(
    blobs: list[bytes], known_words: tuple[str, ...], quick_vocabulary: Any
) -> None:
    for blob in blobs:
        check(grammar_query(blob, known_words), quick_vocabulary)


def test_the_grammar_strategy_reaches_both_outcomes(
    known_words: tuple[str, ...], quick_vocabulary: Any
) -> None:
    """Not only errors: a fair share of grammar queries are answered."""
    rng = np.random.default_rng(0)
    answered = 0
    for _ in range(500):
        try:
            query_vector(
                grammar_query(rng.bytes(int(rng.integers(2, 40))), known_words),
                quick_vocabulary,
                label_vector,
            )
            answered += 1
        except QueryError:
            pass
    assert 250 < answered < 500


# Caption-like sentences: common words (every one known), articles, commas, a full stop.
CAPTION_WORDS = (
    "man", "woman", "child", "people", "dog", "cat", "table", "chairs", "kitchen", "street", "bus",
    "riding", "standing", "sitting", "holding", "eating", "red", "small", "large", "white", "wave",
    "surfboard", "pizza", "plate", "beach", "snow", "skis", "near", "on", "in", "with", "of", "next",
    "to", "two", "some", "while", "under", "tennis", "racket", "giraffe", "zebras", "field", "grass",
)  # fmt: skip
SENTENCES = st.lists(
    st.tuples(
        st.sampled_from(("A", "An", "The", "Two", "a", "")),
        st.lists(st.sampled_from(CAPTION_WORDS), min_size=1, max_size=12),
        st.lists(st.sampled_from((",", "", "", "", " and")), min_size=12, max_size=12),
        st.sampled_from((".", "", "!", " .", "?")),
    ),
    min_size=PER_EXAMPLE,
    max_size=PER_EXAMPLE,
)


def caption(parts: tuple[str, list[str], list[str], str]) -> str:
    start, words, joins, end = parts
    body = " ".join(word + join for word, join in zip(words, joins, strict=False))
    return (start + " " + body).strip() + end


@settings(max_examples=CAPTION_EXAMPLES, **SETTINGS)
@given(sentences=SENTENCES)
def test_caption_like_sentences_always_give_a_vector(sentences: list[Any], vocabulary: Any) -> None:
    for parts in sentences:
        text = caption(parts)
        result = embed_query(text, vocabulary)
        assert result.ignored_words == [], text
        assert abs(float(np.linalg.norm(result.vector)) - 1.0) < 1e-4


@settings(max_examples=TEXT_EXAMPLES, **SETTINGS)
@given(texts=st.lists(st.text(st.characters(categories=("L", "M", "N", "P", "S", "Zs")), max_size=60)))
def test_printable_text_gives_a_vector_or_one_query_error_with_a_reason(
    texts: list[str], quick_vocabulary: Any
) -> None:
    for text in texts:
        try:
            result = embed_query(text, quick_vocabulary)
        except QueryError as exc:
            assert exc.message.strip()
            continue
        assert all(isinstance(word, str) and word for word, _ in result.ignored_words)
        assert abs(float(np.linalg.norm(result.vector)) - 1.0) < 1e-4


@settings(max_examples=25, **SETTINGS)
@given(word=st.text(st.characters(codec="utf-8"), min_size=1, max_size=12))
def test_unknown_words_get_real_suggestions_and_corrections(word: str, vocabulary: Any) -> None:
    try:
        found = embed_query(f"cat + {word}", vocabulary)
    except QueryError as exc:
        assert all(isinstance(suggestion, str) and suggestion for suggestion in exc.suggestions)
        return
    for typed, meant in found.corrected_words:  # a typo is read as a known word, never itself
        assert typed in unicodedata.normalize("NFKC", word) and typed.isascii()
        assert meant != typed.lower() and meant in vocabulary


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('"! ?"', "no words"),  # quotes with no word in them: numpy's 'Mean of empty slice' before
        ("2*(" * (MAX_NESTING + 1) + "dog" + ")" * (MAX_NESTING + 1), "Too many brackets"),
        ("2*(" * 200 + "dog" + ")" * 200, "Too many brackets"),  # RecursionError before
        ("-(" * 500 + "dog" + ")" * 500, "too long"),
        ("dog " * 300, "too long"),
    ],
)
def test_queries_that_used_to_raise_something_else(text: str, fragment: str, vocabulary: Any) -> None:
    with pytest.raises(QueryError, match=fragment):
        query_vector(text, vocabulary)


def test_brackets_without_arithmetic_are_text(vocabulary: Any) -> None:
    dog = query_vector("dog", vocabulary)
    for text in ("(" * (MAX_NESTING + 1) + "dog" + ")" * (MAX_NESTING + 1), "(" * 300 + "dog" + ")" * 297):
        assert float(query_vector(text, vocabulary) @ dog) > 0.9999


def test_the_deepest_and_heaviest_queries_still_work(vocabulary: Any) -> None:
    deepest = "(" * MAX_NESTING + "dog" + ")" * MAX_NESTING
    heaviest = "100*(" * MAX_NESTING + "dog" + ")" * MAX_NESTING  # 100 ** 20 overflowed float32
    longest = "dog + " * ((MAX_QUERY_LENGTH - 3) // 6) + "cat"
    dog = query_vector("dog", vocabulary)
    assert float(query_vector(deepest, vocabulary) @ dog) > 0.9999
    assert float(query_vector(heaviest, vocabulary) @ dog) > 0.9999
    assert len(longest) <= MAX_QUERY_LENGTH
    assert len(longest) > MAX_QUERY_LENGTH - 6
    assert np.isfinite(query_vector(longest, vocabulary)).all()


@pytest.fixture(scope="module")
def small_library(
    tmp_path_factory: pytest.TempPathFactory, encoder: Any, quick_vocabulary: Any
) -> Iterator[Any]:
    """A library of three photos carrying the labels of KNOWN_LABELS."""
    base = tmp_path_factory.mktemp("fuzz")
    folder = base / "photos"
    folder.mkdir()
    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        shutil.copyfile(SKIMAGE_PHOTOS / name, folder / name)
    library = Library(base / "library", encoder=encoder, vocabulary=quick_vocabulary)
    deque(library.index([folder]), maxlen=1)
    for label in KNOWN_LABELS:
        library.add_label(label, [folder / "chelsea.png"])
    yield library
    library.close()


@settings(max_examples=LIBRARY_EXAMPLES, **SETTINGS)
@given(
    texts=st.lists(
        st.one_of(ANY_TEXT, ANY_TEXT.map(lambda text: "label:" + text), st.binary(max_size=40)),
        min_size=5,
        max_size=5,
    )
)
def test_library_search_answers_or_raises_query_error(
    texts: list[str | bytes], known_words: tuple[str, ...], small_library: Any
) -> None:
    """Through the Library facade the CLI and the GUI call: label lookups in the
    catalog, the Annoy index, the results."""
    for text in texts:
        query = grammar_query(text, known_words) if isinstance(text, bytes) else text
        try:
            hits = small_library.search(query, top=3)
        except QueryError:
            continue
        assert len(hits) <= 3
        assert all(hit.path.exists() for hit in hits)


@pytest.mark.parametrize("query", ["label:\udcff", 'label:"caf\udce9"', "dog + \udcff", '"\ud800"'])
def test_text_that_is_not_valid_unicode(query: str, small_library: Any) -> None:
    """Lone surrogates (a command line with bytes that are not UTF-8): as a label
    name they reached SQLite and raised UnicodeEncodeError."""
    with pytest.raises(QueryError, match="not valid text"):
        small_library.search(query)

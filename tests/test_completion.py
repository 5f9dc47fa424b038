"""Prefix completion of the vocabulary (``Vocabulary.complete``): its prefix index
gives the same completions as ranking every matching entry, without ranking them
at each call."""

from __future__ import annotations

import bisect
import itertools
import random
import string
from typing import Any

import numpy as np
import pytest

from devise_app.engine.vocabulary import Vocabulary, fold


def ranked_in_full(vocabulary: Any, prefixes: list[str], n: int) -> dict[str, list[str]]:
    """Completion as it was before the index: every entry of the prefix, sorted by
    frequency rank (entries that are not known words after them, alphabetically)."""
    everything = sorted(vocabulary._known_rank.keys() | vocabulary._class_index.keys())
    return {prefix: _ranked(vocabulary, everything, prefix, n) for prefix in prefixes}


def _ranked(vocabulary: Any, everything: list[str], prefix: str, n: int) -> list[str]:
    key = fold(prefix)
    if not key:
        return []
    start = bisect.bisect_left(everything, key)
    end = bisect.bisect_left(everything, key + "\uffff", lo=start)
    last = len(vocabulary.known_words)
    matches = everything[start:end]
    matches.sort(key=lambda w: (vocabulary._known_rank.get(w, last), w))
    return matches[:n]


def small_vocabulary(
    known: list[str], classes: list[str], aliases: dict[str, int] | None = None
) -> Vocabulary:
    rng = np.random.default_rng(0)
    word_vectors = rng.normal(size=(len(known), 4)).astype(np.float32)
    class_vectors = rng.normal(size=(len(classes), 6)).astype(np.float32)
    return Vocabulary(known, word_vectors, classes, class_vectors, aliases or {}, known_words=known)


def random_vocabulary(size: int, seed: int = 1) -> Vocabulary:
    rng = random.Random(seed)
    letters = "abcdeé"
    words = list(
        dict.fromkeys("".join(rng.choice(letters) for _ in range(rng.randint(1, 6))) for _ in range(size))
    )
    rng.shuffle(words)
    known, others = words[: len(words) * 3 // 4], words[len(words) * 3 // 4 :]
    classes = [w.title() if i % 2 else w for i, w in enumerate(others)] + [known[0], "Great White Shark"]
    return small_vocabulary(known, classes, {"white shark": len(classes) - 1, "zz top": 0})


def test_completion_ranks_known_words_by_frequency_then_the_rest_alphabetically() -> None:
    vocabulary = small_vocabulary(
        ["dog", "door", "do", "dove", "dog"],  # "dog" twice: its rank is its last place, as before
        ["Dogfish", "Dobermann", "door"],
        {"dog sled": 0},
    )
    assert vocabulary.complete("do") == ["door", "do", "dove", "dog", "dobermann", "dog sled", "dogfish"]
    assert vocabulary.complete("DO", 2) == ["door", "do"]
    assert vocabulary.complete("dog") == ["dog", "dog sled", "dogfish"]
    assert vocabulary.complete("dogs") == []
    assert vocabulary.complete("") == []
    assert vocabulary.complete("d", 0) == []


def test_completion_matches_ranking_every_entry_on_a_random_vocabulary() -> None:
    vocabulary = random_vocabulary(3000)
    prefixes = ["".join(p) for size in (1, 2, 3) for p in itertools.product("abcdeéz", repeat=size)]
    for n in (1, 3, 10, 100, 10_000):
        expected = ranked_in_full(vocabulary, prefixes, n)
        assert {prefix: vocabulary.complete(prefix, n) for prefix in prefixes} == expected, n


def test_a_one_letter_prefix_is_not_ranked_entry_by_entry_at_each_call() -> None:
    """The index is built once; a call then only picks the best-ranked few of its
    prefix's range (ranking ~20k entries per keystroke stalled the window)."""
    vocabulary = random_vocabulary(3000)
    vocabulary.complete("a")  # builds the index

    class CountingRanks(dict[str, int]):
        looked_up = 0

        def get(self, key: str, default: Any = None) -> Any:
            CountingRanks.looked_up += 1
            return super().get(key, default)

        def __getitem__(self, key: str) -> int:
            CountingRanks.looked_up += 1
            return super().__getitem__(key)

    vocabulary._known_rank = CountingRanks(vocabulary._known_rank)
    assert len(vocabulary.complete("a", 10)) == 10
    assert len(vocabulary.complete("b", 100)) == 100
    assert CountingRanks.looked_up == 0


@pytest.mark.parametrize("n", [10, 100])
def test_the_shipped_vocabulary_completes_as_before(vocabulary: Any, n: int) -> None:
    """Every one- and two-letter prefix of the shipped vocabulary, and longer ones,
    give exactly the completions of ranking every matching entry."""
    prefixes = [
        *string.ascii_lowercase,
        *("".join(p) for p in itertools.product(string.ascii_lowercase, repeat=2)),
    ]
    prefixes += ["eleph", "dog", "beach", "inter", "con", "great white", "zebr", "é", "ñ", "1", "'"]
    expected = ranked_in_full(vocabulary, prefixes, n)
    assert {prefix: vocabulary.complete(prefix, n) for prefix in prefixes} == expected
    assert vocabulary.complete("eleph", 5)[0] == "elephant"

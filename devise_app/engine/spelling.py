"""Typos read as the word meant: "dgo" -> dog, "restaraunt" -> restaurant.

A word the vocabulary does not know is most often a typo. Its candidates are the
frequent known words one edit away (a letter missing, one too many, one changed, two
swapped), or two edits away for a word of ``MIN_LENGTH_FOR_TWO_EDITS`` letters or
more, when none is one away. Each candidate is scored like a noisy channel:
the log of its frequency (Zipf: a word's share of text falls as 1 / its rank), less
``UNLIKELY_EDIT_COST`` for each edit that a hand on a keyboard seldom makes (a
letter changed or added that is not next to the keys around it), plus
``PHOTO_WORD_BONUS`` for a word that names something a photo shows (a class, a
concept, people), since those are what a photo search is typed for.

Chosen on typos of the COCO sample's caption words (keyboard slips made by a seeded
generator), checked on the captions' own typos and on a published set of human
misspellings; see models/MODEL_CARD.md.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator

from rapidfuzz import process
from rapidfuzz.distance import OSA

LETTERS = "abcdefghijklmnopqrstuvwxyz"
_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_KEY_POSITIONS = {
    key: (row, column + 0.5 * row)
    for row, keys in enumerate(_KEYBOARD_ROWS)
    for column, key in enumerate(keys)
}
CORRECTABLE_RANK = 100_000  # only words this frequent (or class words) are offered as corrections
RANK_SMOOTHING = 2_000  # added to a rank before its log: the first thousand words are alike
UNLIKELY_EDIT_COST = 2.0  # nats, for a change or an extra letter far from the keys around it
PHOTO_WORD_BONUS = 1.0  # nats, for a word that names something photos show
TWO_EDIT_COST = 2.0  # nats, for needing a second edit
MIN_LENGTH = 3  # shorter words are neither corrected nor offered: too many are one edit apart
MIN_LENGTH_FOR_TWO_EDITS = 5
_TRIPLED = re.compile(r"(.)\1\1+")


def keys_adjacent(a: str, b: str) -> bool:
    """Whether two letters are neighbouring keys of a QWERTY keyboard."""
    if a == b or a not in _KEY_POSITIONS or b not in _KEY_POSITIONS:
        return False
    (row_a, column_a), (row_b, column_b) = _KEY_POSITIONS[a], _KEY_POSITIONS[b]
    return abs(row_a - row_b) <= 1 and abs(column_a - column_b) <= 1.0


def single_edits(typed: str) -> Iterator[tuple[str, float]]:
    """Every word one edit from ``typed``, with the edit's cost in nats (0 for the
    slips a typing hand makes: swapped letters, a missed letter, a neighbouring key)."""
    for i in range(len(typed) + 1):
        before, after = typed[:i], typed[i:]
        around = before[-1:] + after[1:2]
        if after:  # typed holds one letter too many
            extra = after[0]
            likely = any(key == extra or keys_adjacent(key, extra) for key in around)
            yield before + after[1:], 0.0 if likely else UNLIKELY_EDIT_COST
        if len(after) > 1 and after[0] != after[1]:
            yield before + after[1] + after[0] + after[2:], 0.0
        for letter in LETTERS:
            if after and letter != after[0]:
                cost = 0.0 if keys_adjacent(letter, after[0]) else UNLIKELY_EDIT_COST
                yield before + letter + after[1:], cost
            yield before + letter + after, 0.0  # a letter was missed


class Speller:
    """Corrections for unknown words, from words in frequency order."""

    def __init__(self, words_by_frequency: Iterable[str], photo_words: Iterable[str] = ()):
        self._rank: dict[str, int] = {}
        for rank, word in enumerate(words_by_frequency):
            if rank >= CORRECTABLE_RANK:
                break
            if len(word) >= MIN_LENGTH and word.isalpha() and word.isascii():
                self._rank.setdefault(word, rank)
        self._photo_words = frozenset(
            w for w in photo_words if len(w) >= MIN_LENGTH and w.isalpha() and w.isascii()
        )
        for word in self._photo_words:  # class words are offered even when rare ("toucan")
            self._rank.setdefault(word, CORRECTABLE_RANK)
        self._words = sorted(self._rank, key=len)  # a range of lengths is a slice
        self._lengths = [len(word) for word in self._words]

    def _score(self, word: str, cost: float) -> float:
        prior = -math.log(self._rank[word] + RANK_SMOOTHING)
        return prior - cost + (PHOTO_WORD_BONUS if word in self._photo_words else 0.0)

    def candidates(self, typed: str, n: int = 5) -> list[str]:
        """The likeliest words meant by ``typed`` (lower case), best first; [] when
        no frequent word is near it."""
        typed = typed.lower()
        if len(typed) < MIN_LENGTH or not (typed.isalpha() and typed.isascii()):
            return []
        squeezed = _TRIPLED.sub(r"\1\1", typed)  # no English word has a letter three times over
        if squeezed != typed:
            return self.candidates(squeezed, n) if squeezed not in self._rank else [squeezed]
        scores: dict[str, float] = {}
        for word, cost in single_edits(typed):  # a few hundred strings: quicker than a scan
            if word in self._rank:
                scores[word] = max(scores.get(word, -math.inf), self._score(word, cost))
        if not scores and len(typed) >= MIN_LENGTH_FOR_TWO_EDITS:
            scores = {word: self._score(word, TWO_EDIT_COST) for word in self._two_edits_away(typed)}
        return sorted(scores, key=lambda word: (-scores[word], word))[:n]

    def _two_edits_away(self, typed: str) -> list[str]:
        """The words exactly two edits from ``typed`` (a scan of the words of about its length)."""
        start = bisect.bisect_left(self._lengths, len(typed) - 2)
        end = bisect.bisect_right(self._lengths, len(typed) + 2)
        found = process.extract(
            typed, self._words[start:end], scorer=OSA.distance, score_cutoff=2, limit=None
        )
        return [word for word, distance, _ in found if distance == 2]

    def correct(self, typed: str) -> str | None:
        """What ``typed`` most likely meant, or None."""
        return next(iter(self.candidates(typed, 1)), None)

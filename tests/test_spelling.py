"""Reading typos as the words meant (devise_app.engine.spelling), on small word
lists where the expected answer follows from the rules, then on the real vocabulary."""

from __future__ import annotations

from typing import Any

import pytest

from devise_app.engine.spelling import Speller, keys_adjacent, single_edits


def test_neighbouring_keys() -> None:
    assert keys_adjacent("s", "d") and keys_adjacent("g", "b") and keys_adjacent("q", "a")
    assert not keys_adjacent("a", "d") and not keys_adjacent("s", "s") and not keys_adjacent("é", "e")


def test_single_edits_cost_nothing_for_the_slips_of_a_typing_hand() -> None:
    costs = dict(single_edits("dgo"))
    assert costs["dog"] == 0.0  # two letters swapped
    assert costs["do"] == 2.0  # "g" typed too many, far from "d" and "o"
    assert costs["dgoo"] == 0.0  # a letter missed
    assert costs["dho"] == 0.0  # a neighbouring key
    assert costs["dzo"] == 2.0  # a key far from "g"


def test_the_more_frequent_word_wins_between_equally_likely_slips() -> None:
    speller = Speller(["cat", "car", "cap"])  # most frequent first
    assert speller.candidates("cst") == ["cat"]  # s is next to a, and car/cap are two edits away
    assert speller.candidates("cax") == ["cat", "car", "cap"]  # one change each; x is near none
    assert speller.correct("cax") == "cat"


def test_a_likely_slip_beats_a_more_frequent_word() -> None:
    speller = Speller(["cat", "cut"])
    assert speller.correct("cyt") == "cut"  # y is next to u, far from a


def test_words_that_photos_show_are_preferred() -> None:
    assert Speller(["bat", "cat"]).correct("vat") == "bat"  # v is next to both b and c
    assert Speller(["bat", "cat"], photo_words=["cat"]).correct("vat") == "cat"


def test_two_edits_only_for_longer_words_and_only_when_none_is_one_away() -> None:
    speller = Speller(["restaurant", "restraint", "dog", "dot"])
    assert speller.correct("restaraunt") == "restaurant"  # two letters swapped, then one changed
    assert speller.correct("dgoo") is None  # four letters: one edit at most
    assert speller.candidates("dott") == ["dot"]  # "dog" is two away


@pytest.mark.parametrize("typed", ["", "do", "d0g", "dog dog", "x-y", "dοg", "ñog"])  # Greek ο
def test_short_or_odd_words_are_not_corrected(typed: str) -> None:
    assert Speller(["dog", "do", "dig"]).candidates(typed) == []


def test_a_known_word_is_never_its_own_correction() -> None:
    assert Speller(["dog", "dot"]).candidates("dog") == ["dot"]


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("dgo", "dog"),
        ("grils", "girls"),
        ("pepole", "people"),
        ("kitchn", "kitchen"),
        ("skatebord", "skateboard"),
        ("peson", "person"),
        ("streer", "street"),
        ("HORESES", "horses"),
        ("restaraunt", "restaurant"),
        ("telivision", "television"),
        ("marshmellows", "marshmallows"),
    ],
)
def test_typos_of_the_real_vocabulary(vocabulary: Any, typed: str, meant: str) -> None:
    """The keyboard slips of ``dgo`` and ``grils``, and the typos COCO's own captions have."""
    assert vocabulary.correction(typed) == meant
    assert vocabulary.suggest(typed)[0] == meant


def test_a_letter_held_down_is_read_as_at_most_two() -> None:
    speller = Speller(["cat", "coffee", "carat"])
    assert speller.correct("caaat") == "cat"  # not "carat", one change from "caaat"
    assert speller.correct("cofffee") == "coffee"

"""Queries (any text, arithmetic where meant) and the vocabulary behind them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devise_app.engine.query import (
    MAX_READ_TYPOS,
    MAX_SUGGESTED_WORDS,
    Label,
    Phrase,
    QueryError,
    Sum,
    embed_query,
    parse,
    query_vector,
    query_words,
    split_negations,
    without_photo_frame,
)


def nearest(vocabulary: Any, text: str, k: int = 1) -> list[str]:
    vector = query_vector(text, vocabulary)
    return [w for w, _ in vocabulary.nearest(vector, k, exclude=query_words(parse(text)))]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_analogy_king_man_woman_gives_queen(vocabulary: Any) -> None:
    assert "queen" in nearest(vocabulary, "king - man + woman", 3)


def test_analogy_capitals(vocabulary: Any) -> None:
    assert "rome" in nearest(vocabulary, "paris - france + italy", 10)


def test_lookup_ignores_case_and_punctuation(vocabulary: Any) -> None:
    dog = query_vector("dog", vocabulary)
    for variant in ("Dog", "DOG!", "dog.", "  dog  ", '"dog"'):
        np.testing.assert_allclose(query_vector(variant, vocabulary), dog, atol=1e-6)


def test_accents_are_folded_as_the_encoder_folds_them(vocabulary: Any) -> None:
    """Typed with accents, a known word is that word, never an unknown one."""
    result = embed_query("Crème brûlée at the Café", vocabulary)
    assert result.ignored_words == []
    np.testing.assert_allclose(result.vector, query_vector("creme brulee at the cafe", vocabulary), atol=1e-6)
    assert embed_query("naïve", vocabulary).ignored_words == []
    np.testing.assert_allclose(query_vector("Café", vocabulary), query_vector("cafe", vocabulary), atol=1e-6)
    assert "cafe" in vocabulary.complete("café")


def test_class_phrase_uses_its_label_vector(vocabulary: Any) -> None:
    vector = query_vector("Great White Shark", vocabulary)
    np.testing.assert_allclose(vector, vocabulary.vector("great white shark"), atol=1e-6)
    assert vocabulary.is_class("great white shark")
    # plurals and an article name the class too
    np.testing.assert_allclose(query_vector("the great white sharks", vocabulary), vector, atol=1e-6)


def test_two_words_name_the_class_they_make_written_together(vocabulary: Any) -> None:
    """People type "cell phone" and "back pack" for a cellphone and a backpack; a class
    of two words is still itself ("pool table")."""
    for typed, name in (
        ("cell phone", "cellular telephone"),
        ("a back pack", "backpack"),
        ("Sun glasses", "sunglasses"),
    ):
        np.testing.assert_allclose(query_vector(typed, vocabulary), vocabulary.vector(name), atol=1e-6)
    np.testing.assert_allclose(
        query_vector("pool table", vocabulary), vocabulary.vector("pool table"), atol=1e-6
    )


def test_quoted_or_bracketed_class_name(vocabulary: Any) -> None:
    name = next(n for n in vocabulary.class_names if "(" in n)
    np.testing.assert_allclose(query_vector(f'"{name}"', vocabulary), vocabulary.vector(name), atol=1e-6)
    np.testing.assert_allclose(query_vector(name, vocabulary), vocabulary.vector(name), atol=1e-6)


def test_concept_words_mix_in_the_classes_below_them(vocabulary: Any) -> None:
    """'dog' (120 breeds below it in WordNet) leans towards its breeds' vectors."""
    members = vocabulary.concept_classes("dog")
    assert len(members) > 100
    dog = query_vector("dogs", vocabulary)
    breeds = vocabulary.class_vectors[members].mean(axis=0)
    others = np.delete(vocabulary.class_vectors, members, axis=0).mean(axis=0)
    assert cosine(dog, breeds) > cosine(dog, others) + 0.2
    np.testing.assert_allclose(dog, query_vector("a dog", vocabulary), atol=1e-6)


def test_sentences_are_queries(vocabulary: Any) -> None:
    for text in (
        "A room with chairs, a table, and a woman in it.",
        "A man riding a wave on top of a surfboard.",
        "two dogs playing in the snow!",
        "What's on the double-decker bus?",
        "crane (bird)",
    ):
        result = embed_query(text, vocabulary)
        assert result.ignored_words == []
        assert abs(float(np.linalg.norm(result.vector)) - 1) < 1e-5


def test_sentence_meaning_reaches_the_vector(vocabulary: Any) -> None:
    beach = query_vector("a dog running on the beach", vocabulary)
    assert cosine(beach, query_vector("beach", vocabulary)) > cosine(
        beach, query_vector("kitchen", vocabulary)
    )


def test_hyphenated_words_and_commas_just_embed(vocabulary: Any) -> None:
    tree = parse("a well-known red, double-decker bus")
    assert tree.terms == [(1.0, Phrase("a well-known red, double-decker bus"))]


def test_free_phrase_is_embedded_whole(vocabulary: Any) -> None:
    np.testing.assert_allclose(
        query_vector("red car", vocabulary), vocabulary.text_vector("red car"), atol=1e-6
    )


def test_weights_and_brackets(vocabulary: Any) -> None:
    weighted = query_vector("2*dog + beach", vocabulary)
    expected = 2 * query_vector("dog", vocabulary) + query_vector("beach", vocabulary)
    np.testing.assert_allclose(weighted, expected / np.linalg.norm(expected), atol=1e-6)
    np.testing.assert_allclose(
        query_vector("(king - man) + woman", vocabulary),
        query_vector("king - man + woman", vocabulary),
        atol=1e-6,
    )


def test_parse_tree() -> None:
    tree = parse('2*dog - label:"Summer 2024" + hot dog')
    assert isinstance(tree, Sum)
    assert tree.terms == [(2.0, Phrase("dog")), (-1.0, Label("Summer 2024")), (1.0, Phrase("hot dog"))]


def test_operators_only_where_clearly_meant() -> None:
    assert len(parse("king - man + woman").terms) == 3
    assert len(parse("dog+beach").terms) == 2
    assert len(parse("C++ programming").terms) == 1
    assert len(parse("a well-known dog - cat").terms) == 2
    assert len(parse("sunset — beach, 2 people").terms) == 1
    assert [w for w, _ in parse("dogs -cats").terms] == [1.0, -1.0]


def test_unknown_words_are_set_aside_and_reported(vocabulary: Any) -> None:
    result = embed_query("elephnat on the beach", vocabulary, read_typos=False)  # searched as typed
    assert [word for word, _ in result.ignored_words] == ["elephnat"]
    assert result.ignored_words[0][1][0] == "elephant"
    assert result.corrected_words == ()
    assert "elephnat" in result.notice
    np.testing.assert_allclose(result.vector, query_vector("on the beach", vocabulary), atol=1e-6)


def test_a_query_of_only_unknown_words_is_an_error(vocabulary: Any) -> None:
    with pytest.raises(QueryError) as caught:
        query_vector("qqxyzzy", vocabulary)
    assert caught.value.word == "qqxyzzy"
    assert caught.value.position == 0
    with pytest.raises(QueryError) as caught:
        query_vector('"elephnat"', vocabulary)
    assert caught.value.word == "elephnat"
    assert caught.value.suggestions[0] == "elephant"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("?!", "no words"),
        ("dog - dog", "cancels"),
        ("1000*dog", "weight"),
        ("label:", "needs a name"),
        ("zqxjvv wrrblx", "Unknown words"),
    ],
)
def test_queries_with_nothing_usable_say_why(vocabulary: Any, text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        query_vector(text, vocabulary)


@pytest.mark.parametrize("text", ["dog +", "(dog", "dog )", "dog ^ cat", '""dog', "dog * "])
def test_stray_operators_and_brackets_are_text(vocabulary: Any, text: str) -> None:
    assert query_vector(text, vocabulary).shape == (vocabulary.dim,)


def test_labels_resolve_through_the_callback(vocabulary: Any) -> None:
    grandma = vocabulary.vector("woman")
    vector = query_vector("label:Grandma + beach", vocabulary, lambda name: grandma)
    expected = grandma + query_vector("beach", vocabulary)
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-6)
    with pytest.raises(QueryError, match="No label"):
        query_vector("label:Grandma", vocabulary)


def test_every_wordnet_hypernym_is_known(vocabulary: Any) -> None:
    for word in ("bovid", "oscine", "chelonian", "dog", "vehicle", "fruit", "tool", "bird", "cat"):
        assert word in vocabulary
        assert vocabulary.concept_classes(word)


def test_vocabulary_size_and_completion(vocabulary: Any) -> None:
    assert len(vocabulary.known_words) >= 150_000
    assert len(vocabulary.words) >= 20_000
    assert len(vocabulary.class_names) == len(set(n.lower() for n in vocabulary.class_names)) == 1000
    completions = vocabulary.complete("eleph", 5)
    assert completions[0] == "elephant"
    assert all(c.startswith("eleph") for c in completions)


@pytest.mark.skipif(
    not Path("/usr/share/wordnet/index.noun").exists(), reason="Debian's wordnet-base is absent"
)
def test_every_wordnet_noun_is_known(vocabulary: Any) -> None:
    lines = Path("/usr/share/wordnet/index.noun").read_text(encoding="latin-1").splitlines()
    lemmas = [line.split()[0].replace("_", " ") for line in lines if line and not line.startswith(" ")]
    assert len(lemmas) > 100_000
    unknown = [lemma for lemma in lemmas if not all(word in vocabulary for word in lemma.split())]
    assert unknown == []


def test_only_the_first_unknown_words_get_spellings(vocabulary: Any) -> None:
    """Close spellings are a scan of the vocabulary each: a query full of unknown
    words gets them for its first few only, and is still answered from the rest."""
    words = ["elephnat", "restaraunt", "telivision", "peson", "streer", "giraffle", "umbrela"]
    result = embed_query(" ".join(words) + " on a beach", vocabulary, read_typos=False)
    assert [word for word, _ in result.ignored_words] == words
    assert all(spellings for _, spellings in result.ignored_words[:MAX_SUGGESTED_WORDS])
    assert all(not spellings for _, spellings in result.ignored_words[MAX_SUGGESTED_WORDS:])


def test_words_newer_than_glove_are_known_and_typos_are_read_as_meant(vocabulary: Any) -> None:
    for word in ("selfie", "selfies", "emoji", "vape"):
        found = embed_query(f"a {word} at the beach", vocabulary)
        assert found.ignored_words == [] and found.corrected_words == (), word
    found = embed_query("a peson on the streer", vocabulary)
    assert found.corrected_words == (("peson", "person"), ("streer", "street"))
    assert found.ignored_words == []


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("a dgo on the beach", "a dog on the beach"),  # two letters swapped
        ("grils playing frisbe", "girls playing frisbee"),
        ("kitchn", "kitchen"),  # the concept and its classes follow the word meant
        ("THERE ARE TWO PEOPLE RIDING HORESES", "THERE ARE TWO PEOPLE RIDING horses"),
        ("A bathroom with a telivision in it", "A bathroom with a television in it"),
    ],
)
def test_a_typo_is_read_as_the_word_meant(vocabulary: Any, typed: str, meant: str) -> None:
    found, wanted = embed_query(typed, vocabulary), embed_query(meant, vocabulary)
    assert found.ignored_words == [] and found.corrected_words
    np.testing.assert_allclose(found.vector, wanted.vector, atol=1e-6)
    assert (found.concepts, found.concept_weight) == (wanted.concepts, wanted.concept_weight)
    assert all(f"Read '{typo}' as '{word}'." in found.notice for typo, word in found.corrected_words)


def test_names_and_quoted_words_are_searched_as_typed(vocabulary: Any) -> None:
    """A capitalised word after the first is a name ("Lassy", not "classy"), and a
    quoted query asks for its words as typed: both are set aside, spellings offered."""
    found = embed_query("a dog like Lassy", vocabulary)
    assert found.corrected_words == () and [w for w, _ in found.ignored_words] == ["Lassy"]
    assert embed_query("Lasy at the beach", vocabulary).corrected_words  # the first word: a typo
    with pytest.raises(QueryError) as caught:
        embed_query('"dgo"', vocabulary)
    assert caught.value.word == "dgo" and caught.value.suggestions[0] == "dog"


def test_quotes_inside_a_sentence_are_punctuation(vocabulary: Any) -> None:
    """Quotes group a phrase in arithmetic (and a whole quoted query); inside a
    sentence they do not cut it into terms to be summed."""
    assert parse('a sign that says "STOP"').terms == [(1.0, Phrase("a sign that says  STOP "))]
    np.testing.assert_allclose(
        query_vector('a "hot dog" stand', vocabulary), query_vector("a hot dog stand", vocabulary), atol=1e-6
    )
    assert len(parse('"crane (wading bird)" + water').terms) == 2
    found = embed_query('a "dgo" on the beach', vocabulary)
    assert found.corrected_words == (("dgo", "dog"),)


@pytest.mark.parametrize(
    ("text", "wanted", "avoided"),
    [
        ("a kitchen with no people", "a kitchen", ("people",)),
        ("a street without cars", "a street", ("cars",)),
        ("A beach with no people, only dogs", "A beach, only dogs", ("people",)),
        ("a dog with a ball and no leash", "a dog with a ball", ("leash",)),
        ("dogs, no cats and no birds", "dogs", ("cats", "birds")),
        ("not a dog", "not a dog", ()),  # nothing leads to it: as typed
        ("The No Parking sign", "The No Parking sign", ()),
        ("without", "without", ()),
    ],
)
def test_split_negations(text: str, wanted: str, avoided: tuple[str, ...]) -> None:
    assert split_negations(text) == (wanted, avoided)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("photos from Paris", "Paris"),
        ("A picture of a kitchen with a stove.", "a kitchen with a stove."),
        ("old photos of grandma", "grandma"),
        ("Pictures taken at the beach", "the beach"),
        ("my vacation photos!", "my vacation"),
        ("a man taking a photo of a dog", "a man taking a photo of a dog"),  # the photo is in it
        ("a shot glass", "a shot glass"),
        ("a view of the city", "a view of the city"),
        ("photos", "photos"),  # nothing else to say: as typed
        ("a picture", "a picture"),
        ("2019 photos", "2019 photos"),
    ],
)
def test_the_frame_of_a_text_about_photos_is_left_out(text: str, shown: str) -> None:
    assert without_photo_frame(text) == shown


def test_only_the_first_unknown_words_may_be_read_as_typos(vocabulary: Any) -> None:
    """Reading a typo may scan the vocabulary: a query of many unknown words has its
    first few read, and the rest set aside."""
    found = embed_query(" ".join(["dgo"] * (MAX_READ_TYPOS + 5)), vocabulary)
    assert found.corrected_words == (("dgo", "dog"),)  # listed once
    assert [word for word, _ in found.ignored_words] == ["dgo"]  # those after the first ten: set aside


def test_a_label_named_in_a_text_is_read_as_the_label(vocabulary: Any) -> None:
    """ "Grandma at the beach" with a label Grandma: label:Grandma + at the beach."""
    grandma = vocabulary.text_vector("an old woman")

    def label_vector(name: str) -> np.ndarray:
        assert name == "Grandma"
        return grandma

    found = embed_query("grandma at the beach", vocabulary, label_vector, labels=["Grandma", "Mom & Dad"])
    assert found.labels == ("Grandma",)
    wanted = grandma + query_vector("at the beach", vocabulary)
    np.testing.assert_allclose(found.vector, wanted / np.linalg.norm(wanted), atol=1e-5)
    alone = embed_query("photos of GRANDMA", vocabulary, label_vector, labels=["Grandma"])
    assert alone.labels == ("Grandma",)  # nothing else said: the label alone
    np.testing.assert_allclose(alone.vector, grandma / np.linalg.norm(grandma), atol=1e-5)
    assert embed_query("grandmas at the beach", vocabulary, labels=["Grandma"]).labels == ()  # whole words
    assert embed_query('"grandma at the beach"', vocabulary, labels=["Grandma"]).labels == ()  # quoted


def test_a_label_name_with_symbols_is_found_in_a_text(vocabulary: Any) -> None:
    seen: list[str] = []

    def label_vector(name: str) -> np.ndarray:
        seen.append(name)
        return vocabulary.text_vector("people")

    found = embed_query("mom & dad on the beach", vocabulary, label_vector, labels=["Mom & Dad", "C++"])
    assert found.labels == ("Mom & Dad",) and seen == ["Mom & Dad"]

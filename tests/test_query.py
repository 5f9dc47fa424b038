"""The query language and the vocabulary behind it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from devise_app.engine.query import Label, Phrase, QueryError, Sum, parse, query_vector, query_words


def nearest(vocabulary: Any, text: str, k: int = 1) -> list[str]:
    vector = query_vector(text, vocabulary)
    return [w for w, _ in vocabulary.nearest(vector, k, exclude=query_words(parse(text)))]


def test_analogy_king_man_woman_gives_queen(vocabulary: Any) -> None:
    assert nearest(vocabulary, "king - man + woman") == ["queen"]


def test_analogy_capitals(vocabulary: Any) -> None:
    assert nearest(vocabulary, "paris - france + italy") == ["rome"]


def test_lookup_is_case_insensitive(vocabulary: Any) -> None:
    np.testing.assert_array_equal(query_vector("Dog", vocabulary), query_vector("dog", vocabulary))


def test_class_phrase_uses_its_label_vector(vocabulary: Any) -> None:
    vector = query_vector("Great White Shark", vocabulary)
    np.testing.assert_allclose(vector, vocabulary.vector("great white shark"), atol=1e-6)
    assert vocabulary.is_class("great white shark")


def test_free_phrase_averages_its_words(vocabulary: Any) -> None:
    expected = vocabulary.vector("red") + vocabulary.vector("car")
    np.testing.assert_allclose(
        query_vector("red car", vocabulary), expected / np.linalg.norm(expected), atol=1e-6
    )


def test_weights_and_brackets(vocabulary: Any) -> None:
    weighted = query_vector("2*dog + beach", vocabulary)
    expected = 2 * vocabulary.vector("dog") + vocabulary.vector("beach")
    np.testing.assert_allclose(weighted, expected / np.linalg.norm(expected), atol=1e-6)
    np.testing.assert_allclose(
        query_vector("(king - man) + woman", vocabulary),
        query_vector("king - man + woman", vocabulary),
        atol=1e-6,
    )


def test_parse_tree() -> None:
    tree = parse('2*dog - label:"Summer 2024" + hot dog')
    assert isinstance(tree, Sum)
    assert tree.terms == [(2.0, Phrase(["dog"])), (-1.0, Label("Summer 2024")), (1.0, Phrase(["hot", "dog"]))]


def test_quoted_class_name_with_brackets(vocabulary: Any) -> None:
    name = next(n for n in vocabulary.class_names if "(" in n)
    np.testing.assert_allclose(query_vector(f'"{name}"', vocabulary), vocabulary.vector(name), atol=1e-6)


def test_unknown_word_names_it_and_suggests(vocabulary: Any) -> None:
    with pytest.raises(QueryError) as caught:
        query_vector("elephnat + beach", vocabulary)
    assert "'elephnat'" in str(caught.value)
    assert "elephant" in caught.value.suggestions


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("dog +", "ends"),
        ("(dog", "bracket"),
        ("dog - dog", "cancels"),
        ("dog )", "Unexpected"),
        ("1000*dog", "weight"),
        ("label:", "needs a name"),
        ('""', "Empty quotes"),
        ("dog ^ cat", "Unexpected character"),
    ],
)
def test_bad_queries_say_what_is_wrong(vocabulary: Any, text: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        query_vector(text, vocabulary)


def test_labels_resolve_through_the_callback(vocabulary: Any) -> None:
    grandma = vocabulary.vector("woman")
    vector = query_vector("label:Grandma + beach", vocabulary, lambda name: grandma)
    expected = grandma + vocabulary.vector("beach")
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-6)
    with pytest.raises(QueryError, match="No label"):
        query_vector("label:Grandma", vocabulary)


def test_vocabulary_size_and_completion(vocabulary: Any) -> None:
    assert len(vocabulary.words) >= 200_000
    assert len(vocabulary.class_names) == len(set(n.lower() for n in vocabulary.class_names)) == 1000
    completions = vocabulary.complete("eleph", 5)
    assert completions[0] == "elephant"
    assert all(c.startswith("eleph") for c in completions)

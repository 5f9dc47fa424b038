"""Queries that name concepts are re-ranked by the classifier's evidence
(devise_app.engine.concepts), with the real model and vocabulary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from devise_app.engine import concepts, visual
from devise_app.engine.query import embed_query, mentioned_concepts
from devise_app.engine.visual import ranked_scores


def test_no_concept_or_no_weight_leaves_the_cosines() -> None:
    cosines = np.array([0.3, 0.2, 0.1])
    probabilities = np.full((3, 4), 0.25)
    np.testing.assert_allclose(concepts.reranked(cosines, probabilities, (), 0.6), cosines, rtol=1e-6)
    np.testing.assert_allclose(concepts.reranked(cosines, probabilities, ((1,),), 0.0), cosines, rtol=1e-6)


def test_weak_but_real_presence_lifts_a_photo_on_the_cosines_scale() -> None:
    cosines = np.array([0.40, 0.35, 0.30, 0.20])
    # photo 2 holds a little of class 0 (p 0.02); the others almost none
    probabilities = np.array(
        [[1e-5, 0.99999, 0, 0], [1e-5, 0, 0.99999, 0], [0.02, 0, 0, 0.98], [1e-5, 0, 0, 0.99999]]
    )
    mixed = concepts.reranked(cosines, probabilities, ((0,),), 0.6)
    assert int(np.argmax(mixed)) == 2
    assert mixed.mean() == pytest.approx(cosines.mean(), abs=1e-6)  # same scale as the cosines
    assert np.all(np.abs(mixed) <= 1.0)


def test_a_query_naming_a_concept_or_a_class_carries_its_classes(vocabulary: Any) -> None:
    cat = embed_query("cats", vocabulary)
    assert cat.concepts == (tuple(vocabulary.concept_classes("cat")),)
    assert cat.concept_weight == concepts.NAMED_WEIGHT
    tabby = embed_query("the tabby cat", vocabulary)
    assert tabby.concepts == ((vocabulary.class_index("tabby cat"),),)


def test_a_sentence_carries_the_concepts_it_mentions(vocabulary: Any) -> None:
    query = embed_query("A cat sleeping on a couch, next to a laptop.", vocabulary)
    named = {vocabulary.class_names[members[0]] for members in query.concepts if len(members) == 1}
    assert {"studio couch", "laptop"} <= named
    assert tuple(vocabulary.concept_classes("cat")) in query.concepts
    assert query.concept_weight == concepts.MENTIONED_WEIGHT
    assert mentioned_concepts("on the of in with", vocabulary) == ()


def test_words_for_the_photo_itself_or_its_owner_do_not_dilute_what_it_shows(vocabulary: Any) -> None:
    dogs = embed_query("dogs", vocabulary)
    texts = ("a photo of a dog", "Pictures of dogs!", "dog photos", "an image of the dogs", "me and my dog")
    for text in texts:
        query = embed_query(text, vocabulary)
        assert query.concepts == dogs.concepts, text
        assert query.concept_weight == concepts.NAMED_WEIGHT, text


def test_a_text_about_photos_is_searched_for_what_they_show_not_for_cameras(vocabulary: Any) -> None:
    """ "photos from Paris" is Paris: the photo nouns of the frame are left out of what
    the encoder reads, where they pulled a text with no class to the cameras."""
    cameras = {vocabulary.class_names.index(name) for name in ("reflex camera", "Polaroid camera")}

    def nearest_classes(text: str) -> set[int]:
        cosines = vocabulary.class_vectors @ embed_query(text, vocabulary).vector
        return set(np.argsort(-cosines)[:5].tolist())

    for text, meant in (("photos from Paris", "Paris"), ("my vacation pictures", "my vacation")):
        np.testing.assert_allclose(
            embed_query(text, vocabulary).vector, embed_query(meant, vocabulary).vector, atol=1e-6
        )
        assert not cameras & nearest_classes(text), text
    quoted = embed_query('"photos from Paris"', vocabulary).vector  # quoted: read as typed
    assert float(quoted @ embed_query("Paris", vocabulary).vector) < 0.99
    assert cameras & nearest_classes("photos")  # a text about photos alone stays near them
    for text in ("a photo with no people", "pictures of a beach without people"):
        assert embed_query(text, vocabulary).avoided_words == ("people",), text


def test_the_concepts_of_a_short_text_weigh_more_than_a_sentences(vocabulary: Any) -> None:
    """Two words a person types ("a dog at the beach") say more about each than a
    caption's many words do."""
    short = embed_query("a dog at the beach", vocabulary)
    assert tuple(vocabulary.concept_classes("dog")) in short.concepts
    assert short.concept_weight == concepts.SHORT_TEXT_WEIGHT
    longer = embed_query("a brown dog running after a ball on the sandy beach", vocabulary)
    assert longer.concept_weight == concepts.MENTIONED_WEIGHT
    assert concepts.MENTIONED_WEIGHT < concepts.SHORT_TEXT_WEIGHT < concepts.ASSOCIATED_WEIGHT


def test_a_short_text_adds_the_classes_near_what_its_words_say_together(vocabulary: Any) -> None:
    """WordNet's boats are no sailing ships, but "a boat with sails" is nearest the
    schooner; "red car" is near the red wine only by its word "red"."""
    sails = embed_query("a boat with sails", vocabulary)
    assert sails.concepts[0] == tuple(vocabulary.concept_classes("boat"))
    assert vocabulary.class_index("schooner") not in sails.concepts[0]
    assert any(vocabulary.class_index("schooner") in members for members in sails.concepts[1:])
    red_car = embed_query("red car", vocabulary)
    assert red_car.concept_weight == concepts.SHORT_TEXT_WEIGHT
    assert all(vocabulary.class_index("red wine") not in members for members in red_car.concepts)


def test_an_ed_form_keeps_the_near_class_its_verb_is_about(vocabulary: Any) -> None:
    """ "pot" names WordNet's cooking pots; "potted plant" is nearest the flowerpot
    (the class "pot"), which its verb is about, while "a plane flying" stays off the
    fly, which the verb is not."""
    flowerpot = vocabulary.class_names.index("pot")
    assert flowerpot not in vocabulary.concept_classes("pot")
    potted = embed_query("potted plant", vocabulary)
    assert any(flowerpot in members for members in potted.concepts)
    fly = vocabulary.class_names.index("fly")
    assert all(fly not in members for members in embed_query("a plane flying", vocabulary).concepts)


def test_a_description_adds_the_classes_its_words_tell_apart(vocabulary: Any, monkeypatch: Any) -> None:
    """The definitions of the reptiles that have a shell are the turtles', and of the
    animals with a trunk the elephants'; the concept itself stays too."""
    turtles = tuple(vocabulary.concept_classes("turtle"))
    shell = embed_query("a reptile with a shell", vocabulary)
    assert shell.concepts[0] == tuple(vocabulary.concept_classes("reptile"))
    assert any(sorted(members) == sorted(turtles) for members in shell.concepts[1:])
    assert shell.concept_weight >= concepts.SHORT_TEXT_WEIGHT
    elephants = {vocabulary.class_index("Indian elephant"), vocabulary.class_index("African elephant")}
    trunk = mentioned_concepts("an animal with a trunk", vocabulary)
    assert any(set(members) == elephants for members in trunk)
    # nothing to tell apart in a concept's own words; a longer text is no description
    assert mentioned_concepts("two dogs", vocabulary) == (tuple(vocabulary.concept_classes("dog")),)
    caption = "A man in a helmet rides his bike past the parked cars on a busy street."
    found = mentioned_concepts(caption, vocabulary)
    monkeypatch.setattr(vocabulary, "definition_words", lambda index: frozenset())
    assert mentioned_concepts(caption, vocabulary) == found
    reptiles = tuple(vocabulary.concept_classes("reptile"))
    assert mentioned_concepts("a reptile with a shell", vocabulary) == (reptiles,)


def test_a_noun_of_several_words_mentions_nothing_its_words_would(vocabulary: Any) -> None:
    """A tennis player is not the ballplayer of "player", and dog food is not a dog;
    a class named by several words is still named ("hot dog")."""
    assert mentioned_concepts("a player", vocabulary)
    assert vocabulary.is_compound_noun("tennis player")
    assert mentioned_concepts("a tennis player", vocabulary) == ()
    assert mentioned_concepts("Two tennis players on a court.", vocabulary) == ()
    assert mentioned_concepts("a bowl of dog food", vocabulary) == mentioned_concepts("a bowl", vocabulary)
    hot_dog = mentioned_concepts("a hot dog", vocabulary)
    assert hot_dog == ((vocabulary.class_index("hotdog"),),)


def test_a_verb_after_its_subject_mentions_no_noun(vocabulary: Any) -> None:
    """The "flies" of "a machine that flies" is no insect, nor "can" in "something you
    can sit on" a milk can; "that dog" is still a dog, and "a can of soda" a can."""
    fly = vocabulary.class_index("fly")
    for text, named in (("a machine that flies", "a machine"), ("birds that fly", "birds")):
        found = mentioned_concepts(text, vocabulary)
        assert found[0] == mentioned_concepts(named, vocabulary)[0], text
        assert all(fly not in members for members in found), text  # a description may add some of them
    assert mentioned_concepts("something you can sit on", vocabulary) == ()
    assert mentioned_concepts("a photo of that dog", vocabulary) == mentioned_concepts("a dog", vocabulary)
    assert mentioned_concepts("a can of soda", vocabulary) == mentioned_concepts("a can", vocabulary) != ()


def test_nouns_that_say_what_part_or_kind_mention_nothing(vocabulary: Any) -> None:
    """ "a piece of sports equipment" is no towel, though WordNet's "piece" holds bath
    towels and dishrags, and "a kind of dog" is the dogs."""
    assert vocabulary.concept_classes("piece")
    equipment = mentioned_concepts("a piece of sports equipment", vocabulary)
    assert equipment == mentioned_concepts("sports equipment", vocabulary) != ()
    assert mentioned_concepts("a kind of dog", vocabulary) == mentioned_concepts("a dog", vocabulary)
    assert mentioned_concepts("a place to sleep", vocabulary) == mentioned_concepts("to sleep", vocabulary)
    road = mentioned_concepts("a car in the middle of the road", vocabulary)
    assert road == mentioned_concepts("a car in the road", vocabulary)  # "middle" is no candle


def test_an_ing_form_names_its_noun_only_when_the_verb_is_about_it(vocabulary: Any) -> None:
    """Skiing is about skis, ironing about irons, sledding about sleds; flying is
    not about flies, nor watching about watches, nor caring about cars."""
    assert vocabulary.class_index("ski") in {
        i for members in mentioned_concepts("skiing", vocabulary) for i in members
    }
    assert mentioned_concepts("ironing", vocabulary) == mentioned_concepts("an iron", vocabulary) != ()
    assert mentioned_concepts("sledding", vocabulary) == mentioned_concepts("a sled", vocabulary) != ()
    flying = mentioned_concepts("birds flying", vocabulary)
    assert flying[0] == mentioned_concepts("birds", vocabulary)[0]
    assert all(vocabulary.class_index("fly") not in members for members in flying)
    assert mentioned_concepts("people watching", vocabulary) == mentioned_concepts("people", vocabulary)
    assert mentioned_concepts("caring", vocabulary) == ()
    assert mentioned_concepts("bottled", vocabulary) == mentioned_concepts("bottle", vocabulary) != ()
    # nor do the classes near such a word that its stem names: a fly is near "flying"
    for text, stem_class in (("flying", "fly"), ("watching", "digital watch")):
        near = {i for members in embed_query(text, vocabulary).concepts for i in members}
        assert near and vocabulary.class_index(stem_class) not in near, text


def test_the_build_keeps_the_verbs_about_a_made_thing_of_the_same_word() -> None:
    from devise_app.training.text_space import ARTIFACT_SYNSET, verb_nouns
    from devise_app.training.wordnet import Synset

    synsets = {
        ARTIFACT_SYNSET: Synset(ARTIFACT_SYNSET, ["artifact"], ""),
        1: Synset(1, ["ski"], "", [ARTIFACT_SYNSET]),
        2: Synset(2, ["fly"], "", [3]),  # an insect: no made thing
        3: Synset(3, ["insect"], ""),
        4: Synset(4, ["bowl"], "", [ARTIFACT_SYNSET]),  # the bowling ball: no class below it
    }
    below = {1: {795}, 2: {308}, 3: {308}, ARTIFACT_SYNSET: {795}}
    named = {"ski": {795}, "fly": {308}, "bowl": {659}}
    same_word = {"ski": {1}, "fly": {2}, "bowl": {4}, "walk": {9}}
    assert verb_nouns(same_word, synsets, below, named) == ["ski"]


def test_the_build_lists_the_words_of_each_class_and_its_ancestors_definitions() -> None:
    from devise_app.training.labels import ImageNetClass
    from devise_app.training.text_space import definition_words
    from devise_app.training.wordnet import Synset

    synsets = {
        1: Synset(1, ["reptile"], "any cold-blooded vertebrate"),
        2: Synset(2, ["turtle"], 'reptiles having a bony shell; "a turtle"', [1]),
        3: Synset(3, ["box turtle"], "chiefly terrestrial turtle", [2]),
        4: Synset(4, ["lizard"], "relatively long-bodied reptile; with legs", [1]),
    }
    classes = [ImageNetClass(0, "n00000003", "box turtle"), ImageNetClass(1, "n00000004", "lizard")]
    box_turtle, lizard = (set(line.split()) for line in definition_words(classes, synsets))
    assert {"shell", "bony", "reptile", "reptiles", "turtle", "terrestrial", "cold", "blooded"} <= box_turtle
    assert "box" not in box_turtle  # its own name is the query's business, not its definition's
    assert "shell" not in lizard and "legs" not in lizard  # quoted examples and later clauses aside
    assert {"long", "bodied", "reptile"} <= lizard


@pytest.mark.skipif(
    not Path("/usr/share/wordnet/data.verb").exists(), reason="Debian's wordnet-base is absent"
)
def test_wordnet_links_verbs_to_the_nouns_of_the_same_word() -> None:
    from devise_app.training.wordnet import load_nouns, same_word_nouns

    found = same_word_nouns(load_nouns())
    assert 4228054 in found["ski"]  # the ski, ImageNet's n04228054
    assert 2881546 in found["bowl"] and 2881193 not in found["bowl"]  # the bowling ball, not the dish


def test_the_build_drops_a_lone_class_far_from_a_frequent_word() -> None:
    from devise_app.training.labels import ImageNetClass
    from devise_app.training.text_space import far_lone_classes
    from devise_app.training.wordnet import Synset

    synsets = {
        1: Synset(1, ["pool"], "an excavation filled with water"),
        2: Synset(2, ["cistern"], "a tank for storing water", [1]),
        3: Synset(3, ["rain barrel"], "a barrel used as a cistern", [2]),
        4: Synset(4, ["can"], "an airtight sealed metal container"),
        5: Synset(5, ["milk can"], "a large can for transporting milk", [4]),
    }
    classes = [ImageNetClass(0, "n00000003", "rain barrel"), ImageNetClass(1, "n00000005", "milk can")]
    senses = {"pool": [1], "can": [4], "sweet": [9], "tabby": [9], "frogman": [9]}
    east, north = np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32)
    labels = np.stack([north, north])  # both label texts read far from every word

    def embed(words: list[str]) -> np.ndarray:
        return np.stack([east for _ in words])

    concepts = {"pool": [0], "can": [1], "sweet": [0, 1], "tabby": [0], "frogman": [0]}
    known = ["pool", "can", "sweet", "tabby"]  # "frogman": not a frequent word
    # "can": right above its class; "sweet": several classes; "tabby": a class name
    assert far_lone_classes(concepts, {"tabby"}, known, embed, labels, classes, synsets, senses) == ["pool"]
    labels = np.stack([east, east])  # near: nothing is dropped
    assert far_lone_classes(concepts, {"tabby"}, known, embed, labels, classes, synsets, senses) == []


def test_the_build_lists_nouns_of_two_or_three_words_without_classes() -> None:
    from devise_app.training.text_space import compound_nouns

    senses = {
        "tennis player": [1],
        "hot dog": [2],
        "cat": [3],
        "a b c d": [4],
        "carpenter's kit": [5],
        "t.v. set": [6],
    }
    assert compound_nouns(senses, {"hot dog": [934]}) == ["carpenter's kit", "tennis player"]


def test_an_analogy_is_re_ranked_by_the_classes_its_answer_names(vocabulary: Any) -> None:
    query = embed_query("puppy - dog + cat", vocabulary)
    assert "Egyptian cat" in query.nearest_words
    (answer,) = query.concepts  # one concept: any of the classes its answers name
    assert vocabulary.class_index("Egyptian cat") in answer
    assert vocabulary.class_index("Chihuahua") not in answer
    assert query.concept_weight == concepts.ANSWER_WEIGHT
    assert not {"puppy", "dog", "cat"} & set(query.nearest_words)  # its own words are no answer


def test_an_analogy_whose_answers_name_no_class_is_not_re_ranked(vocabulary: Any) -> None:
    query = embed_query("king - man + woman", vocabulary)
    assert "queen" in query.nearest_words
    assert query.concepts == () and query.concept_weight == 0.0


def test_an_analogy_is_also_re_ranked_by_the_kin_its_last_term_defines(vocabulary: Any) -> None:
    """ "car - wheels + wings": of the car's kin, the aircraft are defined by wings;
    "chair - sit + sleep": of the chair's, the bed ("a place to sleep")."""
    wings = embed_query("car - wheels + wings", vocabulary)
    assert wings.concept_weight == concepts.ANSWER_WEIGHT
    kin = wings.concepts[-1]
    assert vocabulary.class_index("airliner") in kin
    assert not {vocabulary.class_index(name) for name in ("cab", "sports car", "racer")} & set(kin)
    sleep = embed_query("chair - sit + sleep", vocabulary)
    assert (vocabulary.class_index("four-poster"),) in sleep.concepts
    # a word for people names no kind of thing: "boy - young + old" is not the Old World lizards
    old = embed_query("boy - young + old", vocabulary)
    assert all(vocabulary.class_index("agama") not in members for members in old.concepts)


def test_a_sum_is_re_ranked_by_what_its_texts_name(vocabulary: Any) -> None:
    query = embed_query("2*dog + tabby cat", vocabulary)
    assert query.concepts[0] == tuple(vocabulary.concept_classes("dog"))
    assert (vocabulary.class_index("tabby cat"),) in query.concepts
    assert query.concept_weight == concepts.SHORT_TEXT_WEIGHT
    assert query.nearest_words  # the header says where it landed


def test_one_text_has_no_answer_words(vocabulary: Any) -> None:
    assert embed_query("a dog on a beach", vocabulary).nearest_words == ()


@pytest.mark.parametrize("text", ["cat", "puppy - dog + cat"])
def test_library_search_mixes_the_evidence_of_stored_features(
    text: str, library: Any, photo_dir: Path, run_index: Callable[..., Any], vocabulary: Any
) -> None:
    run_index(library, [photo_dir])
    found = library.find(text, top=50)
    assert found.hits[0].path.name == "chelsea.png"
    query = embed_query(text, vocabulary)
    assert found.nearest_words == list(query.nearest_words)
    scores, expected, cosines, _ = _scores_as_ranked(library, found.hits, query)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert not np.allclose(expected, cosines, atol=1e-3)  # the re-ranking changed the scores


def _scores_as_ranked(
    library: Any, hits: list[Any], query: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The hits' scores, those ``visual.ranked_scores`` gives them from what the library
    stores, their cosines and their class probabilities (in the catalog's order)."""
    ids, features = library.catalog.features(hit.photo_id for hit in hits)
    stored = dict(zip(*library.catalog.vectors(), strict=True))
    cosines = np.array([float(stored[i] @ query.vector) for i in ids.tolist()])
    probabilities = concepts.class_probabilities(features, library.encoder.head)
    by_id = {hit.photo_id: hit.score for hit in hits}
    scores = np.array([by_id[i] for i in ids.tolist()])
    return scores, ranked_scores(query, cosines, probabilities, features), cosines, probabilities


def test_words_for_people_are_re_ranked_by_what_people_wear(vocabulary: Any) -> None:
    people = vocabulary.people_classes
    assert {"jersey", "suit", "bikini", "cowboy hat", "scuba diver"} <= {
        vocabulary.class_names[i] for i in people
    }
    typed = {
        "man": "man",
        "a woman": "woman",
        "children": "child",
        "the girls": "girl",
        "person": "person",
    }
    for text, word in typed.items():
        query = embed_query(text, vocabulary)
        assert query.concepts == vocabulary.people_evidence(word), text
        assert query.concepts[0] == people, text
        assert query.concept_weight == concepts.NAMED_WEIGHT
    assert embed_query("person", vocabulary).concepts == (people,)
    assert people in embed_query("Two men riding horses on a beach.", vocabulary).concepts
    # a noun whose first sense is not a person keeps its own classes ("cow": an ox, not a woman)
    assert embed_query("cat", vocabulary).concepts == (tuple(vocabulary.concept_classes("cat")),)
    assert not vocabulary.is_people_word("cow")
    assert embed_query("player", vocabulary).concepts == ((vocabulary.class_index("ballplayer"),),)


def test_colours_surnames_and_verb_forms_are_not_people(vocabulary: Any) -> None:
    # WordNet's first noun senses of "white" and "young" are people, of "lin" a surname,
    # and "have" and "cook" are mostly verbs; "filled" is not "fille" (a girl)
    for word in ("white", "young", "lin", "have", "cook"):
        assert not vocabulary.is_people_word(word), word
    assert all(vocabulary.is_people_word(word) for word in ("fille", "mother", "teen", "newborn"))
    people = vocabulary.people_classes
    for text in ("white", "A plate filled with food.", "A white bowl."):
        assert people not in embed_query(text, vocabulary).concepts, text
    assert people in embed_query("A mother in a kitchen.", vocabulary).concepts


def test_words_for_people_also_take_the_classes_whose_definitions_name_them(vocabulary: Any) -> None:
    people = vocabulary.people_classes

    def named_by(word: str) -> set[str]:
        evidence = vocabulary.people_evidence(word)
        assert evidence[0] == people
        return {vocabulary.class_names[i] for extra in evidence[1:] for i in extra}

    assert {"crib", "cradle"} <= named_by("baby")  # "a baby bed with high sides"
    assert "bikini" in named_by("woman")  # "a woman's very brief bathing suit"
    assert not named_by("adult")  # "adult male chicken": animals are left out
    assert not named_by("person")  # any person answers "person"
    assert embed_query("babies", vocabulary).concepts == vocabulary.people_evidence("baby")
    asleep = embed_query("A baby asleep in a crib.", vocabulary)
    assert vocabulary.people_evidence("baby")[1] in asleep.concepts


def test_a_noun_with_no_classes_borrows_those_seen_with_it(vocabulary: Any) -> None:
    """ "kitchen" names no class, but a microwave's definition names kitchens: the
    evidence is weaker than a named concept's, and a sentence mentions it."""

    def borrowed(text: str) -> set[str]:
        found = embed_query(text, vocabulary).concepts
        return {vocabulary.class_names[i] for members in found for i in members}

    assert {"microwave", "toaster"} <= borrowed("kitchens")
    assert {"ski", "snowmobile"} <= borrowed("Snow!")
    assert embed_query("the kitchen", vocabulary).concept_weight == concepts.ASSOCIATED_WEIGHT
    assert concepts.MENTIONED_WEIGHT < concepts.ASSOCIATED_WEIGHT < concepts.NAMED_WEIGHT
    sentence = embed_query("A dog sleeping in a kitchen.", vocabulary)
    assert vocabulary.associated_classes("kitchen") in sentence.concepts
    assert tuple(vocabulary.concept_classes("dog")) in sentence.concepts
    assert sentence.concept_weight == concepts.MENTIONED_WEIGHT
    assert vocabulary.associated_classes("dog") == ()  # it names a concept of its own
    assert vocabulary.associated_classes("woman") == ()  # a word for people: people_evidence
    assert vocabulary.associated_classes("water") == ()  # named in passing by too many


def test_the_build_lets_only_nouns_without_classes_borrow() -> None:
    from devise_app.training.text_space import associable_nouns

    senses = {"kitchen": [1], "dog": [2], "open": [3], "woman": [4], "the": [5], "ice rink": [6]}
    senses["xyzzy"] = [7]  # never tagged in the corpora
    counts = {"kitchen": {"noun": 30}, "dog": {"noun": 40}, "open": {"adj": 90, "verb": 50, "noun": 2}}
    counts |= {"woman": {"noun": 80}, "the": {"noun": 1}, "ice rink": {"noun": 3}}
    senses |= {"cup": [8], "women": [9], "eating": [10]}  # a class name; a plural of a word for people
    counts |= {"cup": {"noun": 20}, "women": {"noun": 9}, "eating": {"noun": 5}}
    assert associable_nouns(senses, {"dog": [160]}, {"woman", "cup"}, counts) == ["kitchen"]


def test_a_word_stands_for_its_most_frequent_sense(vocabulary: Any) -> None:
    cats = {vocabulary.class_names[i] for i in vocabulary.concept_classes("cat")}
    assert {"tabby", "Siamese cat"} <= cats
    assert not cats & {"lion", "leopard", "cheetah"}  # big cat is the second sense of "cat"
    # a sense used at least half as often as the first counts too: the flowers of "plant"
    assert vocabulary.class_names.index("daisy") in vocabulary.concept_classes("plant")
    # a first sense with no classes below it falls back to the others: "table" the array has
    # none; but not to senses the tagged corpora never use ("head": not a promontory)
    tables = {vocabulary.class_names[i] for i in vocabulary.concept_classes("table")}
    assert {"desk", "dining table"} <= tables
    assert vocabulary.concept_classes("head") == vocabulary.concept_classes("painter") == []
    # a noun WordNet's tagged corpora never use has no most frequent sense: all count
    # ("bike" is listed motorbike first, bicycle second)
    bikes = {vocabulary.class_names[i] for i in vocabulary.concept_classes("bike")}
    assert {"moped", "mountain bike", "bicycle-built-for-two"} <= bikes


def test_only_the_nearest_candidates_are_re_ranked(
    library: Any,
    photo_dir: Path,
    run_index: Callable[..., Any],
    vocabulary: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A filtered search can ask for many hits: past RERANKED_CANDIDATES they keep
    their cosines and order, and no more features are read."""
    from devise_app.engine import search

    run_index(library, [photo_dir])
    monkeypatch.setattr(search, "RERANKED_CANDIDATES", 2)
    hits = library.search("cat", top=50)
    stored = dict(zip(*library.catalog.vectors(), strict=True))
    vector = embed_query("cat", vocabulary).vector
    tail = [hit.score for hit in hits[2:]]
    assert len(hits) == 5
    np.testing.assert_allclose(tail, [float(stored[hit.photo_id] @ vector) for hit in hits[2:]], atol=1e-5)
    assert tail == sorted(tail, reverse=True)


def test_a_class_name_that_is_a_words_rare_sense_means_the_usual_one(vocabulary: Any) -> None:
    """ImageNet's "plane" is the carpenter's tool; typed, "plane" means an aeroplane."""
    airliner = vocabulary.class_names.index("airliner")
    for text in ("plane", "planes", "a plane"):
        assert embed_query(text, vocabulary).concepts == ((airliner,),), text
    assert airliner in embed_query("A plane flying over the city.", vocabulary).concepts[0]
    tool = vocabulary.class_names.index("plane")
    assert vocabulary.class_index("carpenter's plane") == tool  # the class keeps its other names
    assert embed_query("carpenter's plane", vocabulary).concepts == ((tool,),)
    assert vocabulary.class_index("tabby") is not None  # a class that is its word's usual sense stays
    # an alias for a class that is a rare sense of an everyday word: "head" is no promontory
    assert vocabulary.class_index("head") is None
    assert vocabulary.class_names[vocabulary.class_index("headland")] == "promontory"
    head = embed_query("head", vocabulary).concepts
    assert vocabulary.class_index("headland") not in {i for members in head for i in members}


def test_an_everyday_word_does_not_name_a_class_it_reaches_by_a_far_sense(vocabulary: Any) -> None:
    """WordNet's pool (an excavation) holds the rain barrel by way of reservoir and
    cistern; typed, "pool" is a swimming pool, which has no class."""
    barrel = vocabulary.class_names.index("rain barrel")
    for text in ("pool", "point", "press"):
        assert vocabulary.concept_classes(text) == [], text
        assert barrel not in {i for members in embed_query(text, vocabulary).concepts for i in members}
    assert vocabulary.concept_classes("rain barrel") == [barrel]
    assert vocabulary.concept_classes("reptile")  # a concept of many classes stays
    assert vocabulary.concept_classes("can") == [vocabulary.class_names.index("milk can")]  # right below


def test_words_for_what_a_person_does_are_ranked_by_their_text(vocabulary: Any) -> None:
    """What people wear says who is there, not what they do: "surfer", "skier" and
    "tennis player" are ranked by what the text encoder knows of the activity (the
    clothing evidence drowned it: a surfer's AP on the COCO sample 0.655 -> 0.163)."""
    for word in ("surfer", "skier", "chef", "tennis player", "passenger", "painter"):
        assert not vocabulary.is_people_word(word), word
    assert embed_query("surfers", vocabulary).concepts == ()
    assert vocabulary.people_classes not in embed_query("A surfer on a wave.", vocabulary).concepts
    for word in ("man", "women", "child", "baby", "girl", "mother", "people", "person"):
        assert embed_query(word, vocabulary).concepts[0] == vocabulary.people_classes, word


def test_what_a_text_asks_not_to_see_counts_against_a_photo() -> None:
    cosines = np.array([0.40, 0.38, 0.20])
    # photos 0 and 1 hold as much of class 0; photo 0 also class 1, which the text asks not to see
    probabilities = np.array([[0.5, 0.5, 0.0], [0.5, 1e-5, 0.49999], [0.01, 0.01, 0.98]])
    mixed = concepts.reranked(cosines, probabilities, ((0,),), 0.6, avoided=((1,),))
    assert int(np.argmax(mixed)) == 1
    assert int(np.argmax(concepts.reranked(cosines, probabilities, ((0,),), 0.6))) == 0


def test_a_text_that_asks_not_to_see_something_is_searched_without_it(vocabulary: Any) -> None:
    kitchen = embed_query("a kitchen with no people", vocabulary)
    assert kitchen.avoided == vocabulary.people_evidence("people")
    assert kitchen.avoided_words == ("people",)
    # a phrase that names no class is left out of the text but not said to be ranked lower
    leash = embed_query("a dog without a leash", vocabulary)
    assert leash.avoided == () and leash.avoided_words == ()
    np.testing.assert_allclose(leash.vector, embed_query("a dog", vocabulary).vector, atol=1e-6)
    np.testing.assert_allclose(kitchen.vector, embed_query("a kitchen", vocabulary).vector, atol=1e-6)
    assert kitchen.concepts == embed_query("a kitchen", vocabulary).concepts
    dogs = embed_query("dogs but not cats", vocabulary)
    assert dogs.concepts == (tuple(vocabulary.concept_classes("dog")),)
    assert dogs.avoided == (tuple(vocabulary.concept_classes("cat")),)
    assert dogs.concept_weight == concepts.NAMED_WEIGHT
    # nothing else said: the avoided evidence alone, at a short text's weight
    city = embed_query("a city without cars", vocabulary)
    assert city.concepts == () and city.avoided and city.concept_weight == concepts.SHORT_TEXT_WEIGHT
    # "no" that starts a name is no negation
    assert embed_query("the No Parking sign", vocabulary).avoided == ()


def test_library_search_lowers_the_photos_of_what_a_query_asks_not_to_see(
    library: Any, photo_dir: Path, run_index: Callable[..., Any]
) -> None:
    run_index(library, [photo_dir])
    plain = [hit.path.name for hit in library.search("a room", top=10)]
    without = [hit.path.name for hit in library.search("a room with no cat", top=10)]
    assert plain.index("chelsea.png") < len(plain) - 1
    assert without[-1] == "chelsea.png"
    assert library.find("a room with no cat", 10).without == ["cat"]


def test_a_short_text_that_mentions_no_class_borrows_the_nearest_label_texts(vocabulary: Any) -> None:
    beach = embed_query("beach", vocabulary)
    assert beach.concept_weight == concepts.ASSOCIATED_WEIGHT
    assert vocabulary.class_index("seashore") in beach.concepts[0]
    sink = embed_query("a bathroom sink", vocabulary)
    assert sink.concepts == ((vocabulary.class_index("washbasin"),),)

    # near by its word pieces only: "fork" is not a forklift
    def borrowed(text: str) -> set[int]:
        return {i for members in embed_query(text, vocabulary).concepts for i in members}

    assert vocabulary.class_index("forklift") not in borrowed("fork")
    assert vocabulary.class_index("fire engine") not in borrowed("campfire")
    assert vocabulary.class_index("ski") in borrowed("skier")  # a word and its ending are one word
    # a longer text keeps to what it mentions
    assert embed_query("a quiet beach at dusk", vocabulary).concepts == ()
    assert embed_query("a photo", vocabulary).concepts == ()  # no content word


def test_feedback_raises_the_photos_that_look_like_the_best_ones() -> None:
    rng = np.random.default_rng(7)
    looks = {"cat": rng.normal(size=64), "car": rng.normal(size=64)}
    kinds = ["cat"] * 10 + ["car"] * 10
    features = np.stack([looks[kind] + 0.3 * rng.normal(size=64) for kind in kinds]).astype(np.float32)
    scores = np.linspace(0.2, 0.3, 20)[::-1].copy()  # the cats' scores a little higher overall
    scores[:5] = [0.6, 0.59, 0.58, 0.57, 0.56]  # the best five are cats
    scores[9], scores[10] = 0.40, 0.41  # a cat just below a car
    raised = visual.with_feedback(scores, features)
    assert raised[9] > raised[10]
    assert np.argsort(-raised)[:5].tolist() == [0, 1, 2, 3, 4]
    assert raised.max() == pytest.approx(scores.max())  # the best score stays: relevance reads it
    assert raised.std() == pytest.approx(scores.std(), rel=1e-4)  # and the spread below it


def test_feedback_leaves_fewer_than_twice_its_photos_alone() -> None:
    scores = np.array([0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0, -0.1, -0.2], dtype=np.float32)
    features = np.random.default_rng(1).normal(size=(len(scores), 8)).astype(np.float32)
    assert len(scores) < 2 * visual.FEEDBACK_PHOTOS
    np.testing.assert_array_equal(visual.with_feedback(scores, features), scores)


@pytest.mark.parametrize(
    ("text", "feedback"),
    [
        ("beach", True),  # names no class: borrows seashore, lakeside
        ("a plate of food", True),  # two content words
        ("puppy - dog + cat", True),  # arithmetic
        ("2*dog + beach", True),
        ("a kitchen with no people", True),  # what it asks to see is short
        ("a woman", True),  # no class shows people: what they wear stands in
        ("dog", False),  # names a concept: the classifier knows dogs
        ("tabby cat", False),  # names a class
        ("A dog running on the beach with a frisbee in its mouth.", False),  # a sentence: one photo meant
    ],
)
def test_short_texts_that_name_no_class_and_arithmetic_use_feedback(
    text: str, feedback: bool, vocabulary: Any
) -> None:
    assert embed_query(text, vocabulary).feedback is feedback


def test_a_query_with_a_label_uses_no_feedback(vocabulary: Any) -> None:
    def label_vector(name: str) -> np.ndarray:
        return vocabulary.class_vectors[vocabulary.class_index("tabby cat")]

    assert not embed_query("label:Grandma + beach", vocabulary, label_vector).feedback
    assert not embed_query("Grandma at the beach", vocabulary, label_vector, labels=["Grandma"]).feedback


def test_library_search_ranks_a_short_text_by_the_look_of_its_best_photos(
    library: Any, photo_dir: Path, run_index: Callable[..., Any], vocabulary: Any
) -> None:
    from PIL import Image, ImageOps

    for photo in sorted(photo_dir.iterdir()):  # two more looks of each: 15 photos
        with Image.open(photo) as image:
            rgb = image.convert("RGB")
            ImageOps.mirror(rgb).save(photo_dir / f"mirrored-{photo.stem}.png")
            width, height = rgb.size
            rgb.crop((width // 8, height // 8, width - width // 8, height - height // 8)).save(
                photo_dir / f"cropped-{photo.stem}.png"
            )
    run_index(library, [photo_dir])
    text = "breakfast"
    query = embed_query(text, vocabulary)
    assert query.feedback
    found = library.find(text, top=50)
    assert len(found.hits) >= 2 * visual.FEEDBACK_PHOTOS
    scores, expected, cosines, probabilities = _scores_as_ranked(library, found.hits, query)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    without = concepts.reranked(cosines, probabilities, query.concepts, query.concept_weight, query.avoided)
    assert not np.allclose(expected, without, atol=1e-3)  # the look moved the scores
    assert found.hits[0].path.stem.endswith("coffee")  # espresso: the breakfast

"""Everyday queries on the COCO sample's captioned photos (part of ``bench quality``).

What a person types for their own photos: one word (the issue's "dog, beach, snow,
child, woman, baby, city, pool, surfing", and other common subjects), words for
people, short phrases, texts that ask not to see something ("a kitchen with no
people"), and the one-word and phrase queries typed with one slip of the hand
("dgo", "a plate of fod"), and word arithmetic: analogies ("puppy - dog + cat") and
sums ("dog + beach"). A photo is relevant when its five human captions use the
query's words (any of the listed forms; for a phrase or a sum, some form of each of
its parts; for an analogy, its answer: "cat", "kitten"), so no category list
decides what a kitchen or a crowd is; for a text that asks not to see something,
also when COCO's tags do not name that. Queries that fewer than ``MIN_RELEVANT``
photos answer are left out of the means.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from devise_app.engine.evaluation import average_precision
from devise_app.engine.query import QueryVector, embed_query
from devise_app.engine.spelling import LETTERS, keys_adjacent
from devise_app.engine.vectors import softmax
from devise_app.engine.visual import ranked_scores
from devise_app.engine.vocabulary import Vocabulary

MIN_RELEVANT = 3

Forms = tuple[str, ...]

ONE_WORD: dict[str, Forms] = {
    "dog": ("dog", "dogs", "puppy"),
    "cat": ("cat", "cats", "kitten"),
    "beach": ("beach",),
    "snow": ("snow", "snowy"),
    "city": ("city",),
    "pool": ("pool",),
    "surfing": ("surfing", "surfer", "surfers", "surf", "surfboard"),
    "kitchen": ("kitchen",),
    "street": ("street", "streets"),
    "food": ("food",),
    "pizza": ("pizza", "pizzas"),
    "car": ("car", "cars"),
    "bus": ("bus", "buses"),
    "train": ("train", "trains"),
    "bike": ("bike", "bikes", "bicycle", "bicycles"),
    "horse": ("horse", "horses"),
    "elephant": ("elephant", "elephants"),
    "giraffe": ("giraffe", "giraffes"),
    "sheep": ("sheep",),
    "bird": ("bird", "birds"),
    "plane": ("plane", "planes", "airplane", "airplanes", "jet"),
    "boat": ("boat", "boats"),
    "computer": ("computer", "computers", "laptop", "laptops"),
    "phone": ("phone", "phones", "cellphone"),
    "table": ("table", "tables"),
    "bed": ("bed", "beds", "bedroom"),
    "bathroom": ("bathroom",),
    "room": ("room",),
    "water": ("water",),
    "ocean": ("ocean", "sea"),
    "park": ("park",),
    "field": ("field",),
    "sky": ("sky",),
    "tree": ("tree", "trees"),
    "grass": ("grass", "grassy"),
    "cake": ("cake", "cakes"),
    "umbrella": ("umbrella", "umbrellas"),
    "tennis": ("tennis",),
    "baseball": ("baseball",),
    "skateboard": ("skateboard", "skateboarder", "skateboarding"),
    "skiing": ("ski", "skiing", "skier", "skiers", "skis"),
}

PEOPLE: dict[str, Forms] = {
    "man": ("man", "men"),
    "woman": ("woman", "women"),
    "child": ("child", "children", "kid", "kids"),
    "boy": ("boy", "boys"),
    "girl": ("girl", "girls"),
    "baby": ("baby", "babies"),
    "people": ("people", "person", "persons"),
    "lady": ("lady", "ladies"),
    "guy": ("guy", "guys"),
    "crowd": ("crowd",),
    "family": ("family",),
    "couple": ("couple",),
    "surfer": ("surfer", "surfers"),
    "skier": ("skier", "skiers"),
    "skateboarder": ("skateboarder", "skateboarders", "skater"),
    "snowboarder": ("snowboarder", "snowboarders"),
    "tennis player": ("tennis player", "tennis players"),
    "baseball player": ("baseball player", "batter", "pitcher"),
    "chef": ("chef", "chefs", "cook"),
    "rider": ("rider", "riders"),
}

PHRASES: dict[str, tuple[Forms, ...]] = {  # each part must be used, in any of its forms
    "people eating pizza": (("pizza",), ("eating", "eat", "eats")),
    "a dog playing frisbee": (("dog", "dogs"), ("frisbee", "frisbees")),
    "a man surfing": (("surfing", "surfer", "surfboard", "surf"),),
    "a cat sleeping": (("cat", "cats", "kitten"), ("sleeping", "asleep", "sleeps", "laying", "lying")),
    "bathroom sink": (("bathroom",), ("sink",)),
    "cars on the street": (("car", "cars"), ("street", "road")),
    "a plate of food": (("plate",), ("food",)),
    "kitchen with a stove": (("kitchen",), ("stove", "oven")),
    "someone riding a horse": (("horse", "horses"), ("riding", "rides", "ride")),
    "a bus on the road": (("bus",), ("road", "street")),
    "a train at the station": (("train",), ("station", "platform")),
    "skiing in the snow": (("ski", "skiing", "skier", "skiers", "skis"),),
    "a baseball game": (("baseball", "batter", "pitcher"),),
    "a boat on the water": (("boat", "boats"), ("water", "lake", "river", "ocean")),
    "a laptop on a desk": (("laptop", "computer"), ("desk", "table")),
    "people with umbrellas": (("umbrella", "umbrellas"),),
    "a living room": (("living",), ("room",)),
    "sheep in a field": (("sheep",),),
    "a plane in the sky": (("plane", "airplane", "jet", "airliner", "planes", "airplanes"),),
    "a bedroom": (("bedroom", "bed"),),
    "a child": (("child", "kid", "boy", "girl", "children", "kids"),),
    "a woman": (("woman", "women", "lady"),),
}

# a text that asks not to see something: the captions use its words, and COCO's tags
# (categories or supercategories) hold none of what it asks not to see
NEGATED: dict[str, tuple[tuple[Forms, ...], str]] = {
    "a kitchen with no people": ((("kitchen",),), "person"),
    "a room with no people": ((("room",),), "person"),
    "a street with no people": ((("street", "streets"),), "person"),
    "a living room with no people": ((("living",), ("room",)), "person"),
    "a beach without people": ((("beach",),), "person"),
    "a dog without a person": ((("dog", "dogs"),), "person"),
    "a street without cars": ((("street", "streets", "road"),), "car"),
    "a table without food": ((("table", "tables"),), "food"),
    "a field without animals": ((("field",),), "animal"),
    "water without boats": ((("water",),), "boat"),
}

# word arithmetic: an analogy is answered by photos whose captions name its answer
ANALOGIES: dict[str, Forms] = {
    "puppy - dog + cat": ("cat", "cats", "kitten", "kitty"),
    "kitten - cat + dog": ("dog", "dogs", "puppy"),
    "car - road + water": ("boat", "boats"),
    "car - road + rails": ("train", "trains"),
    "bicycle - pedals + engine": ("motorcycle", "motorcycles", "motorbike"),
    "bus - road + sky": ("airplane", "plane", "jet", "airplanes", "planes"),
    "surfing - water + snow": ("ski", "skiing", "skis", "snowboard", "snowboarding", "skier"),
    "skiing - snow + water": ("surf", "surfing", "surfboard", "surfer", "waves"),
    "cow - farm + africa": ("giraffe", "giraffes", "zebra", "zebras", "elephant", "elephants"),
    "horse - farm + zoo": ("giraffe", "giraffes", "zebra", "zebras", "elephant", "elephants"),
    "pizza - italy + america": ("hamburger", "burger", "sandwich", "hot dog", "fries"),
    "kitchen - cook + sleep": ("bed", "bedroom", "beds"),
    "bedroom - sleep + cook": ("kitchen", "stove", "oven"),
    "tennis - racket + bat": ("baseball",),
    "baseball - bat + racket": ("tennis",),
    "laptop - portable + desk": ("computer", "desktop", "monitor", "computers"),
    "dog - bark + meow": ("cat", "cats", "kitten"),
    "cat - meow + bark": ("dog", "dogs"),
    "sheep - wool + milk": ("cow", "cows", "cattle"),
    "train - rails + road": ("bus", "truck", "car", "buses", "cars", "trucks"),
    "snowboard - snow + waves": ("surfboard", "surfboards", "surfing", "surfer"),
    "plate - food + drink": ("cup", "glass", "mug", "wine", "coffee"),
    "sofa - sit + sleep": ("bed", "beds"),
    "bed - sleep + sit": ("couch", "sofa", "chair", "chairs", "bench"),
}
# and a sum by photos whose captions name each of its terms
SUMS: dict[str, tuple[Forms, ...]] = {
    "dog + beach": (("dog", "dogs"), ("beach",)),
    "cat + bed": (("cat", "cats"), ("bed",)),
    "pizza + table": (("pizza",), ("table",)),
    "man + surfboard": (("man",), ("surfboard", "surfing", "surf")),
    "bus + street": (("bus",), ("street",)),
    "2*dog + frisbee": (("dog", "dogs"), ("frisbee",)),
    "cat + laptop": (("cat", "cats"), ("laptop", "computer")),
    "train + station": (("train",), ("station",)),
    "elephant + water": (("elephant", "elephants"), ("water",)),
    "woman + umbrella": (("woman",), ("umbrella",)),
    "snow + skis": (("snow",), ("skis", "ski", "skiing")),
    "kitchen + oven": (("kitchen",), ("oven",)),
    "horse + field": (("horse", "horses"), ("field",)),
    "boat + river": (("boat", "boats"), ("river",)),
    "giraffe + trees": (("giraffe", "giraffes"), ("tree", "trees")),
}

GROUPS: dict[str, dict[str, tuple[Forms, ...]]] = {
    "one word": {word: (forms,) for word, forms in ONE_WORD.items()},
    "words for people": {word: (forms,) for word, forms in PEOPLE.items()},
    "phrases": PHRASES,
    "asking not to see": {text: parts for text, (parts, _) in NEGATED.items()},
    "word arithmetic: analogies": {text: (forms,) for text, forms in ANALOGIES.items()},
    "word arithmetic: sums": SUMS,
}
TYPO_GROUP = "one word or phrase, with a typo"  # the one-word and phrase queries, one slip each
TYPO_SEED = 2026
_SLIPS = ("swap", "miss", "double", "neighbour", "extra")


def with_a_typo(text: str, vocabulary: Vocabulary, rng: random.Random) -> str:
    """``text`` with one keyboard slip in its longest word (two letters swapped, one
    missed or doubled, a neighbouring key hit instead or as well), drawn until the
    slip is no known word ("beach" -> "bench" would be another query)."""
    word = max(text.split(), key=len)
    for _ in range(100):
        i, slip = rng.randrange(len(word)), rng.choice(_SLIPS)
        neighbours = [key for key in LETTERS if keys_adjacent(key, word[i])]
        if slip == "swap" and i + 1 < len(word) and word[i] != word[i + 1]:
            typo = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif slip == "miss" and len(word) > 3:
            typo = word[:i] + word[i + 1 :]
        elif slip == "double":
            typo = word[:i] + word[i] + word[i:]
        elif slip in ("neighbour", "extra") and neighbours:
            key = rng.choice(neighbours)
            typo = word[:i] + key + word[i + (slip == "neighbour") :]
        else:
            continue
        if typo not in vocabulary:
            return text.replace(word, typo, 1)
    return text


def caption_text(entry: dict[str, Any]) -> str:
    """A photo's captions as one lower-case text of words, padded with spaces."""
    return " " + " ".join(re.findall(r"[a-z]+", " ".join(entry["captions"]).lower())) + " "


def relevant(texts: list[str], parts: tuple[Forms, ...]) -> np.ndarray:
    return np.array([all(any(f" {form} " in text for form in forms) for forms in parts) for text in texts])


def _without(tags: list[set[str]], tag: str) -> np.ndarray:
    return np.array([tag not in found for found in tags])


@dataclass
class EverydayQueries:
    """The everyday queries that enough captioned photos answer, embedded once."""

    captioned: list[int]  # rows of the captioned photos
    groups: dict[str, list[tuple[QueryVector, np.ndarray]]]  # group -> (query, relevant photos)

    @classmethod
    def embed(
        cls, entries: list[dict[str, Any]], vocabulary: Vocabulary, min_relevant: int = MIN_RELEVANT
    ) -> EverydayQueries:
        captioned = [i for i, e in enumerate(entries) if e["captions"]]
        texts = [caption_text(entries[i]) for i in captioned]
        tags = [{*entries[i].get("tags", ()), *entries[i].get("supercategories", ())} for i in captioned]
        groups: dict[str, list[tuple[QueryVector, np.ndarray]]] = {}
        for group, queries in GROUPS.items():
            answered = [(text, relevant(texts, parts)) for text, parts in queries.items()]
            if group == "asking not to see":
                answered = [(text, wanted & _without(tags, NEGATED[text][1])) for text, wanted in answered]
            kept = [(text, wanted) for text, wanted in answered if wanted.sum() >= min_relevant]
            groups[group] = [(embed_query(text, vocabulary), wanted) for text, wanted in kept]
        rng = random.Random(TYPO_SEED)
        slipped = {**GROUPS["one word"], **PHRASES}
        typed = [
            (with_a_typo(text, vocabulary, rng), relevant(texts, parts)) for text, parts in slipped.items()
        ]
        groups[TYPO_GROUP] = [
            (embed_query(text, vocabulary), wanted) for text, wanted in typed if wanted.sum() >= min_relevant
        ]
        return cls(captioned, groups)

    def mean_aps(
        self, photos: np.ndarray, logits: np.ndarray, features: np.ndarray, rerank: bool = True
    ) -> dict[str, float]:
        """Mean AP of each group that has queries: as the app ranks, or by cosines alone."""
        rows = self.captioned
        vectors, probabilities, looks = photos[rows], softmax(logits[rows]), features[rows]
        result = {}
        for group, queries in self.groups.items():
            aps = []
            for query, wanted in queries:
                scores = vectors @ query.vector
                if rerank:
                    scores = ranked_scores(query, scores, probabilities, looks)
                aps.append(average_precision(scores, wanted))
            if aps:
                result[group] = float(np.mean(aps))
        return result


def everyday_table(
    entries: list[dict[str, Any]],
    photos: np.ndarray,
    logits: np.ndarray,
    features: np.ndarray,
    vocabulary: Vocabulary,
    min_relevant: int = MIN_RELEVANT,
) -> EverydayQueries:
    """Prints mean AP per group of queries over the captioned photos, as the app ranks
    and by cosines alone; returns the queries, for other photo vectors to be scored."""
    queries = EverydayQueries.embed(entries, vocabulary, min_relevant)
    app = queries.mean_aps(photos, logits, features)
    plain = queries.mean_aps(photos, logits, features, rerank=False)
    print(
        f"everyday queries on the {len(queries.captioned)} captioned photos (relevant: the captions use "
        f"the query's words; queries with fewer than {min_relevant} such photos left out):"
    )
    print("| queries | count | mAP | cosines alone | random |")
    print("|---|---|---|---|---|")
    for group, found in queries.groups.items():
        if not found:
            print(f"| {group} | 0 | - | - | - |")
            continue
        chance = np.mean([wanted.mean() for _, wanted in found])
        print(f"| {group} | {len(found)} | {app[group]:.3f} | {plain[group]:.3f} | {chance:.3f} |")
    return queries

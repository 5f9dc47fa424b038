"""The word space of the model: the text encoder's embeddings, reduced to the span
of the 1000 label texts (build time only).

- Label text: ``"<class name>, a kind of <parent>: <first sentence of the WordNet gloss>"``
  ("tabby cat, a kind of domestic cat: a cat with a grey or tawny coat mottled with
  black"). Every class gets a distinct, meaningful text, including the three pairs
  of classes that share a name (their display names are told apart, labels.py).
- Projection: a photo's word part is a mixture of label embeddings, so it lies in
  their span; a query only meets photos through its component in that span. The
  label embeddings, centred on their mean, are reduced to their top principal
  directions (``TEXT_DIM``): queries and labels are projected alike and renormalised.
- Known words: every lemma of WordNet 3.0 (nouns, verbs, adjectives, adverbs, their
  irregular forms), the 250,000 most frequent words of GloVe 6B's word list (only
  the list: its vectors are no longer used) and the encoder's own whole-word
  tokens. A query word outside these is set aside and reported
  (devise_app.engine.query), since the encoder would happily embed a typo's word
  pieces. On the COCO sample's 1,575 captions this sets aside 30 words, nearly all
  typos ("peson", "streer", "restaraunt") or run-together words ("sittingon").
- Describe words: the words "describe" can answer with, embedded once: single
  WordNet nouns and adjectives among the most frequent GloVe words.
- Concepts: every WordNet noun lemma with ImageNet classes at or below it, and
  those classes (for queries such as "dog", "fruit", "vehicle").
- Compound nouns: WordNet's nouns of two or three words with no classes ("tennis
  player"), which a text's mentions read whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from devise_app.engine.query import FUNCTION_WORDS, MAX_MENTION_WORDS
from devise_app.engine.vocabulary import WORD as TOKEN
from devise_app.engine.vocabulary import base_forms, fold, plural_bases
from devise_app.training.labels import ImageNetClass
from devise_app.training.wordnet import Synset, ancestors, wnid_offset

WORDNET = Path("/usr/share/wordnet")
# SCOWL's large American English list (Debian's wamerican-large): words newer than
# GloVe 6B's 2014 corpus ("selfie", "emoji", "hashtag") and rarer ones
DICTIONARY = Path("/usr/share/dict/american-english-large")
KNOWN_GLOVE_WORDS = 250_000
DESCRIBE_POOL = 60_000  # describe words come from this many most frequent GloVe words
WORD = re.compile(r"^[a-z][a-z'-]*[a-z]$|^[a-z]$")


def first_sentence(gloss: str) -> str:
    """A gloss without its quoted examples, up to its first semicolon."""
    return gloss.split('"')[0].split(";")[0].strip().rstrip(",;: ")


def label_texts(classes: list[ImageNetClass], synsets: dict[int, Synset], names: list[str]) -> list[str]:
    texts = []
    for name, c in zip(names, classes, strict=True):
        synset = synsets[wnid_offset(c.wnid)]
        parent = f", a kind of {synsets[synset.hypernyms[0]].lemmas[0]}" if synset.hypernyms else ""
        texts.append(f"{name}{parent}: {first_sentence(synset.gloss)}")
    return texts


def fit_projection(label_embeddings: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (encoder_dim, dim) projection onto the labels' top principal directions."""
    mean = label_embeddings.astype(np.float64).mean(axis=0)
    _, _, right = np.linalg.svd(label_embeddings - mean, full_matrices=False)
    projection = right[:dim].T
    # a fixed sign per direction, so rebuilds agree
    signs = np.sign(projection[np.abs(projection).argmax(axis=0), np.arange(dim)])
    return mean.astype(np.float32), (projection * signs).astype(np.float32)


def project(embeddings: np.ndarray, mean: np.ndarray, projection: np.ndarray) -> np.ndarray:
    reduced = (embeddings - mean) @ projection
    return (reduced / np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def wordnet_lemmas(parts: tuple[str, ...] = ("noun", "verb", "adj", "adv")) -> dict[str, list[str]]:
    """Lemmas (lower case, spaces for underscores) of each part of speech, and the
    irregular forms of its exception list (mice, geese, ran)."""
    lemmas: dict[str, list[str]] = {}
    for part in parts:
        found: list[str] = []
        for kind in ("index", "exc"):
            path = WORDNET / (f"index.{part}" if kind == "index" else f"{part}.exc")
            if not path.exists():
                raise FileNotFoundError(f"{path} is missing: install Debian's wordnet-base package")
            for line in path.read_text(encoding="latin-1").splitlines():
                if line and not line.startswith(" "):
                    found.append(line.split()[0].replace("_", " ").lower())
        lemmas[part] = found
    return lemmas


def tokenizer_words(tokenizer_json: str) -> list[str]:
    """The whole words of a WordPiece vocabulary (no ``##`` pieces, no special tokens)."""
    import json

    vocab = json.loads(tokenizer_json)["model"]["vocab"]
    return sorted(w for w in vocab if WORD.match(w) and len(w) > 1)


def dictionary_words(path: Path = DICTIONARY) -> list[str]:
    """The lower-case words of a spelling dictionary (one word a line; names, which
    are capitalised, and possessives left out)."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: install Debian's wamerican-large package")
    lines = path.read_text(encoding="utf-8").split()
    return sorted({w for w in lines if w.isalpha() and w.islower() and WORD.match(w)})


def known_words(
    glove_words: list[str], lemmas: dict[str, list[str]], extra: tuple[str, ...] | list[str] = ()
) -> list[str]:
    """Single words, most frequent (GloVe order) first, then the others sorted."""
    tokens: set[str] = set(extra)
    for found in lemmas.values():
        for lemma in found:
            tokens.update(t for t in re.split(r"[\s]+", lemma) if t)
            tokens.update(t for t in re.split(r"[\s\-/]+", lemma) if t)
    frequent = [w for w in glove_words[:KNOWN_GLOVE_WORDS] if WORD.match(w)]
    seen = set(frequent)
    rest = sorted(t for t in tokens if t not in seen and t.isprintable() and "\n" not in t)
    return frequent + rest


def describe_words(glove_words: list[str], lemmas: dict[str, list[str]], size: int) -> list[str]:
    """Frequent single-word nouns and adjectives, most frequent first."""
    wanted = {lemma for part in ("noun", "adj") for lemma in lemmas[part] if WORD.match(lemma)}
    return [w for w in glove_words[:DESCRIBE_POOL] if w in wanted and len(w) > 1][:size]


DOMINANT_FIRST_SENSE = 8  # tagged uses of a first sense that make a word's untagged senses unlikely
USUAL_SENSE_RATIO = 4  # times more tagged uses, for a word's usual sense to outweigh a class's


def concepts(
    below: dict[int, set[int]],
    synsets: dict[int, Synset],
    senses: dict[str, list[int]],
    sense_counts: dict[str, dict[int, int]],
) -> dict[str, list[int]]:
    """Every noun lemma with ImageNet classes at or below one of its synsets -> those
    classes: the classes below its most frequent sense ("cat": the true cats, not the
    lions and leopards of its second sense, big cat) and below any sense used at
    least half as often ("plant": the flowers too, not only the lumbermill). When the
    first sense has none, the classes below its other senses ("table": desks and
    dining tables), less the senses WordNet's tagged corpora never use when they use
    the first one at least ``DOMINANT_FIRST_SENSE`` times ("head": not promontory,
    "painter": not cougar; a word with no such sense has no concept). A noun the
    tagged corpora never use has no most frequent sense (its senses' order says
    nothing): all its senses count ("bike": motorbikes and bicycles)."""
    members: dict[str, set[int]] = {}
    for node, found in below.items():
        for lemma in synsets[node].lemmas:
            members.setdefault(lemma.lower(), set()).update(found)
    chosen: dict[str, list[int]] = {}
    for word, found in sorted(members.items()):
        offsets, counts = senses.get(word, []), sense_counts.get(word, {})
        if offsets and any(counts.values()):
            first = below.get(offsets[0])
            if first:
                first_uses = counts.get(1, 0)
                close = [
                    offset
                    for number, offset in enumerate(offsets[1:], 2)
                    if 2 * counts.get(number, 0) >= first_uses >= 1
                ]
                found = first.union(*(below.get(offset, set()) for offset in close))
            elif counts.get(1, 0) >= DOMINANT_FIRST_SENSE:
                tagged = [offset for number, offset in enumerate(offsets, 1) if counts.get(number, 0)]
                found = set().union(*(below.get(offset, set()) for offset in tagged))
        if found:
            chosen[word] = sorted(found)
    return chosen


FAR_LABEL_COSINE = 0.25  # below it, the encoder sees no tie between a word and its class's label text
WELL_KNOWN_WORDS = 20_000  # the most frequent known words: the encoder's nearness is telling for these


def far_lone_classes(
    concepts: dict[str, list[int]],
    named: set[str],
    known: list[str],
    embed: Callable[[list[str]], np.ndarray],
    label_vectors: np.ndarray,
    classes: list[ImageNetClass],
    synsets: dict[int, Synset],
    senses: dict[str, list[int]],
) -> list[str]:
    """The frequent words whose WordNet concept is one class they do not name, two
    or more links below the word's sense, whose label text the encoder puts far from
    them (unit ``embed`` vectors in the space of the unit ``label_vectors``; cosine
    under ``FAR_LABEL_COSINE``): "pool" reaches the rain barrel by way of reservoir
    and cistern, "point" the bakery, "press" the comic book. A person who types such
    a word means another sense. Left alone: a class right below the word's sense (a
    milk can is a "can", whatever the encoder makes of the modal verb), rare words,
    where the encoder's nearness says little ("frogman": scuba diver), and concepts
    of several classes ("sweet": trifle, ice cream), where WordNet's grouping is the
    evidence."""
    candidates = set(known[:WELL_KNOWN_WORDS]) - named

    def right_below(word: str, index: int) -> bool:
        parents = synsets[wnid_offset(classes[index].wnid)].hypernyms
        return any(offset in parents for offset in senses.get(word, []))

    lone = sorted(
        word
        for word, members in concepts.items()
        if len(members) == 1 and word in candidates and not right_below(word, members[0])
    )
    if not lone:
        return []
    cosines = np.einsum("ij,ij->i", embed(lone), label_vectors[[concepts[word][0] for word in lone]])
    return [word for word, cosine in zip(lone, cosines, strict=True) if cosine < FAR_LABEL_COSINE]


def usual_sense_names(
    classes: list[ImageNetClass],
    names: dict[str, int],
    aliases: set[str],
    below: dict[int, set[int]],
    senses: dict[str, list[int]],
    sense_counts: dict[str, dict[int, int]],
) -> list[str]:
    """The class names and aliases (``names``: name -> class index) that typed should
    mean their word's usual sense, which WordNet's tagged corpora use at least
    ``USUAL_SENSE_RATIO`` times as often as the class's: when that sense has classes
    of its own ("plane": airliners, not the carpenter's plane; "tub": bathtubs), and
    for an alias (``aliases``) when it is also used ``DOMINANT_FIRST_SENSE`` times
    ("head" is not a promontory, "painter" not a cougar, "site" not a web site). The
    classes stay reachable by their other names ("carpenter's plane", "promontory")."""
    usual = []
    for name, index in sorted(names.items()):
        offsets, counts = senses.get(name, []), sense_counts.get(name, {})
        offset = wnid_offset(classes[index].wnid)
        if offset not in offsets[1:]:
            continue  # the word's usual sense, or not one of its senses
        first_uses, class_uses = counts.get(1, 0), counts.get(offsets.index(offset) + 1, 0)
        if first_uses < USUAL_SENSE_RATIO * max(class_uses, 1):
            continue
        first_classes = below.get(offsets[0], set())
        if (first_classes and index not in first_classes) or (
            name in aliases and first_uses >= DOMINANT_FIRST_SENSE
        ):
            usual.append(name)
    return usual


PEOPLE_SYNSETS = (7846, 7942152)  # person.n.01 (person, individual, someone, ...), people.n.01
# who a person is, by age, sex or kin: adult, juvenile, male and female (persons), relative
WHO_SYNSETS = (9605289, 9622049, 9624168, 9619168, 10235549)
WORN_CONCEPTS = ("person", "clothing", "headdress")  # their classes are the evidence of people
CLEARLY_MORE_OFTEN = 10  # tagged uses by which a word's other parts of speech outnumber its noun


def people_words(
    synsets: dict[int, Synset],
    senses: dict[str, int],
    concepts: dict[str, list[int]],
    counts: dict[str, dict[str, int]],
) -> list[str]:
    """The nouns whose most frequent sense is WordNet's person or people, or says who
    a person is by age, sex or kin (a synset below people or ``WHO_SYNSETS``: man,
    woman, child, baby, mother; not cow or cat, whose first senses are animals, nor
    what a person does, surfer, skier, chef, whose text says more than what people
    wear), less:
    - those with classes of their own narrower than person's ("player": ballplayer),
      which their concept serves better;
    - names of one person (the first sense of "cooke" and "lin" is a surname);
    - words tagged clearly more often as an adjective or a verb than as a noun in
      WordNet's tagged corpora ("white", "young", "have": a white plate shows no
      one; "teen" and "newborn", 6 uses as adjectives, stay)."""
    children: dict[int, list[int]] = {}
    for synset in synsets.values():
        for parent in synset.hypernyms:
            children.setdefault(parent, []).append(synset.offset)
    roots = (PEOPLE_SYNSETS[1], *WHO_SYNSETS)
    seen, frontier = {*PEOPLE_SYNSETS, *roots}, list(roots)
    while frontier:
        frontier = [child for node in frontier for child in children.get(node, []) if child not in seen]
        seen.update(frontier)
    person = set(concepts.get("person", []))

    def names_one_person(word: str, synset: Synset) -> bool:
        return not any(lemma.lower() == word and lemma.islower() for lemma in synset.lemmas)

    def mostly_not_a_noun(word: str) -> bool:
        found = counts.get(word, {})
        return found.get("adj", 0) + found.get("verb", 0) > found.get("noun", 0) + CLEARLY_MORE_OFTEN

    return sorted(
        word
        for word, first in senses.items()
        if first in seen
        and (word not in concepts or set(concepts[word]) >= person)
        and not names_one_person(word, synsets[first])
        and not mostly_not_a_noun(word)
    )


MAX_ASSOCIATED_CLASSES = 8  # more definitions name a word in passing ("water", "head")
ANIMAL_SYNSET = 15388  # animal.n.01: "adult" is in the definitions of cock and ram


def mentioning_classes(
    classes: list[ImageNetClass], synsets: dict[int, Synset], people: list[str], nouns: Iterable[str] = ()
) -> dict[str, list[int]]:
    """The classes (animals aside) whose WordNet definition names a word, plurals
    and possessives included:
    - each word for people in ``people`` ("baby": crib, cradle, bassinet, "a baby
      bed ..."; "woman": bikini, "a woman's very brief bathing suit"): evidence of
      such a person beyond what people wear. Not for the words of person and people
      themselves, which any person answers ("a room where a person sleeps");
    - each other noun in ``nouns`` (``associable_nouns``) named by at most
      ``MAX_ASSOCIATED_CLASSES`` definitions ("kitchen": microwave, toaster, waffle
      iron; "snow": ski, snowmobile, snowplow): what such a place or thing is seen with."""
    roots = {lemma.lower() for offset in PEOPLE_SYNSETS for lemma in synsets[offset].lemmas}
    people_wanted = set(people) - roots
    wanted = people_wanted | set(nouns)
    found: dict[str, set[int]] = {}
    for c in classes:
        offset = wnid_offset(c.wnid)
        if ANIMAL_SYNSET in ancestors(synsets, offset):
            continue
        for token in TOKEN.findall(first_sentence(synsets[offset].gloss).lower()):
            for base in {b for form in plural_bases(token) for b in plural_bases(form)} & wanted:
                found.setdefault(base, set()).add(c.index)
    return {
        word: sorted(members)
        for word, members in sorted(found.items())
        if word in people_wanted or len(members) <= MAX_ASSOCIATED_CLASSES
    }


def associable_nouns(
    senses: dict[str, list[int]],
    concepts: dict[str, list[int]],
    named: set[str],
    counts: dict[str, dict[str, int]],
) -> list[str]:
    """The one-word nouns that name no concept and are not in ``named`` (class names,
    aliases and words for people), nor plurals of such ("men"), and that WordNet's
    tagged corpora use as a noun at least as often as otherwise ("kitchen", "street",
    "snow"; not "open", "close" or "old", nor -ing forms): those that may borrow the
    classes whose definitions name them (``mentioning_classes``)."""

    def mostly_a_noun(word: str) -> bool:
        found = counts.get(word, {})
        return found.get("noun", 0) >= max(1, sum(n for part, n in found.items() if part != "noun"))

    return sorted(
        word
        for word in senses
        if " " not in word
        and not any(base in concepts or base in named for base in plural_bases(word))  # "men": man
        and word not in FUNCTION_WORDS
        and not word.endswith("ing")  # mostly verbs in a text: "people eating" (muzzle)
        and mostly_a_noun(word)
    )


def compound_nouns(senses: dict[str, list[int]], concepts: dict[str, list[int]]) -> list[str]:
    """WordNet's nouns of two or three words with no classes of their own ("tennis
    player", "parking lot"): a text that says one means it, not its parts, so its
    words mention nothing ("player" is not a ballplayer there)."""
    return sorted(
        lemma
        for lemma in senses
        if 2 <= len(lemma.split()) <= MAX_MENTION_WORDS
        and lemma not in concepts
        and TOKEN.fullmatch(lemma.replace(" ", ""))
    )


ARTIFACT_SYNSET = 21939  # artifact.n.01: what people make, and use


def verb_nouns(
    same_word: dict[str, set[int]],
    synsets: dict[int, Synset],
    below: dict[int, set[int]],
    named: dict[str, set[int]],
) -> list[str]:
    """The words whose -ing and -ed forms still name their noun's classes (``named``:
    word -> the classes it names): those whose verb comes from a made thing of the
    same word with those classes below it (``same_word``, ``wordnet.same_word_nouns``:
    skiing, the ski; shopping, the shops; ironing, the iron). Not "flying" (WordNet
    derives the insect from the verb, but a fly is no made thing), "watching" (a
    watch as a vigil), "bowling" (the bowling ball has no class: not the dish)."""
    return sorted(
        word
        for word, nouns in same_word.items()
        if word in named
        and any(
            below.get(noun, set()) & named[word]
            and (noun == ARTIFACT_SYNSET or ARTIFACT_SYNSET in ancestors(synsets, noun))
            for noun in nouns
        )
    )


def definition_words(classes: list[ImageNetClass], synsets: dict[int, Synset]) -> list[str]:
    """For each class, the words that define it, in every base form (``base_forms``),
    space-separated: those of the first sentence of its WordNet gloss and of each of
    its ancestors' glosses, and its ancestors' names. A description tells a concept's
    classes apart by them ("a reptile with a shell": turtle, "reptiles having a bony
    shell"; "a dog that herds sheep": shepherd dog, "reared to herd and guard sheep")."""
    lines = []
    for c in classes:
        offset = wnid_offset(c.wnid)
        texts = [first_sentence(synsets[offset].gloss)]
        for above in ancestors(synsets, offset):
            texts.append(first_sentence(synsets[above].gloss))
            texts.extend(synsets[above].lemmas)
        words = {form for text in texts for token in TOKEN.findall(fold(text)) for form in base_forms(token)}
        lines.append(" ".join(sorted(words)))
    return lines


def people_classes(concepts: dict[str, list[int]]) -> list[int]:
    """The ImageNet classes that show a person is there: the few person classes
    (ballplayer, groom, scuba diver) and what people wear (clothing, headdress)."""
    return sorted({index for word in WORN_CONCEPTS for index in concepts.get(word, [])})

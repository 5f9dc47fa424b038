"""Queries: any text, with word arithmetic where it is clearly meant.

Any text is a query: words, phrases, whole sentences, with punctuation, any
casing, plurals and stop-words (``A room with chairs, a table, and a woman in it.``).
A text is embedded whole by the text encoder (``Vocabulary.encode``); a text that
names an ImageNet class ("Great White Shark", "tabby cats") uses the class's full
vector, and one that names a WordNet concept with classes below it ("dogs",
"fruit", "a vehicle") is mixed with those classes (``Vocabulary.concept_vector``).
The classes a text names or mentions (and, for words for people, the classes that
show people; for a noun that names no class, those seen with it) travel with its
vector, for the search to re-rank by the classifier's evidence for them
(``devise_app.engine.concepts``).

Arithmetic is read only where it is clearly meant:

    query   := term (op term)*         op: " + " (or "+" between words), " - " (spaces around)
    term    := ["-"] [number "*"] atom
    atom    := text | '"' text '"' | label | "(" query ")"
    label   := "label:" NAME | 'label:"' any text '"'

e.g. ``king - man + woman``, ``2*dog + beach``, ``label:Grandma + beach``. A hyphen
inside a word (``double-decker``), a dash, a comma or a lone ``*`` are just text;
brackets group only in a query with operators (elsewhere they are text too).
Every term is a unit vector; the result is their weighted sum, normalised.

A word the model does not know (``Vocabulary.known_form``: not in WordNet or the
frequent-word list) is most often a typo: it is read as the likeliest frequent word
near it ("dgo" -> dog; ``devise_app.engine.spelling``), and the answer says so
(``QueryVector.corrected_words``). A word with no such neighbour, a quoted term
(``"dgo"``: searched as typed), a capitalised word after the first (a name:
"Lassy"), a word of one of the library's label names ("bodhi" for a label
"Bodhi") and every unknown word of a query searched as typed (``read_typos``) are
set aside instead, and the answer says so too (``QueryVector.ignored_words``, with
close spellings). Only a query with nothing
usable left raises ``QueryError``: no words at all, only unknown words, a weight
out of range, a ``label:`` without a name or an unknown label, or terms that
cancel out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from devise_app.engine.concepts import (
    ANSWER_WEIGHT,
    ASSOCIATED_WEIGHT,
    MENTIONED_WEIGHT,
    NAMED_WEIGHT,
    SHORT_TEXT_WEIGHT,
    ClassSets,
)
from devise_app.engine.errors import QueryError
from devise_app.engine.vocabulary import WORD, Vocabulary, base_forms, concept_vector, fold, plural_bases

MAX_QUERY_LENGTH = 1000
MAX_WEIGHT = 100.0
MAX_NESTING = 20  # brackets inside brackets
MAX_SUGGESTED_WORDS = 5  # unknown words of one query that get close spellings
MAX_READ_TYPOS = 10  # unknown words of one query that may be read as typos (each may scan the vocabulary)
ARTICLES = ("a ", "an ", "the ", "some ", "two ", "three ", "many ")
MAX_MENTION_WORDS = 3  # the longest concept name looked for inside a text ("hot dog stand")
SHORT_TEXT_WORDS = 2  # a text of at most this many content words is short ("a dog at the beach")
DESCRIPTION_WORDS = 5  # a text of at most this many may describe a kind of thing ("a dog that herds sheep")
# words for the photo itself: in "a photo of a dog" what it shows is the query
PHOTO_WORDS = frozenset(
    "photo photos photograph photographs picture pictures pic pics image images snapshot snapshots "
    "shot shots view views scene scenes closeup".split()
)
# the photo nouns of a text's frame ("photos of Paris", "beach pictures"): the encoder
# reads them as what the photo shows and pulls the text to the cameras
_FRAME_NOUN = r"(?:photo|photograph|picture|pic|image|snapshot|shot|closeup|close-up)s?"
_FRAME_LEAD = (
    r"(?:(?:a|an|the|my|our|your|his|her|their|some|these|those|this|that|all|more|old|new|recent|latest|"
    r"best|favou?rite|nice|cute|\d+)\s+)*"
)
_PHOTO_FRAME = re.compile(
    rf"^\s*{_FRAME_LEAD}{_FRAME_NOUN}\s+(?:(?:taken|shot|made)\s+)?(?:of|from|at|in|on|with|showing)\s+"
    rf"|\s+{_FRAME_NOUN}\s*[.!?]*\s*$",
    re.IGNORECASE,
)
# nouns that say which part, amount or kind of a thing is meant, or where, not what it is:
# "a piece of sports equipment" is no towel ("piece": bath towel, dishrag), "a kind of dog",
# "a pair of skis" no more skis, "in the middle of the road" no candle ("middle": candle)
GENERIC_NOUNS = frozenset(
    "piece part stuff place kind type sort bit lot pair row number variety collection "
    "middle end edge corner".split()
)
# words never read as a concept mentioned in a sentence, though WordNet has a noun for them
FUNCTION_WORDS = (
    frozenset(
        "a an the of on in with and or is are was were be at to it its some two three one four many near "
        "next top front side back up down other while his her their this that there has have by for from "
        "as out over under into onto off who which very my our your me we i you us he she him them they "
        "mine yours ours these those".split()
    )
    | PHOTO_WORDS
    | GENERIC_NOUNS
)

# a word that asks not to see what follows it, up to the next punctuation or one of
# NEGATION_ENDS: "without" anywhere ("a street without cars"), "no" and "not" after
# one of NEGATION_LEADS ("a beach with no people", "dogs but not cats"; not "No
# Parking sign")
NEGATIONS = frozenset({"no", "not", "without"})
NEGATION_LEADS = frozenset({"with", "and", "but", "or", ",", ";"})
NEGATION_ENDS = frozenset({"and", "but", "with", "while", "yet"})
# after these a word is a verb ("a machine that flies", "something you can sit on"),
# never a concept mentioned; so it is after a "that" that follows a noun
SUBJECT_PRONOUNS = frozenset("i you we they he she it who which".split())
_WORD_OR_STOP = re.compile(rf"{WORD.pattern}|[,;:.!?]")
# a short text that mentions no class or concept ("beach", "bathroom sink") is
# re-ranked by the classes whose label texts are this near it, at most this many
SIMILAR_LABEL_COSINE = 0.5
MAX_SIMILAR_CLASSES = 8
_WORD_ENDINGS = frozenset({"s", "es", "er", "ers", "ing", "ed"})  # "skier" is a "ski" word
# what word arithmetic landed on: the nearest vocabulary entries other than its own words
# ("puppy - dog + cat": kitten, kitty, Egyptian cat); an analogy is re-ranked by those naming classes
ANSWER_WORDS = 3

_SCANNER = re.compile(
    r"""
      (?P<label>(?<!\w)label:(?:"(?P<quoted_name>[^"]*)"|(?P<bare_name>[^\s()+*"]+))?)
    | "(?P<quoted>[^"]*)"
    | (?P<weight>(?:\d+(?:\.\d*)?|\.\d+))\s*\*
    | (?P<plus>(?<![+\w])\+(?![+])|(?<=\w)\+(?=\w))
    | (?P<minus>(?:(?<=\s)|^)-(?=\s|[^\W_]|\())
    | (?P<open>\()
    | (?P<close>\))
    """,
    re.VERBOSE | re.UNICODE | re.IGNORECASE,
)


@dataclass
class Phrase:
    """A piece of free text (a word, a phrase, a sentence)."""

    text: str
    position: int = field(default=0, compare=False)  # offset in the query
    quoted: bool = field(default=False, compare=False)


@dataclass
class Label:
    name: str


@dataclass
class Sum:
    terms: list[tuple[float, Node]] = field(default_factory=list)


Node = Phrase | Label | Sum


@dataclass(frozen=True)
class QueryVector:
    """What a query stands for: its unit vector, and the words set aside."""

    vector: np.ndarray
    ignored_words: list[tuple[str, list[str]]] = field(default_factory=list)  # (word, close spellings)
    # the class sets of the concepts it names or mentions, and their weight in a re-ranking (concepts.py)
    concepts: ClassSets = ()
    concept_weight: float = 0.0
    avoided: ClassSets = ()  # the class sets it asks not to see ("a beach with no people")
    avoided_words: tuple[str, ...] = ()  # and the phrases that named them ("people")
    corrected_words: tuple[tuple[str, str], ...] = ()  # typos read as known words: ("dgo", "dog")
    labels: tuple[str, ...] = ()  # label names read inside its text ("Grandma at the beach")
    nearest_words: tuple[str, ...] = ()  # what word arithmetic landed on ("king - man + woman": queen)
    # whether the look of its best photos ranks the rest too (visual.with_feedback): a
    # short text that names no class or concept ("beach", "a plate of food"), arithmetic
    feedback: bool = False

    @property
    def notice(self) -> str:
        """One line on the words read as others and those set aside ("" when none was)."""
        lines = [f"Read '{typed}' as '{meant}'." for typed, meant in self.corrected_words]
        if self.ignored_words:
            parts = []
            for word, suggestions in self.ignored_words:
                hint = f" (did you mean {', '.join(suggestions[:3])}?)" if suggestions else ""
                parts.append(f"'{word}'{hint}")
            lines.append("Unknown words set aside: " + "; ".join(parts) + ".")
        return " ".join(lines)


@dataclass
class _Token:
    kind: str  # text, quoted, label, weight, plus, minus, open, close
    text: str
    position: int
    end: int


def _scan(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    pending_start = 0

    def flush(end: int) -> None:
        piece = text[pending_start:end]
        if piece.strip():
            start = pending_start + len(piece) - len(piece.lstrip())
            tokens.append(_Token("text", piece.strip(), start, start + len(piece.strip())))

    while position < len(text):
        match = _SCANNER.match(text, position)
        if match is None or match.end() == position:
            position += 1
            continue
        kind = match.lastgroup or ""
        if kind in ("quoted_name", "bare_name"):
            kind = "label"
        flush(position)
        if kind == "label":
            name = match.group("quoted_name")
            name = match.group("bare_name") if name is None else name
            if not name or not name.strip():
                raise QueryError(
                    'label: needs a name, e.g. label:Grandma or label:"Summer 2024".', position=position
                )
            tokens.append(_Token("label", name.strip(), position, match.end()))
        elif kind == "quoted":
            tokens.append(_Token("quoted", match.group("quoted"), position + 1, match.end()))
        elif kind == "weight":
            tokens.append(_Token("weight", match.group("weight"), position, match.end()))
        else:
            tokens.append(_Token(kind, match.group(kind), position, match.end()))
        position = match.end()
        pending_start = position
    flush(len(text))
    return _resolve_brackets(tokens, text)


def _resolve_brackets(tokens: list[_Token], text: str) -> list[_Token]:
    """Brackets group only in a query with operators and when they balance;
    elsewhere they are text ("crane (bird)"). Quotes, in a query without operators,
    group only a phrase that is the whole query; inside a sentence they are
    punctuation (a sign that says "STOP")."""
    arithmetic = any(t.kind in ("plus", "minus", "weight") for t in tokens)
    depth, balanced = 0, True
    for t in tokens:
        depth += {"open": 1, "close": -1}.get(t.kind, 0)
        balanced = balanced and depth >= 0
    if arithmetic and balanced and depth == 0:
        return tokens
    as_text = ("open", "close") if arithmetic or len(tokens) < 2 else ("open", "close", "quoted")
    merged: list[_Token] = []
    for t in tokens:
        if t.kind in as_text:
            t = _Token("text", t.text, t.position, t.end)
        if t.kind == "text" and merged and merged[-1].kind == "text":
            start = merged[-1].position
            # quote marks turned to spaces: the encoder reads 'a "hot dog" stand' as the words
            words = text[start : t.end].replace('"', " ") if "quoted" in as_text else text[start : t.end]
            merged[-1] = _Token("text", words, start, t.end)
        else:
            merged.append(t)
    return merged


class _Parser:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.position = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def query(self) -> Sum:
        """Terms up to the end or a closing bracket; operators without a term are dropped."""
        result = Sum()
        sign, weight = 1.0, 1.0
        while (token := self.peek()) is not None and token.kind != "close":
            self.take()
            if token.kind in ("plus", "minus"):
                sign = -1.0 if token.kind == "minus" else 1.0
                continue
            if token.kind == "weight":
                weight = float(token.text)
                if not 0 < weight <= MAX_WEIGHT:
                    raise QueryError(
                        f"A weight must be above 0 and at most {MAX_WEIGHT:g}, not {token.text}.",
                        position=token.position,
                    )
                continue
            node: Node
            if token.kind == "open":
                if self.depth == MAX_NESTING:
                    raise QueryError(
                        f"Too many brackets inside brackets (at most {MAX_NESTING}).", position=token.position
                    )
                self.depth += 1
                node = self.query()
                self.depth -= 1
                if self.peek() is not None:
                    self.take()  # the closing bracket (brackets balance, _resolve_brackets)
            elif token.kind == "label":
                node = Label(token.text)
            else:
                node = Phrase(token.text, token.position, quoted=token.kind == "quoted")
            result.terms.append((sign * weight, node))
            sign, weight = 1.0, 1.0
        return result


def label_query(name: str) -> str:
    """The query that names label ``name``: ``label:NAME``, quoted when it holds a
    space or a character that would end a bare name in arithmetic
    (``label:"Mom & Dad"``, ``label:"C++"``), so that it also works inside a sum
    (``label:"C++" + cat``)."""
    return f'label:"{name}"' if any(char.isspace() or char in "()+*" for char in name) else f"label:{name}"


def check_text(text: str) -> None:
    """QueryError for a query too long or that is not valid text."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"The query is too long ({len(text)} characters, at most {MAX_QUERY_LENGTH}).")
    # A command line with bytes that are not UTF-8 gives lone surrogates; as a label
    # name they reached SQLite, which raised UnicodeEncodeError.
    bad = next((i for i, char in enumerate(text) if "\ud800" <= char <= "\udfff"), None)
    if bad is not None:
        raise QueryError(
            f"Unexpected character {text[bad]!r} at position {bad + 1}: not valid text.", position=bad
        )


def parse(text: str) -> Sum:
    """The query's terms. Raises QueryError only for text that is too long or not
    valid text, an empty query, a weight out of range, ``label:`` without a name or
    brackets nested too deep."""
    check_text(text)
    if not text.strip():
        raise QueryError("The query is empty: type a word or a sentence, e.g. dog or a dog on a beach.")
    return _Parser(_scan(text)).query()


LabelResolver = Callable[[str], np.ndarray]


def _no_labels(name: str) -> np.ndarray:
    raise QueryError(f"No label named {name!r} here.", word=name)


def _normal(text: str) -> str:
    return " ".join(WORD.findall(fold(text)))


@dataclass
class _UnknownWords:
    """The words of a query the model does not know, as they are met."""

    read_typos: bool = True  # False: every unknown word is set aside
    names: frozenset[str] = frozenset()  # words never read as others (of label names: "bodhi")
    ignored: list[tuple[str, int]] = field(default_factory=list)  # set aside: (word, offset)
    corrected: list[tuple[str, str]] = field(default_factory=list)  # read as another: (typed, read as)


@dataclass
class _Plan:
    """What one piece of text stands for, decided before anything is embedded."""

    class_index: int | None = None  # the text names this class
    concept: str | None = None  # the text names this WordNet concept
    text: str | None = None  # else: the text to embed, unknown words left out
    avoided: tuple[str, ...] = ()  # what the text asks not to see ("no people"), left out of the above


def _named_entry(text: str, vocabulary: Vocabulary) -> _Plan | None:
    """The class or WordNet concept that the whole text names ("Great White Shark",
    "the tabby cats", "Dogs!"), else None; two words may be one written apart ("cell
    phone": cellphone, "back pack": backpack)."""
    plain = fold(text).strip()
    candidates = [plain.strip(" .,;:!?'\""), _normal(text)]
    for candidate in list(candidates):
        for article in ARTICLES:
            if candidate.startswith(article):
                candidates.append(candidate[len(article) :])
    candidates += [candidate.replace(" ", "") for candidate in candidates if candidate.count(" ") == 1]
    for candidate in dict.fromkeys(candidates):
        if not candidate:
            continue
        head, _, last = candidate.rpartition(" ")
        for form in _noun_forms(last, vocabulary):
            key = f"{head} {form}" if head else form
            index = vocabulary.class_index(key)
            if index is not None:
                return _Plan(class_index=index)
            if vocabulary.concept_classes(key):
                return _Plan(concept=key)
    return None


def _noun_forms(word: str, vocabulary: Vocabulary) -> list[str]:
    """The forms of a word that may name classes: the word, its singulars, and the
    stems of an -ing or -ed form whose verb is about that noun ("skiing": ski; not
    "flying": fly, nor "caring": car)."""
    nouns = list(plural_bases(word))
    return nouns + [
        form for form in base_forms(word) if form not in nouns and vocabulary.verb_names_noun(form)
    ]


def _concept_members(key: str, vocabulary: Vocabulary) -> ClassSets | None:
    """The class sets a lower-case text names, by its last word's base forms: one
    class, the classes below a WordNet concept, or for a word for people (man,
    children) the classes that show people (``Vocabulary.people_evidence``); None for
    none of these. A verb form is never a person ("filled" is not "fille")."""
    head, _, last = key.rpartition(" ")
    nouns = set(plural_bases(last))
    for form in _noun_forms(last, vocabulary):
        name = f"{head} {form}" if head else form
        index = vocabulary.class_index(name)
        if index is not None:
            return ((index,),)
        people = vocabulary.people_evidence(name) if form in nouns else ()
        if people:
            return people
        members = vocabulary.concept_classes(name)
        if members:
            return (tuple(members),)
    return None


def _is_compound_noun(key: str, vocabulary: Vocabulary) -> bool:
    """Whether a lower-case text of several words is a noun of its own with no
    classes, by its last word's singular forms ("tennis players")."""
    head, _, last = key.rpartition(" ")
    return bool(head) and any(vocabulary.is_compound_noun(f"{head} {form}") for form in plural_bases(last))


def _associated_members(word: str, vocabulary: Vocabulary) -> ClassSets | None:
    """The classes seen with a noun that names none ("kitchen": microwave,
    toaster, waffle iron; ``Vocabulary.associated_classes``), by its singular forms."""
    for form in plural_bases(word):
        members = vocabulary.associated_classes(form)
        if members:
            return (members,)
    return None


def _mentions(text: str, vocabulary: Vocabulary) -> tuple[ClassSets, float]:
    """The classes and concepts a text mentions, longest names first, each once ("a cat on
    a hot dog stand": cat, hot dog stand), and the weight of their evidence:
    ``NAMED_WEIGHT`` when one of them is all the text says (its other words are
    function words: "a woman", "the cats"), ``ASSOCIATED_WEIGHT`` when that one is
    only seen with what the text says ("the kitchen"), ``SHORT_TEXT_WEIGHT`` for a
    text of two words that are not function words ("a dog at the beach", "cars on
    the street"), else ``MENTIONED_WEIGHT``. A noun of several words with no classes
    mentions nothing, nor do its words ("a tennis player": not the ballplayer of
    "player"). A description of at most ``DESCRIPTION_WORDS`` content words also
    mentions the classes its words tell apart (``_told_apart``), at least at
    ``SHORT_TEXT_WEIGHT``."""
    words = WORD.findall(fold(text))
    found: dict[tuple[int, ...], None] = {}
    start, uncovered, matches, associated = 0, 0, 0, 0
    while start < len(words):
        for size in range(min(MAX_MENTION_WORDS, len(words) - start), 0, -1):
            if size == 1 and (words[start] in FUNCTION_WORDS or _is_verb_here(words, start)):
                continue
            phrase = " ".join(words[start : start + size])
            named = _concept_members(phrase, vocabulary)
            if named is None and size == 1:
                named = _associated_members(phrase, vocabulary)
                associated += named is not None
            if named is not None:
                found.update(dict.fromkeys(named))
                start += size
                matches += 1
                break
            if size > 1 and _is_compound_noun(phrase, vocabulary):
                uncovered += 1
                start += size
                break
        else:
            uncovered += words[start] not in FUNCTION_WORDS
            start += 1
    if not found:
        return (), 0.0
    if matches == 1 and not uncovered:
        return tuple(found), ASSOCIATED_WEIGHT if associated else NAMED_WEIGHT
    content_words = sum(word not in FUNCTION_WORDS for word in words)  # the words folded above
    weight = SHORT_TEXT_WEIGHT if content_words <= SHORT_TEXT_WORDS else MENTIONED_WEIGHT
    if content_words <= DESCRIPTION_WORDS:
        told_apart = _told_apart(tuple(found), words, vocabulary)
        if told_apart.keys() - found.keys():
            return tuple({**found, **told_apart}), max(weight, SHORT_TEXT_WEIGHT)
    return tuple(found), weight


def _told_apart(concepts: ClassSets, words: list[str], vocabulary: Vocabulary) -> dict[tuple[int, ...], None]:
    """For each WordNet concept among a description's ``concepts``, the classes whose
    definitions (``Vocabulary.definition_words``) hold the most of its ``words``, when
    that is not all of them: "a reptile with a shell", the turtles ("reptiles having a
    bony shell"); "an animal with a trunk", the elephants; "a dog that herds sheep",
    the shepherd dogs. What a text says, rather than what its words name, is then
    evidence too."""
    said = _content_forms(words)
    found: dict[tuple[int, ...], None] = {}
    for members in concepts:
        if len(members) < 2 or not vocabulary.is_concept(members):
            continue
        shared = [len(said & vocabulary.definition_words(index)) for index in members]
        most = max(shared)
        if most > min(shared):
            found[tuple(index for index, n in zip(members, shared, strict=True) if n == most)] = None
    return found


def _is_verb_here(words: list[str], at: int) -> bool:
    """Whether ``words[at]`` follows a subject ("you can", "which sits") or a "that"
    after a noun ("a machine that flies", "birds that fly"), so it is no noun
    mentioned; "that" after a function word is no subject ("a photo of that dog")."""
    before = words[at - 1] if at else ""
    if before in SUBJECT_PRONOUNS:
        return True
    return before == "that" and at >= 2 and words[at - 2] not in FUNCTION_WORDS


def mentioned_concepts(text: str, vocabulary: Vocabulary) -> ClassSets:
    """The classes and concepts a text mentions (see ``_mentions``)."""
    return _mentions(text, vocabulary)[0]


def _concepts(
    tree: Sum, plans: dict[int, _Plan], vocabulary: Vocabulary, texts: dict[str, np.ndarray]
) -> tuple[ClassSets, float, ClassSets, tuple[str, ...]]:
    """What a re-ranking by the classifier's evidence uses for a query of one text:
    the class or concept it names, else the ones its text mentions and, for a short
    text, the classes nearest it (alone where it mentions none); their weight; and
    the ones it asks not to see, with the phrases that named them. ``texts``: the
    embedded texts of the plans."""
    if len(tree.terms) != 1 or tree.terms[0][0] <= 0 or not isinstance(tree.terms[0][1], Phrase):
        return (), 0.0, (), ()
    plan = plans.get(id(tree.terms[0][1]))
    if plan is None:
        return (), 0.0, (), ()
    named = {phrase: _mentions(phrase, vocabulary)[0] for phrase in plan.avoided}
    avoided = tuple(dict.fromkeys(members for found in named.values() for members in found))
    said = tuple(phrase for phrase, found in named.items() if found)  # what is ranked lower
    if plan.class_index is not None:
        return ((plan.class_index,),), NAMED_WEIGHT, avoided, said
    if plan.concept is not None:
        return _named_concept(plan.concept, vocabulary), NAMED_WEIGHT, avoided, said
    text = plan.text or ""
    concepts, weight = _mentions(text, vocabulary)
    if weight == SHORT_TEXT_WEIGHT:
        similar = _near_what_it_says(text, texts[text], concepts, vocabulary)
        if similar and similar not in concepts:
            concepts = (*concepts, similar)
    if not concepts and 1 <= _content_words(text) <= SHORT_TEXT_WORDS:
        similar = _similar_classes(text, texts[text], vocabulary)
        concepts, weight = ((similar,), ASSOCIATED_WEIGHT) if similar else ((), 0.0)
    return concepts, weight or (SHORT_TEXT_WEIGHT if avoided else 0.0), avoided, said


def _near_what_it_says(
    text: str, vector: np.ndarray, mentioned: ClassSets, vocabulary: Vocabulary
) -> tuple[int, ...]:
    """The classes near what a short text's words say together, which join those each
    word names: "a boat with sails" names the boats and is nearest the schooner. A
    class whose name merely repeats one of its other words, in any form, is left out:
    "red car" is near the red wine by its word "red", "a plane flying" the fly; but an
    -ing or -ed form names the noun its verb is about ("potted plant": the flowerpot,
    though "pot" names the cooking pots)."""
    typed = WORD.findall(fold(text))
    about = {form for word in typed for form in _noun_forms(word, vocabulary)} - {
        form for word in typed for form in plural_bases(word)
    }
    words = {form for word in typed for form in base_forms(word)} - about
    named = {index for members in mentioned for index in members}
    return tuple(
        index
        for index in _similar_classes(text, vector, vocabulary)
        if index in named or not words & set(WORD.findall(fold(vocabulary.class_names[index])))
    )


def _named_concept(concept: str, vocabulary: Vocabulary) -> ClassSets:
    people = vocabulary.people_evidence(concept)  # "person", "people"
    return people or (tuple(vocabulary.concept_classes(concept)),)


def _is_arithmetic(tree: Sum) -> bool:
    """Whether a parsed query is word arithmetic: several terms, or one taken away."""
    return len(tree.terms) > 1 or any(weight <= 0 for weight, _ in tree.terms)


def _about_people(concepts: ClassSets, vocabulary: Vocabulary) -> bool:
    """Whether a query's evidence is that of a word for people ("woman", "a child"):
    no ImageNet class shows people, so what they wear stands in, and the look of the
    best photos helps as it does for a word that names no class."""
    return bool(vocabulary.people_classes) and vocabulary.people_classes in concepts


def _has_label(node: Node) -> bool:
    if isinstance(node, Label):
        return True
    return isinstance(node, Sum) and any(_has_label(term) for _, term in node.terms)


def _arithmetic_concepts(
    tree: Sum, plans: dict[int, _Plan], vocabulary: Vocabulary, answers: Sequence[str]
) -> tuple[ClassSets, float]:
    """What re-ranks word arithmetic. An analogy (a term taken away: "puppy - dog +
    cat") by the classes its answers name (``answers``: the nearest entries, "Egyptian
    cat"), as one concept, any of them, and by the kin of its first term that its last
    one defines (``_kin_with``) as another, at ``ANSWER_WEIGHT``; a sum ("2*dog + beach")
    by what its texts name or mention, at ``SHORT_TEXT_WEIGHT``, as a short text is."""
    if any(weight < 0 for weight, _ in tree.terms):
        named = [members for word in answers for members in _concept_members(fold(word), vocabulary) or ()]
        classes = tuple(sorted({index for members in named for index in members}))
        kin = _kin_with(tree, plans, vocabulary)
        answered = tuple(dict.fromkeys(answer for answer in (classes, kin) if answer))
        return (answered, ANSWER_WEIGHT) if answered else ((), 0.0)
    found: list[tuple[int, ...]] = []
    for _, term in tree.terms:
        plan = plans.get(id(term)) if isinstance(term, Phrase) else None
        if plan is None:
            continue
        if plan.class_index is not None:
            found.append((plan.class_index,))
        elif plan.concept is not None:
            found.extend(_named_concept(plan.concept, vocabulary))
        else:
            found.extend(_mentions(plan.text or "", vocabulary)[0])
    return tuple(dict.fromkeys(found)), SHORT_TEXT_WEIGHT if found else 0.0


def _kin_with(tree: Sum, plans: dict[int, _Plan], vocabulary: Vocabulary) -> tuple[int, ...]:
    """For an analogy "A - B + C", the classes of A's nearest kin that C defines: those
    of the smallest WordNet concept holding A's classes whose definitions
    (``Vocabulary.definition_words``) name C, A's own aside, and of them those whose
    definitions do not name B, if any. "car - wheels + wings": the airliner and the
    space shuttle; "bird - wings + fins": the fishes; "chair - sit + sleep": the
    four-poster. None when A names no class or concept (a word for people has none)
    or no kin names C."""
    added = [term for weight, term in tree.terms if weight > 0]
    taken = [term for weight, term in tree.terms if weight < 0]
    if len(added) != 2 or len(taken) != 1:
        return ()
    first, then = added
    if not isinstance(first, Phrase) or not isinstance(then, Phrase):
        return ()
    unwanted = _content_forms(WORD.findall(fold(taken[0].text))) if isinstance(taken[0], Phrase) else set()
    plan = plans.get(id(first))
    if plan is None:
        return ()
    if plan.class_index is not None:
        named: ClassSets = ((plan.class_index,),)
    else:
        named = _concept_members(fold(plan.concept or plan.text or "").strip(), vocabulary) or ()
    # a kind of thing, not what people wear for "man" nor what is seen with "kitchen"
    if len(named) != 1 or not (len(named[0]) == 1 or vocabulary.is_concept(named[0])):
        return ()
    own = set(named[0])
    said = _content_forms(WORD.findall(fold(then.text)))
    if not said:
        return ()
    for members in vocabulary.concepts_holding(own):
        kin = tuple(i for i in members if i not in own and said & vocabulary.definition_words(i))
        if kin:
            return tuple(i for i in kin if not unwanted & vocabulary.definition_words(i)) or kin
    return ()


def _content_forms(words: Iterable[str]) -> set[str]:
    """Every base form of the words that are not function words."""
    return {form for word in words if word not in FUNCTION_WORDS for form in base_forms(word)}


def _content_words(text: str) -> int:
    return sum(word not in FUNCTION_WORDS for word in WORD.findall(fold(text)))


def _similar_classes(text: str, vector: np.ndarray, vocabulary: Vocabulary) -> tuple[int, ...]:
    """The classes whose label texts are nearest a text's vector in the word space
    (cosine at least ``SIMILAR_LABEL_COSINE``, at most ``MAX_SIMILAR_CLASSES``: "beach":
    seashore, lakeside; "bathroom sink": washbasin), less those whose names hold one of
    its words inside a longer word, or a word inside one of its words, other than by
    an ending ("skier": ski): the encoder's word pieces make "fork" near "forklift"
    and "campfire" near "fire engine". Nor a class named by the stem of an -ing or
    -ed form whose verb is not about it ("flying": not the fly, "watching": not the
    digital watch; ``_noun_forms``)."""
    cosines = vocabulary.label_text_vectors @ vector[: vocabulary.word_dim]
    words = {word for word in WORD.findall(fold(text)) if word not in FUNCTION_WORDS}
    verb_stems = {
        form for word in words for form in set(base_forms(word)) - set(_noun_forms(word, vocabulary))
    }

    # a piece of a longer word: "fork" of "forklift"; not a form of it: "ski" of "skier", "pot" of "potted"
    def piece_of(short: str, long: str) -> bool:
        return (
            short in long
            and short != long
            and long.removeprefix(short) not in _WORD_ENDINGS
            and short not in set(base_forms(long))
        )

    def kept(name: str) -> bool:
        parts = WORD.findall(fold(name))
        inside_longer_word = any(
            piece_of(word, part) or piece_of(part, word) for part in parts for word in words
        )
        return not inside_longer_word and not verb_stems.intersection(parts)

    nearest = np.argsort(-cosines)[:MAX_SIMILAR_CLASSES]
    return tuple(
        sorted(
            int(index)
            for index in nearest
            if cosines[index] >= SIMILAR_LABEL_COSINE and kept(vocabulary.class_names[index])
        )
    )


def _plan_text(node: Phrase, vocabulary: Vocabulary, unknown: _UnknownWords) -> _Plan | None:
    """How to embed a piece of text; None when no known word is in it."""
    text = unicodedata.normalize("NFKC", node.text)
    if not WORD.search(text):
        return None
    named = _named_entry(text, vocabulary)
    if named is not None:
        return named
    kept: list[str] = []
    last = 0
    changed = False  # a word was set aside or read as another
    for match in WORD.finditer(text):
        word = match.group()
        known = vocabulary.known_form(word) is not None or any(char.isdigit() for char in word)
        if known or word in vocabulary:
            continue
        changed = True
        kept.append(text[last : match.start()])
        last = match.end()
        as_typed = (
            not unknown.read_typos
            or len(unknown.ignored) + len(unknown.corrected) >= MAX_READ_TYPOS
            or node.quoted
            or _looks_like_a_name(text, match)
            or fold(word) in unknown.names
        )
        correction = None if as_typed else vocabulary.correction(word)
        if correction is None:
            unknown.ignored.append((word, node.position + match.start()))
        else:
            kept.append(correction)
            unknown.corrected.append((word, correction))
    kept.append(text[last:])
    clean = " ".join("".join(kept).split())
    if not WORD.search(clean):
        return None
    wanted, avoided = split_negations(clean)

    def frame(text: str) -> str:  # a quoted text is read as typed
        return text if node.quoted else without_photo_frame(text)

    if not avoided or not WORD.search(wanted):
        unframed = frame(clean)
        changed = changed or unframed != clean
        return (_named_entry(unframed, vocabulary) if changed else None) or _Plan(text=unframed)
    wanted = frame(wanted)  # after the split: "a photo with no people" avoids people
    plan = _named_entry(wanted, vocabulary) or _Plan(text=wanted)
    plan.avoided = avoided
    return plan


def without_photo_frame(text: str) -> str:
    """A text without the words that only say it is about photos: "photos of Paris"
    -> "Paris", "my vacation pictures" -> "my vacation", "a photo of a dog" -> "a
    dog"; a text with nothing else to say ("photos", "a picture", "2019 photos") stays
    as it is."""
    unframed = " ".join(_PHOTO_FRAME.sub(" ", text).split())
    says_more = any(fold(w) not in FUNCTION_WORDS and not w.isdigit() for w in WORD.findall(unframed))
    return unframed if says_more else text


def _looks_like_a_name(text: str, match: re.Match[str]) -> bool:
    """A capitalised word after the first ("a photo of Lassy"): a name, not a typo."""
    word = match.group()
    return word[:1].isupper() and not word.isupper() and bool(WORD.search(text[: match.start()]))


def split_negations(text: str) -> tuple[str, tuple[str, ...]]:
    """A text without what it asks not to see, and those phrases: "a kitchen with no
    people" -> ("a kitchen", ("people",)); the word that leads to it goes too."""
    tokens = list(_WORD_OR_STOP.finditer(text))
    words = [fold(token.group()) for token in tokens]
    removed: list[tuple[int, int]] = []
    avoided: list[str] = []
    i = 0
    while i < len(words):
        if words[i] != "without" and (
            words[i] not in NEGATIONS or not i or words[i - 1] not in NEGATION_LEADS
        ):
            i += 1
            continue
        start = i - 1 if i and words[i - 1] in NEGATION_LEADS else i
        end = i + 1
        while end < len(words) and WORD.fullmatch(words[end]) and words[end] not in NEGATION_ENDS | NEGATIONS:
            end += 1
        if end > i + 1:
            avoided.append(text[tokens[i + 1].start() : tokens[end - 1].end()])
            removed.append((tokens[start].start(), tokens[end - 1].end()))
        i = end
    kept, last = [], 0
    for start_char, end_char in removed:
        kept.append(text[last:start_char])
        last = end_char
    kept.append(text[last:])
    return re.sub(r"\s+(?=[,;:.!?])", "", " ".join("".join(kept).split())), tuple(avoided)


def _plan(node: Node, vocabulary: Vocabulary, unknown: _UnknownWords, plans: dict[int, _Plan]) -> None:
    """Plan every piece of text of the query (by node id), in order."""
    if isinstance(node, Phrase):
        plan = _plan_text(node, vocabulary, unknown)
        if plan is not None:
            plans[id(node)] = plan
    elif isinstance(node, Sum):
        for _, term in node.terms:
            _plan(term, vocabulary, unknown, plans)


def _evaluate(
    node: Node,
    vocabulary: Vocabulary,
    label_vector: LabelResolver,
    plans: dict[int, _Plan],
    texts: dict[str, np.ndarray],
) -> np.ndarray | None:
    if isinstance(node, Phrase):
        plan = plans.get(id(node))
        if plan is None:
            return None
        if plan.class_index is not None:
            return vocabulary.class_vectors[plan.class_index].copy()
        if plan.concept is not None:
            members = vocabulary.class_vectors[vocabulary.concept_classes(plan.concept)]
            return concept_vector(texts[plan.concept], members)
        return texts[plan.text or ""]
    if isinstance(node, Label):
        return _unit(label_vector(node.name))
    # float64: weights multiply through nested brackets (up to MAX_WEIGHT ** MAX_NESTING)
    total = np.zeros(vocabulary.dim, dtype=np.float64)
    used = False
    for weight, term in node.terms:
        vector = _evaluate(term, vocabulary, label_vector, plans, texts)
        if vector is not None:
            total += weight * vector.astype(np.float64)
            used = True
    return total if used else None


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm < 1e-6:
        raise QueryError("The query cancels out to nothing; add or change a word.")
    return (vector / norm).astype(np.float32)


def embed_query(
    text: str,
    vocabulary: Vocabulary,
    label_vector: LabelResolver = _no_labels,
    read_typos: bool = True,
    labels: Sequence[str] = (),
) -> QueryVector:
    """The unit vector a query stands for, the typos read as other words and the words
    set aside (all unknown words, with ``read_typos`` False); QueryError when nothing
    in it is usable (the error names the first unknown word, if any). ``labels``: the
    library's label names (with photos), read where a text names one ("Grandma at
    the beach": label:Grandma + at the beach); their words are never typos."""
    label_words = frozenset(word for name in labels for word in WORD.findall(fold(name)))
    unknown = _UnknownWords(read_typos, label_words)
    parsed = parse(text)
    tree, read_labels = _read_labels(parsed, labels)
    plans: dict[int, _Plan] = {}
    _plan(tree, vocabulary, unknown, plans)
    ignored = unknown.ignored
    # every text of the query through the encoder in one run
    wanted = list(dict.fromkeys(p.concept or p.text or "" for p in plans.values() if p.class_index is None))
    texts = dict(zip(wanted, (vocabulary.pad(v) for v in vocabulary.encode(wanted)), strict=True))
    total = _evaluate(tree, vocabulary, label_vector, plans, texts)
    # close spellings for the first few unknown words only: each is a scan of the vocabulary
    distinct = list(dict.fromkeys(word for word, _ in ignored))
    suggestions = {
        word: vocabulary.suggest(word) if i < MAX_SUGGESTED_WORDS else [] for i, word in enumerate(distinct)
    }
    if total is None:
        if ignored:
            word, position = ignored[0]
            words = ", ".join(repr(w) for w in dict.fromkeys(w for w, _ in ignored))
            raise QueryError(
                f"Unknown word {words}: nothing left to search for." if len(ignored) == 1
                else f"Unknown words {words}: nothing left to search for.",
                suggestions[word],
                word=word,
                position=position,
            )  # fmt: skip
        raise QueryError("The query has no words: type a word or a sentence, e.g. dog or a dog on a beach.")
    seen: dict[str, list[str]] = {}
    for word, _ in ignored:
        seen.setdefault(word, suggestions[word])
    vector = _unit(total)
    corrected = tuple(dict.fromkeys(unknown.corrected))
    if not _is_arithmetic(parsed):
        concepts, weight, avoided, avoided_words = _concepts(tree, plans, vocabulary, texts)
        plan = plans.get(id(tree.terms[0][1])) if len(tree.terms) == 1 else None
        # what it asks to see: "a kitchen" of "a kitchen with no people"
        asked = plan.text if plan is not None and plan.text is not None else text
        short = _content_words(asked) <= SHORT_TEXT_WORDS
        return QueryVector(
            vector,
            list(seen.items()),
            concepts,
            weight,
            avoided,
            avoided_words,
            corrected,
            read_labels,
            feedback=short
            and not read_labels
            and (weight != NAMED_WEIGHT or _about_people(concepts, vocabulary)),
        )
    near = tuple(word for word, _ in vocabulary.nearest(vector, k=ANSWER_WORDS, exclude=query_words(parsed)))
    concepts, weight = _arithmetic_concepts(tree, plans, vocabulary, near)
    return QueryVector(
        vector,
        list(seen.items()),
        concepts,
        weight,
        corrected_words=corrected,
        labels=read_labels,
        nearest_words=near,
        feedback=not read_labels and not _has_label(parsed),
    )


def _read_labels(tree: Sum, labels: Sequence[str]) -> tuple[Sum, tuple[str, ...]]:
    """``tree`` with each text that names one of ``labels`` as whole words (any case)
    split into the label and the rest of the text, at the text's weight, and the labels
    so read. The rest is dropped when it has no content word ("photos of Grandma")."""
    names = sorted((name for name in labels if _content_words(name)), key=len, reverse=True)
    if not names:
        return tree, ()
    pattern = re.compile(
        r"(?<!\w)(?:" + "|".join(re.escape(name) for name in names) + r")(?!\w)", re.IGNORECASE
    )
    by_key = {name.casefold(): name for name in names}
    read: list[str] = []

    def split(node: Sum) -> Sum:
        terms: list[tuple[float, Node]] = []
        for weight, term in node.terms:
            if isinstance(term, Sum):
                terms.append((weight, split(term)))
                continue
            found = list(pattern.finditer(term.text)) if isinstance(term, Phrase) and not term.quoted else []
            if not isinstance(term, Phrase) or not found:
                terms.append((weight, term))
                continue
            named = [by_key[match.group().casefold()] for match in found]
            read.extend(named)
            terms.extend((weight, Label(name)) for name in named)
            rest = pattern.sub(" ", term.text)
            if _content_words(rest):
                terms.append((weight, Phrase(rest, term.position)))
        return Sum(terms)

    return split(tree), tuple(dict.fromkeys(read))


def query_vector(text: str, vocabulary: Vocabulary, label_vector: LabelResolver = _no_labels) -> np.ndarray:
    """The unit vector a query stands for (see ``embed_query``); raises QueryError."""
    return embed_query(text, vocabulary, label_vector).vector


def query_words(node: Node) -> list[str]:
    """The words and phrases a query mentions (to leave them out of analogy answers)."""
    if isinstance(node, Phrase):
        words = WORD.findall(fold(node.text))
        forms = [form for word in words for form in base_forms(word)]
        return [" ".join(words), *forms]
    if isinstance(node, Label):
        return []
    return [w for _, term in node.terms for w in query_words(term)]

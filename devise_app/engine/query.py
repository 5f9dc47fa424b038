"""The query language: words, phrases and word arithmetic.

    query   := term (("+" | "-") term)*
    term    := ["-"] [number "*"] atom
    atom    := phrase | label | "(" query ")"
    phrase  := word+ | '"' text '"'   e.g.  great white shark, red car, "crane (bird)"
    label   := "label:" NAME | 'label:"' any text '"'

Examples: ``dog``, ``king - man + woman``, ``2*dog + beach``, ``label:Grandma + beach``.
A phrase that names a vocabulary entry ("great white shark") uses that entry;
otherwise its words are averaged. Every word vector is unit-length, and the
result is normalised. Anything wrong raises ``QueryError`` with a readable
message and, for unknown words, the closest known spellings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from devise_app.engine.errors import QueryError
from devise_app.engine.vocabulary import Vocabulary

MAX_QUERY_LENGTH = 1000
MAX_WEIGHT = 100.0
MAX_NESTING = 20  # brackets inside brackets; deeper ones used to exhaust Python's recursion limit

TOKEN = re.compile(
    r"""\s*(?:
        (?P<label>label:(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s()+*"]+))?)
      | "(?P<phrase>[^"]*)"
      | (?P<number>\d+(?:\.\d*)?|\.\d+)(?=\s*\*)
      | (?P<word>[^\W_](?:[\w'.&]|-(?=\w))*)
      | (?P<op>[-+*()])
    )""",
    re.VERBOSE | re.UNICODE,
)




@dataclass
class Phrase:
    words: list[str]


@dataclass
class Label:
    name: str


@dataclass
class Sum:
    terms: list[tuple[float, Node]] = field(default_factory=list)


Node = Phrase | Label | Sum


@dataclass
class _Token:
    kind: str
    text: str


def tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            bad = text[position:].strip()[:1]
            raise QueryError(f"Unexpected character {bad!r} at position {position + 1}.")
        position = match.end()
        if match.group("label"):
            name = match.group("quoted") if match.group("quoted") is not None else match.group("bare")
            if not name or not name.strip():
                raise QueryError('label: needs a name, e.g. label:Grandma or label:"Summer 2024".')
            tokens.append(_Token("label", name.strip()))
        elif match.group("phrase") is not None:
            if not match.group("phrase").strip():
                raise QueryError('Empty quotes: put a phrase between them, e.g. "crane (bird)".')
            tokens.append(_Token("quoted", match.group("phrase").strip()))
        elif match.group("number"):
            tokens.append(_Token("number", match.group("number")))
        elif match.group("word"):
            tokens.append(_Token("word", match.group("word")))
        else:
            tokens.append(_Token("op", match.group("op")))
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.position = 0
        self.depth = 0  # brackets open

    def peek(self) -> _Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def parse(self) -> Node:
        node = self.query()
        leftover = self.peek()
        if leftover is not None:
            raise QueryError(f"Unexpected {leftover.text!r}: expected + or - between terms.")
        return node

    def query(self) -> Sum:
        result = Sum()
        sign = 1.0
        while True:
            token = self.peek()
            if token is not None and token.kind == "op" and token.text in "+-" and not result.terms:
                self.take()
                sign = -1.0 if token.text == "-" else 1.0
            weight, atom = self.term()
            result.terms.append((sign * weight, atom))
            token = self.peek()
            if token is None or not (token.kind == "op" and token.text in "+-"):
                return result
            self.take()
            sign = -1.0 if token.text == "-" else 1.0

    def term(self) -> tuple[float, Node]:
        token = self.peek()
        weight = 1.0
        if token is not None and token.kind == "number":
            self.take()
            weight = float(token.text)
            if not 0 < weight <= MAX_WEIGHT:
                raise QueryError(f"A weight must be above 0 and at most {MAX_WEIGHT:g}, not {token.text}.")
            self.take()  # the "*" the tokenizer saw ahead
        return weight, self.atom()

    def atom(self) -> Node:
        token = self.peek()
        if token is None:
            raise QueryError("The query ends where a word was expected.")
        if token.kind == "label":
            self.take()
            return Label(token.text)
        if token.kind == "quoted":
            self.take()
            return Phrase([token.text])
        if token.kind == "word":
            words = []
            while (nxt := self.peek()) is not None and nxt.kind == "word":
                words.append(self.take().text)
            return Phrase(words)
        if token.text == "(":
            self.take()
            if self.depth == MAX_NESTING:
                raise QueryError(f"Too many brackets inside brackets (at most {MAX_NESTING}).")
            self.depth += 1
            inner = self.query()
            self.depth -= 1
            closing = self.peek()
            if closing is None or closing.text != ")":
                raise QueryError("A bracket is not closed: add ')'.")
            self.take()
            return inner
        raise QueryError(f"Unexpected {token.text!r} where a word was expected.")


def parse(text: str) -> Node:
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"The query is too long ({len(text)} characters, at most {MAX_QUERY_LENGTH}).")
    # A command line with bytes that are not UTF-8 gives lone surrogates; as a label
    # name they reached SQLite, which raised UnicodeEncodeError.
    bad = next((i for i, char in enumerate(text) if "\ud800" <= char <= "\udfff"), None)
    if bad is not None:
        raise QueryError(f"Unexpected character {text[bad]!r} at position {bad + 1}: not valid text.")
    tokens = tokenize(text)
    if not tokens:
        raise QueryError("The query is empty: type a word, e.g. dog or beach.")
    return _Parser(tokens).parse()


def phrase_parts(words: list[str], vocabulary: Vocabulary) -> list[str]:
    """Split a phrase into vocabulary entries, longest match first from the left."""
    if len(words) == 1 and words[0] not in vocabulary and " " in words[0]:
        quoted = words[0]
        words = [w for w in re.findall(r"[^\W_](?:[\w'.&]|-(?=\w))*", quoted)]
        if not words:
            raise QueryError(f"No word in {quoted!r}: put words between the quotes.")
    parts = []
    start = 0
    while start < len(words):
        for end in range(len(words), start, -1):
            candidate = " ".join(words[start:end])
            if candidate in vocabulary:
                parts.append(candidate)
                start = end
                break
        else:
            word = words[start]
            raise QueryError(f"Unknown word {word!r}.", vocabulary.suggest(word))
    return parts


LabelResolver = Callable[[str], np.ndarray]


def _no_labels(name: str) -> np.ndarray:
    raise QueryError(f"No label named {name!r} here.")


def evaluate(node: Node, vocabulary: Vocabulary, label_vector: LabelResolver = _no_labels) -> np.ndarray:
    if isinstance(node, Phrase):
        parts = phrase_parts(node.words, vocabulary)
        return _unit(np.mean([vocabulary.vector(p) for p in parts], axis=0))
    if isinstance(node, Label):
        return _unit(label_vector(node.name))
    # float64: weights multiply through nested brackets (up to MAX_WEIGHT ** MAX_NESTING)
    return sum(
        (weight * evaluate(term, vocabulary, label_vector).astype(np.float64) for weight, term in node.terms),
        start=np.zeros(vocabulary.dim, dtype=np.float64),
    )


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm < 1e-6:
        raise QueryError("The query cancels out to nothing; add or change a word.")
    return (vector / norm).astype(np.float32)


def query_vector(text: str, vocabulary: Vocabulary, label_vector: LabelResolver = _no_labels) -> np.ndarray:
    """The unit vector a query stands for; raises QueryError."""
    return _unit(evaluate(parse(text), vocabulary, label_vector))


def query_words(node: Node) -> list[str]:
    """The words and phrases a query mentions (to leave them out of analogy answers)."""
    if isinstance(node, Phrase):
        return [" ".join(node.words), *node.words]
    if isinstance(node, Label):
        return []
    return [w for _, term in node.terms for w in query_words(term)]

"""WordNet 3.0 nouns, and the nouns its verbs come from, from Debian's
``wordnet-base`` (build time only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DATA_NOUN = Path("/usr/share/wordnet/data.noun")
DATA_VERB = Path("/usr/share/wordnet/data.verb")
INDEX_NOUN = Path("/usr/share/wordnet/index.noun")
SENSE_COUNTS = Path("/usr/share/wordnet/cntlist.rev")
# the part of speech a sense key's synset type digit stands for (5: adjective satellite)
_SENSE_KEY_POS = {"1": "noun", "2": "verb", "3": "adj", "4": "adv", "5": "adj"}


@dataclass
class Synset:
    offset: int
    lemmas: list[str]
    gloss: str
    hypernyms: list[int] = field(default_factory=list)


def _entries(path: Path) -> Iterator[str]:
    """The lines of a WordNet database file, its licence header left out."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: install Debian's wordnet-base package")
    with path.open(encoding="latin-1") as lines:
        yield from (line for line in lines if not line.startswith(" "))


def load_nouns(path: Path = DATA_NOUN) -> dict[int, Synset]:
    synsets: dict[int, Synset] = {}
    for line in _entries(path):
        data, _, gloss = line.partition(" | ")
        parts = data.split()
        offset = int(parts[0])
        n_words = int(parts[3], 16)
        lemmas = [parts[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        pos = 4 + 2 * n_words
        n_pointers = int(parts[pos])
        hypernyms = []
        for i in range(n_pointers):
            symbol, target = parts[pos + 1 + 4 * i], parts[pos + 2 + 4 * i]
            if symbol in ("@", "@i"):
                hypernyms.append(int(target))
        synsets[offset] = Synset(offset, lemmas, gloss.strip(), hypernyms)
    return synsets


def same_word_nouns(nouns: dict[int, Synset], path: Path = DATA_VERB) -> dict[str, set[int]]:
    """Each verb (lower case) -> the noun synsets of the same word it is derivationally
    related to: WordNet's lexical "+" pointers from the verb to a noun spelled alike
    ("ski": the ski, the runner; "fly": a fly ball, not the insect; "bowl": the
    bowling ball, not the dish)."""
    found: dict[str, set[int]] = {}
    for line in _entries(path):
        parts = line.partition(" | ")[0].split()
        n_words = int(parts[3], 16)
        lemmas = [parts[4 + 2 * i].lower() for i in range(n_words)]
        pos = 4 + 2 * n_words
        for i in range(int(parts[pos])):
            symbol, target, part, numbers = parts[pos + 1 + 4 * i : pos + 5 + 4 * i]
            source, word = int(numbers[:2], 16), int(numbers[2:], 16)
            if symbol != "+" or part != "n" or not source or not word or int(target) not in nouns:
                continue
            verb = lemmas[source - 1].replace("_", " ")
            noun_lemmas = nouns[int(target)].lemmas
            if word <= len(noun_lemmas) and noun_lemmas[word - 1].lower() == verb:
                found.setdefault(verb, set()).add(int(target))
    return found


def wnid_offset(wnid: str) -> int:
    return int(wnid[1:])


def ancestors(synsets: dict[int, Synset], offset: int) -> dict[int, int]:
    """Every hypernym above ``offset`` with its shortest distance in hops."""
    depth = {offset: 0}
    frontier = [offset]
    while frontier:
        nxt = []
        for node in frontier:
            for parent in synsets[node].hypernyms:
                if parent not in depth:
                    depth[parent] = depth[node] + 1
                    nxt.append(parent)
        frontier = nxt
    del depth[offset]
    return depth


def noun_senses(path: Path = INDEX_NOUN) -> dict[str, list[int]]:
    """Each noun lemma (lower case, spaces) -> its synsets, most frequent sense first
    (index.noun's order; sense number n is item n - 1)."""
    senses: dict[str, list[int]] = {}
    for line in _entries(path):
        parts = line.split()
        n_synsets, n_pointers = int(parts[2]), int(parts[3])
        offsets = parts[4 + n_pointers + 2 :]
        if n_synsets and offsets:
            senses[parts[0].replace("_", " ")] = [int(offset) for offset in offsets]
    return senses


def noun_sense_counts(path: Path = SENSE_COUNTS) -> dict[str, dict[int, int]]:
    """Each noun lemma (lower case, spaces) -> how often each of its senses (by sense
    number) was tagged in WordNet's sense-tagged corpora; untagged senses are absent."""
    counts: dict[str, dict[int, int]] = {}
    for line in _entries(path):
        key, number, count = line.split()
        lemma, _, rest = key.partition("%")
        if _SENSE_KEY_POS[rest[0]] == "noun":
            counts.setdefault(lemma.replace("_", " "), {})[int(number)] = int(count)
    return counts


def tag_counts(path: Path = SENSE_COUNTS) -> dict[str, dict[str, int]]:
    """Each lemma (lower case, spaces) -> how often each part of speech of it was
    tagged in WordNet's sense-tagged corpora (cntlist.rev: "white" as an adjective
    76 times, as a noun 16)."""
    counts: dict[str, dict[str, int]] = {}
    for line in _entries(path):
        key, _, count = line.split()
        lemma, _, rest = key.partition("%")
        by_pos = counts.setdefault(lemma.replace("_", " "), {})
        pos = _SENSE_KEY_POS[rest[0]]
        by_pos[pos] = by_pos.get(pos, 0) + int(count)
    return counts

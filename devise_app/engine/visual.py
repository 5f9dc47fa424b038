"""What a label's photos share in how they look, for ranking the rest by it.

A label such as "Grandma" or "our red bike" names something no word vector
holds: the only evidence is its photos. Their word-space vectors pass through
the 1000 ImageNet classes and lose most of what makes an everyday photo itself
(a kitchen, a street, a face). The CNN's pooled features keep it.

A label's visual prototype follows SimpleShot's "CL2N" (Wang et al., 2019): every
photo's full 1280-d pooled features are unit-normed, centred on the mean of the
photos being compared (the labelled ones and the candidates a label search
re-ranks: the whole library up to ``RERANKED_CANDIDATES`` photos) and unit-normed
again; the prototype is the mean of the labelled photos' rows, and a candidate's
look is its cosine to it. Centring removes what every photo of the library shares
(the direction all ReLU6 features point along), so the cosine measures what sets
the labelled photos apart.

Measured with ``devise-app bench learn`` (k = 5, gain of the label over typing the
word; COCO development sample and ImageNet sample, nothing trained on them): the
previous prototype (the features on the classifier's top 128 singular directions,
not centred) gave ImageNet concepts +0.053 and COCO categories +0.036; CL2N on the
1280-d features +0.109 and +0.035 (on the 224-px centre crop). Measured on a
288-px centre crop, where the word alone is stronger on COCO: +0.051 / +0.013
(previous) and +0.090 / +0.018 (CL2N). Centring alone, or 256/512 dimensions,
or a prototype minus the library mean, gave less; see models/MODEL_CARD.md.

``VISUAL_SHARE`` trades the two benchmarks: with CL2N (288 px), 0.3 gives
ImageNet +0.106 and COCO -0.009; 0.5 +0.090 and +0.018; 0.6 +0.062 and +0.023.

What the labelled photos share as a concept (``concept_scores``): a label's
learned vector sits near the ImageNet classes of its own few photos (five dogs of
three breeds give a vector near those breeds, and the other dogs rank low: COCO
"dog" AP 0.608 typing the word, 0.059 by the label vector alone). The classifier
says more: every WordNet concept the vocabulary knows (a class, or a node such as
"dog" with the classes below it) has a probability in each photo (the sum of its
classes' softmax probabilities). The concept whose mean log-probability over the
labelled photos rises most above its mean over the photos compared is what they
share; its log-probability, standardised over the candidates, is mixed into the
text part of the score (``CONCEPT_SHARE``) for a label of two or more photos (one
photo shares nothing with another yet). With it, and ``VISUAL_SHARE`` 0.3,
``bench learn`` at k = 5 gives ImageNet concepts +0.218 (was +0.091) and COCO
categories +0.027 (was +0.018); k = 1 +0.095 (was +0.065). See models/MODEL_CARD.md.
The rises were first averaged over the labelled photos, which let one photo decide
(five buildings, one surely a palace, shared "palace"); a soft minimum
(``SHARED_SOFTNESS``) asks the concept to rise in all of them: ImageNet k = 5
+0.134 -> +0.166, COCO "Album" labels +0.017 -> +0.027.

What a label's name says: a label named "Grandma", "our red bike" or "dog"
mentions concepts (people, bikes, dogs) that the classifier has evidence for, as a
typed query does (``query.mentioned_concepts``; the name is read as text, never
parsed as a query). Its text part is then ranked as a typed query naming those
concepts and the one its photos share would be: the cosines to the label's
learned vector re-ranked by their evidence (``concepts.reranked``,
``NAMED_WEIGHT``). Against typing the word (itself re-ranked, so a harder baseline
than above), ImageNet concepts at k = 5 went +0.077 -> +0.097 and at k = 1 -0.041
-> +0.084. Leaving the shared concept out gave +0.113 there (ImageNet's hypernyms
are broad, and what five of their photos share is narrower), but a label on a
user's own things is narrow: three COCO bicycles labelled "our red bike" put 3
bicycles in the next 10 results without it and 5 with it ("Album 99" on the same
photos: 5). A smaller ``VISUAL_SHARE`` for named labels would also do better on
ImageNet (0.1: +0.135 without the shared concept), but on the COCO sample with
labels named by their category the look matters (a simulation without learning:
0.437 at 0.1, 0.483 at 0.3, 0.503 at 0.5, against 0.412 for the word), so the
share stays. The COCO protocol's names ("Album 7") mention nothing.

How much the look counts for a named label (``named_look_share``): a name that
ranks the labelled photos themselves at the top ("container" on five containers)
explains them, and a look drawn from five photos of a broad concept only narrows
it; a name that ranks them low ("Grandma" on five portraits) leaves the ranking to
the look. The look's share is the square root of one minus the labelled photos'
mean percentile under the name's ranking. ``bench learn``, ImageNet concepts: k = 1
+0.084 -> +0.094, k = 5 +0.109 -> +0.124; COCO categories labelled with their own
name (a scratch simulation with learning, k = 5): +0.072 either way; "Album N"
labels mention nothing and are unchanged. The shared concept then joins the
name's only when it shares no class with them (``named_label_concepts``): k = 5
+0.124 -> +0.134, COCO named labels +0.072 -> +0.074. Measured and not kept: a
linear share (0.5-2 times one minus the percentile), the look brought to the text
part's spread before mixing, the typed name's vector mixed into the label's,
leaving the shared concept out altogether (ImageNet up to +0.136, COCO named labels
down to +0.039), or only when it lies within the name's concepts (+0.132).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from devise_app.engine.concepts import NAMED_WEIGHT, ClassSets, class_probabilities, reranked, standardised
from devise_app.engine.vectors import unit_rows

if TYPE_CHECKING:
    from devise_app.engine.model import Head
    from devise_app.engine.query import QueryVector
    from devise_app.engine.vocabulary import Vocabulary

VISUAL_SHARE = 0.3  # of a label search's score; the rest is the text part
CONCEPT_SHARE = 0.7  # of the text part, for a label of 2+ photos; the rest is the label vector's cosine
CONCEPT_SCALE = 0.1  # the standard deviation the shared concept's scores are brought to
SHARED_SOFTNESS = 2.0  # nats: the soft minimum over the labelled photos (0 is the minimum, infinity the mean)
_LOG_FLOOR = 1e-6  # added to a concept's probability before its log
# a short text that names no class, and word arithmetic, also rank by the look of
# their best photos so far (pseudo-relevance feedback): so many photos, at this
# share of the scores' spread
FEEDBACK_PHOTOS = 5
FEEDBACK_SHARE = 0.5


def visual_scores(labelled: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Cosine of each candidate's features to the CL2N prototype of the labelled
    photos' features, centred on the mean of both sets."""
    if not len(labelled) or not len(candidates):
        return np.zeros(len(candidates), dtype=np.float32)
    labelled = unit_rows(np.asarray(labelled, dtype=np.float32))
    candidates = unit_rows(np.asarray(candidates, dtype=np.float32))
    centre = np.concatenate([labelled, candidates]).mean(axis=0)
    prototype = unit_rows(unit_rows(labelled - centre).mean(axis=0))
    return (unit_rows(candidates - centre) @ prototype).astype(np.float32)


def with_feedback(scores: np.ndarray, features: np.ndarray) -> np.ndarray:
    """``scores`` raised where a photo looks like the best ``FEEDBACK_PHOTOS`` of them
    (the CL2N cosine of ``visual_scores``, standardised, at ``FEEDBACK_SHARE`` of the
    scores' spread): "beach" finds the other beaches that look like its best ones.
    The best score stays what it was, so a query with nothing good to find
    ("sunset" in a library without one) still has no good match (``relevance``).
    Scores of fewer than twice that many photos are left as they are."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) < 2 * FEEDBACK_PHOTOS:
        return scores.astype(np.float32)
    best = np.argsort(-scores, kind="stable")[:FEEDBACK_PHOTOS]
    look = standardised(visual_scores(features[best], features).astype(np.float64))
    mixed = scores + FEEDBACK_SHARE * scores.std() * look
    # on the scores' own scale: the best one where it was, the rest as spread as before
    below_best = (mixed.max() - mixed) * scores.std() / max(float(mixed.std()), 1e-9)
    return np.clip(scores.max() - below_best, -1.0, 1.0).astype(np.float32)


def ranked_scores(
    query: QueryVector, cosines: np.ndarray, probabilities: np.ndarray, features: np.ndarray
) -> np.ndarray:
    """The scores ``Library.find`` ranks a query's candidates by: their cosines,
    re-ranked by the classifier's evidence for what the query names
    (``concepts.reranked``), then by the look of its best photos where the query
    asks for it (``QueryVector.feedback``)."""
    scores = reranked(cosines, probabilities, query.concepts, query.concept_weight, query.avoided)
    return with_feedback(scores, features) if query.feedback else scores


@functools.lru_cache(maxsize=4)
def concept_sets(vocabulary: Vocabulary) -> tuple[tuple[int, ...], ...]:
    """The sets of classes at or below each WordNet concept the vocabulary knows,
    each set once, sorted."""
    return tuple(sorted(vocabulary.concept_class_sets()))


@functools.lru_cache(maxsize=4)
def concept_groups(vocabulary: Vocabulary) -> np.ndarray:
    """(concepts, classes) 0/1: ``concept_sets`` as a matrix."""
    sets = concept_sets(vocabulary)
    matrix = np.zeros((len(sets), len(vocabulary.class_names)), dtype=np.float32)
    for row, members in enumerate(sets):
        matrix[row, list(members)] = 1.0
    return matrix


def shared_concept(
    labelled: np.ndarray, candidates: np.ndarray, vocabulary: Vocabulary
) -> tuple[int, ...] | None:
    """The classes of the concept the labelled photos share most, from the class
    probabilities of the labelled photos and of the candidates: the largest rise of
    its log-probability in the labelled photos above its mean over both sets, taken
    as a soft minimum over the labelled photos, so that it must rise in all of them
    (one photo that is surely a palace does not make five buildings' label
    "palace"); None for fewer than two labelled photos (one photo shares nothing
    with another yet)."""
    if len(labelled) < 2 or not len(candidates):
        return None
    probabilities = np.concatenate([labelled, candidates]) @ concept_groups(vocabulary).T
    log_probabilities = np.log(probabilities + _LOG_FLOOR)
    rises = log_probabilities[: len(labelled)] - log_probabilities.mean(axis=0)
    return concept_sets(vocabulary)[int(np.argmax(_soft_minimum(rises, SHARED_SOFTNESS)))]


def _soft_minimum(values: np.ndarray, softness: float) -> np.ndarray:
    """Per column, -softness * log(mean(exp(-values / softness))): near the mean when
    the values agree, near the smallest when one stands far above the others."""
    scaled = -np.asarray(values, dtype=np.float64) / softness
    top = scaled.max(axis=0)
    return -softness * (top + np.log(np.exp(scaled - top).mean(axis=0)))


def _scaled_evidence(probabilities: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    log_probabilities = np.log(probabilities[:, list(classes)].sum(axis=1) + _LOG_FLOOR)
    return (CONCEPT_SCALE * standardised(log_probabilities)).astype(np.float32)


def concept_scores(
    labelled: np.ndarray, candidates: np.ndarray, head: Head, vocabulary: Vocabulary
) -> np.ndarray:
    """Each candidate's log-probability of ``shared_concept``, standardised to
    ``CONCEPT_SCALE``; zeros when there is none."""
    candidate_probabilities = class_probabilities(np.asarray(candidates, dtype=np.float32), head)
    labelled_probabilities = class_probabilities(np.asarray(labelled, dtype=np.float32), head)
    shared = shared_concept(labelled_probabilities, candidate_probabilities, vocabulary)
    if shared is None:
        return np.zeros(len(candidates), dtype=np.float32)
    return _scaled_evidence(candidate_probabilities, shared)


def named_label_concepts(named: ClassSets, shared: tuple[int, ...] | None) -> ClassSets:
    """The concepts a named label's photos are re-ranked by: those its name mentions,
    and the one its photos share when it shares no class with them ("Grandma" on
    photos of bikes). One that does would narrow or blur what the name says: five
    photos labelled "container" share "bottle", or "vessel", half ships."""
    if shared is None or set(shared) & set().union(*named):
        return named
    return tuple(dict.fromkeys((*named, shared)))


def named_look_share(text: np.ndarray, labelled_count: int) -> float:
    """The look's share of a named label's score, from how its name ranks the labelled
    photos themselves (the last ``labelled_count`` of ``text``, the others being the
    candidates): the square root of one minus their mean percentile. A name that
    ranks its own photos first ("container" on five containers) is trusted and the
    look adds little; one that says little about them leaves more to the look."""
    others, own = text[:-labelled_count], text[-labelled_count:]
    if not len(others) or not len(own):
        return VISUAL_SHARE
    percentile = float(np.mean([(text < score).mean() for score in own]))
    return float(np.sqrt(max(0.0, 1.0 - percentile)))


def label_scores(
    cosines: np.ndarray,
    labelled: np.ndarray,
    candidates: np.ndarray,
    head: Head,
    vocabulary: Vocabulary,
    named: ClassSets = (),
    labelled_cosines: np.ndarray | None = None,
) -> np.ndarray:
    """A label search's score of each candidate: its text part, then mixed with the
    labelled photos' look. The text part of a label whose name mentions concepts
    (``named``) is ``cosines`` (to the label's vector) re-ranked, as a typed query
    is (``concepts.reranked``), by them and by the concept its photos share, and the
    look's share then depends on how that ranks the labelled photos themselves
    (``labelled_cosines``, their cosines to the label's vector; ``named_look_share``);
    of any other label, ``cosines`` mixed with the concept its photos share, and the
    look takes ``VISUAL_SHARE``."""
    candidate_probabilities = class_probabilities(np.asarray(candidates, dtype=np.float32), head)
    labelled_probabilities = class_probabilities(np.asarray(labelled, dtype=np.float32), head)
    shared = shared_concept(labelled_probabilities, candidate_probabilities, vocabulary)
    text: np.ndarray = np.asarray(cosines, dtype=np.float32)
    share = VISUAL_SHARE
    if named:
        concepts = named_label_concepts(named, shared)
        if labelled_cosines is not None and len(labelled_cosines):
            both = reranked(
                np.concatenate([text, labelled_cosines]),
                np.concatenate([candidate_probabilities, labelled_probabilities]),
                concepts,
                NAMED_WEIGHT,
            )
            text, share = both[: len(text)], named_look_share(both, len(labelled_cosines))
        else:
            text = reranked(text, candidate_probabilities, concepts, NAMED_WEIGHT)
    elif shared is not None:
        shared_scores = _scaled_evidence(candidate_probabilities, shared)
        text = (1 - CONCEPT_SHARE) * text + CONCEPT_SHARE * shared_scores
    return ((1 - share) * text + share * visual_scores(labelled, candidates)).astype(np.float32)

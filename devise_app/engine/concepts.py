"""The classifier's own evidence for the concepts a query names.

A photo's vector mixes the texts of its likely classes, so a cosine to "cat"
mostly measures how much of the photo's probability sits on cats: a kitchen
photo with a small cat in a corner (p = 0.02) ranks below a tiger-striped rug.
The log of a concept's probability (the sum of its classes' softmax
probabilities, as in ``visual.concept_scores``) tells the two apart: it grades
weak but real presence, which everyday photos full of things need.

A query that names a class or a WordNet concept ("cat", "a vehicle", "tabby cats")
is re-ranked by ``NAMED_WEIGHT`` of that evidence; a noun that names no class takes
``ASSOCIATED_WEIGHT`` of the evidence for the classes whose definitions name it
("kitchen": microwave, toaster), as does a short text that mentions none for the
classes whose label texts are nearest it ("beach": seashore, lakeside); a longer
text has the concepts it mentions ("a cat on a couch": cat, couch) summed in at
``SHORT_TEXT_WEIGHT`` when it has two content words, else at ``MENTIONED_WEIGHT``.
What a text asks not to see ("a kitchen with no people", "a street without cars")
counts against a photo, at the same weight (``SHORT_TEXT_WEIGHT`` when the rest of
the text mentions nothing). The evidence, standardised over the photos compared
(the index's nearest ``search.RERANKED_CANDIDATES``), is brought to the cosines' own mean and spread
there, so a mixed score still reads like a cosine (the cut-off of ``relevance``
applies as before). Word arithmetic is re-ranked too: a sum ("2*dog + beach") by
what its texts name or mention, at ``SHORT_TEXT_WEIGHT``; an analogy ("puppy - dog +
cat") by the classes named by what it landed on (its nearest entries other than its
own words: kitten, kitty, Egyptian cat), as one concept, and by the kin of its first
term that its last one defines ("car - wheels + wings": the airliner) as another, at
``ANSWER_WEIGHT``. A description ("a reptile with a shell") also takes the classes of
a concept it mentions that its words tell apart (the turtles), at no less than
``SHORT_TEXT_WEIGHT``.

Chosen on the development samples (COCO sample and ImageNet sample; nothing was
trained on them), see models/MODEL_CARD.md: COCO category mAP 0.465 -> 0.498,
caption R@10 0.723 -> 0.754, ImageNet class-name R@1 0.908 -> 0.910, hypernym mAP
0.758 -> 0.903.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from devise_app.engine.vectors import softmax

if TYPE_CHECKING:
    from devise_app.engine.model import Head

NAMED_WEIGHT = 0.6  # of the score, for a query that names a class or concept
ASSOCIATED_WEIGHT = 0.3  # of the score, for the classes seen with a noun a query names
SHORT_TEXT_WEIGHT = 0.2  # of the score, for the concepts a text of two content words mentions
MENTIONED_WEIGHT = 0.1  # of the score, for the concepts a longer text mentions
ANSWER_WEIGHT = 0.45  # of the score, for the classes an analogy's answer names ("puppy - dog + cat")
_LOG_FLOOR = 1e-6  # added to a concept's probability before its log

ClassSets = tuple[tuple[int, ...], ...]


def standardised(values: np.ndarray) -> np.ndarray:
    spread = float(values.std())
    return (values - values.mean()) / max(spread, 1e-9)


def evidence(probabilities: np.ndarray, concepts: ClassSets, avoided: ClassSets = ()) -> np.ndarray:
    """(photos,) the sum over ``concepts`` of each one's standardised log-probability,
    less the same for each of the ``avoided`` ones ("a beach with no people")."""
    total = np.zeros(len(probabilities), dtype=np.float64)
    for sign, sets in ((1.0, concepts), (-1.0, avoided)):
        for members in sets:
            total += sign * standardised(np.log(probabilities[:, list(members)].sum(axis=1) + _LOG_FLOOR))
    return total


def reranked(
    cosines: np.ndarray,
    probabilities: np.ndarray,
    concepts: ClassSets,
    weight: float,
    avoided: ClassSets = (),
) -> np.ndarray:
    """``cosines`` mixed with the concepts' evidence (less the avoided ones'), on the
    cosines' scale."""
    cosines = np.asarray(cosines, dtype=np.float64)
    if not (concepts or avoided) or not weight or len(cosines) < 2:
        return cosines.astype(np.float32)
    scaled = cosines.mean() + cosines.std() * evidence(probabilities, concepts, avoided)
    return np.clip((1 - weight) * cosines + weight * scaled, -1.0, 1.0).astype(np.float32)


def class_probabilities(features: np.ndarray, head: Head) -> np.ndarray:
    """The classifier's softmax over the 1000 classes, from stored pooled features."""
    return softmax(np.asarray(features, dtype=np.float32) @ head.fc_weight.T + head.fc_bias)

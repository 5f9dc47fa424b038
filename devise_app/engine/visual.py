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
"""

from __future__ import annotations

import numpy as np

from devise_app.engine.vectors import unit_rows

VISUAL_SHARE = 0.5  # of a label search's score; the rest is the label vector's cosine


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

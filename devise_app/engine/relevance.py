"""Where good matches end: a calibrated cut-off for a ranked result list.

Every photo has some cosine to any query, so a ranking alone cannot say "no
elephant here". A hit is a good match when its score reaches both a floor and a
margin below the best hit: ``score >= max(GOOD_FLOOR, best - GOOD_MARGIN)``.
The two numbers were chosen on the COCO development sample
(../shared/datasets/coco-sample, shipped model): over the 80 category names they
give the best F1 of the rules tried (precision 0.44, recall 0.30, F1 0.36;
a floor alone: 0.34) and keep a caption's own photo among the good matches for
68 % of captions. The look of a short text's best photos (``visual.with_feedback``)
re-orders the rest on the same scale, the best score and the spread unchanged; with
it, the mean over the 80 names of each one's precision among its good matches goes
0.548 -> 0.569 and of its recall 0.426 -> 0.387 (``Library.find`` on the sample,
2026-12-07; 63 everyday queries judged by the captions: F1 0.506 -> 0.517).
It is a coarse cut, not a detector: words with nothing of them
in those photos still pass with their best few ("giraffe" at 0.26, "snowboard"
at 0.42), while in the test photos "giraffe" has no good match. Photos carrying
a searched label score 1.0 and are always good.
"""

from __future__ import annotations

from collections.abc import Sequence

GOOD_FLOOR = 0.25
GOOD_MARGIN = 0.30


def good_matches(scores: Sequence[float]) -> int:
    """How many of the leading hits (scores best first) are good matches."""
    if not scores:
        return 0
    cut = max(GOOD_FLOOR, scores[0] - GOOD_MARGIN)
    count = 0
    for score in scores:
        if score < cut:
            break
        count += 1
    return count

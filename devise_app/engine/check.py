"""``devise-app check [--repair]``: a library looks for its own damage, and mends it.

Each part is checked in turn, and with ``repair`` mended where it can be:

- the catalog: SQLite's ``PRAGMA integrity_check`` and ``foreign_key_check``
  (a damaged index inside SQLite is rebuilt with ``REINDEX``; damage to the tables
  themselves cannot be mended here, and the report says so);
- every stored vector: of the model's length, finite, of unit length, and equal
  to the projection of its stored features by the head in use, which it must also
  name; a wrong one is re-projected from its features, and a photo whose stored
  features are damaged is queued to be embedded again by the next index run;
- the learned head's file (a damaged one is set aside, as on every open);
- the search index: the file its sidecar describes, holding exactly the catalog's
  vectors; a damaged or wrong one is rebuilt.

The library is read in chunks, so the check's memory stays small at any size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from devise_app.engine import labels
from devise_app.engine.ann import VectorIndex
from devise_app.engine.catalog import FEATURE_DTYPE, VECTOR_DTYPE, Catalog
from devise_app.engine.model import Head

CHUNK_ROWS = 4096
UNIT_TOLERANCE = 1e-3  # |norm - 1| of a stored vector
PROJECTION_TOLERANCE = 1e-3  # largest difference to its features' projection (float16 features)


@dataclass(frozen=True)
class Finding:
    """One kind of damage: where, what, how many, and whether it was mended."""

    part: str  # "catalog", "vectors", "head" or "index"
    problem: str
    count: int
    repaired: bool
    hint: str = ""  # what to do about it, when the check cannot mend it


@dataclass(frozen=True)
class CheckReport:
    photos: int
    vectors: int  # stored vectors checked
    labels: int
    findings: tuple[Finding, ...]

    @property
    def sound(self) -> bool:
        """Nothing is wrong now (nothing was found, or all of it was mended)."""
        return all(finding.repaired for finding in self.findings)


@dataclass
class _VectorTally:
    checked: int = 0
    damaged_features: list[int] = field(default_factory=list)
    wrong_vectors: list[int] = field(default_factory=list)
    other_head: list[int] = field(default_factory=list)


def check_library(
    catalog: Catalog, library_dir: Path, shipped: Head, vector_index: VectorIndex, repair: bool
) -> CheckReport:
    """Check every part of a library (``shipped``: the model's own head); with
    ``repair``, mend what can be mended."""
    findings = _check_catalog(catalog, repair)
    findings += _check_head(library_dir)
    tally = _check_vectors(catalog, library_dir, shipped)
    findings += _mend_vectors(catalog, library_dir, shipped, tally, repair)
    findings += _check_index(vector_index, repair)
    return CheckReport(catalog.photo_count(), tally.checked, len(catalog.labels()), tuple(findings))


def _check_catalog(catalog: Catalog, repair: bool) -> list[Finding]:
    problems = catalog.integrity_problems()
    if not problems:
        return []
    if repair:
        catalog.reindex()
        if not catalog.integrity_problems():
            return [Finding("catalog", f"damaged SQLite indexes ({problems[0]})", len(problems), True)]
    return [
        Finding(
            "catalog",
            f"SQLite reports damage: {problems[0]}",
            len(problems),
            False,
            "the catalog cannot be mended in place: export the labels (devise-app label export FILE), "
            "then index the folders into a new library and import them there",
        )
    ]


def _check_head(library_dir: Path) -> list[Finding]:
    if not labels.head_path(library_dir).exists():
        return []
    if labels.load_learned(library_dir) is not None:
        return []
    return [
        Finding(
            "head",
            "the learned head was damaged: set aside as learned_head.damaged.npz",
            1,
            True,
            "run devise-app learn to learn the labels again",
        )
    ]


def _projection(library_dir: Path, shipped: Head) -> labels.Projection:
    learned = labels.load_learned(library_dir)
    return learned.head.project if learned is not None else shipped.project


def _check_vectors(catalog: Catalog, library_dir: Path, shipped: Head) -> _VectorTally:
    labels.settle_head(catalog, library_dir)
    project = _projection(library_dir, shipped)
    in_use = labels.head_fingerprint(library_dir)
    feature_dim = int(shipped.fc_weight.shape[1])
    tally = _VectorTally()
    dim: int | None = None
    for rows in catalog.stored_embeddings(CHUNK_ROWS):
        good: list[tuple[int, np.ndarray, np.ndarray]] = []
        for photo_id, vector_blob, feature_blob, head in rows:
            tally.checked += 1
            features = _floats(feature_blob, FEATURE_DTYPE)
            if features is None or len(features) != feature_dim or not np.isfinite(features).all():
                tally.damaged_features.append(photo_id)
                continue
            vector = _floats(vector_blob, VECTOR_DTYPE)
            if head != in_use:
                tally.other_head.append(photo_id)
            elif vector is None or not np.isfinite(vector).all():
                tally.wrong_vectors.append(photo_id)
            else:
                good.append((photo_id, vector, features.astype(np.float32)))
        if good:
            expected = project(np.stack([features for _, _, features in good]))
            dim = dim or expected.shape[1]
            for (photo_id, vector, _), made in zip(good, expected, strict=True):
                if (
                    len(vector) != dim
                    or abs(float(np.linalg.norm(vector)) - 1.0) > UNIT_TOLERANCE
                    or float(np.abs(vector - made).max()) > PROJECTION_TOLERANCE
                ):
                    tally.wrong_vectors.append(photo_id)
    return tally


def _floats(blob: bytes | None, dtype: type) -> np.ndarray | None:
    if blob is None or len(blob) % np.dtype(dtype).itemsize:
        return None
    return np.frombuffer(blob, dtype)


def _mend_vectors(
    catalog: Catalog,
    library_dir: Path,
    shipped: Head,
    tally: _VectorTally,
    repair: bool,
) -> list[Finding]:
    findings = []
    if tally.damaged_features:
        if repair:
            catalog.mark_stale(tally.damaged_features)
        findings.append(
            Finding(
                "vectors",
                "photos whose stored features are damaged"
                + (": they are embedded again by the next index run (devise-app rescan)" if repair else ""),
                len(tally.damaged_features),
                repair,
            )
        )
    wrong = [("not made by the head in use", tally.other_head), ("damaged vectors", tally.wrong_vectors)]
    if repair and (tally.other_head or tally.wrong_vectors):
        project = _projection(library_dir, shipped)
        with catalog.transaction():
            ids, features = catalog.features(sorted(tally.other_head + tally.wrong_vectors))
            catalog.set_vectors(ids, project(features), head=labels.head_fingerprint(library_dir))
    for problem, ids_found in wrong:
        if ids_found:
            text = problem + (": re-projected from their stored features" if repair else "")
            findings.append(Finding("vectors", text, len(ids_found), repair))
    return findings


def _check_index(vector_index: VectorIndex, repair: bool) -> list[Finding]:
    problem = vector_index.problem()
    if problem is None:
        return []
    if repair:
        vector_index.rebuild()
    mended = repair and vector_index.problem() is None
    return [Finding("index", problem + (": rebuilt" if mended else ""), 1, mended)]

"""Looking after a library: browsing without a query, filters, the library's
folders, removing and excluding photos, and duplicates. No Qt here.

``search.Library`` exposes all of this as typed methods; the functions below
take its catalog.

- **Browsing** lists indexed photos without a query, newest first by date taken
  (EXIF, else file time: ``catalog.TAKEN_AT``) or by name, through one SQL query
  with the filters as its condition (``PhotoFilter``: folder, date range, label),
  so a browse over 100k photos never loads their vectors.
- **Exact duplicates** (the same bytes: the indexer's blake2b content hash) are
  shown once, the first-indexed copy standing for the others, with ``copies``
  counting them; in search results too (``collapse``).
- **Near-duplicates** (re-saved, resized, cropped, brightened copies) are found
  on the stored CNN features, which tell such copies from other photos far
  better than the word-space vectors do (on scikit-image's photos, JPEG q60,
  half size, 90 % crop, +30 % brightness and mirrored copies all score at least
  0.89 against the original, while distinct photos score at most 0.41 at the 99th
  percentile). Features are read in chunks and projected to ``PROJECTED_DIM``
  dimensions with a fixed random projection (JL: cosines kept to about +-0.1),
  compared block by block (every pair, no index to build: 100k photos are about
  10^12 multiply-adds), and pairs over ``CANDIDATE_COSINE`` are confirmed on the
  full features at ``NEAR_DUPLICATE_COSINE``; confirmed pairs are joined into
  groups (union-find).
- **Removing** a photo or a folder drops its rows (labels with them) and keeps
  it out of later scans: a removed file or sub-folder goes on the catalog's
  excluded list unless it was moved to the trash (``send2trash``), and a removed
  indexed folder is forgotten. Excluded paths stay excluded until ``include``.
- **The library's folders** are recorded by every index run; ``rescan`` indexes
  them all. Libraries made before folders were recorded get theirs inferred: the
  top-most folders that hold catalogued photos.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np

from devise_app.engine import imaging
from devise_app.engine.catalog import TAKEN_AT, Catalog, PhotoRow, path_range
from devise_app.engine.errors import LibraryError

log = logging.getLogger(__name__)

Sort = Literal["date", "name"]
SORTS: dict[str, str] = {
    "date": f"{TAKEN_AT} DESC, photos.path",
    "name": "photos.path COLLATE NOCASE, photos.path",
}
PROJECTED_DIM = 128
CANDIDATE_COSINE = 0.75  # on the projected features: generous, a pair is confirmed on the full ones
NEAR_DUPLICATE_COSINE = 0.88  # on the full CNN features (see the module docstring)
_BLOCK_ELEMENTS = 1 << 24  # similarity entries computed at once (64 MB of float32)
FEATURE_CHUNK = 4096  # photos whose features are read at once
_PROJECTION_SEED = 20130  # fixed: the same library always gives the same groups


@dataclass(frozen=True)
class PhotoInfo:
    """An indexed photo as a list of photos shows it."""

    photo_id: int
    path: Path
    taken_at: float  # seconds since the epoch: EXIF date taken, else the file's mtime
    size: int
    copies: int = 1  # photos of the library with exactly these bytes (this one included)

    @property
    def taken(self) -> datetime:
        """``taken_at`` as a local date and time."""
        return datetime.fromtimestamp(self.taken_at)


@dataclass(frozen=True)
class PhotoFilter:
    """Which photos to list or search: all of its parts that are set must hold."""

    folder: Path | None = None  # photos in this folder or below it
    since: datetime | float | None = None  # taken at or after
    until: datetime | float | None = None  # taken before
    label: str | None = None  # carrying this label

    def is_empty(self) -> bool:
        return self.folder is None and self.since is None and self.until is None and self.label is None

    def sql(self, catalog: Catalog) -> tuple[str, list[object]]:
        """The condition over ``photos`` and its values; LibraryError for an unknown label."""
        parts: list[str] = []
        params: list[object] = []
        if self.folder is not None:
            low, high = path_range(os.path.realpath(self.folder))
            parts.append("photos.path >= ? AND photos.path < ?")
            params += [low, high]
        if self.since is not None:
            parts.append(f"{TAKEN_AT} >= ?")
            params.append(_seconds(self.since))
        if self.until is not None:
            parts.append(f"{TAKEN_AT} < ?")
            params.append(_seconds(self.until))
        if self.label is not None:
            label_id = catalog.label_id(self.label.strip())
            if label_id is None:
                raise LibraryError(f"no label named '{self.label}'")
            parts.append("photos.id IN (SELECT photo_id FROM photo_labels WHERE label_id = ?)")
            params.append(label_id)
        return " AND ".join(parts), params


def _seconds(moment: datetime | float) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def info(row: PhotoRow) -> PhotoInfo:
    return PhotoInfo(row.id, Path(row.path), row.taken_at, row.size, row.copies)


def browse(catalog: Catalog, sort: str, filters: PhotoFilter | None, top: int | None) -> list[PhotoInfo]:
    """Indexed photos without a query, each content once; see ``Library.browse``."""
    if sort not in SORTS:
        raise LibraryError(f"cannot sort by {sort!r}: use one of {', '.join(SORTS)}")
    where, params = (filters or PhotoFilter()).sql(catalog)
    return [info(row) for row in catalog.photo_rows(where=where, params=params, order=SORTS[sort], limit=top)]


def allowed_ids(catalog: Catalog, filters: PhotoFilter | None) -> frozenset[int] | None:
    """The ids a filtered search may return; None when nothing is filtered."""
    if filters is None or filters.is_empty():
        return None
    where, params = filters.sql(catalog)
    return catalog.photo_ids_where(where, params)


def collapse(catalog: Catalog, pairs: Sequence[tuple[int, float]]) -> list[tuple[PhotoRow, float]]:
    """Ranked (photo id, score) pairs with exact copies folded into their best-ranked
    one (its row's ``copies`` counts them); ids no longer indexed are left out."""
    rows = catalog.rows_of(photo_id for photo_id, _ in pairs)
    seen: set[bytes | int] = set()
    kept = []
    for photo_id, score in pairs:
        row = rows.get(photo_id)
        if row is None:
            continue
        key: bytes | int = row.hash if row.hash is not None else row.id
        if key in seen:
            continue
        seen.add(key)
        kept.append((row, score))
    return kept


def admitted_copy(catalog: Catalog, photo_id: int, allowed: frozenset[int]) -> PhotoRow | None:
    """An exact copy of photo ``photo_id`` (the same bytes) among ``allowed``, if any:
    a filtered search shows it where the copy that stood for them all is filtered out."""
    row = catalog.rows_of([photo_id]).get(photo_id)
    if row is None or row.hash is None:
        return None
    return next((copy for copy in catalog.rows_with_hash(row.hash) if copy.id in allowed), None)


# -- folders, removing, excluding ------------------------------------------------------------


def known_folders(catalog: Catalog) -> list[Path]:
    """The library's folders, outermost only; inferred (and recorded) for a
    library made before they were recorded."""
    folders = catalog.folders()
    if not folders:
        folders = _outermost(os.path.dirname(row.path) for row in catalog.photo_rows())
        catalog.add_folders(folders)
    return [Path(folder) for folder in _outermost(folders)]


def _outermost(folders: Iterable[str]) -> list[str]:
    """The folders that are not inside another one of them."""
    kept: list[str] = []
    for folder in sorted(set(folders)):
        if not kept or not folder.startswith(os.path.join(kept[-1], "")):
            kept.append(folder)
    return kept


def remove_photos(catalog: Catalog, photos: Sequence[Path], trash: bool = False) -> int:
    """Take photos out of the library (and move their files to the trash if asked);
    how many catalogued files were dropped. LibraryError for a path that is not in it."""
    paths = [_catalogued(catalog, photo) for photo in photos]
    if trash:
        _send_to_trash(paths)
    else:
        catalog.exclude(paths)
    return catalog.delete_paths(paths)


def remove_folder(catalog: Catalog, folder: Path, trash: bool = False) -> int:
    """Take a folder out of the library: its photos are dropped; an indexed folder is
    forgotten, a sub-folder excluded (so rescans skip it) unless it went to the trash."""
    path = os.path.realpath(folder)
    roots = catalog.folders()
    inside = [root for root in roots if root == path or root.startswith(os.path.join(path, ""))]
    under_root = any(path.startswith(os.path.join(root, "")) for root in roots)
    if not inside and not under_root:
        raise LibraryError(f"not a folder of the library: {folder}")
    if trash:
        _send_to_trash([path])
    elif under_root:
        catalog.exclude([path])
    for root in inside:
        catalog.forget_folder(root)
    return catalog.delete_paths_under(path)


def exclude_folder(catalog: Catalog, folder: Path) -> int:
    """Keep a folder out of the library from now on; its photos are dropped (how many)."""
    path = os.path.realpath(folder)
    catalog.exclude([path])
    return catalog.delete_paths_under(path)


def include(catalog: Catalog, path: Path) -> None:
    """Let an excluded folder or file back in (the next index run or rescan adds it)."""
    for candidate in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
        if catalog.include(candidate):
            return
    raise LibraryError(f"not excluded from the library: {path}")


def _catalogued(catalog: Catalog, photo: Path) -> str:
    for path in dict.fromkeys((os.path.abspath(photo), os.path.realpath(photo))):
        if catalog.photo_id(path) is not None:
            return path
    raise LibraryError(f"not a photo of the library: {photo}")


def _send_to_trash(paths: Sequence[str]) -> None:
    from send2trash import send2trash
    from send2trash.exceptions import TrashPermissionError

    for path in paths:
        if not os.path.lexists(path):
            continue  # already gone: dropping its row is all that is left to do
        try:
            send2trash(path)
        except (OSError, TrashPermissionError) as exc:
            raise LibraryError(f"cannot move {path} to the trash: {exc}") from exc
        log.info("moved to the trash: %s", path)


def backfill_dates(catalog: Catalog) -> int:
    """Store the date taken of photos catalogued before dates were (read from the
    files' headers; the file time when they have none); how many."""
    undated = catalog.undated()
    values = []
    for photo_id, path in undated:
        taken = imaging.date_taken(path)
        if taken is None:
            try:
                taken = os.stat(path).st_mtime
            except OSError:
                continue
        values.append((photo_id, taken))
    catalog.set_taken_at(values)
    return len(values)


# -- duplicates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateGroup:
    """Photos that are the same picture. ``exact``: the same bytes (``photos`` are
    all its copies); otherwise near-duplicates, each shown once with its copies."""

    exact: bool
    photos: tuple[PhotoInfo, ...]
    similarity: float  # the lowest confirmed feature cosine in the group (1.0 for exact copies)


def duplicates(catalog: Catalog, near: bool = True) -> list[DuplicateGroup]:
    """Exact copies, largest groups first, then near-duplicate groups."""
    groups = [
        DuplicateGroup(True, tuple(info(row) for row in catalog.rows_with_hash(content_hash)), 1.0)
        for content_hash in catalog.duplicate_hashes()
    ]
    return groups + (near_duplicates(catalog) if near else [])


def near_duplicates(catalog: Catalog, threshold: float = NEAR_DUPLICATE_COSINE) -> list[DuplicateGroup]:
    """Groups of distinct contents whose CNN features are at least ``threshold`` alike.

    Memory stays at the projected features (N x PROJECTED_DIM) plus the full
    features of the photos in candidate pairs: features are read in chunks."""
    shown = {row.id: row for row in catalog.photo_rows()}  # one per content
    ids, small, projected = _projected_features(catalog, sorted(shown))
    if len(ids) < 2:
        return []
    candidates = _candidate_pairs(small, min(threshold, CANDIDATE_COSINE) if projected else threshold)
    pairs = _confirmed(catalog, ids, candidates, threshold)
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    lowest: dict[int, float] = {}
    for i, j, score in pairs:
        a, b = find(i), find(j)
        parent[max(a, b)] = min(a, b)
        root = min(a, b)
        lowest[root] = min(lowest.get(root, 1.0), lowest.pop(max(a, b), 1.0), score)
    members: dict[int, list[int]] = {}
    for i in range(len(ids)):
        members.setdefault(find(i), []).append(i)
    groups = [
        DuplicateGroup(
            False,
            tuple(sorted((info(shown[int(ids[i])]) for i in group), key=lambda p: str(p.path))),
            round(lowest.get(root, 1.0), 4),
        )
        for root, group in members.items()
        if len(group) > 1
    ]
    return sorted(groups, key=lambda g: (-len(g.photos), str(g.photos[0].path)))


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def _projected_features(catalog: Catalog, photo_ids: list[int]) -> tuple[np.ndarray, np.ndarray, bool]:
    """(ids, unit features projected to PROJECTED_DIM, whether they were projected),
    read FEATURE_CHUNK photos at a time."""
    all_ids, parts, projection = [], [], None
    for start in range(0, len(photo_ids), FEATURE_CHUNK):
        ids, features = catalog.features(photo_ids[start : start + FEATURE_CHUNK])
        if not len(ids):
            continue
        if projection is None and features.shape[1] > PROJECTED_DIM:
            rng = np.random.default_rng(_PROJECTION_SEED)
            projection = rng.standard_normal((features.shape[1], PROJECTED_DIM)).astype(np.float32)
        unit = _unit(features)
        parts.append(_unit(unit @ projection) if projection is not None else unit)
        all_ids.append(ids)
    if not parts:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32), False
    return np.concatenate(all_ids), np.concatenate(parts).astype(np.float32), projection is not None


def _candidate_pairs(small: np.ndarray, candidate: float) -> list[tuple[int, int]]:
    """(i, j), i < j, of the rows of ``small`` at least ``candidate`` alike: every
    pair, block by block (_BLOCK_ELEMENTS similarities at a time)."""
    count = len(small)
    block = max(1, _BLOCK_ELEMENTS // count)
    pairs = []
    for start in range(0, count, block):
        scores = small[start : start + block] @ small.T
        rows, cols = np.nonzero(scores >= candidate)
        pairs += [(i, j) for i, j in zip((rows + start).tolist(), cols.tolist(), strict=True) if i < j]
    return pairs


def _confirmed(
    catalog: Catalog, ids: np.ndarray, candidates: list[tuple[int, int]], threshold: float
) -> list[tuple[int, int, float]]:
    """The candidate pairs whose full features are at least ``threshold`` alike, with that cosine."""
    involved = sorted({int(ids[k]) for pair in candidates for k in pair})
    full: dict[int, np.ndarray] = {}
    for start in range(0, len(involved), FEATURE_CHUNK):
        chunk_ids, features = catalog.features(involved[start : start + FEATURE_CHUNK])
        full.update(zip(chunk_ids.tolist(), _unit(features), strict=True))
    confirmed = []
    for i, j in candidates:
        score = float(full[int(ids[i])] @ full[int(ids[j])])
        if score >= threshold:
            confirmed.append((i, j, score))
    return confirmed

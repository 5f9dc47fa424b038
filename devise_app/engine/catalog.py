"""The photo catalog: one SQLite file in the library folder.

One row per photo file found by the indexer, with what is needed to decide
cheaply whether it changed (size, mtime), to recognise it after a move (content
hash), and to search it (its unit vector in word space, plus the pooled CNN
features so that a retrained head can re-project it without decoding again).

Design notes:

- WAL journal, so the GUI thread can read while an index run writes.
- One connection shared by the threads of a process, guarded by a re-entrant
  lock; every public method takes the lock, and ``transaction()`` holds it for
  the whole block. Writes are grouped per batch, so a run killed at any moment
  leaves a consistent catalog that the next run resumes from.
- Locking between processes (the GUI and ``devise-app index`` on one library, or
  two index runs): SQLite's own file locks serialise the writers. Every write
  transaction starts with ``BEGIN IMMEDIATE``, taking the single write lock up
  front (never upgrading a read, which could fail instead of waiting), and a
  connection that finds it taken waits up to ``BUSY_TIMEOUT_S`` instead of
  failing. In WAL mode readers never wait for a writer and see only committed
  transactions. A photo is stored by path with an upsert, so two runs indexing
  the same folder keep one row per file (labels merged, none lost), and a
  migration re-reads the schema version under the write lock, so two processes
  opening a new library at once migrate it once.
- The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS[i]`` brings
  a catalog from version ``i`` to ``i + 1``. Never edit a shipped migration:
  append a new one.
- ``meta`` holds the model identity the vectors belong to and a generation
  counter, bumped by every transaction that changes the indexed photos or their
  vectors. The Annoy index remembers the generation it was built from, so it is
  rebuilt exactly when needed. Label edits do not bump it (they do not change
  what the Annoy index holds).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devise_app.engine.errors import LibraryError

CATALOG_FILENAME = "catalog.sqlite"
log = logging.getLogger(__name__)

# Photo states.
INDEXED = "indexed"  # has a vector made by the current model
ERROR = "error"  # could not be read; ``error`` says why
STALE = "stale"  # its vector came from another model: re-embed on the next run

MIGRATIONS: list[str] = [
    # 0 -> 1
    """
    CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        hash BLOB,
        state TEXT NOT NULL CHECK (state IN ('indexed', 'error', 'stale')),
        error TEXT,
        vector BLOB,
        features BLOB,
        indexed_at REAL NOT NULL
    );
    CREATE INDEX photos_hash ON photos (hash);
    CREATE TABLE labels (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        created REAL NOT NULL
    );
    CREATE TABLE photo_labels (
        photo_id INTEGER NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
        label_id INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
        PRIMARY KEY (photo_id, label_id)
    ) WITHOUT ROWID;
    CREATE INDEX photo_labels_label ON photo_labels (label_id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value) VALUES ('generation', '0');
    """,
    # 1 -> 2: when each photo was taken (EXIF, else file time; NULL in rows made
    # before: browsing then uses mtime), the folders the library was asked to index,
    # and the folders and files taken out of it (the scan skips them).
    """
    ALTER TABLE photos ADD COLUMN taken_at REAL;
    CREATE INDEX photos_taken ON photos (COALESCE(taken_at, mtime_ns / 1e9));
    CREATE TABLE folders (path TEXT PRIMARY KEY, added REAL NOT NULL) WITHOUT ROWID;
    CREATE TABLE excluded (path TEXT PRIMARY KEY, added REAL NOT NULL) WITHOUT ROWID;
    """,
    # 2 -> 3: which head each stored vector came from (the fingerprint that
    # devise_app.engine.labels names heads by; the library's head until now).
    """
    ALTER TABLE photos ADD COLUMN head TEXT;
    UPDATE photos SET head = COALESCE((SELECT value FROM meta WHERE key = 'head'), 'shipped')
        WHERE vector IS NOT NULL;
    CREATE INDEX photos_head ON photos (head);
    """,
]
# The heads stored vectors come from, besides a learned head's fingerprint.
SHIPPED_HEAD = "shipped"  # the model's own (the migration to version 3 writes it too)
UNKNOWN_HEAD = "unknown"  # stored by a writer that could not tell: the next reconcile re-projects it
# When a photo was taken, for sorting and filtering: the stored date, else its file time.
TAKEN_AT = "COALESCE(photos.taken_at, photos.mtime_ns / 1e9)"

VECTOR_DTYPE = np.float32
# Features are kept as float16: half the space, and ample precision for re-projecting.
FEATURE_DTYPE = np.float16
PRIVATE_FOLDER_MODE = 0o700
# How long a connection waits for another process's write transaction to end.
BUSY_TIMEOUT_S = 30.0
PHOTO_COLUMNS = (
    "path", "size", "mtime_ns", "hash", "state", "error", "vector", "features", "indexed_at", "taken_at",
    "head",
)  # fmt: skip


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration script, one by one (``executescript``
    would commit the transaction holding the write lock first)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {current.strip()!r}")
    return statements


def _refuse_an_emptied_catalog(db: Path) -> None:
    """A 0-byte catalog beside an index or a learned head was truncated, not new:
    taking it for a new library would delete the index and lose every label."""
    try:
        if db.stat().st_size:
            return
        others = [p.name for p in db.parent.iterdir() if not p.name.startswith(CATALOG_FILENAME)]
    except OSError:
        return  # opening it reports the real problem
    if others:
        raise LibraryError(
            f"the catalog {db} is empty (0 bytes) although the library holds {', '.join(sorted(others))}: "
            "it was truncated. Nothing was changed; restore the file from a backup, or move the "
            "library folder aside to start a new one"
        )


def _stacked(rows: Sequence[tuple[int, bytes]], dtype: type, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, matrix) of rows of (id, BLOB), leaving out a BLOB of another length than
    the others' or with NaN or infinite numbers (a damaged row made every search
    raise, or became a NaN vector); each one left out is logged."""
    lengths = Counter(len(blob) for _, blob in rows if blob)
    if not lengths:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=dtype)
    width = lengths.most_common(1)[0][0]
    good: list[tuple[int, bytes]] = []
    for photo_id, blob in rows:
        if blob and len(blob) == width and np.isfinite(np.frombuffer(blob, dtype)).all():
            good.append((photo_id, blob))
        else:
            log.warning("photo %s has a damaged stored %s: left out", photo_id, what)
    ids = np.array([photo_id for photo_id, _ in good], dtype=np.int64)
    if not good:
        return ids, np.zeros((0, 0), dtype=dtype)
    matrix: np.ndarray = np.frombuffer(b"".join(blob for _, blob in good), dtype).reshape(len(good), -1)
    return ids, matrix


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _make_private(library_dir: Path) -> None:
    """Only the user may read a library (its catalog lists photo paths and labels)."""
    try:
        st = library_dir.stat()
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            library_dir.chmod(PRIVATE_FOLDER_MODE)
    except (OSError, AttributeError):  # not ours, or no getuid (Windows): leave it as it is
        pass


@dataclass(frozen=True)
class PhotoRecord:
    """What the indexer needs to know about a catalogued file."""

    id: int
    path: str
    size: int
    mtime_ns: int
    hash: bytes | None
    state: str
    error: str | None


class Catalog:
    """The SQLite store of one library. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._changed = False
        try:
            self._conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise LibraryError(f"cannot open the photo catalog {path}: {exc}") from exc
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._use_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.Error as exc:
            self._conn.close()
            if not os.access(path.parent, os.W_OK) or not os.access(path, os.W_OK):
                raise LibraryError(
                    f"the library {path.parent} is read-only: its catalog needs to write its journal "
                    "beside it (copy the library somewhere writable, or make it writable)"
                ) from exc
            raise LibraryError(f"cannot read the photo catalog {path}: {exc}") from exc

    def _use_wal(self) -> None:
        """Switch to WAL. Connections doing this at once on a new file can get
        SQLITE_BUSY at once, without the busy timeout (SQLite's way of avoiding a
        deadlock between them): retry until BUSY_TIMEOUT_S."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @classmethod
    def open(cls, library_dir: Path, create: bool = True) -> Catalog:
        """Open the catalog of the library in ``library_dir``, creating it if asked."""
        db = library_dir / CATALOG_FILENAME
        if not db.exists():
            if not create:
                raise LibraryError(
                    f"no photo library in {library_dir} (index a folder first: devise-app index FOLDER)"
                )
            try:
                library_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER_MODE)
            except OSError as exc:
                raise LibraryError(f"cannot create the library folder {library_dir}: {exc}") from exc
        else:
            _refuse_an_emptied_catalog(db)
        _make_private(library_dir)
        catalog = cls(db)
        log.info("library opened: %s", library_dir)
        return catalog

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- schema ---------------------------------------------------------------

    def _user_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self._user_version()
        if version > len(MIGRATIONS):
            raise LibraryError(
                f"the photo catalog {self.path} was made by a newer devise-app (schema {version})"
            )
        for target in range(version + 1, len(MIGRATIONS) + 1):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have migrated while this one waited for the lock.
                if self._user_version() < target:
                    for statement in _statements(MIGRATIONS[target - 1]):
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {target}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._user_version()

    # -- transactions and meta ------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; bumps the generation on commit if photos changed.

        Nested use joins the outer transaction.
        """
        with self._lock:
            if self._conn.in_transaction:
                yield
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._changed = False
            try:
                yield
                if self._changed:
                    self._conn.execute(
                        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._roll_back()
                raise
            finally:
                self._changed = False

    def _roll_back(self) -> None:
        """Undo the open transaction, if SQLite has not already: on a full disk it
        rolls back by itself, and a ROLLBACK then raised "cannot rollback - no
        transaction is active", which hid the real error (database or disk is full)."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _write(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        """Run one statement that changes photos, inside the current or a new transaction."""
        with self.transaction():
            self._changed = True
            return self._conn.execute(sql, params)

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    def requeue_damaged(self) -> int:
        """Mark indexed photos whose stored vector or features have another length than
        the others' stale, so the next run embeds them again; the number marked. (Only
        lengths, which SQLite keeps in each row's header: an unchanged rescan stays
        quick. A BLOB of the right length holding NaN is left out when read.)"""
        marked = 0
        with self.transaction():
            for column in ("vector", "features"):
                row = self._conn.execute(
                    f"SELECT length({column}) FROM photos WHERE state = '{INDEXED}' "
                    "GROUP BY 1 ORDER BY COUNT(*) DESC LIMIT 1"
                ).fetchone()
                if row is None:
                    continue
                cursor = self._conn.execute(
                    f"UPDATE photos SET state = '{STALE}' WHERE state = '{INDEXED}' "
                    f"AND ({column} IS NULL OR length({column}) != ?)",
                    (row[0],),
                )
                marked += cursor.rowcount
            self._changed = self._changed or marked > 0  # photos changed only if some were marked
        if marked:
            log.warning("%d photos with a damaged stored vector will be embedded again", marked)
        return marked

    def use_model(self, model_id: str) -> bool:
        """Record that vectors must come from ``model_id``.

        When the catalog's vectors came from another model, they are all marked
        stale (the next index run re-embeds them) and True is returned.
        """
        with self.transaction():
            current = self.get_meta("model_id")
            if current == model_id:
                return False
            self._write(f"UPDATE photos SET state = '{STALE}' WHERE state = '{INDEXED}'")
            self.set_meta("model_id", model_id)
            return current is not None

    # -- photos: reading ------------------------------------------------------

    def records(self) -> list[PhotoRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, path, size, mtime_ns, hash, state, error FROM photos"
            ).fetchall()
        return [PhotoRecord(*row) for row in rows]

    def photo_count(self) -> int:
        with self._lock:
            return int(
                self._conn.execute(f"SELECT COUNT(*) FROM photos WHERE state = '{INDEXED}'").fetchone()[0]
            )

    def photo_id(self, path: str) -> int | None:
        if _unencodable(path):  # a lone surrogate (a file of labels, a pasted name): never stored
            return None
        with self._lock:
            row = self._conn.execute("SELECT id FROM photos WHERE path = ?", (path,)).fetchone()
        return None if row is None else int(row[0])

    def vector_of(self, path: str) -> tuple[int, np.ndarray] | None:
        """The stored vector of an indexed photo, with its id."""
        if _unencodable(path):
            return None
        with self._lock:
            row = self._conn.execute(
                f"SELECT id, vector FROM photos WHERE path = ? AND state = '{INDEXED}'", (path,)
            ).fetchone()
        if row is None:
            return None
        _, vectors = _stacked([row], VECTOR_DTYPE, "vector")
        return (int(row[0]), vectors[0].copy()) if len(vectors) else None

    def embedding_with_hash(self, content_hash: bytes) -> tuple[np.ndarray, np.ndarray] | None:
        """(vector, features) of an indexed photo with these bytes, if any."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT vector, features FROM photos WHERE hash = ? AND state = '{INDEXED}' LIMIT 1",
                (content_hash,),
            ).fetchone()
        if row is None:
            return None
        return np.frombuffer(row[0], VECTOR_DTYPE).copy(), np.frombuffer(row[1], FEATURE_DTYPE).copy()

    def indexed_hashes(self) -> frozenset[bytes]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT DISTINCT hash FROM photos WHERE state = '{INDEXED}' AND hash IS NOT NULL"
            ).fetchall()
        return frozenset(row[0] for row in rows)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of all indexed photos: int64 (N,) and float32 (N, dim)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, vector FROM photos WHERE state = '{INDEXED}' ORDER BY id"
            ).fetchall()
        return _stacked(rows, VECTOR_DTYPE, "vector")

    def vectors_of(self, ids: Iterable[int]) -> np.ndarray:
        """Vectors of the given indexed photos, (N, dim); ids not indexed are left out."""
        id_list = [int(i) for i in ids]
        with self._lock:
            rows = (
                self._conn.execute(
                    f"SELECT id, vector FROM photos WHERE state = '{INDEXED}' AND id IN "
                    f"({', '.join('?' * len(id_list))})",
                    id_list,
                ).fetchall()
                if id_list
                else []
            )
        return _stacked(rows, VECTOR_DTYPE, "vector")[1]

    def paths_of(self, ids: Iterable[int]) -> dict[int, str]:
        """Paths of the given indexed photos; ids no longer indexed are left out."""
        id_list = [int(i) for i in ids]
        if not id_list:
            return {}
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, path FROM photos WHERE state = '{INDEXED}' "
                f"AND id IN ({','.join('?' * len(id_list))})",
                id_list,
            ).fetchall()
        return {int(row[0]): str(row[1]) for row in rows}

    def errors(self) -> list[tuple[str, str]]:
        """(path, reason) of every file that could not be indexed."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT path, error FROM photos WHERE state = '{ERROR}' ORDER BY path"
            ).fetchall()
        return [(str(row[0]), str(row[1])) for row in rows]

    def features(self, ids: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, features) of the photos with stored features (all, or those of ``ids``),
        for re-projecting and learning."""
        sql = (
            f"SELECT id, features FROM photos WHERE state IN ('{INDEXED}', '{STALE}') "
            "AND features IS NOT NULL"
        )
        params: list[int] = []
        if ids is not None:
            params = [int(i) for i in ids]
            if not params:
                return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
            sql += f" AND id IN ({', '.join('?' * len(params))})"
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", params).fetchall()
        ids, matrix = _stacked(rows, FEATURE_DTYPE, "features")
        return ids, matrix.astype(np.float32)

    # -- photos: writing ------------------------------------------------------

    def put_photo(
        self,
        photo_id: int | None,
        path: str,
        size: int,
        mtime_ns: int,
        content_hash: bytes,
        vector: np.ndarray,
        features: np.ndarray,
        taken_at: float | None = None,
        *,
        head: str,
    ) -> int:
        """Store an indexed photo: a new row, or row ``photo_id`` updated (also
        its path: that is how a moved photo keeps its id and labels).
        ``taken_at``: when it was taken (EXIF, else its file time); ``head``: the
        fingerprint of the head that made ``vector`` from ``features``."""
        values = (
            path,
            size,
            mtime_ns,
            content_hash,
            INDEXED,
            None,
            np.ascontiguousarray(vector, VECTOR_DTYPE).tobytes(),
            np.ascontiguousarray(features, FEATURE_DTYPE).tobytes(),
            time.time(),
            taken_at if taken_at is not None else mtime_ns / 1e9,
            head,
        )
        return self._put(photo_id, values)

    def put_error(
        self,
        photo_id: int | None,
        path: str,
        size: int,
        mtime_ns: int,
        content_hash: bytes | None,
        error: str,
    ) -> int:
        """Record a file that could not be indexed, and why."""
        return self._put(
            photo_id, (path, size, mtime_ns, content_hash, ERROR, error, None, None, time.time(), None, None)
        )

    def _put(self, photo_id: int | None, values: tuple[object, ...]) -> int:
        """Store row ``photo_id`` (a changed or moved photo), or a new row by path.

        Another process may have written the same path meanwhile (two index runs
        at once): the path then keeps one row, the labels of both, and the id
        asked for; a row that another process removed meanwhile is stored anew.
        """
        path = str(values[0])
        with self.transaction():
            if photo_id is not None:
                other = self.photo_id(path)
                if other is not None and other != photo_id:
                    self._conn.execute(
                        "INSERT OR IGNORE INTO photo_labels (photo_id, label_id) "
                        "SELECT ?, label_id FROM photo_labels WHERE photo_id = ?",
                        (photo_id, other),
                    )
                    self._write("DELETE FROM photos WHERE id = ?", (other,))
                assignments = ", ".join(f"{column} = ?" for column in PHOTO_COLUMNS)
                if self._write(f"UPDATE photos SET {assignments} WHERE id = ?", (*values, photo_id)).rowcount:
                    return photo_id
            columns = ", ".join(PHOTO_COLUMNS)
            placeholders = ", ".join("?" * len(PHOTO_COLUMNS))
            updates = ", ".join(f"{column} = excluded.{column}" for column in PHOTO_COLUMNS[1:])
            self._write(
                f"INSERT INTO photos ({columns}) VALUES ({placeholders}) "
                f"ON CONFLICT (path) DO UPDATE SET {updates}",
                values,
            )
            stored = self.photo_id(path)
            assert stored is not None
            return stored

    def touch(self, photo_id: int, size: int, mtime_ns: int) -> None:
        """A file's size or mtime changed but its bytes did not. The vectors are
        untouched, so the generation is not bumped."""
        with self._lock:
            self._conn.execute(
                "UPDATE photos SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, photo_id)
            )

    def set_vectors(self, ids: np.ndarray, vectors: np.ndarray, *, head: str) -> None:
        """Replace the vectors of the given photos (a re-projection by head ``head``)."""
        with self.transaction():
            for photo_id, vector in zip(ids.tolist(), vectors, strict=True):
                self._write(
                    f"UPDATE photos SET vector = ?, head = ?, state = '{INDEXED}' WHERE id = ?",
                    (np.ascontiguousarray(vector, VECTOR_DTYPE).tobytes(), head, photo_id),
                )

    def integrity_problems(self) -> list[str]:
        """What SQLite's own checks find wrong with the file (empty: nothing)."""
        with self._lock:
            rows = self._conn.execute("PRAGMA integrity_check").fetchall()
            orphans = self._conn.execute("PRAGMA foreign_key_check").fetchall()
        problems = [str(row[0]) for row in rows if str(row[0]) != "ok"]
        if orphans:
            problems.append(f"{len(orphans)} rows point at rows that are gone ({orphans[0][0]})")
        return problems

    def reindex(self) -> None:
        """Rebuild SQLite's indexes from the tables, and drop label links to gone rows."""
        with self.transaction():
            self._conn.execute("REINDEX")
            self._conn.execute("DELETE FROM photo_labels WHERE photo_id NOT IN (SELECT id FROM photos)")
            self._conn.execute("DELETE FROM photo_labels WHERE label_id NOT IN (SELECT id FROM labels)")

    def stored_embeddings(
        self, chunk: int
    ) -> Iterator[list[tuple[int, bytes | None, bytes | None, str | None]]]:
        """(id, vector BLOB, features BLOB, head) of every indexed photo, raw, ``chunk``
        rows at a time (for checking them: nothing is left out or converted)."""
        after = -1
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT id, vector, features, head FROM photos WHERE state = '{INDEXED}' AND id > ? "
                    "ORDER BY id LIMIT ?",
                    (after, chunk),
                ).fetchall()
            if not rows:
                return
            yield [(int(r[0]), r[1], r[2], r[3]) for r in rows]
            after = int(rows[-1][0])

    def mark_stale(self, ids: Iterable[int]) -> None:
        """Queue photos to be embedded again by the next index run."""
        with self.transaction():
            for photo_id in ids:
                self._write(f"UPDATE photos SET state = '{STALE}' WHERE id = ?", (photo_id,))

    def vector_heads(self) -> dict[str, int]:
        """How many stored vectors each head made (from an index: no BLOB is read)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT head, COUNT(*) FROM photos WHERE head IS NOT NULL GROUP BY head"
            ).fetchall()
        return {str(head): int(count) for head, count in rows}

    def ids_not_from_head(self, head: str) -> list[int]:
        """Photos whose stored vector another head made (or whose head is not recorded)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id FROM photos WHERE state IN ('{INDEXED}', '{STALE}') "
                "AND features IS NOT NULL AND (head IS NULL OR head != ?) ORDER BY id",
                (head,),
            ).fetchall()
        return [int(row[0]) for row in rows]

    def delete_photos(self, ids: Iterable[int]) -> None:
        with self.transaction():
            for photo_id in ids:
                self._write("DELETE FROM photos WHERE id = ?", (photo_id,))

    # -- labels ---------------------------------------------------------------

    def create_label(self, name: str) -> int:
        """The id of label ``name`` (case-insensitive), created if new."""
        with self.transaction():
            row = self._conn.execute("SELECT id FROM labels WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return int(row[0])
            cursor = self._conn.execute(
                "INSERT INTO labels (name, created) VALUES (?, ?)", (name, time.time())
            )
            assert cursor.lastrowid is not None
            return int(cursor.lastrowid)

    def rename_label(self, name: str, new_name: str) -> bool:
        """Give a label a new name (its photos keep it); False if there is no such label.
        sqlite3.IntegrityError if another label has the new name."""
        with self.transaction():
            return (
                self._conn.execute("UPDATE labels SET name = ? WHERE name = ?", (new_name, name)).rowcount > 0
            )

    def delete_label(self, name: str) -> bool:
        with self._lock:
            return self._conn.execute("DELETE FROM labels WHERE name = ?", (name,)).rowcount > 0

    def label_id(self, name: str) -> int | None:
        if not name.isprintable() and _unencodable(name):
            return None  # a lone surrogate (typed or pasted): no label can have that name
        with self._lock:
            row = self._conn.execute("SELECT id FROM labels WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def add_label(self, label_id: int, photo_ids: Iterable[int]) -> None:
        with self.transaction():
            self._conn.executemany(
                "INSERT OR IGNORE INTO photo_labels (photo_id, label_id) VALUES (?, ?)",
                [(photo_id, label_id) for photo_id in photo_ids],
            )

    def remove_label(self, label_id: int, photo_ids: Iterable[int]) -> None:
        with self.transaction():
            self._conn.executemany(
                "DELETE FROM photo_labels WHERE photo_id = ? AND label_id = ?",
                [(photo_id, label_id) for photo_id in photo_ids],
            )

    def labels(self) -> list[tuple[str, int]]:
        """Every label with the number of indexed photos carrying it, by name."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT labels.name, COUNT(photos.id) FROM labels "
                "LEFT JOIN photo_labels ON photo_labels.label_id = labels.id "
                f"LEFT JOIN photos ON photos.id = photo_labels.photo_id AND photos.state = '{INDEXED}' "
                "GROUP BY labels.id ORDER BY labels.name COLLATE NOCASE"
            ).fetchall()
        return [(str(row[0]), int(row[1])) for row in rows]

    def labels_in_use(self) -> list[str]:
        """The names of the labels that some indexed photo carries (one index lookup per
        label, not a count of every photo: a search asks on each query)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT name FROM labels WHERE EXISTS (SELECT 1 FROM photo_labels "
                "JOIN photos ON photos.id = photo_labels.photo_id "
                f"WHERE photo_labels.label_id = labels.id AND photos.state = '{INDEXED}')"
            ).fetchall()
        return [str(row[0]) for row in rows]

    def labels_of(self, photo_id: int) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT labels.name FROM labels JOIN photo_labels ON photo_labels.label_id = labels.id "
                "WHERE photo_labels.photo_id = ? ORDER BY labels.name COLLATE NOCASE",
                (photo_id,),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def label_assignments(self) -> dict[str, list[str]]:
        """The path of every indexed photo that carries labels, with their names."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT photos.path, labels.name FROM photos "
                "JOIN photo_labels ON photo_labels.photo_id = photos.id "
                "JOIN labels ON labels.id = photo_labels.label_id "
                f"WHERE photos.state = '{INDEXED}' ORDER BY photos.path, labels.name COLLATE NOCASE"
            ).fetchall()
        assignments: dict[str, list[str]] = {}
        for path, name in rows:
            assignments.setdefault(str(path), []).append(str(name))
        return assignments

    def photos_with_labels(self, label_ids: Sequence[int]) -> list[tuple[int, str]]:
        """(id, path) of the indexed photos carrying all the given labels, by path."""
        if not label_ids:
            return []
        with self._lock:
            rows = self._conn.execute(
                "SELECT photos.id, photos.path FROM photos "
                "JOIN photo_labels ON photo_labels.photo_id = photos.id "
                f"WHERE photos.state = '{INDEXED}' "
                f"AND photo_labels.label_id IN ({','.join('?' * len(label_ids))}) "
                "GROUP BY photos.id HAVING COUNT(DISTINCT photo_labels.label_id) = ? "
                "ORDER BY photos.path",
                (*label_ids, len(set(label_ids))),
            ).fetchall()
        return [(int(row[0]), str(row[1])) for row in rows]

    # -- browsing, folders and exclusions (devise_app.engine.care) ---------------

    def photo_rows(
        self,
        *,
        where: str = "",
        params: Sequence[object] = (),
        order: str = "photos.id",
        limit: int | None = None,
    ) -> list[PhotoRow]:
        """Indexed photos as ``PhotoRow``s, each content once: exact copies (one
        hash) come as their first-indexed photo with ``copies`` counting them.
        ``where`` is an SQL condition over ``photos`` (built by
        ``care.PhotoFilter``, its values in ``params``); copies are counted among
        the photos it admits; ``order`` sorts over ``photos`` too."""
        condition = f"state = '{INDEXED}'" + (f" AND ({where})" if where else "")
        sql = (
            f"SELECT photos.id, photos.path, photos.size, photos.mtime_ns, photos.hash, {TAKEN_AT}, "
            f"shown.copies FROM photos JOIN (SELECT MIN(photos.id) AS id, COUNT(*) AS copies "
            f"FROM photos WHERE {condition} GROUP BY COALESCE(photos.hash, photos.id)) AS shown "
            f"ON shown.id = photos.id ORDER BY {order}"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._conn.execute(sql, list(params)).fetchall()
        return [
            PhotoRow(int(r[0]), str(r[1]), int(r[2]), int(r[3]), r[4], float(r[5]), int(r[6])) for r in rows
        ]

    def photo_ids_where(self, where: str, params: Sequence[object] = ()) -> frozenset[int]:
        """Ids of the indexed photos meeting an SQL condition over ``photos``."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT photos.id FROM photos WHERE photos.state = '{INDEXED}' AND ({where})", list(params)
            ).fetchall()
        return frozenset(int(row[0]) for row in rows)

    def rows_of(self, ids: Iterable[int]) -> dict[int, PhotoRow]:
        """``PhotoRow``s of indexed photos by id (``copies``: all indexed photos with the same bytes)."""
        id_list = list(dict.fromkeys(int(i) for i in ids))
        found: dict[int, PhotoRow] = {}
        for start in range(0, len(id_list), 500):
            chunk = id_list[start : start + 500]
            found.update(
                (row.id, row)
                for row in self._rows_with_copies(f"photos.id IN ({','.join('?' * len(chunk))})", chunk)
            )
        return found

    def _rows_with_copies(self, where: str, params: Sequence[object]) -> list[PhotoRow]:
        sql = (
            f"SELECT photos.id, photos.path, photos.size, photos.mtime_ns, photos.hash, {TAKEN_AT}, "
            "(SELECT COUNT(*) FROM photos AS same "
            f"WHERE same.hash = photos.hash AND same.state = '{INDEXED}') "
            f"FROM photos WHERE photos.state = '{INDEXED}' AND ({where})"
        )
        with self._lock:
            rows = self._conn.execute(sql, list(params)).fetchall()
        return [
            PhotoRow(int(r[0]), str(r[1]), int(r[2]), int(r[3]), r[4], float(r[5]), max(1, int(r[6])))
            for r in rows
        ]

    def duplicate_hashes(self) -> list[bytes]:
        """Contents held by more than one indexed photo, most copies first."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT hash FROM photos WHERE state = '{INDEXED}' AND hash IS NOT NULL "
                "GROUP BY hash HAVING COUNT(*) > 1 ORDER BY COUNT(*) DESC, MIN(path)"
            ).fetchall()
        return [bytes(row[0]) for row in rows]

    def rows_with_hash(self, content_hash: bytes) -> list[PhotoRow]:
        return sorted(self._rows_with_copies("photos.hash = ?", [content_hash]), key=lambda r: r.path)

    def copies_by_hash(self, hashes: Iterable[bytes]) -> dict[bytes, int]:
        """How many indexed photos hold each of these contents."""
        wanted = list(dict.fromkeys(hashes))
        counts: dict[bytes, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT hash, COUNT(*) FROM photos WHERE state = '{INDEXED}' "
                    f"AND hash IN ({','.join('?' * len(chunk))}) GROUP BY hash",
                    chunk,
                ).fetchall()
            counts.update({bytes(row[0]): int(row[1]) for row in rows})
        return counts

    def set_taken_at(self, values: Iterable[tuple[int, float]]) -> None:
        """Store dates taken, (photo id, seconds) pairs; the vectors are untouched."""
        with self._lock:
            self._conn.executemany(
                "UPDATE photos SET taken_at = ? WHERE id = ?", [(when, i) for i, when in values]
            )

    def undated(self) -> list[tuple[int, str]]:
        """(id, path) of indexed photos without a stored date taken (catalogued before dates were)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, path FROM photos WHERE state = '{INDEXED}' AND taken_at IS NULL"
            ).fetchall()
        return [(int(row[0]), str(row[1])) for row in rows]

    def delete_paths_under(self, folder: str) -> int:
        """Drop every catalogued file under ``folder`` (indexed or not); how many."""
        low, high = path_range(folder)
        with self.transaction():
            return int(self._write("DELETE FROM photos WHERE path >= ? AND path < ?", (low, high)).rowcount)

    def delete_paths(self, paths: Iterable[str]) -> int:
        with self.transaction():
            return sum(self._write("DELETE FROM photos WHERE path = ?", (path,)).rowcount for path in paths)

    def _paths(self, table: str) -> list[str]:
        with self._lock:
            return [str(row[0]) for row in self._conn.execute(f"SELECT path FROM {table} ORDER BY path")]

    def folders(self) -> list[str]:
        """The folders the library was asked to index."""
        return self._paths("folders")

    def add_folders(self, folders: Iterable[str]) -> None:
        with self._lock:
            self._conn.executemany(
                "INSERT OR IGNORE INTO folders (path, added) VALUES (?, ?)",
                [(folder, time.time()) for folder in folders],
            )

    def forget_folder(self, folder: str) -> bool:
        with self._lock:
            return self._conn.execute("DELETE FROM folders WHERE path = ?", (folder,)).rowcount > 0

    def excluded(self) -> list[str]:
        """Folders and files taken out of the library: the scan skips them."""
        return self._paths("excluded")

    def exclude(self, paths: Iterable[str]) -> None:
        with self._lock:
            self._conn.executemany(
                "INSERT OR IGNORE INTO excluded (path, added) VALUES (?, ?)",
                [(path, time.time()) for path in paths],
            )

    def include(self, path: str) -> bool:
        """Take ``path`` off the excluded list; whether it was on it."""
        with self._lock:
            return self._conn.execute("DELETE FROM excluded WHERE path = ?", (path,)).rowcount > 0


@dataclass(frozen=True)
class PhotoRow:
    """An indexed photo as browsing sees it; ``taken_at`` is never None (file time at worst)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    hash: bytes | None
    taken_at: float
    copies: int = 1  # indexed photos with the same bytes (among those asked for)


def path_range(folder: str) -> tuple[str, str]:
    """(low, high) such that the paths under ``folder`` are exactly low <= path < high
    (an index range, unlike LIKE, which would need its wildcards escaped)."""
    base = folder.rstrip(os.sep) + os.sep
    return base, base[:-1] + chr(ord(os.sep) + 1)

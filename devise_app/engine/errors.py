"""The errors meant for the user: one hierarchy, classified with ``isinstance``.

Every face (CLI, GUI) catches ``UserError`` and shows ``str(exc)``, one line the
user can act on. Subclasses carry their data as attributes, so no caller ever
parses a message back. This module imports nothing heavy: the CLI loads it
before numpy or ONNX Runtime.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can act on; ``str()`` is the one-line message."""


class LibraryError(UserError):
    """A problem with the photo library (folders, photos, labels, its files)."""


class ModelFileError(UserError):
    """The model files are missing, damaged or of another version."""


class ImageDecodeError(UserError):
    """A file could not be read as a photo; the message says why."""


class QueryError(UserError, ValueError):
    """A query that cannot be answered.

    ``word`` and ``position`` name the offending word and its offset in the query
    text when there is one; ``suggestions`` are known spellings close to it.
    """

    def __init__(
        self,
        message: str,
        suggestions: list[str] | None = None,
        *,
        word: str | None = None,
        position: int | None = None,
    ):
        self.message = message
        self.suggestions = list(suggestions or [])
        self.word = word
        self.position = position
        full = message
        if self.suggestions:
            full += " Did you mean: " + ", ".join(self.suggestions) + "?"
        super().__init__(full)

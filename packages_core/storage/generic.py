"""The backend for any django storage, through the Storage API alone; the base of the others.

It cannot append to an object, and a piece of an upload may land on any app server,
so each piece of an upload session is an object of its own; finishing writes them one
after another to the blob's key. S3 (storage/s3.py) keeps that shape and does the
copying on the server; the local disk (storage/local.py) appends to one file instead.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import BinaryIO

from django.core.files.storage import Storage
from django.utils import timezone

from packages_core.storage.keys import piece_key, session_key, staging_key
from packages_core.storage.objects import IncompleteUpload, PendingObject, StoredObject, pages
from packages_core.storage.streams import Concatenation, CountingReader, Span, StreamFile


class StorageBackend:
    """Objects by key in a storage that is neither local disk nor S3."""

    is_local = False
    # The S3 operations (packages_core.s3.S3Objects) of an S3 backend; None elsewhere.
    s3 = None

    def __init__(self, storage: Storage):
        self.storage = storage

    def local_path(self, key: str) -> str | None:
        return None

    # Objects.

    def save(self, key: str, stream: BinaryIO) -> None:
        pending = self.begin(key, stream)
        try:
            pending.commit()
        finally:
            pending.abort()

    def begin(self, key: str, stream: BinaryIO) -> PendingObject:
        """An object under a staging key, moved to `key` on commit."""
        staged = staging_key()
        self._put(staged, stream)
        return _StagedPending(self, staged, key)

    def _put(self, key: str, stream: BinaryIO) -> None:
        """Write `stream` under exactly `key` through the Storage API."""
        saved = self.storage.save(key, StreamFile(stream, name=key))
        if saved != key:
            self.storage.delete(saved)
            raise RuntimeError(f"Storage saved {key!r} as {saved!r}; it must keep keys.")

    def reader(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        handle = self.storage.open(key, "rb")
        if start:
            handle.seek(start)
        return Span(handle, None if end is None else end - start + 1)

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            self.storage.delete(key)

    def move(self, source: str, target: str) -> None:
        """A copy through this process: the Storage API has no rename."""
        # Storages save beside a name that is taken rather than over it.
        self.storage.delete(target)
        with self.reader(source) as handle:
            self._put(target, handle)
        self.storage.delete(source)

    def compose(self, target: str, sources: list[tuple[str, int]]) -> None:
        self.save(target, Concatenation(self, [key for key, _ in sources]))

    def url(self, key: str, *, method: str, expire: int, content_type: str) -> str | None:
        try:
            return self.storage.url(key)
        except NotImplementedError:
            return None

    # Listing.

    def list_objects(self, prefix: str, page_size: int) -> Iterator[list[StoredObject]]:
        yield from pages(_walk_storage(self.storage, prefix), page_size)

    def incomplete_uploads(self, prefix: str, page_size: int) -> Iterator[list[IncompleteUpload]]:
        """Nothing: only S3 has uploads that are started and never completed."""
        return iter(())

    def incomplete_size(self, upload: IncompleteUpload) -> int:
        raise NotImplementedError("only S3 has incomplete uploads")

    def abort_incomplete(self, upload: IncompleteUpload) -> None:
        raise NotImplementedError("only S3 has incomplete uploads")

    @contextlib.contextmanager
    def abandoned(self, key: str) -> Iterator[bool]:
        """No writer locks here: only an object's age tells."""
        yield True

    # Upload sessions: one object per piece.

    def start_upload(self, session: uuid.UUID) -> str:
        """The key a new session's bytes are staged under; nothing is written yet."""
        return session_key(session)

    def append_upload(self, key: str) -> PieceAppend:
        return PieceAppend(self, key)

    def upload_keys(self, key: str, size: int, pieces: list) -> list[str]:
        """The objects holding a session's `size` staged bytes, in order."""
        return [piece for piece, _ in pieces]

    def finish_upload(self, key: str, size: int, pieces: list, target: str) -> None:
        """Put a session's staged bytes at `target`."""
        self.compose(target, [(piece, piece_size) for piece, piece_size in pieces])

    def cancel_upload(self, key: str, pieces: list) -> None:
        """Delete what a session staged."""
        for piece, _ in pieces:
            self.storage.delete(piece)


class PieceAppend:
    """One piece added to an upload session, as an object of its own.

    Nothing is locked: the session's row moves on only from the offset the piece was
    written for, and a piece that loses that race is deleted (`abandon`).
    """

    def __init__(self, backend: StorageBackend, session: str):
        self.backend, self.session, self.key = backend, session, None

    def __enter__(self) -> PieceAppend:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def write(self, stream: BinaryIO, start: int, pieces: list) -> list:
        """Store `stream` as the piece starting at byte `start`; the session's pieces then."""
        key = piece_key(self.session, start)
        counted = CountingReader(stream)
        self.backend.save(key, counted)
        if not counted.count:
            self.backend.storage.delete(key)
            return list(pieces)
        self.key = key
        return [*pieces, [key, counted.count]]

    def abandon(self) -> None:
        """The session ended under this piece: delete what it wrote."""
        if self.key is not None:
            self.backend.storage.delete(self.key)


class _StagedPending:
    """An object under a staging key, moved to its key on commit."""

    def __init__(self, backend: StorageBackend, staged: str, key: str):
        self.backend, self.staged, self.key, self.done = backend, staged, key, False

    def commit(self) -> None:
        self.backend.move(self.staged, self.key)
        self.done = True

    def abort(self) -> None:
        if not self.done:
            self.done = True
            self.backend.storage.delete(self.staged)


def _walk_storage(storage: Storage, key: str) -> Iterator[StoredObject]:
    """The objects under `key`, through the Storage API (which lists a folder at a time)."""
    try:
        folders, files = storage.listdir(key)
    except FileNotFoundError:
        return
    for name in files:
        child = f"{key}/{name}"
        try:
            modified, size = storage.get_modified_time(child), storage.size(child)
        except FileNotFoundError:
            continue
        if timezone.is_naive(modified):  # a site with USE_TZ = False
            modified = timezone.make_aware(modified)
        yield StoredObject(child, size, modified)
    for name in folders:
        yield from _walk_storage(storage, f"{key}/{name}")

"""The content store: the one place that knows storage keys, over a django-storages alias.

It hands each operation to the backend for its kind of storage, chosen once:
storage/local.py (a file system), storage/s3.py (S3), storage/generic.py (any other).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO

from django.core.files.storage import FileSystemStorage, Storage, storages

from packages_core.conf import packages_settings
from packages_core.storage.generic import StorageBackend
from packages_core.storage.keys import (
    BLOB_PREFIX,
    blob_key,
    blob_sha256,
    session_of,
    staging_key,
    upload_prefix,
)
from packages_core.storage.local import LocalBackend
from packages_core.storage.objects import (
    IncompleteUpload,
    LostBytes,
    PendingObject,
    StoredObject,
)
from packages_core.storage.streams import (
    CHUNK_SIZE,
    Concatenation,
    HashingReader,
    copy_to_file,
)

__all__ = [
    "BLOB_PREFIX",
    "CHUNK_SIZE",
    "LIST_PAGE_SIZE",
    "Concatenation",
    "ContentStore",
    "HashingReader",
    "IncompleteUpload",
    "LostBytes",
    "PendingObject",
    "StoredObject",
    "backend_for",
    "blob_key",
    "blob_sha256",
    "copy_to_file",
    "session_of",
    "staging_key",
    "upload_prefix",
]

# Objects to a page when storage is listed: S3's own maximum for one listing request.
LIST_PAGE_SIZE = 1000


def backend_for(storage: Storage) -> StorageBackend:
    """The backend for `storage`: S3, local disk (a FileSystemStorage), or any other.

    Local disk is told by class, not by `path()`: InMemoryStorage has paths too, with
    no files behind them.
    """
    if _is_s3(storage):
        # Only here: the S3 backend needs boto3, which a site on disk may not have.
        from packages_core.storage.s3 import S3Backend

        return S3Backend(storage)
    if isinstance(storage, FileSystemStorage):
        return LocalBackend(storage)
    return StorageBackend(storage)


def _is_s3(storage: Storage) -> bool:
    # A storage can only be an S3Storage once django-storages' module is loaded, so
    # asking never imports it (nor boto3).
    module = sys.modules.get("storages.backends.s3")
    return module is not None and isinstance(storage, module.S3Storage)


class ContentStore:
    """Save, read, move, compose and delete objects by key in one configured storage."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.backend = backend_for(storage)

    @classmethod
    def default(cls) -> ContentStore:
        return cls(storages[packages_settings.STORAGE_ALIAS])

    @property
    def s3(self):
        """The S3 operations (packages_core.s3.S3Objects) when the storage is S3, else None."""
        return self.backend.s3

    @property
    def is_local(self) -> bool:
        """Whether keys map to paths on this machine's file system."""
        return self.backend.is_local

    def local_path(self, key: str) -> str | None:
        """The file behind `key` on this machine, or None for remote storage."""
        return self.backend.local_path(key)

    # Objects.

    def save(self, key: str, stream: BinaryIO) -> str:
        """Write `stream` under exactly `key`, replacing what was there; returns the key."""
        self.backend.save(key, stream)
        return key

    def begin(self, key: str, stream: BinaryIO) -> PendingObject:
        """Write all of `stream` for `key` without it appearing there: `commit()` puts it
        in place (replacing what was there), `abort()` throws it away.

        So bytes whose digest is checked only once they have all arrived can be written
        straight for their content-addressed key, and never be seen there unless they
        match: a file beside the key renamed into place, an S3 multipart upload completed
        (small objects are kept in memory until then), or, for other storages, an object
        under a staging key moved into place. Call `abort()` when done, committed or
        not: on local disk the file stays locked until then (see `abandoned`).
        """
        return self.backend.begin(key, stream)

    def open(self, key: str) -> BinaryIO:
        """The whole object as a file; for small ones (manifests, configs)."""
        return self.storage.open(key, "rb")

    def reader(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A stream of bytes start..end (inclusive) of the object, read as it is consumed.

        Unlike `open()`, nothing is downloaded ahead (django-storages' S3 files fetch
        the whole object on first read).
        """
        return self.backend.reader(key, start, end)

    def exists(self, key: str) -> bool:
        return self.storage.exists(key)

    def size(self, key: str) -> int:
        return self.storage.size(key)

    def delete(self, key: str) -> None:
        """Delete the object if it is there; a missing key is not an error."""
        self.storage.delete(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete the objects that are there (on S3 up to a thousand to a request)."""
        self.backend.delete_many(list(keys))

    def move(self, source: str, target: str) -> None:
        """Give the object at `source` the key `target`, without sending its bytes again
        (a rename on disk, a server-side copy on S3).
        """
        self.backend.move(source, target)

    def compose(self, target: str, sources: list[tuple[str, int]]) -> None:
        """Write the objects `sources` ((key, size), in order) one after another to `target`.

        On S3 this is a multipart upload assembled mostly by server-side copies.
        """
        self.backend.compose(target, sources)

    def url(
        self, key: str, *, method: str = "GET", expire: int = 300, content_type: str = ""
    ) -> str | None:
        """A URL the client may fetch the object from directly, or None if there is none.

        S3 URLs are presigned for `method` and tell S3 to answer with `content_type`.
        """
        return self.backend.url(key, method=method, expire=expire, content_type=content_type)

    # Listing, for cleanup.

    def list_objects(
        self, prefix: str, *, page_size: int = LIST_PAGE_SIZE
    ) -> Iterator[list[StoredObject]]:
        """Every object under `prefix` (a folder: `uploads`, `blobs`), in pages of at most
        `page_size`, read as the pages are consumed: a store of millions of objects is
        never listed into memory at once. No order is promised.
        """
        return self.backend.list_objects(prefix.strip("/"), page_size)

    def incomplete_uploads(
        self, prefix: str, *, page_size: int = LIST_PAGE_SIZE
    ) -> Iterator[list[IncompleteUpload]]:
        """S3 multipart uploads under `prefix` never completed nor aborted, in pages;
        nothing on other storages, which have no such thing.
        """
        return self.backend.incomplete_uploads(prefix.strip("/"), page_size)

    def incomplete_size(self, upload: IncompleteUpload) -> int:
        """The bytes in the parts an incomplete upload has sent."""
        return self.backend.incomplete_size(upload)

    def abort_incomplete(self, upload: IncompleteUpload) -> None:
        """Throw an incomplete upload's parts away; one already gone is not an error."""
        self.backend.abort_incomplete(upload)

    def abandoned(self, key: str) -> AbstractContextManager[bool]:
        """Whether no process is writing the file at `key`, for as long as the block runs.

        On local disk the writer of a file that `begin` writes holds a lock on it until
        its `abort()`, which the kernel drops when the writer dies. Other storages have
        no such lock: always True, and only an object's age tells.
        """
        return self.backend.abandoned(key)

    # Upload sessions: bytes received in pieces, on any worker or node, until finished.

    def start_upload(self, session: uuid.UUID) -> str:
        """The key a new upload session's bytes are staged under."""
        return self.backend.start_upload(session)

    def append_upload(self, key: str):
        """A context manager for adding one piece to the session staged at `key`.

        Inside it, `write(stream, start, pieces)` stores the piece at byte `start` and
        returns the session's pieces after it (to keep on the session's row; local disk
        keeps none), and `abandon()` deletes what this append staged once the session
        has ended under it. On local disk the session's file is locked throughout.
        """
        return self.backend.append_upload(key)

    def upload_reader(self, key: str, size: int, pieces: list) -> BinaryIO:
        """The `size` bytes staged for the session, read once, in order."""
        return Concatenation(self, self.backend.upload_keys(key, size, pieces))

    def finish_upload(self, key: str, size: int, pieces: list, target: str) -> None:
        """Put the session's `size` staged bytes at `target` (LostBytes if fewer are
        there): a rename on disk, server-side copies on S3.
        """
        self.backend.finish_upload(key, size, pieces, target)

    def cancel_upload(self, key: str, pieces: list) -> None:
        """Delete whatever the session staged."""
        self.backend.cancel_upload(key, pieces)

"""The content store: the one place that knows storage keys, over a django-storages alias."""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, Protocol

from django.core.files import File
from django.core.files.storage import Storage, storages
from django.utils import timezone

from packages_core import durability
from packages_core.conf import packages_settings
from packages_core.hashing import BlobHasher, Digests
from packages_core.pools import LazyPool
from packages_core.s3 import S3Objects, is_s3

CHUNK_SIZE = 1024 * 1024
# Objects to a page when storage is listed: S3's own maximum for one listing request.
LIST_PAGE_SIZE = 1000

_writers = LazyPool(16, "file-writer")


def copy_to_file(stream: BinaryIO, handle: BinaryIO) -> int:
    """Write all of `stream` to the open file `handle` at its position; the bytes written.

    Each piece is written on a helper thread while the next is read (from the socket,
    and hashed on the way): the write, which the kernel may hold back while it flushes
    to disk, overlaps the receiving and hashing instead of following them. One write
    is in flight at a time, so pieces land in order and at most two are in memory.
    With durable writes on, each piece's way to the disk starts at once.
    """
    start = handle.tell()
    writeback = durability.enabled()

    def write(data: bytes, offset: int) -> None:
        handle.write(data)
        if writeback:
            handle.flush()
            durability.start_writeback(handle.fileno(), offset, len(data))

    written, pending = 0, None
    try:
        while data := stream.read(CHUNK_SIZE):
            if pending is not None:
                pending.result()
            pending = _writers.submit(write, data, start + written)
            written += len(data)
    finally:
        if pending is not None:
            pending.result()
    return written


class HashingReader:
    """A read-only file-like wrapper that hashes and counts every byte read through it.

    Storage backends read the wrapper as they write, so the bytes are hashed in the
    same pass that stores them: nothing is read twice and nothing is held whole.
    """

    def __init__(self, stream: BinaryIO, limit: int | None = None, *, sha512: bool = False):
        self._stream = stream
        self._limit = limit
        self._hasher = BlobHasher(sha512=sha512)

    @property
    def size(self) -> int:
        return self._hasher.size

    def read(self, size: int = -1) -> bytes:
        if self._limit is not None:
            remaining = self._limit - self.size
            if remaining <= 0:
                return b""
            size = remaining if size is None or size < 0 else min(size, remaining)
        data = self._stream.read(size)
        if data:
            self._hasher.update(data)
        return data

    def digests(self) -> Digests:
        return self._hasher.digests()


class _StreamFile(File):
    """A django File over a stream of unknown length, read once in CHUNK_SIZE pieces."""

    def __init__(self, stream, name: str):
        super().__init__(stream, name=name)
        self.size = None

    def chunks(self, chunk_size=None):
        while data := self.file.read(chunk_size or CHUNK_SIZE):
            yield data

    def multiple_chunks(self, chunk_size=None):
        return True

    # Storages probe these before writing; a one-pass stream cannot rewind.
    @property
    def closed(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False


class _Span:
    """A read-only view of `length` bytes of an open file, closing it at the end."""

    def __init__(self, handle: BinaryIO, length: int | None):
        self._handle, self._left = handle, length

    def read(self, size: int = -1) -> bytes:
        if self._left is not None:
            if self._left <= 0:
                return b""
            size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._handle.read(size)
        if self._left is not None:
            self._left -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True)
class StoredObject:
    """An object found by listing the store: its key, size and last change (UTC)."""

    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class IncompleteUpload:
    """An S3 multipart upload started for `key` and neither completed nor aborted."""

    key: str
    upload_id: str
    initiated: datetime


class ContentStore:
    """Save, read, move, compose and delete objects by key in one configured storage."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.s3 = S3Objects(storage) if is_s3(storage) else None

    @classmethod
    def default(cls) -> ContentStore:
        return cls(storages[packages_settings.STORAGE_ALIAS])

    @property
    def is_local(self) -> bool:
        """Whether keys map to paths on this machine's file system."""
        return self.local_path("probe") is not None

    def local_path(self, key: str) -> str | None:
        """The file behind `key` on this machine, or None for remote storage."""
        try:
            return self.storage.path(key)
        except NotImplementedError:
            return None

    def save(self, key: str, stream: BinaryIO) -> str:
        """Write `stream` under exactly `key`, replacing what was there; returns the key."""
        pending = self.begin(key, stream)
        try:
            pending.commit()
        finally:
            pending.abort()
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
        if self.is_local:
            return _LocalPending.write(self.storage.path(key), stream)
        if self.s3 is not None:
            return self.s3.begin(key, stream)
        staged = f"{packages_settings.UPLOAD_PREFIX}/{uuid.uuid4().hex}"
        saved = self.storage.save(staged, _StreamFile(stream, name=staged))
        if saved != staged:
            self.storage.delete(saved)
            raise RuntimeError(f"Storage saved {staged!r} as {saved!r}; it must keep keys.")
        return _StagedPending(self, staged, key)

    def open(self, key: str) -> BinaryIO:
        """The whole object as a file; for small ones (manifests, configs)."""
        return self.storage.open(key, "rb")

    def reader(self, key: str, start: int = 0, end: int | None = None) -> BinaryIO:
        """A stream of bytes start..end (inclusive) of the object, read as it is consumed.

        Unlike `open()`, nothing is downloaded ahead (django-storages' S3 files fetch
        the whole object on first read).
        """
        if self.s3 is not None:
            return self.s3.read(key, start, end)
        handle = self.storage.open(key, "rb")
        if start:
            handle.seek(start)
        return _Span(handle, None if end is None else end - start + 1)

    def exists(self, key: str) -> bool:
        return self.storage.exists(key)

    def size(self, key: str) -> int:
        return self.storage.size(key)

    def delete(self, key: str) -> None:
        """Delete the object if it is there; a missing key is not an error."""
        self.storage.delete(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete the objects that are there (on S3 up to a thousand to a request)."""
        keys = list(keys)
        if self.s3 is not None:
            self.s3.delete_many(keys)
            return
        for key in keys:
            self.storage.delete(key)

    def list_objects(
        self, prefix: str, *, page_size: int = LIST_PAGE_SIZE
    ) -> Iterator[list[StoredObject]]:
        """Every object under `prefix` (a folder: `uploads`, `blobs`), in pages of at most
        `page_size`, read as the pages are consumed: a store of millions of objects is
        never listed into memory at once. No order is promised.
        """
        prefix = prefix.strip("/")
        if self.s3 is not None:
            for page in self.s3.list_objects(prefix, page_size):
                yield [StoredObject(*entry) for entry in page]
            return
        path = self.local_path(prefix)
        found = _walk_directory(path, prefix) if path else _walk_storage(self.storage, prefix)
        yield from _pages(found, page_size)

    def incomplete_uploads(
        self, prefix: str, *, page_size: int = LIST_PAGE_SIZE
    ) -> Iterator[list[IncompleteUpload]]:
        """S3 multipart uploads under `prefix` never completed nor aborted, in pages;
        nothing on other storages, which have no such thing.
        """
        if self.s3 is None:
            return
        for page in self.s3.list_multipart(prefix.strip("/"), page_size):
            yield [IncompleteUpload(*entry) for entry in page]

    def incomplete_size(self, upload: IncompleteUpload) -> int:
        """The bytes in the parts an incomplete upload has sent."""
        return self.s3.multipart_size(upload.key, upload.upload_id)

    def abort_incomplete(self, upload: IncompleteUpload) -> None:
        """Throw an incomplete upload's parts away; one already gone is not an error."""
        self.s3.abort_multipart(upload.key, upload.upload_id)

    @contextlib.contextmanager
    def abandoned(self, key: str) -> Iterator[bool]:
        """Whether no process is writing the file at `key`, for as long as the block runs.

        On local disk a file that `begin` writes is locked (`flock`) by its writer from
        its creation until its `abort()`, and the kernel drops the lock when the writer
        dies: True here (holding the lock through the block) means its writer is gone.
        False if a writer holds it, or the file is gone. Other storages have no such
        lock: always True, and only an object's age tells.
        """
        path = self.local_path(key)
        if path is None:
            yield True
            return
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below, after the block
        except FileNotFoundError:
            yield False
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True

    def move(self, source: str, target: str) -> None:
        """Give the object at `source` the key `target`, without sending its bytes again."""
        if self.is_local:
            source_path, target_path = self.storage.path(source), self.storage.path(target)
            os.makedirs(os.path.dirname(target_path), exist_ok=True)
            if durability.enabled():
                durability.sync_file(source_path)
            os.replace(source_path, target_path)
            if durability.enabled():
                durability.sync_directory(os.path.dirname(target_path))
            return
        if self.s3 is not None:
            self.s3.copy(source, target)
        else:
            with self.reader(source) as handle:
                self.save(target, handle)
        self.storage.delete(source)

    def compose(self, target: str, sources: list[tuple[str, int]]) -> None:
        """Write the objects `sources` ((key, size), in order) one after another to `target`.

        On S3 this is a multipart upload assembled mostly by server-side copies.
        """
        if self.s3 is not None:
            self.s3.compose(target, sources)
            return
        self.save(target, Concatenation(self, [key for key, _ in sources]))

    def url(
        self, key: str, *, method: str = "GET", expire: int = 300, content_type: str = ""
    ) -> str | None:
        """A URL the client may fetch the object from directly, or None if there is none.

        S3 URLs are presigned for `method` and tell S3 to answer with `content_type`.
        """
        if self.s3 is not None:
            return self.s3.url(key, method=method, expire=expire, content_type=content_type)
        if self.is_local:
            return None
        try:
            return self.storage.url(key)
        except NotImplementedError:
            return None


class PendingObject(Protocol):
    """Bytes written for a key and not yet there (ContentStore.begin)."""

    def commit(self) -> None: ...

    def abort(self) -> None:
        """Throw the bytes away, unless they were committed; either way let go of what
        is held for them. Call it when done, in a `finally`.
        """


class _LocalPending:
    """A fully written and synced file beside its path, renamed into place on commit.

    The writer holds an exclusive `flock` on the file from the moment it exists until
    `abort()`, past the commit: a file committed under a staging key is still this
    push's until it has been moved to its blob key. Cleanup's storage walk removes a
    leftover draft only if it can take that lock (ContentStore.abandoned), which it
    can once the writer is gone, killed or not.
    """

    def __init__(self, draft: str, path: str, handle: BinaryIO):
        self.draft, self.path, self.handle, self.done = draft, path, handle, False

    @classmethod
    def write(cls, path: str, stream: BinaryIO) -> _LocalPending:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        draft = f"{path}.{uuid.uuid4().hex}.part"
        handle = open(draft, "wb")  # noqa: SIM115 - the pending object closes it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            copy_to_file(stream, handle)
            # All of it in the file before it is renamed: the handle stays open past that.
            handle.flush()
            if durability.enabled():
                os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(draft)
            handle.close()
            raise
        return cls(draft, path, handle)

    def commit(self) -> None:
        os.replace(self.draft, self.path)
        self.done = True
        if durability.enabled():
            durability.sync_directory(os.path.dirname(self.path))

    def abort(self) -> None:
        if not self.done:
            self.done = True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.draft)
        self.handle.close()


class _StagedPending:
    """An object under a staging key, moved to its key on commit."""

    def __init__(self, store: ContentStore, staged: str, key: str):
        self.store, self.staged, self.key, self.done = store, staged, key, False

    def commit(self) -> None:
        self.store.move(self.staged, self.key)
        self.done = True

    def abort(self) -> None:
        if not self.done:
            self.done = True
            self.store.delete(self.staged)


def _walk_directory(path: str, key: str) -> Iterator[StoredObject]:
    """The files under a directory of the local store, as the directory is read."""
    try:
        entries = os.scandir(path)
    except FileNotFoundError:
        return
    with entries:
        for entry in entries:
            child = f"{key}/{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from _walk_directory(entry.path, child)
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since the directory was read
            yield StoredObject(child, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))


def _walk_storage(storage: Storage, key: str) -> Iterator[StoredObject]:
    """The objects under `key` of a storage that is neither local nor S3, through the
    Storage API (which lists a folder at a time).
    """
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


def _pages(items: Iterator, size: int) -> Iterator[list]:
    page = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


class Concatenation:
    """Reads several stored objects one after another, as one stream."""

    def __init__(self, store: ContentStore, keys: list[str]):
        self._store, self._keys, self._current = store, list(keys), None

    def read(self, size: int = -1) -> bytes:
        while True:
            if self._current is None:
                if not self._keys:
                    return b""
                self._current = self._store.reader(self._keys.pop(0))
            data = self._current.read(size if size and size > 0 else CHUNK_SIZE)
            if data:
                return data
            self._current.close()
            self._current = None

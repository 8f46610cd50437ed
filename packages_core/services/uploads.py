"""Upload sessions: bytes on their way to becoming a blob, received in one or more pieces.

On a local file system every piece is appended to one staging file, hashed as it is
written, so each byte is written once and read once; finishing renames the file to
its content-addressed key.

Object storage (S3) cannot append, and a piece may land on any app server, so each
piece is an object of its own in the bucket, listed on the upload's row. Finishing
assembles the pieces straight into the content-addressed key (a server-side copy
for one piece, a multipart upload built from server-side part copies for several),
see docs/storage.md.

Either way, the hashers stay in the memory of the process that last appended, and
their hex digests so far go to the row, so a finishing request on any worker with no
more bytes needs no re-read. Only when a later piece lands on another worker is the
staged prefix hashed again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from typing import BinaryIO

from django.db import transaction
from django.utils import timezone

from packages_core.connections import release_db_connections
from packages_core.content_store import CHUNK_SIZE, Concatenation, ContentStore
from packages_core.exceptions import InvalidInput, NotFound
from packages_core.hashing import BlobHasher, Digests
from packages_core.models import BlobUpload, Owner
from packages_core.services.blobs import Claim, StoredBlob, register_blob, staging_key

PROGRESS_FIELDS = ["bytes_received", "received_sha256", "received_sha512", "pieces"]


class UploadOffsetMismatch(InvalidInput):
    """A piece claimed to start somewhere other than the end of what was received."""

    def __init__(self, expected: int, given: int):
        super().__init__(f"upload is at byte {expected}, not {given}")
        self.expected = expected


class UploadGone(NotFound):
    """The session ended (finished, cancelled, or dropped by cleanup) under our feet."""

    def __init__(self, upload_id):
        super().__init__(f"upload {upload_id} is gone")
        self.upload_id = upload_id


class LostBytes(InvalidInput):
    """Fewer staged bytes than the session recorded."""


def _refresh(upload: BlobUpload) -> None:
    try:
        upload.refresh_from_db(fields=PROGRESS_FIELDS)
    except BlobUpload.DoesNotExist:
        raise UploadGone(upload.pk) from None


class _HasherCache:
    """Per-process hashers of recent uploads, bounded so abandoned ones fall out."""

    def __init__(self, size: int = 256):
        self._size = size
        self._items: OrderedDict[str, BlobHasher] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, upload_id: str, offset: int) -> BlobHasher | None:
        with self._lock:
            hasher = self._items.pop(upload_id, None)
        return hasher if hasher is not None and hasher.size == offset else None

    def put(self, upload_id: str, hasher: BlobHasher) -> None:
        with self._lock:
            self._items[upload_id] = hasher
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._items.pop(upload_id, None)


_hashers = _HasherCache()


def start_upload(owner: Owner, image: str, *, creator=None) -> BlobUpload:
    upload = BlobUpload(owner=owner, image=image, creator=creator)
    upload.storage_key = staging_key(f"session-{upload.id.hex}")
    upload.save(force_insert=True)
    return upload


def append_to_upload(
    upload: BlobUpload,
    stream: BinaryIO,
    *,
    offset: int | None = None,
    expected_bytes: int | None = None,
    store: ContentStore | None = None,
) -> BlobUpload:
    """Add the bytes of `stream` to the upload; returns the updated upload.

    `offset`, when given, must be where the upload ends (UploadOffsetMismatch
    otherwise). No transaction is open while the bytes arrive.
    """
    store = store or ContentStore.default()
    path = store.local_path(upload.storage_key)
    if path is not None:
        return _append_local(upload, stream, path, offset, expected_bytes, store)
    return _append_piece(upload, stream, offset, expected_bytes, store)


def upload_digests(upload: BlobUpload, *, store: ContentStore | None = None) -> Digests:
    """The digests of everything received, without re-reading when it can be helped."""
    cached = _hashers.take(str(upload.id), upload.bytes_received)
    if cached is not None:
        _hashers.put(str(upload.id), cached)
        return cached.digests()
    if upload.received_sha256 and upload.received_sha512:
        return Digests(upload.bytes_received, upload.received_sha256, upload.received_sha512)
    return _rehash_or_end(upload, store or ContentStore.default()).digests()


def complete_upload(
    upload: BlobUpload, *, store: ContentStore | None = None, claim: Claim | None = None
) -> StoredBlob:
    """Turn the received bytes into a blob under its content-addressed key; end the session.

    The caller has checked `upload_digests()` against what the client promised.
    `claim` is as for `register_blob`.
    """
    store = store or ContentStore.default()
    digests = upload_digests(upload, store=store)
    if store.local_path(upload.storage_key) is not None:

        def place(final: str) -> None:
            if not store.exists(upload.storage_key):  # nothing was ever appended
                store.save(upload.storage_key, _Empty())
            store.move(upload.storage_key, final)
    else:

        def place(final: str) -> None:
            store.compose(final, [(key, size) for key, size in upload.pieces])

    with transaction.atomic():
        # The session ends first, as it was read: a chunk that arrived meanwhile is
        # not in the blob, and cleanup may have dropped an idle session.
        ended, _ = BlobUpload.objects.filter(
            pk=upload.pk, bytes_received=upload.bytes_received
        ).delete()
        if not ended:
            _refresh(upload)
            raise UploadOffsetMismatch(upload.bytes_received, digests.size)
        stored = register_blob(digests, place, store=store, claim=claim)
    _hashers.forget(str(upload.id))
    _drop_staged(upload, store)
    return stored


def discard_upload(upload: BlobUpload, *, store: ContentStore | None = None) -> None:
    """Forget an upload; its staged bytes are deleted once that has committed."""
    store = store or ContentStore.default()
    _hashers.forget(str(upload.id))
    with transaction.atomic():
        upload.delete()
        transaction.on_commit(lambda: _drop_staged(upload, store))


def discard_idle_upload(upload_id, *, idle_since, store: ContentStore | None = None) -> int | None:
    """Forget the upload if nothing was added to it since `idle_since`: the bytes it had
    staged (deleted once that has committed), or None if it was busy or gone.
    """
    store = store or ContentStore.default()
    with transaction.atomic():
        upload = (
            BlobUpload.objects.select_for_update()
            .filter(pk=upload_id, updated__lt=idle_since)
            .first()
        )
        if upload is None:
            return None
        upload.delete()
        transaction.on_commit(lambda: _drop_staged(upload, store))
    _hashers.forget(str(upload_id))
    return upload.bytes_received


# Local file system: one staging file, appended in place under a file lock.


def _append_local(upload, stream, path, offset, expected_bytes, store) -> BlobUpload:
    with _file_lock(path):
        try:
            _refresh(upload)
        except UploadGone:
            _drop_staged(upload, store)  # the lock file we just made, at least
            raise
        if offset is not None and offset != upload.bytes_received:
            raise UploadOffsetMismatch(upload.bytes_received, offset)
        hasher = _hasher_for(upload, store)
        release_db_connections(expected_bytes)
        with open(path, "ab") as handle:
            # Bytes past the recorded end are from an append that died unrecorded.
            if handle.tell() != upload.bytes_received:
                handle.truncate(upload.bytes_received)
                handle.seek(upload.bytes_received)
            while data := stream.read(CHUNK_SIZE):
                hasher.update(data)
                handle.write(data)
        _record(upload, hasher)
        if not BlobUpload.objects.filter(pk=upload.pk).update(
            **{field: getattr(upload, field) for field in PROGRESS_FIELDS},
            updated=timezone.now(),
        ):
            # Dropped while the bytes came in: they belong to nobody now.
            _drop_staged(upload, store)
            raise UploadGone(upload.pk)
    _hashers.put(str(upload.id), hasher)
    return upload


@contextmanager
def _file_lock(path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# Object storage: one object per piece, recorded on the row if nobody else got there first.


def _append_piece(upload, stream, offset, expected_bytes, store) -> BlobUpload:
    _refresh(upload)
    start = upload.bytes_received
    if offset is not None and offset != start:
        raise UploadOffsetMismatch(start, offset)
    hasher = _hasher_for(upload, store)
    release_db_connections(expected_bytes)
    # A unique name: two requests racing for the same offset never share an object.
    key = f"{upload.storage_key}.pieces/{start:016d}-{uuid.uuid4().hex[:8]}"
    store.save(key, _FeedingReader(stream, hasher))
    size = hasher.size - start
    if not size:
        store.delete(key)
    pieces = [*upload.pieces, [key, size]] if size else list(upload.pieces)
    _record(upload, hasher)
    # Optimistic concurrency instead of a lock held while the bytes stream in: the
    # row moves on only from the offset this piece was written for.
    moved = BlobUpload.objects.filter(pk=upload.pk, bytes_received=start).update(
        bytes_received=upload.bytes_received,
        received_sha256=upload.received_sha256,
        received_sha512=upload.received_sha512,
        pieces=pieces,
        updated=timezone.now(),
    )
    if not moved:
        store.delete(key)
        _refresh(upload)
        raise UploadOffsetMismatch(upload.bytes_received, start)
    upload.pieces = pieces
    _hashers.put(str(upload.id), hasher)
    return upload


class _FeedingReader:
    """Feeds the upload's running hasher with every byte the storage reads."""

    def __init__(self, stream: BinaryIO, hasher: BlobHasher):
        self._stream, self._hasher = stream, hasher

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if size and size > 0 else CHUNK_SIZE)
        self._hasher.update(data)
        return data


class _Empty:
    def read(self, size: int = -1) -> bytes:
        return b""


# Shared by both.


def _record(upload: BlobUpload, hasher: BlobHasher) -> None:
    digests = hasher.digests()
    upload.bytes_received = digests.size
    upload.received_sha256, upload.received_sha512 = digests.sha256, digests.sha512


def _hasher_for(upload: BlobUpload, store: ContentStore) -> BlobHasher:
    cached = _hashers.take(str(upload.id), upload.bytes_received)
    return cached if cached is not None else _rehash_or_end(upload, store)


def _rehash_or_end(upload: BlobUpload, store: ContentStore) -> BlobHasher:
    """The hasher, from the staged bytes; UploadGone if they are gone (the session was
    dropped as they were read, or lost them): the client must start again.
    """
    try:
        return _rehash(upload, store)
    except (FileNotFoundError, LostBytes):
        _refresh(upload)  # UploadGone if cleanup dropped the session
        discard_upload(upload, store=store)
        raise UploadGone(upload.pk) from None


def _staged_keys(upload: BlobUpload, store: ContentStore) -> list[str]:
    if store.local_path(upload.storage_key) is not None:
        return [upload.storage_key] if upload.bytes_received else []
    return [key for key, _ in upload.pieces]


def _rehash(upload: BlobUpload, store: ContentStore) -> BlobHasher:
    """Hash the bytes received so far again: the fallback when no hasher survived."""
    hasher = BlobHasher()
    stream = Concatenation(store, _staged_keys(upload, store))
    while hasher.size < upload.bytes_received:
        data = stream.read(min(CHUNK_SIZE, upload.bytes_received - hasher.size))
        if not data:
            raise LostBytes(f"upload {upload.id} lost staged bytes after {hasher.size}")
        hasher.update(data)
    return hasher


def _drop_staged(upload: BlobUpload, store: ContentStore) -> None:
    path = store.local_path(upload.storage_key)
    if path is not None:
        store.delete(upload.storage_key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}.lock")
        return
    for key, _ in upload.pieces:
        store.delete(key)

"""Upload sessions: bytes on their way to becoming a blob, received in one or more pieces.

On a local file system every piece is appended to one staging file, hashed as it
is written, so each byte is written once and read once. The hashers stay in the
memory of the process that last appended; their hex digests so far go to the
database, so a finishing request on any worker with no more bytes needs no re-read.
Only when a later piece lands on another worker is the staged prefix re-hashed.

Storage without append (S3) keeps each piece as its own object; finishing moves a
single piece into place, or concatenates several.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import BinaryIO

from django.db import transaction

from packages_core.connections import release_db_connections
from packages_core.content_store import CHUNK_SIZE, ContentStore
from packages_core.exceptions import InvalidInput
from packages_core.hashing import BlobHasher, Digests
from packages_core.models import BlobUpload, Owner
from packages_core.services.blobs import StoredBlob, adopt_staged_blob, staging_key


class UploadOffsetMismatch(InvalidInput):
    """A piece claimed to start somewhere other than the end of what was received."""

    def __init__(self, expected: int, given: int):
        super().__init__(f"upload is at byte {expected}, not {given}")
        self.expected = expected


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
    otherwise). Concurrent appends to one upload take turns on a file lock. No
    transaction is open while the bytes arrive.
    """
    store = store or ContentStore.default()
    path = store.local_path(upload.storage_key)
    with _append_lock(path):
        upload.refresh_from_db(fields=["bytes_received", "received_sha256", "received_sha512"])
        if offset is not None and offset != upload.bytes_received:
            raise UploadOffsetMismatch(upload.bytes_received, offset)
        hasher = _hasher_for(upload, store)
        release_db_connections(expected_bytes)
        if path is not None:
            _append_local(path, upload.bytes_received, stream, hasher)
        else:
            _append_piece(store, upload, stream, hasher)
        digests = hasher.digests()
        upload.bytes_received = digests.size
        upload.received_sha256, upload.received_sha512 = digests.sha256, digests.sha512
        upload.save(
            update_fields=["bytes_received", "received_sha256", "received_sha512", "updated"]
        )
        _hashers.put(str(upload.id), hasher)
    return upload


def upload_digests(upload: BlobUpload, *, store: ContentStore | None = None) -> Digests:
    """The digests of everything received, without re-reading when it can be helped."""
    cached = _hashers.take(str(upload.id), upload.bytes_received)
    if cached is not None:
        _hashers.put(str(upload.id), cached)
        return cached.digests()
    if upload.received_sha256 and upload.received_sha512:
        return Digests(upload.bytes_received, upload.received_sha256, upload.received_sha512)
    return _rehash(upload, store or ContentStore.default()).digests()


def complete_upload(upload: BlobUpload, *, store: ContentStore | None = None) -> StoredBlob:
    """Turn the received bytes into a blob and end the session.

    The caller has checked `upload_digests()` against what the client promised.
    """
    store = store or ContentStore.default()
    digests = upload_digests(upload, store=store)
    staged = _assemble(upload, store)
    with transaction.atomic():
        stored = adopt_staged_blob(staged, digests, store=store)
        BlobUpload.objects.filter(pk=upload.pk).delete()
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


# Local file system: one staging file, appended in place.


@contextmanager
def _append_lock(path: str | None):
    if path is None:
        # Remote pieces have distinct keys; the row update below settles the order.
        yield
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _append_local(path: str, offset: int, stream: BinaryIO, hasher: BlobHasher) -> None:
    with open(path, "ab") as handle:
        # Bytes past `offset` are from an append that died before it was recorded.
        if handle.tell() != offset:
            handle.truncate(offset)
            handle.seek(offset)
        while data := stream.read(CHUNK_SIZE):
            hasher.update(data)
            handle.write(data)


# Remote storage: one object per piece, named by its offset.


def _piece_key(upload: BlobUpload, offset: int) -> str:
    return f"{upload.storage_key}.pieces/{offset:016d}"


def _piece_offsets(upload: BlobUpload, store: ContentStore) -> list[int]:
    try:
        _, files = store.storage.listdir(f"{upload.storage_key}.pieces")
    except FileNotFoundError:
        return []
    offsets = sorted(int(name) for name in files if name.isdigit())
    return [offset for offset in offsets if offset < upload.bytes_received]


def _append_piece(store: ContentStore, upload: BlobUpload, stream, hasher: BlobHasher) -> None:
    store.save(_piece_key(upload, upload.bytes_received), _FeedingReader(stream, hasher))


class _FeedingReader:
    """Feeds the upload's running hasher with every byte the storage reads."""

    def __init__(self, stream: BinaryIO, hasher: BlobHasher):
        self._stream, self._hasher = stream, hasher

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if size and size > 0 else CHUNK_SIZE)
        self._hasher.update(data)
        return data


def _assemble(upload: BlobUpload, store: ContentStore) -> str:
    """The key holding all the upload's bytes as one object."""
    if store.local_path(upload.storage_key) is not None:
        if not store.exists(upload.storage_key):
            store.save(upload.storage_key, _EmptyStream())
        return upload.storage_key
    offsets = _piece_offsets(upload, store)
    if len(offsets) == 1:
        return _piece_key(upload, offsets[0])
    target = staging_key()
    store.save(target, _Concatenation(store, [_piece_key(upload, o) for o in offsets]))
    return target


class _EmptyStream:
    def read(self, size: int = -1) -> bytes:
        return b""


class _Concatenation:
    """Reads several stored objects one after another, as one stream."""

    def __init__(self, store: ContentStore, keys: list[str]):
        self._store, self._keys, self._current = store, list(keys), None

    def read(self, size: int = -1) -> bytes:
        while True:
            if self._current is None:
                if not self._keys:
                    return b""
                self._current = self._store.open(self._keys.pop(0))
            data = self._current.read(size if size and size > 0 else CHUNK_SIZE)
            if data:
                return data
            self._current.close()
            self._current = None


def _rehash(upload: BlobUpload, store: ContentStore) -> BlobHasher:
    """Hash the bytes received so far again: the fallback when no hasher survived."""
    hasher = BlobHasher()
    if store.local_path(upload.storage_key) is not None:
        keys = [upload.storage_key] if upload.bytes_received else []
    else:
        keys = [_piece_key(upload, o) for o in _piece_offsets(upload, store)]
    stream = _Concatenation(store, keys)
    while hasher.size < upload.bytes_received:
        data = stream.read(min(CHUNK_SIZE, upload.bytes_received - hasher.size))
        if not data:
            raise InvalidInput(f"upload {upload.id} lost staged bytes after {hasher.size}")
        hasher.update(data)
    return hasher


def _hasher_for(upload: BlobUpload, store: ContentStore) -> BlobHasher:
    cached = _hashers.take(str(upload.id), upload.bytes_received)
    return cached if cached is not None else _rehash(upload, store)


def _drop_pieces(upload: BlobUpload, store: ContentStore) -> None:
    if store.local_path(upload.storage_key) is None:
        for offset in _piece_offsets(upload, store):
            store.delete(_piece_key(upload, offset))


def _drop_staged(upload: BlobUpload, store: ContentStore) -> None:
    path = store.local_path(upload.storage_key)
    if path is not None:
        store.delete(upload.storage_key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}.lock")
    else:
        _drop_pieces(upload, store)

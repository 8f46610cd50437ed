"""Upload sessions: bytes on their way to becoming a blob, received in one or more pieces.

The bytes are the content store's (ContentStore.start_upload, append_upload,
finish_upload, cancel_upload): on a local file system every piece is appended to one
staging file and finishing renames it to its content-addressed key; on object
storage, which cannot append and where a piece may land on any app server, each
piece is an object of its own, listed on the upload's row, and finishing assembles
them into the content-addressed key (server-side copies on S3), see docs/storage.md.
This module keeps the session's row: offsets, the pieces, the running hash.

Either way the running SHA-256 travels with the upload: its state after the bytes
received so far is saved on the row (packages_core/resumable_sha256.py), sealed with
an HMAC under the secret key, and the next piece goes on from it on whichever worker
or node receives it. Each piece costs time in proportion to its own length, and
finishing needs no second pass. Where no state can be resumed (libcrypto without
the functions, a state sealed under another key), pieces are stored unhashed and
finishing hashes the staged bytes once. sha512 is computed only when the client
finishes with a sha512 digest, by that one pass.
"""

from __future__ import annotations

import hmac
import logging
from typing import BinaryIO

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from packages_core import metrics, resumable_sha256
from packages_core.connections import release_db_connections
from packages_core.content_store import CHUNK_SIZE, ContentStore, LostBytes, session_of
from packages_core.exceptions import InvalidInput, NotFound
from packages_core.hashing import BlobHasher, Digests
from packages_core.models import BlobUpload, Owner
from packages_core.resumable_sha256 import ResumableSha256, StateInvalid
from packages_core.services.blobs import Claim, StoredBlob, register_blob

__all__ = [
    "LostBytes",
    "UploadGone",
    "UploadOffsetMismatch",
    "append_to_upload",
    "complete_upload",
    "discard_idle_upload",
    "discard_upload",
    "session_of",
    "start_upload",
    "upload_digests",
]

logger = logging.getLogger(__name__)

PROGRESS_FIELDS = ["bytes_received", "hash_state", "pieces"]
HASH_STATE_SALT = "packages_core.uploads.hash_state"


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


def _refresh(upload: BlobUpload) -> None:
    try:
        upload.refresh_from_db(fields=PROGRESS_FIELDS)
    except BlobUpload.DoesNotExist:
        raise UploadGone(upload.pk) from None


def start_upload(
    owner: Owner, package_name: str, *, creator=None, store: ContentStore | None = None
) -> BlobUpload:
    store = store or ContentStore.default()
    upload = BlobUpload(owner=owner, package_name=package_name, creator=creator)
    upload.storage_key = store.start_upload(upload.id)
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
    # On local disk the session's file is locked from here to the row's update.
    with store.append_upload(upload.storage_key) as appending:
        try:
            _refresh(upload)
        except UploadGone:
            appending.abandon()  # the lock file just made, at least
            raise
        start = upload.bytes_received
        if offset is not None and offset != start:
            raise UploadOffsetMismatch(start, offset)
        running = _running_hash(upload)
        reader = _CountingReader(stream, running)
        release_db_connections(expected_bytes)
        try:
            pieces = appending.write(reader, start, upload.pieces)
        except LostBytes:
            _lose(upload, store)
        upload.bytes_received = start + reader.count
        upload.hash_state = _sealed_state(upload, running)
        # Optimistic concurrency instead of a lock held while the bytes stream in
        # (pieces may be written side by side): the row moves on only from the offset
        # this piece was written for.
        moved = BlobUpload.objects.filter(pk=upload.pk, bytes_received=start).update(
            bytes_received=upload.bytes_received,
            hash_state=upload.hash_state,
            pieces=pieces,
            updated=timezone.now(),
        )
        if not moved:
            # Ended, or moved on by a piece that raced this one: what this one staged
            # belongs to nobody.
            appending.abandon()
            _refresh(upload)
            raise UploadOffsetMismatch(upload.bytes_received, start)
        upload.pieces = pieces
    return upload


def upload_digests(
    upload: BlobUpload, *, sha512: bool = False, store: ContentStore | None = None
) -> Digests:
    """The digests of everything received (sha512 too if asked): from the saved hash
    state when there is one, else by hashing the staged bytes once.
    """
    if not sha512:
        running = _running_hash(upload)
        if running is not None:
            return Digests(running.size, running.hexdigest())
    return _rehash_or_end(upload, store or ContentStore.default(), sha512=sha512)


def complete_upload(
    upload: BlobUpload,
    digests: Digests | None = None,
    *,
    store: ContentStore | None = None,
    claim: Claim | None = None,
) -> StoredBlob:
    """Turn the received bytes into a blob under its content-addressed key; end the session.

    The caller has checked `digests` (by default `upload_digests()`) against what the
    client promised. `claim` is as for `register_blob`.
    """
    store = store or ContentStore.default()
    if digests is None:
        digests = upload_digests(upload, store=store)

    def place(final: str) -> None:
        store.finish_upload(upload.storage_key, upload.bytes_received, upload.pieces, final)

    try:
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
    except (FileNotFoundError, LostBytes):
        # Staged bytes lost from under a live session: it cannot be finished.
        _lose(upload, store)
    _drop_staged(upload, store)
    return stored


def discard_upload(upload: BlobUpload, *, store: ContentStore | None = None) -> None:
    """Forget an upload; its staged bytes are deleted once that has committed."""
    store = store or ContentStore.default()
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
    return upload.bytes_received


# The running hash, saved on the row.


def _running_hash(upload: BlobUpload) -> ResumableSha256 | None:
    """The SHA-256 of the bytes received so far, ready for more; None when the row
    holds no state this process can trust and resume (then nothing is hashed until
    finishing hashes the staged bytes once).
    """
    if not resumable_sha256.available():
        return None
    if not upload.bytes_received:
        return ResumableSha256()
    sealed = bytes(upload.hash_state or b"")
    state, seal = sealed[: resumable_sha256.STATE_SIZE], sealed[resumable_sha256.STATE_SIZE :]
    if not seal or not hmac.compare_digest(seal, _seal(upload, upload.bytes_received, state)):
        if sealed:
            logger.warning("upload %s: its hash state does not verify; it is not used", upload.pk)
        return None
    try:
        running = ResumableSha256.from_state(state)
    except StateInvalid:
        return None
    return running if running.size == upload.bytes_received else None


def _seal(upload: BlobUpload, size: int, state: bytes) -> bytes:
    """An HMAC binding a hash state to this upload and offset, under the secret key."""
    value = f"{upload.pk}:{size}:".encode() + state
    return salted_hmac(HASH_STATE_SALT, value, algorithm="sha256").digest()


def _sealed_state(upload: BlobUpload, running: ResumableSha256 | None) -> bytes:
    if running is None:
        return b""
    state = running.export()
    return state + _seal(upload, running.size, state)


class _CountingReader:
    """Counts the bytes read through it and feeds them to the running hash, if any."""

    def __init__(self, stream: BinaryIO, running: ResumableSha256 | None):
        self._stream, self._running, self.count = stream, running, 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if size and size > 0 else CHUNK_SIZE)
        if self._running is not None:
            self._running.update(data)
        self.count += len(data)
        return data


def _lose(upload: BlobUpload, store: ContentStore) -> None:
    logger.warning("upload %s lost its staged bytes; it is discarded", upload.pk)
    discard_upload(upload, store=store)
    raise UploadGone(upload.pk)


def _rehash_or_end(upload: BlobUpload, store: ContentStore, *, sha512: bool) -> Digests:
    """The digests, from the staged bytes; UploadGone if they are gone (the session was
    dropped as they were read, or lost them): the client must start again.
    """
    try:
        return _rehash(upload, store, sha512=sha512)
    except (FileNotFoundError, LostBytes):
        _refresh(upload)  # UploadGone if cleanup dropped the session
        discard_upload(upload, store=store)
        raise UploadGone(upload.pk) from None


def _rehash(upload: BlobUpload, store: ContentStore, *, sha512: bool) -> Digests:
    """Hash the bytes received so far, in one pass over what is staged."""
    logger.info("upload %s: hashing its %d staged bytes again", upload.pk, upload.bytes_received)
    metrics.REHASHED_BYTES.inc(upload.bytes_received)
    hasher = BlobHasher(sha512=sha512)
    stream = store.upload_reader(upload.storage_key, upload.bytes_received, upload.pieces)
    while hasher.size < upload.bytes_received:
        data = stream.read(min(CHUNK_SIZE, upload.bytes_received - hasher.size))
        if not data:
            raise LostBytes(f"upload {upload.id} lost staged bytes after {hasher.size}")
        hasher.update(data)
    return hasher.digests()


def _drop_staged(upload: BlobUpload, store: ContentStore) -> None:
    store.cancel_upload(upload.storage_key, upload.pieces)

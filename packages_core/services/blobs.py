"""Storing content-addressed blobs from streams, once for the whole site."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from django.db import transaction

from packages_core.conf import packages_settings
from packages_core.connections import release_db_connections
from packages_core.content_store import ContentStore, HashingReader
from packages_core.hashing import Digests
from packages_core.models import PackageBlob
from packages_core.models.blobs import blob_key
from packages_core.services.rows import get_or_create_unique


@dataclass(frozen=True)
class StoredBlob:
    blob: PackageBlob
    created: bool


def staging_key(name: str | None = None) -> str:
    """A fresh key for bytes whose digest is not known yet."""
    return f"{packages_settings.UPLOAD_PREFIX}/{name or uuid.uuid4().hex}"


def store_blob(
    stream: BinaryIO,
    *,
    store: ContentStore | None = None,
    verify: Callable[[Digests], None] | None = None,
    expected_bytes: int | None = 0,
) -> StoredBlob:
    """Store the bytes of `stream`, hashing them as they are written.

    The bytes go to a staging key first, because their digest is known only at
    the end; then they take their content-addressed key by a rename (or a
    server-side copy on S3). If the blob already exists the staged copy is
    dropped. Concurrent stores of the same bytes end with one row and one object.
    `verify`, if given, sees the digests first; whatever it raises drops the bytes.
    A stream of `expected_bytes` (None: unknown) that is large is read without
    holding a database connection.
    """
    store = store or ContentStore.default()
    staged = staging_key()
    reader = HashingReader(stream)
    release_db_connections(expected_bytes)
    try:
        store.save(staged, reader)
    except BaseException:
        store.delete(staged)
        raise
    try:
        if verify is not None:
            verify(reader.digests())
        return adopt_staged_blob(staged, reader.digests(), store=store)
    except BaseException:
        store.delete(staged)
        raise


def adopt_staged_blob(staged: str, digests: Digests, *, store: ContentStore) -> StoredBlob:
    """Turn staged bytes with known digests into a PackageBlob at its final key."""
    stored = register_blob(digests, lambda final: store.move(staged, final), store=store)
    # Moved away, or a copy of bytes the store already had.
    store.delete(staged)
    return stored


def register_blob(
    digests: Digests, place: Callable[[str], None], *, store: ContentStore
) -> StoredBlob:
    """The PackageBlob for `digests`; `place(final_key)` writes its bytes if the store
    does not have them yet.

    The blob row is locked while the object is put in place, so whoever removes
    blobs (garbage collection) and whoever adds them take turns on the same row.
    """
    with transaction.atomic():
        blob, created = get_or_create_unique(
            lambda: PackageBlob.objects.select_for_update().filter(sha256=digests.sha256).first(),
            lambda: PackageBlob.objects.create(
                size=digests.size, sha256=digests.sha256, sha512=digests.sha512
            ),
        )
        final = blob_key(digests.sha256)
        if not store.exists(final):
            place(final)
    return StoredBlob(blob, created)

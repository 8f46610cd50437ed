"""Storing content-addressed blobs from streams, once for the whole site."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from django.db import transaction

from packages_core.connections import release_db_connections
from packages_core.content_store import ContentStore, HashingReader, blob_key, staging_key
from packages_core.exceptions import InvalidInput
from packages_core.hashing import Digests
from packages_core.models import BlobDeletion, PackageBlob
from packages_core.services.rows import get_or_create_unique


@dataclass(frozen=True)
class StoredBlob:
    blob: PackageBlob
    created: bool


# Called with the blob inside the transaction that holds its row lock, so whatever
# it records (a file staging the blob in an image, say) commits together with the
# blob, and garbage collection never sees the blob unreferenced in between.
Claim = Callable[[PackageBlob], None]


def store_blob(
    stream: BinaryIO,
    *,
    store: ContentStore | None = None,
    verify: Callable[[Digests], None] | None = None,
    expected_bytes: int | None = 0,
    claim: Claim | None = None,
    sha512: bool = False,
    sha256: str | None = None,
) -> StoredBlob:
    """Store the bytes of `stream`, hashing them as they are written (with sha512 too,
    if asked).

    When the caller knows the sha256 the bytes must have (`sha256`, hex: a client
    pushing a blob by its digest), they are written straight for their
    content-addressed key and appear there only once all of them have arrived and
    match (ContentStore.begin): on S3 that saves copying the whole blob. Otherwise they
    go to a staging key first and then take their key by a rename (a server-side copy
    on S3). If the blob already exists the new copy is dropped. Concurrent stores of
    the same bytes end with one row and one object. `verify`, if given, sees the
    digests first; whatever it raises drops the bytes. A stream of `expected_bytes`
    (None: unknown) that is large is read without holding a database connection.
    `claim` is as for `register_blob`.
    """
    store = store or ContentStore.default()
    target = blob_key(sha256) if sha256 else staging_key()
    reader = HashingReader(stream, sha512=sha512)
    release_db_connections(expected_bytes)
    pending = store.begin(target, reader)
    try:
        digests = reader.digests()
        if verify is not None:
            verify(digests)
        if sha256 is not None:
            if digests.sha256 != sha256:
                raise InvalidInput(f"the bytes have sha256 {digests.sha256}, not {sha256}")
            return register_blob(digests, lambda _final: pending.commit(), store=store, claim=claim)
        pending.commit()
        return adopt_staged_blob(target, digests, store=store, claim=claim)
    finally:
        pending.abort()


def adopt_staged_blob(
    staged: str, digests: Digests, *, store: ContentStore, claim: Claim | None = None
) -> StoredBlob:
    """Turn staged bytes with known digests into a PackageBlob at its final key."""
    stored = register_blob(
        digests, lambda final: store.move(staged, final), store=store, claim=claim
    )
    # Moved away, or a copy of bytes the store already had.
    store.delete(staged)
    return stored


def register_blob(
    digests: Digests,
    place: Callable[[str], None],
    *,
    store: ContentStore,
    claim: Claim | None = None,
) -> StoredBlob:
    """The PackageBlob for `digests`; `place(final_key)` writes its bytes if the store
    does not have them yet, and `claim(blob)` runs before the transaction commits.

    The blob row is locked while the object is put in place, so garbage collection
    (which locks the row to drop it) and uploads take turns. A pending deletion of
    the same bytes is called off here: the object that GC was about to delete is
    needed again (or, if GC got there first, is written anew).
    """
    with transaction.atomic():
        blob, created = get_or_create_unique(
            lambda: PackageBlob.objects.select_for_update().filter(sha256=digests.sha256).first(),
            lambda: PackageBlob.objects.create(
                size=digests.size, sha256=digests.sha256, sha512=digests.sha512
            ),
        )
        if created:
            # Waits while GC is deleting the object; afterwards `exists` tells the truth.
            BlobDeletion.objects.filter(sha256=digests.sha256).delete()
        elif digests.sha512 and blob.sha512 is None:
            # First pushed by its sha256; now a client names it by its sha512 as well.
            blob.sha512 = digests.sha512
            blob.save(update_fields=["sha512"])
        final = blob_key(digests.sha256)
        if not store.exists(final):
            place(final)
        if claim is not None:
            claim(blob)
    return StoredBlob(blob, created)


def lock_blobs(pks) -> dict[int, PackageBlob]:
    """Lock blob rows against garbage collection until the transaction ends, in key
    order (so two writers never wait on each other in a cycle); those still there.
    """
    rows = PackageBlob.objects.select_for_update(no_key=True).filter(pk__in=set(pks)).order_by("pk")
    return {blob.pk: blob for blob in rows}

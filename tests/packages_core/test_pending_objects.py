"""Bytes written for a content-addressed key appear there only once they match.

A client pushing a blob by its digest lets the registry write it straight for its
final key (ContentStore.begin): on S3 a multipart upload completed only after the
digest is checked, so no staging object is ever copied.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from packages_core.content_store import ContentStore
from packages_core.exceptions import InvalidInput
from packages_core.models import PackageBlob
from packages_core.models.blobs import blob_key
from packages_core.s3 import S3Objects
from packages_core.services.blobs import store_blob

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def no_copies(monkeypatch):
    def refuse(self, source, target):
        raise AssertionError(f"copied {source} to {target}")

    monkeypatch.setattr(S3Objects, "copy", refuse)


def open_multipart_uploads(bucket) -> list:
    return bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])


@pytest.mark.parametrize("size", [1000, 20 * MIB + 3], ids=["small", "multipart"])
def test_a_blob_pushed_by_its_digest_goes_straight_to_its_key_on_s3(s3_storage, no_copies, size):
    data = os.urandom(size)

    stored = store_blob(io.BytesIO(data), store=ContentStore.default(), sha256=sha256(data))

    assert stored.created
    assert s3_storage.list_keys() == [blob_key(sha256(data))]
    assert s3_storage.read(blob_key(sha256(data))) == data
    assert open_multipart_uploads(s3_storage) == []


@pytest.mark.parametrize("size", [1000, 20 * MIB + 3], ids=["small", "multipart"])
def test_bytes_that_do_not_match_their_digest_never_appear_on_s3(s3_storage, size):
    data = os.urandom(size)
    promised = sha256(b"something else")

    def verify(digests):
        if digests.sha256 != promised:
            raise ValueError("digest mismatch")

    with pytest.raises(ValueError, match="mismatch"):
        store_blob(io.BytesIO(data), store=ContentStore.default(), sha256=promised, verify=verify)

    assert s3_storage.list_keys() == []
    assert open_multipart_uploads(s3_storage) == []
    assert not PackageBlob.objects.exists()


def test_without_a_verify_a_wrong_digest_is_still_refused(s3_storage):
    with pytest.raises(InvalidInput):
        store_blob(io.BytesIO(b"abc"), store=ContentStore.default(), sha256=sha256(b"abd"))

    assert s3_storage.list_keys() == []


def test_a_blob_pushed_again_by_its_digest_keeps_the_stored_object(s3_storage, no_copies):
    data = os.urandom(12 * MIB)
    store = ContentStore.default()
    first = store_blob(io.BytesIO(data), store=store, sha256=sha256(data))

    again = store_blob(io.BytesIO(data), store=store, sha256=sha256(data))

    assert not again.created
    assert again.blob.pk == first.blob.pk
    assert s3_storage.list_keys() == [blob_key(sha256(data))]
    assert open_multipart_uploads(s3_storage) == []


def test_on_disk_bytes_for_their_key_are_renamed_into_place_and_nothing_is_left(
    store, package_storage
):
    data = os.urandom(3 * MIB)

    store_blob(io.BytesIO(data), store=store, sha256=sha256(data))

    files = sorted(
        str(p.relative_to(package_storage)) for p in package_storage.rglob("*") if p.is_file()
    )
    assert files == [blob_key(sha256(data))]


def test_on_disk_bytes_that_do_not_match_leave_no_file(store, package_storage):
    with pytest.raises(InvalidInput):
        store_blob(io.BytesIO(b"abc"), store=store, sha256=sha256(b"abd"))

    assert [p for p in package_storage.rglob("*") if p.is_file()] == []

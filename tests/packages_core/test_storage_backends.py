"""The content store's backends: which one a storage gets, and uploads on any storage.

A storage that is neither local disk nor S3 is used through the Storage API alone:
each piece of an upload session is an object of its own, and finishing writes them
one after another to the blob's key.
"""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

from packages_core.content_store import ContentStore, blob_key, session_of
from packages_core.models import BlobUpload, PackageBlob
from packages_core.services import uploads
from packages_core.services.blobs import store_blob
from packages_core.storage.generic import StorageBackend
from packages_core.storage.local import LocalBackend
from tests.registry_helpers import ALICE, content, digest_of, push_blob, send, start_upload

MIB = 1024 * 1024


class PathlessStorage(Storage):
    """Files on disk seen only through the Storage API: no `path()`, so not local."""

    def __init__(self, location: str):
        self._files = FileSystemStorage(location=location)

    def _open(self, name, mode="rb"):
        return self._files.open(name, mode)

    def _save(self, name, content):
        return self._files.save(name, content)

    def get_available_name(self, name, max_length=None):
        return self._files.get_available_name(name, max_length)

    def delete(self, name):
        self._files.delete(name)

    def exists(self, name):
        return self._files.exists(name)

    def listdir(self, path):
        return self._files.listdir(path)

    def size(self, name):
        return self._files.size(name)

    def get_modified_time(self, name):
        return self._files.get_modified_time(name)

    def url(self, name):
        raise NotImplementedError("no URLs")


class LooksLikeS3(InMemoryStorage):
    """The attributes S3 used to be recognised by, on a storage that is not S3."""

    bucket = None

    def _normalize_name(self, name):
        return name


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(root) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


@pytest.fixture
def pathless(tmp_path):
    return tmp_path / "pathless"


@pytest.fixture
def generic_store(pathless):
    return ContentStore(PathlessStorage(str(pathless)))


@pytest.fixture
def owner(alice):
    return alice.package_owner


# Choosing the backend


def test_a_file_system_storage_gets_the_local_backend(store):
    assert type(store.backend) is LocalBackend
    assert store.is_local
    assert store.s3 is None


def test_a_storage_without_paths_gets_the_generic_backend():
    store = ContentStore(InMemoryStorage())

    assert type(store.backend) is StorageBackend
    assert not store.is_local
    assert store.local_path("a/b") is None
    assert store.s3 is None


def test_a_wrapped_file_system_storage_is_not_taken_for_local_disk(generic_store):
    assert type(generic_store.backend) is StorageBackend


def test_a_storage_is_s3_by_its_class_not_by_its_attributes():
    assert type(ContentStore(LooksLikeS3()).backend) is StorageBackend


def test_an_s3_storage_gets_the_s3_backend(s3_storage):
    from packages_core.storage.s3 import S3Backend

    store = ContentStore.default()

    assert type(store.backend) is S3Backend
    assert store.s3 is not None
    assert not store.is_local


def test_django_storages_own_s3_class_gets_the_s3_backend():
    from storages.backends.s3 import S3Storage

    from packages_core.storage.s3 import S3Backend

    storage = S3Storage(bucket_name="never-contacted", region_name="us-east-1")

    assert type(ContentStore(storage).backend) is S3Backend


# Keys


def test_a_session_key_and_its_pieces_and_lock_name_the_session(db, owner, generic_store):
    upload = uploads.start_upload(owner, "img", store=generic_store)

    assert session_of(upload.storage_key) == upload.pk
    assert session_of(f"{upload.storage_key}.lock") == upload.pk
    assert session_of(f"{upload.storage_key}.pieces/{0:016d}-abcd1234") == upload.pk
    assert session_of(blob_key(sha256(b"x"))) is None


# Uploads on a generic storage, through the upload service


@pytest.mark.django_db
def test_a_chunked_upload_becomes_a_blob_on_a_generic_storage(owner, generic_store, pathless):
    pieces = [os.urandom(300 * 1024), os.urandom(2 * MIB + 5), b"tail"]
    data = b"".join(pieces)
    upload = uploads.start_upload(owner, "img", store=generic_store)
    offset = 0
    for piece in pieces:
        upload = uploads.append_to_upload(
            upload, io.BytesIO(piece), offset=offset, store=generic_store
        )
        offset += len(piece)

    row = BlobUpload.objects.get(pk=upload.pk)
    assert [size for _key, size in row.pieces] == [len(piece) for piece in pieces]
    assert files_under(pathless) == {key for key, _size in row.pieces}

    digests = uploads.upload_digests(upload, store=generic_store)
    stored = uploads.complete_upload(upload, digests, store=generic_store)

    assert stored.created
    assert stored.blob.sha256 == sha256(data) == digests.sha256
    assert stored.blob.size == len(data)
    assert (pathless / blob_key(sha256(data))).read_bytes() == data
    assert files_under(pathless) == {blob_key(sha256(data))}
    assert not BlobUpload.objects.exists()


@pytest.mark.django_db
def test_a_generic_upload_without_a_hash_state_is_hashed_once_from_its_pieces(
    owner, generic_store, rehashes
):
    first, second = os.urandom(1000), os.urandom(2000)
    upload = uploads.start_upload(owner, "img", store=generic_store)
    uploads.append_to_upload(upload, io.BytesIO(first), offset=0, store=generic_store)
    uploads.append_to_upload(upload, io.BytesIO(second), offset=1000, store=generic_store)

    digests = uploads.upload_digests(upload, sha512=True, store=generic_store)

    assert digests.sha256 == sha256(first + second)
    assert digests.sha512 == hashlib.sha512(first + second).hexdigest()
    assert rehashes == [3000]


@pytest.mark.django_db
def test_an_empty_piece_stores_nothing_on_a_generic_storage(owner, generic_store, pathless):
    upload = uploads.start_upload(owner, "img", store=generic_store)

    uploads.append_to_upload(upload, io.BytesIO(b""), offset=0, store=generic_store)

    assert BlobUpload.objects.get(pk=upload.pk).pieces == []
    assert files_under(pathless) == set()


@pytest.mark.django_db
def test_a_piece_at_the_wrong_offset_is_refused_before_it_is_stored(owner, generic_store, pathless):
    upload = uploads.start_upload(owner, "img", store=generic_store)
    uploads.append_to_upload(upload, io.BytesIO(b"abc"), offset=0, store=generic_store)

    with pytest.raises(uploads.UploadOffsetMismatch):
        uploads.append_to_upload(upload, io.BytesIO(b"def"), offset=0, store=generic_store)

    assert len(files_under(pathless)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_discarded_upload_leaves_no_pieces_on_a_generic_storage(owner, generic_store, pathless):
    upload = uploads.start_upload(owner, "img", store=generic_store)
    uploads.append_to_upload(upload, io.BytesIO(b"abc"), offset=0, store=generic_store)

    uploads.discard_upload(upload, store=generic_store)

    assert files_under(pathless) == set()


@pytest.mark.django_db
def test_a_blob_stored_whole_on_a_generic_storage_moves_from_a_staging_key(generic_store, pathless):
    data = os.urandom(3 * MIB)

    stored = store_blob(io.BytesIO(data), store=generic_store, sha256=sha256(data))

    assert PackageBlob.objects.get(sha256=sha256(data)) == stored.blob
    assert files_under(pathless) == {blob_key(sha256(data))}


# /v2 on a generic storage


@pytest.fixture
def generic_packages_storage(settings, pathless):
    settings.STORAGES = {
        **settings.STORAGES,
        "packages": {
            "BACKEND": f"{__name__}.PathlessStorage",
            "OPTIONS": {"location": str(pathless)},
        },
    }
    assert type(ContentStore.default().backend) is StorageBackend


@pytest.mark.django_db
def test_a_chunked_push_and_pull_over_v2_on_a_generic_storage(
    client, alice, generic_packages_storage, pathless
):
    data = os.urandom(MIB + 17)
    location = start_upload(client, "alice/img")
    send(client, "PATCH", location, data[:1000], auth=ALICE, HTTP_CONTENT_RANGE="0-999")
    send(client, "PATCH", location, data[1000:], auth=ALICE)

    response = send(client, "PUT", f"{location}?digest={digest_of(data)}", auth=ALICE)

    assert response.status_code == 201, response.content
    assert files_under(pathless) == {blob_key(sha256(data))}
    pulled = send(client, "GET", f"/v2/alice/img/blobs/{digest_of(data)}", auth=ALICE)
    assert pulled.status_code == 200
    assert content(pulled) == data
    ranged = send(
        client, "GET", f"/v2/alice/img/blobs/{digest_of(data)}", auth=ALICE, HTTP_RANGE="bytes=5-9"
    )
    assert content(ranged) == data[5:10]


@pytest.mark.django_db
def test_a_monolithic_push_on_a_generic_storage(client, alice, generic_packages_storage, pathless):
    data = b"one request"

    digest = push_blob(client, "alice/img", data)

    assert files_under(pathless) == {blob_key(digest.removeprefix("sha256:"))}

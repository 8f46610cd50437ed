"""The upload service and the /v2 endpoints on S3 (moto's server on loopback).

Chunked uploads keep each piece as an object of its own, listed on the upload's row;
finishing composes them into the content-addressed key. Pulls answer with a 307 to
a presigned URL, or stream from the bucket when serving direct is off.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.request
from urllib.parse import parse_qsl, urlsplit

import pytest

from packages_core import checks
from packages_core.content_store import ContentStore
from packages_core.models import BlobUpload, PackageBlob
from packages_core.models.blobs import blob_key
from packages_core.s3 import S3Objects
from packages_core.services import uploads
from registry import checks as registry_checks
from tests.registry_helpers import (
    ALICE,
    OCI_MANIFEST,
    assert_error,
    content,
    digest_of,
    push_blob,
    push_image,
    send,
    start_upload,
)
from tests.s3_helpers import sigv4_signature_is_valid

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024
REPO = "alice/img"
BLOB_CONTENT_TYPE = "application/octet-stream"


@pytest.fixture
def store(s3_storage):
    store = ContentStore.default()
    assert store.s3 is not None
    return store


@pytest.fixture
def owner(alice):
    return alice.package_owner


@pytest.fixture
def reads(monkeypatch):
    """The keys of staged objects read back through the content store."""
    keys = []
    original = ContentStore.reader

    def counting(self, key, *args, **kwargs):
        keys.append(key)
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(ContentStore, "reader", counting)
    return keys


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


def append(upload, data: bytes, offset: int | None = None, store=None):
    return uploads.append_to_upload(upload, io.BytesIO(data), offset=offset, store=store)


def staged(s3_storage) -> list[str]:
    return s3_storage.list_keys("uploads/")


def fetch(url: str, method: str = "GET", headers: dict | None = None):
    """A request straight to the storage, as a client following a redirect sends it."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.headers, response.read()


# The upload service


def test_pieces_are_objects_listed_on_the_row(owner, store, s3_storage):
    upload = uploads.start_upload(owner, "img")
    first, second = os.urandom(1000), os.urandom(2000)

    append(upload, first, offset=0)
    append(upload, second, offset=1000)

    row = BlobUpload.objects.get(pk=upload.pk)
    assert [size for _key, size in row.pieces] == [1000, 2000]
    assert [key for key, _size in row.pieces] == staged(s3_storage)
    assert [s3_storage.read(key) for key, _size in row.pieces] == [first, second]
    assert row.bytes_received == 3000
    assert uploads.upload_digests(row).sha256 == sha256(first + second)


def test_chunked_upload_with_small_and_big_pieces_finishes_at_the_content_key(
    owner, store, s3_storage
):
    pieces = [os.urandom(300 * 1024), os.urandom(5 * MIB + 11), os.urandom(MIB), b"tail"]
    data = b"".join(pieces)
    upload = uploads.start_upload(owner, "img")
    offset = 0
    for piece in pieces:
        upload = append(upload, piece, offset=offset)
        offset += len(piece)

    assert uploads.upload_digests(upload).sha256 == sha256(data)
    stored = uploads.complete_upload(upload)

    hex_digest = sha256(data)
    assert stored.created
    assert stored.blob.sha256 == hex_digest
    assert stored.blob.size == len(data)
    key = f"blobs/sha256/{hex_digest[:2]}/{hex_digest}"
    assert s3_storage.list_keys() == [key]
    assert sha256(s3_storage.read(key)) == hex_digest
    assert staged(s3_storage) == []
    assert not BlobUpload.objects.filter(pk=upload.pk).exists()


def test_a_piece_of_five_mib_or_more_is_copied_server_side_when_finishing(
    owner, store, s3_storage, monkeypatch
):
    copies = []
    original = store.s3.client.upload_part_copy

    def spy(**kwargs):
        copies.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(store.s3.client, "upload_part_copy", spy)
    big, small = os.urandom(5 * MIB), os.urandom(100)
    upload = uploads.start_upload(owner, "img")
    append(upload, big, offset=0)
    append(upload, small, offset=len(big))

    uploads.complete_upload(upload)

    [copy] = copies
    assert copy["CopySource"]["Key"] == upload.pieces[0][0]
    assert copy["CopySourceRange"] == f"bytes=0-{len(big) - 1}"
    assert s3_storage.read(blob_key(sha256(big + small))) == big + small


def test_an_upload_of_one_piece_is_copied_to_its_key(owner, store, s3_storage):
    data = os.urandom(4000)
    upload = uploads.start_upload(owner, "img")
    append(upload, data)

    uploads.complete_upload(upload)

    assert s3_storage.list_keys() == [blob_key(sha256(data))]
    assert s3_storage.read(blob_key(sha256(data))) == data


def test_an_upload_of_no_bytes_is_the_empty_blob(owner, store, s3_storage):
    upload = uploads.start_upload(owner, "img")

    stored = uploads.complete_upload(upload)

    assert stored.blob.size == 0
    assert s3_storage.read(blob_key(sha256(b""))) == b""
    assert staged(s3_storage) == []


def test_an_empty_piece_leaves_no_object_behind(owner, store, s3_storage):
    upload = uploads.start_upload(owner, "img")
    append(upload, b"abc", offset=0)

    upload = append(upload, b"", offset=3)

    assert upload.bytes_received == 3
    assert len(upload.pieces) == 1
    assert staged(s3_storage) == [upload.pieces[0][0]]
    uploads.complete_upload(upload)
    assert staged(s3_storage) == []


def test_the_same_bytes_uploaded_again_are_stored_once_and_the_pieces_dropped(
    owner, store, s3_storage
):
    data = os.urandom(3000)
    for _ in range(2):
        upload = uploads.start_upload(owner, "img")
        append(upload, data[:1000])
        append(upload, data[1000:])
        stored = uploads.complete_upload(upload)

    assert not stored.created
    assert PackageBlob.objects.filter(sha256=sha256(data)).count() == 1
    assert s3_storage.list_keys() == [blob_key(sha256(data))]


def test_two_appends_racing_for_one_offset_one_wins_and_the_loser_leaves_nothing(
    owner, store, s3_storage
):
    """Both read the row at offset 3; the winner records its piece while the loser's
    bytes are still arriving. The loser's row update finds the offset moved on.
    """
    upload = uploads.start_upload(owner, "img")
    append(upload, b"abc", offset=0)
    winner_bytes, loser_bytes = os.urandom(2000), os.urandom(1500)

    class LoserBody(io.BytesIO):
        """The loser's request body; the winner finishes while it is being read."""

        raced = False

        def read(self, size=-1):
            if not self.raced:
                self.raced = True
                rival = BlobUpload.objects.get(pk=upload.pk)
                append(rival, winner_bytes, offset=3)
            return super().read(size)

    loser = BlobUpload.objects.get(pk=upload.pk)
    with pytest.raises(uploads.UploadOffsetMismatch) as raised:
        uploads.append_to_upload(loser, LoserBody(loser_bytes), offset=3)

    assert raised.value.expected == 3 + len(winner_bytes)
    row = BlobUpload.objects.get(pk=upload.pk)
    assert row.bytes_received == 3 + len(winner_bytes)
    assert [size for _key, size in row.pieces] == [3, len(winner_bytes)]
    # The loser's object is gone; only the pieces on the row remain.
    assert staged(s3_storage) == sorted(key for key, _size in row.pieces)
    assert uploads.upload_digests(row).sha256 == sha256(b"abc" + winner_bytes)

    # The upload goes on from the winner's end and finishes with the winner's bytes.
    append(row, b"end", offset=row.bytes_received)
    stored = uploads.complete_upload(row)
    data = b"abc" + winner_bytes + b"end"
    assert stored.blob.sha256 == sha256(data)
    assert s3_storage.read(blob_key(sha256(data))) == data
    assert staged(s3_storage) == []


def test_an_append_with_a_stale_offset_writes_nothing(owner, store, s3_storage):
    upload = uploads.start_upload(owner, "img")
    stale = BlobUpload.objects.get(pk=upload.pk)
    append(upload, b"first", offset=0)

    with pytest.raises(uploads.UploadOffsetMismatch) as raised:
        append(stale, b"again", offset=0)

    assert raised.value.expected == 5
    assert staged(s3_storage) == [upload.pieces[0][0]]


def test_each_piece_goes_on_from_the_saved_hash_state_without_reading_staged_bytes(
    owner, store, s3_storage, reads, rehashes
):
    # Every call reloads the row, as a request on another worker or node would.
    pieces = [os.urandom(100_000), os.urandom(5 * MIB + 1), os.urandom(50_000)]
    upload = uploads.start_upload(owner, "img")
    offset = 0
    for piece in pieces:
        append(BlobUpload.objects.get(pk=upload.pk), piece, offset=offset)
        offset += len(piece)

    row = BlobUpload.objects.get(pk=upload.pk)
    data = b"".join(pieces)
    digests = uploads.upload_digests(row)

    assert reads == []
    assert rehashes == []
    assert (digests.size, digests.sha256, digests.sha512) == (len(data), sha256(data), None)
    stored = uploads.complete_upload(row, digests)
    assert stored.blob.sha256 == sha256(data)
    assert stored.blob.sha512 is None
    assert s3_storage.read(blob_key(sha256(data))) == data
    assert rehashes == []


def test_finishing_with_sha512_asked_hashes_the_pieces_once(owner, store, s3_storage, rehashes):
    data = os.urandom(200_000)
    upload = uploads.start_upload(owner, "img")
    append(upload, data[:70_000], offset=0)
    append(BlobUpload.objects.get(pk=upload.pk), data[70_000:], offset=70_000)

    row = BlobUpload.objects.get(pk=upload.pk)
    digests = uploads.upload_digests(row, sha512=True)
    stored = uploads.complete_upload(row, digests)

    assert rehashes == [len(data)]
    assert (digests.sha256, digests.sha512) == (sha256(data), sha512(data))
    assert stored.blob.sha512 == sha512(data)


def test_without_a_saved_state_pieces_are_stored_unhashed_and_finishing_hashes_once(
    owner, store, s3_storage, reads, rehashes
):
    pieces = [os.urandom(100_000), os.urandom(5 * MIB + 1), os.urandom(50_000)]
    upload = uploads.start_upload(owner, "img")
    append(upload, pieces[0], offset=0)
    BlobUpload.objects.filter(pk=upload.pk).update(hash_state=b"")  # e.g. an older key's seal
    append(BlobUpload.objects.get(pk=upload.pk), pieces[1], offset=len(pieces[0]))
    append(BlobUpload.objects.get(pk=upload.pk), pieces[2], offset=len(pieces[0]) + len(pieces[1]))
    assert reads == []  # no piece re-read the prefix
    assert rehashes == []

    row = BlobUpload.objects.get(pk=upload.pk)
    assert bytes(row.hash_state) == b""
    data = b"".join(pieces)
    stored = uploads.complete_upload(row)

    assert rehashes == [len(data)]
    assert stored.blob.sha256 == sha256(data)
    assert s3_storage.read(blob_key(sha256(data))) == data


def test_an_upload_whose_pieces_vanished_ends_when_finished(owner, store, s3_storage):
    upload = uploads.start_upload(owner, "img")
    append(upload, os.urandom(3000))
    append(BlobUpload.objects.get(pk=upload.pk), os.urandom(3000), offset=3000)
    s3_storage.client.delete_object(Bucket=s3_storage.name, Key=upload.pieces[0][0])

    # Its bytes cannot be assembled, so it cannot go on: the client starts a new one.
    with pytest.raises(uploads.UploadGone):
        uploads.complete_upload(BlobUpload.objects.get(pk=upload.pk))
    assert not BlobUpload.objects.filter(pk=upload.pk).exists()
    assert not PackageBlob.objects.exists()


def test_an_upload_whose_pieces_vanished_and_must_be_rehashed_ends(owner, store, s3_storage):
    upload = uploads.start_upload(owner, "img")
    append(upload, b"abc")
    BlobUpload.objects.filter(pk=upload.pk).update(hash_state=b"")
    s3_storage.client.delete_object(Bucket=s3_storage.name, Key=upload.pieces[0][0])

    with pytest.raises(uploads.UploadGone):
        uploads.upload_digests(BlobUpload.objects.get(pk=upload.pk))
    assert not BlobUpload.objects.filter(pk=upload.pk).exists()


def test_discard_deletes_the_pieces_after_commit(
    owner, store, s3_storage, django_capture_on_commit_callbacks
):
    upload = uploads.start_upload(owner, "img")
    append(upload, os.urandom(1000))
    append(upload, os.urandom(1000))
    assert len(staged(s3_storage)) == 2

    with django_capture_on_commit_callbacks(execute=True):
        uploads.discard_upload(upload)

    assert staged(s3_storage) == []
    assert s3_storage.list_keys() == []
    assert not BlobUpload.objects.filter(pk=upload.pk).exists()


def test_uploads_under_a_prefix_stay_under_it(owner, store, s3_storage):
    s3_storage.configure(FORGE_S3_PREFIX="registry")
    prefixed = ContentStore.default()
    data = os.urandom(5 * MIB + 100)
    upload = uploads.start_upload(owner, "img")
    append(upload, data[:100], store=prefixed)
    append(upload, data[100:], store=prefixed)
    assert all(key.startswith("registry/uploads/") for key in s3_storage.list_keys())

    uploads.complete_upload(upload, store=prefixed)

    assert s3_storage.list_keys() == [f"registry/{blob_key(sha256(data))}"]


# The registry over S3: pushing


def test_registry_chunked_upload_in_several_patches(client, alice, store, s3_storage):
    pieces = [os.urandom(64 * 1024), os.urandom(5 * MIB + 3), os.urandom(700_000)]
    data = b"".join(pieces)
    location = start_upload(client, REPO)
    offset = 0
    for piece in pieces:
        end = offset + len(piece) - 1
        response = send(
            client, "PATCH", location, piece, auth=ALICE, HTTP_CONTENT_RANGE=f"{offset}-{end}"
        )
        assert response.status_code == 202, content(response)
        assert response["Range"] == f"0-{end}"
        offset += len(piece)
    assert len(staged(s3_storage)) == 3

    done = send(client, "PUT", f"{location}?digest={digest_of(data)}", auth=ALICE)

    assert done.status_code == 201, content(done)
    assert s3_storage.list_keys() == [blob_key(sha256(data))]
    assert sha256(s3_storage.read(blob_key(sha256(data)))) == sha256(data)


def test_registry_patch_with_chunked_transfer_encoding_stores_every_byte(
    client, alice, store, s3_storage
):
    """podman sends PATCH bodies without a Content-Length; the piece has no known size."""
    data = os.urandom(5 * MIB + 99)
    location = start_upload(client, REPO)
    environ = {"wsgi.input": io.BytesIO(data), "HTTP_TRANSFER_ENCODING": "chunked"}

    response = client.generic("PATCH", location, b"", **ALICE, **environ)

    assert response.status_code == 202, content(response)
    assert response["Range"] == f"0-{len(data) - 1}"
    [(_key, size)] = BlobUpload.objects.get().pieces
    assert size == len(data)
    done = send(client, "PUT", f"{location}?digest={digest_of(data)}", auth=ALICE)
    assert done.status_code == 201, content(done)
    assert sha256(s3_storage.read(blob_key(sha256(data)))) == sha256(data)


def test_registry_chunked_upload_finishing_with_the_last_chunk_in_the_put(
    client, alice, store, s3_storage
):
    data = os.urandom(5 * MIB + 500)
    location = start_upload(client, REPO)
    send(client, "PATCH", location, data[:1000], auth=ALICE, HTTP_CONTENT_RANGE="0-999")

    done = send(
        client,
        "PUT",
        f"{location}?digest={digest_of(data)}",
        data[1000:],
        auth=ALICE,
        HTTP_CONTENT_RANGE=f"1000-{len(data) - 1}",
    )

    assert done.status_code == 201, content(done)
    assert s3_storage.list_keys() == [blob_key(sha256(data))]
    assert sha256(s3_storage.read(blob_key(sha256(data)))) == sha256(data)


def test_registry_patch_at_a_wrong_offset_is_416_and_stores_nothing(
    client, alice, store, s3_storage
):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, b"0123456789", auth=ALICE, HTTP_CONTENT_RANGE="0-9")

    response = send(client, "PATCH", location, b"abc", auth=ALICE, HTTP_CONTENT_RANGE="5-7")

    assert response.status_code == 416
    assert response["Range"] == "0-9"
    assert len(staged(s3_storage)) == 1


class _BreakingBody:
    """Bytes, then the IOError gunicorn's reader raises for a malformed chunk."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        data = self._data.read(size)
        if not data:
            raise OSError("Invalid chunk size: b'zz'")
        return data

    readline = read


def test_registry_patch_whose_body_breaks_is_400_and_stores_no_piece(
    client, alice, store, s3_storage
):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, b"0123456789", auth=ALICE, HTTP_CONTENT_RANGE="0-9")

    response = client.generic(
        "PATCH",
        location,
        b"",
        **ALICE,
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": _BreakingBody(os.urandom(9 * 1024 * 1024))},
    )

    assert response.status_code == 400
    assert send(client, "GET", location, auth=ALICE)["Range"] == "0-9"
    assert len(staged(s3_storage)) == 1
    # Past one part: the multipart upload it began was aborted, not left open.
    assert not s3_storage.client.list_multipart_uploads(Bucket=s3_storage.name).get("Uploads")


def test_registry_delete_of_an_upload_drops_its_pieces(
    client, alice, store, s3_storage, django_capture_on_commit_callbacks
):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, b"0123456789", auth=ALICE)

    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, "DELETE", location, auth=ALICE)

    assert response.status_code == 204
    assert s3_storage.list_keys() == []


def test_registry_monolithic_post_lands_at_the_content_address(client, alice, store, s3_storage):
    data = os.urandom(2 * MIB + 1)

    digest = push_blob(client, REPO, data)

    assert digest == f"sha256:{sha256(data)}"
    assert s3_storage.list_keys() == [blob_key(sha256(data))]
    assert s3_storage.read(blob_key(sha256(data))) == data


def test_registry_post_then_put_with_the_whole_blob_writes_it_once_for_its_key(
    client, alice, store, s3_storage, monkeypatch
):
    def refuse(self, source, target):
        raise AssertionError(f"copied {source} to {target}: the blob was written twice")

    monkeypatch.setattr(S3Objects, "copy", refuse)
    data = os.urandom(9 * MIB + 5)  # more than one part: a multipart upload of the key
    location = start_upload(client, REPO)

    response = send(client, "PUT", f"{location}?digest=sha256:{sha256(data)}", data, auth=ALICE)

    assert response.status_code == 201, response.content
    assert s3_storage.list_keys() == [blob_key(sha256(data))]
    assert s3_storage.read(blob_key(sha256(data))) == data
    assert not BlobUpload.objects.exists()


def test_registry_monolithic_post_with_a_wrong_digest_stores_nothing(
    client, alice, store, s3_storage
):
    response = send(
        client,
        "POST",
        f"/v2/{REPO}/blobs/uploads/?digest={digest_of(b'other')}",
        b"data",
        auth=ALICE,
    )

    assert response.status_code == 400
    assert s3_storage.list_keys() == []


# The registry over S3: pulling


def test_blob_get_redirects_to_a_presigned_url_serving_the_bytes(client, alice, store, s3_storage):
    data = os.urandom(100_000)
    digest = push_blob(client, REPO, data)

    response = send(client, "GET", f"/v2/{REPO}/blobs/{digest}", auth=ALICE)

    assert response.status_code == 307
    assert response["Docker-Content-Digest"] == digest
    location = response["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == s3_storage.endpoint
    assert parts.path == f"/{s3_storage.name}/{blob_key(sha256(data))}"
    query = dict(parse_qsl(parts.query))
    assert query["X-Amz-Expires"] == "300"
    assert sigv4_signature_is_valid(location, "GET")
    status, headers, body = fetch(location)
    assert status == 200
    assert body == data
    assert headers["Content-Type"] == BLOB_CONTENT_TYPE


def test_blob_redirect_honours_an_expiry_given_as_text(client, alice, store, s3_storage, settings):
    """FORGE_S3_URL_EXPIRY reaches REGISTRY['URL_EXPIRY'] as the string it was."""
    settings.REGISTRY = {**settings.REGISTRY, "URL_EXPIRY": "90"}
    digest = push_blob(client, REPO, b"layer")

    response = send(client, "GET", f"/v2/{REPO}/blobs/{digest}", auth=ALICE)

    assert response.status_code == 307
    assert dict(parse_qsl(urlsplit(response["Location"]).query))["X-Amz-Expires"] == "90"


def test_blob_head_is_200_with_length_and_no_redirect(client, alice, store, s3_storage):
    data = os.urandom(12_345)
    digest = push_blob(client, REPO, data)

    response = send(client, "HEAD", f"/v2/{REPO}/blobs/{digest}", auth=ALICE)

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(data))
    assert response["Docker-Content-Digest"] == digest
    assert not response.has_header("Location")


def test_blob_of_another_image_is_404_before_any_redirect(client, alice, store, s3_storage):
    digest = push_blob(client, REPO, b"layer")

    response = send(client, "GET", f"/v2/alice/other/blobs/{digest}", auth=ALICE)

    assert response.status_code == 404
    assert not response.has_header("Location")


def test_manifest_get_redirects_to_a_url_serving_the_manifest_media_type(
    client, alice, store, s3_storage
):
    pushed = push_image(client, REPO, "v1", layers=(b"layer one", b"layer two"))

    response = send(client, "GET", f"/v2/{REPO}/manifests/v1", auth=ALICE, HTTP_ACCEPT=OCI_MANIFEST)

    assert response.status_code == 307
    assert response["Docker-Content-Digest"] == pushed.digest
    status, headers, body = fetch(response["Location"])
    assert status == 200
    assert body == pushed.manifest
    assert headers["Content-Type"] == OCI_MANIFEST
    assert json.loads(body)["layers"][1]["digest"] == pushed.layer_digests[1]


def test_manifest_head_is_answered_without_a_redirect(client, alice, store, s3_storage):
    pushed = push_image(client, REPO, "v1")

    response = send(client, "HEAD", f"/v2/{REPO}/manifests/v1", auth=ALICE)

    assert response.status_code == 200
    assert response["Docker-Content-Digest"] == pushed.digest
    assert response["Content-Type"] == OCI_MANIFEST
    assert not response.has_header("Location")


@pytest.fixture
def streamed(settings, s3_storage):
    """Serving direct off: the registry streams from the bucket itself."""
    settings.REGISTRY = {**settings.REGISTRY, "SERVE_DIRECT": False}


def test_without_serve_direct_blob_get_streams_the_bytes(client, alice, store, streamed):
    data = os.urandom(3 * MIB + 7)
    digest = push_blob(client, REPO, data)

    response = send(client, "GET", f"/v2/{REPO}/blobs/{digest}", auth=ALICE)

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Length"] == str(len(data))
    assert response["Docker-Content-Digest"] == digest
    assert response["Content-Type"] == BLOB_CONTENT_TYPE
    assert sha256(content(response)) == sha256(data)


def test_without_serve_direct_a_range_get_is_206_with_those_bytes(client, alice, store, streamed):
    data = os.urandom(1000)
    digest = push_blob(client, REPO, data)

    response = send(
        client, "GET", f"/v2/{REPO}/blobs/{digest}", auth=ALICE, HTTP_RANGE="bytes=10-19"
    )

    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert response["Content-Length"] == "10"
    assert content(response) == data[10:20]


def test_without_serve_direct_a_suffix_range_get_is_206(client, alice, store, streamed):
    data = os.urandom(1000)
    digest = push_blob(client, REPO, data)

    response = send(client, "GET", f"/v2/{REPO}/blobs/{digest}", auth=ALICE, HTTP_RANGE="bytes=-5")

    assert response.status_code == 206
    assert content(response) == data[-5:]


def test_without_serve_direct_a_range_past_the_end_is_416(client, alice, store, streamed):
    digest = push_blob(client, REPO, b"0123456789")

    response = send(
        client, "GET", f"/v2/{REPO}/blobs/{digest}", auth=ALICE, HTTP_RANGE="bytes=10-19"
    )

    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */10"


def test_without_serve_direct_the_empty_blob_streams(client, alice, store, streamed):
    digest = push_blob(client, REPO, b"")

    response = send(client, "GET", f"/v2/{REPO}/blobs/{digest}", auth=ALICE)

    assert response.status_code == 200
    assert content(response) == b""


def test_without_serve_direct_manifest_get_returns_the_body(client, alice, store, streamed):
    pushed = push_image(client, REPO, "v1")

    response = send(client, "GET", f"/v2/{REPO}/manifests/v1", auth=ALICE)

    assert response.status_code == 200
    assert response.content == pushed.manifest
    assert response["Content-Type"] == OCI_MANIFEST


@pytest.mark.parametrize("extra", [{}, {"HTTP_RANGE": "bytes=2-4"}], ids=["whole", "range"])
def test_a_blob_missing_from_the_bucket_is_404_blob_unknown_when_streaming(
    client, alice, store, streamed, s3_storage, extra
):
    """As on a file system (FileNotFoundError there): BLOB_UNKNOWN, not a server error."""
    data = b"soon gone"
    digest = push_blob(client, REPO, data)
    s3_storage.client.delete_object(Bucket=s3_storage.name, Key=blob_key(sha256(data)))
    client.raise_request_exception = False

    response = send(client, "GET", f"/v2/{REPO}/blobs/{digest}", auth=ALICE, **extra)

    assert_error(response, 404, "BLOB_UNKNOWN")


# System checks


def test_bucket_check_passes_for_an_existing_bucket(s3_storage):
    assert checks.check_bucket_exists() == []


def test_bucket_check_is_packages_e005_for_a_missing_bucket(s3_storage):
    s3_storage.configure(FORGE_S3_BUCKET="forge-test-no-such-bucket")

    [error] = checks.check_bucket_exists()

    assert error.id == "packages.E005"
    assert "'forge-test-no-such-bucket'" in error.msg
    assert "does not exist" in error.msg


def test_bucket_check_is_packages_e005_for_an_unreachable_endpoint(s3_storage):
    s3_storage.configure(FORGE_S3_ENDPOINT_URL="http://127.0.0.1:1")

    [error] = checks.check_bucket_exists()

    assert error.id == "packages.E005"
    assert s3_storage.name in error.msg
    assert "cannot be reached" in error.msg


def test_bucket_check_ignores_a_file_system_store():
    assert checks.check_bucket_exists() == []


@pytest.mark.parametrize("expiry", ["abc", 0, "0", -5, "-5", "", True])
def test_a_url_expiry_that_is_not_a_positive_number_is_registry_e004(settings, expiry):
    settings.REGISTRY = {**settings.REGISTRY, "URL_EXPIRY": expiry}

    errors = registry_checks.check_settings()

    assert "registry.E004" in [error.id for error in errors]


@pytest.mark.parametrize("expiry", [300, "90", " 60 "])
def test_a_positive_url_expiry_passes(settings, expiry):
    settings.REGISTRY = {**settings.REGISTRY, "URL_EXPIRY": expiry}

    assert registry_checks.check_settings() == []

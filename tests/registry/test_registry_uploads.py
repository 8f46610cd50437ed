"""Blob uploads over /v2: sessions, chunks, streamed and chunked bodies, monolithic, mounts."""

import io
import os
import uuid

import pytest

from packages_core.models import BlobUpload, Package, PackageBlob
from packages_core.models.owners import Visibility
from packages_core.services import owners
from tests.registry_helpers import (
    ALICE,
    API_VERSION,
    API_VERSION_HEADER,
    BOB,
    assert_error,
    content,
    digest_of,
    push_blob,
    send,
    start_upload,
)

pytestmark = pytest.mark.django_db

REPO = "alice/img"
DATA = b"0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(autouse=True)
def _users(alice, bob):
    """alice pushes to her own owner; bob is another signed-in user."""


def upload_id(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[1]


def blob_bytes(client, repo: str, digest: str, auth=ALICE) -> bytes:
    response = send(client, "GET", f"/v2/{repo}/blobs/{digest}", auth=auth)
    assert response.status_code == 200, response.status_code
    return content(response)


def chunked(client, method: str, path: str, data: bytes, *, auth=ALICE, **extra):
    """A request whose body has no Content-Length: Transfer-Encoding: chunked, de-chunked."""
    environ = {"wsgi.input": io.BytesIO(data), "HTTP_TRANSFER_ENCODING": "chunked", **extra}
    environ.pop("CONTENT_LENGTH", None)
    return client.generic(method, path, b"", **auth, **environ)


# Starting a session


def test_post_starts_upload_with_location_uuid_and_empty_range(client):
    response = send(client, "POST", f"/v2/{REPO}/blobs/uploads/", auth=ALICE)

    assert response.status_code == 202
    session = response["Docker-Upload-UUID"]
    assert response["Location"] == f"/v2/{REPO}/blobs/uploads/{session}"
    assert response["Range"] == "0-0"
    assert response["Content-Length"] == "0"
    assert response[API_VERSION_HEADER] == API_VERSION
    assert BlobUpload.objects.filter(pk=session, package_name="img").exists()


def test_post_location_uses_the_lowercase_owner_name(client):
    response = send(client, "POST", "/v2/Alice/img/blobs/uploads/", auth=ALICE)

    assert response.status_code == 202
    assert response["Location"].startswith("/v2/alice/img/blobs/uploads/")


def test_get_status_of_new_upload_is_204_with_range_0_0(client):
    location = start_upload(client, REPO)

    response = send(client, "GET", location, auth=ALICE)

    assert response.status_code == 204
    assert response["Range"] == "0-0"
    assert response["Location"] == location
    assert response["Docker-Upload-UUID"] == upload_id(location)


def test_get_status_is_204_with_range_of_bytes_received(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:10], auth=ALICE, HTTP_CONTENT_RANGE="0-9")

    response = send(client, "GET", location, auth=ALICE)

    assert response.status_code == 204
    assert response["Range"] == "0-9"
    assert response["Location"] == location


# Chunks


def test_patch_with_content_range_appends_several_chunks(client):
    location = start_upload(client, REPO)
    ranges = []
    for start, end in ((0, 9), (10, 19), (20, len(DATA) - 1)):
        response = send(
            client,
            "PATCH",
            location,
            DATA[start : end + 1],
            auth=ALICE,
            HTTP_CONTENT_RANGE=f"{start}-{end}",
        )
        assert response.status_code == 202
        assert response["Location"] == location
        assert response["Docker-Upload-UUID"] == upload_id(location)
        ranges.append(response["Range"])

    done = send(client, "PUT", f"{location}?digest={digest_of(DATA)}", auth=ALICE)

    assert ranges == ["0-9", "0-19", f"0-{len(DATA) - 1}"]
    assert done.status_code == 201
    assert blob_bytes(client, REPO, digest_of(DATA)) == DATA


def test_patch_with_wrong_offset_is_416_with_current_range(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:5], auth=ALICE, HTTP_CONTENT_RANGE="0-4")

    response = send(client, "PATCH", location, DATA[10:15], auth=ALICE, HTTP_CONTENT_RANGE="10-14")

    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response["Range"] == "0-4"
    assert send(client, "GET", location, auth=ALICE)["Range"] == "0-4"


def test_patch_repeating_an_earlier_chunk_is_416_and_changes_nothing(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:5], auth=ALICE, HTTP_CONTENT_RANGE="0-4")

    response = send(client, "PATCH", location, DATA[:5], auth=ALICE, HTTP_CONTENT_RANGE="0-4")

    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response["Range"] == "0-4"
    send(client, "PATCH", location, DATA[5:], auth=ALICE, HTTP_CONTENT_RANGE=f"5-{len(DATA) - 1}")
    done = send(client, "PUT", f"{location}?digest={digest_of(DATA)}", auth=ALICE)
    assert done.status_code == 201


def test_patch_with_malformed_content_range_is_416_blob_upload_invalid(client):
    location = start_upload(client, REPO)

    response = send(client, "PATCH", location, DATA[:5], auth=ALICE, HTTP_CONTENT_RANGE="five-9")

    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert send(client, "GET", location, auth=ALICE)["Range"] == "0-0"


@pytest.mark.parametrize("header", ["bytes 0-4", "bytes=0-4"])
def test_patch_accepts_content_range_with_the_bytes_unit(client, header):
    location = start_upload(client, REPO)

    response = send(client, "PATCH", location, DATA[:5], auth=ALICE, HTTP_CONTENT_RANGE=header)

    assert response.status_code == 202
    assert response["Range"] == "0-4"


def test_several_patches_without_content_range_append_in_order(client):
    location = start_upload(client, REPO)

    send(client, "PATCH", location, DATA[:10], auth=ALICE)
    response = send(client, "PATCH", location, DATA[10:], auth=ALICE)

    assert response["Range"] == f"0-{len(DATA) - 1}"
    done = send(client, "PUT", f"{location}?digest={digest_of(DATA)}", auth=ALICE)
    assert done.status_code == 201


def test_patch_body_shorter_than_its_content_length_is_400_size_invalid(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:5], auth=ALICE)

    response = client.generic(
        "PATCH",
        location,
        b"",
        **ALICE,
        CONTENT_LENGTH="100",
        **{"wsgi.input": io.BytesIO(b"x" * 10)},
    )

    assert_error(response, 400, "SIZE_INVALID")
    assert send(client, "GET", location, auth=ALICE)["Range"] == "0-4"
    send(client, "PATCH", location, DATA[5:], auth=ALICE, HTTP_CONTENT_RANGE=f"5-{len(DATA) - 1}")
    done = send(client, "PUT", f"{location}?digest={digest_of(DATA)}", auth=ALICE)
    assert done.status_code == 201
    assert blob_bytes(client, REPO, digest_of(DATA)) == DATA


def test_patch_without_content_range_appends_streamed_body(client):
    location = start_upload(client, REPO)

    response = send(client, "PATCH", location, DATA, auth=ALICE)

    assert response.status_code == 202
    assert response["Range"] == f"0-{len(DATA) - 1}"
    done = send(client, "PUT", f"{location}?digest={digest_of(DATA)}", auth=ALICE)
    assert done.status_code == 201
    assert blob_bytes(client, REPO, digest_of(DATA)) == DATA


def test_patch_with_chunked_transfer_encoding_stores_every_byte(client):
    data = bytes(range(256)) * (5 * 1024 + 7)  # about 1.3 MiB: more than one read
    location = start_upload(client, REPO)

    response = chunked(client, "PATCH", location, data)

    assert response.status_code == 202
    assert response["Range"] == f"0-{len(data) - 1}"
    done = send(client, "PUT", f"{location}?digest={digest_of(data)}", auth=ALICE)
    assert done.status_code == 201
    assert blob_bytes(client, REPO, digest_of(data)) == data


def test_put_with_chunked_transfer_encoding_stores_the_final_chunk(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:10], auth=ALICE, HTTP_CONTENT_RANGE="0-9")

    response = chunked(client, "PUT", f"{location}?digest={digest_of(DATA)}", DATA[10:])

    assert response.status_code == 201
    assert blob_bytes(client, REPO, digest_of(DATA)) == DATA


def test_monolithic_post_with_chunked_transfer_encoding_stores_every_byte(client):
    response = chunked(client, "POST", f"/v2/{REPO}/blobs/uploads/?digest={digest_of(DATA)}", DATA)

    assert response.status_code == 201
    assert blob_bytes(client, REPO, digest_of(DATA)) == DATA


# Bodies that break part-way, and chunks their Content-Range does not describe


class BreakingBody:
    """A request body that gives `data`, then fails as gunicorn's reader does on a
    malformed chunk size or a client gone mid-body (both IOErrors).
    """

    def __init__(self, data: bytes, error: OSError | None = None):
        self._data, self._error = io.BytesIO(data), error or OSError("Invalid chunk size: b'zz'")

    def read(self, size: int = -1) -> bytes:
        data = self._data.read(size)
        if not data:
            raise self._error
        return data

    def readline(self, size: int = -1) -> bytes:  # Django's LimitedStream wants one
        return self.read(size)


def staged_size(store, location: str) -> int:
    """The bytes on disk of an upload session's staging file."""
    upload = BlobUpload.objects.get(pk=upload_id(location))
    path = store.local_path(upload.storage_key)
    return os.path.getsize(path) if os.path.exists(path) else 0


def test_patch_whose_content_range_covers_more_than_its_body_is_416(client, store):
    location = start_upload(client, REPO)

    response = send(
        client, "PATCH", location, b"abc", auth=ALICE, HTTP_CONTENT_RANGE="0-99999999999999999"
    )

    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response["Range"] == "0-0"
    assert send(client, "GET", location, auth=ALICE)["Range"] == "0-0"
    assert staged_size(store, location) == 0


def test_patch_whose_content_range_covers_less_than_its_body_is_416(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:5], auth=ALICE, HTTP_CONTENT_RANGE="0-4")

    response = send(client, "PATCH", location, DATA[5:], auth=ALICE, HTTP_CONTENT_RANGE="5-6")

    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response["Range"] == "0-4"


@pytest.mark.parametrize(
    "header",
    [
        "0-99999999999999999999",  # past int64
        "0-" + "9" * 5000,  # past what int() converts
        "0-\u00b2",  # a superscript two: isdigit(), yet not a number int() takes
        "\u0660-\u0662",  # Arabic-Indic digits, which int() would take
        "-4",
        "0-4/x",
    ],
    ids=["past-int64", "thousands-of-digits", "superscript", "arabic-indic", "no-start", "total"],
)
def test_patch_with_a_content_range_that_is_not_ascii_numbers_is_416(client, header):
    location = start_upload(client, REPO)

    response = send(client, "PATCH", location, DATA[:5], auth=ALICE, HTTP_CONTENT_RANGE=header)

    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response["Range"] == "0-0"


def test_chunked_patch_longer_than_its_content_range_is_416_and_keeps_nothing(client, store):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:5], auth=ALICE, HTTP_CONTENT_RANGE="0-4")

    response = chunked(client, "PATCH", location, DATA[5:], HTTP_CONTENT_RANGE="5-9")

    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response["Range"] == "0-4"
    assert send(client, "GET", location, auth=ALICE)["Range"] == "0-4"
    assert staged_size(store, location) == 5


def test_chunked_patch_shorter_than_its_content_range_is_416_and_keeps_nothing(client, store):
    location = start_upload(client, REPO)

    response = chunked(client, "PATCH", location, DATA[:5], HTTP_CONTENT_RANGE="0-9")

    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert send(client, "GET", location, auth=ALICE)["Range"] == "0-0"
    assert staged_size(store, location) == 0


def test_chunked_patch_of_exactly_its_content_range_is_appended(client):
    location = start_upload(client, REPO)

    response = chunked(client, "PATCH", location, DATA[:10], HTTP_CONTENT_RANGE="0-9")

    assert response.status_code == 202
    assert response["Range"] == "0-9"


def test_patch_whose_body_breaks_part_way_is_400_and_keeps_nothing_of_it(client, store):
    """More than one 1 MiB piece arrives before the body breaks: none of it stays on
    disk, and the session goes on from where it was.
    """
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:5], auth=ALICE)

    response = chunked(
        client, "PATCH", location, b"", **{"wsgi.input": BreakingBody(b"x" * (2 * 1024 * 1024 + 3))}
    )

    assert_error(response, 400, "BLOB_UPLOAD_INVALID")
    assert send(client, "GET", location, auth=ALICE)["Range"] == "0-4"
    assert staged_size(store, location) == 5
    send(client, "PATCH", location, DATA[5:], auth=ALICE, HTTP_CONTENT_RANGE=f"5-{len(DATA) - 1}")
    done = send(client, "PUT", f"{location}?digest={digest_of(DATA)}", auth=ALICE)
    assert done.status_code == 201
    assert blob_bytes(client, REPO, digest_of(DATA)) == DATA


def test_patch_body_ending_before_its_content_length_keeps_nothing_of_it(client, store):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:5], auth=ALICE)

    response = client.generic(
        "PATCH",
        location,
        b"",
        **ALICE,
        CONTENT_LENGTH=str(2 * 1024 * 1024),
        **{"wsgi.input": io.BytesIO(b"x" * (1024 * 1024 + 10))},
    )

    assert_error(response, 400, "SIZE_INVALID")
    assert staged_size(store, location) == 5


def test_monolithic_post_whose_body_breaks_is_400_and_stores_nothing(client, package_storage):
    response = chunked(
        client,
        "POST",
        f"/v2/{REPO}/blobs/uploads/?digest={digest_of(DATA)}",
        b"",
        **{"wsgi.input": BreakingBody(DATA)},
    )

    assert_error(response, 400, "BLOB_UPLOAD_INVALID")
    assert not PackageBlob.objects.exists()
    assert [p for p in package_storage.rglob("*") if p.is_file()] == []


def test_finishing_put_whose_body_breaks_is_400_and_the_session_goes_on(client, store):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:5], auth=ALICE)

    response = chunked(
        client,
        "PUT",
        f"{location}?digest={digest_of(DATA)}",
        b"",
        **{"wsgi.input": BreakingBody(DATA[5:], ConnectionResetError())},
    )

    assert_error(response, 400, "BLOB_UPLOAD_INVALID")
    assert send(client, "GET", location, auth=ALICE)["Range"] == "0-4"
    assert staged_size(store, location) == 5


# Finishing


def test_put_with_final_chunk_in_body_completes_upload(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:10], auth=ALICE, HTTP_CONTENT_RANGE="0-9")

    response = send(
        client,
        "PUT",
        f"{location}?digest={digest_of(DATA)}",
        DATA[10:],
        auth=ALICE,
        HTTP_CONTENT_RANGE=f"10-{len(DATA) - 1}",
    )

    assert response.status_code == 201
    assert response["Location"] == f"/v2/{REPO}/blobs/{digest_of(DATA)}"
    assert response["Docker-Content-Digest"] == digest_of(DATA)
    assert blob_bytes(client, REPO, digest_of(DATA)) == DATA
    assert not BlobUpload.objects.exists()


def test_put_with_whole_blob_in_body_completes_upload(client):
    location = start_upload(client, REPO)

    response = send(client, "PUT", f"{location}?digest={digest_of(DATA)}", DATA, auth=ALICE)

    assert response.status_code == 201
    assert blob_bytes(client, REPO, digest_of(DATA)) == DATA


def test_put_final_chunk_with_wrong_offset_is_416(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA[:10], auth=ALICE, HTTP_CONTENT_RANGE="0-9")

    response = send(
        client,
        "PUT",
        f"{location}?digest={digest_of(DATA)}",
        DATA[12:],
        auth=ALICE,
        HTTP_CONTENT_RANGE=f"12-{len(DATA) - 1}",
    )

    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response["Range"] == "0-9"


def test_put_without_digest_is_400_digest_invalid(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA, auth=ALICE)

    response = send(client, "PUT", location, auth=ALICE)

    assert_error(response, 400, "DIGEST_INVALID")
    assert send(client, "GET", location, auth=ALICE).status_code == 204


def test_put_with_wrong_digest_is_400_and_the_upload_remains(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA, auth=ALICE)

    response = send(client, "PUT", f"{location}?digest={digest_of(b'other')}", auth=ALICE)

    assert_error(response, 400, "DIGEST_INVALID")
    status = send(client, "GET", location, auth=ALICE)
    assert status.status_code == 204
    assert status["Range"] == f"0-{len(DATA) - 1}"
    assert not PackageBlob.objects.exists()
    # The client may still finish it with the right digest.
    done = send(client, "PUT", f"{location}?digest={digest_of(DATA)}", auth=ALICE)
    assert done.status_code == 201


def test_put_with_malformed_digest_is_400_digest_invalid(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA, auth=ALICE)

    response = send(client, "PUT", f"{location}?digest=sha256:nothex", auth=ALICE)

    assert_error(response, 400, "DIGEST_INVALID")


def test_put_with_unsupported_digest_algorithm_is_400_digest_invalid(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA, auth=ALICE)

    response = send(client, "PUT", f"{location}?digest=md5:{'0' * 32}", auth=ALICE)

    assert_error(response, 400, "DIGEST_INVALID")


def test_put_with_sha512_digest_finishes_upload(client):
    digest = digest_of(DATA, "sha512")
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA, auth=ALICE)

    response = send(client, "PUT", f"{location}?digest={digest}", auth=ALICE)

    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == digest
    assert response["Location"] == f"/v2/{REPO}/blobs/{digest}"
    head = send(client, "HEAD", f"/v2/{REPO}/blobs/{digest}", auth=ALICE)
    assert head.status_code == 200
    assert head["Content-Length"] == str(len(DATA))
    assert blob_bytes(client, REPO, digest) == DATA
    assert blob_bytes(client, REPO, digest_of(DATA)) == DATA


def test_put_with_wrong_sha512_digest_is_400_digest_invalid(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA, auth=ALICE)

    response = send(client, "PUT", f"{location}?digest={digest_of(b'x', 'sha512')}", auth=ALICE)

    assert_error(response, 400, "DIGEST_INVALID")


def test_finishing_twice_is_404_blob_upload_unknown(client):
    location = start_upload(client, REPO)
    send(client, "PUT", f"{location}?digest={digest_of(DATA)}", DATA, auth=ALICE)

    response = send(client, "PUT", f"{location}?digest={digest_of(DATA)}", auth=ALICE)

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


# Monolithic POST


def test_monolithic_post_with_digest_is_201_with_location_and_digest(client):
    digest = digest_of(DATA)

    response = send(client, "POST", f"/v2/{REPO}/blobs/uploads/?digest={digest}", DATA, auth=ALICE)

    assert response.status_code == 201
    assert response["Location"] == f"/v2/{REPO}/blobs/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert not BlobUpload.objects.exists()
    assert blob_bytes(client, REPO, digest) == DATA


def test_monolithic_post_with_sha512_digest_is_201(client):
    digest = digest_of(DATA, "sha512")

    response = send(client, "POST", f"/v2/{REPO}/blobs/uploads/?digest={digest}", DATA, auth=ALICE)

    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == digest
    assert blob_bytes(client, REPO, digest) == DATA


def test_monolithic_post_with_wrong_digest_is_400_and_stores_nothing(client, package_storage):
    wrong = digest_of(b"something else")

    response = send(client, "POST", f"/v2/{REPO}/blobs/uploads/?digest={wrong}", DATA, auth=ALICE)

    assert_error(response, 400, "DIGEST_INVALID")
    assert not PackageBlob.objects.exists()
    assert not Package.objects.exists()
    stored = [path for path in package_storage.rglob("*") if path.is_file()]
    assert stored == []


def test_monolithic_post_with_malformed_digest_is_400_digest_invalid(client):
    response = send(
        client, "POST", f"/v2/{REPO}/blobs/uploads/?digest=sha256:xyz", DATA, auth=ALICE
    )

    assert_error(response, 400, "DIGEST_INVALID")
    assert not PackageBlob.objects.exists()


def test_monolithic_post_of_a_blob_already_stored_elsewhere_stores_it_once(client):
    push_blob(client, "alice/one", DATA)

    push_blob(client, "alice/two", DATA)

    assert PackageBlob.objects.count() == 1
    assert blob_bytes(client, "alice/two", digest_of(DATA)) == DATA


# The empty blob


def test_empty_blob_can_be_uploaded_and_pulled(client):
    empty = digest_of(b"")
    location = start_upload(client, REPO)

    done = send(client, "PUT", f"{location}?digest={empty}", auth=ALICE)

    assert done.status_code == 201
    head = send(client, "HEAD", f"/v2/{REPO}/blobs/{empty}", auth=ALICE)
    assert head.status_code == 200
    assert head["Content-Length"] == "0"
    assert blob_bytes(client, REPO, empty) == b""


def test_empty_blob_by_monolithic_post(client):
    empty = digest_of(b"")

    response = send(client, "POST", f"/v2/{REPO}/blobs/uploads/?digest={empty}", auth=ALICE)

    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == empty
    assert blob_bytes(client, REPO, empty) == b""


def test_empty_patch_keeps_range_0_0(client):
    location = start_upload(client, REPO)

    response = send(client, "PATCH", location, auth=ALICE)

    assert response.status_code == 202
    assert response["Range"] == "0-0"


# Cancelling and unknown sessions


def test_delete_upload_is_204_then_404_blob_upload_unknown(client):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA, auth=ALICE)

    response = send(client, "DELETE", location, auth=ALICE)

    assert response.status_code == 204
    assert response[API_VERSION_HEADER] == API_VERSION
    assert_error(send(client, "GET", location, auth=ALICE), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(send(client, "PATCH", location, DATA, auth=ALICE), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(send(client, "DELETE", location, auth=ALICE), 404, "BLOB_UPLOAD_UNKNOWN")


def test_delete_upload_drops_its_staged_bytes(
    client, package_storage, django_capture_on_commit_callbacks
):
    location = start_upload(client, REPO)
    send(client, "PATCH", location, DATA, auth=ALICE)

    with django_capture_on_commit_callbacks(execute=True):
        send(client, "DELETE", location, auth=ALICE)

    assert [path for path in package_storage.rglob("*") if path.is_file()] == []


def test_upload_used_under_another_image_is_404_blob_upload_unknown(client):
    location = start_upload(client, REPO)
    other = location.replace("/alice/img/", "/alice/other/")

    response = send(client, "PATCH", other, DATA, auth=ALICE)

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert send(client, "GET", location, auth=ALICE)["Range"] == "0-0"


def test_upload_used_under_another_owner_is_404_blob_upload_unknown(client, org):
    location = start_upload(client, REPO)
    other = location.replace("/alice/img/", "/acme/img/")

    response = send(client, "GET", other, auth=ALICE)

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_of_another_user_is_404_blob_upload_unknown(client):
    location = start_upload(client, REPO)
    other = location.replace("/alice/img/", "/bob/img/")

    response = send(client, "PUT", f"{other}?digest={digest_of(b'')}", auth=BOB)

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    assert BlobUpload.objects.count() == 1


def test_unknown_upload_id_is_404_blob_upload_unknown(client):
    response = send(client, "GET", f"/v2/{REPO}/blobs/uploads/{uuid.uuid4()}", auth=ALICE)

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("upload", ["abc-123", "deadbeef", "0" * 40, "0" * 32])
def test_malformed_upload_id_is_404_blob_upload_unknown(client, upload):
    response = send(client, "PATCH", f"/v2/{REPO}/blobs/uploads/{upload}", DATA, auth=ALICE)

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


def test_upload_id_with_other_characters_is_404_blob_upload_unknown(client):
    response = send(client, "GET", f"/v2/{REPO}/blobs/uploads/not-a-uuid", auth=ALICE)

    assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


# Cross-repository mounts


def test_mount_from_readable_source_is_201(client):
    digest = push_blob(client, "alice/src", DATA)

    response = send(
        client, "POST", f"/v2/alice/dst/blobs/uploads/?mount={digest}&from=alice/src", auth=ALICE
    )

    assert response.status_code == 201
    assert response["Location"] == f"/v2/alice/dst/blobs/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert not BlobUpload.objects.exists()
    assert blob_bytes(client, "alice/dst", digest) == DATA


def test_mount_from_public_owner_of_someone_else_is_201(client):
    digest = push_blob(client, "bob/src", DATA, auth=BOB)

    response = send(
        client, "POST", f"/v2/alice/dst/blobs/uploads/?mount={digest}&from=bob/src", auth=ALICE
    )

    assert response.status_code == 201
    assert blob_bytes(client, "alice/dst", digest) == DATA


def test_mount_from_private_source_of_someone_else_starts_an_upload(client, bob):
    digest = push_blob(client, "bob/src", DATA, auth=BOB)
    bob.package_owner.visibility = Visibility.PRIVATE
    bob.package_owner.save()

    response = send(
        client, "POST", f"/v2/alice/dst/blobs/uploads/?mount={digest}&from=bob/src", auth=ALICE
    )

    assert response.status_code == 202
    assert response["Location"].startswith("/v2/alice/dst/blobs/uploads/")
    assert response["Range"] == "0-0"
    head = send(client, "HEAD", f"/v2/alice/dst/blobs/{digest}", auth=ALICE)
    assert head.status_code == 404


def test_mount_from_private_org_the_caller_belongs_to_is_201(client, alice):
    owners.create_org("secret", owner_user=alice, visibility=Visibility.PRIVATE)
    digest = push_blob(client, "secret/src", DATA)

    response = send(
        client, "POST", f"/v2/alice/dst/blobs/uploads/?mount={digest}&from=secret/src", auth=ALICE
    )

    assert response.status_code == 201


def test_mount_of_unknown_blob_starts_an_upload(client):
    push_blob(client, "alice/src", DATA)
    unknown = digest_of(b"never pushed")

    response = send(
        client, "POST", f"/v2/alice/dst/blobs/uploads/?mount={unknown}&from=alice/src", auth=ALICE
    )

    assert response.status_code == 202
    assert response["Location"].startswith("/v2/alice/dst/blobs/uploads/")


def test_mount_of_blob_the_source_image_does_not_have_starts_an_upload(client):
    digest = push_blob(client, "alice/elsewhere", DATA)

    response = send(
        client, "POST", f"/v2/alice/dst/blobs/uploads/?mount={digest}&from=alice/src", auth=ALICE
    )

    assert response.status_code == 202


def test_mount_from_unknown_owner_starts_an_upload(client):
    digest = push_blob(client, "alice/src", DATA)

    response = send(
        client, "POST", f"/v2/alice/dst/blobs/uploads/?mount={digest}&from=nobody/src", auth=ALICE
    )

    assert response.status_code == 202


def test_mount_with_malformed_digest_starts_an_upload(client):
    response = send(
        client,
        "POST",
        "/v2/alice/dst/blobs/uploads/?mount=sha256:nothex&from=alice/src",
        auth=ALICE,
    )

    assert response.status_code == 202
    assert response["Location"].startswith("/v2/alice/dst/blobs/uploads/")

"""Blobs over /v2: HEAD and GET with digests, ETags and ranges; visibility per image; DELETE."""

import pytest

from packages_core.models import PackageBlob
from tests.registry_helpers import (
    ALICE,
    API_VERSION,
    API_VERSION_HEADER,
    assert_error,
    content,
    digest_of,
    push_blob,
    push_image,
    send,
)

pytestmark = pytest.mark.django_db

REPO = "alice/img"
DATA = b"abcdefghijklmnopqrstuvwxyz"  # 26 bytes


@pytest.fixture
def digest(client, alice):
    return push_blob(client, REPO, DATA)


def blob_url(digest: str, repo: str = REPO) -> str:
    return f"/v2/{repo}/blobs/{digest}"


def get(client, digest: str, **extra):
    return send(client, "GET", blob_url(digest), auth=ALICE, **extra)


# HEAD and GET


def test_head_has_length_digest_and_etag(client, digest):
    response = send(client, "HEAD", blob_url(digest), auth=ALICE)

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(DATA))
    assert response["Docker-Content-Digest"] == digest
    assert response["ETag"] == f'"{digest}"'
    assert response[API_VERSION_HEADER] == API_VERSION
    assert content(response) == b""


def test_get_sends_the_bytes_with_length_digest_and_etag(client, digest):
    response = get(client, digest)

    assert response.status_code == 200
    assert content(response) == DATA
    assert response["Content-Length"] == str(len(DATA))
    assert response["Docker-Content-Digest"] == digest
    assert response["ETag"] == f'"{digest}"'
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Accept-Ranges"] == "bytes"
    assert response[API_VERSION_HEADER] == API_VERSION


def test_a_blob_pushed_by_sha256_is_unknown_by_its_sha512(client, digest):
    # sha512 is computed only for clients that name a blob by it (as Distribution does).
    response = get(client, digest_of(DATA, "sha512"))

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_a_blob_pushed_again_by_its_sha512_answers_to_both_digests(client, digest):
    sha512 = push_blob(client, REPO, DATA, algorithm="sha512")

    by_sha512, by_sha256 = get(client, sha512), get(client, digest)

    assert by_sha512.status_code == 200
    assert by_sha512["Docker-Content-Digest"] == sha512
    assert content(by_sha512) == DATA
    assert content(by_sha256) == DATA
    assert PackageBlob.objects.count() == 1


def test_get_of_blob_referenced_by_a_manifest(client, alice):
    image = push_image(client, REPO, "v1", layers=(DATA,))

    response = get(client, image.layer_digests[0])

    assert response.status_code == 200
    assert content(response) == DATA


def test_owner_name_in_blob_path_is_case_insensitive(client, digest):
    response = send(client, "GET", blob_url(digest, "Alice/img"), auth=ALICE)

    assert response.status_code == 200


# Ranges


def test_range_is_206_with_content_range(client, digest):
    response = get(client, digest, HTTP_RANGE="bytes=0-9")

    assert response.status_code == 206
    assert content(response) == DATA[:10]
    assert response["Content-Range"] == f"bytes 0-9/{len(DATA)}"
    assert response["Content-Length"] == "10"
    assert response["Docker-Content-Digest"] == digest
    assert response[API_VERSION_HEADER] == API_VERSION


def test_suffix_range_sends_the_last_bytes(client, digest):
    response = get(client, digest, HTTP_RANGE="bytes=-5")

    assert response.status_code == 206
    assert content(response) == DATA[-5:]
    assert response["Content-Range"] == f"bytes 21-25/{len(DATA)}"
    assert response["Content-Length"] == "5"


def test_open_range_sends_the_rest(client, digest):
    response = get(client, digest, HTTP_RANGE="bytes=5-")

    assert response.status_code == 206
    assert content(response) == DATA[5:]
    assert response["Content-Range"] == f"bytes 5-25/{len(DATA)}"


def test_range_past_the_end_is_clipped(client, digest):
    response = get(client, digest, HTTP_RANGE="bytes=20-1000")

    assert response.status_code == 206
    assert content(response) == DATA[20:]
    assert response["Content-Range"] == f"bytes 20-25/{len(DATA)}"


def test_suffix_longer_than_the_blob_sends_it_all(client, digest):
    response = get(client, digest, HTTP_RANGE="bytes=-100")

    assert response.status_code == 206
    assert content(response) == DATA


def test_range_outside_the_blob_is_416_with_unsatisfied_content_range(client, digest):
    response = get(client, digest, HTTP_RANGE="bytes=26-30")

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(DATA)}"
    assert response[API_VERSION_HEADER] == API_VERSION


def test_reversed_range_is_416(client, digest):
    response = get(client, digest, HTTP_RANGE="bytes=9-3")

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(DATA)}"


def test_unparsed_range_sends_the_whole_blob(client, digest):
    response = get(client, digest, HTTP_RANGE="bytes=0-1,5-6")

    assert response.status_code == 200
    assert content(response) == DATA


# Unknown blobs


def test_blob_of_another_image_of_the_same_owner_is_404_blob_unknown(client, digest):
    response = send(client, "GET", blob_url(digest, "alice/other"), auth=ALICE)

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_head_of_blob_in_another_image_is_404_without_body(client, digest):
    push_blob(client, "alice/other", b"something else")

    response = send(client, "HEAD", blob_url(digest, "alice/other"), auth=ALICE)

    assert response.status_code == 404
    assert response[API_VERSION_HEADER] == API_VERSION
    assert content(response) == b""


def test_unknown_blob_is_404_blob_unknown(client, digest):
    response = get(client, digest_of(b"never pushed"))

    error = assert_error(response, 404, "BLOB_UNKNOWN")
    assert error["detail"] == {"digest": digest_of(b"never pushed")}


@pytest.mark.parametrize(
    "bad", ["sha256:abc", "sha256:" + "G" * 64, "md5:" + "0" * 32, "sha512:" + "0" * 64]
)
def test_malformed_digest_is_404_blob_unknown(client, digest, bad):
    response = get(client, bad)

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_blob_path_that_is_no_digest_is_404_blob_unknown(client, digest):
    assert_error(get(client, "notadigest"), 404, "BLOB_UNKNOWN")


# DELETE


def test_delete_staged_blob_is_202_then_head_is_404(client, digest):
    response = send(client, "DELETE", blob_url(digest), auth=ALICE)

    assert response.status_code == 202
    assert response[API_VERSION_HEADER] == API_VERSION
    assert send(client, "HEAD", blob_url(digest), auth=ALICE).status_code == 404


def test_delete_staged_blob_keeps_the_stored_bytes_for_garbage_collection(client, digest):
    send(client, "DELETE", blob_url(digest), auth=ALICE)

    assert PackageBlob.objects.filter(sha256=digest.split(":")[1]).exists()


def test_delete_blob_in_one_image_leaves_it_in_another(client, digest):
    push_blob(client, "alice/other", DATA)

    send(client, "DELETE", blob_url(digest), auth=ALICE)

    assert send(client, "HEAD", blob_url(digest, "alice/other"), auth=ALICE).status_code == 200


def test_delete_blob_a_manifest_references_keeps_it_pullable(client, alice):
    image = push_image(client, REPO, "v1", layers=(DATA,))

    response = send(client, "DELETE", blob_url(image.layer_digests[0]), auth=ALICE)

    assert response.status_code == 202
    assert get(client, image.layer_digests[0]).status_code == 200


def test_delete_unknown_blob_is_404_blob_unknown(client, digest):
    response = send(client, "DELETE", blob_url(digest_of(b"never pushed")), auth=ALICE)

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_delete_twice_is_404_the_second_time(client, digest):
    send(client, "DELETE", blob_url(digest), auth=ALICE)

    response = send(client, "DELETE", blob_url(digest), auth=ALICE)

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_delete_blob_in_unknown_image_is_404_blob_unknown(client, alice):
    response = send(client, "DELETE", blob_url(digest_of(DATA), "alice/nothing"), auth=ALICE)

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_unsupported_method_on_blob_is_405_unsupported(client, digest):
    response = send(client, "PATCH", blob_url(digest), b"x", auth=ALICE)

    assert_error(response, 405, "UNSUPPORTED")

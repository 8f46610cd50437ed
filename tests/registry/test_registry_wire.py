"""What every /v2 answer is on the wire: a route for every digest the grammar allows, the
spec's JSON for unknown routes and unexpected failures, and no CSRF in the way.
"""

import errno
import json
import logging

import pytest
from django.db import connection
from django.test import Client

from packages_core.models import BlobUpload
from registry.views import listings, uploads
from tests.registry_helpers import (
    ALICE,
    API_VERSION,
    API_VERSION_HEADER,
    assert_error,
    digest_of,
    push_image,
    put_manifest,
    send,
)

pytestmark = pytest.mark.django_db

REPO = "alice/img"
# The OCI grammar: algorithm components joined by [+._-], e.g. a base64url variant.
PLUS_DIGEST = "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"


@pytest.fixture(autouse=True)
def _users(alice):
    """alice pushes to her own owner."""


@pytest.fixture
def csrf_client():
    """A client that sends no CSRF token and has the checks on, as registry clients are."""
    return Client(enforce_csrf_checks=True)


# Digests with '+' in their algorithm reach their views


def test_a_manifest_by_a_digest_with_a_plus_is_404_manifest_unknown(client):
    push_image(client, REPO, "v1")

    response = send(client, "GET", f"/v2/{REPO}/manifests/{PLUS_DIGEST}", auth=ALICE)

    assert_error(response, 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_blob_by_a_digest_with_a_plus_is_404_blob_unknown(client, method):
    response = send(client, method, f"/v2/{REPO}/blobs/{PLUS_DIGEST}", auth=ALICE)

    assert response.status_code == 404
    assert response[API_VERSION_HEADER] == API_VERSION
    if method == "GET":
        assert_error(response, 404, "BLOB_UNKNOWN")


def test_putting_a_manifest_by_a_digest_with_a_plus_is_400_digest_invalid(client):
    pushed = push_image(client, REPO, "v1")

    response = put_manifest(client, REPO, PLUS_DIGEST, pushed.manifest)

    assert_error(response, 400, "DIGEST_INVALID")


def test_a_monolithic_upload_by_a_digest_with_a_plus_is_400_digest_invalid(client):
    response = send(
        client, "POST", f"/v2/{REPO}/blobs/uploads/?digest={PLUS_DIGEST}", b"data", auth=ALICE
    )

    assert_error(response, 400, "DIGEST_INVALID")


def test_referrers_of_a_digest_with_a_plus_is_400_digest_invalid(client):
    push_image(client, REPO, "v1")

    response = send(client, "GET", f"/v2/{REPO}/referrers/{PLUS_DIGEST}", auth=ALICE)

    assert_error(response, 400, "DIGEST_INVALID")


def test_a_tag_path_with_a_plus_reaches_the_manifest_view_without_csrf(csrf_client):
    response = send(csrf_client, "PUT", "/v2/u/i/manifests/a+b", b"{}")

    assert_error(response, 401, "UNAUTHORIZED")


# Unknown routes: JSON whatever the method, never the CSRF page


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PURGE"])
def test_an_unknown_route_is_404_json_for_every_method(csrf_client, method):
    response = send(csrf_client, method, "/v2/alice/img/nothing/here", b"x")

    assert_error(response, 404, "UNSUPPORTED")


def test_an_unknown_route_answers_head_with_no_body(csrf_client):
    response = send(csrf_client, "HEAD", "/v2/alice/img/nothing/here")

    assert response.status_code == 404
    assert response[API_VERSION_HEADER] == API_VERSION
    assert response.content == b""


def test_every_registry_view_is_csrf_exempt(csrf_client):
    response = send(csrf_client, "POST", f"/v2/{REPO}/blobs/uploads/", auth=ALICE)

    assert response.status_code == 202


# An unexpected failure is the spec's 500, logged


@pytest.fixture
def broken_catalog(client, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("the catalog broke")

    monkeypatch.setattr(listings.images, "catalog", fail)
    client.raise_request_exception = False


def test_an_unexpected_exception_is_a_500_with_code_unknown(client, broken_catalog, caplog):
    with caplog.at_level(logging.ERROR, logger="registry.views.base"):
        response = send(client, "GET", "/v2/_catalog", auth=ALICE)

    entry = assert_error(response, 500, "UNKNOWN")
    assert "broke" not in entry["message"]  # the log has the details, not the client
    [record] = [r for r in caplog.records if r.name == "registry.views.base"]
    assert record.exc_info[0] is RuntimeError
    assert "GET /v2/_catalog" in record.getMessage()


def test_an_unexpected_exception_answers_head_with_no_body(client, broken_catalog):
    response = send(client, "HEAD", "/v2/_catalog", auth=ALICE)

    assert response.status_code == 500
    assert response[API_VERSION_HEADER] == API_VERSION
    assert response.content == b""


def test_an_unexpected_exception_is_raised_to_django_test_client_listeners(client, monkeypatch):
    """got_request_exception is sent as for any 500: error trackers (and the test
    client, which re-raises) hear of it.
    """

    def fail(*args, **kwargs):
        raise RuntimeError("the catalog broke")

    monkeypatch.setattr(listings.images, "catalog", fail)

    with pytest.raises(RuntimeError, match="the catalog broke"):
        send(client, "GET", "/v2/_catalog", auth=ALICE)


def test_an_unexpected_exception_rolls_back_a_request_wide_transaction(client, monkeypatch):
    """With ATOMIC_REQUESTS, what the view did is undone, as when Django sees the error."""
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)

    def fail(*args, **kwargs):
        raise RuntimeError("after the upload row was made")

    monkeypatch.setattr(uploads, "upload_response", fail)
    client.raise_request_exception = False

    response = send(client, "POST", f"/v2/{REPO}/blobs/uploads/", auth=ALICE)

    assert_error(response, 500, "UNKNOWN")
    assert not BlobUpload.objects.exists()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (OSError(errno.EIO, "Input/output error"), 500),
        (OSError(errno.ENOSPC, "No space left on device"), 507),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), 507),
    ],
    ids=["EIO", "ENOSPC", "EDQUOT"],
)
def test_a_storage_failure_is_an_error_with_code_unknown(client, monkeypatch, error, status):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(uploads.serving, "store_verified", fail)
    client.raise_request_exception = False
    data = b"layer"

    response = send(
        client, "POST", f"/v2/{REPO}/blobs/uploads/?digest={digest_of(data)}", data, auth=ALICE
    )

    assert_error(response, status, "UNKNOWN")
    assert json.loads(response.content)["errors"][0]["message"]

"""Input no client should send, on every door: a NUL byte in a name, a query, a credential
or a scope, or a number past what a database takes, is a 400 or 404, never a 500.

On PostgreSQL each of these once reached a query and failed there ("text fields cannot
contain NUL", "bigint out of range"); the answers are checked on either database.
"""

import base64

import pytest

from tests.registry_helpers import ALICE, assert_error, push_blob, push_image, send

pytestmark = pytest.mark.django_db

REPO = "alice/web"
NUL_USER = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"al\0ice:alice-pw").decode()}
NUL_PASSWORD = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"alice:pw\0").decode()}
NUL_TOKEN = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"alice:fgt_\0abc").decode()}


@pytest.fixture
def image(client, alice):
    return push_image(client, REPO, "1.0")


# /v2


@pytest.mark.parametrize(
    "credentials", [NUL_USER, NUL_PASSWORD, NUL_TOKEN], ids=["user", "password", "token"]
)
@pytest.mark.parametrize("path", ["/v2/", "/v2/token", f"/v2/{REPO}/tags/list"])
def test_basic_credentials_with_a_nul_are_invalid_credentials(client, alice, credentials, path):
    response = send(client, "GET", path, auth=credentials)

    assert_error(response, 401, "UNAUTHORIZED")
    assert response["WWW-Authenticate"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/%00/x/tags/list"),
        ("GET", "/v2/a%00b/x/manifests/v1"),
        ("HEAD", "/v2/%00/x/manifests/v1"),
        ("GET", "/v2/%00/x/blobs/sha256:" + "0" * 64),
        ("POST", "/v2/%00/x/blobs/uploads/"),
        ("PUT", "/v2/%00/x/manifests/v1"),
        ("GET", "/v2/" + "a" * 41 + "/x/tags/list"),
    ],
    ids=["tags", "manifest", "manifest-head", "blob", "upload", "manifest-put", "long-owner"],
)
def test_a_repository_whose_owner_cannot_exist_is_400_name_invalid(client, alice, method, path):
    response = send(client, method, path, auth=ALICE)

    assert response.status_code == 400
    if method != "HEAD":
        assert_error(response, 400, "NAME_INVALID")


def test_an_anonymous_request_for_an_owner_that_cannot_exist_is_400_name_invalid(client):
    assert_error(send(client, "GET", "/v2/%00/x/tags/list"), 400, "NAME_INVALID")


@pytest.mark.parametrize(
    "path",
    ["/v2/web/a%00/tags/list", "/v2/alice/we%00b/manifests/v1", "/v2/alice/web%00/blobs/uploads/"],
)
def test_an_image_name_with_a_nul_is_400_name_invalid(client, alice, path):
    method = "POST" if path.endswith("uploads/") else "GET"

    assert_error(send(client, method, path, auth=ALICE), 400, "NAME_INVALID")


@pytest.mark.parametrize(
    "path",
    [
        f"/v2/{REPO}/manifests/%00",
        f"/v2/{REPO}/manifests/sha256:%00",
        f"/v2/{REPO}/blobs/%00",
        f"/v2/{REPO}/blobs/uploads/%00",
        f"/v2/{REPO}/manifests/" + "9" * 5000,
    ],
    ids=["tag", "digest", "blob", "upload", "long-reference"],
)
def test_a_reference_with_a_nul_is_unknown(client, image, path):
    response = send(client, "GET", path, auth=ALICE)

    assert response.status_code == 404


@pytest.mark.parametrize(
    "scope",
    ["repository:%00/x:pull", "repository:alice/web:pu%00ll", "registry:catalog:*%00"],
)
def test_a_token_scope_with_a_nul_is_400(client, alice, scope):
    response = send(client, "GET", f"/v2/token?scope={scope}", auth=ALICE)

    assert_error(response, 400, "UNSUPPORTED")


def test_a_mount_from_a_repository_that_cannot_exist_starts_an_upload(client, image):
    """As the spec asks of any mount the registry cannot do: a new session, 202."""
    response = send(
        client,
        "POST",
        f"/v2/{REPO}/blobs/uploads/?mount={image.config_digest}&from=%00/x",
        auth=ALICE,
    )

    assert response.status_code == 202
    assert response["Location"].startswith(f"/v2/{REPO}/blobs/uploads/")


@pytest.mark.parametrize(
    "query",
    ["?digest=%00", "?digest=sha256:%00", "?mount=%00&from=alice/web"],
    ids=["digest", "digest-hex", "mount"],
)
def test_an_upload_query_with_a_nul_is_not_a_server_error(client, alice, query):
    response = send(client, "POST", f"/v2/{REPO}/blobs/uploads/{query}", b"x", auth=ALICE)

    assert response.status_code in (202, 400)


def test_a_blob_range_with_thousands_of_digits_is_answered(client, alice):
    digest = push_blob(client, REPO, b"0123456789")

    whole = send(
        client, "GET", f"/v2/{REPO}/blobs/{digest}", auth=ALICE, HTTP_RANGE="bytes=0-" + "9" * 5000
    )
    outside = send(
        client,
        "GET",
        f"/v2/{REPO}/blobs/{digest}",
        auth=ALICE,
        HTTP_RANGE="bytes=" + "9" * 5000 + "-",
    )

    assert whole.status_code == 206
    assert whole["Content-Range"] == "bytes 0-9/10"
    assert_error(outside, 416, "RANGE_NOT_SATISFIABLE")


# Web pages


@pytest.mark.parametrize(
    "path",
    [
        "/%00",
        "/%00/-/packages",
        "/%00/-/members",
        "/alice/-/packages/container/w%00b",
        "/alice/-/packages/container/web/%00",
        "/alice/-/packages/container/web/%00/-/delete",
    ],
)
def test_a_page_for_a_name_with_a_nul_is_404(client, image, path):
    assert client.get(path).status_code == 404


def test_a_page_number_past_any_database_integer_is_the_last_page(client, image):
    response = client.get("/alice/-/packages/container/web/-/versions?page=99999999999999999999")

    assert response.status_code == 200


def test_a_page_search_with_a_nul_is_400(client, image):
    assert client.get("/alice/-/packages?q=a%00b").status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/-/settings/tokens/99999999999999999999/revoke",
        "/alice/-/settings/cleanup/99999999999999999999",
    ],
)
def test_a_page_for_an_id_past_any_database_integer_is_404(client, alice, path):
    client.force_login(alice)

    assert client.post(path).status_code == 404


# REST API


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/packages/%00",
        "/api/v1/packages/alice/%00/web/1.0",
        "/api/v1/packages/alice/container/w%00b/1.0",
        "/api/v1/packages/alice/container/web/%00",
        "/api/v1/packages/alice/container/web/%00/files",
        "/api/v1/packages/alice?page=99999999999999999999",
    ],
)
def test_an_api_path_with_a_nul_is_404(client, image, path):
    response = client.get(path, **ALICE)

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize("query", ["q=a%00b", "type=%00", "type=Container"])
def test_an_api_filter_that_cannot_match_is_400(client, image, query):
    response = client.get(f"/api/v1/packages/alice?{query}", **ALICE)

    assert response.status_code == 400
    assert set(response.json()) == {"detail"}


def test_an_api_sign_in_with_a_nul_is_400(client, alice):
    response = client.post(
        "/api/v1/token/",
        {"username": "al\0ice", "password": "alice-pw"},
        content_type="application/json",
    )

    assert response.status_code == 400

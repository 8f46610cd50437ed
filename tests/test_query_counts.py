"""How many queries the requests a registry answers most make: pinned, so they cannot grow.

A manifest HEAD or GET finds its owner and manifest in one prepared query; who is
calling costs one more for a password remembered in the cache or a Bearer token, none
when anonymous; an access token as the password costs two (the token, its user).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from registry_helpers import ALICE, basic_auth, push_image, send

from packages_core.services import tokens

pytestmark = pytest.mark.django_db

SERVICE = "testserver"


@pytest.fixture
def image(client, alice):
    return push_image(client, "alice/app", "1.0")


def bearer_for(client, scope: str, auth) -> dict:
    response = client.get(f"/v2/token?service={SERVICE}&scope={scope}", **auth)
    assert response.status_code == 200, response.content
    return {"HTTP_AUTHORIZATION": f"Bearer {response.json()['token']}"}


def queries_of(client, method: str, path: str, **extra) -> int:
    send(client, method, path, **extra)  # warm: credentials remembered, SQL prepared
    with CaptureQueriesContext(connection) as captured:
        response = send(client, method, path, **extra)
    assert response.status_code == 200, response.content
    return len(captured)


@pytest.mark.parametrize("method", ["HEAD", "GET"])
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_a_manifest_pull_with_a_password_is_two_queries(client, image, method, by):
    reference = "1.0" if by == "tag" else image.digest

    assert queries_of(client, method, f"/v2/alice/app/manifests/{reference}", auth=ALICE) == 2


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_a_manifest_pull_with_a_bearer_token_is_two_queries(client, image, method):
    auth = bearer_for(client, "repository:alice/app:pull", ALICE)

    assert queries_of(client, method, "/v2/alice/app/manifests/1.0", **auth) == 2


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_an_anonymous_manifest_pull_is_one_query(client, image, method):
    assert queries_of(client, method, "/v2/alice/app/manifests/1.0") == 1


def test_a_manifest_pull_with_an_access_token_is_three_queries(client, image, alice):
    _, secret = tokens.create_access_token(alice, "ci", "read:package")

    count = queries_of(
        client, "HEAD", "/v2/alice/app/manifests/1.0", auth=basic_auth("alice", secret)
    )

    assert count == 3  # the token, its user, the manifest; the last use is written later


def test_an_unknown_tag_costs_one_query_more(client, image):
    send(client, "HEAD", "/v2/alice/app/manifests/nope", auth=ALICE)
    with CaptureQueriesContext(connection) as captured:
        response = send(client, "HEAD", "/v2/alice/app/manifests/nope", auth=ALICE)

    assert response.status_code == 404
    assert len(captured) == 3  # the user, the manifest (none), the owner alone


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_a_blob_pull_with_a_password_is_three_queries(client, image, method):
    path = f"/v2/alice/app/blobs/{image.layer_digests[0]}"

    assert queries_of(client, method, path, auth=ALICE) == 3  # the user, the owner, the blob


def test_an_anonymous_blob_pull_is_two_queries(client, image):
    assert queries_of(client, "HEAD", f"/v2/alice/app/blobs/{image.layer_digests[0]}") == 2

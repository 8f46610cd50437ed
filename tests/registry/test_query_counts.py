"""How many queries the requests a registry answers most make: pinned, so they cannot grow.

A manifest HEAD or GET finds its owner and manifest in one prepared query, or none while
the process may reuse what it found (REGISTRY["PULL_CACHE_SECONDS"]: no image changed
since). Who is calling costs nothing more while the process reuses the user's (and
access token's) row it read a moment ago (PACKAGES["IDENTITY_CACHE_SECONDS"]), else one
query per row.
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


@pytest.fixture(params=["rows reused", "rows read"])
def identity_queries(request, settings) -> int:
    """Queries per user or token row: none while a process reuses what it read a moment
    ago (the default), one each with IDENTITY_CACHE_SECONDS at 0.
    """
    if request.param == "rows reused":
        return 0
    settings.PACKAGES = {**getattr(settings, "PACKAGES", {}), "IDENTITY_CACHE_SECONDS": 0}
    return 1


@pytest.fixture(params=["found before", "asked"])
def manifest_queries(request, settings) -> int:
    """Queries for the manifest: none when this process found it before and no image
    changed since (the default), one with PULL_CACHE_SECONDS at 0.
    """
    if request.param == "found before":
        return 0
    settings.REGISTRY = {**getattr(settings, "REGISTRY", {}), "PULL_CACHE_SECONDS": 0}
    return 1


@pytest.mark.parametrize("method", ["HEAD", "GET"])
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_a_manifest_pull_with_a_password_is_the_manifest_query_and_the_user(
    client, image, method, by, identity_queries, manifest_queries
):
    reference = "1.0" if by == "tag" else image.digest

    count = queries_of(client, method, f"/v2/alice/app/manifests/{reference}", auth=ALICE)

    assert count == manifest_queries + identity_queries


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_a_manifest_pull_with_a_bearer_token_is_the_manifest_query_and_the_user(
    client, image, method, identity_queries, manifest_queries
):
    auth = bearer_for(client, "repository:alice/app:pull", ALICE)

    count = queries_of(client, method, "/v2/alice/app/manifests/1.0", **auth)

    assert count == manifest_queries + identity_queries


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_an_anonymous_manifest_pull_is_the_manifest_query(client, image, method, manifest_queries):
    assert queries_of(client, method, "/v2/alice/app/manifests/1.0") == manifest_queries


def test_a_manifest_pull_with_an_access_token_is_the_manifest_query_the_token_and_its_user(
    client, image, alice, identity_queries, manifest_queries
):
    _, secret = tokens.create_access_token(alice, "ci", "read:package")

    count = queries_of(
        client, "HEAD", "/v2/alice/app/manifests/1.0", auth=basic_auth("alice", secret)
    )

    assert count == manifest_queries + 2 * identity_queries  # the last use is written later


def test_an_unknown_tag_costs_one_query_more(client, image, identity_queries):
    send(client, "HEAD", "/v2/alice/app/manifests/nope", auth=ALICE)
    with CaptureQueriesContext(connection) as captured:
        response = send(client, "HEAD", "/v2/alice/app/manifests/nope", auth=ALICE)

    assert response.status_code == 404
    # The manifest (none: never kept), the owner alone, and maybe the user.
    assert len(captured) == 2 + identity_queries


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_a_blob_pull_with_a_password_is_the_owner_the_blob_and_the_user(
    client, image, method, identity_queries
):
    path = f"/v2/alice/app/blobs/{image.layer_digests[0]}"

    assert queries_of(client, method, path, auth=ALICE) == 2 + identity_queries


def test_an_anonymous_blob_pull_is_two_queries(client, image):
    assert queries_of(client, "HEAD", f"/v2/alice/app/blobs/{image.layer_digests[0]}") == 2

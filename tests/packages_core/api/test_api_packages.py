"""GET /api/v1/packages/<owner>: an owner's packages, their figures, filters and pages."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from packages_core.api.views import Pagination
from packages_core.services import versions
from packages_core.services.blobs import store_blob
from tests.api_helpers import client_with, packages_url
from tests.registry_helpers import image_config, push_blob, push_image

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [package["name"] for package in response.json()["results"]]


def test_lists_the_owners_packages_sorted_by_name(client, alice):
    push_image(client, "alice/web", "1.0")
    push_image(client, "alice/tools/cli", "1.0")
    push_image(client, "alice/api", "1.0")

    assert names(client_with().get(packages_url("alice"))) == ["api", "tools/cli", "web"]


def test_each_package_has_type_latest_version_count_size_and_update_time(client, alice):
    config = image_config(labels={"app": "web"})
    first = push_image(client, "alice/web", "1.0", config=config, layers=(b"base",))
    second = push_image(client, "alice/web", "2.0", config=config, layers=(b"base", b"app"))

    body = client_with().get(packages_url("alice")).json()

    assert body["count"] == 1
    (package,) = body["results"]
    assert package["name"] == "web"
    assert package["type"] == "container"
    assert package["latest_version"] == "2.0"
    assert package["version_count"] == 2
    # Distinct blobs: both manifests, the shared config and "base" once, and "app".
    shared = len(config) + len(b"base") + len(b"app")
    assert package["total_size"] == len(first.manifest) + len(second.manifest) + shared
    datetime.fromisoformat(package["updated"].replace("Z", "+00:00"))


def test_untagged_manifests_count_as_versions(client, alice):
    push_image(client, "alice/web", "1.0", layers=(b"old",))
    push_image(client, "alice/web", "1.0", layers=(b"new",))  # the old manifest stays by digest

    (package,) = client_with().get(packages_url("alice")).json()["results"]

    assert package["version_count"] == 2


def test_a_package_with_only_staged_blobs_is_not_listed(client, alice):
    push_image(client, "alice/web", "1.0")
    push_blob(client, "alice/pending", b"uploaded, never referenced")

    assert names(client_with().get(packages_url("alice"))) == ["web"]


def test_staged_blobs_count_neither_in_versions_nor_size(client, alice):
    pushed = push_image(client, "alice/web", "1.0", config=b"{}", layers=(b"layer",))
    push_blob(client, "alice/web", b"staged but not referenced by any manifest")

    (package,) = client_with().get(packages_url("alice")).json()["results"]

    assert package["version_count"] == 1
    assert package["latest_version"] == "1.0"
    assert package["total_size"] == len(pushed.manifest) + len(b"{}") + len(b"layer")


def test_q_filters_by_name_ignoring_case(client, alice):
    push_image(client, "alice/web-frontend", "1.0")
    push_image(client, "alice/tools/webhook", "1.0")
    push_image(client, "alice/db", "1.0")

    response = client_with().get(packages_url("alice"), {"q": "WEB"})

    assert names(response) == ["tools/webhook", "web-frontend"]


def test_type_filters_by_package_type(client, alice, store):
    push_image(client, "alice/web", "1.0")
    other = versions.get_or_create_package(alice.package_owner, "generic", "notes")
    version = versions.create_version(other, "0.1", creator=alice)
    versions.add_file(version, store_blob(io.BytesIO(b"notes"), store=store).blob, "notes.txt")

    everything = client_with().get(packages_url("alice"))
    containers = client_with().get(packages_url("alice"), {"type": "container"})
    generic = client_with().get(packages_url("alice"), {"type": "generic"})
    unknown = client_with().get(packages_url("alice"), {"type": "npm"})

    assert names(everything) == ["notes", "web"]
    assert names(containers) == ["web"]
    assert names(generic) == ["notes"]
    assert generic.json()["results"][0]["total_size"] == len(b"notes")
    assert names(unknown) == []


def test_results_are_paginated(client, alice, monkeypatch):
    monkeypatch.setattr(Pagination, "page_size", 2)
    for name in ("a", "b", "c"):
        push_image(client, f"alice/{name}", "1.0")

    first = client_with().get(packages_url("alice")).json()
    second = client_with().get(first["next"]).json()

    assert first["count"] == 3
    assert [p["name"] for p in first["results"]] == ["a", "b"]
    assert first["previous"] is None
    assert [p["name"] for p in second["results"]] == ["c"]
    assert second["next"] is None


@pytest.mark.parametrize("host_size", [None, 3])
def test_pages_hold_50_whatever_the_host_rest_framework_defaults(
    client, alice, settings, host_size
):
    settings.REST_FRAMEWORK = {} if host_size is None else {"PAGE_SIZE": host_size}
    for name in ("a", "b", "c", "d"):
        push_image(client, f"alice/{name}", "1.0")

    assert len(client_with().get(packages_url("alice")).json()["results"]) == 4


def test_a_page_past_the_end_is_404(client, alice):
    push_image(client, "alice/web", "1.0")

    assert client_with().get(packages_url("alice"), {"page": 2}).status_code == 404


def test_owner_names_ignore_case(client, alice):
    push_image(client, "alice/web", "1.0")

    assert names(client_with().get(packages_url("ALICE"))) == ["web"]


def test_an_owner_without_packages_has_an_empty_list(alice):
    body = client_with().get(packages_url("alice")).json()

    assert body == {"count": 0, "next": None, "previous": None, "results": []}


def test_an_unknown_owner_is_404(db):
    response = client_with().get(packages_url("nobody"))

    assert response.status_code == 404
    assert "detail" in response.json()

"""An image's latest is its most recently pushed tag of an image or index, never an
artifact that refers to one: the pages' "Latest tag", an image's address, the API's
`latest_version`.
"""

from __future__ import annotations

import pytest

from packages_core.models import Package
from registry.web import browse
from tests.api_helpers import packages_url, signed_in
from tests.registry_helpers import push_artifact, push_image
from tests.web_helpers import page

pytestmark = pytest.mark.django_db


@pytest.fixture
def image_then_artifacts(client, alice):
    """alice/web:1.0, then an artifact tagged `sbom` referring to it and one tagged
    `notes` with an artifactType alone, pushed after it.
    """
    image = push_image(client, "alice/web", "1.0")
    subject = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}
    push_artifact(client, "alice/web", "sbom", subject=subject)
    push_artifact(client, "alice/web", "notes", blobs=(b"notes",))
    return image


def test_latest_tag_is_never_an_artifact(client, image_then_artifacts):
    package = Package.objects.get(name="web")

    assert browse.latest_tag(package).version == "1.0"
    assert [row.latest_tag for row in browse.describe_images([package])] == ["1.0"]


def test_an_images_address_redirects_to_its_latest_image_not_an_artifact(
    client, image_then_artifacts
):
    response = page(client, "package", "alice", "web")

    assert response.status_code == 302
    assert response.url.endswith("/web/1.0")


def test_api_latest_version_is_never_an_artifact(client, alice, image_then_artifacts):
    packages = signed_in(alice).get(packages_url("alice")).json()["results"]

    assert [p["latest_version"] for p in packages] == ["1.0"]


def test_an_image_of_artifacts_alone_calls_its_newest_tag_latest(client, alice):
    push_artifact(client, "alice/sboms", "first")
    push_artifact(client, "alice/sboms", "second", blobs=(b"second",))

    assert browse.latest_tag(Package.objects.get(name="sboms")).version == "second"
    packages = signed_in(alice).get(packages_url("alice")).json()["results"]
    assert [p["latest_version"] for p in packages] == ["second"]


def test_an_index_can_be_latest(client, alice, multi_arch):
    assert browse.latest_tag(Package.objects.get(name="multi")).version == "latest"

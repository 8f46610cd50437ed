"""GET and DELETE /api/v1/packages/<owner>/<type>/<name>/<version>, and its /files."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.utils.dateparse import parse_datetime

from packages_core.models import PackageVersion
from packages_core.services import tallies, versions
from packages_core.services.blobs import store_blob
from registry.images import STAGING_VERSION
from tests.api_helpers import client_with, files_url, signed_in, version_url
from tests.registry_helpers import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    digest_of,
    image_config,
    push_blob,
    push_image,
    send,
)

pytestmark = pytest.mark.django_db


def test_a_tags_details(client, alice):
    config = image_config(architecture="arm64", labels={"org.example": "yes"})
    pushed = push_image(client, "alice/web", "1.0", config=config, layers=(b"one", b"two"))

    response = client_with().get(version_url("alice", "web", "1.0"))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"] == "1.0"
    assert body["is_tagged"] is True
    assert body["manifest_digest"] == pushed.digest
    assert body["manifest_media_type"] == OCI_MANIFEST
    assert body["total_size"] == len(pushed.manifest) + len(config) + len(b"one") + len(b"two")
    assert body["download_count"] == 0
    assert body["last_pulled"] is None
    assert body["metadata"]["platform"] == "linux/arm64"
    assert body["metadata"]["labels"] == {"org.example": "yes"}
    assert body["created"]
    assert body["updated"]
    assert body["html_url"] == "http://testserver/alice/-/packages/container/web/1.0"


def test_a_docker_manifests_media_type(client, alice):
    push_image(client, "alice/web", "1.0", docker=True)

    body = client_with().get(version_url("alice", "web", "1.0")).json()

    assert body["manifest_media_type"] == DOCKER_MANIFEST


def test_pulls_count_as_downloads(client, alice):
    push_image(client, "alice/web", "1.0")
    for _ in range(2):
        assert send(client, "GET", "/v2/alice/web/manifests/1.0").status_code == 200
    tallies.flush()

    body = client_with().get(version_url("alice", "web", "1.0")).json()
    assert body["download_count"] == 2
    pulled = PackageVersion.objects.get(version="1.0").last_pulled
    assert pulled is not None
    assert parse_datetime(body["last_pulled"]) == pulled


def test_an_untagged_manifest_is_found_by_its_digest(client, alice):
    old = push_image(client, "alice/web", "1.0", layers=(b"old",))
    push_image(client, "alice/web", "1.0", layers=(b"new",))

    response = client_with().get(version_url("alice", "web", old.digest))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"] == old.digest
    assert body["is_tagged"] is False
    assert body["manifest_digest"] == old.digest


def test_a_digest_names_only_an_untagged_version_not_a_tags_manifest(client, alice):
    tagged = push_image(client, "alice/web", "1.0")

    assert client_with().get(version_url("alice", "web", tagged.digest)).status_code == 404
    assert signed_in(alice).delete(version_url("alice", "web", tagged.digest)).status_code == 404
    assert client_with().get(version_url("alice", "web", "1.0")).status_code == 200


def test_package_names_may_contain_slashes(client, alice):
    pushed = push_image(client, "alice/team/app/server", "v1")

    details = client_with().get(version_url("alice", "team/app/server", "v1"))
    files = client_with().get(files_url("alice", "team/app/server", "v1"))

    assert details.status_code == 200, details.content
    assert details.json()["manifest_digest"] == pushed.digest
    assert files.status_code == 200, files.content
    assert files.json()["count"] == 3


def test_names_ignore_case(client, alice):
    push_image(client, "alice/web", "latest")

    assert client_with().get(version_url("ALICE", "WEB", "LATEST")).status_code == 200


def test_a_non_container_version_has_no_manifest(alice, store):
    package = versions.get_or_create_package(alice.package_owner, "generic", "notes")
    version = versions.create_version(package, "0.1", creator=alice)
    versions.add_file(version, store_blob(io.BytesIO(b"notes"), store=store).blob, "notes.txt")

    body = client_with().get(version_url("alice", "notes", "0.1", type="generic")).json()

    # The fields containers add are a container's own; no pages for an unregistered type.
    assert "manifest_digest" not in body
    assert "manifest_media_type" not in body
    assert body["html_url"] is None
    assert body["is_tagged"] is True
    assert body["total_size"] == len(b"notes")


@pytest.mark.parametrize(
    "url",
    [
        version_url("alice", "web", "2.0"),
        version_url("alice", "nothing", "1.0"),
        version_url("alice", "web", "1.0", type="npm"),
        version_url("alice", "web", "sha256:" + "0" * 64),
        files_url("alice", "web", "2.0"),
        files_url("alice", "nothing", "1.0"),
    ],
)
def test_unknown_packages_and_versions_are_404(client, alice, url):
    push_image(client, "alice/web", "1.0")

    assert client_with().get(url).status_code == 404


@pytest.mark.parametrize("url", [version_url, files_url])
def test_the_staging_version_is_never_visible(client, alice, url):
    push_blob(client, "alice/web", b"staged")
    assert PackageVersion.objects.filter(version=STAGING_VERSION, is_internal=True).exists()

    assert client_with().get(url("alice", "web", STAGING_VERSION)).status_code == 404
    assert signed_in(alice).get(url("alice", "web", STAGING_VERSION)).status_code == 404


def test_the_staging_version_cannot_be_deleted(client, alice):
    push_blob(client, "alice/web", b"staged")

    response = signed_in(alice).delete(version_url("alice", "web", STAGING_VERSION))

    assert response.status_code == 404
    assert PackageVersion.objects.filter(version=STAGING_VERSION).exists()


# Files


def test_a_versions_files(client, alice):
    config = image_config()
    pushed = push_image(client, "alice/web", "1.0", config=config, layers=(b"layer one",))

    response = client_with().get(files_url("alice", "web", "1.0"))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 3
    manifest, *others = body["results"]
    assert manifest == {
        "name": "manifest.json",
        "size": len(pushed.manifest),
        "digest": pushed.digest,
        "sha256": hashlib.sha256(pushed.manifest).hexdigest(),
        "sha512": hashlib.sha512(pushed.manifest).hexdigest(),
        "is_lead": True,
    }
    by_name = {file["name"]: file for file in others}
    assert set(by_name) == {pushed.config_digest, *pushed.layer_digests}
    layer = by_name[digest_of(b"layer one")]
    assert layer["digest"] == digest_of(b"layer one")
    assert layer["size"] == len(b"layer one")
    assert layer["sha512"] is None  # pushed by its sha256: its sha512 was never computed
    assert layer["is_lead"] is False
    assert by_name[pushed.config_digest]["size"] == len(config)


def test_a_tag_named_files_is_still_reachable_by_its_files_listing(client, alice):
    push_image(client, "alice/web", "files")

    response = client_with().get(files_url("alice", "web", "files"))

    assert response.status_code == 200
    assert response.json()["results"][0]["is_lead"] is True


# Deleting


def test_delete_removes_the_version(client, alice):
    push_image(client, "alice/web", "1.0", layers=(b"shared",))
    push_image(client, "alice/web", "2.0", layers=(b"shared", b"more"))

    response = signed_in(alice).delete(version_url("alice", "web", "1.0"))

    assert response.status_code == 204
    assert response.content == b""
    assert client_with().get(version_url("alice", "web", "1.0")).status_code == 404
    assert send(client, "GET", "/v2/alice/web/manifests/1.0").status_code == 404
    # The other tag and the blobs it shares are untouched.
    assert send(client, "GET", "/v2/alice/web/manifests/2.0").status_code == 200
    blob = send(client, "GET", f"/v2/alice/web/blobs/{digest_of(b'shared')}")
    assert blob.status_code == 200


def test_delete_an_untagged_manifest_by_digest(client, alice):
    old = push_image(client, "alice/web", "1.0", layers=(b"old",))
    push_image(client, "alice/web", "1.0", layers=(b"new",))

    response = signed_in(alice).delete(version_url("alice", "web", old.digest))

    assert response.status_code == 204
    assert send(client, "GET", f"/v2/alice/web/manifests/{old.digest}").status_code == 404
    assert send(client, "GET", "/v2/alice/web/manifests/1.0").status_code == 200


def test_delete_an_unknown_version_is_404(client, alice):
    push_image(client, "alice/web", "1.0")

    assert signed_in(alice).delete(version_url("alice", "web", "9.9")).status_code == 404
    assert signed_in(alice).delete(version_url("alice", "nope", "1.0")).status_code == 404


def test_the_package_list_forgets_a_deleted_version(client, alice):
    push_image(client, "alice/web", "1.0")
    push_image(client, "alice/web", "2.0", layers=(b"other",))

    signed_in(alice).delete(version_url("alice", "web", "2.0"))

    (package,) = client_with().get("/api/v1/packages/alice").json()["results"]
    assert package["version_count"] == 1
    assert package["latest_version"] == "1.0"

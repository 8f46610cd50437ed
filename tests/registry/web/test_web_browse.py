"""registry.web.browse: the read-only queries behind the pages, on their own."""

import pytest

from packages_core.models import Package, PackageBlob
from registry.web import browse
from tests.registry_helpers import image_config, put_manifest
from tests.web_helpers import push_by_digest

pytestmark = pytest.mark.django_db


def detail_of(package_name: str, reference: str):
    package = Package.objects.get(name=package_name)
    return browse.version_detail(browse.find_version(package, reference))


def test_history_that_does_not_match_the_layers_is_not_paired_with_them(client, alice):
    history = [{"created_by": "RUN one"}, {"created_by": "RUN two"}, {"created_by": "RUN three"}]
    pushed = push_by_digest(client, "alice/odd", image_config(history=history), [b"a", b"b"])

    layers = detail_of("odd", pushed.digest).layers

    assert [(layer.command, layer.digest) for layer in layers] == [
        ("RUN one", ""),
        ("RUN two", ""),
        ("RUN three", ""),
        ("", pushed.layer_digests[0]),
        ("", pushed.layer_digests[1]),
    ]


def test_platforms_of_hides_attestations_and_odd_entries():
    metadata = {
        "manifests": [
            {"platform": "linux/amd64", "digest": "sha256:a", "size": 1},
            {"platform": "unknown/unknown", "digest": "sha256:b", "size": 1},
            "not a dict",
            {"digest": "sha256:c"},
        ]
    }

    assert [c["digest"] for c in browse.platforms_of(metadata)] == ["sha256:a"]


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://example.com", True),
        ("http://example.com/x", True),
        ("javascript:alert(1)", False),
        ("data:text/html,hi", False),
        ("//example.com", False),
        ("https://", False),
        (42, False),
    ],
)
def test_links_are_only_http_urls(url, linked):
    assert browse.links_of({"project_url": url}) == ([("Project", url)] if linked else [])


@pytest.mark.parametrize(
    ("metadata", "media_type", "kind"),
    [
        ({"type": "helm"}, "application/vnd.oci.image.manifest.v1+json", browse.KIND_HELM),
        ({}, "application/vnd.oci.image.index.v1+json", browse.KIND_INDEX),
        ({"manifests": [{}]}, "", browse.KIND_INDEX),
        ({"artifact_type": "application/x"}, "", browse.KIND_ARTIFACT),
        ({"platform": "linux/amd64"}, "", browse.KIND_IMAGE),
    ],
)
def test_kind_of(metadata, media_type, kind):
    assert browse.kind_of(media_type, metadata) == kind


def test_find_version_prefers_the_version_named_by_the_reference(client, alice):
    body = push_by_digest(client, "alice/app", image_config(), [b"x"])
    assert put_manifest(client, "alice/app", "v1", body.manifest).status_code == 201
    package = Package.objects.get(name="app")

    assert browse.find_version(package, body.digest).version == body.digest
    assert browse.find_version(package, "V1").version == "v1"
    assert browse.find_version(package, "~staging") is None
    assert browse.find_version(package, "sha256:zz") is None


def test_a_version_whose_manifest_bytes_are_gone_still_has_a_page(client, web_image, store):
    blob = PackageBlob.objects.get(sha256=web_image.digest.partition(":")[2])
    store.delete(blob.storage_key)

    response = client.get("/alice/-/packages/container/web/1.0")

    assert response.status_code == 200
    assert web_image.digest in response.text
    assert response.context["detail"].layers == []

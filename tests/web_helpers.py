"""Fixtures for the web page tests: real images pushed through /v2, and page fetches.

Loaded for every test module by `pytest_plugins` in tests/conftest.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse

from packages_core.models import Owner
from packages_core.models.owners import Visibility
from packages_core.services import owners
from tests.registry_helpers import (
    ALICE,
    EMPTY_DIGEST,
    OCI_MANIFEST,
    PushedImage,
    artifact_manifest,
    basic_auth,
    canonical,
    digest_of,
    image_config,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    put_manifest,
)

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
SBOM_TYPE = "application/spdx+json"

LABELS = {
    "org.opencontainers.image.description": "A small web server.\nServes static files.",
    "org.opencontainers.image.licenses": "MIT",
    "org.opencontainers.image.authors": "Alice Example",
    "org.opencontainers.image.url": "https://example.com/web",
    "org.opencontainers.image.source": "https://git.example.com/alice/web",
    "org.opencontainers.image.documentation": "javascript:alert(1)",
    "com.example.team": "platform",
}
BASE_LAYER = b"base layer bytes" * 64
CURL_LAYER = b"curl layer"
HISTORY = [
    {"created_by": "/bin/sh -c #(nop) ADD file:0a1b2c in / "},
    {"created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
    {"created_by": "RUN /bin/sh -c apk add --no-cache curl # buildkit"},
]
CAROL = basic_auth("carol", "carol-pw")


def page(client, name: str, *args, query: str = "", **kwargs):
    """GET a page by URL name (in the pages' namespace unless one is given); the response
    text is in `response.text`.
    """
    name = name if ":" in name else f"registry_web:{name}"
    url = reverse(name, args=args or None, kwargs=kwargs or None)
    return client.get(f"{url}{query}")


def set_visibility(owner: Owner, visibility: str) -> Owner:
    owner.visibility = visibility
    owner.save(update_fields=["visibility"])
    return owner


@pytest.fixture
def web_image(client, alice) -> PushedImage:
    """alice/web:1.0, with labels, a build history and two layers."""
    config = image_config(labels=LABELS, history=HISTORY)
    return push_image(client, "alice/web", "1.0", layers=(BASE_LAYER, CURL_LAYER), config=config)


def push_by_digest(client, repo: str, config: bytes, layers: list[bytes], **fields) -> PushedImage:
    """An image pushed by digest only: an untagged version, as buildx pushes index children."""
    for blob in (config, *layers):
        push_blob(client, repo, blob)
    body = image_manifest(config, layers, **fields)
    assert put_manifest(client, repo, digest_of(body), body).status_code == 201
    return PushedImage(
        digest_of(body), body, digest_of(config), [digest_of(x) for x in layers], OCI_MANIFEST
    )


@dataclass(frozen=True)
class PushedIndex:
    digest: str
    amd64: PushedImage
    arm64: PushedImage
    attestation: PushedImage


@pytest.fixture
def multi_arch(client, alice) -> PushedIndex:
    """alice/multi:latest, an index of linux/amd64, linux/arm64/v8 and an attestation."""
    repo = "alice/multi"
    amd64 = push_by_digest(client, repo, image_config(), [b"amd64 layer"])
    arm64 = push_by_digest(
        client, repo, image_config(architecture="arm64", variant="v8"), [b"arm64 layer"]
    )
    attestation = push_by_digest(
        client, repo, b'{"attestation":true}', [b"in-toto"], config_type="application/vnd.in-toto"
    )
    body = index_manifest(
        [
            (amd64.manifest, {"os": "linux", "architecture": "amd64"}),
            (arm64.manifest, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
            (attestation.manifest, {"os": "unknown", "architecture": "unknown"}),
        ]
    )
    assert put_manifest(client, repo, "latest", body).status_code == 201
    return PushedIndex(digest_of(body), amd64, arm64, attestation)


@pytest.fixture
def sbom(client, web_image) -> PushedImage:
    """An untagged SBOM artifact whose subject is alice/web:1.0, as `oras attach` pushes it."""
    subject = {
        "mediaType": web_image.media_type,
        "digest": web_image.digest,
        "size": len(web_image.manifest),
    }
    blob = b'{"spdxVersion":"SPDX-2.3"}'
    push_blob(client, "alice/web", blob)
    body = artifact_manifest([blob], artifact_type=SBOM_TYPE, layer_type=SBOM_TYPE, subject=subject)
    assert put_manifest(client, "alice/web", digest_of(body), body).status_code == 201
    return PushedImage(digest_of(body), body, EMPTY_DIGEST, [digest_of(blob)], OCI_MANIFEST)


@pytest.fixture
def helm_chart(client, alice) -> PushedImage:
    """alice/charts/web:0.1.0, a Helm chart."""
    repo = "alice/charts/web"
    config = canonical(
        {
            "apiVersion": "v2",
            "name": "web",
            "version": "0.1.0",
            "appVersion": "1.2.3",
            "description": "A Helm chart for the web server",
        }
    )
    chart = b"chart tarball"
    push_blob(client, repo, config)
    push_blob(client, repo, chart)
    body = image_manifest(config, [chart], config_type=HELM_CONFIG, layer_type=HELM_CHART)
    response = put_manifest(client, repo, "0.1.0", body)
    assert response.status_code == 201, response.content
    return PushedImage(digest_of(body), body, digest_of(config), [digest_of(chart)], "")


@pytest.fixture
def carol(db):
    """A private user with an image, carol/secret:1."""
    return owners.create_user("carol", password="carol-pw", visibility=Visibility.PRIVATE)


@pytest.fixture
def carol_image(client, carol) -> PushedImage:
    return push_image(client, "carol/secret", "1", auth=CAROL, layers=(b"carol layer",))


def push_tags(client, repo: str, names, *, auth=ALICE) -> str:
    """Tag one small image under each name, in order; returns its digest."""
    config = image_config()
    push_blob(client, repo, config, auth=auth)
    push_blob(client, repo, b"layer", auth=auth)
    body = image_manifest(config, [b"layer"])
    for name in names:
        assert put_manifest(client, repo, name, body, auth=auth).status_code == 201
    return digest_of(body)


def push_distinct(client, repo: str, tag: str, n: int, *, auth=ALICE) -> PushedImage:
    """A small image unlike any other (so pushing it under an old tag leaves one untagged)."""
    config = image_config(labels={"n": str(n)})
    return push_image(client, repo, tag, auth=auth, layers=(f"layer {n}".encode(),), config=config)

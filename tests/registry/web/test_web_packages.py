"""The page of one image version: pull command, digest, layers, labels, platforms, referrers."""

import pytest
from django.urls import reverse

from packages_core.models import PackageVersion
from packages_core.services import tallies
from tests.registry_helpers import ALICE, send
from tests.web_helpers import (
    BASE_LAYER,
    CURL_LAYER,
    SBOM_TYPE,
    page,
    push_by_digest,
    push_distinct,
    push_tags,
)

pytestmark = pytest.mark.django_db


def version_page(client, reference, image="web", owner="alice"):
    return page(client, "package_version", owner=owner, image=image, reference=reference)


# An image


def test_version_page_shows_how_to_pull_the_tag(client, web_image):
    response = version_page(client, "1.0")

    assert response.status_code == 200
    assert "docker pull testserver/alice/web:1.0" in response.text


def test_pull_command_uses_the_external_url_when_set(client, web_image, settings):
    settings.REGISTRY = {**settings.REGISTRY, "EXTERNAL_URL": "https://cr.example.com:8443/sub"}

    response = version_page(client, "1.0")

    assert "docker pull cr.example.com:8443/alice/web:1.0" in response.text


def test_version_page_shows_the_manifest_digest(client, web_image):
    assert web_image.digest in version_page(client, "1.0").text


def test_version_page_shows_description_labels_authors_and_license(client, web_image):
    text = version_page(client, "1.0").text

    assert "A small web server.<br>Serves static files." in text
    assert "com.example.team" in text
    assert "platform" in text
    assert "Alice Example" in text
    assert "MIT" in text
    assert "linux/amd64" in text


def test_version_page_links_only_http_urls(client, web_image):
    text = version_page(client, "1.0").text

    assert 'href="https://example.com/web"' in text
    assert 'href="https://git.example.com/alice/web"' in text
    # The documentation label is javascript:, shown as a label value but never a link.
    assert 'href="javascript:' not in text


def test_version_page_lists_layers_beside_their_history_commands(client, web_image):
    response = version_page(client, "1.0")
    layers = response.context["detail"].layers

    assert [(layer.command, layer.size) for layer in layers] == [
        ("ADD file:0a1b2c in /", len(BASE_LAYER)),
        ('CMD ["sh"]', None),
        ("RUN /bin/sh -c apk add --no-cache curl # buildkit", len(CURL_LAYER)),
    ]
    assert "RUN /bin/sh -c apk add --no-cache curl # buildkit" in response.text
    assert "1.0\xa0KB" in response.text  # the base layer: 1024 bytes (filesizeformat)


def test_layers_without_history_are_listed_by_digest(client, alice):
    pushed = push_by_digest(client, "alice/bare", b'{"os":"linux"}', [b"one", b"two"])

    layers = version_page(client, pushed.digest, image="bare").context["detail"].layers

    assert [(layer.command, layer.digest) for layer in layers] == [
        ("", pushed.layer_digests[0]),
        ("", pushed.layer_digests[1]),
    ]


def test_version_page_shows_total_size_and_downloads(client, web_image):
    send(client, "GET", "/v2/alice/web/manifests/1.0", auth=ALICE)
    send(client, "GET", "/v2/alice/web/manifests/1.0", auth=ALICE)
    tallies.flush()

    response = version_page(client, "1.0")
    detail = response.context["detail"]

    expected = len(web_image.manifest) + len(BASE_LAYER) + len(CURL_LAYER)
    assert detail.total_size > expected  # and the config
    assert detail.version.download_count == 2
    assert "<dt>Downloads</dt><dd>2</dd>" in response.text
    pulled = detail.version.last_pulled.strftime("%Y-%m-%d %H:%M")
    _, _, shown = response.text.partition("<dt>Last pulled</dt><dd><time ")
    assert shown.split("</dd>")[0].count(f'title="{pulled} UTC"') == 1


def test_version_page_says_a_version_nobody_pulled_was_never_pulled(client, web_image):
    response = version_page(client, "1.0")

    assert "<dt>Last pulled</dt><dd>never</dd>" in response.text


def test_untagged_version_pulls_by_digest(client, alice):
    pushed = push_by_digest(client, "alice/bare", b"{}", [b"one"])

    response = version_page(client, pushed.digest, image="bare")

    assert response.status_code == 200
    assert f"docker pull testserver/alice/bare@{pushed.digest}" in response.text
    assert "untagged" in response.text


def test_tagged_manifest_is_also_found_by_its_digest(client, web_image):
    response = version_page(client, web_image.digest)

    assert response.status_code == 200
    assert response.context["detail"].version.version == "1.0"


def test_unknown_tag_or_digest_is_404(client, web_image):
    assert version_page(client, "2.0").status_code == 404
    assert version_page(client, "sha256:" + "0" * 64).status_code == 404
    assert version_page(client, "1.0", image="nothing").status_code == 404


def test_staging_version_has_no_page(client, web_image):
    assert PackageVersion.objects.filter(version="~staging").exists()

    assert version_page(client, "~staging").status_code == 404


def test_nested_image_names_have_pages(client, alice):
    push_tags(client, "alice/team/tools/cli", ["v1"])

    response = version_page(client, "v1", image="team/tools/cli")

    assert response.status_code == 200
    assert "docker pull testserver/alice/team/tools/cli:v1" in response.text


# Helm charts and artifacts


def test_helm_chart_pulls_with_helm(client, helm_chart):
    response = version_page(client, "0.1.0", image="charts/web")

    assert response.status_code == 200
    assert "helm pull oci://testserver/alice/charts/web --version 0.1.0" in response.text
    assert "A Helm chart for the web server" in response.text


def test_artifact_pulls_with_oras(client, sbom):
    response = version_page(client, sbom.digest)

    assert f"oras pull testserver/alice/web@{sbom.digest}" in response.text
    assert SBOM_TYPE in response.text


# Indexes


def test_index_lists_its_platforms_without_attestations(client, multi_arch):
    response = version_page(client, "latest", image="multi")
    platforms = response.context["detail"].platforms

    assert [(p.platform, p.digest) for p in platforms] == [
        ("linux/amd64", multi_arch.amd64.digest),
        ("linux/arm64/v8", multi_arch.arm64.digest),
    ]
    assert "unknown/unknown" not in response.text
    assert multi_arch.attestation.digest not in response.text


def test_index_platforms_link_to_their_own_pages(client, multi_arch):
    response = version_page(client, "latest", image="multi")
    child_url = reverse(
        "registry_web:package_version", args=["alice", "multi", multi_arch.arm64.digest]
    )

    assert f'href="{child_url}"' in response.text
    child = client.get(child_url)
    assert child.status_code == 200
    assert "linux/arm64/v8" in child.text
    assert f"docker pull testserver/alice/multi@{multi_arch.arm64.digest}" in child.text


def test_index_size_counts_its_children(client, multi_arch):
    detail = version_page(client, "latest", image="multi").context["detail"]

    amd64 = next(p for p in detail.platforms if p.platform == "linux/amd64")
    assert amd64.size > len(multi_arch.amd64.manifest)  # the child's config and layer too
    assert detail.total_size > sum(p.size for p in detail.platforms)


# Referrers


def test_referrers_are_listed_with_their_artifact_type(client, sbom, web_image):
    response = version_page(client, "1.0")
    referrers = response.context["detail"].referrers

    assert [(r.artifact_type, r.digest) for r in referrers] == [(SBOM_TYPE, sbom.digest)]
    sbom_url = reverse("registry_web:package_version", args=["alice", "web", sbom.digest])
    assert f'href="{sbom_url}"' in response.text


def test_version_without_referrers_says_so(client, web_image):
    assert "No signatures, SBOMs or other artifacts" in version_page(client, "1.0").text


# Recent tags


def test_version_page_shows_the_five_latest_tags_and_links_all_versions(client, alice):
    push_tags(client, "alice/tags", [f"v{n}" for n in range(1, 8)])

    response = version_page(client, "v1", image="tags")

    assert [v.version for v in response.context["detail"].recent_tags] == [
        "v7",
        "v6",
        "v5",
        "v4",
        "v3",
    ]
    assert reverse("registry_web:package_versions", args=["alice", "tags"]) in response.text
    assert "All 7 versions" in response.text


# The image's own address


def test_image_address_redirects_to_the_latest_tag(client, alice):
    push_tags(client, "alice/app", ["old"])
    push_distinct(client, "alice/app", "new", 1)

    response = page(client, "package", "alice", "app")

    assert response.status_code == 302
    assert response.url == reverse("registry_web:package_version", args=["alice", "app", "new"])


def test_nested_image_address_redirects_to_its_latest_tag(client, alice):
    push_tags(client, "alice/team/app", ["v1"])

    response = client.get("/alice/-/packages/container/team/app")

    assert response.status_code == 302
    assert response.url == reverse("registry_web:package_version", args=["alice", "team/app", "v1"])


def test_image_without_tags_redirects_to_its_versions(client, alice):
    push_by_digest(client, "alice/bare", b"{}", [b"one"])

    response = page(client, "package", "alice", "bare")

    assert response.status_code == 302
    assert response.url == reverse("registry_web:package_versions", args=["alice", "bare"])


def test_unknown_image_is_404(client, alice):
    assert page(client, "package", "alice", "nothing").status_code == 404


# Who sees the delete button


def test_writers_see_a_delete_link_and_readers_do_not(client, web_image, alice, bob):
    delete_url = reverse("registry_web:package_version_delete", args=["alice", "web", "1.0"])

    assert delete_url not in version_page(client, "1.0").text
    client.force_login(bob)
    assert delete_url not in version_page(client, "1.0").text
    client.force_login(alice)
    assert delete_url in version_page(client, "1.0").text

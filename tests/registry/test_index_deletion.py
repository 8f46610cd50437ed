"""A multi-arch image stays whole: no face deletes a platform from under its index.

/v2, the REST API, the pages and the Django admin all remove through
`packages_core.services.versions.remove_versions`, which asks the container type's
`ContainerRemovalPolicy`; deleting the index takes the platforms only it listed.
Cleanup rules skip what an index needs.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from packages_core.models import CleanupRule, PackageVersion
from packages_core.services.cleanup import preview_rule, run_cleanup
from registry.models import IndexChild
from tests.api_helpers import signed_in, version_url
from tests.registry_helpers import (
    ALICE,
    assert_error,
    index_manifest,
    push_image,
    put_manifest,
    send,
)

pytestmark = pytest.mark.django_db

AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}


def manifest_status(client, repo: str, reference: str) -> int:
    return send(client, "GET", f"/v2/{repo}/manifests/{reference}", auth=ALICE).status_code


def delete_manifest(client, repo: str, reference: str):
    return send(client, "DELETE", f"/v2/{repo}/manifests/{reference}", auth=ALICE)


def version_names(image: str) -> set[str]:
    return set(
        PackageVersion.objects.published()
        .filter(package__name=image)
        .values_list("version", flat=True)
    )


@pytest.fixture
def tagged_platform(client, alice):
    """alice/app:1.0, an image pushed by tag only, and alice/app:1.0-multi, an index
    listing it: the tag is the only version holding the platform (skopeo's copy of a
    single image, then of an index over it).
    """
    image = push_image(client, "alice/app", "1.0", layers=(b"amd64 layer",))
    other = push_image(client, "alice/app", "arm", layers=(b"arm64 layer",))
    body = index_manifest([(image.manifest, AMD64), (other.manifest, ARM64)])
    assert put_manifest(client, "alice/app", "1.0-multi", body).status_code == 201
    return image


# /v2


def test_deleting_a_platform_by_digest_is_refused_while_its_index_stays(client, multi_arch):
    response = delete_manifest(client, "alice/multi", multi_arch.arm64.digest)

    entry = assert_error(response, 409, "DENIED")
    assert "index latest" in entry["message"]
    assert entry["detail"]["referenced_by"] == ["index latest"]
    assert manifest_status(client, "alice/multi", multi_arch.arm64.digest) == 200


def test_deleting_by_digest_a_tagged_platform_is_refused(client, tagged_platform):
    response = delete_manifest(client, "alice/app", tagged_platform.digest)

    assert_error(response, 409, "DENIED")
    assert "1.0" in version_names("app")
    assert manifest_status(client, "alice/app", tagged_platform.digest) == 200


def test_deleting_the_tag_of_a_platform_keeps_its_manifest_untagged(client, tagged_platform):
    response = delete_manifest(client, "alice/app", "1.0")

    assert response.status_code == 202
    assert manifest_status(client, "alice/app", "1.0") == 404
    assert manifest_status(client, "alice/app", tagged_platform.digest) == 200
    assert tagged_platform.digest in version_names("app")


def test_deleting_a_tag_nothing_needs_still_deletes_its_manifest(client, alice):
    image = push_image(client, "alice/solo", "1.0")

    assert delete_manifest(client, "alice/solo", "1.0").status_code == 202
    assert manifest_status(client, "alice/solo", image.digest) == 404


def test_deleting_an_index_deletes_the_platforms_only_it_listed(client, multi_arch):
    assert delete_manifest(client, "alice/multi", multi_arch.digest).status_code == 202

    for child in (multi_arch.amd64, multi_arch.arm64, multi_arch.attestation):
        assert manifest_status(client, "alice/multi", child.digest) == 404
    assert version_names("multi") == set()
    assert not IndexChild.objects.exists()


def test_deleting_an_index_keeps_platforms_a_tag_or_another_index_uses(client, multi_arch):
    repo = "alice/multi"
    amd64_only = index_manifest([(multi_arch.amd64.manifest, AMD64)])
    assert put_manifest(client, repo, "amd64-only", amd64_only).status_code == 201
    assert put_manifest(client, repo, "arm", multi_arch.arm64.manifest).status_code == 201

    assert delete_manifest(client, repo, "latest").status_code == 202

    assert manifest_status(client, repo, multi_arch.amd64.digest) == 200
    assert manifest_status(client, repo, multi_arch.arm64.digest) == 200
    assert manifest_status(client, repo, multi_arch.attestation.digest) == 404
    assert version_names("multi") == {"amd64-only", "arm", multi_arch.amd64.digest}


def test_once_the_index_is_gone_its_platform_may_be_deleted(client, tagged_platform):
    assert delete_manifest(client, "alice/app", "1.0-multi").status_code == 202

    assert delete_manifest(client, "alice/app", tagged_platform.digest).status_code == 202
    assert manifest_status(client, "alice/app", tagged_platform.digest) == 404


# The REST API


def test_api_refuses_to_delete_a_platform_with_409(client, alice, multi_arch):
    response = signed_in(alice).delete(version_url("alice", "multi", multi_arch.arm64.digest))

    assert response.status_code == 409
    assert "index latest" in response.json()["detail"]
    assert multi_arch.arm64.digest in version_names("multi")


def test_api_deleting_the_index_deletes_its_platforms(client, alice, multi_arch):
    response = signed_in(alice).delete(version_url("alice", "multi", "latest"))

    assert response.status_code == 204
    assert version_names("multi") == set()


# The pages


def delete_page_url(reference: str, image: str = "multi") -> str:
    return reverse("registry_web:package_version_delete", args=["alice", image, reference])


def test_delete_page_of_a_platform_says_its_index_needs_it(client, alice, multi_arch):
    client.force_login(alice)

    response = client.get(delete_page_url(multi_arch.arm64.digest))

    assert response.status_code == 200
    assert "cannot be deleted" in response.text
    assert "index latest" in response.text
    assert "Delete this version?" not in response.text


def test_posting_the_delete_of_a_platform_is_refused_with_a_message(client, alice, multi_arch):
    client.force_login(alice)

    response = client.post(delete_page_url(multi_arch.arm64.digest))

    assert response.status_code == 302
    assert response.url == reverse(
        "registry_web:package_version", args=["alice", "multi", multi_arch.arm64.digest]
    )
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("index latest" in note for note in notes), notes
    assert multi_arch.arm64.digest in version_names("multi")


def test_deleting_a_platforms_tag_on_the_pages_keeps_its_manifest(client, alice, tagged_platform):
    client.force_login(alice)

    assert client.post(delete_page_url("1.0", image="app")).status_code == 302

    assert version_names("app") == {"1.0-multi", "arm", tagged_platform.digest}


def test_deleting_an_index_on_the_pages_deletes_its_platforms(client, alice, multi_arch):
    client.force_login(alice)

    assert client.post(delete_page_url("latest")).status_code == 302

    assert version_names("multi") == set()


# The Django admin


def admin_delete_url(version) -> str:
    return reverse("admin:packages_core_packageversion_delete", args=[version.pk])


def test_admin_refuses_to_delete_a_platform(client, site_admin, multi_arch):
    client.force_login(site_admin)
    platform = PackageVersion.objects.get(version=multi_arch.arm64.digest)

    confirmation = client.get(admin_delete_url(platform))
    response = client.post(admin_delete_url(platform), {"post": "yes"})

    assert "needed by index latest" in confirmation.text
    assert response.status_code == 200  # the page again, nothing deleted
    assert PackageVersion.objects.filter(pk=platform.pk).exists()


def test_admin_deletes_an_index_with_its_selected_platforms(client, site_admin, multi_arch):
    client.force_login(site_admin)
    selected = list(
        PackageVersion.objects.filter(version__in=["latest", multi_arch.arm64.digest]).values_list(
            "pk", flat=True
        )
    )
    url = reverse("admin:packages_core_packageversion_changelist")

    response = client.post(
        url, {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    )

    assert response.status_code == 302
    assert version_names("multi") == set()


# Cleanup rules


def test_a_cleanup_rule_skips_a_tag_an_index_needs(client, alice, tagged_platform):
    rule = CleanupRule.objects.create(
        owner=alice.package_owner, type="container", keep_count=0, remove_pattern=r"1\.0|arm"
    )

    # The preview says what the run does: nothing, as the index needs what it would take.
    assert preview_rule(rule) == []
    report = run_cleanup()

    assert report.versions == 0
    assert version_names("app") == {"1.0", "1.0-multi", "arm"}


def test_index_children_are_recorded_by_sha256(client, multi_arch):
    assert set(IndexChild.objects.values_list("digest", flat=True)) == {
        multi_arch.amd64.digest,
        multi_arch.arm64.digest,
        multi_arch.attestation.digest,
    }

"""Listings over /v2: an image's tags, the catalog of images, and the referrers of a manifest."""

import json

import pytest

from packages_core.models.owners import Visibility
from packages_core.services import owners
from tests.registry_helpers import (
    ALICE,
    ANONYMOUS,
    API_VERSION,
    API_VERSION_HEADER,
    BOB,
    OCI_INDEX,
    OCI_MANIFEST,
    ROOT,
    assert_error,
    digest_of,
    image_config,
    image_manifest,
    push_artifact,
    push_blob,
    push_image,
    put_manifest,
    send,
)

pytestmark = pytest.mark.django_db

REPO = "alice/img"
SBOM = "application/vnd.example.sbom.v1"
SIGNATURE = "application/vnd.example.signature.v1"


def tags(client, query: str = "", repo: str = REPO, auth=ALICE):
    return send(client, "GET", f"/v2/{repo}/tags/list{query}", auth=auth)


def catalog(client, query: str = "", auth=ALICE):
    return send(client, "GET", f"/v2/_catalog{query}", auth=auth)


def referrers(client, digest: str, query: str = "", repo: str = REPO):
    return send(client, "GET", f"/v2/{repo}/referrers/{digest}{query}", auth=ALICE)


def push_tags(client, names, repo: str = REPO, auth=ALICE) -> None:
    """Tag one small image under each name."""
    config = image_config()
    push_blob(client, repo, config, auth=auth)
    push_blob(client, repo, b"layer", auth=auth)
    body = image_manifest(config, [b"layer"])
    for name in names:
        assert put_manifest(client, repo, name, body, auth=auth).status_code == 201


def subject_of(image) -> dict:
    return {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest)}


# Tags


def test_tags_list_is_lowercase_and_sorted(client, alice):
    push_tags(client, ["b", "A", "c10", "C2", "latest"])

    response = tags(client)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response[API_VERSION_HEADER] == API_VERSION
    assert json.loads(response.content) == {
        "name": "alice/img",
        "tags": ["a", "b", "c10", "c2", "latest"],
    }
    assert "Link" not in response


def test_tags_list_of_nested_image_names_the_whole_repository(client, alice):
    push_tags(client, ["v1"], repo="alice/a/b/c")

    response = tags(client, repo="alice/a/b/c")

    assert json.loads(response.content) == {"name": "alice/a/b/c", "tags": ["v1"]}


def test_tags_list_n_limits_and_links_to_the_next_page(client, alice):
    push_tags(client, ["a", "b", "c", "d", "e"])

    response = tags(client, "?n=2")

    assert json.loads(response.content)["tags"] == ["a", "b"]
    assert response["Link"] == '</v2/alice/img/tags/list?n=2&last=b>; rel="next"'


def test_tags_list_last_continues_after_that_tag(client, alice):
    push_tags(client, ["a", "b", "c", "d", "e"])

    response = tags(client, "?n=2&last=b")

    assert json.loads(response.content)["tags"] == ["c", "d"]
    assert response["Link"] == '</v2/alice/img/tags/list?n=2&last=d>; rel="next"'


def test_tags_list_last_page_has_no_link(client, alice):
    push_tags(client, ["a", "b", "c", "d", "e"])

    response = tags(client, "?n=2&last=d")

    assert json.loads(response.content)["tags"] == ["e"]
    assert "Link" not in response


def test_tags_list_sorts_punctuation_bytewise(client, alice):
    push_tags(client, ["ab", "a_b", "a.b", "a-c", "a0"])

    assert json.loads(tags(client).content)["tags"] == ["a-c", "a.b", "a0", "a_b", "ab"]


def test_tags_list_last_without_n_lists_the_rest(client, alice):
    push_tags(client, ["a", "b", "c"])

    response = tags(client, "?last=a")

    assert json.loads(response.content)["tags"] == ["b", "c"]


def test_tags_list_n_0_is_empty(client, alice):
    push_tags(client, ["a", "b"])

    response = tags(client, "?n=0")

    assert response.status_code == 200
    assert json.loads(response.content)["tags"] == []
    assert "Link" not in response


@pytest.mark.parametrize(
    "n",
    ["9223372036854775808", "-1", "abc", "1.5", "\u0661", "9" * 5000],
    ids=["past-int64", "negative", "word", "fraction", "arabic-indic-one", "thousands-of-digits"],
)
def test_tags_list_n_that_is_not_a_count_is_400_pagination_number_invalid(client, alice, n):
    """As CNCF Distribution answers; Gitea read them as 0 (or all)."""
    push_tags(client, ["a"])

    assert_error(tags(client, f"?n={n}"), 400, "PAGINATION_NUMBER_INVALID")


def test_tags_list_n_up_to_int64_is_a_count(client, alice):
    push_tags(client, ["a", "b"])

    response = tags(client, "?n=9223372036854775807")

    assert json.loads(response.content)["tags"] == ["a", "b"]


@pytest.mark.parametrize(
    "last", ["%00", "a%00b", "-a", "x" * 129], ids=["nul", "nul-in", "dash", "long"]
)
def test_tags_list_last_that_is_not_a_tag_is_400(client, alice, last):
    push_tags(client, ["a"])

    assert_error(tags(client, f"?last={last}"), 400, "UNSUPPORTED")


def test_catalog_n_that_is_not_a_count_is_400_pagination_number_invalid(client, alice):
    assert_error(catalog(client, "?n=9223372036854775808"), 400, "PAGINATION_NUMBER_INVALID")


@pytest.mark.parametrize("last", ["%00", "alice/%00", "alice", "al%00ice/img"])
def test_catalog_last_that_is_not_a_repository_name_is_400_name_invalid(client, alice, last):
    assert_error(catalog(client, f"?last={last}"), 400, "NAME_INVALID")


def test_catalog_last_in_another_case_is_compared_lowercased(client, alice):
    push_tags(client, ["a"], repo="alice/b")
    push_tags(client, ["a"], repo="alice/c")

    response = catalog(client, "?last=Alice/b")

    assert json.loads(response.content)["repositories"] == ["alice/c"]


def test_tags_list_of_unknown_image_is_404_name_unknown(client, alice):
    assert_error(tags(client, repo="alice/nothing"), 404, "NAME_UNKNOWN")


def test_tags_list_leaves_out_manifests_pushed_by_digest(client, alice):
    push_tags(client, ["v1"])
    config = image_config(architecture="arm64")
    push_blob(client, REPO, config)
    body = image_manifest(config, [b"layer"])
    assert put_manifest(client, REPO, digest_of(body), body).status_code == 201

    assert json.loads(tags(client).content)["tags"] == ["v1"]


def test_tags_list_leaves_out_manifests_a_moved_tag_left_behind(client, alice):
    push_image(client, REPO, "latest", layers=(b"old",))
    push_image(client, REPO, "latest", layers=(b"new",))

    assert json.loads(tags(client).content)["tags"] == ["latest"]


def test_tags_list_never_lists_the_staging_version(client, alice):
    push_blob(client, REPO, b"staged only")

    response = tags(client)

    assert response.status_code == 200
    assert json.loads(response.content)["tags"] == []


# Catalog


def test_catalog_lists_images_with_a_real_version(client, alice):
    push_tags(client, ["v1"], repo="alice/tagged")
    push_blob(client, "alice/staged", b"staged only")

    response = catalog(client)

    assert response.status_code == 200
    assert response[API_VERSION_HEADER] == API_VERSION
    assert json.loads(response.content) == {"repositories": ["alice/tagged"]}
    assert "Link" not in response


def test_catalog_lists_images_with_only_untagged_manifests(client, alice):
    config = image_config()
    push_blob(client, "alice/untagged", config)
    push_blob(client, "alice/untagged", b"layer")
    body = image_manifest(config, [b"layer"])
    put_manifest(client, "alice/untagged", digest_of(body), body)

    assert json.loads(catalog(client).content)["repositories"] == ["alice/untagged"]


def test_catalog_is_sorted_across_owners(client, alice, bob):
    push_tags(client, ["v1"], repo="bob/zeta", auth=BOB)
    push_tags(client, ["v1"], repo="alice/web")
    push_tags(client, ["v1"], repo="alice/a/b")
    push_tags(client, ["v1"], repo="bob/alpha", auth=BOB)

    names = json.loads(catalog(client).content)["repositories"]

    assert names == ["alice/a/b", "alice/web", "bob/alpha", "bob/zeta"]


def test_catalog_hides_private_owner_from_others(client, alice, bob):
    push_tags(client, ["v1"], repo="alice/public")
    owners.create_org("secret", owner_user=alice, visibility=Visibility.PRIVATE)
    push_tags(client, ["v1"], repo="secret/hidden")

    assert json.loads(catalog(client, auth=BOB).content)["repositories"] == ["alice/public"]


def test_catalog_shows_private_owner_to_itself(client, alice):
    alice.package_owner.visibility = Visibility.PRIVATE
    alice.package_owner.save()
    push_tags(client, ["v1"], repo="alice/mine")

    assert json.loads(catalog(client).content)["repositories"] == ["alice/mine"]


def test_catalog_shows_private_owner_to_site_admin(client, alice, site_admin):
    alice.package_owner.visibility = Visibility.PRIVATE
    alice.package_owner.save()
    push_tags(client, ["v1"], repo="alice/mine")

    assert json.loads(catalog(client, auth=ROOT).content)["repositories"] == ["alice/mine"]


def test_catalog_shows_limited_owner_to_signed_in_users_only(client, alice, bob):
    alice.package_owner.visibility = Visibility.LIMITED
    alice.package_owner.save()
    push_tags(client, ["v1"], repo="alice/mine")

    assert json.loads(catalog(client, auth=BOB).content)["repositories"] == ["alice/mine"]
    assert json.loads(catalog(client, auth=ANONYMOUS).content)["repositories"] == []


def test_catalog_n_and_last_page_with_link(client, alice):
    for name in ("a", "b", "c", "d", "e"):
        push_tags(client, ["v1"], repo=f"alice/{name}")

    first = catalog(client, "?n=2")
    second = catalog(client, "?n=2&last=alice/b")
    third = catalog(client, "?n=2&last=alice/d")

    assert json.loads(first.content)["repositories"] == ["alice/a", "alice/b"]
    assert first["Link"] == '</v2/_catalog?n=2&last=alice%2Fb>; rel="next"'
    assert json.loads(second.content)["repositories"] == ["alice/c", "alice/d"]
    assert second["Link"] == '</v2/_catalog?n=2&last=alice%2Fd>; rel="next"'
    assert json.loads(third.content)["repositories"] == ["alice/e"]
    assert "Link" not in third


def test_catalog_lists_an_image_once_however_many_tags_it_has(client, alice):
    push_tags(client, ["v1", "v2", "v3"])

    assert json.loads(catalog(client).content)["repositories"] == ["alice/img"]


# Referrers


def test_referrers_is_an_oci_index_of_descriptors(client, alice):
    image = push_image(client, REPO, "v1")
    sbom = push_artifact(
        client,
        REPO,
        "sbom",
        subject=subject_of(image),
        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    )

    response = referrers(client, image.digest)

    assert response.status_code == 200
    assert response["Content-Type"] == OCI_INDEX
    assert response[API_VERSION_HEADER] == API_VERSION
    assert json.loads(response.content) == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": sbom.digest,
                "size": len(sbom.manifest),
                "artifactType": SBOM,
                "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
            }
        ],
    }


def test_referrers_lists_referrers_pushed_by_digest(client, alice):
    image = push_image(client, REPO, "v1")
    first = push_artifact(client, REPO, "tmp", subject=subject_of(image))
    signature = push_artifact(
        client, REPO, "tmp2", subject=subject_of(image), artifact_type=SIGNATURE
    )
    for artifact in (first, signature):
        assert put_manifest(client, REPO, artifact.digest, artifact.manifest).status_code == 201

    response = referrers(client, image.digest)

    listed = json.loads(response.content)["manifests"]
    assert sorted(d["digest"] for d in listed) == sorted([first.digest, signature.digest])


def test_referrer_without_artifact_type_lists_its_config_media_type(client, alice):
    image = push_image(client, REPO, "v1")
    referrer = push_image(client, REPO, "attached", layers=(b"other",), subject=subject_of(image))

    listed = json.loads(referrers(client, image.digest).content)["manifests"]

    assert listed == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": referrer.digest,
            "size": len(referrer.manifest),
            "artifactType": "application/vnd.oci.image.config.v1+json",
        }
    ]


def test_referrers_of_unknown_subject_is_an_empty_index(client, alice):
    push_image(client, REPO, "v1")

    response = referrers(client, digest_of(b"no such manifest"))

    assert response.status_code == 200
    assert response["Content-Type"] == OCI_INDEX
    assert json.loads(response.content) == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [],
    }


def test_referrers_filter_by_artifact_type(client, alice):
    image = push_image(client, REPO, "v1")
    push_artifact(client, REPO, "sbom", subject=subject_of(image))
    signature = push_artifact(
        client, REPO, "sig", subject=subject_of(image), artifact_type=SIGNATURE
    )

    response = referrers(client, image.digest, f"?artifactType={SIGNATURE}")

    assert response["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in json.loads(response.content)["manifests"]] == [signature.digest]


def test_referrers_without_filter_send_no_filters_applied(client, alice):
    image = push_image(client, REPO, "v1")
    push_artifact(client, REPO, "sbom", subject=subject_of(image))

    response = referrers(client, image.digest)

    assert "OCI-Filters-Applied" not in response
    assert len(json.loads(response.content)["manifests"]) == 1


def test_referrer_tagged_twice_appears_once(client, alice):
    image = push_image(client, REPO, "v1")
    sbom = push_artifact(client, REPO, "sbom", subject=subject_of(image))
    assert put_manifest(client, REPO, "sbom-again", sbom.manifest).status_code == 201

    listed = json.loads(referrers(client, image.digest).content)["manifests"]

    assert [d["digest"] for d in listed] == [sbom.digest]


def test_referrers_of_another_image_are_not_listed(client, alice):
    image = push_image(client, REPO, "v1")
    push_image(client, "alice/other", "v1")
    push_artifact(client, "alice/other", "sbom", subject=subject_of(image))

    listed = json.loads(referrers(client, image.digest).content)["manifests"]

    assert listed == []


def test_deleted_referrer_is_no_longer_listed(client, alice):
    image = push_image(client, REPO, "v1")
    sbom = push_artifact(client, REPO, "sbom", subject=subject_of(image))

    send(client, "DELETE", f"/v2/{REPO}/manifests/{sbom.digest}", auth=ALICE)

    assert json.loads(referrers(client, image.digest).content)["manifests"] == []


def test_referrers_with_malformed_digest_is_400_digest_invalid(client, alice):
    push_image(client, REPO, "v1")

    assert_error(referrers(client, "sha256:abc"), 400, "DIGEST_INVALID")


def test_referrers_with_path_that_is_no_digest_is_400_digest_invalid(client, alice):
    push_image(client, REPO, "v1")

    assert_error(referrers(client, "notadigest"), 400, "DIGEST_INVALID")


@pytest.mark.parametrize(
    "artifact_type",
    ["%00", "application/x%00", "no-slash", "a/b/c"],
    ids=["nul", "nul-in", "word", "two-slashes"],
)
def test_referrers_artifact_type_that_is_not_a_media_type_is_400(client, alice, artifact_type):
    image = push_image(client, REPO, "v1")

    response = referrers(client, image.digest, f"?artifactType={artifact_type}")

    assert_error(response, 400, "UNSUPPORTED")

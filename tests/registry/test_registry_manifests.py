"""Manifests over /v2: every kind pushed, validation, pulls, moving tags, deletes, metadata."""

import json

import pytest
from django.db import OperationalError
from django.db.models import QuerySet
from django.utils import timezone

from packages_core.models import PackageVersion
from packages_core.services import tallies
from tests.registry_helpers import (
    ALICE,
    API_VERSION,
    API_VERSION_HEADER,
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    EMPTY_CONTENT,
    EMPTY_DIGEST,
    OCI_INDEX,
    OCI_MANIFEST,
    assert_error,
    canonical,
    content,
    descriptor,
    digest_of,
    image_config,
    image_manifest,
    index_manifest,
    push_artifact,
    push_blob,
    push_image,
    put_manifest,
    send,
)

pytestmark = pytest.mark.django_db

REPO = "alice/img"
AMD64 = {"os": "linux", "architecture": "amd64"}
ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}


@pytest.fixture(autouse=True)
def _users(alice):
    """alice pushes to her own owner."""


def manifest_url(reference: str, repo: str = REPO) -> str:
    return f"/v2/{repo}/manifests/{reference}"


def get(client, reference: str, repo: str = REPO):
    return send(client, "GET", manifest_url(reference, repo), auth=ALICE)


def head(client, reference: str, repo: str = REPO):
    return send(client, "HEAD", manifest_url(reference, repo), auth=ALICE)


def version(reference: str, image: str = "img") -> PackageVersion:
    return PackageVersion.objects.get(package__name=image, version=reference)


def pushed_blobs(client, config: bytes, layers: list[bytes]) -> None:
    push_blob(client, REPO, config)
    for layer in layers:
        push_blob(client, REPO, layer)


# Pushing each kind of manifest


def test_put_oci_image_manifest_is_201_with_location_and_digest(client):
    config, layers = image_config(), [b"layer"]
    pushed_blobs(client, config, layers)
    body = image_manifest(config, layers)

    response = put_manifest(client, REPO, "v1", body)

    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == digest_of(body)
    assert response["Location"] == manifest_url(digest_of(body))
    assert response[API_VERSION_HEADER] == API_VERSION
    assert "OCI-Subject" not in response


def test_put_docker_schema2_manifest(client):
    image = push_image(client, REPO, "v1", docker=True)

    response = get(client, "v1")

    assert response.status_code == 200
    assert response["Content-Type"] == DOCKER_MANIFEST
    assert content(response) == image.manifest


def test_put_oci_index_of_pushed_manifests(client):
    amd = push_image(client, REPO, "amd", layers=(b"amd layer",))
    arm = push_image(
        client, REPO, "arm", layers=(b"arm layer",), config=image_config(architecture="arm64")
    )
    body = index_manifest([(amd.manifest, AMD64), (arm.manifest, ARM64)])

    response = put_manifest(client, REPO, "multi", body)

    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == digest_of(body)
    pulled = get(client, "multi")
    assert pulled["Content-Type"] == OCI_INDEX
    assert content(pulled) == body


def test_put_index_of_manifests_pushed_by_digest(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    child = image_manifest(config, [b"layer"])
    assert put_manifest(client, REPO, digest_of(child), child).status_code == 201
    body = index_manifest([(child, AMD64)])

    response = put_manifest(client, REPO, "latest", body)

    assert response.status_code == 201


def test_put_docker_manifest_list(client):
    child = push_image(client, REPO, "amd", docker=True)
    body = index_manifest(
        [(child.manifest, AMD64)], media_type=DOCKER_MANIFEST_LIST, child_type=DOCKER_MANIFEST
    )

    response = put_manifest(client, REPO, "multi", body)

    assert response.status_code == 201
    assert get(client, "multi")["Content-Type"] == DOCKER_MANIFEST_LIST


def test_put_artifact_with_artifact_type_and_uploaded_empty_config(client):
    push_blob(client, REPO, EMPTY_CONTENT)

    artifact = push_artifact(client, REPO, "sbom")

    assert content(get(client, "sbom")) == artifact.manifest
    assert version("sbom").metadata["artifact_type"] == "application/vnd.example.sbom.v1"


def test_put_artifact_without_uploading_the_empty_config(client):
    artifact = push_artifact(client, REPO, "sbom")

    assert get(client, "sbom").status_code == 200
    blob = send(client, "GET", f"/v2/{REPO}/blobs/{EMPTY_DIGEST}", auth=ALICE)
    assert blob.status_code == 200
    assert content(blob) == EMPTY_CONTENT
    assert artifact.config_digest == EMPTY_DIGEST


def test_put_manifest_without_media_type_field_uses_the_content_type(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(config, [b"layer"], media_type=None)

    response = put_manifest(client, REPO, "v1", body, media_type=OCI_MANIFEST)

    assert response.status_code == 201
    assert get(client, "v1")["Content-Type"] == OCI_MANIFEST


def test_content_type_parameters_are_not_stored(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(config, [b"layer"])

    put_manifest(client, REPO, "v1", body, media_type=OCI_MANIFEST + "; charset=utf-8")

    assert get(client, "v1")["Content-Type"] == OCI_MANIFEST


def test_put_same_manifest_again_is_201(client):
    image = push_image(client, REPO, "v1")

    response = put_manifest(client, REPO, "v1", image.manifest)

    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == image.digest


def test_put_by_digest_that_matches_is_201(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(config, [b"layer"])

    response = put_manifest(client, REPO, digest_of(body), body)

    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == digest_of(body)
    assert content(get(client, digest_of(body))) == body


def test_put_by_sha512_digest_that_matches_is_201(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(config, [b"layer"])

    response = put_manifest(client, REPO, digest_of(body, "sha512"), body)

    assert response.status_code == 201
    assert content(get(client, digest_of(body, "sha512"))) == body


def test_get_by_sha256_of_manifest_pushed_by_sha512_answers_with_the_sha256_digest(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(config, [b"layer"])
    put_manifest(client, REPO, digest_of(body, "sha512"), body)

    response = get(client, digest_of(body))

    assert response.status_code == 200
    assert response["Docker-Content-Digest"] == digest_of(body)


def test_index_may_name_by_sha256_a_child_pushed_by_sha512(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    child = image_manifest(config, [b"layer"])
    put_manifest(client, REPO, digest_of(child, "sha512"), child)
    body = index_manifest([(child, AMD64)])

    response = put_manifest(client, REPO, "multi", body)

    assert response.status_code == 201


# Refused manifests


def test_put_manifest_over_10_mib_is_413(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(config, [b"layer"], annotations={"padding": "x" * (10 * 1024 * 1024)})

    response = put_manifest(client, REPO, "huge", body)

    assert_error(response, 413, "MANIFEST_INVALID")
    assert not PackageVersion.objects.filter(version="huge").exists()


def test_put_manifest_of_exactly_10_mib_is_accepted(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    base = image_manifest(config, [b"layer"], annotations={"padding": ""})
    padding = "x" * (10 * 1024 * 1024 - len(base))
    body = image_manifest(config, [b"layer"], annotations={"padding": padding})
    assert len(body) == 10 * 1024 * 1024

    response = put_manifest(client, REPO, "big", body)

    assert response.status_code == 201


MiB = 1024 * 1024


def padded_index(client, size: int) -> bytes:
    """A valid index of exactly `size` bytes over one pushed image, padded in an annotation."""
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    child = image_manifest(config, [b"layer"])
    assert put_manifest(client, REPO, "child", child).status_code == 201
    base = index_manifest([(child, AMD64)], annotations={"padding": ""})
    body = index_manifest([(child, AMD64)], annotations={"padding": "x" * (size - len(base))})
    assert len(body) == size
    return body


def test_put_index_of_11_mib_is_accepted_when_max_manifest_size_is_raised(client, settings):
    settings.REGISTRY = {"MAX_MANIFEST_SIZE": 20 * MiB}
    body = padded_index(client, 11 * MiB)

    response = put_manifest(client, REPO, "big", body)

    assert response.status_code == 201, response.content[:300]
    assert get(client, "big").content == body


def test_put_index_of_11_mib_is_413_under_the_default_limit(client):
    body = padded_index(client, 11 * MiB)

    response = put_manifest(client, REPO, "big", body)

    assert_error(response, 413, "MANIFEST_INVALID")
    assert not PackageVersion.objects.filter(version="big").exists()


def test_put_manifest_over_a_lowered_max_manifest_size_is_413(client, settings):
    settings.REGISTRY = {"MAX_MANIFEST_SIZE": 4096}
    body = padded_index(client, 4097)

    response = put_manifest(client, REPO, "big", body)

    assert_error(response, 413, "MANIFEST_INVALID")
    assert "4096 bytes" in response.json()["errors"][0]["message"]


def test_put_schema1_manifest_is_501_unsupported(client):
    body = canonical({"schemaVersion": 1, "name": "alice/img", "tag": "v1", "fsLayers": []})

    response = put_manifest(
        client, REPO, "v1", body, media_type="application/vnd.docker.distribution.manifest.v1+json"
    )

    assert_error(response, 501, "UNSUPPORTED")


@pytest.mark.parametrize("version", ["missing", "2", 2.5, 2.0, True])
def test_put_manifest_whose_schema_version_is_not_the_number_2_is_400_manifest_invalid(
    client, version
):
    """501 UNSUPPORTED is for schema 1 only; a broken schemaVersion is a broken document."""
    document = json.loads(push_image(client, REPO, "base").manifest)
    if version == "missing":
        del document["schemaVersion"]
    else:
        document["schemaVersion"] = version

    response = put_manifest(client, REPO, "v1", json.dumps(document).encode())

    assert_error(response, 400, "MANIFEST_INVALID")


@pytest.mark.parametrize(
    "field",
    [
        {"annotations": {"org.example": "a\u0000b"}},
        {"annotations": {"org.example\u0000": "b"}},
        {"artifactType": "application/x\u0000y"},
    ],
    ids=["annotation-value", "annotation-key", "artifact-type"],
)
def test_put_manifest_holding_a_nul_character_is_400_manifest_invalid(client, field):
    """PostgreSQL's JSON cannot hold U+0000, and no manifest field needs it."""
    document = json.loads(push_image(client, REPO, "base").manifest)
    document.update(field)

    response = put_manifest(client, REPO, "v1", json.dumps(document).encode())

    assert_error(response, 400, "MANIFEST_INVALID")


def test_put_manifest_whose_config_holds_a_nul_character_records_its_labels_without_it(client):
    """The config is the image's own: pushed as it is, its labels recorded without NUL."""
    config = image_config(labels={"org.example": "a\u0000b", "c\u0000": "d"})

    push_image(client, REPO, "v1", config=config)

    version = PackageVersion.objects.get(version="v1")
    assert version.metadata["labels"] == {"org.example": "ab", "c": "d"}


def test_put_manifest_whose_chunked_body_breaks_is_400_manifest_invalid(client):
    pushed = push_image(client, REPO, "base")

    response = client.generic(
        "PUT",
        manifest_url("v1"),
        b"",
        content_type=OCI_MANIFEST,
        **ALICE,
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": BrokenStream(pushed.manifest[:20])},
    )

    assert_error(response, 400, "MANIFEST_INVALID")
    assert not PackageVersion.objects.filter(version="v1").exists()


class BrokenStream:
    """A body that gives `data` and then fails as gunicorn's reader fails on a malformed
    chunk or a client gone mid-body (an IOError).
    """

    def __init__(self, data: bytes):
        self._data = data

    def read(self, size: int = -1) -> bytes:
        if not self._data:
            raise OSError("Invalid chunk size: b'zz'")
        data, self._data = self._data[:size], self._data[size:]
        return data

    readline = read


def test_put_invalid_json_is_400_manifest_invalid(client):
    response = put_manifest(client, REPO, "v1", b"{not json", media_type=OCI_MANIFEST)

    assert_error(response, 400, "MANIFEST_INVALID")


def test_put_empty_body_is_400_manifest_invalid(client):
    response = send(client, "PUT", manifest_url("v1"), auth=ALICE, content_type=OCI_MANIFEST)

    assert_error(response, 400, "MANIFEST_INVALID")


def test_put_manifest_whose_content_type_contradicts_its_media_type_is_400(client):
    image = push_image(client, REPO, "v1")

    response = put_manifest(client, REPO, "v2", image.manifest, media_type=DOCKER_MANIFEST)

    assert_error(response, 400, "MANIFEST_INVALID")


def test_put_manifest_with_missing_layer_is_404_blob_unknown(client):
    config = image_config()
    push_blob(client, REPO, config)
    body = image_manifest(config, [b"never pushed"])

    response = put_manifest(client, REPO, "v1", body)

    error = assert_error(response, 404, "BLOB_UNKNOWN")
    assert error["detail"]["digest"] == digest_of(b"never pushed")
    assert not PackageVersion.objects.filter(version="v1").exists()


def test_refused_manifest_push_to_a_new_image_leaves_no_image(client):
    body = image_manifest(image_config(), [b"never pushed"])

    put_manifest(client, REPO, "v1", body)

    response = send(client, "GET", f"/v2/{REPO}/tags/list", auth=ALICE)
    assert_error(response, 404, "NAME_UNKNOWN")


def test_put_manifest_with_missing_config_is_404_blob_unknown(client):
    config = image_config()
    push_blob(client, REPO, b"layer")
    body = image_manifest(config, [b"layer"])

    response = put_manifest(client, REPO, "v1", body)

    error = assert_error(response, 404, "BLOB_UNKNOWN")
    assert error["detail"]["digest"] == digest_of(config)


def test_put_manifest_with_layer_of_another_image_is_404_blob_unknown(client):
    config = image_config()
    push_blob(client, REPO, config)
    push_blob(client, "alice/other", b"layer")
    body = image_manifest(config, [b"layer"])

    response = put_manifest(client, REPO, "v1", body)

    assert_error(response, 404, "BLOB_UNKNOWN")


def test_put_manifest_with_wrong_layer_size_is_400_size_invalid(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(config, [b"layer"], layer_sizes=[999])

    response = put_manifest(client, REPO, "v1", body)

    assert_error(response, 400, "SIZE_INVALID")


def test_put_index_with_missing_child_is_404_manifest_blob_unknown(client):
    present = push_image(client, REPO, "amd")
    missing = image_manifest(image_config(architecture="arm64"), [b"arm"])
    body = index_manifest([(present.manifest, AMD64), (missing, ARM64)])

    response = put_manifest(client, REPO, "multi", body)

    error = assert_error(response, 404, "MANIFEST_BLOB_UNKNOWN")
    assert error["detail"]["digest"] == digest_of(missing)


def test_put_index_with_child_of_another_image_is_404_manifest_blob_unknown(client):
    child = push_image(client, "alice/other", "amd")
    body = index_manifest([(child.manifest, AMD64)])

    response = put_manifest(client, REPO, "multi", body)

    assert_error(response, 404, "MANIFEST_BLOB_UNKNOWN")


def test_put_by_digest_that_does_not_match_the_body_is_400_digest_invalid(client):
    image = push_image(client, REPO, "v1")

    response = put_manifest(client, REPO, digest_of(b"something else"), image.manifest)

    assert_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("tag", ["-leading-dash", ".dot", "bad!tag", "x" * 129])
def test_put_with_invalid_tag_is_400_manifest_invalid(client, tag):
    image = push_image(client, REPO, "v1")

    response = put_manifest(client, REPO, tag, image.manifest)

    assert_error(response, 400, "MANIFEST_INVALID")


def test_put_manifest_with_negative_size_is_400_manifest_invalid(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(config, [b"layer"], layer_sizes=[-1])

    response = put_manifest(client, REPO, "v1", body)

    assert_error(response, 400, "MANIFEST_INVALID")


# Pulling


def test_get_returns_stored_media_type_and_exact_bytes(client):
    body_text = json.dumps(
        json.loads(push_image(client, REPO, "tmp").manifest), indent=3
    ).encode()  # the same manifest, formatted differently: other bytes, other digest

    assert put_manifest(client, REPO, "v1", body_text).status_code == 201
    response = get(client, "v1")

    assert response.status_code == 200
    assert response["Content-Type"] == OCI_MANIFEST
    assert content(response) == body_text
    assert response["Docker-Content-Digest"] == digest_of(body_text)
    assert response["Content-Length"] == str(len(body_text))
    assert response["ETag"] == f'"{digest_of(body_text)}"'


def test_get_by_digest(client):
    image = push_image(client, REPO, "v1")

    response = get(client, image.digest)

    assert response.status_code == 200
    assert content(response) == image.manifest
    assert response["Docker-Content-Digest"] == image.digest


def test_head_has_length_digest_and_media_type(client):
    image = push_image(client, REPO, "v1")

    response = head(client, "v1")

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(image.manifest))
    assert response["Docker-Content-Digest"] == image.digest
    assert response["Content-Type"] == OCI_MANIFEST
    assert content(response) == b""


def test_tag_is_case_insensitive(client):
    image = push_image(client, REPO, "Latest")

    assert content(get(client, "latest")) == image.manifest
    assert content(get(client, "LATEST")) == image.manifest


def test_repushing_identical_bytes_with_another_content_type_keeps_the_stored_type(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(
        config, [b"layer"], media_type=None, config_type=DOCKER_CONFIG, layer_type=DOCKER_LAYER
    )
    assert put_manifest(client, REPO, "v1", body, media_type=DOCKER_MANIFEST).status_code == 201

    response = put_manifest(client, REPO, "v2", body, media_type=OCI_MANIFEST)

    assert response.status_code == 201
    assert get(client, "v2")["Content-Type"] == DOCKER_MANIFEST
    assert head(client, digest_of(body))["Content-Type"] == DOCKER_MANIFEST


def test_moving_a_tag_leaves_the_old_manifest_reachable_by_digest(client):
    old = push_image(client, REPO, "latest", layers=(b"old",))

    new = push_image(client, REPO, "latest", layers=(b"new",))

    assert content(get(client, "latest")) == new.manifest
    assert content(get(client, old.digest)) == old.manifest
    assert (
        send(client, "GET", f"/v2/{REPO}/blobs/{old.layer_digests[0]}", auth=ALICE).status_code
        == 200
    )


def test_get_counts_a_download_and_its_time_and_head_does_not(client):
    push_image(client, REPO, "v1")

    head(client, "v1")
    head(client, "v1")
    before = timezone.now()
    get(client, "v1")
    assert version("v1").download_count == 0  # tallied, not yet written
    assert version("v1").last_pulled is None

    assert tallies.flush() == 1
    assert version("v1").download_count == 1
    assert before <= version("v1").last_pulled <= timezone.now()


def test_pulls_go_on_when_download_counts_cannot_be_written(client, monkeypatch):
    push_image(client, REPO, "v1")
    get(client, "v1")

    def refuse(*args, **kwargs):
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(QuerySet, "update", refuse)
    assert tallies.flush() == 0  # kept for the next try
    assert get(client, "v1").status_code == 200
    monkeypatch.undo()

    assert tallies.flush() == 2
    assert version("v1").download_count == 2


def test_unknown_tag_is_404_manifest_unknown(client):
    push_image(client, REPO, "v1")

    error = assert_error(get(client, "v2"), 404, "MANIFEST_UNKNOWN")
    assert error["detail"] == {"reference": "v2"}


def test_unknown_digest_is_404_manifest_unknown(client):
    push_image(client, REPO, "v1")

    assert_error(get(client, digest_of(b"nothing")), 404, "MANIFEST_UNKNOWN")


def test_head_of_unknown_manifest_is_404_without_body(client):
    response = head(client, "v1")

    assert response.status_code == 404
    assert response[API_VERSION_HEADER] == API_VERSION
    assert content(response) == b""


def test_manifest_of_another_image_is_404_manifest_unknown(client):
    image = push_image(client, "alice/other", "v1")

    assert_error(get(client, image.digest), 404, "MANIFEST_UNKNOWN")


def test_staging_version_cannot_be_pulled(client):
    push_blob(client, REPO, b"layer")

    assert_error(get(client, "~staging"), 404, "MANIFEST_UNKNOWN")


def test_blob_digest_is_not_a_manifest(client):
    image = push_image(client, REPO, "v1")

    assert_error(get(client, image.layer_digests[0]), 404, "MANIFEST_UNKNOWN")


# Deleting


def test_delete_by_tag_is_202_and_the_tag_is_gone(client):
    push_image(client, REPO, "v1")
    push_image(client, REPO, "v2", layers=(b"other",))

    response = send(client, "DELETE", manifest_url("v1"), auth=ALICE)

    assert response.status_code == 202
    assert response[API_VERSION_HEADER] == API_VERSION
    assert_error(get(client, "v1"), 404, "MANIFEST_UNKNOWN")
    tags = json.loads(send(client, "GET", f"/v2/{REPO}/tags/list", auth=ALICE).content)["tags"]
    assert tags == ["v2"]


def test_delete_by_digest_is_202_and_it_is_gone(client):
    image = push_image(client, REPO, "v1")

    response = send(client, "DELETE", manifest_url(image.digest), auth=ALICE)

    assert response.status_code == 202
    assert_error(get(client, image.digest), 404, "MANIFEST_UNKNOWN")
    assert_error(get(client, "v1"), 404, "MANIFEST_UNKNOWN")


def test_delete_by_digest_removes_every_tag_of_it(client):
    image = push_image(client, REPO, "v1")
    put_manifest(client, REPO, "v2", image.manifest)

    send(client, "DELETE", manifest_url(image.digest), auth=ALICE)

    assert_error(get(client, "v2"), 404, "MANIFEST_UNKNOWN")


def test_delete_by_sha256_of_manifest_pushed_by_sha512(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(config, [b"layer"])
    put_manifest(client, REPO, digest_of(body, "sha512"), body)

    response = send(client, "DELETE", manifest_url(digest_of(body)), auth=ALICE)

    assert response.status_code == 202
    assert_error(get(client, digest_of(body, "sha512")), 404, "MANIFEST_UNKNOWN")


def test_delete_unknown_tag_is_404_manifest_unknown(client):
    push_image(client, REPO, "v1")

    response = send(client, "DELETE", manifest_url("nope"), auth=ALICE)

    assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_delete_unknown_digest_is_404_manifest_unknown(client):
    push_image(client, REPO, "v1")

    response = send(client, "DELETE", manifest_url(digest_of(b"nothing")), auth=ALICE)

    assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_delete_in_unknown_image_is_404_manifest_unknown(client):
    response = send(client, "DELETE", manifest_url("v1", "alice/nothing"), auth=ALICE)

    assert_error(response, 404, "MANIFEST_UNKNOWN")


def test_delete_staging_version_is_404(client):
    push_blob(client, REPO, b"layer")

    response = send(client, "DELETE", manifest_url("~staging"), auth=ALICE)

    assert response.status_code == 404
    assert (
        send(client, "HEAD", f"/v2/{REPO}/blobs/{digest_of(b'layer')}", auth=ALICE).status_code
        == 200
    )


# Subject and metadata


def test_manifest_with_subject_answers_with_oci_subject(client):
    image = push_image(client, REPO, "v1")
    subject = {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest)}
    push_blob(client, REPO, b"sig")
    body = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": EMPTY_DIGEST,
                "size": 2,
            },
            "layers": [descriptor("application/octet-stream", b"sig")],
            "subject": subject,
        }
    )

    response = put_manifest(client, REPO, digest_of(body), body)

    assert response.status_code == 201
    assert response["OCI-Subject"] == image.digest


def test_subject_may_name_a_manifest_not_pushed_yet(client):
    subject = {"mediaType": OCI_MANIFEST, "digest": digest_of(b"later"), "size": 5}

    artifact = push_artifact(client, REPO, "sig", subject=subject)

    assert get(client, artifact.digest).status_code == 200


def test_image_metadata_is_stored_on_the_version(client):
    config = image_config(
        architecture="arm64",
        variant="v8",
        labels={
            "org.opencontainers.image.description": "A test image",
            "org.opencontainers.image.source": "https://example.com/src",
            "maintainer": "alice",
        },
        history=[
            {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
            {"created_by": "RUN make install"},
        ],
    )

    push_image(client, REPO, "v1", config=config)

    metadata = version("v1").metadata
    assert metadata["type"] == "oci"
    assert metadata["platform"] == "linux/arm64/v8"
    assert metadata["description"] == "A test image"
    assert metadata["repository_url"] == "https://example.com/src"
    assert metadata["labels"]["maintainer"] == "alice"
    assert metadata["layer_creation"] == ["ADD file:abc in /", "RUN make install"]
    assert metadata["is_tagged"] is True


def test_annotations_fill_metadata_the_config_lacks(client):
    push_image(
        client,
        REPO,
        "v1",
        annotations={"org.opencontainers.image.description": "From annotations"},
    )

    metadata = version("v1").metadata
    assert metadata["description"] == "From annotations"
    assert metadata["annotations"] == {"org.opencontainers.image.description": "From annotations"}


def test_moving_a_tag_replaces_its_metadata(client):
    push_image(client, REPO, "v1", layers=(b"amd",))

    push_image(client, REPO, "v1", layers=(b"arm",), config=image_config(architecture="arm64"))

    assert version("v1").metadata["platform"] == "linux/arm64"


def test_index_metadata_lists_child_platforms(client):
    amd = push_image(client, REPO, "amd", layers=(b"amd",))
    arm = push_image(
        client, REPO, "arm", layers=(b"arm",), config=image_config(architecture="arm64")
    )
    body = index_manifest([(amd.manifest, AMD64), (arm.manifest, ARM64)])

    put_manifest(client, REPO, "multi", body)

    manifests = version("multi").metadata["manifests"]
    assert [(m["platform"], m["digest"]) for m in manifests] == [
        ("linux/amd64", amd.digest),
        ("linux/arm64/v8", arm.digest),
    ]


def test_manifest_pushed_by_digest_is_an_untagged_version(client):
    config = image_config()
    pushed_blobs(client, config, [b"layer"])
    body = image_manifest(config, [b"layer"])

    put_manifest(client, REPO, digest_of(body), body)

    assert version(digest_of(body)).metadata["is_tagged"] is False


def test_manifest_push_records_the_creator(client, alice):
    push_image(client, REPO, "v1")

    assert version("v1").creator == alice


def test_pushing_a_tag_or_moving_it_records_when_the_image_was_last_pushed(client):
    from packages_core.models import Package

    push_image(client, REPO, "v1")
    first = Package.objects.get(name="img").last_pushed
    assert first is not None

    push_image(client, REPO, "v1", layers=(b"another layer",))  # the tag moves

    assert Package.objects.get(name="img").last_pushed > first

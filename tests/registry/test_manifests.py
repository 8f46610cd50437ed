"""Parsing pushed manifest bodies: media types, required fields, descriptors, and garbage."""

import copy
import hashlib
import json
import random

import pytest

from registry.errors import from_domain
from registry.oci import manifests, media_types
from registry.oci.errors import InvalidManifest, UnsupportedManifest
from registry.oci.manifests import (
    EMPTY_DESCRIPTOR,
    EMPTY_DIGEST,
    Descriptor,
    ParsedManifest,
    descriptor_json,
    parse_manifest,
)
from registry.oci.media_types import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_EMPTY,
    OCI_IMAGE_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
)

# What `docker push` sends for a single-layer image built by the classic builder.
DOCKER_SCHEMA2 = b"""{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1472,
      "digest": "sha256:c059bfaa849c4d8e4aecaeb3a10c2d9b3d85f5165c66ad3a4d937758128c4d18"
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 3370706,
         "digest": "sha256:59bf1c3509f33515622619af21ed55bbe26d24913cedbca106468a5fb37a50c3"
      },
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 1024,
         "digest": "sha256:8a3c5d2b1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c"
      }
   ]
}"""

# An OCI image (as buildx pushes it) that also names the image it was derived from.
OCI_IMAGE_WITH_SUBJECT = b"""{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:b5b2b2c507a0944348e0303114d8d93aaaa081732b86451d9bce1f432a537bc7",
    "size": 7023
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0",
      "size": 32654
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
      "digest": "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b",
      "size": 16724,
      "annotations": {"org.opencontainers.image.title": "app.tar.zst"}
    }
  ],
  "subject": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
    "size": 7682
  },
  "annotations": {
    "org.opencontainers.image.created": "2024-05-02T10:11:12Z",
    "org.opencontainers.image.description": "The web frontend",
    "org.opencontainers.image.source": "https://example.com/acme/web"
  }
}"""

# `oras attach --artifact-type application/vnd.example.sbom.v1 ... sbom.spdx.json`
ORAS_ARTIFACT = b"""{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.example.sbom.v1",
  "config": {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    "size": 2,
    "data": "e30="
  },
  "layers": [
    {
      "mediaType": "application/spdx+json",
      "digest": "sha256:d2a84f4b8b650937ec8f73cd8be2c74add5a911ba64df27458ed8229da804a26",
      "size": 12,
      "annotations": {"org.opencontainers.image.title": "sbom.spdx.json"}
    }
  ],
  "subject": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
    "size": 7682
  },
  "annotations": {"org.opencontainers.image.created": "2024-05-02T10:11:12Z"}
}"""

# A multi-platform image from `docker buildx build --platform ... --push`, with its
# attestation manifest (platform unknown/unknown).
OCI_INDEX_BODY = b"""{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:1f2d3e4c5b6a79881726354453627180918273645546372819203948576abcde",
      "size": 1054,
      "platform": {"architecture": "amd64", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:2f2d3e4c5b6a79881726354453627180918273645546372819203948576abcde",
      "size": 1054,
      "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:3f2d3e4c5b6a79881726354453627180918273645546372819203948576abcde",
      "size": 1310,
      "platform": {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763.5329",
        "os.features": ["win32k"]
      }
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:4f2d3e4c5b6a79881726354453627180918273645546372819203948576abcde",
      "size": 566,
      "annotations": {
        "vnd.docker.reference.digest":
          "sha256:1f2d3e4c5b6a79881726354453627180918273645546372819203948576abcde",
        "vnd.docker.reference.type": "attestation-manifest"
      },
      "platform": {"architecture": "unknown", "os": "unknown"}
    }
  ],
  "annotations": {"org.opencontainers.image.description": "A multi-arch web server"}
}"""

DOCKER_LIST_BODY = b"""{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
   "manifests": [
      {
         "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
         "size": 528,
         "digest": "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
         "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}
      }
   ]
}"""

# What a very old docker client pushes: a signed schema 1 manifest.
DOCKER_SCHEMA1 = b"""{
   "schemaVersion": 1,
   "name": "alice/web",
   "tag": "latest",
   "architecture": "amd64",
   "fsLayers": [
      {"blobSum": "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"}
   ],
   "history": [{"v1Compatibility": "{}"}],
   "signatures": []
}"""

REALISTIC = [
    (DOCKER_SCHEMA2, DOCKER_MANIFEST),
    (OCI_IMAGE_WITH_SUBJECT, OCI_MANIFEST),
    (ORAS_ARTIFACT, OCI_MANIFEST),
    (OCI_INDEX_BODY, OCI_INDEX),
    (DOCKER_LIST_BODY, DOCKER_MANIFEST_LIST),
]

LAYER_DIGEST = "sha256:" + "a" * 64


def body(document) -> bytes:
    return json.dumps(document).encode()


def doc(raw: bytes) -> dict:
    return json.loads(raw)


def oci_manifest(**changes) -> dict:
    document = doc(OCI_IMAGE_WITH_SUBJECT)
    document.update(changes)
    return document


def with_layer(**fields) -> bytes:
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}
    layer.update({"digest": LAYER_DIGEST, "size": 10})
    layer.update(fields)
    return body(oci_manifest(layers=[layer]))


# Constants


def test_the_empty_descriptor_describes_the_bytes_of_an_empty_json_object():
    assert hashlib.sha256(manifests.EMPTY_CONTENT).hexdigest() == EMPTY_DIGEST.split(":")[1]
    assert EMPTY_DESCRIPTOR.size == len(manifests.EMPTY_CONTENT) == 2
    assert EMPTY_DESCRIPTOR.media_type == OCI_EMPTY


def test_supported_types_are_the_image_manifest_and_index_types():
    assert {OCI_MANIFEST, DOCKER_MANIFEST} == media_types.IMAGE_MANIFEST_TYPES
    assert {OCI_INDEX, DOCKER_MANIFEST_LIST} == media_types.INDEX_TYPES
    assert media_types.SUPPORTED_TYPES == media_types.IMAGE_MANIFEST_TYPES | media_types.INDEX_TYPES


# Realistic bodies


def test_docker_schema2_manifest_parses_config_and_layers():
    manifest = parse_manifest(DOCKER_SCHEMA2, DOCKER_MANIFEST)

    assert manifest.media_type == DOCKER_MANIFEST
    assert manifest.schema_version == 2
    assert manifest.config == Descriptor(
        media_type="application/vnd.docker.container.image.v1+json",
        digest="sha256:c059bfaa849c4d8e4aecaeb3a10c2d9b3d85f5165c66ad3a4d937758128c4d18",
        size=1472,
    )
    assert [layer.size for layer in manifest.layers] == [3370706, 1024]
    assert manifest.manifests == ()
    assert manifest.subject is None
    assert not manifest.is_index


def test_oci_manifest_keeps_subject_annotations_and_layer_annotations():
    manifest = parse_manifest(OCI_IMAGE_WITH_SUBJECT, OCI_MANIFEST)

    assert manifest.subject == Descriptor(
        media_type=OCI_MANIFEST,
        digest="sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270",
        size=7682,
    )
    assert manifest.annotations["org.opencontainers.image.description"] == "The web frontend"
    assert manifest.layers[1].annotations == {"org.opencontainers.image.title": "app.tar.zst"}
    assert manifest.layers[0].annotations == {}


def test_oras_artifact_keeps_its_artifact_type_and_empty_config():
    manifest = parse_manifest(ORAS_ARTIFACT, OCI_MANIFEST)

    assert manifest.artifact_type == "application/vnd.example.sbom.v1"
    assert manifest.config.media_type == OCI_EMPTY
    assert manifest.config.digest == EMPTY_DIGEST
    assert manifest.layers[0].media_type == "application/spdx+json"


def test_oci_index_parses_children_with_platforms():
    manifest = parse_manifest(OCI_INDEX_BODY, OCI_INDEX)

    assert manifest.is_index
    assert manifest.config is None
    assert manifest.layers == ()
    assert len(manifest.manifests) == 4
    assert manifest.manifests[0].platform == {"architecture": "amd64", "os": "linux"}
    assert manifest.manifests[1].platform["variant"] == "v8"
    assert manifest.manifests[2].platform["os.features"] == ["win32k"]
    assert manifest.manifests[3].annotations["vnd.docker.reference.type"] == (
        "attestation-manifest"
    )


def test_docker_manifest_list_is_an_index():
    manifest = parse_manifest(DOCKER_LIST_BODY, DOCKER_MANIFEST_LIST)

    assert manifest.is_index
    assert manifest.media_type == DOCKER_MANIFEST_LIST
    assert manifest.manifests[0].media_type == DOCKER_MANIFEST


def test_parsed_descriptors_are_frozen():
    manifest = parse_manifest(DOCKER_SCHEMA2, DOCKER_MANIFEST)

    with pytest.raises(AttributeError):
        manifest.config.size = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        manifest.media_type = OCI_MANIFEST  # type: ignore[misc]


def test_parse_accepts_a_bytearray_body():
    assert parse_manifest(bytearray(DOCKER_SCHEMA2), DOCKER_MANIFEST).config.size == 1472


# Schema version


def test_schema_version_1_is_unsupported_with_501():
    with pytest.raises(UnsupportedManifest) as caught:
        parse_manifest(DOCKER_SCHEMA1, "application/vnd.docker.distribution.manifest.v1+prettyjws")

    assert from_domain(caught.value).status == 501
    assert from_domain(caught.value).code == "UNSUPPORTED"
    assert "schema version 2" in caught.value.message
    assert "deprecated" in caught.value.message


def test_schema_version_1_is_unsupported_even_without_content_type():
    with pytest.raises(UnsupportedManifest) as caught:
        parse_manifest(DOCKER_SCHEMA1, None)

    assert from_domain(caught.value).status == 501


def test_missing_schema_version_is_manifest_invalid():
    """The spec: a manifest that fails validation is 400 MANIFEST_INVALID; 501 is only
    for schema 1, a capability we lack.
    """
    document = doc(DOCKER_SCHEMA2)
    del document["schemaVersion"]

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(document), DOCKER_MANIFEST)

    assert from_domain(caught.value).status == 400
    assert "schemaVersion" in caught.value.message


@pytest.mark.parametrize(
    "version", [3, 0, -2, "2", "1", 2.0, 2.5, 1.0, True, False, None, [2], {"v": 2}]
)
def test_schema_version_other_than_integer_2_or_1_is_manifest_invalid(version):
    # 2.0 too: Go clients decode schemaVersion into an int and would refuse it.
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(oci_manifest(schemaVersion=version)), OCI_MANIFEST)

    assert from_domain(caught.value).status == 400
    assert from_domain(caught.value).code == "MANIFEST_INVALID"


def test_integer_schema_version_1_is_unsupported_whatever_the_body():
    with pytest.raises(UnsupportedManifest) as caught:
        parse_manifest(body(oci_manifest(schemaVersion=1)), OCI_MANIFEST)

    assert from_domain(caught.value).status == 501


def test_schema_version_is_checked_before_the_body_is_validated():
    # A schema1 body has no config, but the answer is still "unsupported", not "invalid".
    with pytest.raises(UnsupportedManifest):
        parse_manifest(DOCKER_SCHEMA1, DOCKER_MANIFEST)


def test_schema1_media_type_with_schema_version_2_is_unsupported():
    with pytest.raises(UnsupportedManifest) as caught:
        parse_manifest(
            body(oci_manifest(mediaType=None)),
            "application/vnd.docker.distribution.manifest.v1+json",
        )

    assert from_domain(caught.value).status == 501


# Media type resolution


def test_content_type_parameters_are_ignored():
    manifest = parse_manifest(DOCKER_SCHEMA2, f"{DOCKER_MANIFEST}; charset=utf-8")

    assert manifest.media_type == DOCKER_MANIFEST


def test_content_type_is_compared_case_insensitively():
    manifest = parse_manifest(DOCKER_SCHEMA2, DOCKER_MANIFEST.upper())

    assert manifest.media_type == DOCKER_MANIFEST


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "application/octet-stream", "*/*", "application/json; q=1"],
)
def test_generic_content_type_defers_to_the_body_media_type(content_type):
    assert parse_manifest(DOCKER_SCHEMA2, content_type).media_type == DOCKER_MANIFEST


def test_content_type_is_used_when_the_body_has_no_media_type():
    document = doc(DOCKER_LIST_BODY)
    del document["mediaType"]

    assert parse_manifest(body(document), DOCKER_MANIFEST_LIST).media_type == DOCKER_MANIFEST_LIST


def test_content_type_that_contradicts_the_body_is_invalid():
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(DOCKER_SCHEMA2, OCI_MANIFEST)

    assert "does not match" in caught.value.message


def test_media_type_is_inferred_as_oci_manifest_from_config():
    document = oci_manifest()
    del document["mediaType"]

    assert parse_manifest(body(document), None).media_type == OCI_MANIFEST


def test_media_type_is_inferred_as_oci_index_from_manifests():
    document = doc(OCI_INDEX_BODY)
    del document["mediaType"]

    assert parse_manifest(body(document), "application/json").media_type == OCI_INDEX


def test_body_without_media_type_config_or_manifests_is_invalid():
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body({"schemaVersion": 2, "layers": []}), None)

    assert "neither config nor manifests" in caught.value.message


def test_unknown_content_type_is_invalid_and_named():
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(oci_manifest(mediaType=None)), "application/vnd.example.thing+json")

    assert "application/vnd.example.thing+json" in caught.value.message


def test_unknown_body_media_type_is_invalid_and_named():
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(oci_manifest(mediaType="application/vnd.oci.image.layer.v1.tar")), None)

    assert "application/vnd.oci.image.layer.v1.tar" in caught.value.message


def test_non_string_body_media_type_is_invalid():
    with pytest.raises(InvalidManifest):
        parse_manifest(body(oci_manifest(mediaType=42)), None)


# Shape of image manifests and indexes


def test_image_manifest_without_config_is_invalid():
    document = oci_manifest()
    del document["config"]

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(document), OCI_MANIFEST)

    assert "config" in caught.value.message


def test_image_manifest_without_layers_is_invalid():
    document = oci_manifest()
    del document["layers"]

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(document), OCI_MANIFEST)

    assert "layers" in caught.value.message


def test_image_manifest_with_empty_layers_is_valid():
    assert parse_manifest(body(oci_manifest(layers=[])), OCI_MANIFEST).layers == ()


def test_null_layers_count_as_no_layers():
    assert parse_manifest(body(oci_manifest(layers=None)), OCI_MANIFEST).layers == ()


def test_layers_that_are_not_a_list_are_invalid():
    with pytest.raises(InvalidManifest):
        parse_manifest(body(oci_manifest(layers={"0": {}})), OCI_MANIFEST)


def test_image_manifest_that_also_lists_manifests_is_invalid():
    document = oci_manifest(manifests=doc(OCI_INDEX_BODY)["manifests"])

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(document), OCI_MANIFEST)

    assert "index" in caught.value.message


def test_index_that_also_has_layers_is_invalid():
    document = doc(OCI_INDEX_BODY)
    document["layers"] = doc(DOCKER_SCHEMA2)["layers"]

    with pytest.raises(InvalidManifest):
        parse_manifest(body(document), OCI_INDEX)


def test_index_that_also_has_a_config_is_invalid():
    document = doc(OCI_INDEX_BODY)
    document["config"] = doc(DOCKER_SCHEMA2)["config"]

    with pytest.raises(InvalidManifest):
        parse_manifest(body(document), OCI_INDEX)


def test_index_without_manifests_is_invalid():
    document = doc(OCI_INDEX_BODY)
    del document["manifests"]

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(document), OCI_INDEX)

    assert "manifests" in caught.value.message


def test_index_with_empty_manifests_is_valid():
    document = doc(OCI_INDEX_BODY)
    document["manifests"] = []

    assert parse_manifest(body(document), OCI_INDEX).manifests == ()


def test_image_manifest_sent_as_an_index_is_invalid():
    with pytest.raises(InvalidManifest):
        parse_manifest(body(oci_manifest(mediaType=None)), OCI_INDEX)


def test_index_may_carry_a_subject_and_artifact_type():
    document = doc(OCI_INDEX_BODY)
    document["artifactType"] = "application/vnd.example.bundle.v1"
    document["subject"] = doc(ORAS_ARTIFACT)["subject"]

    manifest = parse_manifest(body(document), OCI_INDEX)

    assert manifest.artifact_type == "application/vnd.example.bundle.v1"
    assert manifest.subject.size == 7682


def test_null_subject_is_no_subject():
    assert parse_manifest(body(oci_manifest(subject=None)), OCI_MANIFEST).subject is None


def test_subject_that_is_not_an_object_is_invalid():
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(oci_manifest(subject="sha256:" + "a" * 64)), OCI_MANIFEST)

    assert "subject" in caught.value.message


def test_manifest_artifact_type_must_be_a_media_type():
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(oci_manifest(artifactType="sbom")), OCI_MANIFEST)

    assert "artifactType" in caught.value.message


def test_empty_manifest_artifact_type_counts_as_unset():
    assert parse_manifest(body(oci_manifest(artifactType="")), OCI_MANIFEST).artifact_type == ""


@pytest.mark.parametrize("annotations", [[], "x", {"a": 1}, {"a": None}, {"a": ["b"]}])
def test_manifest_annotations_must_map_strings_to_strings(annotations):
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(oci_manifest(annotations=annotations)), OCI_MANIFEST)

    assert "annotations" in caught.value.message


# Descriptors


def test_descriptor_without_media_type_is_invalid():
    document = oci_manifest()
    del document["config"]["mediaType"]

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(document), OCI_MANIFEST)

    assert "config.mediaType" in caught.value.message


@pytest.mark.parametrize("media_type", ["", "tar", "a/b/c", " application/json", 7, None])
def test_descriptor_media_type_must_be_a_media_type(media_type):
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(with_layer(mediaType=media_type), OCI_MANIFEST)

    assert "layers[0].mediaType" in caught.value.message


def test_descriptor_without_digest_is_invalid():
    document = oci_manifest()
    del document["layers"][1]["digest"]

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(document), OCI_MANIFEST)

    assert "layers[1].digest" in caught.value.message


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "sha256",
        "sha256:",
        "a" * 64,
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha256:" + "g" * 64,
        "md5:" + "a" * 32,
        "SHA256:" + "a" * 64,
        "sha512:" + "a" * 64,
        "sha256:" + "a" * 64 + "\n",
    ],
)
def test_malformed_descriptor_digest_is_manifest_invalid_not_digest_invalid(digest):
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(with_layer(digest=digest), OCI_MANIFEST)

    assert from_domain(caught.value).code == "MANIFEST_INVALID"
    assert caught.value.detail == {"field": "layers[0].digest"}


@pytest.mark.parametrize("digest", [64, None, ["sha256:" + "a" * 64], {"sha256": "a"}])
def test_non_string_descriptor_digest_is_invalid(digest):
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(with_layer(digest=digest), OCI_MANIFEST)

    assert "layers[0].digest" in caught.value.message


def test_sha512_descriptor_digest_is_accepted():
    manifest = parse_manifest(with_layer(digest="sha512:" + "b" * 128), OCI_MANIFEST)

    assert manifest.layers[0].digest == "sha512:" + "b" * 128


def test_a_huge_bad_digest_is_not_echoed_in_the_error():
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(with_layer(digest="sha256:" + "z" * 100_000), OCI_MANIFEST)

    assert len(caught.value.message) < 300


def test_descriptor_without_size_is_invalid():
    document = oci_manifest()
    del document["config"]["size"]

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(document), OCI_MANIFEST)

    assert "config.size" in caught.value.message


@pytest.mark.parametrize("size", ["10", -1, True, False, 1.5, 10.0, None, [10], {"n": 10}, 2**63])
def test_descriptor_size_must_be_a_non_negative_int64(size):
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(with_layer(size=size), OCI_MANIFEST)

    assert "layers[0].size" in caught.value.message


def test_descriptor_size_zero_and_int64_max_are_valid():
    assert parse_manifest(with_layer(size=0), OCI_MANIFEST).layers[0].size == 0
    assert parse_manifest(with_layer(size=2**63 - 1), OCI_MANIFEST).layers[0].size == 2**63 - 1


def test_descriptor_that_is_not_an_object_is_invalid():
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(oci_manifest(layers=["sha256:" + "a" * 64])), OCI_MANIFEST)

    assert "layers[0]" in caught.value.message


def test_descriptor_urls_are_kept_as_a_tuple():
    manifest = parse_manifest(with_layer(urls=["https://example.com/layer.tar"]), OCI_MANIFEST)

    assert manifest.layers[0].urls == ("https://example.com/layer.tar",)


@pytest.mark.parametrize("urls", ["https://example.com/x", [1], [None], {"u": "x"}])
def test_descriptor_urls_must_be_a_list_of_strings(urls):
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(with_layer(urls=urls), OCI_MANIFEST)

    assert "layers[0].urls" in caught.value.message


@pytest.mark.parametrize("annotations", [["a"], {"a": 1}, "a=b"])
def test_descriptor_annotations_must_map_strings_to_strings(annotations):
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(with_layer(annotations=annotations), OCI_MANIFEST)

    assert "layers[0].annotations" in caught.value.message


def test_descriptor_artifact_type_is_kept():
    manifest = parse_manifest(with_layer(artifactType="application/vnd.example.x"), OCI_MANIFEST)

    assert manifest.layers[0].artifact_type == "application/vnd.example.x"


@pytest.mark.parametrize("artifact_type", [5, ["a/b"], "nope"])
def test_descriptor_artifact_type_must_be_a_media_type(artifact_type):
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(with_layer(artifactType=artifact_type), OCI_MANIFEST)

    assert "layers[0].artifactType" in caught.value.message


@pytest.mark.parametrize(
    "platform",
    [
        "linux/amd64",
        ["linux", "amd64"],
        {"os": "linux"},
        {"architecture": "amd64"},
        {"os": 1, "architecture": "amd64"},
        {"os": "linux", "architecture": "arm", "variant": 7},
        {"os": "windows", "architecture": "amd64", "os.version": 10},
        {"os": "windows", "architecture": "amd64", "os.features": "win32k"},
        {"os": "linux", "architecture": "amd64", "features": [1]},
    ],
)
def test_child_platform_must_have_string_os_and_architecture(platform):
    document = doc(OCI_INDEX_BODY)
    document["manifests"][0]["platform"] = platform

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(document), OCI_INDEX)

    assert "manifests[0].platform" in caught.value.message


def test_child_without_platform_has_none():
    document = doc(OCI_INDEX_BODY)
    del document["manifests"][0]["platform"]

    assert parse_manifest(body(document), OCI_INDEX).manifests[0].platform is None


def test_index_children_of_other_media_types_are_accepted():
    # The image-index spec tells implementations not to fail on unknown child types.
    document = doc(OCI_INDEX_BODY)
    document["manifests"][0]["mediaType"] = OCI_INDEX

    assert parse_manifest(body(document), OCI_INDEX).manifests[0].media_type == OCI_INDEX


def test_error_names_the_failing_descriptor_in_an_index():
    document = doc(OCI_INDEX_BODY)
    document["manifests"][2]["size"] = "1310"

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(body(document), OCI_INDEX)

    assert "manifests[2].size" in caught.value.message


# Bodies that are not JSON objects


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b"not json",
        b"{'schemaVersion': 2}",
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",
        b'{"schemaVersion": 2,}',
        b'{"schemaVersion": NaN}',
        b'{"schemaVersion": Infinity}',
        b"[" * 100_000,
        b'{"a":' * 100_000,
    ],
)
def test_body_that_is_not_json_is_manifest_invalid(raw):
    with pytest.raises(InvalidManifest):
        parse_manifest(raw, OCI_MANIFEST)


def test_number_past_the_digit_limit_is_invalid_without_python_hints():
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(b'{"schemaVersion": 2, "size": ' + b"9" * 5000 + b"}", OCI_MANIFEST)

    assert caught.value.message == "manifest has a number too long to read"


@pytest.mark.parametrize("raw", [b"[]", b"[{}]", b"2", b'"manifest"', b"null", b"true", b"1.5"])
def test_body_that_is_json_but_not_an_object_is_manifest_invalid(raw):
    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(raw, OCI_MANIFEST)

    assert "JSON object" in caught.value.message


def test_body_with_a_duplicate_key_is_invalid():
    raw = OCI_IMAGE_WITH_SUBJECT.replace(
        b'"schemaVersion": 2,', b'"schemaVersion": 2, "config": {},'
    )

    with pytest.raises(InvalidManifest) as caught:
        parse_manifest(raw, OCI_MANIFEST)

    assert "duplicate key 'config'" in caught.value.message


def test_body_over_the_default_manifest_size_limit_still_parses():
    """The limit is the site's setting, applied as the body is read: a site may raise it,
    and a manifest stored under a higher limit must parse when it is shown later.
    """
    raw = DOCKER_SCHEMA2 + b" " * (11 * 1024 * 1024)

    assert parse_manifest(raw, DOCKER_MANIFEST).media_type == DOCKER_MANIFEST


def test_body_that_is_not_bytes_is_invalid():
    with pytest.raises(InvalidManifest):
        parse_manifest(DOCKER_SCHEMA2.decode(), DOCKER_MANIFEST)  # type: ignore[arg-type]


def test_random_bytes_are_always_manifest_invalid():
    rng = random.Random(20240502)
    for _ in range(2000):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        with pytest.raises(InvalidManifest):
            parse_manifest(raw, rng.choice([None, OCI_MANIFEST, "application/json"]))


GARBAGE = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**64,
    "",
    "x",
    "sha256:" + "0" * 64,
    [],
    [None],
    [{}],
    ["x"],
    {},
    {"mediaType": 1},
    {"os": "linux"},
]


def _paths(value, path=()):
    """Every path into a JSON document, containers included."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _replaced(document, path, value):
    if not path:
        return value
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


def _removed(document, path):
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return document


# What parsing anything may give: a manifest, or one of the two errors it raises.
OUTCOMES = (ParsedManifest, InvalidManifest, UnsupportedManifest)


def _outcome(raw: bytes, content_type):
    try:
        return parse_manifest(raw, content_type)
    except (InvalidManifest, UnsupportedManifest) as error:
        return error


@pytest.mark.parametrize(("raw", "media_type"), REALISTIC)
def test_every_field_replaced_with_garbage_gives_a_manifest_or_a_registry_error(raw, media_type):
    original = doc(raw)
    for path in list(_paths(original)):
        for garbage in GARBAGE:
            mutated = body(_replaced(original, path, garbage))
            for content_type in (media_type, None):
                outcome = _outcome(mutated, content_type)
                assert isinstance(outcome, OUTCOMES), (
                    path,
                    garbage,
                )


@pytest.mark.parametrize(("raw", "media_type"), REALISTIC)
def test_every_field_removed_gives_a_manifest_or_a_registry_error(raw, media_type):
    original = doc(raw)
    for path in list(_paths(original))[1:]:
        for content_type in (media_type, None):
            outcome = _outcome(body(_removed(original, path)), content_type)
            assert isinstance(outcome, OUTCOMES), path


def _random_json(rng: random.Random, depth: int = 0):
    kinds = ["null", "bool", "int", "float", "str"]
    if depth < 3:
        kinds += ["list", "dict"]
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, 2, -1, 1 << 70, rng.randrange(-1000, 1000)])
    if kind == "float":
        return rng.uniform(-10, 10)
    if kind == "str":
        return rng.choice(["", "linux", "application/json", OCI_MANIFEST, "\u2603", "a/b"])
    if kind == "list":
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["os", "a", "size"]): _random_json(rng, depth + 1) for _ in range(2)}


def _sometimes(rng: random.Random, good):
    """`good` mostly, else random JSON, so most fields are plausible and a few are not."""
    return good if rng.random() < 0.9 else _random_json(rng)


def _random_descriptor(rng: random.Random) -> dict:
    candidates = {
        "mediaType": rng.choice(
            [OCI_MANIFEST, "application/vnd.oci.image.layer.v1.tar", OCI_EMPTY]
        ),
        "digest": rng.choice(["sha256:" + "1" * 64, EMPTY_DIGEST, "sha512:" + "2" * 128]),
        "size": rng.choice([0, 2, 1234]),
        "annotations": {"org.opencontainers.image.title": "x"},
        "artifactType": "application/vnd.example.x",
        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
        "urls": ["https://example.com/x"],
    }
    required = ("mediaType", "digest", "size")
    return {
        key: _sometimes(rng, value)
        for key, value in candidates.items()
        if (key in required and rng.random() < 0.95) or rng.random() < 0.3
    }


def _random_manifest(rng: random.Random) -> dict:
    is_index = rng.random() < 0.4
    kinds = media_types.INDEX_TYPES if is_index else media_types.IMAGE_MANIFEST_TYPES
    candidates = {
        # Mostly 2; now and then a schema 1 manifest's 1 (a 501).
        "schemaVersion": (2 if rng.random() < 0.97 else 1, 0.95),
        "mediaType": (rng.choice(sorted(kinds)), 0.7),
        "config": (_random_descriptor(rng), 0.05 if is_index else 0.95),
        "layers": ([_random_descriptor(rng) for _ in range(3)], 0.05 if is_index else 0.95),
        "manifests": ([_random_descriptor(rng) for _ in range(3)], 0.95 if is_index else 0.05),
        "subject": (_random_descriptor(rng), 0.3),
        "artifactType": ("application/vnd.example.x", 0.3),
        "annotations": ({"org.opencontainers.image.description": "x"}, 0.3),
    }
    return {
        key: _sometimes(rng, value)
        for key, (value, chance) in candidates.items()
        if rng.random() < chance
    }


def test_random_manifest_shaped_documents_give_a_manifest_or_a_registry_error():
    rng = random.Random(7)
    kinds = set()
    for _ in range(5000):
        document = _random_manifest(rng)
        content_type = rng.choice([None, OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, "*/*"])
        outcome = _outcome(body(document), content_type)
        assert isinstance(outcome, OUTCOMES), document
        kinds.add(type(outcome))
    # The generator reaches every outcome, so the loop above tests all three paths.
    assert kinds == {ParsedManifest, InvalidManifest, UnsupportedManifest}


# Referenced blobs, artifact types, descriptor JSON


def test_referenced_blobs_are_the_config_then_the_layers():
    manifest = parse_manifest(DOCKER_SCHEMA2, DOCKER_MANIFEST)

    assert manifest.referenced_blobs == (manifest.config, *manifest.layers)


def test_index_references_no_blobs():
    assert parse_manifest(OCI_INDEX_BODY, OCI_INDEX).referenced_blobs == ()


def test_foreign_layer_with_urls_is_not_a_referenced_blob():
    document = doc(DOCKER_SCHEMA2)
    document["layers"].append(
        {
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "size": 1501419,
            "digest": "sha256:" + "f" * 64,
            "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:" + "f" * 64],
        }
    )

    manifest = parse_manifest(body(document), DOCKER_MANIFEST)

    assert "sha256:" + "f" * 64 not in [d.digest for d in manifest.referenced_blobs]
    assert len(manifest.referenced_blobs) == 3


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    ],
)
def test_oci_non_distributable_layer_with_urls_is_not_a_referenced_blob(media_type):
    manifest = parse_manifest(
        with_layer(mediaType=media_type, urls=["https://example.com/l.tar"]), OCI_MANIFEST
    )

    assert manifest.referenced_blobs == (manifest.config,)


def test_foreign_layer_without_urls_must_exist_here():
    manifest = parse_manifest(
        with_layer(mediaType="application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
        OCI_MANIFEST,
    )

    assert manifest.layers[0] in manifest.referenced_blobs


def test_ordinary_layer_with_urls_must_still_exist_here():
    manifest = parse_manifest(with_layer(urls=["https://example.com/l.tar"]), OCI_MANIFEST)

    assert manifest.layers[0] in manifest.referenced_blobs


def test_a_layer_listed_twice_is_one_referenced_blob():
    document = doc(DOCKER_SCHEMA2)
    document["layers"].append(document["layers"][0])

    manifest = parse_manifest(body(document), DOCKER_MANIFEST)

    assert len(manifest.layers) == 3
    assert len(manifest.referenced_blobs) == 3


def test_same_digest_with_different_sizes_stays_two_claims_to_check():
    document = doc(DOCKER_SCHEMA2)
    document["layers"].append({**document["layers"][0], "size": 1})

    manifest = parse_manifest(body(document), DOCKER_MANIFEST)

    assert len(manifest.referenced_blobs) == 4


def test_artifact_with_the_empty_blob_as_config_and_layer_references_it_once():
    layer = {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}
    document = doc(ORAS_ARTIFACT)
    document["layers"] = [layer]

    manifest = parse_manifest(body(document), OCI_MANIFEST)

    assert [d.digest for d in manifest.referenced_blobs] == [EMPTY_DIGEST]


def test_effective_artifact_type_is_the_explicit_artifact_type():
    manifest = parse_manifest(ORAS_ARTIFACT, OCI_MANIFEST)

    assert manifest.effective_artifact_type == "application/vnd.example.sbom.v1"


def test_effective_artifact_type_of_an_image_is_its_config_media_type():
    manifest = parse_manifest(OCI_IMAGE_WITH_SUBJECT, OCI_MANIFEST)

    assert manifest.effective_artifact_type == OCI_IMAGE_CONFIG


def test_effective_artifact_type_of_an_index_without_one_is_empty():
    assert parse_manifest(OCI_INDEX_BODY, OCI_INDEX).effective_artifact_type == ""


def test_manifest_descriptor_carries_effective_artifact_type_and_annotations():
    manifest = parse_manifest(OCI_IMAGE_WITH_SUBJECT, OCI_MANIFEST)
    digest = "sha256:" + hashlib.sha256(OCI_IMAGE_WITH_SUBJECT).hexdigest()

    descriptor = manifest.descriptor(digest, len(OCI_IMAGE_WITH_SUBJECT))

    assert descriptor.media_type == OCI_MANIFEST
    assert descriptor.digest == digest
    assert descriptor.size == len(OCI_IMAGE_WITH_SUBJECT)
    assert descriptor.artifact_type == OCI_IMAGE_CONFIG
    assert descriptor.annotations == manifest.annotations


def test_descriptor_json_has_only_the_required_fields_when_nothing_else_is_set():
    assert descriptor_json(EMPTY_DESCRIPTOR) == {
        "mediaType": OCI_EMPTY,
        "digest": EMPTY_DIGEST,
        "size": 2,
    }


def test_descriptor_json_adds_artifact_type_and_annotations_for_the_referrers_list():
    manifest = parse_manifest(ORAS_ARTIFACT, OCI_MANIFEST)
    digest = "sha256:" + hashlib.sha256(ORAS_ARTIFACT).hexdigest()

    listed = descriptor_json(manifest.descriptor(digest, len(ORAS_ARTIFACT)))

    assert listed == {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(ORAS_ARTIFACT),
        "artifactType": "application/vnd.example.sbom.v1",
        "annotations": {"org.opencontainers.image.created": "2024-05-02T10:11:12Z"},
    }


def test_descriptor_json_keeps_platform_and_urls_when_set():
    child = parse_manifest(OCI_INDEX_BODY, OCI_INDEX).manifests[1]
    foreign = Descriptor("application/vnd.oci.image.layer.v1.tar", LAYER_DIGEST, 5, urls=("u",))

    assert descriptor_json(child)["platform"] == {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
    }
    assert descriptor_json(foreign)["urls"] == ["u"]


def test_descriptor_json_round_trips_through_the_parser():
    original = parse_manifest(OCI_INDEX_BODY, OCI_INDEX)
    rebuilt = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor_json(d) for d in original.manifests],
        "annotations": original.annotations,
    }

    assert parse_manifest(body(rebuilt), OCI_INDEX) == original


def test_descriptor_json_does_not_share_the_descriptors_dicts():
    descriptor = Descriptor(OCI_EMPTY, EMPTY_DIGEST, 2, annotations={"a": "b"})

    descriptor_json(descriptor)["annotations"]["a"] = "changed"

    assert descriptor.annotations == {"a": "b"}

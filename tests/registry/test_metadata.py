"""Metadata recorded on a container version: platform, labels, links, history, Helm charts."""

import copy
import json
import random

import pytest

from registry.oci.manifests import EMPTY_CONTENT, Descriptor, ParsedManifest, parse_manifest
from registry.oci.media_types import (
    DOCKER_IMAGE_CONFIG,
    HELM_CONFIG,
    OCI_IMAGE_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
)
from registry.oci.metadata import MAX_CONFIG_SIZE, image_metadata, index_metadata

CONFIG_DIGEST = "sha256:" + "c" * 64
LAYER_DIGEST = "sha256:" + "1" * 64
ROOTFS_HASH = "37a76ec18f9887751cd8473744917d08b7431fc4085097bb6a09d81b41775473"

# The config blob `docker build` (classic builder, then BuildKit for the last step) writes.
DOCKER_CONFIG = json.dumps(
    {
        "architecture": "amd64",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/app",
            "Labels": {
                "maintainer": "ops@example.com",
                "org.opencontainers.image.description": "The web frontend",
                "org.opencontainers.image.authors": "Alice <alice@example.com>",
                "org.opencontainers.image.licenses": "MIT",
                "org.opencontainers.image.url": "https://example.com/web",
                "org.opencontainers.image.source": "https://git.example.com/acme/web",
                "org.opencontainers.image.documentation": "https://docs.example.com/web",
            },
        },
        "created": "2024-05-02T10:11:12.123456789Z",
        "history": [
            {
                "created": "2024-01-27T00:30:56Z",
                "created_by": f"/bin/sh -c #(nop) ADD file:{ROOTFS_HASH} in / ",
            },
            {
                "created": "2024-01-27T00:30:56Z",
                "created_by": '/bin/sh -c #(nop)  CMD ["/bin/sh"]',
                "empty_layer": True,
            },
            {"created": "2024-05-02T10:11:10Z", "created_by": "/bin/sh -c apk add --no-cache curl"},
            {"created": "2024-05-02T10:11:11Z", "created_by": "", "empty_layer": True},
            {"created": "2024-05-02T10:11:11Z", "comment": "no created_by at all"},
            {
                "created": "2024-05-02T10:11:12Z",
                "created_by": "COPY . /app # buildkit",
                "comment": "buildkit.dockerfile.v0",
            },
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "d" * 64, "sha256:" + "e" * 64]},
    }
).encode()

# What `helm push podinfo-6.5.4.tgz oci://...` stores as the chart's config blob.
HELM_CHART_CONFIG = json.dumps(
    {
        "name": "podinfo",
        "home": "https://github.com/stefanprodan/podinfo",
        "sources": ["https://github.com/stefanprodan/podinfo", "https://example.com/mirror"],
        "version": "6.5.4",
        "description": "Podinfo Helm chart for Kubernetes",
        "keywords": ["kubernetes", "podinfo"],
        "maintainers": [
            {"name": "stefanprodan", "email": "stefanprodan@users.noreply.github.com"},
            {"name": "alice", "url": "https://example.com/alice"},
        ],
        "icon": "https://raw.githubusercontent.com/stefanprodan/podinfo/gh-pages/cuddle.png",
        "apiVersion": "v2",
        "appVersion": "6.5.4",
        "kubeVersion": ">=1.23.0-0",
        "type": "application",
    }
).encode()

HELM_MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "config": {"mediaType": HELM_CONFIG, "digest": CONFIG_DIGEST, "size": 411},
        "layers": [
            {
                "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                "digest": LAYER_DIGEST,
                "size": 14040,
            }
        ],
        "annotations": {
            "org.opencontainers.image.created": "2024-05-02T10:11:12Z",
            "org.opencontainers.image.description": "Podinfo Helm chart for Kubernetes",
            "org.opencontainers.image.title": "podinfo",
            "org.opencontainers.image.version": "6.5.4",
        },
    }
).encode()

ORAS_ARTIFACT = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom.v1",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/spdx+json",
                "digest": LAYER_DIGEST,
                "size": 12,
                "annotations": {"org.opencontainers.image.title": "sbom.spdx.json"},
            }
        ],
        "annotations": {"org.opencontainers.image.created": "2024-05-02T10:11:12Z"},
    }
).encode()

OCI_INDEX_BODY = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": "sha256:" + "1" * 64,
                "size": 1054,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": "sha256:" + "2" * 64,
                "size": 1055,
                "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
            },
            {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "3" * 64, "size": 566},
        ],
        "annotations": {
            "org.opencontainers.image.description": "A multi-arch web server",
            "org.opencontainers.image.authors": "Alice",
            "org.opencontainers.image.source": "https://git.example.com/acme/web",
        },
    }
).encode()


def image_manifest(config_type=DOCKER_IMAGE_CONFIG, annotations=None, artifact_type=""):
    return ParsedManifest(
        media_type=OCI_MANIFEST,
        config=Descriptor(config_type, CONFIG_DIGEST, 100),
        layers=(Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", LAYER_DIGEST, 10),),
        annotations=annotations or {},
        artifact_type=artifact_type,
    )


def config_with(**changes) -> bytes:
    document = json.loads(DOCKER_CONFIG)
    document.update(changes)
    return json.dumps(document).encode()


def labels_config(labels) -> bytes:
    return config_with(config={"Labels": labels})


# Image configs


def test_image_metadata_of_a_docker_image_reads_platform_labels_and_links():
    metadata = image_metadata(image_manifest(), DOCKER_CONFIG)

    assert metadata["type"] == "oci"
    assert metadata["platform"] == "linux/amd64"
    assert metadata["description"] == "The web frontend"
    assert metadata["authors"] == ["Alice <alice@example.com>"]
    assert metadata["licenses"] == "MIT"
    assert metadata["project_url"] == "https://example.com/web"
    assert metadata["repository_url"] == "https://git.example.com/acme/web"
    assert metadata["documentation_url"] == "https://docs.example.com/web"


def test_image_metadata_keeps_all_labels():
    metadata = image_metadata(image_manifest(), DOCKER_CONFIG)

    assert metadata["labels"]["maintainer"] == "ops@example.com"
    assert len(metadata["labels"]) == 7


def test_layer_creation_strips_the_nop_prefix_and_skips_empty_steps():
    metadata = image_metadata(image_manifest(), DOCKER_CONFIG)

    assert metadata["layer_creation"] == [
        f"ADD file:{ROOTFS_HASH} in /",
        'CMD ["/bin/sh"]',
        "/bin/sh -c apk add --no-cache curl",
        "COPY . /app # buildkit",
    ]


def test_platform_includes_the_variant():
    metadata = image_metadata(image_manifest(), config_with(architecture="arm64", variant="v8"))

    assert metadata["platform"] == "linux/arm64/v8"


def test_oci_image_config_media_type_is_read_like_docker_config():
    metadata = image_metadata(image_manifest(OCI_IMAGE_CONFIG), DOCKER_CONFIG)

    assert metadata["platform"] == "linux/amd64"
    assert metadata["description"] == "The web frontend"


def test_image_config_media_type_is_matched_case_insensitively():
    metadata = image_metadata(image_manifest(OCI_IMAGE_CONFIG.upper()), DOCKER_CONFIG)

    assert metadata["platform"] == "linux/amd64"


def test_image_config_without_os_has_unknown_platform():
    document = json.loads(DOCKER_CONFIG)
    del document["os"]

    metadata = image_metadata(image_manifest(), json.dumps(document).encode())

    assert metadata["platform"] == "unknown/unknown"


def test_image_metadata_has_no_artifact_type_for_a_plain_image():
    assert "artifact_type" not in image_metadata(image_manifest(), DOCKER_CONFIG)


def test_image_metadata_omits_empty_keys():
    metadata = image_metadata(image_manifest(), b'{"os": "linux", "architecture": "amd64"}')

    assert metadata == {"type": "oci", "platform": "linux/amd64"}


def test_image_metadata_of_a_parsed_docker_push():
    manifest = parse_manifest(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": DOCKER_IMAGE_CONFIG, "size": 1472, "digest": CONFIG_DIGEST},
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": 3370706,
                        "digest": LAYER_DIGEST,
                    }
                ],
            }
        ).encode(),
        None,
    )

    assert image_metadata(manifest, DOCKER_CONFIG)["platform"] == "linux/amd64"


# Annotations and links


def test_manifest_annotations_are_recorded():
    annotations = {"org.opencontainers.image.created": "2024-05-02T10:11:12Z"}

    metadata = image_metadata(image_manifest(annotations=annotations), DOCKER_CONFIG)

    assert metadata["annotations"] == annotations


def test_manifest_annotations_fill_in_what_labels_leave_out():
    annotations = {
        "org.opencontainers.image.description": "From the manifest",
        "org.opencontainers.image.authors": "Bob",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.url": "https://example.org/",
        "org.opencontainers.image.source": "https://example.org/src",
        "org.opencontainers.image.documentation": "https://example.org/docs",
    }

    metadata = image_metadata(image_manifest(annotations=annotations), labels_config({}))

    assert metadata["description"] == "From the manifest"
    assert metadata["authors"] == ["Bob"]
    assert metadata["licenses"] == "Apache-2.0"
    assert metadata["project_url"] == "https://example.org/"
    assert metadata["repository_url"] == "https://example.org/src"
    assert metadata["documentation_url"] == "https://example.org/docs"


def test_labels_win_over_manifest_annotations():
    annotations = {
        "org.opencontainers.image.description": "From the manifest",
        "org.opencontainers.image.authors": "Bob",
    }

    metadata = image_metadata(image_manifest(annotations=annotations), DOCKER_CONFIG)

    assert metadata["description"] == "The web frontend"
    assert metadata["authors"] == ["Alice <alice@example.com>"]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.com/web",
        "/relative/path",
        "example.com",
        "https://",
        "http://[::1",
        "https://example.com/a b",
        "https://example.com/\nx",
    ],
)
def test_links_that_are_not_absolute_http_urls_are_dropped(url):
    metadata = image_metadata(
        image_manifest(),
        labels_config(
            {
                "org.opencontainers.image.url": url,
                "org.opencontainers.image.source": url,
                "org.opencontainers.image.documentation": url,
            }
        ),
    )

    assert "project_url" not in metadata
    assert "repository_url" not in metadata
    assert "documentation_url" not in metadata


def test_a_bad_link_label_falls_back_to_a_good_annotation():
    manifest = image_manifest(annotations={"org.opencontainers.image.url": "https://example.org"})

    metadata = image_metadata(
        manifest, labels_config({"org.opencontainers.image.url": "javascript:alert(1)"})
    )

    assert metadata["project_url"] == "https://example.org"


def test_non_string_labels_are_ignored():
    metadata = image_metadata(
        image_manifest(), labels_config({"a": "b", "n": 1, "l": ["x"], "null": None})
    )

    assert metadata["labels"] == {"a": "b"}


# Configs that cannot be read


@pytest.mark.parametrize(
    "config",
    [
        None,
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[]",
        b"42",
        b'"linux/amd64"',
        b"null",
        b"[" * 100_000,
        b'{"os": ' + b"9" * 5000 + b"}",
    ],
)
def test_unreadable_image_config_gives_unknown_platform(config):
    metadata = image_metadata(image_manifest(), config)

    assert metadata == {"type": "oci", "platform": "unknown/unknown"}


@pytest.mark.parametrize(
    "changes",
    [
        {"os": 1},
        {"os": None},
        {"architecture": ["amd64"]},
        {"os": ""},
        {"architecture": {"name": "amd64"}},
    ],
)
def test_image_config_with_wrong_platform_types_gives_unknown_platform(changes):
    metadata = image_metadata(image_manifest(), config_with(**changes))

    assert metadata["platform"] == "unknown/unknown"


def test_image_config_with_a_non_string_variant_leaves_it_out():
    metadata = image_metadata(image_manifest(), config_with(variant=8))

    assert metadata["platform"] == "linux/amd64"


@pytest.mark.parametrize("section", [None, "x", [], {"Labels": None}, {"Labels": ["a=b"]}])
def test_image_config_with_a_wrong_config_section_has_no_labels(section):
    metadata = image_metadata(image_manifest(), config_with(config=section))

    assert metadata["platform"] == "linux/amd64"
    assert "labels" not in metadata
    assert "description" not in metadata


@pytest.mark.parametrize(
    "history",
    [None, "x", {"created_by": "x"}, [None, 1, "RUN x", {"created_by": 5}, {"created_by": None}]],
)
def test_image_config_with_a_wrong_history_has_no_layer_creation(history):
    metadata = image_metadata(image_manifest(), config_with(history=history))

    assert "layer_creation" not in metadata


def test_config_over_the_size_bound_is_not_decoded():
    padding = " " * MAX_CONFIG_SIZE
    oversized = b'{"os": "linux", "architecture": "amd64"}' + padding.encode()

    assert image_metadata(image_manifest(), oversized)["platform"] == "unknown/unknown"


def test_random_config_content_never_raises():
    rng = random.Random(11)
    samples = [json.loads(DOCKER_CONFIG), json.loads(HELM_CHART_CONFIG)]
    values = [None, True, 0, -1, 2.5, "", "x", [], [None], ["x"], {}, {"name": 1}, [{"name": None}]]
    config_types = [DOCKER_IMAGE_CONFIG, HELM_CONFIG, "application/vnd.example.config+json"]
    for _ in range(3000):
        document = copy.deepcopy(rng.choice(samples))
        for _ in range(rng.randrange(1, 4)):
            target = document
            if isinstance(target.get("config"), dict) and rng.random() < 0.5:
                target = target["config"]
            keys = [*target.keys(), "Labels", "maintainers", "sources", "history"]
            target[rng.choice(keys)] = copy.deepcopy(rng.choice(values))
        config = json.dumps(document).encode()
        if rng.random() < 0.1:
            config = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        metadata = image_metadata(image_manifest(rng.choice(config_types)), config)
        assert metadata["type"] in ("oci", "helm")


# Helm charts


def test_helm_chart_metadata_reads_chart_fields():
    manifest = parse_manifest(HELM_MANIFEST, OCI_MANIFEST)

    metadata = image_metadata(manifest, HELM_CHART_CONFIG)

    assert metadata["type"] == "helm"
    assert metadata["description"] == "Podinfo Helm chart for Kubernetes"
    assert metadata["project_url"] == "https://github.com/stefanprodan/podinfo"
    assert metadata["repository_url"] == "https://github.com/stefanprodan/podinfo"
    assert metadata["authors"] == ["stefanprodan", "alice"]
    assert metadata["helm"] == {
        "name": "podinfo",
        "version": "6.5.4",
        "appVersion": "6.5.4",
        "apiVersion": "v2",
        "keywords": ["kubernetes", "podinfo"],
    }


def test_helm_chart_has_no_platform():
    metadata = image_metadata(parse_manifest(HELM_MANIFEST, OCI_MANIFEST), HELM_CHART_CONFIG)

    assert "platform" not in metadata
    assert "artifact_type" not in metadata


def test_helm_chart_records_manifest_annotations():
    metadata = image_metadata(parse_manifest(HELM_MANIFEST, OCI_MANIFEST), HELM_CHART_CONFIG)

    assert metadata["annotations"]["org.opencontainers.image.title"] == "podinfo"


def test_helm_chart_repository_url_is_only_the_first_source():
    chart = json.loads(HELM_CHART_CONFIG)
    chart["sources"] = ["not a url", "https://example.com/second"]

    metadata = image_metadata(image_manifest(HELM_CONFIG), json.dumps(chart).encode())

    assert "repository_url" not in metadata


def test_helm_chart_home_that_is_not_a_web_url_is_dropped():
    chart = json.loads(HELM_CHART_CONFIG)
    chart["home"] = "javascript:alert(1)"

    metadata = image_metadata(image_manifest(HELM_CONFIG), json.dumps(chart).encode())

    assert "project_url" not in metadata


def test_helm_chart_skips_maintainers_without_a_name():
    chart = json.loads(HELM_CHART_CONFIG)
    chart["maintainers"] = [{"email": "x@example.com"}, "bob", {"name": 3}, {"name": "carol"}]

    metadata = image_metadata(image_manifest(HELM_CONFIG), json.dumps(chart).encode())

    assert metadata["authors"] == ["carol"]


def test_helm_chart_without_optional_fields_has_a_minimal_helm_dict():
    metadata = image_metadata(image_manifest(HELM_CONFIG), b'{"name": "tiny", "version": "0.1.0"}')

    assert metadata == {"type": "helm", "helm": {"name": "tiny", "version": "0.1.0"}}


@pytest.mark.parametrize("config", [None, b"{", b"[]", b"\x00\x01"])
def test_unreadable_helm_config_is_still_a_helm_chart(config):
    assert image_metadata(image_manifest(HELM_CONFIG), config) == {"type": "helm"}


def test_helm_chart_description_falls_back_to_the_manifest_annotation():
    manifest = image_manifest(
        HELM_CONFIG, annotations={"org.opencontainers.image.description": "From helm push"}
    )

    assert image_metadata(manifest, b'{"name": "tiny"}')["description"] == "From helm push"


# Artifacts


def test_artifact_with_the_empty_config_records_its_artifact_type_without_platform():
    metadata = image_metadata(parse_manifest(ORAS_ARTIFACT, OCI_MANIFEST), EMPTY_CONTENT)

    assert metadata == {
        "type": "oci",
        "artifact_type": "application/vnd.example.sbom.v1",
        "annotations": {"org.opencontainers.image.created": "2024-05-02T10:11:12Z"},
    }


def test_artifact_with_a_custom_config_type_records_it_as_artifact_type():
    manifest = image_manifest("application/vnd.acme.rocket.config.v1+json")

    metadata = image_metadata(manifest, b'{"engine": "v2"}')

    assert metadata == {
        "type": "oci",
        "artifact_type": "application/vnd.acme.rocket.config.v1+json",
    }


def test_artifact_config_that_names_a_platform_keeps_it():
    manifest = image_manifest("application/vnd.example.wasm.config.v1+json")

    metadata = image_metadata(manifest, b'{"os": "wasip1", "architecture": "wasm"}')

    assert metadata["platform"] == "wasip1/wasm"


def test_artifact_with_unreadable_config_has_no_platform():
    metadata = image_metadata(image_manifest("application/vnd.example.x"), b"\x89PNG")

    assert "platform" not in metadata


def test_image_with_an_explicit_artifact_type_records_it():
    manifest = image_manifest(artifact_type="application/vnd.example.signed-image.v1")

    metadata = image_metadata(manifest, DOCKER_CONFIG)

    assert metadata["artifact_type"] == "application/vnd.example.signed-image.v1"
    assert metadata["platform"] == "linux/amd64"


# Indexes


def test_index_metadata_lists_children_with_platform_digest_and_size():
    metadata = index_metadata(parse_manifest(OCI_INDEX_BODY, OCI_INDEX))

    assert metadata["type"] == "oci"
    assert metadata["manifests"] == [
        {"platform": "linux/amd64", "digest": "sha256:" + "1" * 64, "size": 1054},
        {"platform": "linux/arm/v7", "digest": "sha256:" + "2" * 64, "size": 1055},
        {"platform": "unknown/unknown", "digest": "sha256:" + "3" * 64, "size": 566},
    ]


def test_index_metadata_reads_description_authors_and_links_from_annotations():
    metadata = index_metadata(parse_manifest(OCI_INDEX_BODY, OCI_INDEX))

    assert metadata["description"] == "A multi-arch web server"
    assert metadata["authors"] == ["Alice"]
    assert metadata["repository_url"] == "https://git.example.com/acme/web"
    assert metadata["annotations"]["org.opencontainers.image.authors"] == "Alice"


def test_index_child_with_empty_os_has_unknown_platform():
    manifest = ParsedManifest(
        media_type=OCI_INDEX,
        manifests=(
            Descriptor(OCI_MANIFEST, LAYER_DIGEST, 5, platform={"os": "", "architecture": "x"}),
        ),
    )

    assert index_metadata(manifest)["manifests"][0]["platform"] == "unknown/unknown"


def test_index_metadata_records_the_index_artifact_type():
    manifest = ParsedManifest(
        media_type=OCI_INDEX, artifact_type="application/vnd.example.bundle.v1"
    )

    assert index_metadata(manifest) == {
        "type": "oci",
        "artifact_type": "application/vnd.example.bundle.v1",
    }


def test_image_metadata_given_an_index_answers_with_index_metadata():
    manifest = parse_manifest(OCI_INDEX_BODY, OCI_INDEX)

    assert image_metadata(manifest, None) == index_metadata(manifest)


def test_metadata_is_json_serialisable():
    for metadata in (
        image_metadata(image_manifest(), DOCKER_CONFIG),
        image_metadata(parse_manifest(HELM_MANIFEST, OCI_MANIFEST), HELM_CHART_CONFIG),
        index_metadata(parse_manifest(OCI_INDEX_BODY, OCI_INDEX)),
    ):
        assert json.loads(json.dumps(metadata)) == metadata


def test_metadata_does_not_share_the_manifests_annotations():
    manifest = image_manifest(annotations={"a": "b"})

    image_metadata(manifest, DOCKER_CONFIG)["annotations"]["a"] = "changed"

    assert manifest.annotations == {"a": "b"}

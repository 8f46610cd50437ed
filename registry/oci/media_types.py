"""Media types of manifests, configs and layers, as the OCI image spec and Docker name them."""

from __future__ import annotations

import re

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"

OCI_IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_IMAGE_CONFIG = "application/vnd.docker.container.image.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"

# The OCI "empty" blob: artifacts without a config point at it.
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_NONDISTRIBUTABLE_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_NONDISTRIBUTABLE_LAYER_GZIP = OCI_NONDISTRIBUTABLE_LAYER + "+gzip"
OCI_NONDISTRIBUTABLE_LAYER_ZSTD = OCI_NONDISTRIBUTABLE_LAYER + "+zstd"

IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SUPPORTED_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST})
IMAGE_CONFIG_TYPES = frozenset({OCI_IMAGE_CONFIG, DOCKER_IMAGE_CONFIG})
FOREIGN_LAYER_TYPES = frozenset(
    {
        DOCKER_FOREIGN_LAYER,
        OCI_NONDISTRIBUTABLE_LAYER,
        OCI_NONDISTRIBUTABLE_LAYER_GZIP,
        OCI_NONDISTRIBUTABLE_LAYER_ZSTD,
    }
)

# Content-Types that say nothing about the manifest's kind, so the body's mediaType decides.
GENERIC_CONTENT_TYPES = frozenset({"", "application/json", "application/octet-stream", "*/*"})

# RFC 6838 media type syntax, as the image spec's JSON schema writes it.
MEDIA_TYPE_PATTERN = re.compile(
    r"\A[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\Z"
)

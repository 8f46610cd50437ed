"""Helpers for the /v2 endpoint tests: Basic auth headers, requests, pushes and OCI documents."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

API_VERSION_HEADER = "Docker-Distribution-Api-Version"
API_VERSION = "registry/2.0"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

EMPTY_CONTENT = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

# The error codes of the OCI distribution spec (and Docker's, which it keeps).
SPEC_ERROR_CODES = frozenset(
    {
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
    }
)


# Credentials


def basic_auth(username: str, password: str) -> dict[str, str]:
    """The WSGI environ entry of an `Authorization: Basic ...` header."""
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {encoded}"}


# The passwords tests/conftest.py gives its users.
ALICE = basic_auth("alice", "alice-pw")
BOB = basic_auth("bob", "bob-pw")
ROOT = basic_auth("root", "root-pw")
ANONYMOUS: dict[str, str] = {}


# Requests and responses


def send(
    client,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    auth: dict[str, str] | None = None,
    content_type: str = "application/octet-stream",
    **extra,
):
    """One request with a raw body (none when empty), as registry clients send them."""
    return client.generic(method, path, body, content_type=content_type, **(auth or {}), **extra)


def content(response) -> bytes:
    """The body of a response, streamed or not."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def error_entries(response) -> list[dict]:
    """The `errors` list of an error response, checking the body's shape on the way."""
    assert response["Content-Type"].startswith("application/json")
    document = json.loads(response.content)
    assert set(document) == {"errors"}
    assert isinstance(document["errors"], list)
    assert document["errors"]
    for entry in document["errors"]:
        assert isinstance(entry.get("code"), str)
        assert isinstance(entry.get("message"), str)
    return document["errors"]


def assert_error(response, status: int, code: str) -> dict:
    """Check an OCI error response (status, API version, body) and return its first entry."""
    assert response.status_code == status, (response.status_code, content(response)[:500])
    assert response[API_VERSION_HEADER] == API_VERSION
    entries = error_entries(response)
    assert entries[0]["code"] == code, entries
    return entries[0]


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def canonical(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


# Blobs


def push_blob(client, repo: str, data: bytes, *, auth=ALICE, algorithm: str = "sha256") -> str:
    """Upload `data` to `repo` ("owner/image") in one monolithic POST; returns its digest."""
    digest = digest_of(data, algorithm)
    response = send(client, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data, auth=auth)
    assert response.status_code == 201, (response.status_code, response.content)
    return digest


def start_upload(client, repo: str, *, auth=ALICE) -> str:
    """Open an upload session; returns its Location (the upload URL)."""
    response = send(client, "POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
    assert response.status_code == 202, (response.status_code, response.content)
    return response["Location"]


# Manifests


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def image_config(
    *,
    os: str = "linux",
    architecture: str = "amd64",
    variant: str | None = None,
    labels: dict | None = None,
    history: list | None = None,
) -> bytes:
    """An image config document, as `docker build` writes one."""
    document: dict = {
        "architecture": architecture,
        "os": os,
        "config": {"Labels": labels or {}},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": history or [],
    }
    if variant:
        document["variant"] = variant
    return canonical(document)


def image_manifest(
    config: bytes,
    layers: list[bytes],
    *,
    media_type: str | None = OCI_MANIFEST,
    config_type: str = OCI_CONFIG,
    layer_type: str = OCI_LAYER,
    layer_sizes: list[int] | None = None,
    **fields,
) -> bytes:
    """An image manifest over `config` and `layers`; extra fields (subject, ...) as given."""
    layer_descriptors = [descriptor(layer_type, layer) for layer in layers]
    for entry, size in zip(layer_descriptors, layer_sizes or [], strict=False):
        entry["size"] = size
    document = {
        "schemaVersion": 2,
        "config": descriptor(config_type, config),
        "layers": layer_descriptors,
        **fields,
    }
    if media_type:
        document["mediaType"] = media_type
    return canonical(document)


def index_manifest(
    children: list[tuple[bytes, dict]],
    *,
    media_type: str = OCI_INDEX,
    child_type: str = OCI_MANIFEST,
    **fields,
) -> bytes:
    """An index over (manifest bytes, platform) pairs."""
    document = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            descriptor(child_type, body, platform=platform) for body, platform in children
        ],
        **fields,
    }
    return canonical(document)


def artifact_manifest(
    blobs: list[bytes],
    *,
    artifact_type: str = "application/vnd.example.sbom.v1",
    layer_type: str = "application/vnd.example.sbom.layer.v1+json",
    subject: dict | None = None,
    annotations: dict | None = None,
) -> bytes:
    """An OCI artifact: the empty config, an artifactType, and optionally a subject."""
    document: dict = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
        "layers": [descriptor(layer_type, blob) for blob in blobs],
    }
    if subject is not None:
        document["subject"] = subject
    if annotations:
        document["annotations"] = annotations
    return canonical(document)


def put_manifest(client, repo: str, reference: str, body: bytes, *, auth=ALICE, media_type=None):
    """PUT a manifest; the Content-Type is the body's mediaType unless given."""
    if media_type is None:
        media_type = json.loads(body).get("mediaType") or "application/json"
    return send(
        client, "PUT", f"/v2/{repo}/manifests/{reference}", body, auth=auth, content_type=media_type
    )


@dataclass(frozen=True)
class PushedImage:
    digest: str
    manifest: bytes
    config_digest: str
    layer_digests: list[str]
    media_type: str


def push_image(
    client,
    repo: str,
    reference: str,
    *,
    auth=ALICE,
    layers: tuple[bytes, ...] = (b"layer one",),
    config: bytes | None = None,
    docker: bool = False,
    **fields,
) -> PushedImage:
    """Push the blobs and the manifest of an image under a tag (or digest) of `repo`."""
    config = config if config is not None else image_config()
    config_digest = push_blob(client, repo, config, auth=auth)
    layer_digests = [push_blob(client, repo, layer, auth=auth) for layer in layers]
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    body = image_manifest(
        config,
        list(layers),
        media_type=media_type,
        config_type=DOCKER_CONFIG if docker else OCI_CONFIG,
        layer_type=DOCKER_LAYER if docker else OCI_LAYER,
        **fields,
    )
    response = put_manifest(client, repo, reference, body, auth=auth, media_type=media_type)
    assert response.status_code == 201, (response.status_code, response.content)
    assert response["Docker-Content-Digest"] == digest_of(body)
    return PushedImage(digest_of(body), body, config_digest, layer_digests, media_type)


def push_artifact(
    client, repo: str, reference: str, *, auth=ALICE, blobs: tuple[bytes, ...] = (b"sbom",), **kw
) -> PushedImage:
    """Push an artifact (without uploading the empty config, as oras does not always)."""
    layer_digests = [push_blob(client, repo, blob, auth=auth) for blob in blobs]
    body = artifact_manifest(list(blobs), **kw)
    response = put_manifest(client, repo, reference, body, auth=auth)
    assert response.status_code == 201, (response.status_code, response.content)
    return PushedImage(digest_of(body), body, EMPTY_DIGEST, layer_digests, OCI_MANIFEST)

"""Manifest bodies: parse and validate OCI / Docker image manifests and indexes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from registry.oci.digests import parse_digest
from registry.oci.errors import (
    InvalidDigest,
    InvalidManifest,
    ManifestTooLarge,
    UnsupportedManifest,
    quoted,
)
from registry.oci.media_types import (
    FOREIGN_LAYER_TYPES,
    GENERIC_CONTENT_TYPES,
    INDEX_TYPES,
    MEDIA_TYPE_PATTERN,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1_TYPES,
    SUPPORTED_TYPES,
)

# The OCI "empty" blob (`{}`): artifacts without a config point at it.
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
EMPTY_SIZE = 2
EMPTY_CONTENT = b"{}"

# Descriptor sizes are int64 in the image spec.
MAX_DESCRIPTOR_SIZE = 2**63 - 1

SCHEMA1_MESSAGE = (
    "only manifest schema version 2 is supported; "
    "Docker image manifest schema 1 is deprecated, push with a current client"
)


@dataclass(frozen=True)
class Descriptor:
    """A reference to content by media type, digest and size (OCI descriptor)."""

    media_type: str
    digest: str
    size: int
    annotations: dict = field(default_factory=dict)
    artifact_type: str = ""
    platform: dict | None = None
    urls: tuple[str, ...] = ()

    @property
    def is_foreign(self) -> bool:
        """A non-distributable layer that clients fetch from its URLs, not from us."""
        return self.media_type.lower() in FOREIGN_LAYER_TYPES and bool(self.urls)


@dataclass(frozen=True)
class ParsedManifest:
    """A validated image manifest or index."""

    media_type: str
    schema_version: int = 2
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str = ""
    annotations: dict = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def referenced_blobs(self) -> tuple[Descriptor, ...]:
        """Config and layers that must exist in the repository, each (digest, size) once.

        Foreign layers with URLs live elsewhere; the same layer listed twice
        (or an artifact whose config and layer are both the empty blob) is one blob.
        """
        if self.is_index or self.config is None:
            return ()
        seen: set[tuple[str, int]] = set()
        blobs = []
        for descriptor in (self.config, *self.layers):
            key = (descriptor.digest, descriptor.size)
            if descriptor.is_foreign or key in seen:
                continue
            seen.add(key)
            blobs.append(descriptor)
        return tuple(blobs)

    @property
    def effective_artifact_type(self) -> str:
        """The artifactType the referrers API lists: explicit, else an image's config type."""
        if self.artifact_type:
            return self.artifact_type
        if not self.is_index and self.config is not None:
            return self.config.media_type
        return ""

    def descriptor(self, digest: str, size: int) -> Descriptor:
        """This manifest as a descriptor, the way the referrers API lists it."""
        return Descriptor(
            media_type=self.media_type,
            digest=digest,
            size=size,
            annotations=dict(self.annotations),
            artifact_type=self.effective_artifact_type,
        )


EMPTY_DESCRIPTOR = Descriptor(media_type=OCI_EMPTY, digest=EMPTY_DIGEST, size=EMPTY_SIZE)


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a pushed manifest body; InvalidManifest, or UnsupportedManifest for a
    schema 1 manifest, when it is not.

    Any size is parsed: how large a manifest may be is the site's choice, which the
    caller enforces while it reads the body (`check_manifest_size`), and a stored
    manifest must parse again however that choice has moved since its push.
    """
    document = _load_document(body)
    _check_schema_version(document)
    media_type = _resolve_media_type(document, content_type)
    if media_type in INDEX_TYPES:
        return _parse_index(document, media_type)
    return _parse_image_manifest(document, media_type)


def check_manifest_size(size: int, limit: int) -> None:
    """ManifestTooLarge if a body of `size` bytes is past the caller's `limit`."""
    if size > limit:
        raise ManifestTooLarge(f"manifest exceeds the maximum size of {limit} bytes")


def descriptor_json(d: Descriptor) -> dict:
    """The OCI descriptor object for `d`, optional fields only when set."""
    out: dict = {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
    if d.artifact_type:
        out["artifactType"] = d.artifact_type
    if d.annotations:
        out["annotations"] = dict(d.annotations)
    if d.urls:
        out["urls"] = list(d.urls)
    if d.platform:
        out["platform"] = dict(d.platform)
    return out


def _load_document(body: bytes) -> dict:
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidManifest("manifest body must be bytes")
    body = bytes(body)
    if not body.strip():
        raise InvalidManifest("manifest body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidManifest("manifest is not UTF-8 encoded JSON") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise InvalidManifest("manifest JSON is nested too deeply") from None
    except (json.JSONDecodeError, _NotPlainJSON) as exc:
        raise InvalidManifest(f"manifest is not valid JSON: {exc}") from None
    # The one other ValueError: an integer past Python's digit limit.
    except ValueError:
        raise InvalidManifest("manifest has a number too long to read") from None
    if not isinstance(document, dict):
        raise InvalidManifest("manifest must be a JSON object")
    # JSON writes NUL only as the escape \u0000; the walk is for when it may be there.
    if "\\u0000" in text and _holds_nul(document):
        raise InvalidManifest(
            "manifest holds a NUL character (\\u0000): no field needs one, and its "
            "annotations and metadata could not be stored"
        )
    return document


def _holds_nul(document) -> bool:
    """Whether a string (or a key) anywhere in the document holds U+0000; a loop, not
    recursion, so a deeply nested document cannot exhaust the stack.
    """
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


class _NotPlainJSON(ValueError):
    """JSON that Python's parser accepts but a strict reader would not."""


def _reject_constant(name: str):
    raise _NotPlainJSON(f"{name} is not a JSON value")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    # A key given twice could be read one way by us and another way by a client.
    document = {}
    for key, value in pairs:
        if key in document:
            raise _NotPlainJSON(f"duplicate key {quoted(key)}")
        document[key] = value
    return document


def _check_schema_version(document: dict) -> None:
    """2 passes; 1 is a schema 1 manifest (UnsupportedManifest: a capability we lack);
    anything else, missing included, is a broken document (InvalidManifest).
    """
    version = document.get("schemaVersion")
    # type() rather than isinstance(): JSON true must not pass as 1. And 2.0 is not 2:
    # Go clients decode schemaVersion into an int, and refuse 2.0 as we do.
    if type(version) is int and version == 2:
        return
    if type(version) is int and version == 1:
        raise UnsupportedManifest(SCHEMA1_MESSAGE)
    if "schemaVersion" not in document:
        raise InvalidManifest("manifest has no schemaVersion; it must be 2")
    raise InvalidManifest(
        f"schemaVersion must be the number 2, not {quoted(json.dumps(version))}",
        detail={"field": "schemaVersion"},
    )


def _resolve_media_type(document: dict, content_type: str | None) -> str:
    header = _bare_media_type(content_type)
    if header in GENERIC_CONTENT_TYPES:
        header = ""
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise InvalidManifest("mediaType must be a string")
    declared = (declared or "").lower()
    if header and declared and header != declared:
        raise InvalidManifest(
            f"Content-Type {quoted(header)} does not match the manifest's mediaType "
            f"{quoted(declared)}"
        )
    media_type = header or declared or _inferred_media_type(document)
    if media_type in SCHEMA1_TYPES:
        raise UnsupportedManifest(SCHEMA1_MESSAGE)
    if media_type not in SUPPORTED_TYPES:
        raise InvalidManifest(
            f"unsupported manifest media type {quoted(media_type)}; expected one of "
            + ", ".join(sorted(SUPPORTED_TYPES))
        )
    return media_type


def _bare_media_type(content_type: str | None) -> str:
    if not isinstance(content_type, str):
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _inferred_media_type(document: dict) -> str:
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document:
        return OCI_MANIFEST
    raise InvalidManifest(
        "manifest has no mediaType, and neither config nor manifests to tell its kind"
    )


def _parse_image_manifest(document: dict, media_type: str) -> ParsedManifest:
    # An image manifest that also lists manifests reads as an index to some clients
    # (CVE-2021-41190); refuse the ambiguity.
    if document.get("manifests") is not None:
        raise InvalidManifest("an image manifest must not have manifests; is it an index?")
    if "config" not in document:
        raise InvalidManifest("an image manifest needs a config descriptor")
    return ParsedManifest(
        media_type=media_type,
        schema_version=2,
        config=_descriptor(document["config"], "config"),
        layers=_descriptor_list(document, "layers"),
        subject=_optional_descriptor(document.get("subject"), "subject"),
        artifact_type=_optional_media_type(document.get("artifactType"), "artifactType"),
        annotations=_annotations(document.get("annotations"), "annotations"),
    )


def _parse_index(document: dict, media_type: str) -> ParsedManifest:
    # The mirror image of the check above.
    if document.get("config") is not None or document.get("layers") is not None:
        raise InvalidManifest("an index must not have config or layers; is it an image manifest?")
    return ParsedManifest(
        media_type=media_type,
        schema_version=2,
        manifests=_descriptor_list(document, "manifests"),
        subject=_optional_descriptor(document.get("subject"), "subject"),
        artifact_type=_optional_media_type(document.get("artifactType"), "artifactType"),
        annotations=_annotations(document.get("annotations"), "annotations"),
    )


def _descriptor_list(document: dict, key: str) -> tuple[Descriptor, ...]:
    if key not in document:
        raise InvalidManifest(f"manifest needs a {key} list")
    value = document[key]
    # Go encodes a nil slice as null, so Go clients may send null for "no entries".
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidManifest(f"{key} must be a list of descriptors")
    return tuple(_descriptor(item, f"{key}[{i}]") for i, item in enumerate(value))


def _optional_descriptor(value, where: str) -> Descriptor | None:
    return None if value is None else _descriptor(value, where)


def _descriptor(value, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise InvalidManifest(f"{where} must be a descriptor object")
    media_type = value.get("mediaType")
    if not isinstance(media_type, str) or not MEDIA_TYPE_PATTERN.match(media_type):
        raise InvalidManifest(f"{where}.mediaType must be a media type such as type/subtype")
    return Descriptor(
        media_type=media_type,
        digest=_digest(value.get("digest"), f"{where}.digest"),
        size=_size(value.get("size"), f"{where}.size"),
        annotations=_annotations(value.get("annotations"), f"{where}.annotations"),
        artifact_type=_optional_media_type(value.get("artifactType"), f"{where}.artifactType"),
        platform=_platform(value.get("platform"), f"{where}.platform"),
        urls=_urls(value.get("urls"), f"{where}.urls"),
    )


def _digest(value, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidManifest(f"{where} must be a digest string", detail={"field": where})
    try:
        parse_digest(value)
    except InvalidDigest as exc:
        # parse_digest quotes the value; keep a megabyte of junk out of the error body.
        reason = exc.message if len(value) <= 200 else "not a digest"
        raise InvalidManifest(f"{where} is invalid: {reason}", detail={"field": where}) from None
    return value


def _size(value, where: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_DESCRIPTOR_SIZE:
        raise InvalidManifest(f"{where} must be a non-negative integer", detail={"field": where})
    return value


def _optional_media_type(value, where: str) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not MEDIA_TYPE_PATTERN.match(value):
        raise InvalidManifest(f"{where} must be a media type such as type/subtype")
    return value


def _annotations(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidManifest(f"{where} must map strings to strings")
    return dict(value)


def _platform(value, where: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidManifest(f"{where} must be an object")
    for key in ("os", "architecture"):
        if not isinstance(value.get(key), str):
            raise InvalidManifest(f"{where}.{key} must be a string")
    for key in ("variant", "os.version"):
        if key in value and not isinstance(value[key], str):
            raise InvalidManifest(f"{where}.{key} must be a string")
    for key in ("os.features", "features"):
        if key in value and not _is_string_list(value[key]):
            raise InvalidManifest(f"{where}.{key} must be a list of strings")
    return dict(value)


def _urls(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not _is_string_list(value):
        raise InvalidManifest(f"{where} must be a list of strings")
    return tuple(value)


def _is_string_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)

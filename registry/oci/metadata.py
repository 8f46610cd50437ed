"""The metadata a container version records: platform, labels and links, as Gitea stores them."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from registry.oci.manifests import Descriptor, ParsedManifest
from registry.oci.media_types import HELM_CONFIG, IMAGE_CONFIG_TYPES

TYPE_OCI = "oci"
TYPE_HELM = "helm"
UNKNOWN_PLATFORM = "unknown/unknown"

# Configs are small; one bigger than this (Gitea's bound) is not worth decoding.
MAX_CONFIG_SIZE = 8 * 1024 * 1024

LABEL_DESCRIPTION = "org.opencontainers.image.description"
LABEL_AUTHORS = "org.opencontainers.image.authors"
LABEL_LICENSES = "org.opencontainers.image.licenses"
LABEL_URL = "org.opencontainers.image.url"
LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_DOCUMENTATION = "org.opencontainers.image.documentation"

# Metadata key, the label (or manifest annotation) it comes from, and whether it is a link.
TEXT_FIELDS = (
    ("description", LABEL_DESCRIPTION, False),
    ("licenses", LABEL_LICENSES, False),
    ("project_url", LABEL_URL, True),
    ("repository_url", LABEL_SOURCE, True),
    ("documentation_url", LABEL_DOCUMENTATION, True),
)

HELM_FIELDS = ("name", "version", "appVersion", "apiVersion")

NOP_MARKER = "#(nop) "


def image_metadata(manifest: ParsedManifest, config: bytes | None) -> dict:
    """Metadata of an image manifest, from its config blob (if read) and its annotations."""
    if manifest.is_index:
        return index_metadata(manifest)
    config_type = manifest.config.media_type.lower() if manifest.config else ""
    document = _config_document(config)
    if config_type == HELM_CONFIG:
        metadata = _helm_metadata(document)
    elif config_type in IMAGE_CONFIG_TYPES:
        metadata = _image_config_metadata(document)
    else:
        metadata = _artifact_metadata(document)
    artifact_type = manifest.artifact_type
    if not artifact_type and config_type not in IMAGE_CONFIG_TYPES | {HELM_CONFIG}:
        artifact_type = manifest.effective_artifact_type
    metadata["artifact_type"] = artifact_type
    _fill_from_annotations(metadata, manifest.annotations)
    metadata["annotations"] = dict(manifest.annotations)
    return _without_empty(metadata)


def index_metadata(manifest: ParsedManifest) -> dict:
    """Metadata of an index: each child's platform, digest and size, and its annotations."""
    metadata = {
        "type": TYPE_OCI,
        "manifests": [
            {
                "platform": _descriptor_platform(child),
                "digest": child.digest,
                "size": child.size,
            }
            for child in manifest.manifests
        ],
        "artifact_type": manifest.artifact_type,
    }
    _fill_from_annotations(metadata, manifest.annotations)
    metadata["annotations"] = dict(manifest.annotations)
    return _without_empty(metadata)


def _config_document(config: bytes | None) -> dict | None:
    if not isinstance(config, (bytes, bytearray, memoryview)) or len(config) > MAX_CONFIG_SIZE:
        return None
    try:
        text = bytes(config).decode("utf-8")
        document = json.loads(text)
        if "\\u0000" in text:
            # The config is the image's, not ours to refuse; but what the version
            # records from it goes into a JSON column, which on PostgreSQL cannot hold
            # U+0000.
            document = _without_nul(document)
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _without_nul(value):
    """`value` with U+0000 dropped from every string and key."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _image_config_metadata(document: dict | None) -> dict:
    if document is None:
        return {"type": TYPE_OCI, "platform": UNKNOWN_PLATFORM}
    section = document.get("config")
    labels = _string_map(section.get("Labels") if isinstance(section, dict) else None)
    metadata = {
        "type": TYPE_OCI,
        "platform": _platform_string(document) or UNKNOWN_PLATFORM,
        "labels": labels,
        "layer_creation": _layer_creation(document.get("history")),
    }
    _fill_text_fields(metadata, labels)
    return metadata


def _artifact_metadata(document: dict | None) -> dict:
    # An artifact's config is whatever its tool wants; a platform only if it names one.
    metadata = {"type": TYPE_OCI}
    if document is not None:
        metadata["platform"] = _platform_string(document)
    return metadata


def _helm_metadata(document: dict | None) -> dict:
    metadata: dict = {"type": TYPE_HELM}
    if document is None:
        return metadata
    metadata["description"] = _string(document.get("description"))
    metadata["project_url"] = _web_url(document.get("home"))
    sources = document.get("sources")
    if isinstance(sources, list) and sources:
        metadata["repository_url"] = _web_url(sources[0])
    maintainers = document.get("maintainers")
    if isinstance(maintainers, list):
        metadata["authors"] = [
            m["name"] for m in maintainers if isinstance(m, dict) and _string(m.get("name"))
        ]
    helm = {key: _string(document.get(key)) for key in HELM_FIELDS}
    keywords = document.get("keywords")
    if isinstance(keywords, list):
        helm["keywords"] = [k for k in keywords if isinstance(k, str) and k]
    metadata["helm"] = _without_empty(helm)
    return metadata


def _fill_text_fields(metadata: dict, source: dict) -> None:
    """Set description, licenses, links and authors from `source` where still unset."""
    for key, name, is_link in TEXT_FIELDS:
        if metadata.get(key):
            continue
        value = source.get(name, "")
        metadata[key] = _web_url(value) if is_link else value
    if not metadata.get("authors") and source.get(LABEL_AUTHORS):
        metadata["authors"] = [source[LABEL_AUTHORS]]


def _fill_from_annotations(metadata: dict, annotations: dict) -> None:
    _fill_text_fields(metadata, _string_map(annotations))


def _layer_creation(history) -> list[str]:
    if not isinstance(history, list):
        return []
    commands = []
    for entry in history:
        command = _history_command(entry.get("created_by") if isinstance(entry, dict) else None)
        if command:
            commands.append(command)
    return commands


def history_steps(config: bytes | None) -> list[tuple[str, bool]]:
    """(command, empty_layer) for each history entry of an image config, in order.

    Entries that are not `empty_layer` made the manifest's layers, one each, so pages
    can put every layer beside the command that built it.
    """
    document = _config_document(config)
    history = document.get("history") if document is not None else None
    if not isinstance(history, list):
        return []
    return [
        (_history_command(entry.get("created_by")), entry.get("empty_layer") is True)
        for entry in history
        if isinstance(entry, dict)
    ]


def _history_command(command) -> str:
    if not isinstance(command, str):
        return ""
    # Classic docker build writes metadata-only steps as "/bin/sh -c #(nop)  CMD [...]".
    marker = command.find(NOP_MARKER)
    if marker != -1:
        command = command[marker + len(NOP_MARKER) :]
    return command.strip()


def _platform_string(document: dict) -> str:
    """`os/arch[/variant]` from an image config or a descriptor's platform, else ""."""
    os_ = _string(document.get("os"))
    architecture = _string(document.get("architecture"))
    if not os_ or not architecture:
        return ""
    variant = _string(document.get("variant"))
    return f"{os_}/{architecture}/{variant}" if variant else f"{os_}/{architecture}"


def _descriptor_platform(descriptor: Descriptor) -> str:
    platform = descriptor.platform if isinstance(descriptor.platform, dict) else {}
    return _platform_string(platform) or UNKNOWN_PLATFORM


def _string(value) -> str:
    return value if isinstance(value, str) else ""


def _string_map(value) -> dict:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _web_url(value) -> str:
    """`value` if it is an absolute http(s) URL; pages render these as links."""
    if not isinstance(value, str) or any(c.isspace() or ord(c) < 32 for c in value):
        return ""
    try:
        parts = urlsplit(value)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return value


def _without_empty(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if v not in ("", None, [], {})}

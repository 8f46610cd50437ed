"""Read-only queries behind the web pages: an owner's images, an image's versions, one version.

Pages show what the registry serves, so these use the same rows the /v2 API does:
versions that are not internal (the staging version never shows), the `Manifest`
row of each version's lead file, and `images.referrers` for referrers. Who may see
an owner is the access adapter's question; callers ask it before calling these.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.db.models import Exists, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce, Lower

from packages_core.content_store import ContentStore
from packages_core.models import Owner, Package, PackageBlob, PackageFile, PackageVersion
from registry import images, indexes
from registry.authentication import external_base
from registry.mirrors.service import mirror_of
from registry.mirrors.upstream import Upstream
from registry.models import Manifest
from registry.oci.digests import looks_like_digest, parse_digest
from registry.oci.errors import (
    InvalidDigest,
    InvalidManifest,
    ManifestNotFound,
    UnsupportedManifest,
)
from registry.oci.manifests import parse_manifest
from registry.oci.media_types import IMAGE_CONFIG_TYPES, INDEX_TYPES
from registry.oci.metadata import MAX_CONFIG_SIZE, TYPE_HELM, UNKNOWN_PLATFORM, history_steps

logger = logging.getLogger(__name__)

RECENT_TAG_COUNT = 5

# The `?type=` filter and `?sort=` orders of an image's version list.
TAGGED, UNTAGGED = "tagged", "untagged"
VERSION_KINDS = (TAGGED, UNTAGGED)
NEWEST, OLDEST, BY_NAME = "newest", "oldest", "name"
VERSION_ORDERS = (NEWEST, OLDEST, BY_NAME)

# What a version holds, as pages label it.
KIND_IMAGE, KIND_INDEX, KIND_HELM, KIND_ARTIFACT = "image", "index", "helm", "artifact"

LINK_FIELDS = (
    ("Project", "project_url"),
    ("Source", "repository_url"),
    ("Documentation", "documentation_url"),
)


def _tagged(versions: QuerySet[PackageVersion]) -> QuerySet[PackageVersion]:
    return versions.exclude(version__contains=":")


def _untagged(versions: QuerySet[PackageVersion]) -> QuerySet[PackageVersion]:
    return versions.filter(version__contains=":")


def is_index(version: PackageVersion) -> bool:
    """Whether the version is an index, by what it recorded at push."""
    return isinstance(version.metadata, dict) and "manifests" in version.metadata


def kind_of(media_type: str, metadata: dict) -> str:
    if metadata.get("type") == TYPE_HELM:
        return KIND_HELM
    if media_type in INDEX_TYPES or "manifests" in metadata:
        return KIND_INDEX
    if metadata.get("artifact_type"):
        return KIND_ARTIFACT
    return KIND_IMAGE


def platforms_of(metadata: dict) -> list[dict]:
    """An index's children as recorded at push, without `unknown/unknown` (attestations)."""
    children = metadata.get("manifests")
    if not isinstance(children, list):
        return []
    return [
        child
        for child in children
        if isinstance(child, dict) and child.get("platform") not in (None, "", UNKNOWN_PLATFORM)
    ]


def summary_of(kind: str, metadata: dict) -> str:
    """A few words on what a version is: its platform(s), chart or artifact type."""
    if kind == KIND_INDEX:
        return ", ".join(child["platform"] for child in platforms_of(metadata))
    if kind == KIND_HELM:
        app_version = metadata.get("helm", {}).get("appVersion", "")
        return f"Helm chart, app {app_version}" if app_version else "Helm chart"
    if kind == KIND_ARTIFACT:
        return metadata.get("artifact_type", "")
    platform = metadata.get("platform", "")
    return "" if platform == UNKNOWN_PLATFORM else platform


def _is_web_url(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def links_of(metadata: dict) -> list[tuple[str, str]]:
    """(label, url) of the version's project, source and documentation, http(s) only."""
    return [(label, metadata[key]) for label, key in LINK_FIELDS if _is_web_url(metadata.get(key))]


def _sizes(version_ids) -> dict[int, int]:
    """Bytes of each version's files (manifest, config and layers)."""
    versions = PackageVersion.objects.filter(pk__in=list(version_ids)).order_by().with_size()
    return dict(versions.values_list("pk", "total_size"))


def version_sizes(package: Package, version_ids) -> dict[int, int]:
    """Bytes of each version, one definition for the versions list and a version's page:
    its files' distinct blobs and, for an index, those of the platforms it lists that the
    image holds too (their manifests, configs and layers; attestations included, as they
    take space). Two queries for any number of versions, three with an index among them.
    """
    ids = list(version_ids)
    children = indexes.children_of(ids)
    listed = {digest for digests in children.values() for digest in digests}
    holders = indexes.holding_versions(package.pk, listed) if listed else {}
    members = {pk: {pk, *(holders[d] for d in children.get(pk, []) if d in holders)} for pk in ids}
    blobs: dict[int, dict[int, int]] = defaultdict(dict)
    rows = (
        PackageFile.objects.filter(version_id__in={i for group in members.values() for i in group})
        .order_by()
        .values_list("version_id", "blob_id", "blob__size")
    )
    for version_id, blob_id, size in rows:
        blobs[version_id][blob_id] = size
    sizes = {}
    for pk, group in members.items():
        distinct: dict[int, int] = {}
        for member in group:
            distinct.update(blobs[member])
        sizes[pk] = sum(distinct.values())
    return sizes


# An owner's images


@dataclass(frozen=True)
class ImageRow:
    owner: str
    name: str
    latest_tag: str
    version_count: int
    size: int
    last_pushed: datetime | None


def _published_images(packages: QuerySet[Package]) -> QuerySet[Package]:
    """Those of `packages` that are images with a published version, most recently
    pushed first (by the kept `last_pushed`: no aggregate over their versions; the
    figures of a page come from `describe_images`).
    """
    published = PackageVersion.objects.filter(package=OuterRef("pk")).published()
    return (
        packages.filter(Exists(published), type=images.CONTAINER)
        .select_related("owner")
        .order_by(F("last_pushed").desc(nulls_last=True), Lower("name"), "pk")
    )


def owner_images(owner: Owner, query: str = "") -> QuerySet[Package]:
    """The owner's images (see `_published_images`); `query` keeps those whose name
    contains it, ignoring case.
    """
    packages = _published_images(Package.objects.filter(owner=owner))
    query = query.strip()
    if query:
        packages = packages.filter(name__icontains=query)
    return packages


def recent_images(owners: QuerySet[Owner], limit: int = 10) -> QuerySet[Package]:
    """The most recently pushed images of these owners."""
    return _published_images(Package.objects.filter(owner__in=owners))[:limit]


def describe_images(packages) -> list[ImageRow]:
    """Rows for a page of `owner_images`: each image's published version count and size
    (its distinct blobs; both kept on the package) and latest tag (found for these rows
    only, through an index).
    """
    packages = list(packages)
    ids = [p.pk for p in packages]
    tags = _tagged(PackageVersion.objects.filter(package=OuterRef("pk")).published())
    latest = dict(
        Package.objects.filter(pk__in=ids)
        .annotate(tag=Coalesce(_newest(tags.filter(images.latest_candidates())), _newest(tags)))
        .values_list("pk", "tag")
    )
    return [
        ImageRow(
            owner=p.owner.name,
            name=p.name,
            latest_tag=latest.get(p.pk) or "",
            version_count=p.version_count,
            size=p.size,
            last_pushed=p.last_pushed,
        )
        for p in packages
    ]


def _newest(versions: QuerySet[PackageVersion]) -> Subquery:
    return Subquery(versions.order_by("-updated", "-pk").values("version")[:1])


def latest_tag(package: Package) -> PackageVersion | None:
    """The most recently pushed tag of an image or index in the image, never an artifact
    that refers to one (`images.latest_candidates`); else its most recently pushed tag
    (an image of artifacts alone).
    """
    tags = _tagged(package.versions.published()).order_by("-updated", "-pk")
    return tags.filter(images.latest_candidates()).first() or tags.first()


# An image's versions


@dataclass(frozen=True)
class Platform:
    """A child manifest of an index; `in_image` when this image holds it (so it has a page)."""

    platform: str
    digest: str
    size: int
    in_image: bool


@dataclass(frozen=True)
class VersionRow:
    version: str
    is_tagged: bool
    digest: str
    kind: str
    summary: str
    size: int
    download_count: int
    created: datetime
    updated: datetime
    platforms: tuple[Platform, ...] = ()


def image_versions(
    package: Package, *, kind: str = "", order: str = NEWEST
) -> QuerySet[PackageVersion]:
    """The image's versions: `kind` tagged or untagged (else both), in `order`; not the
    untagged manifests an index lists (`describe_versions` puts them under their index).

    Newest and oldest go by the last push (a tag pushed again is new again), read off
    an index; a page of them gets its manifests and sizes from `describe_versions`.
    """
    # An index's platforms show under it, not as loose untagged manifests.
    versions = package.versions.published().exclude(indexes.is_listed())
    if kind == TAGGED:
        versions = _tagged(versions)
    elif kind == UNTAGGED:
        versions = _untagged(versions)
    if order == BY_NAME:
        return versions.order_by(Lower("version"), "pk")
    if order == OLDEST:
        return versions.order_by("updated", "pk")
    return versions.order_by("-updated", "-pk")


def describe_versions(versions) -> list[VersionRow]:
    """Rows for a page of `image_versions`, with each one's manifest, size and, for an
    index, its platforms (a few queries for the page, whatever its rows).
    """
    versions = list(versions)
    if not versions:
        return []
    package = versions[0].package
    ids = [version.pk for version in versions]
    manifests = {
        version_id: (digest, media_type)
        for version_id, digest, media_type in Manifest.objects.filter(
            file__version_id__in=ids
        ).values_list("file__version_id", "digest", "media_type")
    }
    platforms = _platform_rows(package, {v.pk: v.metadata for v in versions if is_index(v)})
    sizes = version_sizes(package, ids)
    rows = []
    for version in versions:
        metadata = version.metadata if isinstance(version.metadata, dict) else {}
        digest, media_type = manifests.get(version.pk, ("", ""))
        kind = kind_of(media_type, metadata)
        rows.append(
            VersionRow(
                version=version.version,
                is_tagged=images.is_tag(version.version),
                digest=digest,
                kind=kind,
                summary=summary_of(kind, metadata),
                size=sizes.get(version.pk, 0),
                download_count=version.download_count,
                created=version.created,
                updated=version.updated,
                platforms=tuple(platforms.get(version.pk, ())),
            )
        )
    return rows


def _platform_rows(package: Package, index_metadata: dict[int, dict]) -> dict[int, list[Platform]]:
    """By index version id, its platforms as recorded at push (attestations hidden),
    each with its size where the image holds it: two queries for any number of indexes.
    """
    listed = {
        pk: [(child, str(child.get("digest", ""))) for child in platforms_of(metadata)]
        for pk, metadata in index_metadata.items()
    }
    digests = {digest for children in listed.values() for _, digest in children}
    if not digests:
        return {}
    as_sha256 = indexes.sha256_names(digests)
    holders = indexes.holding_versions(package.pk, {as_sha256(d) for d in digests})
    sizes = _sizes(holders.values())
    found = {}
    for pk, children in listed.items():
        rows = []
        for child, digest in children:
            version_id = holders.get(as_sha256(digest))
            rows.append(
                Platform(
                    platform=child["platform"],
                    digest=digest,
                    size=sizes.get(version_id, child.get("size") or 0),
                    in_image=version_id is not None,
                )
            )
        found[pk] = rows
    return found


def find_version(package: Package, reference: str) -> PackageVersion | None:
    """The version a tag or digest names: by its own name first, else any version
    (a tag, say) holding the manifest with that digest.
    """
    version = package.versions.published().versioned(reference).first()
    if version is None and looks_like_digest(reference):
        try:
            found = images.find_manifest(package.owner, package.name, reference)
        except ManifestNotFound:
            return None
        version = package.versions.published().filter(pk=found.version_id).first()
    return version


# One version


@dataclass(frozen=True)
class Layer:
    """A history step of an image: the command, and the layer it made (if any)."""

    command: str
    digest: str = ""
    size: int | None = None
    media_type: str = ""


@dataclass(frozen=True)
class Referrer:
    digest: str
    artifact_type: str
    media_type: str
    size: int
    annotations: dict


@dataclass(frozen=True)
class VersionDetail:
    package: Package
    version: PackageVersion
    is_tagged: bool
    digest: str
    media_type: str
    kind: str
    metadata: dict
    summary: str
    links: list[tuple[str, str]]
    layers: list[Layer]
    platforms: list[Platform]
    referrers: list[Referrer]
    recent_tags: list[PackageVersion]
    tag_count: int
    version_count: int
    total_size: int


def version_detail(version: PackageVersion, *, store: ContentStore | None = None) -> VersionDetail:
    """Everything the version's page shows; reads the manifest (and an image's config)."""
    store = store or ContentStore.default()
    package = version.package
    metadata = version.metadata if isinstance(version.metadata, dict) else {}
    row = Manifest.objects.filter(file__version=version).select_related("file__blob").first()
    media_type = row.media_type if row is not None else ""
    kind = kind_of(media_type, metadata)
    parsed = _read_manifest(store, row)
    layers, platforms = [], []
    if parsed is not None and not parsed.is_index:
        layers = _layers(store, version, parsed)
    if kind == KIND_INDEX:
        platforms = _platform_rows(package, {version.pk: metadata}).get(version.pk, [])
    tags = _tagged(package.versions.published())
    return VersionDetail(
        package=package,
        version=version,
        is_tagged=images.is_tag(version.version),
        digest=row.digest if row is not None else "",
        media_type=media_type,
        kind=kind,
        metadata=metadata,
        summary=summary_of(kind, metadata),
        links=links_of(metadata),
        layers=layers,
        platforms=platforms,
        referrers=_referrers(package, row.digest) if row is not None else [],
        recent_tags=list(tags.order_by("-updated", "-pk")[:RECENT_TAG_COUNT]),
        tag_count=tags.count(),
        version_count=package.versions.published().count(),
        total_size=version_sizes(package, [version.pk])[version.pk],
    )


def _read_blob(store: ContentStore, blob: PackageBlob) -> bytes | None:
    """A small blob's bytes; None if the store cannot give them (the page shows less)."""
    try:
        with store.open(blob.storage_key) as handle:
            return handle.read()
    except Exception:  # OSError from disk, botocore's errors from S3: a page still renders.
        logger.warning("cannot read blob %s for a web page", blob, exc_info=True)
        return None


def _read_manifest(store: ContentStore, row: Manifest | None):
    """The stored manifest, parsed; None if it is missing or unreadable."""
    if row is None:
        return None
    body = _read_blob(store, row.file.blob)
    if body is None:
        return None
    try:
        return parse_manifest(body, row.media_type)
    except (InvalidManifest, UnsupportedManifest):
        return None


def _layers(store: ContentStore, version: PackageVersion, parsed) -> list[Layer]:
    """The image's history beside its layers: each step not marked `empty_layer` made
    the next layer. Without a readable history, the layers alone.
    """
    steps: list[tuple[str, bool]] = []
    config = parsed.config
    if config is not None and config.media_type.lower() in IMAGE_CONFIG_TYPES:
        file = version.files.filter(name=config.digest).select_related("blob").first()
        if file is not None and file.blob.size <= MAX_CONFIG_SIZE:
            steps = history_steps(_read_blob(store, file.blob))
    remaining = list(parsed.layers)
    if len([step for step in steps if not step[1]]) != len(remaining):
        # A history that does not match the layers would pair commands wrongly.
        steps = [(command, True) for command, _ in steps if command]
    layers = []
    for command, empty in steps:
        if empty:
            layers.append(Layer(command=command))
        else:
            layer = remaining.pop(0)
            layers.append(Layer(command, layer.digest, layer.size, layer.media_type))
    layers.extend(Layer("", layer.digest, layer.size, layer.media_type) for layer in remaining)
    return layers


def _referrers(package: Package, digest: str) -> list[Referrer]:
    """The manifests whose subject is this one, as the referrers API lists them."""
    try:
        subject = parse_digest(digest)
    except InvalidDigest:
        return []
    return [
        Referrer(
            digest=d["digest"],
            artifact_type=d.get("artifactType", ""),
            media_type=d["mediaType"],
            size=d["size"],
            annotations=d.get("annotations", {}),
        )
        for d in images.referrers(package.owner, package.name, subject)
    ]


# Pull commands


def registry_host(request) -> str:
    """The host clients pull from: REGISTRY["EXTERNAL_URL"]'s, else the request's."""
    return urlsplit(external_base(request)).netloc


def pull_command(host: str, owner: Owner, image: str, detail: VersionDetail) -> str:
    """The command that pulls this version from `host`: docker, helm or oras."""
    repository = f"{host}/{owner.name.lower()}/{image}"
    name = detail.version.version
    if detail.kind == KIND_HELM:
        if detail.is_tagged:
            return f"helm pull oci://{repository} --version {name}"
        return f"helm pull oci://{repository}@{name}"
    reference = f"{repository}:{name}" if detail.is_tagged else f"{repository}@{name}"
    if detail.kind == KIND_ARTIFACT:
        return f"oras pull {reference}"
    return f"docker pull {reference}"


def mirrored_from(owner, image: str) -> str:
    """Where a mirror's image comes from ("https://registry-1.docker.io/library/alpine");
    empty for an owner that is no mirror.
    """
    mirror = mirror_of(owner)
    if mirror is None:
        return ""
    return f"{mirror.upstream_url}/{Upstream(mirror.upstream_url).repository(image)}"

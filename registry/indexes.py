"""Indexes and the manifests they list, within one image: who needs whom.

An index (a multi-arch image, an attestation bundle) lists its platforms' manifests by
digest; `IndexChild` rows, written as the index is pushed, record them by sha256. A
platform manifest is usually an untagged version named by its digest, sometimes a tag
too. Removing one from under an index breaks every pull of that platform through the
index, so `ContainerRemovalPolicy` refuses it; removing the index takes with it the
untagged platforms nothing else lists. Cleanup rules, the versions page and the sizes
the pages show ask the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Exists, OuterRef

from packages_core.models import PackageBlob, PackageVersion
from packages_core.types import RemovalPolicy
from registry.models import IndexChild, Manifest
from registry.oci.media_types import INDEX_TYPES


def sha256_names(digests: Iterable[str]):
    """A function naming each of `digests` by its sha256 where we know the blob:
    versions are named by sha256, while an index or a subject may name one by sha512.
    """
    sha512 = {d.partition(":")[2] for d in digests if d.startswith("sha512:")}
    known = dict(
        PackageBlob.objects.filter(sha512__in=sha512).values_list("sha512", "sha256")
        if sha512
        else []
    )

    def name(digest: str) -> str:
        algorithm, _, hex_ = digest.partition(":")
        if algorithm == "sha512" and hex_ in known:
            return f"sha256:{known[hex_]}"
        return digest

    return name


def listed_digests(package_id: int) -> set[str]:
    """The sha256 digests some index of the image lists."""
    return set(IndexChild.objects.filter(package_id=package_id).values_list("digest", flat=True))


def is_listed() -> Exists:
    """For a query over versions: whether the version is named by a digest an index of
    its image lists (a platform, shown under its index rather than on its own).
    """
    return Exists(
        IndexChild.objects.filter(package=OuterRef("package"), digest=OuterRef("version"))
    )


def children_of(index_version_ids: Iterable[int]) -> dict[int, list[str]]:
    """By index version id, the sha256 digests its index lists, in digest order."""
    found: dict[int, list[str]] = {}
    rows = (
        IndexChild.objects.filter(index__file__version_id__in=list(index_version_ids))
        .order_by("digest")
        .values_list("index__file__version_id", "digest")
    )
    for version_id, digest in rows:
        found.setdefault(version_id, []).append(digest)
    return found


def holding_versions(package_id: int, digests: Iterable[str]) -> dict[str, int]:
    """For each of these sha256 digests, a published version of the image holding
    that manifest (its untagged version, or a tag), by id.
    """
    rows = (
        Manifest.objects.filter(
            package_id=package_id, digest__in=list(digests), file__version__is_internal=False
        )
        .order_by("file__version_id")
        .values_list("digest", "file__version_id")
    )
    found: dict[str, int] = {}
    for digest, version_id in rows:
        found.setdefault(digest, version_id)
    return found


def _lead_manifest(version: PackageVersion) -> Manifest | None:
    return Manifest.objects.filter(file__version=version, file__is_lead=True).first()


def _held_elsewhere(manifest: Manifest, going: set[int]) -> bool:
    """Whether a published version not going holds the same manifest (a tag and the
    untagged version of one digest, say): then the manifest stays.
    """
    return (
        Manifest.objects.filter(
            package_id=manifest.package_id,
            digest=manifest.digest,
            file__version__is_internal=False,
        )
        .exclude(file__version_id__in=going)
        .exists()
    )


class ContainerRemovalPolicy(RemovalPolicy):
    """A manifest an index lists stays while the index does (unless another version
    holds it); an index takes with it the untagged manifests it alone listed. Tags are
    names people chose: they are never taken along, and their manifests with them.
    """

    def needed_by(self, version: PackageVersion, going: set[int]) -> list[str]:
        manifest = _lead_manifest(version)
        if manifest is None or _held_elsewhere(manifest, going):
            return []
        indexes = (
            IndexChild.objects.filter(package_id=manifest.package_id, digest=manifest.digest)
            .exclude(index__file__version_id__in=going)
            .values_list("index__file__version__version", flat=True)
        )
        return sorted({f"index {name}" for name in indexes})

    def freed_by(self, version: PackageVersion, going: set[int]) -> list[PackageVersion]:
        manifest = _lead_manifest(version)
        if (
            manifest is None
            or manifest.media_type not in INDEX_TYPES
            or _held_elsewhere(manifest, going)
        ):
            return []
        children = set(manifest.children.values_list("digest", flat=True))
        still_listed = set(
            IndexChild.objects.filter(package_id=manifest.package_id, digest__in=children)
            .exclude(index__file__version_id__in=going)
            .values_list("digest", flat=True)
        )
        return list(
            PackageVersion.objects.published().filter(
                package_id=manifest.package_id, version__in=children - still_listed
            )
        )

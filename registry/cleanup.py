"""What cleanup rules never remove from a container image."""

from __future__ import annotations

from packages_core.models import Package, PackageBlob
from packages_core.types import CleanupPolicy
from registry.images import is_tag
from registry.models import Manifest
from registry.oci.media_types import INDEX_TYPES


class ContainerCleanupPolicy(CleanupPolicy):
    """`latest` always stays, as in Gitea. So does an untagged manifest that something
    still needs: a child of an index in the image, the `subject` of another manifest,
    or a referrer (a signature, an SBOM) whose subject is a tagged manifest.

    Referrers of untagged manifests are not protected, or a signature and its
    untagged subject would keep each other forever; the subject goes a run later.
    """

    def protected_versions(self, package: Package) -> set[str]:
        manifests = Manifest.objects.filter(package=package)
        tagged, subjects, children = set(), {}, set()
        for digest, subject, version in manifests.values_list(
            "digest", "subject_digest", "file__version__version"
        ):
            if is_tag(version):
                tagged.add(digest)
            if subject:
                subjects[digest] = subject
        for metadata in manifests.filter(media_type__in=INDEX_TYPES).values_list(
            "file__version__metadata", flat=True
        ):
            for child in (metadata or {}).get("manifests", []):
                if isinstance(child, dict) and isinstance(child.get("digest"), str):
                    children.add(child["digest"])
        # Versions are named by sha256; an index or a subject may name one by sha512.
        as_sha256 = _sha256_names({*subjects.values(), *children})
        subjects = {digest: as_sha256(subject) for digest, subject in subjects.items()}
        protected = {"latest", *subjects.values(), *map(as_sha256, children)}
        protected |= {digest for digest, subject in subjects.items() if subject in tagged}
        return {name.lower() for name in protected}


def _sha256_names(digests: set[str]):
    """A function naming each of `digests` by its sha256 where we know the blob."""
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

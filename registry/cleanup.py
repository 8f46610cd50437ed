"""What cleanup rules never remove from a container image."""

from __future__ import annotations

from packages_core.models import Package
from packages_core.types import CleanupPolicy
from registry.images import is_tag
from registry.indexes import listed_digests, sha256_names
from registry.models import Manifest


class ContainerCleanupPolicy(CleanupPolicy):
    """`latest` always stays, as in Gitea. So does an untagged manifest that something
    still needs: a child of an index in the image, the `subject` of another manifest,
    or a referrer (a signature, an SBOM) whose subject is a tagged manifest.

    Referrers of untagged manifests are not protected, or a signature and its
    untagged subject would keep each other forever; the subject goes a run later.
    """

    def protected_versions(self, package: Package) -> set[str]:
        manifests = Manifest.objects.filter(package=package)
        tagged, subjects = set(), {}
        for digest, subject, version in manifests.values_list(
            "digest", "subject_digest", "file__version__version"
        ):
            if is_tag(version):
                tagged.add(digest)
            if subject:
                subjects[digest] = subject
        children = listed_digests(package.pk)
        # Versions are named by sha256; a subject may name one by sha512.
        as_sha256 = sha256_names(subjects.values())
        subjects = {digest: as_sha256(subject) for digest, subject in subjects.items()}
        protected = {"latest", *subjects.values(), *children}
        protected |= {digest for digest, subject in subjects.items() if subject in tagged}
        return {name.lower() for name in protected}

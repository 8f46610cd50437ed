"""What cleanup rules never remove from a container image."""

from __future__ import annotations

from packages_core.models import Package
from packages_core.services.cleanup import CleanupPolicy
from registry.manifests import INDEX_TYPES
from registry.models import Manifest


class ContainerCleanupPolicy(CleanupPolicy):
    """`latest` always stays, as in Gitea. So does an untagged manifest that something
    still needs: a child of an index in the image, the `subject` of another manifest,
    or a referrer (a signature, an SBOM) whose subject is a tagged manifest.

    Referrers of untagged manifests are not protected, or a signature and its
    untagged subject would keep each other forever; the subject goes a run later.
    """

    def protected_versions(self, package: Package) -> set[str]:
        protected = {"latest"}
        manifests = Manifest.objects.filter(package=package)
        tagged, subjects = set(), {}
        for digest, subject, version in manifests.values_list(
            "digest", "subject_digest", "file__version__version"
        ):
            if ":" not in version:
                tagged.add(digest)
            if subject:
                subjects[digest] = subject
        protected |= set(subjects.values())
        protected |= {digest for digest, subject in subjects.items() if subject in tagged}
        for metadata in manifests.filter(media_type__in=INDEX_TYPES).values_list(
            "file__version__metadata", flat=True
        ):
            for child in (metadata or {}).get("manifests", []):
                if isinstance(child, dict) and isinstance(child.get("digest"), str):
                    protected.add(child["digest"])
        return {name.lower() for name in protected}

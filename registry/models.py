"""What the registry keeps beside the package domain: manifests, indexed for lookups."""

from django.db import models

from packages_core.models import Package, PackageFile


class Manifest(models.Model):
    """A manifest file of a container version, with what pulls and referrers need.

    Gitea keeps these as free-form properties; a table of its own lets the referrers
    API find manifests by `subject` through an index, and a manifest GET read its
    media type in the same query that finds the file.
    """

    file = models.OneToOneField(
        PackageFile, on_delete=models.CASCADE, primary_key=True, related_name="manifest"
    )
    # No index of its own: (package, digest) below leads with it. With both, PostgreSQL
    # took this one for a lookup by digest once it had statistics (equal estimates),
    # then filtered every manifest of the image: 1.7 ms at 10,000 tags against 0.05.
    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="+", db_index=False)
    digest = models.CharField(max_length=200)
    media_type = models.CharField(max_length=255)
    artifact_type = models.CharField(max_length=255, blank=True)
    subject_digest = models.CharField(max_length=200, blank=True)
    annotations = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["package", "digest"]),
            models.Index(
                fields=["package", "subject_digest"],
                name="registry_manifest_subject",
                condition=~models.Q(subject_digest=""),
            ),
        ]

    def __str__(self) -> str:
        return self.digest


class IndexChild(models.Model):
    """A manifest an index lists, by its sha256 digest (the name of its untagged
    version): what removals, cleanup and the versions page ask "does an index need
    this?" of, through an index rather than by reading every index's metadata.
    """

    index = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="children")
    # No index of its own: (package, digest) below leads with it.
    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="+", db_index=False)
    digest = models.CharField(max_length=200)

    class Meta:
        indexes = [models.Index(fields=["package", "digest"], name="registry_indexchild_digest")]
        constraints = [
            models.UniqueConstraint(fields=["index", "digest"], name="registry_indexchild_unique")
        ]

    def __str__(self) -> str:
        return f"{self.index} lists {self.digest}"

"""What the registry keeps beside the package domain: manifests indexed for lookups, and mirrors."""

from django.db import models

from packages_core.models import Owner, Package, PackageFile


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


class Mirror(models.Model):
    """An owner whose images are an upstream registry's, pulled through and kept
    (a pull-through cache, docs/mirrors.md). Nobody pushes to it.
    """

    owner = models.OneToOneField(Owner, on_delete=models.CASCADE, related_name="mirror")
    # Not a URLField: its validator refuses a bare host name (a compose service's,
    # http://registry:5000); registry/mirrors/service.py checks it.
    upstream_url = models.CharField(
        max_length=2000, help_text="The upstream registry's root, e.g. https://registry-1.docker.io"
    )
    username = models.CharField(max_length=255, blank=True)
    # Sealed with a key derived from SECRET_KEY (packages_core/sealed.py): the upstream
    # needs it in clear, so it cannot be hashed, and a database dump alone must not show it.
    sealed_password = models.TextField(blank=True, editable=False)
    ttl_seconds = models.PositiveIntegerField(
        default=600, help_text="How long a tag is served before it is checked upstream again."
    )
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.owner} mirrors {self.upstream_url}"


class MirroredBlob(models.Model):
    """A blob a mirrored manifest refers to that has not been fetched yet: what a blob
    pull may fetch from the upstream, and the versions to give it to once it is here.
    """

    manifest = models.ForeignKey(Manifest, on_delete=models.CASCADE, related_name="+")
    # No index of its own: (package, digest) below leads with it.
    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="+", db_index=False)
    digest = models.CharField(max_length=200)
    size = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["package", "digest"], name="registry_mirroredblob_digest")]
        constraints = [
            models.UniqueConstraint(
                fields=["manifest", "digest"], name="registry_mirroredblob_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.digest} of {self.manifest}"


class MirrorFetch(models.Model):
    """A blob one process is fetching from an upstream: the others wait for it rather
    than fetch it again. `beat` moves while bytes arrive; a row that stopped beating
    belonged to a process that died, and the next pull takes over.
    """

    sha256 = models.CharField(max_length=64, unique=True)
    started = models.DateTimeField(auto_now_add=True)
    beat = models.DateTimeField()

    def __str__(self) -> str:
        return f"fetching sha256:{self.sha256}"

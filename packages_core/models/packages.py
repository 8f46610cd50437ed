"""Packages, their versions and files, and free-form properties attached to them."""

import re

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import BigIntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce, Lower

from packages_core.models.blobs import PackageBlob
from packages_core.models.owners import Owner

PACKAGE_TYPE_PATTERN = r"\A[a-z][a-z0-9_]*\Z"
MAX_PACKAGE_TYPE_LENGTH = 32
_PACKAGE_TYPE = re.compile(PACKAGE_TYPE_PATTERN)

validate_package_type = RegexValidator(
    PACKAGE_TYPE_PATTERN, "A package type is a lowercase word, like 'container'."
)


def is_package_type(value: str) -> bool:
    return len(value) <= MAX_PACKAGE_TYPE_LENGTH and _PACKAGE_TYPE.match(value) is not None


def storable(text: str) -> bool:
    """Whether a text column could hold `text`: PostgreSQL's cannot hold NUL, and asking
    it for one is an error rather than no rows, so such a name is answered with none.
    """
    return "\x00" not in text


class LowerNameQuerySet(models.QuerySet):
    """Case-insensitive lookups that use the functional unique indexes."""

    def named(self, name: str):
        if not storable(name):
            return self.none()
        return self.alias(lower_name=Lower("name")).filter(lower_name=name.lower())

    def versioned(self, version: str):
        if not storable(version):
            return self.none()
        return self.alias(lower_version=Lower("version")).filter(lower_version=version.lower())


class VersionQuerySet(LowerNameQuerySet):
    """What listings and services ask of versions, each spelled once here."""

    def published(self):
        """Versions people see: not the internal ones that stage uploads."""
        return self.filter(is_internal=False)

    def with_size(self):
        """Each version with `total_size`: the bytes of its files' blobs, 0 for none.

        A correlated subquery rather than a join with GROUP BY: a page of versions costs
        one query, and the database sums only the rows on that page, by the files'
        version index.
        """
        files = PackageFile.objects.filter(version=OuterRef("pk")).order_by().values("version")
        total = Subquery(files.annotate(total=Sum("blob__size")).values("total"))
        return self.annotate(total_size=Coalesce(total, 0, output_field=BigIntegerField()))


class Package(models.Model):
    """A named package of one type (a container image, say) that belongs to an owner."""

    owner = models.ForeignKey(Owner, on_delete=models.CASCADE, related_name="packages")
    type = models.CharField(max_length=MAX_PACKAGE_TYPE_LENGTH, validators=[validate_package_type])
    name = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)
    # When a published version was last added or changed (a push); kept by the version
    # services, so listings sort by it without going through every version.
    last_pushed = models.DateTimeField(null=True, blank=True, editable=False)
    # Published versions, and bytes of the distinct blobs they use: kept by the version
    # services (services/figures.py), so a listing does not go through every version.
    # Not positive fields: a figure off by a write made behind the services' back must
    # not fail the next delete (`manage.py recount_packages` puts them right).
    version_count = models.IntegerField(default=0, editable=False)
    size = models.BigIntegerField(default=0, editable=False)

    objects = LowerNameQuerySet.as_manager()

    class Meta:
        ordering = ["owner__name", "type", "name"]
        indexes = [models.Index(fields=["owner", "type", "last_pushed"])]
        constraints = [
            models.UniqueConstraint(
                "owner",
                "type",
                Lower("name"),
                name="packages_package_unique_lower_name",
                violation_error_message="The owner already has a package of this name.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner.name}/{self.name}"


class PackageVersion(models.Model):
    """One version of a package; internal versions stage files not yet published."""

    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=255)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    is_internal = models.BooleanField(
        default=False, help_text="Staging area for uploads; never listed or pulled by name."
    )
    metadata = models.JSONField(default=dict, blank=True)
    download_count = models.PositiveBigIntegerField(default=0, editable=False)
    # The latest manifest pull, written in batches with download_count (services/tallies.py);
    # null until the first. Cleanup rules' "not pulled for N days" reads it.
    last_pulled = models.DateTimeField(null=True, blank=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = VersionQuerySet.as_manager()

    class Meta:
        ordering = ["package_id", "-created"]
        constraints = [
            models.UniqueConstraint(
                "package",
                Lower("version"),
                name="packages_version_unique_lower_version",
                violation_error_message="The package already has this version.",
            ),
        ]
        indexes = [
            models.Index(fields=["package", "is_internal", "created"]),
            # The newest versions first, the latest tag: read backwards from the end.
            models.Index(fields=["package", "is_internal", "updated"]),
        ]

    def __str__(self) -> str:
        return f"{self.package}:{self.version}"


class PackageFile(models.Model):
    """A file of a version, pointing at its content-addressed blob."""

    version = models.ForeignKey(PackageVersion, on_delete=models.CASCADE, related_name="files")
    # The version's package, kept on the file too (a file never leaves its package):
    # "does this image hold this blob" is then one probe of the (package, blob) index,
    # however many versions the image has.
    package = models.ForeignKey(Package, on_delete=models.CASCADE, related_name="+", editable=False)
    # PROTECT: a blob goes only through garbage collection, once no file refers to it.
    blob = models.ForeignKey(PackageBlob, on_delete=models.PROTECT, related_name="files")
    name = models.CharField(max_length=255)
    composite_key = models.CharField(max_length=255, blank=True, default="")
    is_lead = models.BooleanField(default=False, help_text="The version's main file.")
    created = models.DateTimeField(auto_now_add=True)

    objects = LowerNameQuerySet.as_manager()

    class Meta:
        ordering = ["version_id", "name"]
        constraints = [
            models.UniqueConstraint(
                "version",
                Lower("name"),
                "composite_key",
                name="packages_file_unique_lower_name_key",
            ),
        ]
        indexes = [models.Index(fields=["package", "blob"])]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if self.package_id is None:
            self.package_id = self.version.package_id
        super().save(*args, **kwargs)


class PackageProperty(models.Model):
    """A name/value pair attached to a package, a version or a file."""

    class RefType(models.TextChoices):
        PACKAGE = "package", "Package"
        VERSION = "version", "Version"
        FILE = "file", "File"

    ref_type = models.CharField(max_length=8, choices=RefType.choices)
    ref_id = models.BigIntegerField()
    name = models.CharField(max_length=255)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["ref_type", "ref_id", "name", "id"]
        verbose_name_plural = "package properties"
        indexes = [models.Index(fields=["ref_type", "ref_id", "name"])]

    def __str__(self) -> str:
        return f"{self.ref_type}#{self.ref_id} {self.name}={self.value[:40]}"

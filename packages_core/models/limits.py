"""Per-owner quota overrides and cleanup rules."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from packages_core.models.owners import Owner

UNLIMITED = -1
# A century: more is a typo, and would overflow date arithmetic.
MAX_REMOVE_DAYS = 36500


def validate_regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValidationError(f"Not a valid regular expression: {exc}") from exc


class OwnerQuota(models.Model):
    """Limits for one owner; an empty field falls back to the site-wide setting."""

    owner = models.OneToOneField(Owner, on_delete=models.CASCADE, related_name="quota")
    max_versions = models.BigIntegerField(
        null=True, blank=True, help_text="Total versions; -1 unlimited, empty: site default."
    )
    max_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="Total bytes; -1 unlimited, empty: site default."
    )
    max_blob_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="Largest single blob; -1 unlimited, empty: site default."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(max_versions__isnull=True) | models.Q(max_versions__gte=-1))
                & (models.Q(max_bytes__isnull=True) | models.Q(max_bytes__gte=-1))
                & (models.Q(max_blob_bytes__isnull=True) | models.Q(max_blob_bytes__gte=-1)),
                name="packages_quota_limits_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"quota of {self.owner}"


# What an owner chooses in a rule, in the order the forms show it (the web page's and
# the admin's, which adds the owner).
CLEANUP_RULE_FIELDS = (
    "type",
    "enabled",
    "keep_count",
    "keep_pattern",
    "remove_days",
    "remove_unpulled_days",
    "remove_pattern",
    "match_full_name",
)


class CleanupRule(models.Model):
    """Which versions of an owner's packages of one type get removed, as in Gitea."""

    owner = models.ForeignKey(Owner, on_delete=models.CASCADE, related_name="cleanup_rules")
    type = models.CharField(max_length=32)
    enabled = models.BooleanField(default=True)
    keep_count = models.PositiveIntegerField(
        default=0, help_text="Keep this many most recent versions; 0 keeps none by count."
    )
    keep_pattern = models.CharField(max_length=255, blank=True, validators=[validate_regex])
    remove_days = models.PositiveIntegerField(
        default=0,
        validators=[MaxValueValidator(MAX_REMOVE_DAYS)],
        help_text="Remove versions older than this many days; 0 ignores age.",
    )
    remove_unpulled_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=None,
        # 0 would mean "any version", which leaving it empty already says.
        validators=[MinValueValidator(1), MaxValueValidator(MAX_REMOVE_DAYS)],
        help_text=(
            "Remove only versions not pulled for this many days (never pulled: counted "
            "from their creation); empty ignores pulls."
        ),
    )
    remove_pattern = models.CharField(max_length=255, blank=True, validators=[validate_regex])
    match_full_name = models.BooleanField(
        default=False, help_text="Match patterns against 'package/version', not just the version."
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner__name", "type"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "type"], name="packages_cleanup_rule_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.type} cleanup for {self.owner}"

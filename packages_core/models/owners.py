"""Owners (users and organisations) and organisation memberships."""

import re

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower

# Owner names start every image path (`HOST/OWNER/IMAGE`), so they keep to what a
# Docker reference path component allows once lowercased (Gitea's user-name rule).
OWNER_NAME_PATTERN = r"\A[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*\Z"
OWNER_NAME_MAX_LENGTH = 40

validate_owner_name = RegexValidator(
    OWNER_NAME_PATTERN,
    "Use letters, digits and single '.', '_' or '-' between them.",
    code="invalid_owner_name",
)


_OWNER_NAME = re.compile(OWNER_NAME_PATTERN)


def is_owner_name(name: str) -> bool:
    """Whether an owner could be called `name` (any case)."""
    return len(name) <= OWNER_NAME_MAX_LENGTH and _OWNER_NAME.match(name) is not None


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public"
    LIMITED = "limited", "Limited (signed-in users)"
    PRIVATE = "private", "Private"


class OwnerQuerySet(models.QuerySet):
    def named(self, name: str):
        """Owners whose name matches case-insensitively (uses the unique index).

        A name no owner may have finds none without asking the database, where some
        (a NUL byte on PostgreSQL) would be an error rather than no rows.
        """
        if not is_owner_name(name):
            return self.none()
        return self.alias(lower_name=Lower("name")).filter(lower_name=name.lower())


class Owner(models.Model):
    """A namespace that holds packages: a user's own, or an organisation's."""

    class Kind(models.TextChoices):
        USER = "user", "User"
        ORG = "org", "Organisation"

    name = models.CharField(max_length=OWNER_NAME_MAX_LENGTH, validators=[validate_owner_name])
    kind = models.CharField(max_length=8, choices=Kind.choices)
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="package_owner",
        help_text="The user this owner belongs to; empty for organisations.",
    )
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = OwnerQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="packages_owner_unique_lower_name",
                violation_error_message="This name is already taken (names ignore case).",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="user", user__isnull=False)
                    | models.Q(kind="org", user__isnull=True)
                ),
                name="packages_owner_user_iff_kind_user",
                violation_error_message="A user owner needs its user; an organisation has none.",
            ),
            models.CheckConstraint(
                condition=models.Q(visibility__in=["public", "limited", "private"]),
                name="packages_owner_visibility_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_org(self) -> bool:
        return self.kind == self.Kind.ORG


class Membership(models.Model):
    """A user's role in an organisation."""

    class Role(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Write"
        ADMIN = "admin", "Admin"

    owner = models.ForeignKey(Owner, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="package_memberships"
    )
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.READ)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["owner__name", "user_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "user"],
                name="packages_membership_unique",
                violation_error_message="This user is already a member.",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=["read", "write", "admin"]),
                name="packages_membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.owner} ({self.role})"

    @property
    def can_write(self) -> bool:
        return self.role in (self.Role.WRITE, self.Role.ADMIN)

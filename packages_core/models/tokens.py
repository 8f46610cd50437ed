"""Personal access tokens: usable as a docker password, stored only as a hash."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Scope(models.TextChoices):
    READ_PACKAGE = "read:package", "Read packages"
    WRITE_PACKAGE = "write:package", "Write packages"


class AccessToken(models.Model):
    """A user's token; the secret itself is shown once and never stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="package_tokens"
    )
    name = models.CharField(max_length=100)
    # sha256 of the secret: tokens are long random strings, so a fast hash is enough
    # and lets authentication look the token up by index.
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters of the secret, to tell tokens apart in lists.
    token_prefix = models.CharField(max_length=12, editable=False)
    scopes = models.JSONField(default=list, help_text="Any of read:package, write:package.")
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="packages_token_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    def is_active(self, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now

    def allows(self, scope: str) -> bool:
        """Whether the token carries `scope`; write implies read."""
        if scope == Scope.READ_PACKAGE:
            return bool({Scope.READ_PACKAGE, Scope.WRITE_PACKAGE} & set(self.scopes))
        return scope in self.scopes

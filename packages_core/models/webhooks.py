"""Webhooks (an owner's or the site's) and the outbox of their deliveries."""

import uuid

from django.db import models

from packages_core import sealed
from packages_core.models.owners import Owner

PUSH = "push"
DELETE = "delete"
# Off unless asked for: each pull a webhook wants is a row written on the pull path.
PULL = "pull"
EVENTS = (PUSH, DELETE, PULL)
DEFAULT_EVENTS = [PUSH, DELETE]

GITEA = "gitea"
DISTRIBUTION = "distribution"
FORMATS = (GITEA, DISTRIBUTION)


def default_events() -> list[str]:
    return list(DEFAULT_EVENTS)


class Webhook(models.Model):
    """Where to tell about an owner's images (or, without an owner, every image)."""

    owner = models.ForeignKey(
        Owner,
        on_delete=models.CASCADE,
        related_name="webhooks",
        null=True,
        blank=True,
        help_text="Empty: a site-wide webhook, told about every owner's images.",
    )
    url = models.URLField(max_length=2000)
    # It signs every body, so it must be read back: sealed under a key derived from
    # SECRET_KEY (packages_core/sealed.py), never kept in clear; `secret` opens it.
    sealed_secret = models.TextField(blank=True, editable=False)
    events = models.JSONField(
        default=default_events, help_text=f"A list of {', '.join(EVENTS)}; pull is off by default."
    )
    name_filter = models.CharField(
        max_length=255, blank=True, help_text="A glob on the image name (e.g. app/*); empty: all."
    )
    format = models.CharField(
        max_length=20, choices=[(f, f) for f in FORMATS], default=GITEA, help_text="Payload format."
    )
    is_active = models.BooleanField(default=True)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"webhook {self.pk} of {self.owner or 'the site'} → {self.url}"

    @property
    def secret(self) -> str:
        """The secret in clear; SealBroken if no key of the site opens it."""
        return sealed.unseal(self.sealed_secret)

    @secret.setter
    def secret(self, value: str) -> None:
        self.sealed_secret = sealed.seal(value)

    @property
    def has_secret(self) -> bool:
        return bool(self.sealed_secret)


class WebhookDelivery(models.Model):
    """One event for one webhook: the outbox row, written with the change that caused it.

    The body is rendered when the row is written, so the worker sends bytes and needs
    nothing else of the domain (which may have changed or gone since).
    """

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    STATUSES = [(PENDING, "pending"), (DELIVERED, "delivered"), (FAILED, "failed")]

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    event_type = models.CharField(max_length=20)
    body = models.BinaryField()
    content_type = models.CharField(max_length=100, default="application/json")
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The worker's question: the oldest pending row of each webhook.
            models.Index(
                fields=["webhook", "id"],
                name="packages_delivery_pending",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → webhook {self.webhook_id}"

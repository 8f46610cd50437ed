"""Delivering webhook events: claiming outbox rows, sending them signed, retrying.

At least once, in order per webhook: only the oldest pending delivery of a webhook may
be sent, and a worker claims it with a lease (`claimed_until`) before sending, so
several workers never send the same event at once. On PostgreSQL the claim skips rows
another worker is claiming (`FOR UPDATE SKIP LOCKED`); everywhere the claim is a
conditional UPDATE whose row count says who won, and an expired lease (a worker that
died mid-send) lets another take the row again.

Addresses are checked after DNS resolution and the connection goes to the checked
address (with the URL's host in `Host` and for TLS), so a name that resolves anew to
a private address between check and connect cannot reach it.

A send has WEBHOOK_TIMEOUT in all, not per read: every socket operation gets only the
time left (packages_core/outbound.py), so a receiver trickling its answer a byte at a time
cannot keep a send going past the row's lease.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from packages_core import outbound
from packages_core.conf import packages_settings
from packages_core.models import WebhookDelivery

logger = logging.getLogger(__name__)

# Kept of an answer's body or an error, for the admin.
KEPT_CHARS = 1000
USER_AGENT = "forge-webhooks/1"


def signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_for(delivery: WebhookDelivery) -> dict[str, str]:
    body = bytes(delivery.body)
    sig = signature(delivery.webhook.secret, body)
    headers = {
        "Content-Type": delivery.content_type,
        "User-Agent": USER_AGENT,
        "X-Hub-Signature-256": sig,
        "X-Forge-Event": delivery.event_type,
        "X-Forge-Delivery": str(delivery.event_id),
    }
    if delivery.webhook.format == "gitea":
        # What Gitea's receivers check: its event name, delivery id and bare hex HMAC.
        headers.update(
            {
                "X-Gitea-Event": "package",
                "X-Gitea-Delivery": str(delivery.event_id),
                "X-Gitea-Signature": sig.removeprefix("sha256="),
            }
        )
    return headers


@dataclass
class Outcome:
    status_code: int | None = None
    error: str = ""
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send(delivery: WebhookDelivery) -> Outcome:
    """POST one delivery, within WEBHOOK_TIMEOUT in all (the name's resolution, which
    the resolver bounds, counts too); never raises for what the network or the receiver
    does.
    """
    started = time.monotonic()
    outcome = Outcome()
    try:
        conn, path = outbound.connect(
            delivery.webhook.url,
            allowed_hosts=packages_settings.WEBHOOK_ALLOWED_HOSTS,
            setting="WEBHOOK_ALLOWED_HOSTS",
            timeout=packages_settings.WEBHOOK_TIMEOUT,
            deadline=started + packages_settings.WEBHOOK_TIMEOUT,
        )
        try:
            conn.request("POST", path, body=bytes(delivery.body), headers=headers_for(delivery))
            response = conn.getresponse()
            # Redirects are answers like any other: a 3xx is not success, and not followed.
            outcome.status_code = response.status
            answer = response.read(packages_settings.WEBHOOK_RESPONSE_LIMIT)
            if not outcome.ok:
                outcome.error = answer[:KEPT_CHARS].decode("utf-8", "replace")
        finally:
            conn.close()
    except outbound.AddressRefused as error:
        # The owner sees the delivery's error; the addresses are for the log alone.
        logger.warning("webhook %s: refused: %s", delivery.webhook_id, error)
        outcome.error = f"refused: {error.public}"
    except (OSError, http.client.HTTPException, ValueError) as error:
        outcome.error = f"{type(error).__name__}: {error}"[:KEPT_CHARS]
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    return outcome


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: exponential, capped,
    less up to half at random.
    """
    base = packages_settings.WEBHOOK_RETRY_BASE_SECONDS
    delay = min(packages_settings.WEBHOOK_RETRY_MAX_SECONDS, base * 2 ** max(attempts - 1, 0))
    return delay * (1 - random.random() / 2)


def lease_seconds() -> float:
    """How long a claim holds: a send's whole deadline (WEBHOOK_TIMEOUT), with room to
    spare for a slow name resolution and recording the outcome.
    """
    return packages_settings.WEBHOOK_TIMEOUT * 3 + 30


def _claimable(now) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def claim(limit: int = 20) -> list[WebhookDelivery]:
    """Claim due deliveries, at most one per webhook (its oldest pending one)."""
    now = timezone.now()
    heads = (
        WebhookDelivery.objects.filter(status=WebhookDelivery.PENDING)
        .order_by()
        .values("webhook_id")
        .annotate(first=Min("pk"))
        .values("first")
    )
    due = WebhookDelivery.objects.filter(
        _claimable(now), pk__in=heads, next_attempt_at__lte=now
    ).order_by("next_attempt_at", "pk")
    until = now + timedelta(seconds=lease_seconds())
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            ids = list(
                due.select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True)[
                    :limit
                ]
            )
            WebhookDelivery.objects.filter(pk__in=ids).update(claimed_until=until)
    else:
        ids = []
        for pk in due.values_list("pk", flat=True)[:limit]:
            # Whoever's UPDATE matches the row first has it; the others match nothing.
            won = WebhookDelivery.objects.filter(
                _claimable(now), pk=pk, status=WebhookDelivery.PENDING
            ).update(claimed_until=until)
            if won:
                ids.append(pk)
    return list(WebhookDelivery.objects.filter(pk__in=ids).select_related("webhook").order_by("pk"))


def record(delivery: WebhookDelivery, outcome: Outcome) -> None:
    """Save what an attempt did: delivered, pending with its next attempt, or failed."""
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    delivery.last_duration_ms = outcome.duration_ms
    if outcome.ok:
        delivery.status = WebhookDelivery.DELIVERED
        delivery.next_attempt_at = None
    elif delivery.attempts >= packages_settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay(delivery.attempts))
    # An update, not a save: a webhook deleted meanwhile took the row along, and that
    # is no error. Only while the claim is still ours: past its lease another worker
    # may have the row, and its outcome is the one that counts.
    WebhookDelivery.objects.filter(pk=delivery.pk, claimed_until=delivery.claimed_until).update(
        attempts=delivery.attempts,
        last_attempt_at=now,
        last_status_code=outcome.status_code,
        last_error=outcome.error,
        last_duration_ms=outcome.duration_ms,
        claimed_until=None,
        status=delivery.status,
        next_attempt_at=delivery.next_attempt_at,
    )
    if outcome.ok:
        logger.info("webhook %s: delivered %s", delivery.webhook_id, delivery.event_id)
    else:
        logger.warning(
            "webhook %s: %s attempt %d: %s %s",
            delivery.webhook_id,
            delivery.event_id,
            delivery.attempts,
            outcome.status_code or "",
            outcome.error[:200],
        )


def renew(delivery: WebhookDelivery) -> bool:
    """Start the lease again just before a send, if the claim is still ours: the rows of
    a batch are sent one after another, and each send needs a whole lease of its own.
    """
    until = timezone.now() + timedelta(seconds=lease_seconds())
    renewed = WebhookDelivery.objects.filter(
        pk=delivery.pk, claimed_until=delivery.claimed_until, status=WebhookDelivery.PENDING
    ).update(claimed_until=until)
    if renewed:
        delivery.claimed_until = until
    return bool(renewed)


def deliver_due(limit: int = 5) -> int:
    """Claim and send what is due now (a few webhooks' oldest events, so that other
    workers find work too); how many rows were claimed.
    """
    claimed = claim(limit)
    for delivery in claimed:
        if not renew(delivery):
            continue
        if not delivery.webhook.is_active:
            # Switched off since: held back, sent if it is switched on again.
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                claimed_until=None, next_attempt_at=timezone.now() + timedelta(seconds=60)
            )
            continue
        record(delivery, send(delivery))
    return len(claimed)

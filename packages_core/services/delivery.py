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
time left (`_DeadlineSocket`), so a receiver trickling its answer a byte at a time
cannot keep a send going past the row's lease.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import ipaddress
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from packages_core.conf import packages_settings
from packages_core.models import WebhookDelivery

logger = logging.getLogger(__name__)

# Kept of an answer's body or an error, for the admin.
KEPT_CHARS = 1000
USER_AGENT = "forge-webhooks/1"


class DeliveryRefused(Exception):
    """A URL the worker will not send to (scheme, or an address that is not public)."""


# Metadata services that sit on otherwise ordinary-looking addresses.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet: not loopback, private, link-local,
    shared (CGNAT), multicast, reserved or a cloud metadata address.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast and address not in _METADATA


def host_allowed(host: str) -> bool:
    allowed = {name.strip().lower() for name in packages_settings.WEBHOOK_ALLOWED_HOSTS}
    return "*" in allowed or host.lower() in allowed


def resolve(host: str, port: int) -> str:
    """The address to connect to for `host`: every address it resolves to must be public,
    unless the host is allowed (WEBHOOK_ALLOWED_HOSTS). DeliveryRefused otherwise.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise DeliveryRefused(f"cannot resolve {host}: {error}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise DeliveryRefused(f"{host} has no address")
    if not host_allowed(host):
        blocked = [str(a) for a in addresses if not is_public(a)]
        if blocked:
            raise DeliveryRefused(
                f"{host} resolves to {', '.join(blocked)}, which is not a public address "
                "(allow the host in WEBHOOK_ALLOWED_HOSTS)"
            )
    return str(addresses[0])


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the receiver took longer than WEBHOOK_TIMEOUT in all")
    return left


class _DeadlineSocket:
    """A socket whose every send and receive may take only the time left before
    `deadline` (on the monotonic clock); TimeoutError once it has passed. http.client
    reads the answer through `makefile`, so its reads come here too.
    """

    def __init__(self, sock: socket.socket, deadline: float):
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data, *args):
        self._sock.settimeout(_time_left(self._deadline))
        return self._sock.sendall(data, *args)

    def recv_into(self, buffer, *args):
        self._sock.settimeout(_time_left(self._deadline))
        return self._sock.recv_into(buffer, *args)

    def makefile(self, mode="rb", *args, **kwargs):
        # socket.SocketIO reads with our recv_into; http.client asks only for "rb".
        return io.BufferedReader(socket.SocketIO(self, "rb"))

    def _decref_socketios(self):
        pass  # the connection closes the socket itself

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to a checked address, within a deadline; `Host` stays the URL's host."""

    def __init__(self, host, port, address, deadline):
        super().__init__(host, port, timeout=_time_left(deadline))
        self.address = address
        self.deadline = deadline

    def connect(self):
        sock = socket.create_connection((self.address, self.port), _time_left(self.deadline))
        self.sock = _DeadlineSocket(sock, self.deadline)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address, within a deadline; the certificate is checked for the
    URL's host.
    """

    def __init__(self, host, port, address, deadline):
        super().__init__(
            host, port, timeout=_time_left(deadline), context=ssl.create_default_context()
        )
        self.address = address
        self.deadline = deadline

    def connect(self):
        sock = socket.create_connection((self.address, self.port), _time_left(self.deadline))
        sock.settimeout(_time_left(self.deadline))  # the handshake gets what connect left
        wrapped = self._context.wrap_socket(sock, server_hostname=self.host)
        self.sock = _DeadlineSocket(wrapped, self.deadline)


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
    deadline = started + packages_settings.WEBHOOK_TIMEOUT
    outcome = Outcome()
    try:
        parts = urlsplit(delivery.webhook.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DeliveryRefused(f"not an http(s) URL: {delivery.webhook.url}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = resolve(parts.hostname, port)
        kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
        conn = kind(parts.hostname, port, address, deadline)
        try:
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            conn.request("POST", path, body=bytes(delivery.body), headers=headers_for(delivery))
            response = conn.getresponse()
            # Redirects are answers like any other: a 3xx is not success, and not followed.
            outcome.status_code = response.status
            answer = response.read(packages_settings.WEBHOOK_RESPONSE_LIMIT)
            if not outcome.ok:
                outcome.error = answer[:KEPT_CHARS].decode("utf-8", "replace")
        finally:
            conn.close()
    except DeliveryRefused as error:
        outcome.error = f"refused: {error}"
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

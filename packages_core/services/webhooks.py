"""Webhooks: creating them, and writing events to their outbox with the change that caused them.

`enqueue` runs inside the caller's transaction: the delivery rows commit with the push
or delete, or not at all. A type (the registry, say) renders the body of each format
it is asked for; the worker (`services/delivery.py`) sends those bytes as they are.
`Origin` is the request behind an event, `gitea_body` Gitea's type-agnostic package
event, and `version_deletions` the delete events of a type that renders none of its own.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone

from packages_core import types
from packages_core.client_address import client_address
from packages_core.conf import packages_settings
from packages_core.models import Owner, Webhook, WebhookDelivery
from packages_core.models.webhooks import DELETE, DISTRIBUTION, EVENTS, FORMATS, PULL, PUSH

if TYPE_CHECKING:
    from packages_core.models import PackageVersion

logger = logging.getLogger(__name__)

DISTRIBUTION_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
CONTENT_TYPES = {DISTRIBUTION: DISTRIBUTION_MEDIA_TYPE}
# How many of a webhook's deliveries its pages show.
LAST_DELIVERIES = 20


# The actor events of cleanup rules name: no user asked for those removals.
CLEANUP_ACTOR = "cleanup"


class WebhookInvalid(ValueError):
    """A webhook's fields cannot be used (an unknown event or format, a bad URL).

    `field` names the field at fault (None: the webhook as a whole), so a form can put
    the message beside it.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Origin:
    """The request behind an event, for Distribution's `request` and the links events
    carry; the empty one for what no request caused (cleanup rules).
    """

    # scheme://host of the site as clients reach it.
    base_url: str = ""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    addr: str = ""
    host: str = ""
    method: str = ""
    useragent: str = ""

    @classmethod
    def of(cls, request, base_url: str | None = None) -> Origin:
        """The origin of `request`; `base_url` is the request's scheme and host unless the
        caller knows better (the registry's configured external URL).
        """
        if base_url is None:
            base_url = f"{request.scheme}://{request.get_host()}"
        return cls(
            base_url=base_url,
            request_id=request.META.get("HTTP_X_REQUEST_ID") or str(uuid.uuid4()),
            addr=client_address(request),
            host=request.get_host(),
            method=request.method,
            useragent=request.META.get("HTTP_USER_AGENT", ""),
        )


def actor_name(actor) -> str:
    """Who an event names as its actor: a user's name (empty for an anonymous one), a
    name given as it is (`CLEANUP_ACTOR`), empty for none.
    """
    if actor is None:
        return ""
    if isinstance(actor, str):
        return actor
    return actor.get_username()


@dataclass(frozen=True)
class Target:
    """What enqueue needs of an active webhook, kept per process between pushes."""

    id: int
    events: frozenset[str]
    name_filter: str
    format: str

    def wants(self, event_type: str, name: str) -> bool:
        if event_type not in self.events:
            return False
        # Image names are compared in lower case, as they are looked up.
        return not self.name_filter or fnmatch.fnmatchcase(name.lower(), self.name_filter.lower())


# owner id (None: site-wide) -> (expiry on the monotonic clock, its active webhooks)
_targets: dict[int | None, tuple[float, list[Target]]] = {}
_lock = threading.Lock()


def forget(**kwargs) -> None:
    """Drop what this process knows of webhooks (connected to Webhook's save and delete)."""
    with _lock:
        _targets.clear()


def _load(owner_id: int | None) -> list[Target]:
    rows = Webhook.objects.filter(is_active=True)
    rows = rows.filter(owner__isnull=True) if owner_id is None else rows.filter(owner_id=owner_id)
    return [
        Target(pk, frozenset(events or ()), name_filter, format_)
        for pk, events, name_filter, format_ in rows.order_by("pk").values_list(
            "pk", "events", "name_filter", "format"
        )
    ]


def targets_of(owner_id: int | None) -> list[Target]:
    """The active webhooks of an owner (None: the site's), at most WEBHOOK_CACHE_SECONDS old."""
    ttl = packages_settings.WEBHOOK_CACHE_SECONDS
    now = time.monotonic()
    cached = _targets.get(owner_id)
    if ttl and cached is not None and cached[0] > now:
        return cached[1]
    found = _load(owner_id)
    if ttl:
        with _lock:
            _targets[owner_id] = (now + ttl, found)
    return found


def enqueue(
    owner: Owner,
    event_type: str,
    name: str,
    render: Callable[[str, str], dict | None],
) -> list[WebhookDelivery]:
    """Write one delivery per matching webhook (the owner's and the site's) for an event
    on the package `name`, in the caller's transaction.

    `render(format, event_id)` builds the body of one format; it is called only when a
    webhook wants the event, once per format. None: the format cannot say it (a type
    without manifests has no Distribution event), and webhooks of that format hear nothing.
    """
    wanted = [
        target
        for target in [*targets_of(owner.pk), *targets_of(None)]
        if target.wants(event_type, name)
    ]
    if wanted:
        # What this process keeps may be a moment stale: a webhook deleted meanwhile
        # (by another process) would fail the change's own transaction at commit.
        live = set(
            Webhook.objects.filter(pk__in=[t.id for t in wanted], is_active=True).values_list(
                "pk", flat=True
            )
        )
        wanted = [target for target in wanted if target.id in live]
    if not wanted:
        return []
    event_id = str(uuid.uuid4())
    bodies: dict[str, bytes | None] = {}
    now = timezone.now()
    rows = []
    for target in wanted:
        if target.format not in bodies:
            body = render(target.format, event_id)
            bodies[target.format] = (
                None if body is None else json.dumps(body, separators=(",", ":")).encode()
            )
        if bodies[target.format] is None:
            continue
        rows.append(
            WebhookDelivery(
                webhook_id=target.id,
                event_id=event_id,
                event_type=event_type,
                body=bodies[target.format],
                content_type=CONTENT_TYPES.get(target.format, "application/json"),
                next_attempt_at=now,
            )
        )
    return WebhookDelivery.objects.bulk_create(rows) if rows else []


GITEA_ACTIONS = {PUSH: "created", DELETE: "deleted", PULL: "pulled"}


def gitea_user(name: str, pk=None) -> dict:
    return {"id": pk, "login": name, "username": name}


def gitea_body(
    action: str, *, owner: Owner, name: str, type: str, version: str, html_url: str, actor: str
) -> dict:
    """Gitea's package webhook: action created/deleted (and, ours, pulled), the package,
    its sender. Nothing in it is particular to a type.
    """
    sender = gitea_user(actor)
    return {
        "action": GITEA_ACTIONS[action],
        "package": {
            "owner": gitea_user(owner.name, owner.pk),
            "name": name,
            "type": type,
            "version": version,
            "html_url": html_url,
            "creator": sender,
            "created_at": timezone.now().isoformat(),
        },
        "sender": sender,
    }


def version_deletions(
    versions: list[PackageVersion], *, actor, origin: Origin
) -> Callable[[], None]:
    """The delete events of versions of a type without events of its own
    (`types.RemovalEvents`): Gitea's package event, one per version, read now, written
    by the callable returned. Distribution's envelope describes manifests: its webhooks
    hear nothing of these.
    """
    found = []
    for version in versions:
        package = version.package
        path = types.web_url(version)
        body = functools.partial(
            gitea_body,
            DELETE,
            owner=package.owner,
            name=package.name,
            type=package.type,
            version=version.version,
            html_url=origin.base_url + path if path and origin.base_url else "",
            actor=actor_name(actor),
        )
        found.append((package.owner, package.name, body))

    def announce() -> None:
        for owner, name, body in found:
            enqueue(owner, DELETE, name, _gitea_only(body))

    return announce


def _gitea_only(body: Callable[[], dict]) -> Callable[[str, str], dict | None]:
    def render(format_: str, event_id: str) -> dict | None:
        return None if format_ == DISTRIBUTION else body()

    return render


def parse_events(events: str | Iterable[str]) -> list[str]:
    """Event names from "push,delete" or a list; WebhookInvalid for an unknown one."""
    names = events.split(",") if isinstance(events, str) else list(events)
    names = [name.strip().lower() for name in names if name.strip()]
    unknown = sorted(set(names) - set(EVENTS))
    if unknown or not names:
        raise WebhookInvalid(
            f"events must be some of {', '.join(EVENTS)}; not {', '.join(unknown) or 'none'}",
            field="events",
        )
    return sorted(set(names), key=EVENTS.index)


def create_webhook(
    owner: Owner | None,
    url: str,
    *,
    secret: str = "",
    events: str | Iterable[str] = "push,delete",
    format: str = "gitea",
    name_filter: str = "",
    is_active: bool = True,
) -> Webhook:
    """A new webhook of an owner, or of the site (owner None)."""
    webhook = Webhook(
        owner=owner,
        url=url,
        secret=secret,
        events=parse_events(events),
        format=format,
        name_filter=name_filter,
        is_active=is_active,
    )
    _check_and_save(webhook)
    logger.info("webhook %s of %s created", webhook.pk, owner or "the site")
    return webhook


def update_webhook(
    webhook: Webhook,
    *,
    url: str | None = None,
    secret: str | None = None,
    events: str | Iterable[str] | None = None,
    format: str | None = None,
    name_filter: str | None = None,
    is_active: bool | None = None,
) -> Webhook:
    """Change the fields given (None: left as they are), with create_webhook's rules.

    A secret of "" removes it; None keeps it, since forms and API clients never see it
    to send it back.
    """
    changes = {
        "url": url,
        "secret": secret,
        "format": format,
        "name_filter": name_filter,
        "is_active": is_active,
        "events": None if events is None else parse_events(events),
    }
    for name, value in changes.items():
        if value is not None:
            setattr(webhook, name, value)
    _check_and_save(webhook)
    logger.info("webhook %s of %s changed", webhook.pk, webhook.owner or "the site")
    return webhook


def delete_webhook(webhook: Webhook) -> None:
    """Remove a webhook and its deliveries, sent or not."""
    pk, owner = webhook.pk, webhook.owner
    webhook.delete()
    logger.info("webhook %s of %s deleted", pk, owner or "the site")


def _check_and_save(webhook: Webhook) -> None:
    """Save the webhook, or WebhookInvalid naming the first field that cannot be used."""
    if webhook.format not in FORMATS:
        raise WebhookInvalid(
            f"format must be one of {', '.join(FORMATS)}, not {webhook.format!r}", field="format"
        )
    if not webhook.url.lower().startswith(("http://", "https://")):
        raise WebhookInvalid(
            f"the URL must be http:// or https://, not {webhook.url!r}", field="url"
        )
    try:
        webhook.full_clean()
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        if field == NON_FIELD_ERRORS:
            raise WebhookInvalid(messages[0]) from error
        raise WebhookInvalid(f"{field}: {messages[0]}", field=field) from error
    webhook.save()


def last_deliveries(webhook: Webhook, count: int = LAST_DELIVERIES) -> list[WebhookDelivery]:
    """The webhook's newest deliveries, newest first (without their bodies)."""
    return list(webhook.deliveries.defer("body").order_by("-pk")[:count])


def redeliver(deliveries: Iterable[WebhookDelivery]) -> int:
    """Send these events again, from their first attempt; how many were queued."""
    ids = [delivery.pk for delivery in deliveries]
    return WebhookDelivery.objects.filter(pk__in=ids).update(
        status=WebhookDelivery.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        claimed_until=None,
    )


def test_delivery(webhook: Webhook) -> WebhookDelivery:
    """Queue a "ping" event for a webhook, whatever events it wants."""
    event_id = str(uuid.uuid4())
    body = {"action": "ping", "id": event_id, "webhook": webhook.pk, "owner": None}
    if webhook.owner_id is not None:
        body["owner"] = webhook.owner.name
    if webhook.format == DISTRIBUTION:
        body = {"events": [{**body, "timestamp": timezone.now().isoformat()}]}
    return WebhookDelivery.objects.create(
        webhook=webhook,
        event_id=event_id,
        event_type="ping",
        body=json.dumps(body, separators=(",", ":")).encode(),
        content_type=CONTENT_TYPES.get(webhook.format, "application/json"),
        next_attempt_at=timezone.now(),
    )


def has_webhooks(owner_id: int | None) -> bool:
    """Whether any active webhook could hear of this owner's events (cached)."""
    return bool(targets_of(owner_id) or targets_of(None))

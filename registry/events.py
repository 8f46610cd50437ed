"""Webhook events of containers: the bodies of a push, a delete or a pull in each format.

`images.py` calls `pushed` inside the transaction that stores a manifest, the manifest
view `pulled` as it answers a GET; deletes are announced by `ContainerRemovalEvents`,
the container type's hook that `packages_core.services.versions.remove_versions` asks
whichever face removed the versions. They hand the domain's outbox
(`packages_core.services.webhooks`) a renderer, so nothing is built when no webhook
listens.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db import DatabaseError, transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from packages_core import types
from packages_core.models import Owner, PackageVersion
from packages_core.models.webhooks import DELETE, DISTRIBUTION, PULL, PUSH
from packages_core.services import webhooks
from packages_core.services.webhooks import Origin
from registry.authentication import external_base
from registry.conf import registry_settings
from registry.models import Manifest

logger = logging.getLogger(__name__)

CONTAINER = "container"
# Distribution's source.instanceID: one per process, as Distribution has one per instance.
INSTANCE_ID = str(uuid.uuid4())


def origin_of(request) -> Origin:
    """The request behind an event, on the site's external URL."""
    return Origin.of(request, external_base(request))


@dataclass(frozen=True)
class ManifestEvent:
    """What any format says of a manifest stored or removed."""

    owner: Owner
    image: str
    digest: str
    media_type: str
    size: int
    tag: str | None
    actor: str


def _base_url(origin: Origin) -> str:
    """scheme://host of the site: /v2 is at its root, and reversed paths carry any prefix."""
    configured = registry_settings.EXTERNAL_URL
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}"
    return origin.base_url


def _html_url(event: ManifestEvent, origin: Origin) -> str:
    version = event.tag or event.digest
    try:
        path = reverse(
            "registry_web:package_version", args=[event.owner.name, event.image, version]
        )
    except NoReverseMatch:
        return ""
    return _base_url(origin) + path


def gitea_body(action: str, event: ManifestEvent, origin: Origin) -> dict:
    """Gitea's package webhook, naming the tag, or the digest of an untagged manifest."""
    return webhooks.gitea_body(
        action,
        owner=event.owner,
        name=event.image,
        type=CONTAINER,
        version=event.tag or event.digest,
        html_url=_html_url(event, origin),
        actor=event.actor,
    )


def distribution_body(action: str, event: ManifestEvent, origin: Origin, event_id: str) -> dict:
    """CNCF Distribution's notification envelope with one event."""
    repository = f"{event.owner.name.lower()}/{event.image}"
    target = {
        "mediaType": event.media_type,
        "digest": event.digest,
        "size": event.size,
        "length": event.size,
        "repository": repository,
        "url": f"{_base_url(origin)}/v2/{repository}/manifests/{event.digest}",
    }
    if event.tag:
        target["tag"] = event.tag
    return {
        "events": [
            {
                "id": event_id,
                "timestamp": timezone.now().isoformat(),
                "action": action,
                "target": target,
                "request": {
                    "id": origin.request_id,
                    "addr": origin.addr,
                    "host": origin.host,
                    "method": origin.method,
                    "useragent": origin.useragent,
                },
                "actor": {"name": event.actor},
                "source": {"addr": _source_addr(), "instanceID": INSTANCE_ID},
            }
        ]
    }


def _source_addr() -> str:
    return socket.gethostname()


def _enqueue(action: str, event: ManifestEvent, origin: Origin | None) -> None:
    origin = origin or Origin()

    def render(format_: str, event_id: str) -> dict:
        if format_ == DISTRIBUTION:
            return distribution_body(action, event, origin, event_id)
        return gitea_body(action, event, origin)

    webhooks.enqueue(event.owner, action, event.image, render)


def pushed(event: ManifestEvent, origin: Origin | None) -> None:
    """A manifest was stored (under its tag, if pushed by one): in the push's transaction."""
    _enqueue(PUSH, event, origin)


def deleted(event: ManifestEvent, origin: Origin | None) -> None:
    """A tag or manifest was removed: in the delete's transaction."""
    _enqueue(DELETE, event, origin)


class ContainerRemovalEvents(types.RemovalEvents):
    """One delete event per version that goes: a tag naming its manifest's digest, or an
    untagged manifest by its digest. A version without a manifest says nothing.
    """

    def prepare(
        self, versions: list[PackageVersion], *, actor, origin: Origin
    ) -> Callable[[], None]:
        found = manifest_events(versions, actor)

        def announce() -> None:
            for event in found:
                deleted(event, origin)

        return announce


def manifest_events(versions: list[PackageVersion], actor) -> list[ManifestEvent]:
    """What the events of these versions say of their manifests, in version order."""
    by_pk = {version.pk: version for version in versions}
    rows = (
        Manifest.objects.filter(file__version__in=list(by_pk), file__is_lead=True)
        .values_list("file__version_id", "digest", "media_type", "file__blob__size")
        .order_by("file__version_id")
    )
    found = []
    for version_id, digest, media_type, size in rows:
        version = by_pk[version_id]
        found.append(
            ManifestEvent(
                owner=version.package.owner,
                image=version.package.name,
                digest=digest,
                media_type=media_type,
                size=size,
                tag=version.version if types.is_tag(version) else None,
                actor=webhooks.actor_name(actor),
            )
        )
    return found


def pulled(event: ManifestEvent, origin: Origin | None) -> None:
    """A manifest was pulled: written at once, and only if a webhook wants pulls.

    A pull must never fail for it: a database that refuses the write (read-only, full)
    costs the event, logged, not the pull.
    """
    try:
        # Its own savepoint: a failed write leaves any surrounding transaction usable.
        with transaction.atomic():
            _enqueue(PULL, event, origin)
    except DatabaseError:
        logger.exception("the pull event of %s/%s was not recorded", event.owner.name, event.image)


def listening(owner: Owner) -> bool:
    """Whether any webhook could hear of this owner's events (no query most of the time)."""
    return webhooks.has_webhooks(owner.pk)

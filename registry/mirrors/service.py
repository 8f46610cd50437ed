"""Mirrors: making them, and telling on a pull whether an owner is one."""

from __future__ import annotations

import logging
import re
import time
from urllib.parse import urlsplit

from django.db import transaction

from packages_core import sealed
from packages_core.exceptions import InvalidInput
from packages_core.memo import Memo
from packages_core.models import Owner
from packages_core.models.owners import Visibility
from packages_core.services.owners import check_owner_name, check_visibility
from registry.mirrors.upstream import Upstream, UpstreamError
from registry.models import Mirror

logger = logging.getLogger(__name__)

# How long a process trusts what it knows of which owners are mirrors; a mirror saved
# or deleted here is known at once (`forget`), elsewhere within this.
KNOWN_SECONDS = 10.0
TTL_PATTERN = re.compile(r"\A([0-9]+)([smhd]?)\Z")
TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL_SECONDS = 365 * 86400

# owner id -> the Mirror, or None for an owner that is not one
_known = Memo()
# The mirrors' names, lowercase, as bytes: forge's gunicorn worker sends their /v2
# requests to its transfer lane, since a miss waits on the upstream. Read there from
# the event loop, so only ever replaced whole; refreshed from request threads.
_names: frozenset[bytes] = frozenset()
_names_until = 0.0


class MirrorInvalid(InvalidInput):
    """A mirror's fields cannot be used (a URL that is not http(s), a bad TTL)."""


def parse_ttl(text: str) -> int:
    """Seconds from "600", "90s", "10m", "2h" or "1d", at most a year."""
    match = TTL_PATTERN.match(text.strip().lower())
    if match is None:
        raise MirrorInvalid(f"a TTL is a number of seconds, or one with s, m, h or d: not {text!r}")
    seconds = int(match.group(1)) * TTL_UNITS[match.group(2)]
    if seconds > MAX_TTL_SECONDS:
        raise MirrorInvalid(f"a TTL is at most a year ({MAX_TTL_SECONDS} s), not {text!r}")
    return seconds


def check_upstream_url(url: str) -> str:
    """The upstream's root URL, without a trailing slash; MirrorInvalid unless it is
    http(s) with a host (a bare name such as a compose service's is fine) and no user,
    password, query or fragment (credentials go in their own fields, never in a URL
    the pages show).
    """
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise MirrorInvalid(f"the upstream URL {url!r} has a bad port") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise MirrorInvalid(f"the upstream must be an http:// or https:// URL, not {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise MirrorInvalid(
            "the upstream URL holds no user, password, query or fragment; give the "
            "credentials as the mirror's username and password"
        )
    return url.strip().rstrip("/")


def create_mirror(
    name: str,
    upstream_url: str,
    *,
    username: str = "",
    password: str = "",
    visibility: str = Visibility.PUBLIC,
    ttl_seconds: int = 600,
) -> Mirror:
    """A new owner `name` that mirrors `upstream_url`; an organisation without members,
    which site admins manage.
    """
    check_owner_name(name)
    check_visibility(visibility)
    url = check_upstream_url(upstream_url)
    with transaction.atomic():
        owner = Owner.objects.create(
            name=name,
            kind=Owner.Kind.ORG,
            visibility=visibility,
            description=f"Mirror of {url}",
        )
        mirror = Mirror(owner=owner, upstream_url=url, username=username, ttl_seconds=ttl_seconds)
        set_password(mirror, password)
        mirror.full_clean()
        mirror.save()
    return mirror


def set_password(mirror: Mirror, password: str) -> None:
    """Keep the upstream password sealed (packages_core/sealed.py); saved by the caller."""
    mirror.sealed_password = sealed.seal(password)


def upstream_of(mirror: Mirror) -> Upstream:
    """The mirror's upstream with its credentials. A password no key of the site opens
    (SECRET_KEY changed without the old one in SECRET_KEY_FALLBACKS) refuses every
    upstream request, so pulls fall back to what the cache holds.
    """
    try:
        password = sealed.unseal(mirror.sealed_password)
    except sealed.SealBroken as error:
        logger.error("mirror %s: %s", mirror.owner_id, error)
        return Upstream(mirror.upstream_url, mirror.username, credentials_error=str(error))
    return Upstream(mirror.upstream_url, mirror.username, password)


def probe(mirror: Mirror) -> str:
    """What the upstream says to `GET /v2/`, in a sentence: whether it looks like a
    registry this site may reach (for createmirror to tell its operator at once).
    """
    try:
        status = upstream_of(mirror).ping()
    except UpstreamError as error:
        return f"the upstream cannot be reached now: {error.message}"
    if status in (200, 401):
        return f"the upstream answers as a registry ({status} to /v2/)"
    return f"the upstream answered {status} to /v2/: is it a registry's root URL?"


def mirror_of(owner: Owner) -> Mirror | None:
    """The owner's mirror, if it is one: asked of every pull, so known per process."""
    found = _known.get(owner.pk, _known)
    if found is _known:
        found = Mirror.objects.filter(owner_id=owner.pk).first()
        _known.set(owner.pk, found, KNOWN_SECONDS)
        _refresh_names()
    return found


def mirror_names() -> frozenset[bytes]:
    """The lowercase names of the mirrors, as this process last learnt them."""
    return _names


def _refresh_names() -> None:
    global _names, _names_until
    now = time.monotonic()
    if now < _names_until:
        return
    _names_until = now + KNOWN_SECONDS
    names = Mirror.objects.values_list("owner__name", flat=True)
    _names = frozenset(name.lower().encode() for name in names)


def forget(**kwargs) -> None:
    """Drop what this process knows of mirrors (connected to Mirror's save and delete)."""
    global _names_until
    _known.clear()
    _names_until = 0.0

"""Slowing down password guessing: too many failed sign-ins from one client get 429.

Failures are counted per client address and user name, and per client address
alone (with a higher limit, against guessing across many names), in the cache named
by REGISTRY["THROTTLE_CACHE"], which must be shared by the server's workers for
the limit to hold across them. Successful sign-ins are never throttled by another
user's failures, and reset their own count.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import caches

from registry.conf import registry_settings
from registry.errors import TooManyRequests

# How many times the per-user limit one address may fail across all names.
ADDRESS_LIMIT_FACTOR = 5


def _client(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(request, username: str) -> tuple[str, str]:
    client = _client(request)
    named = hashlib.sha256(f"{client}\0{username.lower()}".encode()).hexdigest()
    return f"registry:signin-failures:{named}", f"registry:signin-failures:{client}"


def _cache():
    return caches[registry_settings.THROTTLE_CACHE]


def check(request, username: str) -> None:
    """TooManyRequests if this client has failed too often lately."""
    limit = int(registry_settings.SIGNIN_FAILURE_LIMIT)
    if limit <= 0:
        return
    per_user, per_address = _keys(request, username)
    found = _cache().get_many([per_user, per_address])
    for key, allowed in ((per_user, limit), (per_address, limit * ADDRESS_LIMIT_FACTOR)):
        count, window_end = found.get(key, (0, 0.0))
        if count >= allowed and window_end > time.time():
            retry_after = max(1, int(window_end - time.time()) + 1)
            raise TooManyRequests(
                f"too many failed sign-ins; try again in {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )


def record_failure(request, username: str) -> None:
    window = int(registry_settings.SIGNIN_FAILURE_WINDOW)
    now = time.time()
    cache = _cache()
    for key in _keys(request, username):
        count, window_end = cache.get(key, (0, 0.0))
        if window_end <= now:
            count, window_end = 0, now + window
        # Not atomic across workers: a few extra guesses may slip through a race,
        # which a limit of this kind tolerates.
        cache.set(key, (count + 1, window_end), timeout=max(1, int(window_end - now) + 1))


def record_success(request, username: str) -> None:
    _cache().delete(_keys(request, username)[0])

"""The cache the server's processes share (PACKAGES["CACHE"]): a failure is a miss, not an error.

It holds sign-in failure counts and checked credentials, so every worker (and, with
Redis, every node) sees the same. When the cache server is down or slow, requests go on
as if the cache were empty: a pull must not fail because Redis restarted. Each failure
is logged, at most once a minute per process, and the readiness probe reports it.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache import caches

from packages_core.conf import packages_settings

logger = logging.getLogger(__name__)

LOG_INTERVAL = 60.0

_last_logged = 0.0
_log_lock = threading.Lock()


def cache():
    """The configured cache itself, for callers that want its errors (health checks)."""
    return caches[packages_settings.CACHE]


def _failed(operation: str, error: Exception) -> None:
    global _last_logged
    now = time.monotonic()
    with _log_lock:
        if now - _last_logged < LOG_INTERVAL:
            return
        _last_logged = now
    logger.warning(
        "the shared cache %r failed (%s: %s); going on without it",
        packages_settings.CACHE,
        operation,
        error,
    )


def get(key: str, default=None):
    try:
        return cache().get(key, default)
    except Exception as error:
        _failed("get", error)
        return default


def get_many(keys: list[str]) -> dict:
    try:
        return cache().get_many(keys)
    except Exception as error:
        _failed("get_many", error)
        return {}


def set(key: str, value, timeout: float) -> None:
    try:
        cache().set(key, value, timeout)
    except Exception as error:
        _failed("set", error)


def add(key: str, value, timeout: float) -> None:
    """Set `key` unless it holds a value already."""
    try:
        cache().add(key, value, timeout)
    except Exception as error:
        _failed("add", error)


def delete_many(keys: list[str]) -> None:
    try:
        cache().delete_many(keys)
    except Exception as error:
        _failed("delete_many", error)


def count(key: str, timeout: float) -> int | None:
    """Add one to the counter at `key`, made with this lifetime if it is new; the new
    count, or None if the cache failed. Atomic where the cache is (Redis, memcached,
    the local-memory cache); the file cache may lose a count when workers race.
    """
    try:
        store = cache()
        store.add(key, 0, timeout)
        try:
            return store.incr(key)
        except ValueError:  # expired between add and incr
            store.add(key, 1, timeout)
            return 1
    except Exception as error:
        _failed("incr", error)
        return None

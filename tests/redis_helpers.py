"""Redis for the tests that need a shared cache: the server at 127.0.0.1:6379 (or
TEST_REDIS_URL). Without it those tests skip on a developer's machine and fail in CI.
"""

from __future__ import annotations

import os
import uuid

from tests.ci import unavailable

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """The URL of a Redis that answers; skip without one, fail in CI (CI=true)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        unavailable(
            f"Redis is not reachable at {REDIS_URL} ({error}); start it with "
            "`redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''`",
            "a missing Redis",
        )
    return REDIS_URL


def redis_cache_config(url: str, prefix: str | None = None) -> dict:
    """A CACHES entry on Redis whose keys are this test's alone."""
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": prefix or f"forge-test-{uuid.uuid4().hex[:12]}",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }


def drop_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)

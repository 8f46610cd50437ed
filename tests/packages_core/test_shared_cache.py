"""The shared cache (Redis here): counts that hold across processes, credentials kept
without password hashes, and requests that go on when the cache is down.
"""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from django.core.cache import caches
from registry_helpers import ALICE, assert_error, basic_auth

from packages_core import shared_cache

pytestmark = pytest.mark.django_db


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dead_cache(settings):
    """The default cache points at a Redis port nothing listens on."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }


def test_counting_is_atomic_across_threads_on_redis(redis_cache):
    def count_fifty():
        for _ in range(50):
            shared_cache.count("racing", 60)

    threads = [threading.Thread(target=count_fifty) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert caches["default"].get("racing") == 400


def test_a_count_starts_at_one_and_expires_with_its_window(redis_cache):
    import redis

    assert shared_cache.count("fresh", 30) == 1
    assert shared_cache.count("fresh", 30) == 2

    raw = redis.Redis.from_url(redis_cache["LOCATION"])
    ttl = raw.ttl(caches["default"].make_key("fresh"))
    assert 0 < ttl <= 30


def test_failed_sign_ins_are_throttled_from_the_counts_in_redis(
    client, alice, redis_cache, settings
):
    settings.PACKAGES = {"SIGNIN_FAILURE_LIMIT": 3, "SIGNIN_FAILURE_WINDOW": 60}
    wrong = basic_auth("alice", "nope")
    for _ in range(3):
        assert client.get("/v2/", REMOTE_ADDR="10.1.1.1", **wrong).status_code == 401

    response = client.get("/v2/", REMOTE_ADDR="10.1.1.1", **wrong)

    assert_error(response, 429, "TOOMANYREQUESTS")
    assert 1 <= int(response["Retry-After"]) <= 61


def test_checked_credentials_are_cached_without_the_password_hash(client, alice, redis_cache):
    import redis

    assert client.get("/v2/", **ALICE).status_code == 200

    raw = redis.Redis.from_url(redis_cache["LOCATION"])
    keys = list(raw.scan_iter(match=f"{redis_cache['KEY_PREFIX']}:*registry:basic:*"))
    assert len(keys) == 1
    stored = raw.get(keys[0])
    alice.refresh_from_db()
    assert alice.password.encode() not in stored
    assert b"alice-pw" not in stored


def test_a_cached_sign_in_stops_working_when_the_password_changes(client, alice, redis_cache):
    assert client.get("/v2/", **ALICE).status_code == 200
    alice.set_password("changed")
    alice.save()

    assert client.get("/v2/", **ALICE).status_code == 401


def test_with_the_cache_down_sign_ins_and_pulls_go_on(client, alice, dead_cache, caplog):
    with caplog.at_level(logging.WARNING, logger="packages_core.shared_cache"):
        assert client.get("/v2/", **ALICE).status_code == 200
        assert client.get("/v2/", **basic_auth("alice", "nope")).status_code == 401
        assert client.get("/v2/", **ALICE).status_code == 200


def test_with_the_cache_down_a_warning_is_logged_at_most_once_a_minute(dead_cache, caplog):
    shared_cache._last_logged = 0.0
    with caplog.at_level(logging.WARNING, logger="packages_core.shared_cache"):
        for _ in range(5):
            assert shared_cache.get("anything") is None

    warnings = [r for r in caplog.records if r.name == "packages_core.shared_cache"]
    assert len(warnings) == 1
    assert "going on without it" in warnings[0].getMessage()

"""Repeated failed sign-ins from one client are throttled with 429 and Retry-After."""

import time

import pytest
from django.test import RequestFactory
from registry_helpers import ALICE, BOB, assert_error, basic_auth

from packages_core import shared_cache, throttling

pytestmark = pytest.mark.django_db

WRONG = basic_auth("alice", "not-her-password")


@pytest.fixture
def limit(settings):
    settings.PACKAGES = {"SIGNIN_FAILURE_LIMIT": 3, "SIGNIN_FAILURE_WINDOW": 60}
    return 3


def fail(client, times, auth=WRONG, address="10.0.0.1"):
    for _ in range(times):
        assert client.get("/v2/", REMOTE_ADDR=address, **auth).status_code == 401


def test_failures_up_to_the_limit_are_401_then_429_with_retry_after(client, alice, limit):
    fail(client, limit)
    response = client.get("/v2/", REMOTE_ADDR="10.0.0.1", **WRONG)
    assert_error(response, 429, "TOOMANYREQUESTS")
    assert 1 <= int(response["Retry-After"]) <= 61


def test_once_throttled_even_the_right_password_waits(client, alice, limit):
    fail(client, limit)
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 429


def test_other_clients_and_other_users_are_unaffected(client, alice, bob, limit):
    fail(client, limit)
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.2", **ALICE).status_code == 200
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **BOB).status_code == 200


def test_a_successful_sign_in_resets_the_count(client, alice, limit):
    fail(client, limit - 1)
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 200
    fail(client, limit - 1)
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 200


def test_guessing_across_many_names_from_one_address_is_throttled_too(client, alice, limit):
    for n in range(limit * 5):
        fail(client, 1, auth=basic_auth(f"user{n}", "guess"))
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 429


def test_the_window_ends(client, alice, settings, monkeypatch):
    settings.PACKAGES = {"SIGNIN_FAILURE_LIMIT": 2, "SIGNIN_FAILURE_WINDOW": 60}
    fail(client, 2)
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 429
    later = time.time() + 61
    monkeypatch.setattr("packages_core.throttling.time.time", lambda: later)
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 200


def test_the_token_endpoint_is_throttled_as_well(client, alice, limit):
    for _ in range(limit):
        assert client.get("/v2/token", REMOTE_ADDR="10.0.0.1", **WRONG).status_code == 401
    assert_error(client.get("/v2/token", REMOTE_ADDR="10.0.0.1", **WRONG), 429, "TOOMANYREQUESTS")


def test_a_limit_of_zero_turns_throttling_off(client, alice, settings):
    settings.PACKAGES = {"SIGNIN_FAILURE_LIMIT": 0}
    fail(client, 20)
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 200


# Behind a proxy


def via_proxy(client, times, forwarded, auth=WRONG, proxy="127.0.0.1"):
    for _ in range(times):
        response = client.get("/v2/", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=forwarded, **auth)
        assert response.status_code == 401


def test_behind_a_trusted_proxy_failures_count_per_forwarded_client(client, alice, limit):
    via_proxy(client, limit, "203.0.113.7")

    throttled = client.get(
        "/v2/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7", **ALICE
    )
    other = client.get(
        "/v2/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.9", **ALICE
    )

    assert throttled.status_code == 429
    assert other.status_code == 200  # another client behind the same proxy signs in


def test_addresses_a_client_put_before_the_proxys_are_not_believed(client, alice, limit):
    # nginx appends the address it saw; what the client sent itself comes first.
    for n in range(limit):
        via_proxy(client, 1, f"10.9.9.{n}, 203.0.113.7")

    response = client.get(
        "/v2/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.1.1.1, 203.0.113.7", **ALICE
    )

    assert response.status_code == 429


def test_forwarded_for_from_an_untrusted_address_is_ignored(client, alice, limit):
    for n in range(limit):
        via_proxy(client, 1, f"198.51.100.{n}", proxy="192.0.2.1")

    response = client.get("/v2/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="1.2.3.4", **ALICE)

    assert response.status_code == 429  # counted against 192.0.2.1, whatever it claims


def test_trusted_proxies_may_be_networks(client, alice, settings):
    settings.PACKAGES = {
        "SIGNIN_FAILURE_LIMIT": 2,
        "SIGNIN_FAILURE_WINDOW": 60,
        "TRUSTED_PROXIES": ["10.0.0.0/8"],
    }
    via_proxy(client, 2, "203.0.113.7", proxy="10.20.30.40")

    response = client.get(
        "/v2/", REMOTE_ADDR="10.20.30.41", HTTP_X_FORWARDED_FOR="203.0.113.7", **ALICE
    )

    assert response.status_code == 429


def test_a_repeated_sign_in_without_failures_asks_the_shared_cache_nothing(
    client, alice, limit, monkeypatch
):
    """What this process learnt a moment ago (no failures; the password checked) answers."""
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 200
    calls = []
    for name in ("get", "get_many", "set", "add", "delete_many", "count"):
        original = getattr(shared_cache, name)
        monkeypatch.setattr(
            shared_cache,
            name,
            lambda *a, _n=name, _o=original, **k: calls.append(_n) or _o(*a, **k),
        )

    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 200

    assert calls == []


def test_failures_here_end_what_this_process_remembered_at_once(client, alice, limit):
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 200  # clean
    fail(client, limit)

    response = client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE)

    assert_error(response, 429, "TOOMANYREQUESTS")


def test_failures_made_by_other_processes_hold_once_the_memory_is_stale(
    client, alice, limit, monkeypatch
):
    monkeypatch.setattr(throttling, "CLEAN_SECONDS", 0.2)
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 200  # clean
    # Another worker or node counts failures in the shared cache.
    elsewhere = throttling.SignIn(
        RequestFactory().get("/v2/", REMOTE_ADDR="10.0.0.1"), "alice", had_failures=False
    )
    for _ in range(limit):
        shared_cache.add(f"{throttling._keys(elsewhere.request, 'alice')[0]}:end", 9e9, 60)
        shared_cache.count(throttling._keys(elsewhere.request, "alice")[0], 60)

    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 200
    time.sleep(0.25)
    assert client.get("/v2/", REMOTE_ADDR="10.0.0.1", **ALICE).status_code == 429

"""Prepared queries (SQL compiled once) and the per-request lookups built on them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from packages_core import lookups
from packages_core.models import AccessToken, Owner
from packages_core.prepared import PreparedQuery
from packages_core.services import owners, tokens

pytestmark = pytest.mark.django_db


def test_rows_come_back_converted_as_the_orm_would_give_them(alice):
    token, _ = tokens.create_access_token(alice, "ci", "read:package", expires_in_days=3)
    query = PreparedQuery(
        lambda pk: AccessToken.objects.filter(pk=pk).values_list("pk", "scopes", "expires_at"), int
    )

    assert query.rows(token.pk) == list(
        AccessToken.objects.filter(pk=token.pk).values_list("pk", "scopes", "expires_at")
    )
    assert query.first(token.pk + 1000) is None


def test_the_sql_is_compiled_once_and_run_with_each_value(alice, bob):
    # Not Owner.objects.named(): it refuses names no owner may have, the marker among them.
    query = PreparedQuery(lambda name: Owner.objects.filter(name=name).values_list("name")[:1], str)

    assert query.first("alice") == ("alice",)
    assert query.first("bob") == ("bob",)
    assert query.first("nobody") is None


def test_a_value_the_sql_would_transform_is_refused():
    query = PreparedQuery(lambda name: Owner.objects.filter(name__icontains=name), str)

    with pytest.raises(ValueError, match="transformed"):
        query.rows("ali")


def test_a_query_whose_build_checks_its_values_is_refused_with_a_reason():
    """Owner.objects.named() finds nothing for a name no owner may have, the marker too."""
    query = PreparedQuery(lambda name: Owner.objects.named(name).values_list("name"), str)

    with pytest.raises(ValueError, match="checked a value"):
        query.rows("alice")


def test_a_wrong_number_of_values_is_refused():
    query = PreparedQuery(lambda name: Owner.objects.filter(name=name), str)

    with pytest.raises(TypeError):
        query.rows("a", "b")


def test_active_user_loads_what_access_decisions_read_and_defers_the_rest(alice):
    with CaptureQueriesContext(connection) as queries:
        user = lookups.active_user(alice.pk)
        assert (user.pk, user.get_username(), user.is_active, user.is_superuser) == (
            alice.pk,
            "alice",
            True,
            False,
        )
        assert user.check_password("alice-pw")
    assert len(queries) == 1
    assert user.email == "alice@example.com"  # deferred: read when asked for


def test_an_inactive_or_missing_user_is_none(alice):
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)

    assert lookups.active_user(alice.pk) is None
    assert lookups.active_user(alice.pk + 1000) is None


def test_a_user_row_is_reused_for_the_identity_cache_time_and_forgotten_on_save(alice, settings):
    settings.PACKAGES = {"IDENTITY_CACHE_SECONDS": 60}
    assert lookups.active_user(alice.pk) is not None
    with CaptureQueriesContext(connection) as queries:
        assert lookups.active_user(alice.pk).get_username() == "alice"
    assert len(queries) == 0

    # Unseen here (as a write by another process): the row read a moment ago stands.
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert lookups.active_user(alice.pk) is not None
    # A save in this process is seen at once.
    alice.is_active = False
    alice.save()
    assert lookups.active_user(alice.pk) is None


def test_with_no_identity_cache_time_every_lookup_asks_the_database(alice, settings):
    settings.PACKAGES = {"IDENTITY_CACHE_SECONDS": 0}
    assert lookups.active_user(alice.pk) is not None
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert lookups.active_user(alice.pk) is None


def test_a_token_revoked_here_is_forgotten_at_once(alice, settings):
    settings.PACKAGES = {"IDENTITY_CACHE_SECONDS": 60}
    token, secret = tokens.create_access_token(alice, "ci", "read:package")
    assert tokens.authenticate_token(secret) is not None
    tokens.revoke_token(token)
    assert tokens.authenticate_token(secret) is None


def test_an_access_token_is_found_by_its_hash_or_its_id(alice):
    token, secret = tokens.create_access_token(alice, "ci", "read:package,write:package")

    by_hash = lookups.access_token(token_hash=tokens.hash_token(secret))
    by_id = lookups.access_token(pk=token.pk)

    assert by_hash.pk == by_id.pk == token.pk
    assert by_hash.user_id == alice.pk
    assert by_hash.scopes == ["read:package", "write:package"]
    assert lookups.access_token(token_hash="0" * 64) is None


def test_a_revoked_or_expired_token_is_found_but_not_active(alice):
    token, _ = tokens.create_access_token(alice, "ci", "read:package")
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(days=1))

    assert lookups.access_token(pk=token.pk).is_active() is False


def test_a_signed_in_pull_with_a_known_password_asks_for_the_user_once(client, alice):
    from registry_helpers import ALICE

    owners.create_user("carol", password="carol-pw")
    assert client.get("/v2/", **ALICE).status_code == 200  # checks the password, remembers it

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/v2/", **ALICE).status_code == 200

    assert len(queries) == 1

"""Personal access tokens: issuing, authenticating, scopes, expiry and revocation."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from packages_core.exceptions import InvalidInput, NameTaken
from packages_core.models import AccessToken
from packages_core.models.tokens import Scope
from packages_core.services import tallies, tokens

pytestmark = pytest.mark.django_db

READ = Scope.READ_PACKAGE
WRITE = Scope.WRITE_PACKAGE


@pytest.fixture
def issued(alice):
    """Alice's read token and its secret."""
    return tokens.create_access_token(alice, "ci", [READ])


def set_last_used(token, seconds_ago):
    when = timezone.now() - timedelta(seconds=seconds_ago)
    AccessToken.objects.filter(pk=token.pk).update(last_used_at=when)
    return when


def stored_last_used(token):
    """The last use in the database, once the uses noted so far are written."""
    tallies.flush()
    return AccessToken.objects.values_list("last_used_at", flat=True).get(pk=token.pk)


# Issuing


def test_a_new_secret_starts_with_the_token_prefix(issued):
    _, secret = issued

    assert secret.startswith("fgt_")
    assert len(secret) >= 40


def test_only_the_sha256_of_the_secret_is_stored(issued):
    token, secret = issued

    row = AccessToken.objects.values().get(pk=token.pk)

    assert row["token_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert [column for column, value in row.items() if secret in str(value)] == []


def test_the_stored_prefix_is_the_start_of_the_secret(issued):
    token, secret = issued

    assert token.token_prefix == secret[:8]


def test_every_token_gets_its_own_secret(alice):
    _, first = tokens.create_access_token(alice, "one", [READ])
    _, second = tokens.create_access_token(alice, "two", [READ])

    assert first != second


def test_a_new_token_keeps_its_name_and_scopes(alice):
    token, _ = tokens.create_access_token(alice, "  deploy  ", "write:package, read:package")

    token.refresh_from_db()
    assert token.user == alice
    assert token.name == "deploy"
    assert token.scopes == [READ, WRITE]


def test_a_token_without_expiry_never_expires(issued):
    token, _ = issued

    assert token.expires_at is None


def test_a_token_with_expiry_expires_that_many_days_later(alice):
    before = timezone.now()

    token, _ = tokens.create_access_token(alice, "ci", [READ], expires_in_days=30)

    assert before + timedelta(days=30) <= token.expires_at <= timezone.now() + timedelta(days=30)


@pytest.mark.parametrize("days", [0, -1])
def test_a_non_positive_expiry_is_rejected(alice, days):
    with pytest.raises(InvalidInput):
        tokens.create_access_token(alice, "ci", [READ], expires_in_days=days)

    assert not AccessToken.objects.exists()


def test_a_token_name_may_be_used_once_per_user(issued, alice):
    with pytest.raises(NameTaken):
        tokens.create_access_token(alice, "ci", [WRITE])

    assert AccessToken.objects.filter(user=alice).count() == 1


def test_another_user_may_use_the_same_token_name(issued, bob):
    token, _ = tokens.create_access_token(bob, "ci", [READ])

    assert token.user == bob


@pytest.mark.parametrize("name", ["", "   "])
def test_a_token_needs_a_name(alice, name):
    with pytest.raises(InvalidInput):
        tokens.create_access_token(alice, name, [READ])


def test_a_token_with_an_unknown_scope_is_not_made(alice):
    with pytest.raises(InvalidInput):
        tokens.create_access_token(alice, "ci", ["read:package", "admin"])

    assert not AccessToken.objects.exists()


# Scopes


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ("read:package", [READ]),
        ("write:package,read:package", [READ, WRITE]),
        (" read:package , write:package ,", [READ, WRITE]),
        (["write:package", "write:package"], [WRITE]),
    ],
)
def test_parse_scopes_accepts_known_scopes(given, parsed):
    assert tokens.parse_scopes(given) == parsed


@pytest.mark.parametrize("given", ["admin", "read:package,delete:package", ["READ:PACKAGE"]])
def test_parse_scopes_rejects_unknown_scopes(given):
    with pytest.raises(InvalidInput, match="Unknown scope"):
        tokens.parse_scopes(given)


@pytest.mark.parametrize("given", ["", " , ", []])
def test_parse_scopes_rejects_an_empty_list(given):
    with pytest.raises(InvalidInput, match="at least one scope"):
        tokens.parse_scopes(given)


@pytest.mark.parametrize(
    ("scopes", "reads", "writes"),
    [
        ([READ], True, False),
        ([WRITE], True, True),
        ([READ, WRITE], True, True),
        ([], False, False),
    ],
)
def test_a_token_allows_its_scopes_and_write_implies_read(scopes, reads, writes):
    token = AccessToken(scopes=scopes)

    assert (token.allows(READ), token.allows(WRITE)) == (reads, writes)


# Authenticating


def test_authenticate_token_finds_the_token_of_a_secret(issued):
    token, secret = issued

    assert tokens.authenticate_token(secret).pk == token.pk


@pytest.mark.parametrize("secret", ["fgt_not-a-real-secret", "not-a-token", ""])
def test_authenticate_token_refuses_unknown_secrets(issued, secret):
    assert tokens.authenticate_token(secret) is None


def test_authenticate_token_refuses_a_secret_without_its_prefix(issued):
    _, secret = issued

    assert tokens.authenticate_token(secret.removeprefix("fgt_")) is None


def test_authenticate_token_records_the_first_use(issued):
    token, secret = issued
    before = timezone.now()

    found = tokens.authenticate_token(secret)

    assert stored_last_used(token) >= before
    assert found.last_used_at == stored_last_used(token)


def test_a_use_within_the_resolution_is_not_written(issued):
    token, secret = issued
    earlier = set_last_used(token, seconds_ago=10)

    tokens.authenticate_token(secret)

    assert stored_last_used(token) == earlier


def test_a_use_after_the_resolution_is_written(issued):
    token, secret = issued
    earlier = set_last_used(token, seconds_ago=61)

    tokens.authenticate_token(secret)

    assert stored_last_used(token) > earlier


def test_a_resolution_of_zero_writes_every_use(issued, settings):
    settings.PACKAGES = {**settings.PACKAGES, "TOKEN_LAST_USED_RESOLUTION": 0}
    token, secret = issued
    earlier = set_last_used(token, seconds_ago=1)

    tokens.authenticate_token(secret)

    assert stored_last_used(token) > earlier


def test_a_longer_resolution_skips_writes_within_it(issued, settings):
    settings.PACKAGES = {**settings.PACKAGES, "TOKEN_LAST_USED_RESOLUTION": 3600}
    token, secret = issued
    earlier = set_last_used(token, seconds_ago=600)

    tokens.authenticate_token(secret)

    assert stored_last_used(token) == earlier


def test_an_expired_token_does_not_authenticate(alice):
    token, secret = tokens.create_access_token(alice, "ci", [READ], expires_in_days=1)
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    assert tokens.authenticate_token(secret) is None


def test_a_token_that_has_not_expired_yet_authenticates(alice):
    _, secret = tokens.create_access_token(alice, "ci", [READ], expires_in_days=1)

    assert tokens.authenticate_token(secret) is not None


def test_a_revoked_token_does_not_authenticate(issued):
    token, secret = issued

    tokens.revoke_token(token)

    assert tokens.authenticate_token(secret) is None


def test_the_token_of_an_inactive_user_does_not_authenticate(issued, alice):
    _, secret = issued
    alice.is_active = False
    alice.save()

    assert tokens.authenticate_token(secret) is None


def test_a_refused_token_records_no_use(issued, alice):
    token, secret = issued
    alice.is_active = False
    alice.save()

    tokens.authenticate_token(secret)

    assert stored_last_used(token) is None


# Revoking


def test_revoke_token_records_when(issued):
    token, _ = issued
    before = timezone.now()

    tokens.revoke_token(token)

    assert token.revoked_at >= before
    assert token.is_active() is False


def test_revoking_twice_keeps_the_first_revocation_time(issued):
    token, _ = issued
    tokens.revoke_token(token)
    first = token.revoked_at

    tokens.revoke_token(token)

    assert AccessToken.objects.get(pk=token.pk).revoked_at == first

"""The access tokens settings page: list, create (secret shown once), revoke."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from packages_core.models import AccessToken
from packages_core.services import tallies
from packages_core.services.tokens import authenticate_token, create_access_token, hash_token
from tests.registry_helpers import basic_auth, send

pytestmark = pytest.mark.django_db

TOKENS = "/-/settings/tokens"


def create(client, **data):
    return client.post(TOKENS, {"name": "ci", "scopes": ["read:package"], **data})


def test_tokens_page_has_its_url():
    assert reverse("registry_web:settings_tokens") == TOKENS


def test_tokens_page_needs_sign_in(client, db):
    response = client.get(TOKENS)

    assert response.status_code == 302
    assert response.url == f"{reverse('registry_web:login')}?next={TOKENS}"


def test_tokens_page_lists_the_users_tokens_only(client, alice, bob):
    token, _ = create_access_token(alice, "laptop", ["write:package"], expires_in_days=30)
    create_access_token(bob, "bobs-token", ["read:package"])
    client.force_login(alice)

    response = client.get(TOKENS)

    assert response.status_code == 200
    assert list(response.context["tokens"]) == [token]
    assert "laptop" in response.text
    assert token.token_prefix in response.text
    assert "write:package" in response.text
    assert token.expires_at.strftime("%Y-%m-%d") in response.text
    assert "Active" in response.text
    assert "bobs-token" not in response.text


def test_tokens_page_shows_last_use_and_status(client, alice):
    _, secret = create_access_token(alice, "used", ["read:package"])
    authenticate_token(secret)
    tallies.flush()
    revoked, _ = create_access_token(alice, "gone", ["read:package"])
    revoked.revoked_at = timezone.now()
    revoked.save()
    expired, _ = create_access_token(alice, "old", ["read:package"], expires_in_days=1)
    expired.expires_at = timezone.now() - timedelta(days=1)
    expired.save()
    client.force_login(alice)

    text = client.get(TOKENS).text

    assert "just now" in text
    assert "Revoked" in text
    assert "Expired" in text


def test_creating_a_token_shows_its_secret_once(client, alice):
    client.force_login(alice)

    response = create(client, scopes=["read:package", "write:package"], expires_in_days="7")

    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("fgt_")
    assert secret in response.text
    assert "no-store" in response["Cache-Control"]
    token = AccessToken.objects.get(user=alice, name="ci")
    assert token.scopes == ["read:package", "write:package"]
    assert token.expires_at is not None
    # Only the hash is kept, and the secret is nowhere else to be shown again.
    assert token.token_hash == hash_token(secret)
    assert secret not in client.get(TOKENS).text
    assert secret not in str(client.session.items())
    assert not any(secret in value for value in response.cookies.values())


def test_created_token_page_says_how_to_sign_in_with_it(client, alice, settings):
    settings.REGISTRY = {**settings.REGISTRY, "EXTERNAL_URL": "https://cr.example.com"}
    client.force_login(alice)

    assert "docker login cr.example.com -u alice" in create(client).text


def test_settings_address_leads_to_the_tokens(client, alice):
    client.force_login(alice)

    response = client.get(reverse("registry_web:settings"))

    assert response.status_code == 302
    assert response.url == TOKENS


def test_created_token_works_as_a_registry_password(client, alice):
    client.force_login(alice)
    secret = create(client).context["secret"]
    client.logout()

    response = send(client, "GET", "/v2/", auth=basic_auth("alice", secret))

    assert response.status_code == 200


def test_token_without_expiry_never_expires(client, alice):
    client.force_login(alice)
    create(client, expires_in_days="")

    assert AccessToken.objects.get(name="ci").expires_at is None


def test_token_needs_a_scope(client, alice):
    client.force_login(alice)

    response = create(client, scopes=[])

    assert response.status_code == 200
    assert "secret" not in response.context
    assert response.context["form"].errors["scopes"]
    assert not AccessToken.objects.exists()


def test_token_scopes_are_only_the_known_ones(client, alice):
    client.force_login(alice)

    response = create(client, scopes=["admin"])

    assert "scopes" in response.context["form"].errors
    assert not AccessToken.objects.exists()


def test_token_expiry_must_be_positive(client, alice):
    client.force_login(alice)

    response = create(client, expires_in_days="0")

    assert "expires_in_days" in response.context["form"].errors


def test_token_names_are_unique_per_user(client, alice):
    create_access_token(alice, "ci", ["read:package"])
    client.force_login(alice)

    response = create(client)

    assert "already has a token named" in response.text
    assert AccessToken.objects.filter(user=alice).count() == 1


def test_revoking_a_token(client, alice):
    token, secret = create_access_token(alice, "ci", ["read:package"])
    client.force_login(alice)

    response = client.post(reverse("registry_web:token_revoke", args=[token.pk]), follow=True)

    assert response.redirect_chain == [(TOKENS, 302)]
    assert "Revoked the token “ci”." in response.text
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert authenticate_token(secret) is None


def test_revoking_needs_post(client, alice):
    token, _ = create_access_token(alice, "ci", ["read:package"])
    client.force_login(alice)

    assert client.get(reverse("registry_web:token_revoke", args=[token.pk])).status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


def test_nobody_revokes_another_users_token(client, alice, bob):
    token, _ = create_access_token(alice, "ci", ["read:package"])
    client.force_login(bob)

    response = client.post(reverse("registry_web:token_revoke", args=[token.pk]))

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_anonymous_cannot_revoke(client, alice):
    token, _ = create_access_token(alice, "ci", ["read:package"])

    response = client.post(reverse("registry_web:token_revoke", args=[token.pk]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is None

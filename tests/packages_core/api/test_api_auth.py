"""Who may use the API: each way of signing in, and the registry's visibility rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from packages_core.models import AccessToken, Membership
from packages_core.models.owners import Visibility
from packages_core.services import owners, tokens
from packages_core.services.tokens import revoke_token
from tests.api_helpers import (
    READ,
    WRITE,
    client_with,
    files_url,
    packages_url,
    set_visibility,
    signed_in,
    token_header,
    token_secret,
    version_url,
    with_basic_token,
    with_token,
)
from tests.registry_helpers import ALICE, basic_auth, push_image

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_image(client, alice):
    """alice/web:1.0 in alice's owner, made private after the push."""
    push_image(client, "alice/web", "1.0")
    set_visibility(alice, Visibility.PRIVATE)


@pytest.fixture
def org_image(client, org):
    """acme/app:1.0 in the private organisation acme (alice is its admin)."""
    push_image(client, "acme/app", "1.0")
    set_visibility(org, Visibility.PRIVATE)


def status(client, url: str) -> int:
    return client.get(url).status_code


def readable(client, owner: str = "alice", name: str = "web") -> bool:
    """Whether every read endpoint answers 200 (True) or all answer 404 (False)."""
    codes = {
        status(client, packages_url(owner)),
        status(client, version_url(owner, name, "1.0")),
        status(client, files_url(owner, name, "1.0")),
    }
    assert codes in ({200}, {404}), codes
    return codes == {200}


# Each way of signing in


def test_session(private_image, alice):
    assert readable(signed_in(alice))


def test_session_sign_in_with_a_password(private_image, alice):
    api = client_with()
    assert api.login(username="alice", password="alice-pw")

    assert readable(api)


def test_session_changes_need_the_csrf_token(private_image, alice):
    api = client_with()
    api.handler.enforce_csrf_checks = True
    api.force_login(alice)
    url = version_url("alice", "web", "1.0")

    refused = api.delete(url)
    api.cookies["csrftoken"] = "x" * 32
    accepted = api.delete(url, HTTP_X_CSRFTOKEN="x" * 32)

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert accepted.status_code == 204


def test_token_header(private_image, alice):
    assert readable(with_token(alice))


def test_basic_with_a_token_as_password(private_image, alice):
    assert readable(with_basic_token(alice))


def test_basic_with_a_password_is_not_an_api_credential(private_image, alice):
    api = client_with(ALICE)

    assert not readable(api)
    assert api.delete(version_url("alice", "web", "1.0")).status_code == 401


def test_basic_recognises_tokens_by_the_prefix_they_are_issued_with(
    private_image, alice, monkeypatch
):
    """The prefix is defined once (packages_core/services/tokens.py): were it changed,
    the API would take the new tokens in Basic, and a password shaped like the old
    prefix would not be tried as a token.
    """
    monkeypatch.setattr(tokens, "TOKEN_PREFIX", "xyz_")
    secret = token_secret(alice)

    assert secret.startswith("xyz_")
    assert readable(client_with(basic_auth("anything", secret)))
    assert status(client_with(basic_auth("alice", "fgt_" + secret)), packages_url("alice")) == 404


def test_jwt_obtain_and_bearer(private_image, alice):
    response = client_with().post(
        "/api/v1/token/", {"username": "alice", "password": "alice-pw"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert {"access", "refresh"} <= set(response.json())
    assert readable(client_with({"HTTP_AUTHORIZATION": f"Bearer {response.json()['access']}"}))


def test_jwt_refresh_gives_a_working_access_token(private_image, alice):
    pair = (
        client_with()
        .post("/api/v1/token/", {"username": "alice", "password": "alice-pw"}, format="json")
        .json()
    )

    response = client_with().post(
        "/api/v1/token/refresh/", {"refresh": pair["refresh"]}, format="json"
    )

    assert response.status_code == 200, response.content
    assert readable(client_with({"HTTP_AUTHORIZATION": f"Bearer {response.json()['access']}"}))


def test_jwt_may_delete(private_image, alice):
    access = (
        client_with()
        .post("/api/v1/token/", {"username": "alice", "password": "alice-pw"}, format="json")
        .json()["access"]
    )
    api = client_with({"HTTP_AUTHORIZATION": f"Bearer {access}"})

    assert api.delete(version_url("alice", "web", "1.0")).status_code == 204


def test_jwt_obtain_with_a_wrong_password_is_401(alice):
    response = client_with().post(
        "/api/v1/token/", {"username": "alice", "password": "wrong"}, format="json"
    )

    assert response.status_code == 401


def test_a_refused_sign_in_is_logged_with_the_user_name_not_the_password(alice, caplog):
    with caplog.at_level("INFO", logger="packages_core.api.views"):
        client_with().post(
            "/api/v1/token/", {"username": "alice", "password": "wrong"}, format="json"
        )

    assert caplog.messages == ["api: sign-in of 'alice' from 127.0.0.1 refused"]


def test_jwt_refresh_with_an_access_token_is_401(alice):
    pair = (
        client_with()
        .post("/api/v1/token/", {"username": "alice", "password": "alice-pw"}, format="json")
        .json()
    )

    response = client_with().post("/api/v1/token/refresh/", {"refresh": pair["access"]})

    assert response.status_code == 401


def obtain(username: str, password: str):
    return client_with().post(
        "/api/v1/token/", {"username": username, "password": password}, format="json"
    )


def test_jwt_obtain_is_refused_after_too_many_failures(alice, settings):
    settings.PACKAGES = {**settings.PACKAGES, "SIGNIN_FAILURE_LIMIT": 2}
    assert [obtain("alice", "wrong").status_code for _ in range(2)] == [401, 401]

    refused = obtain("alice", "alice-pw")

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0


def test_jwt_obtain_failures_share_the_registrys_counter(client, alice, settings):
    settings.PACKAGES = {**settings.PACKAGES, "SIGNIN_FAILURE_LIMIT": 2}
    assert client.get("/v2/", **basic_auth("alice", "wrong")).status_code == 401
    assert obtain("alice", "wrong").status_code == 401

    assert obtain("alice", "alice-pw").status_code == 429
    assert client.get("/v2/", **ALICE).status_code == 429


def test_a_successful_jwt_sign_in_resets_the_count(alice, bob, settings):
    settings.PACKAGES = {**settings.PACKAGES, "SIGNIN_FAILURE_LIMIT": 2}
    assert obtain("alice", "wrong").status_code == 401
    assert obtain("alice", "alice-pw").status_code == 200
    assert obtain("alice", "wrong").status_code == 401

    assert obtain("alice", "alice-pw").status_code == 200
    assert obtain("bob", "bob-pw").status_code == 200


def test_registry_and_api_jwts_are_not_interchangeable(client, alice):
    push_image(client, "alice/web", "1.0")
    set_visibility(alice, Visibility.PRIVATE)
    registry_token = client.get(
        "/v2/token", {"service": "testserver", "scope": "repository:alice/web:pull"}, **ALICE
    ).json()["token"]
    api_token = (
        client_with()
        .post("/api/v1/token/", {"username": "alice", "password": "alice-pw"}, format="json")
        .json()["access"]
    )

    on_api = client_with({"HTTP_AUTHORIZATION": f"Bearer {registry_token}"})
    on_registry = client.get(
        "/v2/alice/web/manifests/1.0", HTTP_AUTHORIZATION=f"Bearer {api_token}"
    )
    with_registry_token = client.get(
        "/v2/alice/web/manifests/1.0", HTTP_AUTHORIZATION=f"Bearer {registry_token}"
    )

    assert status(on_api, packages_url("alice")) == 401
    assert on_registry.status_code == 401
    assert with_registry_token.status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-jwt", "token fgt_unknown", "token not-even-prefixed"],
)
def test_bad_credentials_are_401_with_a_challenge(private_image, header):
    response = client_with({"HTTP_AUTHORIZATION": header}).get(packages_url("alice"))

    assert response.status_code == 401
    assert response["WWW-Authenticate"]


def test_a_refused_access_token_is_logged_without_its_secret(private_image, alice, caplog):
    secret = token_secret(alice)
    token = AccessToken.objects.get()
    revoke_token(token)

    with caplog.at_level("INFO", logger="packages_core.api.authentication"):
        client_with(token_header(secret)).get(packages_url("alice"))

    assert caplog.messages == ["api: access token refused from 127.0.0.1"]
    assert token.token_prefix not in caplog.text


def test_an_expired_token_is_401(private_image, alice):
    secret = token_secret(alice)
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client_with(token_header(secret)).get(packages_url("alice"))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Token realm="api"'


def test_a_revoked_token_is_401_in_both_forms(private_image, alice):
    secret = token_secret(alice)
    revoke_token(AccessToken.objects.get())

    assert status(client_with(token_header(secret)), packages_url("alice")) == 401
    assert status(client_with(basic_auth("alice", secret)), packages_url("alice")) == 401


def test_a_deactivated_users_token_is_401(private_image, alice):
    secret = token_secret(alice)
    alice.is_active = False
    alice.save()

    assert status(client_with(token_header(secret)), packages_url("alice")) == 401


# Token scopes


def test_a_read_only_token_reads_but_cannot_delete(private_image, alice):
    api = with_token(alice, scopes=[READ])

    assert readable(api)
    response = api.delete(version_url("alice", "web", "1.0"))
    assert response.status_code == 403
    assert status(signed_in(alice), version_url("alice", "web", "1.0")) == 200


def test_a_read_only_tokens_refusal_names_its_scope_and_the_one_needed(private_image, alice):
    api = with_token(alice, scopes=[READ])

    response = api.delete(version_url("alice", "web", "1.0"))

    assert response.status_code == 403
    name = AccessToken.objects.get(user=alice).name
    assert response.json()["detail"] == (
        f"The access token {name!r} has scope read:package; deleting packages needs write:package."
    )


def test_a_read_only_token_in_basic_cannot_delete(private_image, alice):
    api = with_basic_token(alice, scopes=[READ])

    assert api.delete(version_url("alice", "web", "1.0")).status_code == 403


def test_a_write_token_deletes(private_image, alice):
    api = with_token(alice, scopes=[WRITE])

    assert api.delete(version_url("alice", "web", "1.0")).status_code == 204


# Anonymous changes


@pytest.mark.parametrize("owner", ["alice", "nobody"])
def test_anonymous_delete_is_401_with_a_challenge(client, alice, owner):
    push_image(client, "alice/web", "1.0")

    response = client_with().delete(version_url(owner, "web", "1.0"))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Token realm="api"'


def test_anonymous_delete_of_a_private_owner_is_401_too(private_image):
    assert client_with().delete(version_url("alice", "web", "1.0")).status_code == 401


# Visibility: the registry's rules


def test_a_private_user_owner_is_hidden_from_anonymous_and_outsiders(private_image, bob):
    assert not readable(client_with())
    assert not readable(signed_in(bob))
    assert not readable(with_token(bob))


def test_a_private_user_owner_is_visible_to_itself_and_site_admins(
    private_image, alice, site_admin
):
    assert readable(signed_in(alice))
    assert readable(signed_in(site_admin))


def test_hidden_looks_the_same_as_missing(private_image, bob):
    hidden = signed_in(bob).get(version_url("alice", "web", "1.0"))
    missing = signed_in(bob).get(version_url("nobody", "web", "1.0"))

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("alice", "X") == missing.json()["detail"].replace(
        "nobody", "X"
    )


def test_an_outsider_deleting_from_a_hidden_owner_gets_404_not_403(private_image, bob):
    response = signed_in(bob).delete(version_url("alice", "web", "1.0"))

    assert response.status_code == 404


def test_a_reader_deleting_gets_403(client, alice, bob):
    push_image(client, "alice/web", "1.0")  # public: bob may read

    response = signed_in(bob).delete(version_url("alice", "web", "1.0"))

    assert response.status_code == 403
    assert status(client_with(), version_url("alice", "web", "1.0")) == 200


def test_a_reader_deleting_an_unknown_version_gets_403(client, alice, bob):
    push_image(client, "alice/web", "1.0")

    assert signed_in(bob).delete(version_url("alice", "web", "9.9")).status_code == 403


def test_private_org_members_read_outsiders_do_not(org_image, bob, reader_of):
    assert not readable(signed_in(bob), "acme", "app")
    reader_of(bob, Membership.Role.READ)

    assert readable(signed_in(bob), "acme", "app")
    assert readable(with_token(bob, scopes=[READ]), "acme", "app")
    assert not readable(client_with(), "acme", "app")


def test_org_readers_may_not_delete_writers_may(org_image, bob, reader_of):
    url = version_url("acme", "app", "1.0")
    reader_of(bob, Membership.Role.READ)
    assert signed_in(bob).delete(url).status_code == 403

    reader_of(bob, Membership.Role.WRITE)
    assert signed_in(bob).delete(url).status_code == 204


def test_site_admins_may_delete_anywhere(org_image, site_admin):
    assert signed_in(site_admin).delete(version_url("acme", "app", "1.0")).status_code == 204


def test_a_limited_owner_needs_sign_in(client, alice, bob):
    push_image(client, "alice/web", "1.0")
    set_visibility(alice, Visibility.LIMITED)

    assert not readable(client_with())
    assert readable(signed_in(bob))
    assert readable(with_basic_token(bob, scopes=[READ]))


def test_require_signin_view_hides_public_owners_from_anonymous(client, alice, bob, settings):
    push_image(client, "alice/web", "1.0")
    settings.PACKAGES = {**settings.PACKAGES, "REQUIRE_SIGNIN_VIEW": True}

    assert not readable(client_with())
    assert readable(signed_in(bob))


def test_a_new_user_with_a_private_owner(client, db):
    carol = owners.create_user("carol", password="carol-pw", visibility=Visibility.PRIVATE)
    push_image(client, "carol/tool", "1.0", auth=basic_auth("carol", "carol-pw"))

    assert readable(signed_in(carol), "carol", "tool")
    assert not readable(client_with(), "carol", "tool")

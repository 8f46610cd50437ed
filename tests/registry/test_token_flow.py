"""The Docker token flow: challenges, /v2/token, and what a Bearer token allows."""

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone
from registry_helpers import ALICE, BOB, assert_error, basic_auth, push_blob, push_image

from packages_core.models import AccessToken
from packages_core.services.tokens import create_access_token, revoke_token
from registry import bearer as bearer_tokens
from registry.bearer import issue

pytestmark = pytest.mark.django_db

SERVICE = "testserver"


def get_token(client, *scopes, auth=None, **params):
    query = "&".join([f"service={SERVICE}", *(f"scope={scope}" for scope in scopes)])
    query += "".join(f"&{key}={value}" for key, value in params.items())
    return client.get(f"/v2/token?{query}", **(auth or {}))


def claims_of(raw: str) -> dict:
    return jwt.decode(raw, options={"verify_signature": False})


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def token_for(client, *scopes, auth=None) -> str:
    response = get_token(client, *scopes, auth=auth)
    assert response.status_code == 200, response.content
    return response.json()["token"]


def challenge_fields(response) -> dict[str, str]:
    header = response["WWW-Authenticate"]
    assert header.startswith("Bearer "), header
    fields = {}
    for part in header[len("Bearer ") :].split('",'):
        key, _, value = part.partition("=")
        fields[key.strip()] = value.strip('"')
    return fields


# Challenges


def test_ping_without_credentials_challenges_with_the_token_realm(client):
    response = client.get("/v2/")
    assert_error(response, 401, "UNAUTHORIZED")
    fields = challenge_fields(response)
    assert fields["realm"] == "http://testserver/v2/token"
    assert fields["service"] == SERVICE


def test_the_realm_is_the_external_url_at_the_site_root(client, settings):
    settings.REGISTRY = {"EXTERNAL_URL": "https://cr.example.com/forge/"}
    fields = challenge_fields(client.get("/v2/"))
    assert fields["realm"] == "https://cr.example.com/v2/token"
    assert fields["service"] == "cr.example.com"


def test_a_repository_challenge_names_the_scope_the_request_needs(client, alice):
    pull = challenge_fields(client.get("/v2/nobody/app/tags/list"))
    assert pull["scope"] == "repository:nobody/app:pull"
    push = challenge_fields(client.post("/v2/alice/app/blobs/uploads/"))
    assert push["scope"] == "repository:alice/app:pull,push"


# The token endpoint


def test_token_answer_has_token_access_token_expiry_and_issue_time(client, alice):
    before = int(time.time())
    response = get_token(client, "repository:alice/app:pull,push", auth=ALICE)
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 3600
    assert body["issued_at"].endswith("Z")
    assert response["Cache-Control"] == "no-store"
    claims = claims_of(body["token"])
    assert claims["sub"] == "alice"
    assert claims["aud"] == SERVICE
    assert before <= claims["iat"] <= claims["exp"] - 3600 + 1
    assert claims["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}
    ]


def test_token_lifetime_is_a_setting(client, alice, settings):
    settings.REGISTRY = {"TOKEN_LIFETIME": 120}
    body = get_token(client, auth=ALICE).json()
    assert body["expires_in"] == 120
    claims = claims_of(body["token"])
    assert claims["exp"] - claims["iat"] == 120


def test_the_grant_is_the_intersection_of_asked_and_allowed(client, alice, bob):
    raw = token_for(
        client,
        "repository:alice/app:pull,push",
        "repository:bob/tool:pull,push repository:nobody/x:pull",
        auth=BOB,
    )
    granted = {entry["name"]: entry["actions"] for entry in claims_of(raw)["access"]}
    assert granted == {"alice/app": ["pull"], "bob/tool": ["pull", "push"]}


def test_a_read_only_access_token_is_granted_only_pull(client, alice):
    _, secret = create_access_token(alice, "ro", "read:package")
    raw = token_for(client, "repository:alice/app:pull,push", auth=basic_auth("ci", secret))
    assert claims_of(raw)["access"] == [
        {"type": "repository", "name": "alice/app", "actions": ["pull"]}
    ]


def test_without_credentials_the_token_is_anonymous(client, alice):
    raw = token_for(client, "repository:alice/app:pull,push")
    claims = claims_of(raw)
    assert claims["sub"] == ""
    assert claims["access"] == [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]


def test_without_credentials_no_token_when_sign_in_is_required(client, alice, settings):
    settings.PACKAGES = {"REQUIRE_SIGNIN_VIEW": True}
    response = get_token(client, "repository:alice/app:pull")
    assert_error(response, 401, "UNAUTHORIZED")
    assert get_token(client, "repository:alice/app:pull", auth=ALICE).status_code == 200


def test_bad_credentials_at_the_token_endpoint_are_401_with_a_challenge(client, alice):
    response = get_token(client, auth=basic_auth("alice", "wrong"))
    assert_error(response, 401, "UNAUTHORIZED")
    assert challenge_fields(response)["realm"].endswith("/v2/token")


def test_post_to_the_token_endpoint_is_404(client):
    assert client.post("/v2/token").status_code == 404


def test_the_catalog_scope_is_granted_as_asked(client, alice):
    raw = token_for(client, "registry:catalog:*", auth=ALICE)
    assert claims_of(raw)["access"] == [{"type": "registry", "name": "catalog", "actions": ["*"]}]


# Using Bearer tokens


def test_a_bearer_token_allows_what_it_grants(client, alice):
    raw = token_for(client, "repository:alice/app:pull,push", auth=ALICE)
    pushed = push_image(client, "alice/app", "1.0", auth=bearer(raw))
    assert client.get(f"/v2/alice/app/manifests/{pushed.digest}", **bearer(raw)).status_code == 200


def test_a_pull_token_cannot_push_and_is_told_which_scope_to_get(client, alice):
    raw = token_for(client, "repository:alice/app:pull", auth=ALICE)
    response = client.post("/v2/alice/app/blobs/uploads/", **bearer(raw))
    assert_error(response, 403, "DENIED")
    fields = challenge_fields(response)
    assert fields["scope"] == "repository:alice/app:pull,push"
    assert fields["error"] == "insufficient_scope"


def test_a_bearer_token_of_a_read_only_access_token_names_that_tokens_scope(client, alice):
    _, secret = create_access_token(alice, "ro", "read:package")
    raw = token_for(client, "repository:alice/app:pull,push", auth=basic_auth("ci", secret))

    response = client.post("/v2/alice/app/blobs/uploads/", **bearer(raw))

    entry = assert_error(response, 403, "DENIED")
    assert entry["message"] == (
        "the access token 'ro' has scope read:package; pushing needs write:package"
    )


def test_an_anonymous_token_cannot_push_and_is_asked_to_sign_in(client, alice):
    raw = token_for(client, "repository:alice/app:pull,push")
    response = client.post("/v2/alice/app/blobs/uploads/", **bearer(raw))
    assert_error(response, 401, "UNAUTHORIZED")


def test_a_token_for_one_repository_does_not_open_another(client, alice):
    push_blob(client, "alice/other", b"x")
    raw = token_for(client, "repository:alice/app:pull,push", auth=ALICE)
    response = client.get("/v2/alice/other/tags/list", **bearer(raw))
    assert_error(response, 403, "DENIED")
    assert challenge_fields(response)["scope"] == "repository:alice/other:pull"


def test_the_catalog_needs_the_catalog_scope(client, alice):
    push_image(client, "alice/app", "1.0")
    without = token_for(client, "repository:alice/app:pull", auth=ALICE)
    assert_error(client.get("/v2/_catalog", **bearer(without)), 403, "DENIED")
    with_scope = token_for(client, "registry:catalog:*", auth=ALICE)
    response = client.get("/v2/_catalog", **bearer(with_scope))
    assert response.json() == {"repositories": ["alice/app"]}


def test_ping_accepts_an_anonymous_token(client):
    assert client.get("/v2/", **bearer(token_for(client))).status_code == 200


def test_a_mount_needs_pull_on_the_source_in_the_token(client, alice):
    digest = push_blob(client, "alice/src", b"shared layer")
    narrow = token_for(client, "repository:alice/dst:pull,push", auth=ALICE)
    response = client.post(
        f"/v2/alice/dst/blobs/uploads/?mount={digest}&from=alice/src", **bearer(narrow)
    )
    assert response.status_code == 202
    wide = token_for(
        client, "repository:alice/dst:pull,push", "repository:alice/src:pull", auth=ALICE
    )
    response = client.post(
        f"/v2/alice/dst/blobs/uploads/?mount={digest}&from=alice/src", **bearer(wide)
    )
    assert response.status_code == 201


# Tokens that must not work


def test_a_tampered_token_is_rejected(client, alice):
    raw = token_for(client, "repository:alice/app:pull", auth=ALICE)
    header, payload, signature = raw.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["access"][0]["actions"] = ["pull", "push"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = client.post(
        "/v2/alice/app/blobs/uploads/", **bearer(f"{header}.{forged}.{signature}")
    )
    assert_error(response, 401, "UNAUTHORIZED")
    assert challenge_fields(response)["error"] == "invalid_token"


def test_an_expired_token_is_rejected(client, alice, settings):
    # A lifetime in the past, beyond the 30 s leeway for clock skew.
    settings.REGISTRY = {"TOKEN_LIFETIME": -31}
    raw = token_for(client, "repository:alice/app:pull", auth=ALICE)
    response = client.get("/v2/", **bearer(raw))
    assert_error(response, 401, "UNAUTHORIZED")
    assert challenge_fields(response)["error"] == "invalid_token"


def test_a_token_signed_by_another_site_is_rejected(client, alice):
    claims = claims_of(token_for(client, "repository:alice/app:pull,push", auth=ALICE))
    other = jwt.encode(
        claims, "another site's secret key, long enough for HS256", algorithm="HS256"
    )
    assert_error(client.get("/v2/", **bearer(other)), 401, "UNAUTHORIZED")


def test_a_token_for_another_service_is_rejected(client, alice):
    issued = issue(alice, None, [], service="other.example.com")
    assert_error(client.get("/v2/", **bearer(issued.token)), 401, "UNAUTHORIZED")


def test_a_token_of_a_deactivated_user_stops_working(client, alice):
    raw = token_for(client, "repository:alice/app:pull", auth=ALICE)
    alice.is_active = False
    alice.save()
    assert_error(client.get("/v2/", **bearer(raw)), 401, "UNAUTHORIZED")


def test_bearer_tokens_from_a_revoked_access_token_stop_working(client, alice):
    access_token, secret = create_access_token(alice, "ci", "write:package")
    raw = token_for(client, "repository:alice/app:pull,push", auth=basic_auth("ci", secret))
    assert client.get("/v2/", **bearer(raw)).status_code == 200
    revoke_token(access_token)
    assert_error(client.get("/v2/", **bearer(raw)), 401, "UNAUTHORIZED")


def test_a_token_revoked_by_another_process_stops_working_within_the_identity_cache_time(
    client, alice, settings
):
    settings.PACKAGES = {"IDENTITY_CACHE_SECONDS": 0.3}
    access_token, secret = create_access_token(alice, "ci", "write:package")
    raw = token_for(client, "repository:alice/app:pull,push", auth=basic_auth("ci", secret))
    assert client.get("/v2/", **bearer(raw)).status_code == 200
    # A write that sends no signal here, as one made by another process.
    AccessToken.objects.filter(pk=access_token.pk).update(revoked_at=timezone.now())
    assert client.get("/v2/", **bearer(raw)).status_code == 200
    time.sleep(0.35)
    assert_error(client.get("/v2/", **bearer(raw)), 401, "UNAUTHORIZED")


def test_an_expired_access_token_gets_no_bearer_token(client, alice):
    access_token, secret = create_access_token(alice, "old", "read:package")
    AccessToken.objects.filter(pk=access_token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert_error(get_token(client, auth=basic_auth("ci", secret)), 401, "UNAUTHORIZED")


def test_garbage_is_not_a_token(client):
    assert_error(client.get("/v2/", **bearer("not.a.jwt")), 401, "UNAUTHORIZED")


# Tokens from before PyJWT was used directly (through simplejwt's TokenBackend)


def simplejwt_backend(service: str = SERVICE):
    """The backend registry/tokens.py signed and read tokens with, key and leeway included."""
    from django.utils.crypto import salted_hmac
    from rest_framework_simplejwt.backends import TokenBackend

    key = salted_hmac("forge.registry.tokens", "signing key", algorithm="sha256").hexdigest()
    return TokenBackend(
        "HS256", signing_key=key, audience=service, issuer="forge-registry", leeway=30
    )


def test_a_token_signed_as_simplejwt_signed_them_still_works(client, alice):
    claims = claims_of(token_for(client, "repository:alice/app:pull,push", auth=ALICE))
    claims["jti"] = "signed-by-the-old-backend"
    raw = simplejwt_backend().encode(claims)
    assert client.post("/v2/alice/app/blobs/uploads/", **bearer(raw)).status_code == 202


def test_a_token_issued_now_reads_as_simplejwt_read_them(client, alice):
    raw = token_for(client, "repository:alice/app:pull", auth=ALICE)
    claims = simplejwt_backend().decode(raw)
    assert claims["sub"] == "alice"
    assert claims["access"] == [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]


def test_a_token_a_little_past_its_expiry_is_within_the_leeway(alice):
    issued = issue(alice, None, [], service=SERVICE)
    claims = bearer_tokens.verify(issued.token, service=SERVICE)
    assert claims.user == alice
    late = claims_of(issued.token) | {"exp": int(time.time()) - 20}
    assert bearer_tokens.verify(simplejwt_backend().encode(late), service=SERVICE).user == alice
    expired = late | {"exp": int(time.time()) - 40}
    with pytest.raises(bearer_tokens.InvalidToken, match="Token is expired"):
        bearer_tokens.verify(simplejwt_backend().encode(expired), service=SERVICE)

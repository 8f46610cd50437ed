"""The gate before every /v2 route: ping, credentials, names, routes, errors, permissions."""

import base64
import json
from datetime import timedelta

import pytest
from django.urls import resolve
from django.utils import timezone

from packages_core.models import Membership
from packages_core.models.owners import Visibility
from packages_core.services import owners, tallies
from packages_core.services.tokens import create_access_token, revoke_token
from tests.registry_helpers import (
    ALICE,
    ANONYMOUS,
    API_VERSION,
    API_VERSION_HEADER,
    BOB,
    ROOT,
    SPEC_ERROR_CODES,
    assert_error,
    basic_auth,
    content,
    digest_of,
    error_entries,
    image_config,
    image_manifest,
    index_manifest,
    push_blob,
    push_image,
    put_manifest,
    send,
)

pytestmark = pytest.mark.django_db

EMPTY_BASIC = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b":").decode()}


def assert_unauthorized(response) -> None:
    """401 UNAUTHORIZED with a challenge that tells the client how to sign in."""
    assert_error(response, 401, "UNAUTHORIZED")
    assert response["WWW-Authenticate"]


def token_auth(user, scopes, *, username: str | None = None, name: str = "ci") -> dict:
    _, secret = create_access_token(user, name, scopes)
    return basic_auth(username if username is not None else user.get_username(), secret)


# Ping and the token endpoint


def test_ping_without_credentials_is_401_with_challenge(client, alice):
    response = send(client, "GET", "/v2/")

    assert_unauthorized(response)
    assert "realm=" in response["WWW-Authenticate"]


def test_ping_with_password_is_200(client, alice):
    response = send(client, "GET", "/v2/", auth=ALICE)

    assert response.status_code == 200
    assert response[API_VERSION_HEADER] == API_VERSION
    assert json.loads(response.content) == {}


def test_ping_with_access_token_is_200(client, alice):
    response = send(client, "GET", "/v2/", auth=token_auth(alice, ["read:package"]))

    assert response.status_code == 200


def test_ping_with_bad_password_is_401_unauthorized(client, alice):
    assert_unauthorized(send(client, "GET", "/v2/", auth=basic_auth("alice", "wrong")))


def test_ping_with_unknown_user_is_401_unauthorized(client, alice):
    assert_unauthorized(send(client, "GET", "/v2/", auth=basic_auth("nobody", "alice-pw")))


def test_ping_with_empty_basic_credentials_is_anonymous(client, alice):
    assert_unauthorized(send(client, "GET", "/v2/", auth=EMPTY_BASIC))


@pytest.mark.parametrize(
    "header", ["Bearer abc", "Basic !!!notbase64", "Basic " + base64.b64encode(b"nocolon").decode()]
)
def test_malformed_authorization_header_is_401_unauthorized(client, alice, header):
    assert_unauthorized(send(client, "GET", "/v2/", HTTP_AUTHORIZATION=header))


@pytest.mark.parametrize("path", ["/v2", "/v2/", "/v2//"])
def test_ping_route_tolerates_slashes(client, alice, path):
    assert send(client, "GET", path, auth=ALICE).status_code == 200


def test_post_token_is_404(client, alice):
    response = send(client, "POST", "/v2/token", auth=ALICE)

    assert response.status_code == 404
    assert response[API_VERSION_HEADER] == API_VERSION


def test_changed_password_stops_working_at_once(client, alice):
    assert send(client, "GET", "/v2/", auth=ALICE).status_code == 200
    alice.set_password("new-pw")
    alice.save()

    assert_unauthorized(send(client, "GET", "/v2/", auth=ALICE))
    assert send(client, "GET", "/v2/", auth=basic_auth("alice", "new-pw")).status_code == 200


def test_inactive_user_cannot_sign_in(client, alice):
    alice.is_active = False
    alice.save()

    assert_unauthorized(send(client, "GET", "/v2/", auth=ALICE))


# Errors


def test_head_error_response_has_no_body(rf, alice):
    """Seen by the view itself: the test client would strip a HEAD body anyway."""
    request = rf.head("/v2/alice/img/manifests/v1", **ALICE)
    match = resolve(request.path)

    response = match.func(request, **match.kwargs)

    assert response.status_code == 404
    assert response[API_VERSION_HEADER] == API_VERSION
    assert response.content == b""
    assert response["Content-Length"] == "0"


def test_anonymous_head_is_401_without_body_but_with_challenge(rf, alice):
    alice.package_owner.visibility = Visibility.PRIVATE
    alice.package_owner.save()
    request = rf.head("/v2/alice/img/blobs/" + digest_of(b"x"))
    match = resolve(request.path)

    response = match.func(request, **match.kwargs)

    assert response.status_code == 401
    assert response.content == b""
    assert response["WWW-Authenticate"]
    assert response[API_VERSION_HEADER] == API_VERSION


def _bad_layer_size_manifest(client) -> bytes:
    config = image_config()
    push_blob(client, "alice/img", config)
    push_blob(client, "alice/img", b"layer")
    return image_manifest(config, [b"layer"], layer_sizes=[1])


def _missing_child_index(client) -> bytes:
    child = image_manifest(image_config(), [b"never"])
    return index_manifest([(child, {"os": "linux", "architecture": "amd64"})])


UPLOAD = "/v2/alice/img/blobs/uploads/{upload}"
MANIFEST_V1 = "/v2/alice/img/manifests/v1"
BAD_PASSWORD = basic_auth("alice", "x")

# One request per error code the registry sends:
# (method, path, auth, body maker, extra environ, status, code).
ERROR_CASES = [
    ("GET", "/v2/alice/img/blobs/" + digest_of(b"none"), ALICE, None, {}, 404, "BLOB_UNKNOWN"),
    ("PATCH", UPLOAD, ALICE, lambda c: b"12345", {"HTTP_CONTENT_RANGE": "5-9"}, 416,
     "BLOB_UPLOAD_INVALID"),
    ("GET", "/v2/alice/img/blobs/uploads/" + "0" * 32, ALICE, None, {}, 404,
     "BLOB_UPLOAD_UNKNOWN"),
    ("PUT", UPLOAD, ALICE, None, {}, 400, "DIGEST_INVALID"),
    ("PUT", MANIFEST_V1, ALICE, _missing_child_index, {}, 404, "MANIFEST_BLOB_UNKNOWN"),
    ("PUT", MANIFEST_V1, ALICE, lambda c: b"[]", {}, 400, "MANIFEST_INVALID"),
    ("GET", "/v2/alice/img/manifests/v9", ALICE, None, {}, 404, "MANIFEST_UNKNOWN"),
    ("GET", "/v2/alice/Img/tags/list", ALICE, None, {}, 400, "NAME_INVALID"),
    ("GET", "/v2/nobody/img/tags/list", ALICE, None, {}, 404, "NAME_UNKNOWN"),
    ("PUT", MANIFEST_V1, ALICE, _bad_layer_size_manifest, {}, 400, "SIZE_INVALID"),
    ("GET", "/v2/alice/img/tags/list", BAD_PASSWORD, None, {}, 401, "UNAUTHORIZED"),
    ("POST", "/v2/alice/img/blobs/uploads/", BOB, None, {}, 403, "DENIED"),
    ("PUT", "/v2/alice/img/tags/list", ALICE, None, {}, 405, "UNSUPPORTED"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "auth", "make_body", "extra", "status", "code"),
    ERROR_CASES,
    ids=[case[-1] for case in ERROR_CASES],
)
def test_error_is_an_oci_error_body_with_the_spec_code(
    client, alice, bob, method, path, auth, make_body, extra, status, code
):
    push_image(client, "alice/img", "v1")
    upload = send(client, "POST", "/v2/alice/img/blobs/uploads/", auth=ALICE)["Docker-Upload-UUID"]
    body = make_body(client) if make_body else b""

    response = send(
        client,
        method,
        path.format(upload=upload),
        body,
        auth=auth,
        content_type="application/json",
        **extra,
    )

    entry = assert_error(response, status, code)
    assert code in SPEC_ERROR_CODES
    assert entry["message"]
    assert all(e["code"] in SPEC_ERROR_CODES for e in error_entries(response))


# Routes and names


@pytest.mark.parametrize("path", ["/v2/alice/img/nothing", "/v2/alice/img/manifests/"])
def test_unknown_v2_path_is_404_with_api_version_header(client, alice, path):
    response = send(client, "GET", path, auth=ALICE)

    assert response.status_code == 404
    assert response[API_VERSION_HEADER] == API_VERSION


@pytest.mark.parametrize(
    "path",
    [
        "/v2/alice/img/tags/list",
        "/v2/alice/img/tags/list/",
        "/v2//alice//img//tags//list",
        "/v2/alice/img/tags/list//",
    ],
)
def test_routes_tolerate_trailing_and_doubled_slashes(client, alice, path):
    push_image(client, "alice/img", "v1")

    response = send(client, "GET", path, auth=ALICE)

    assert response.status_code == 200
    assert json.loads(response.content)["tags"] == ["v1"]


def test_manifest_route_tolerates_a_trailing_slash(client, alice):
    image = push_image(client, "alice/img", "v1")

    response = send(client, "GET", "/v2/alice/img/manifests/v1/", auth=ALICE)

    assert response.status_code == 200
    assert content(response) == image.manifest


def test_upload_route_tolerates_doubled_slashes(client, alice):
    response = send(client, "POST", "/v2//alice//img//blobs//uploads//", auth=ALICE)

    assert response.status_code == 202
    assert response["Location"].startswith("/v2/alice/img/blobs/uploads/")


def test_image_names_may_have_slashes(client, alice):
    image = push_image(client, "alice/a/b/c", "v1")

    response = send(client, "GET", "/v2/alice/a/b/c/manifests/v1", auth=ALICE)

    assert response.status_code == 200
    assert content(response) == image.manifest
    blob = send(client, "GET", f"/v2/alice/a/b/c/blobs/{image.layer_digests[0]}", auth=ALICE)
    assert blob.status_code == 200
    assert send(client, "GET", "/v2/alice/a/b/manifests/v1", auth=ALICE).status_code == 404


def test_image_named_like_an_endpoint_suffix_still_routes(client, alice):
    image = push_image(client, "alice/blobs/manifests", "v1")

    response = send(client, "GET", "/v2/alice/blobs/manifests/manifests/v1", auth=ALICE)

    assert response.status_code == 200
    assert content(response) == image.manifest


def test_owner_name_is_case_insensitive(client, alice):
    image = push_image(client, "alice/img", "v1")

    response = send(client, "GET", "/v2/ALICE/img/manifests/v1", auth=ALICE)

    assert content(response) == image.manifest


@pytest.mark.parametrize("image", ["Img", "a..b", "-a", "a-", "a__b/c", "a/_b", "a" * 256])
def test_invalid_image_name_is_400_name_invalid(client, alice, image):
    response = send(client, "POST", f"/v2/alice/{image}/blobs/uploads/", auth=ALICE)

    assert_error(response, 400, "NAME_INVALID")


def test_unknown_owner_is_404_name_unknown_when_signed_in(client, alice):
    assert_error(send(client, "GET", "/v2/nobody/img/tags/list", auth=ALICE), 404, "NAME_UNKNOWN")


def test_push_to_unknown_owner_is_404_name_unknown_when_signed_in(client, alice):
    response = send(client, "POST", "/v2/nobody/img/blobs/uploads/", auth=ALICE)

    assert_error(response, 404, "NAME_UNKNOWN")


def test_unknown_owner_is_401_when_anonymous(client, alice):
    assert_unauthorized(send(client, "GET", "/v2/nobody/img/tags/list"))


# Permissions: user owners


@pytest.fixture
def image_of(client, site_admin):
    """Push a small image to an owner (as the site admin) and return its repository."""

    def push(owner_name: str) -> str:
        repo = f"{owner_name}/img"
        push_image(client, repo, "v1", auth=ROOT)
        return repo

    return push


def pull(client, repo: str, auth):
    return send(client, "GET", f"/v2/{repo}/manifests/v1", auth=auth)


def push(client, repo: str, auth):
    return send(client, "POST", f"/v2/{repo}/blobs/uploads/", auth=auth)


def set_visibility(owner, visibility) -> None:
    owner.visibility = visibility
    owner.save(update_fields=["visibility"])


def assert_outcome(response, expected: str) -> None:
    if expected == "ok":
        assert response.status_code in (200, 202), (response.status_code, response.content)
        assert response[API_VERSION_HEADER] == API_VERSION
    elif expected == "401":
        assert_unauthorized(response)
    elif expected == "404":  # an owner the caller may not see looks like none at all
        assert_error(response, 404, "NAME_UNKNOWN")
    else:
        assert_error(response, 403, "DENIED")


USERS = {"anonymous": ANONYMOUS, "alice": ALICE, "bob": BOB, "root": ROOT}


@pytest.mark.parametrize(
    ("visibility", "actor", "expected"),
    [
        (Visibility.PUBLIC, "anonymous", "ok"),
        (Visibility.PUBLIC, "bob", "ok"),
        (Visibility.PUBLIC, "alice", "ok"),
        (Visibility.PUBLIC, "root", "ok"),
        (Visibility.LIMITED, "anonymous", "401"),
        (Visibility.LIMITED, "bob", "ok"),
        (Visibility.LIMITED, "alice", "ok"),
        (Visibility.LIMITED, "root", "ok"),
        (Visibility.PRIVATE, "anonymous", "401"),
        (Visibility.PRIVATE, "bob", "404"),
        (Visibility.PRIVATE, "alice", "ok"),
        (Visibility.PRIVATE, "root", "ok"),
    ],
)
def test_pull_from_user_owner(client, alice, bob, image_of, visibility, actor, expected):
    repo = image_of("alice")
    set_visibility(alice.package_owner, visibility)

    assert_outcome(pull(client, repo, USERS[actor]), expected)


@pytest.mark.parametrize(
    ("visibility", "actor", "expected"),
    [
        (visibility, actor, expected)
        for visibility in (Visibility.PUBLIC, Visibility.PRIVATE)
        for actor, expected in [
            ("anonymous", "401"),
            ("bob", "403" if visibility == Visibility.PUBLIC else "404"),
            ("alice", "ok"),
            ("root", "ok"),
        ]
    ],
)
def test_push_to_user_owner(client, alice, bob, site_admin, visibility, actor, expected):
    set_visibility(alice.package_owner, visibility)

    assert_outcome(push(client, "alice/img", USERS[actor]), expected)


def test_anonymous_push_to_public_owner_is_401_with_challenge(client, alice):
    assert_unauthorized(push(client, "alice/img", ANONYMOUS))


def test_anonymous_push_401_names_the_access_it_needed(client, alice):
    # docker retries a 401 upload for ~50 s unless the error carries a detail.
    (entry,) = error_entries(push(client, "Alice/img", ANONYMOUS))

    assert entry["detail"] == [
        {"Type": "repository", "Name": "alice/img", "Action": "pull"},
        {"Type": "repository", "Name": "alice/img", "Action": "push"},
    ]


def test_signed_in_user_cannot_read_private_owner_blobs(client, alice, bob, image_of):
    repo = image_of("alice")
    set_visibility(alice.package_owner, Visibility.PRIVATE)
    digest = push_image(client, repo, "v2", auth=ALICE).layer_digests[0]

    assert_error(send(client, "GET", f"/v2/{repo}/blobs/{digest}", auth=BOB), 404, "NAME_UNKNOWN")


def test_signed_in_user_cannot_list_tags_of_private_owner(client, alice, bob, image_of):
    repo = image_of("alice")
    set_visibility(alice.package_owner, Visibility.PRIVATE)

    assert_error(send(client, "GET", f"/v2/{repo}/tags/list", auth=BOB), 404, "NAME_UNKNOWN")


def test_stranger_cannot_delete_manifest(client, alice, bob, image_of):
    repo = image_of("alice")

    response = send(client, "DELETE", f"/v2/{repo}/manifests/v1", auth=BOB)

    assert_error(response, 403, "DENIED")
    assert pull(client, repo, ALICE).status_code == 200


def test_stranger_cannot_put_manifest(client, alice, bob, image_of):
    repo = image_of("alice")
    body = image_manifest(image_config(), [b"layer one"])

    assert_error(put_manifest(client, repo, "v2", body, auth=BOB), 403, "DENIED")


def test_require_signin_view_turns_anonymous_public_pull_away(
    client, alice, bob, image_of, settings
):
    repo = image_of("alice")
    settings.PACKAGES = {**settings.PACKAGES, "REQUIRE_SIGNIN_VIEW": True}

    assert_unauthorized(pull(client, repo, ANONYMOUS))
    assert pull(client, repo, BOB).status_code == 200


# Permissions: organisations


@pytest.fixture
def members(org, reader_of):
    """rita reads acme, will writes to it; alice is its admin."""
    rita = owners.create_user("rita", password="rita-pw")
    will = owners.create_user("will", password="will-pw")
    reader_of(rita, Membership.Role.READ)
    reader_of(will, Membership.Role.WRITE)
    return {"rita": rita, "will": will}


ORG_ACTORS = {
    "anonymous": ANONYMOUS,
    "stranger": BOB,
    "reader": basic_auth("rita", "rita-pw"),
    "writer": basic_auth("will", "will-pw"),
    "admin": ALICE,
    "site_admin": ROOT,
}


@pytest.mark.parametrize(
    ("visibility", "actor", "expected"),
    [
        (Visibility.PUBLIC, "anonymous", "ok"),
        (Visibility.PUBLIC, "stranger", "ok"),
        (Visibility.LIMITED, "anonymous", "401"),
        (Visibility.LIMITED, "stranger", "ok"),
        (Visibility.PRIVATE, "anonymous", "401"),
        (Visibility.PRIVATE, "stranger", "404"),
        (Visibility.PRIVATE, "reader", "ok"),
        (Visibility.PRIVATE, "writer", "ok"),
        (Visibility.PRIVATE, "admin", "ok"),
        (Visibility.PRIVATE, "site_admin", "ok"),
    ],
)
def test_pull_from_org(client, bob, org, members, image_of, visibility, actor, expected):
    repo = image_of("acme")
    set_visibility(org, visibility)

    assert_outcome(pull(client, repo, ORG_ACTORS[actor]), expected)


@pytest.mark.parametrize(
    ("actor", "expected"),
    [
        ("anonymous", "401"),
        ("stranger", "403"),
        ("reader", "403"),
        ("writer", "ok"),
        ("admin", "ok"),
        ("site_admin", "ok"),
    ],
)
def test_push_to_org(client, bob, org, members, site_admin, actor, expected):
    assert_outcome(push(client, "acme/img", ORG_ACTORS[actor]), expected)


def test_org_writer_can_push_a_whole_image(client, org, members):
    image = push_image(client, "acme/app", "v1", auth=ORG_ACTORS["writer"])

    response = pull(client, "acme/app", ORG_ACTORS["reader"])

    assert content(response) == image.manifest


def test_org_reader_cannot_delete_manifest(client, org, members, image_of):
    repo = image_of("acme")

    response = send(client, "DELETE", f"/v2/{repo}/manifests/v1", auth=ORG_ACTORS["reader"])

    assert_error(response, 403, "DENIED")


# Access tokens


def test_read_only_token_can_pull(client, alice, image_of):
    repo = image_of("alice")

    response = pull(client, repo, token_auth(alice, ["read:package"]))

    assert response.status_code == 200


def test_read_only_token_cannot_push(client, alice):
    response = push(client, "alice/img", token_auth(alice, ["read:package"]))

    assert_error(response, 403, "DENIED")


def test_read_only_tokens_push_refusal_names_its_scope_and_the_one_needed(client, alice):
    response = push(client, "alice/img", token_auth(alice, ["read:package"], name="ci"))

    entry = assert_error(response, 403, "DENIED")
    assert entry["message"] == (
        "the access token 'ci' has scope read:package; pushing needs write:package"
    )


def test_a_token_of_a_user_who_may_not_push_gets_the_usual_refusal(client, alice, bob):
    response = push(client, "alice/img", token_auth(bob, ["read:package"]))

    entry = assert_error(response, 403, "DENIED")
    assert entry["message"] == "bob may not push to alice/img"


def test_read_only_token_cannot_delete(client, alice, image_of):
    repo = image_of("alice")

    response = send(
        client, "DELETE", f"/v2/{repo}/manifests/v1", auth=token_auth(alice, ["read:package"])
    )

    entry = assert_error(response, 403, "DENIED")
    assert entry["message"].endswith("deleting needs write:package")


def test_write_token_can_push_and_pull(client, alice):
    auth = token_auth(alice, ["write:package"])

    image = push_image(client, "alice/img", "v1", auth=auth)

    assert content(pull(client, "alice/img", auth)) == image.manifest


def test_token_works_with_any_user_name(client, alice):
    auth = token_auth(alice, ["write:package"], username="oauth2accesstoken")

    assert push(client, "alice/img", auth).status_code == 202


def test_token_acts_as_its_user_whatever_the_user_name(client, alice, bob):
    auth = token_auth(bob, ["write:package"], username="alice")

    assert_error(push(client, "alice/img", auth), 403, "DENIED")


def test_token_cannot_read_private_owner_its_user_cannot(client, alice, bob, image_of):
    repo = image_of("alice")
    set_visibility(alice.package_owner, Visibility.PRIVATE)

    assert_error(pull(client, repo, token_auth(bob, ["read:package"])), 404, "NAME_UNKNOWN")


def test_revoked_token_is_401_unauthorized(client, alice):
    token, secret = create_access_token(alice, "ci", ["read:package"])
    revoke_token(token)

    assert_unauthorized(send(client, "GET", "/v2/", auth=basic_auth("alice", secret)))


def test_expired_token_is_401_unauthorized(client, alice):
    token, secret = create_access_token(alice, "ci", ["read:package"])
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save()

    assert_unauthorized(send(client, "GET", "/v2/", auth=basic_auth("alice", secret)))


def test_unknown_token_is_401_unauthorized(client, alice):
    assert_unauthorized(send(client, "GET", "/v2/", auth=basic_auth("alice", "fgt_made-up")))


def test_token_records_its_last_use(client, alice):
    token, secret = create_access_token(alice, "ci", ["read:package"])

    send(client, "GET", "/v2/", auth=basic_auth("alice", secret))
    token.refresh_from_db()
    assert token.last_used_at is None  # noted, written with the next batch

    assert tallies.flush() == 1
    token.refresh_from_db()
    assert token.last_used_at is not None


# Empty Basic credentials


def test_empty_basic_credentials_may_pull_public_images(client, alice, image_of):
    repo = image_of("alice")

    assert pull(client, repo, EMPTY_BASIC).status_code == 200


def test_empty_basic_credentials_get_a_challenge_for_limited_images(client, alice, image_of):
    repo = image_of("alice")
    set_visibility(alice.package_owner, Visibility.LIMITED)

    assert_unauthorized(pull(client, repo, EMPTY_BASIC))


def test_empty_basic_credentials_get_a_challenge_to_push(client, alice):
    assert_unauthorized(push(client, "alice/img", EMPTY_BASIC))


# Site admin


def test_site_admin_can_push_to_private_org_without_membership(client, org, site_admin):
    set_visibility(org, Visibility.PRIVATE)

    image = push_image(client, "acme/app", "v1", auth=ROOT)

    assert content(pull(client, "acme/app", ROOT)) == image.manifest


def test_site_admin_can_delete_in_any_owner(client, alice, image_of):
    repo = image_of("alice")

    response = send(client, "DELETE", f"/v2/{repo}/manifests/v1", auth=ROOT)

    assert response.status_code == 202


def test_mount_needs_read_access_to_the_source_owner(client, alice, bob):
    digest = push_blob(client, "alice/src", b"secret layer")
    set_visibility(alice.package_owner, Visibility.PRIVATE)

    response = send(
        client, "POST", f"/v2/bob/dst/blobs/uploads/?mount={digest}&from=alice/src", auth=BOB
    )

    assert response.status_code == 202
    assert send(client, "HEAD", f"/v2/bob/dst/blobs/{digest}", auth=BOB).status_code == 404

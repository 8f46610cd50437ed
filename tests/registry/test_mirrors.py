"""Mirrors through /v2 against a scripted upstream: fetch, cache, TTL, auth, lies and refusals.

The end-to-end tests (tests/e2e/test_mirror.py) pull through real clients from CNCF
Distribution; these drive the same code with the test client, where each upstream
request can be counted and each answer scripted. Transactional: a blob's fetch runs in
a thread of its own, with a connection of its own.
"""

from __future__ import annotations

import io
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from packages_core import sealed, shared_cache
from packages_core.models import Owner, PackageBlob, WebhookDelivery
from packages_core.services import owners, quotas
from packages_core.services.webhooks import create_webhook
from registry.management.commands import createmirror
from registry.mirrors import manifests as manifests_module
from registry.mirrors import upstream as upstream_module
from registry.mirrors.service import (
    MirrorInvalid,
    check_upstream_url,
    create_mirror,
    parse_ttl,
    upstream_of,
)
from registry.mirrors.upstream import Upstream as UpstreamClient
from registry.mirrors.upstream import UpstreamUnavailable
from registry.models import Mirror, MirroredBlob, MirrorFetch
from tests.registry_helpers import (
    ANONYMOUS,
    BOB,
    OCI_INDEX,
    OCI_MANIFEST,
    ROOT,
    assert_error,
    basic_auth,
    content,
    push_blob,
)
from tests.upstream_helpers import Upstream, sha256

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def loopback_allowed(settings):
    settings.REGISTRY = {**settings.REGISTRY, "MIRROR_ALLOWED_HOSTS": ["127.0.0.1", "localhost"]}
    upstream_module.forget_tokens()


@pytest.fixture
def users(db):
    return {
        "root": owners.create_user("root", password="root-pw", is_admin=True),
        "bob": owners.create_user("bob", password="bob-pw"),
    }


def mirror_to(server, name="hub", **fields) -> Mirror:
    return create_mirror(name, server.url, **fields)


def get(client, path, auth=ANONYMOUS, method="get", **headers):
    return getattr(client, method)(f"/v2/{path}", **auth, **headers)


ACCEPT = {"HTTP_ACCEPT": f"{OCI_MANIFEST}, {OCI_INDEX}"}


def test_a_pull_fetches_once_and_then_serves_from_the_cache(client, upstream):
    layer = os.urandom(300_000)
    body, digest = upstream.add_image("team/app", "v1", [layer, b"small layer"])
    mirror_to(upstream)

    response = get(client, "hub/team/app/manifests/v1", **ACCEPT)
    assert response.status_code == 200
    assert content(response) == body
    assert response["Docker-Content-Digest"] == digest
    blob = get(client, f"hub/team/app/blobs/{sha256(layer)}")
    assert blob.status_code == 200
    assert int(blob["Content-Length"]) == len(layer)
    assert content(blob) == layer
    assert upstream.count("GET", f"/blobs/{sha256(layer)}") == 1

    fetched = len(upstream.requests)
    assert content(get(client, "hub/team/app/manifests/v1", **ACCEPT)) == body
    assert content(get(client, f"hub/team/app/blobs/{sha256(layer)}")) == layer
    assert content(get(client, f"hub/team/app/manifests/{digest}", **ACCEPT)) == body
    assert len(upstream.requests) == fetched, "a warm pull asked the upstream"
    # The blob went to the version, and nothing waits to be fetched.
    assert not MirroredBlob.objects.filter(digest=sha256(layer)).exists()
    assert not MirrorFetch.objects.exists()


def test_a_blob_not_yet_fetched_answers_head_from_the_manifest(client, upstream):
    layer = os.urandom(1000)
    upstream.add_image("team/app", "v1", [layer])
    mirror_to(upstream)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)
    before = upstream.count("GET", "/blobs/") + upstream.count("HEAD", "/blobs/")

    response = get(client, f"hub/team/app/blobs/{sha256(layer)}", method="head")

    assert response.status_code == 200
    assert response["Content-Length"] == str(len(layer))
    assert upstream.count("GET", "/blobs/") + upstream.count("HEAD", "/blobs/") == before


def test_a_blob_no_mirrored_manifest_names_is_unknown(client, upstream):
    stray = b"never listed"
    upstream.repository("team/app").blobs[sha256(stray)] = stray
    upstream.add_image("team/app", "v1", [b"layer"])
    mirror_to(upstream)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)

    response = get(client, f"hub/team/app/blobs/{sha256(stray)}")

    assert_error(response, 404, "BLOB_UNKNOWN")
    assert upstream.count("GET", sha256(stray)) == 0


def test_a_blob_whose_bytes_lie_is_refused_and_not_kept(client, upstream):
    layer = os.urandom(200_000)
    upstream.add_image("team/app", "v1", [layer])
    upstream.lies.add(sha256(layer))
    mirror_to(upstream)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)

    for _ in range(2):
        response = get(client, f"hub/team/app/blobs/{sha256(layer)}")
        # Part of the body is out when the lie shows: the body ends in an error.
        with pytest.raises(Exception, match="refused"):
            b"".join(response.streaming_content)

    assert not PackageBlob.objects.filter(sha256=sha256(layer).removeprefix("sha256:")).exists()
    assert MirroredBlob.objects.filter(digest=sha256(layer)).exists()
    assert not MirrorFetch.objects.exists()


def test_a_manifest_whose_bytes_lie_is_refused(client, upstream):
    body, digest = upstream.add_image("team/app", "v1", [b"layer"])
    # The tag now serves other bytes than the digest the upstream names for it.
    media_type, _ = upstream.repositories["team/app"].manifests["v1"]
    upstream.repositories["team/app"].manifests[digest] = (media_type, body + b" ")
    mirror_to(upstream)

    response = get(client, f"hub/team/app/manifests/{digest}", **ACCEPT)

    assert_error(response, 404, "MANIFEST_UNKNOWN")
    assert "do not have the digest" in response.json()["errors"][0]["message"]


def test_a_tag_is_checked_upstream_only_after_the_ttl(client, upstream):
    _, first = upstream.add_image("team/app", "v1", [b"one"])
    mirror_to(upstream, name="slow", ttl_seconds=3600)
    mirror_to(upstream, name="fast", ttl_seconds=0)
    for name in ("slow", "fast"):
        assert (
            get(client, f"{name}/team/app/manifests/v1", **ACCEPT)["Docker-Content-Digest"] == first
        )

    _, second = upstream.add_image("team/app", "v1", [b"two"])

    assert get(client, "slow/team/app/manifests/v1", **ACCEPT)["Docker-Content-Digest"] == first
    assert get(client, "fast/team/app/manifests/v1", **ACCEPT)["Docker-Content-Digest"] == second
    # The old manifest stays pullable by digest, as after any tag move.
    assert get(client, f"fast/team/app/manifests/{first}", **ACCEPT).status_code == 200


def test_an_unchanged_tag_costs_a_head_and_no_get(client, upstream):
    upstream.add_image("team/app", "v1", [b"one"])
    mirror_to(upstream, ttl_seconds=0)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)
    gets = upstream.count("GET", "/manifests/")

    assert get(client, "hub/team/app/manifests/v1", **ACCEPT).status_code == 200

    assert upstream.count("GET", "/manifests/") == gets
    assert upstream.count("HEAD", "/manifests/v1") == 2


def test_the_cache_serves_while_the_upstream_is_down(client, upstream):
    layer = os.urandom(5000)
    _, digest = upstream.add_image("team/app", "v1", [layer])
    mirror_to(upstream, ttl_seconds=0)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)
    assert content(get(client, f"hub/team/app/blobs/{sha256(layer)}")) == layer

    for status in (503, None):
        if status is None:
            upstream.close()  # refused connections
        else:
            upstream.status = status
        assert get(client, "hub/team/app/manifests/v1", **ACCEPT).status_code == 200
        assert get(client, f"hub/team/app/manifests/{digest}", **ACCEPT).status_code == 200
        assert content(get(client, f"hub/team/app/blobs/{sha256(layer)}")) == layer
        missing = get(client, "hub/team/app/manifests/v2", **ACCEPT)
        message = assert_error(missing, 404, "MANIFEST_UNKNOWN")["message"]
        assert upstream.url in message
        assert "upstream failed" in message


def test_an_index_fetches_each_platform_when_pulled(client, upstream):
    amd = upstream.add_image("team/app", None, [b"amd64 layer"], arch="amd64")
    arm = upstream.add_image("team/app", None, [b"arm64 layer"], arch="arm64")
    index, _ = upstream.add_index("team/app", "multi", [(*amd, "amd64"), (*arm, "arm64")])
    mirror_to(upstream)

    assert content(get(client, "hub/team/app/manifests/multi", **ACCEPT)) == index
    assert upstream.count("GET", f"/manifests/{arm[1]}") == 0

    child = get(client, f"hub/team/app/manifests/{arm[1]}", **ACCEPT)

    assert child.status_code == 200
    assert content(child) == arm[0]
    assert content(get(client, f"hub/team/app/blobs/{sha256(b'arm64 layer')}")) == b"arm64 layer"
    assert upstream.count("GET", f"/manifests/{amd[1]}") == 0


def test_basic_credentials_go_upstream_and_the_local_users_never(client, upstream, users):
    upstream.auth = "basic"
    body, _ = upstream.add_image("team/app", "v1", [b"layer"])
    mirror_to(upstream, visibility="limited", username="up", password="up-pw")
    mirror_to(upstream, name="nocreds")

    response = get(client, "hub/team/app/manifests/v1", auth=BOB, **ACCEPT)

    assert content(response) == body
    sent = {r.headers.get("Authorization") for r in upstream.requests} - {None}
    assert sent == {upstream._basic()}
    refused = get(client, "nocreds/team/app/manifests/v1", **ACCEPT)
    assert "refused access (401)" in assert_error(refused, 404, "MANIFEST_UNKNOWN")["message"]


def test_the_token_flow_gets_one_token_per_scope(client, upstream):
    upstream.auth = "bearer"
    layer = os.urandom(2000)
    upstream.add_image("team/app", "v1", [layer])
    upstream.add_image("solo", "latest", [b"solo"])
    mirror_to(upstream, username="up", password="up-pw")

    get(client, "hub/team/app/manifests/v1", **ACCEPT)
    assert content(get(client, f"hub/team/app/blobs/{sha256(layer)}")) == layer
    get(client, "hub/solo/manifests/latest", **ACCEPT)

    assert upstream.tokens_issued == 2
    token_requests = [r for r in upstream.requests if r.path.startswith("/token")]
    assert all(r.headers["Authorization"] == upstream._basic() for r in token_requests)
    assert "scope=repository%3Ateam%2Fapp%3Apull" in token_requests[0].path


def test_loopback_upstreams_are_refused_unless_allowed(client, upstream, settings):
    settings.REGISTRY = {**settings.REGISTRY, "MIRROR_ALLOWED_HOSTS": []}
    upstream.add_image("team/app", "v1", [b"layer"])
    mirror_to(upstream)

    response = get(client, "hub/team/app/manifests/v1", **ACCEPT)

    assert "not a public address" in assert_error(response, 404, "MANIFEST_UNKNOWN")["message"]
    assert upstream.requests == []


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.1", "192.168.1.1", "[::1]"])
def test_private_and_metadata_addresses_are_refused(address):
    client = UpstreamClient(f"http://{address}")
    with pytest.raises(UpstreamUnavailable, match="not a public address"):
        client.get("/v2/x/manifests/latest", image="x")


def test_nobody_pushes_to_a_mirror(client, upstream, users):
    mirror_to(upstream)

    response = client.post("/v2/hub/team/app/blobs/uploads/", **ROOT)

    message = assert_error(response, 403, "DENIED")["message"]
    assert "mirror of" in message
    with pytest.raises(AssertionError):
        push_blob(client, "hub/team/app", b"data", auth=ROOT)


def test_a_private_mirror_keeps_its_access_rules(client, upstream, users):
    upstream.add_image("team/app", "v1", [b"layer"])
    mirror_to(upstream, visibility="private")

    assert_error(get(client, "hub/team/app/manifests/v1", **ACCEPT), 401, "UNAUTHORIZED")
    assert_error(get(client, "hub/team/app/manifests/v1", auth=BOB, **ACCEPT), 404, "NAME_UNKNOWN")
    assert upstream.requests == [], "the upstream was asked for a caller who may not pull"
    assert get(client, "hub/team/app/manifests/v1", auth=ROOT, **ACCEPT).status_code == 200


def test_two_mirrors_never_mix_their_tags(client, upstream):
    other = Upstream()
    try:
        _, ours = upstream.add_image("app", "v1", [b"ours"])
        _, theirs = other.add_image("app", "v1", [b"theirs"])
        mirror_to(upstream, name="one")
        create_mirror("two", other.url)

        assert get(client, "one/app/manifests/v1", **ACCEPT)["Docker-Content-Digest"] == ours
        assert get(client, "two/app/manifests/v1", **ACCEPT)["Docker-Content-Digest"] == theirs
    finally:
        other.close()


def test_docker_hub_keeps_official_images_under_library():
    hub = UpstreamClient("https://registry-1.docker.io")
    assert hub.repository("alpine") == "library/alpine"
    assert hub.repository("bitnami/redis") == "bitnami/redis"
    assert UpstreamClient("https://ghcr.io").repository("alpine") == "alpine"


def test_the_upstream_password_is_sealed(upstream):
    mirror = mirror_to(upstream, username="up", password="s3cret-pw")

    with connection.cursor() as cursor:
        cursor.execute("SELECT sealed_password FROM registry_mirror WHERE id = %s", [mirror.pk])
        stored = cursor.fetchone()[0]
    assert "s3cret-pw" not in stored
    assert upstream_of(Mirror.objects.get(pk=mirror.pk)).password == "s3cret-pw"


def test_a_sealed_value_opens_with_a_fallback_key_and_not_once_altered(settings):
    token = sealed.seal("pw")
    assert token != sealed.seal("pw"), "the same value sealed twice looks the same"
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    assert sealed.unseal(token) == "pw"
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(sealed.SealBroken):
        sealed.unseal(token)


@pytest.mark.parametrize(
    ("text", "seconds"), [("600", 600), ("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400)]
)
def test_ttls(text, seconds):
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "-1", "m"])
def test_bad_ttls(text):
    with pytest.raises(MirrorInvalid):
        parse_ttl(text)


def test_createmirror_makes_an_owner_and_refuses_bad_input(capsys, upstream):
    call_command(
        "createmirror", "hub", "--upstream", upstream.url, "--ttl", "5m", "--visibility", "limited"
    )
    mirror = Mirror.objects.get(owner__name="hub")
    assert (mirror.ttl_seconds, mirror.owner.visibility) == (300, "limited")
    output = capsys.readouterr().out
    assert "hub mirrors" in output
    assert "answers as a registry (200 to /v2/)" in output
    with pytest.raises(CommandError, match="already taken"):
        call_command("createmirror", "HUB", "--upstream", upstream.url)
    with pytest.raises(CommandError, match="http"):
        call_command("createmirror", "other", "--upstream", "ftp://example.com")
    upstream.close()
    call_command("createmirror", "down", "--upstream", upstream.url)
    assert "cannot be reached now" in capsys.readouterr().out
    assert Owner.objects.filter(name="other").count() == 0


def test_pulled_blobs_count_toward_the_mirrors_usage_and_quota(client, upstream, settings):
    layer = os.urandom(50_000)
    big = os.urandom(80_000)
    upstream.add_image("team/app", "v1", [layer])
    upstream.add_image("team/big", "v1", [big])
    mirror = mirror_to(upstream)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)
    before = quotas.usage(mirror.owner).bytes

    content(get(client, f"hub/team/app/blobs/{sha256(layer)}"))

    assert quotas.usage(mirror.owner).bytes - before == len(layer)
    settings.PACKAGES = {**settings.PACKAGES, "QUOTA_BLOB_BYTES": 60_000}
    get(client, "hub/team/big/manifests/v1", **ACCEPT)
    assert_error(get(client, f"hub/team/big/blobs/{sha256(big)}"), 403, "DENIED")
    assert upstream.count("GET", sha256(big)) == 0


def test_the_admin_makes_and_changes_a_mirror_without_showing_its_password(client, users):
    client.force_login(users["root"])
    added = client.post(
        "/admin/registry/mirror/add/",
        {
            "name": "hub",
            "upstream_url": "https://registry-1.docker.io/",
            "username": "me",
            "password": "hub-token",
            "visibility": "limited",
            "ttl_seconds": "300",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    mirror = Mirror.objects.get(owner__name="hub")
    assert mirror.upstream_url == "https://registry-1.docker.io"
    assert mirror.owner.visibility == "limited"
    assert upstream_of(mirror).password == "hub-token"

    page = client.get(f"/admin/registry/mirror/{mirror.pk}/change/")
    assert b"hub-token" not in page.content
    assert mirror.sealed_password.encode() not in page.content
    fields = {"upstream_url": "https://elsewhere.example.com", "username": "me", "password": ""}
    changed = client.post(
        f"/admin/registry/mirror/{mirror.pk}/change/",
        {**fields, "visibility": "public", "ttl_seconds": "60"},
    )
    assert changed.status_code == 302
    mirror.refresh_from_db()
    assert upstream_of(mirror).password == "hub-token", "an empty field dropped the password"
    assert (mirror.ttl_seconds, mirror.owner.visibility) == (60, "public")
    assert mirror.upstream_url == "https://registry-1.docker.io", "a mirror changed upstream"

    taken = client.post(
        "/admin/registry/mirror/add/",
        {**fields, "name": "HUB", "visibility": "public", "ttl_seconds": "1"},
    )
    assert b"already taken" in taken.content
    client.post(f"/admin/registry/mirror/{mirror.pk}/delete/", {"post": "yes"})
    assert not Owner.objects.filter(name="hub").exists()


def test_the_pages_say_what_a_mirror_mirrors(client, upstream):
    upstream.add_image("team/app", "v1", [b"layer"])
    mirror_to(upstream)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)

    owner_page = client.get("/hub/-/packages")
    version_page = client.get("/hub/-/packages/container/team/app/v1")

    assert f"Mirrors <code>{upstream.url}</code>" in owner_page.content.decode()
    assert f"Mirrored from <code>{upstream.url}/team/app</code>" in version_page.content.decode()


def test_referrers_come_from_the_upstream_and_are_fetched_when_pulled(client, upstream):
    image = upstream.add_image("team/app", "v1", [b"layer"])
    signature = upstream.add_referrer("team/app", image, "application/vnd.dev.sigstore.bundle")
    sbom = upstream.add_referrer("team/app", image, "application/spdx+json")
    mirror_to(upstream)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)

    listed = get(client, f"hub/team/app/referrers/{image[1]}").json()["manifests"]
    only = get(client, f"hub/team/app/referrers/{image[1]}?artifactType=application/spdx%2Bjson")

    assert {d["digest"] for d in listed} == {signature[1], sbom[1]}
    assert [d["digest"] for d in only.json()["manifests"]] == [sbom[1]]
    pulled = get(client, f"hub/team/app/manifests/{signature[1]}", **ACCEPT)
    assert content(pulled) == signature[0]
    upstream.close()
    # Down upstream: the referrer pulled through is still listed, from the cache.
    listed = get(client, f"hub/team/app/referrers/{image[1]}").json()["manifests"]
    assert [d["digest"] for d in listed] == [signature[1]]


def test_createmirror_reads_the_password_from_stdin(upstream, monkeypatch):
    monkeypatch.setattr(createmirror.Command, "stdin", io.StringIO("from-stdin\n"))
    call_command(
        "createmirror", "hub", "--upstream", upstream.url, "--username", "u", "--password-stdin"
    )

    assert upstream_of(Mirror.objects.get(owner__name="hub")).password == "from-stdin"


def test_a_fetch_is_no_push_for_webhooks(client, upstream):
    create_webhook(None, "https://hooks.example.com/all", events="push,delete,pull")
    upstream.add_image("team/app", "v1", [b"layer"])
    mirror_to(upstream)

    assert get(client, "hub/team/app/manifests/v1", **ACCEPT).status_code == 200

    assert list(WebhookDelivery.objects.values_list("event_type", flat=True)) == ["pull"]


# What a review found, each once a bug


def test_an_upstream_sending_more_than_the_blob_never_gives_a_whole_body(client, upstream):
    layer = os.urandom(300_000)
    upstream.add_image("team/app", "v1", [layer])
    upstream.padding[sha256(layer)] = os.urandom(2_000_000)
    mirror_to(upstream)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)

    response = get(client, f"hub/team/app/blobs/{sha256(layer)}")
    received = bytearray()

    def read_all():
        for piece in response.streaming_content:
            received.extend(piece)

    with pytest.raises(Exception, match="more than"):
        read_all()
    assert len(received) < len(layer)
    assert not PackageBlob.objects.filter(sha256=sha256(layer).removeprefix("sha256:")).exists()


def test_bytes_someone_else_pushed_are_not_served_for_an_upstream_without_them(
    client, upstream, users
):
    owners.create_user("carol", password="carol-pw")
    Owner.objects.filter(name="carol").update(visibility="private")
    secret = os.urandom(4000)
    digest = push_blob(client, "carol/secret", secret, auth=basic_auth("carol", "carol-pw"))
    _, manifest = upstream.add_image("team/app", "v1", [secret])
    # The upstream names carol's digest but has not got the bytes.
    del upstream.repositories["team/app"].blobs[digest]
    mirror_to(upstream)
    get(client, f"hub/team/app/manifests/{manifest}", **ACCEPT)

    response = get(client, f"hub/team/app/blobs/{digest}")

    assert_error(response, 404, "BLOB_UNKNOWN")
    assert upstream.count("GET", f"/blobs/{digest}") == 1


def test_credentials_never_go_to_a_host_a_redirect_chose(client, upstream):
    elsewhere = Upstream(auth="bearer", username="", password="")
    try:
        layer = os.urandom(1000)
        upstream.auth = "basic"
        upstream.add_image("team/app", "v1", [layer])
        upstream.redirect_blobs_to = elsewhere.url.replace("127.0.0.1", "localhost")
        mirror_to(upstream, username="up", password="up-pw")
        get(client, "hub/team/app/manifests/v1", **ACCEPT)

        response = get(client, f"hub/team/app/blobs/{sha256(layer)}")

        assert_error(response, 404, "BLOB_UNKNOWN")
        assert elsewhere.requests, "the redirect was not followed"
        sent = [r.headers.get("Authorization") for r in elsewhere.requests]
        assert sent == [None] * len(sent)
    finally:
        elsewhere.close()


def test_a_password_no_key_opens_leaves_the_cache_serving(client, upstream, settings):
    upstream.add_image("team/app", "v1", [b"layer"])
    mirror_to(upstream, username="up", password="up-pw", ttl_seconds=0)
    assert get(client, "hub/team/app/manifests/v1", **ACCEPT).status_code == 200
    settings.SECRET_KEY = "another-secret-key-" + "y" * 40
    asked = len(upstream.requests)

    assert get(client, "hub/team/app/manifests/v1", **ACCEPT).status_code == 200
    missing = get(client, "hub/team/app/manifests/v2", **ACCEPT)

    assert "cannot be opened" in assert_error(missing, 404, "MANIFEST_UNKNOWN")["message"]
    assert len(upstream.requests) == asked


def test_a_token_that_is_no_header_is_refused_not_a_500(client, upstream):
    upstream.auth = "bearer"
    upstream.token_override = "tok-1\r\nX-Injected: yes"
    upstream.add_image("team/app", "v1", [b"layer"])
    mirror_to(upstream, username="up", password="up-pw")

    response = get(client, "hub/team/app/manifests/v1", **ACCEPT)

    assert "no usable token" in assert_error(response, 404, "MANIFEST_UNKNOWN")["message"]
    assert not any("X-Injected" in r.headers for r in upstream.requests)


def test_a_failed_get_after_a_head_does_not_start_a_ttl(client, upstream):
    _, first = upstream.add_image("team/app", "v1", [b"one"])
    mirror = mirror_to(upstream, ttl_seconds=3600)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)
    _, second = upstream.add_image("team/app", "v1", [b"two"])
    key = manifests_module.CHECKED_KEY.format(owner=mirror.owner_id, image="team/app", tag="v1")
    shared_cache.delete_many([key])  # the TTL ran out
    upstream.manifest_get_status = 429

    assert get(client, "hub/team/app/manifests/v1", **ACCEPT)["Docker-Content-Digest"] == first
    upstream.manifest_get_status = None
    shared_cache.cache().clear()  # the pause after a failure is over

    assert get(client, "hub/team/app/manifests/v1", **ACCEPT)["Docker-Content-Digest"] == second


def test_a_failed_upstream_is_left_alone_for_a_while(client, upstream):
    upstream.add_image("team/app", "v1", [b"layer"])
    mirror_to(upstream, ttl_seconds=0)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)
    upstream.status = 503
    assert get(client, "hub/team/app/manifests/v1", **ACCEPT).status_code == 200
    asked = len(upstream.requests)

    cached = get(client, "hub/team/app/manifests/v1", **ACCEPT)
    missing = get(client, "hub/team/app/manifests/v2", **ACCEPT)

    assert cached.status_code == 200
    message = assert_error(missing, 404, "MANIFEST_UNKNOWN")["message"]
    assert "answered 503" in message
    assert "not asked again" in message
    assert len(upstream.requests) == asked


def test_a_reference_that_is_no_tag_never_reaches_the_upstream(client, upstream):
    upstream.add_image("team/app", "v1", [b"layer"])
    mirror_to(upstream)

    response = get(client, "hub/team/app/manifests/v1%3Fns=other.example", **ACCEPT)

    assert_error(response, 404, "MANIFEST_UNKNOWN")
    assert upstream.requests == []


def test_odd_referrers_upstream_are_left_out(client, upstream):
    image = upstream.add_image("team/app", "v1", [b"layer"])
    good = upstream.add_referrer("team/app", image, "application/spdx+json")
    upstream.repositories["team/app"].referrers[image[1]] += [
        {"digest": {"not": "a string"}, "mediaType": OCI_MANIFEST, "size": 1},
        {"digest": "sha256:nothex", "mediaType": OCI_MANIFEST, "size": 1},
        "not even an object",
    ]
    mirror_to(upstream)
    get(client, "hub/team/app/manifests/v1", **ACCEPT)

    response = get(client, f"hub/team/app/referrers/{image[1]}")

    assert response.status_code == 200
    assert [d["digest"] for d in response.json()["manifests"]] == [good[1]]


def test_the_body_says_which_media_type_a_manifest_has(client, upstream):
    body, _ = upstream.add_image("team/app", "v1", [b"layer"])
    upstream.repositories["team/app"].manifests["v1"] = ("application/json", body)
    mirror_to(upstream)

    response = get(client, "hub/team/app/manifests/v1", **ACCEPT)

    assert response.status_code == 200
    assert response["Content-Type"] == OCI_MANIFEST


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://registry:5000", True),
        ("https://registry-1.docker.io/", True),
        ("https://user:pw@ghcr.io", False),
        ("https://ghcr.io/?x=1", False),
        ("ftp://example.com", False),
        ("https://", False),
        ("http://host:port", False),
    ],
)
def test_upstream_urls(url, ok):
    if ok:
        assert check_upstream_url(url) == url.rstrip("/")
    else:
        with pytest.raises(MirrorInvalid):
            check_upstream_url(url)

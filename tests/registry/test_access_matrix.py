"""The authorisation matrix of the /v2 API, every cell asserted.

Five owners (a public, a limited and a private user; a public and a private
organisation), seven callers and nine actions, each run twice (630 cells): with Basic
credentials directly on the /v2 route, and through the Bearer flow (`GET /v2/token`
with the same credentials, then the request with `Authorization: Bearer ...`).

The expected outcomes are written out in EXPECTED_TABLE from the rules below, not
taken from the server; `test_the_table_follows_the_rules` checks the table against
the rules written as code, so a typo in either shows up.

- Read: public owners → everyone (anonymous too); limited owners → signed-in users;
  a private user → only itself; an organisation → its members (any role) plus whoever
  may see the organisation (public: everyone; private: members only).
- Write: the user itself; organisation members with role write or admin.
- A site admin may do everything. A read-only access token reads as its user and
  writes nothing (403 DENIED). An expired token is 401 UNAUTHORIZED, used directly
  and at /v2/token.
- Refused: anonymous → 401 with a `WWW-Authenticate: Bearer` challenge naming the
  scope; a signed-in caller who may read the owner → 403 DENIED; one who may not →
  404 NAME_UNKNOWN, as for an owner that does not exist (docs/authentication.md).
- The catalog lists exactly what the caller may read.
- A cross-repository mount the caller may not read from falls back to a new upload
  session (202) and leaks nothing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from packages_core.models import AccessToken, Membership, PackageBlob, PackageVersion
from packages_core.models.owners import Visibility
from packages_core.services import owners
from packages_core.services.tokens import create_access_token, revoke_token
from tests.conftest import as_in_a_test, file_storage, module_transaction
from tests.registry_helpers import (
    API_VERSION,
    API_VERSION_HEADER,
    OCI_INDEX,
    OCI_MANIFEST,
    artifact_manifest,
    basic_auth,
    content,
    digest_of,
    error_entries,
    image_config,
    push_blob,
    push_image,
    put_manifest,
    send,
)

pytestmark = pytest.mark.django_db

# Under the Django test client the request host is "testserver" (and pytest-django
# adds it to ALLOWED_HOSTS): it is the service of challenges and the audience of tokens.
SERVICE = "testserver"
REALM = f"http://{SERVICE}/v2/token"

# The owners: (owner name, kind, visibility). Each has an image <name>/app.
OWNERS = {
    "public-user": ("pubuser", "user", Visibility.PUBLIC),
    "limited-user": ("limuser", "user", Visibility.LIMITED),
    "private-user": ("privuser", "user", Visibility.PRIVATE),
    "public-org": ("puborg", "org", Visibility.PUBLIC),
    "private-org": ("privorg", "org", Visibility.PRIVATE),
}
# The organisations' admin, who pushes their images; their write and read members.
ORG_ADMIN, ORG_WRITER, ORG_READER = "orgadmin", "writer", "reader"
OUTSIDER, SITE_ADMIN = "outsider", "root"

# The callers, relative to an owner:
# - anonymous: no credentials at all;
# - outsider: another signed-in user;
# - writer: the user itself for a user owner, a member with role write for an org;
# - reader: a member with role read (for a user owner just another outsider);
# - site-admin: a superuser;
# - read-token: a read:package access token of the writer;
# - expired-token: a write:package access token of the writer, expired yesterday.
ACTORS = (
    "anonymous",
    "outsider",
    "writer",
    "reader",
    "site-admin",
    "read-token",
    "expired-token",
)

# The actions, with the table's column for each:
# - pull-manifest: GET the manifest of tag v1;
# - pull-blob: GET the image's layer blob;
# - push-blob: a monolithic POST .../blobs/uploads/?digest= of a new blob;
# - push-manifest: PUT the v1 manifest under a new tag;
# - delete: DELETE a throwaway tag the writer pushed beforehand;
# - mount: POST ?mount=<layer>&from=<owner>/app into a repository the caller may write
#   (its own user's namespace; anonymous: the owner's image itself): 201 mounted,
#   202 a new upload session instead (the caller may not read the source);
# - catalog: GET /v2/_catalog lists <owner>/app, or hides it;
# - tags-list: GET .../tags/list;
# - referrers: GET .../referrers/<digest of v1>.
ACTION_COLUMNS = {
    "pull-man": "pull-manifest",
    "pull-blob": "pull-blob",
    "push-blob": "push-blob",
    "push-man": "push-manifest",
    "delete": "delete",
    "mount": "mount",
    "catalog": "catalog",
    "tags": "tags-list",
    "refs": "referrers",
}
ACTIONS = tuple(ACTION_COLUMNS.values())
WRITE_ACTIONS = ("push-blob", "push-manifest", "delete")
MODES = ("basic", "bearer")

# ok = 200 for reads, 201 for pushes, 202 for the delete; 401/403/404 = refused;
# 201/202 for a mount; listed/hidden for the catalog.
EXPECTED_TABLE = """
owner        actor         pull-man pull-blob push-blob push-man delete mount catalog tags refs
public-user  anonymous     ok       ok        401       401      401    401   listed  ok   ok
public-user  outsider      ok       ok        403       403      403    201   listed  ok   ok
public-user  writer        ok       ok        ok        ok       ok     201   listed  ok   ok
public-user  reader        ok       ok        403       403      403    201   listed  ok   ok
public-user  site-admin    ok       ok        ok        ok       ok     201   listed  ok   ok
public-user  read-token    ok       ok        403       403      403    403   listed  ok   ok
public-user  expired-token 401      401       401       401      401    401   401     401  401

limited-user anonymous     401      401       401       401      401    401   hidden  401  401
limited-user outsider      ok       ok        403       403      403    201   listed  ok   ok
limited-user writer        ok       ok        ok        ok       ok     201   listed  ok   ok
limited-user reader        ok       ok        403       403      403    201   listed  ok   ok
limited-user site-admin    ok       ok        ok        ok       ok     201   listed  ok   ok
limited-user read-token    ok       ok        403       403      403    403   listed  ok   ok
limited-user expired-token 401      401       401       401      401    401   401     401  401

private-user anonymous     401      401       401       401      401    401   hidden  401  401
private-user outsider      404      404       404       404      404    202   hidden  404  404
private-user writer        ok       ok        ok        ok       ok     201   listed  ok   ok
private-user reader        404      404       404       404      404    202   hidden  404  404
private-user site-admin    ok       ok        ok        ok       ok     201   listed  ok   ok
private-user read-token    ok       ok        403       403      403    403   listed  ok   ok
private-user expired-token 401      401       401       401      401    401   401     401  401

public-org   anonymous     ok       ok        401       401      401    401   listed  ok   ok
public-org   outsider      ok       ok        403       403      403    201   listed  ok   ok
public-org   writer        ok       ok        ok        ok       ok     201   listed  ok   ok
public-org   reader        ok       ok        403       403      403    201   listed  ok   ok
public-org   site-admin    ok       ok        ok        ok       ok     201   listed  ok   ok
public-org   read-token    ok       ok        403       403      403    403   listed  ok   ok
public-org   expired-token 401      401       401       401      401    401   401     401  401

private-org  anonymous     401      401       401       401      401    401   hidden  401  401
private-org  outsider      404      404       404       404      404    202   hidden  404  404
private-org  writer        ok       ok        ok        ok       ok     201   listed  ok   ok
private-org  reader        ok       ok        403       403      403    201   listed  ok   ok
private-org  site-admin    ok       ok        ok        ok       ok     201   listed  ok   ok
private-org  read-token    ok       ok        403       403      403    403   listed  ok   ok
private-org  expired-token 401      401       401       401      401    401   401     401  401
"""


def parse_table(text: str, columns: dict[str, str]) -> dict[tuple[str, str], dict[str, str]]:
    """{(row label, actor): {action: expected}} from a whitespace-aligned table."""
    lines = [line.split() for line in text.strip().splitlines() if line.strip()]
    header, rows = lines[0], lines[1:]
    assert header[2:] == list(columns), header
    table: dict[tuple[str, str], dict[str, str]] = {}
    for row in rows:
        assert len(row) == len(header), row
        key = (row[0], row[1])
        assert key not in table, f"row {key} appears twice"
        table[key] = {
            columns[column]: value for column, value in zip(header[2:], row[2:], strict=True)
        }
    return table


EXPECTED = parse_table(EXPECTED_TABLE, ACTION_COLUMNS)

# Cells whose expected outcome the server does not give yet: (owner, actor, action,
# mode) with None as a wildcard, and the reason. Each is an xfail(strict=True). None today.
KNOWN_BUGS: list[tuple[tuple[str | None, str | None, str | None, str | None], str]] = []


def rule_outcome(owner_key: str, actor_key: str, action: str) -> str:
    """The rules of the module docstring as code: a check on EXPECTED_TABLE for typos."""
    _name, kind, visibility = OWNERS[owner_key]
    if actor_key == "expired-token":
        return "401"
    signed_in = actor_key != "anonymous"
    site_admin = actor_key == "site-admin"
    # The read-only token belongs to the writer (the user itself, or the org's writer).
    is_writer_user = actor_key in ("writer", "read-token")
    is_member = kind == "org" and actor_key in ("writer", "reader", "read-token")
    if site_admin or visibility == Visibility.PUBLIC:
        can_read = True
    elif visibility == Visibility.LIMITED:
        can_read = signed_in
    elif kind == "user":
        can_read = is_writer_user
    else:
        can_read = is_member
    can_write = site_admin or actor_key == "writer"
    refused = ("403" if can_read else "404") if signed_in else "401"
    if action == "catalog":
        return "listed" if can_read else "hidden"
    if action == "mount":
        if not signed_in:
            return "401"
        if actor_key == "read-token":
            return "403"  # it may not write even its own user's namespace
        return "201" if can_read else "202"
    if action in WRITE_ACTIONS:
        return "ok" if can_write else refused
    return "ok" if can_read else refused


def test_the_table_covers_every_owner_and_actor():
    assert set(EXPECTED) == {(owner, actor) for owner in OWNERS for actor in ACTORS}


@pytest.mark.parametrize(("owner_key", "actor_key"), list(EXPECTED), ids="|".join)
def test_the_table_follows_the_rules(owner_key, actor_key):
    by_rules = {action: rule_outcome(owner_key, actor_key, action) for action in ACTIONS}

    assert EXPECTED[(owner_key, actor_key)] == by_rules


# The world every cell runs in


def password(username: str) -> str:
    return f"{username}-pw"


def credentials(username: str) -> dict[str, str]:
    return basic_auth(username, password(username))


@dataclass(frozen=True)
class OwnerImage:
    """What an owner's `<name>/app` holds: tag v1, a referrer of it, tag throwaway."""

    owner_name: str
    repo: str
    manifest: bytes
    digest: str
    layer: bytes
    layer_digest: str
    referrer_digest: str
    referrer_size: int
    artifact_type: str


@dataclass(frozen=True)
class Actor:
    """A caller: its Basic credentials ({} when anonymous) and where it mounts into."""

    key: str
    auth: dict[str, str]
    mount_target: str
    # Whether /v2/token gives this caller a token at all.
    gets_tokens: bool = True


def writer_of(owner_key: str) -> str:
    name, kind, _ = OWNERS[owner_key]
    return name if kind == "user" else ORG_WRITER


@dataclass
class World:
    """The world as one test sees it: the test's own client, the users read afresh
    (a test that deactivates one leaves the others' objects alone) and the images.
    """

    client: object
    users: dict[str, object]
    images: dict[str, OwnerImage]

    def image(self, owner_key: str) -> OwnerImage:
        return self.images[owner_key]

    def actor(self, owner_key: str, actor_key: str) -> Actor:
        writer = writer_of(owner_key)
        if actor_key == "anonymous":
            # Anonymous may write nowhere: it tries to mount into the owner's image itself.
            return Actor(actor_key, {}, f"{OWNERS[owner_key][0]}/app")
        if actor_key in ("read-token", "expired-token"):
            token, secret = create_access_token(
                self.users[writer],
                actor_key,
                ["read:package"] if actor_key == "read-token" else ["write:package"],
            )
            if actor_key == "expired-token":
                AccessToken.objects.filter(pk=token.pk).update(
                    expires_at=timezone.now() - timedelta(days=1)
                )
            return Actor(
                actor_key,
                basic_auth(writer, secret),
                f"{writer}/mounted",
                gets_tokens=actor_key == "read-token",
            )
        username = {
            "outsider": OUTSIDER,
            "writer": writer,
            "reader": ORG_READER,
            "site-admin": SITE_ADMIN,
        }[actor_key]
        return Actor(actor_key, credentials(username), f"{username}/mounted")


def push_owner_image(client, owner_key: str) -> OwnerImage:
    """Push `<name>/app` (by the owner or the org admin): tag v1 and a referrer of it,
    and tag throwaway (by the owner's writer) for the delete cells.
    """
    name, kind, _ = OWNERS[owner_key]
    repo = f"{name}/app"
    pusher = credentials(name if kind == "user" else ORG_ADMIN)
    layer = f"the layer of {repo}".encode()
    pushed = push_image(
        client,
        repo,
        "v1",
        auth=pusher,
        layers=(layer,),
        config=image_config(labels={"owner": name}),
    )
    artifact_type = "application/vnd.example.sbom.v1"
    sbom = f"the sbom of {repo}".encode()
    push_blob(client, repo, sbom, auth=pusher)
    subject = {"mediaType": OCI_MANIFEST, "digest": pushed.digest, "size": len(pushed.manifest)}
    referrer = artifact_manifest([sbom], artifact_type=artifact_type, subject=subject)
    response = put_manifest(client, repo, digest_of(referrer), referrer, auth=pusher)
    assert response.status_code == 201, (response.status_code, response.content)
    push_image(
        client,
        repo,
        "throwaway",
        auth=credentials(writer_of(owner_key)),
        layers=(f"the throwaway layer of {repo}".encode(),),
    )
    return OwnerImage(
        owner_name=name,
        repo=repo,
        manifest=pushed.manifest,
        digest=pushed.digest,
        layer=layer,
        layer_digest=pushed.layer_digests[0],
        referrer_digest=digest_of(referrer),
        referrer_size=len(referrer),
        artifact_type=artifact_type,
    )


def make_users() -> list[str]:
    """The owners, their organisations' members, the outsider and the site admin."""
    users = {}
    for name, kind, visibility in OWNERS.values():
        if kind == "user":
            users[name] = owners.create_user(name, password=password(name), visibility=visibility)
    for name in (ORG_ADMIN, ORG_WRITER, ORG_READER, OUTSIDER):
        users[name] = owners.create_user(name, password=password(name))
    users[SITE_ADMIN] = owners.create_user(SITE_ADMIN, password=password(SITE_ADMIN), is_admin=True)
    for name, kind, visibility in OWNERS.values():
        if kind == "org":
            org = owners.create_org(name, owner_user=users[ORG_ADMIN], visibility=visibility)
            owners.set_membership(org, users[ORG_WRITER], Membership.Role.WRITE)
            owners.set_membership(org, users[ORG_READER], Membership.Role.READ)
    return list(users)


@dataclass(frozen=True)
class BuiltWorld:
    usernames: tuple[str, ...]
    images: dict[str, OwnerImage]
    package_dir: Path


@pytest.fixture(scope="module")
def built_world(django_db_setup, django_db_blocker, tmp_path_factory) -> BuiltWorld:
    """The users, organisations and every owner's image, made once for the module
    (conftest's module_transaction): what a cell pushes, deletes or changes is gone
    before the next one starts, and every test sees this same world.
    """
    package_dir = tmp_path_factory.mktemp("access-matrix") / "packages"
    with module_transaction(django_db_blocker):
        with as_in_a_test(package_dir):
            usernames = make_users()
            client = Client()
            images = {owner_key: push_owner_image(client, owner_key) for owner_key in OWNERS}
        yield BuiltWorld(tuple(usernames), images, package_dir)


@pytest.fixture
def world(built_world, client, settings, package_storage, db) -> World:
    # After conftest's package_storage: the images' blobs are in the world's directory.
    settings.STORAGES = {
        **settings.STORAGES,
        "packages": file_storage(built_world.package_dir),
    }
    users = get_user_model().objects.in_bulk(built_world.usernames, field_name="username")
    return World(client, users, built_world.images)


# Requests and what their answers must be


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def request_token(client, auth: dict[str, str], scopes: list[str]):
    query = urlencode([("service", SERVICE), *(("scope", scope) for scope in scopes)])
    return send(client, "GET", f"/v2/token?{query}", auth=auth)


def granted_access(token: str) -> dict[str, set[str]]:
    """The `access` claim of a token (read, not verified), merged by resource name."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    access: dict[str, set[str]] = {}
    for entry in claims["access"]:
        access.setdefault(f"{entry['type']}:{entry['name']}", set()).update(entry["actions"])
    return access


def describe(response) -> str:
    body = b"" if response.streaming else response.content
    return f"got {response.status_code} {body[:300]!r}"


def assert_status(response, status: int, cell: str) -> None:
    assert response.status_code == status, f"{cell}: expected {status}, {describe(response)}"
    assert response[API_VERSION_HEADER] == API_VERSION, cell


def assert_refused(response, expected: str, cell: str, scope: str) -> None:
    """401 UNAUTHORIZED with a Bearer challenge for `scope`, 403 DENIED, or 404
    NAME_UNKNOWN (an owner the caller may not see).
    """
    assert expected in ("401", "403", "404"), f"{cell}: {expected!r} is not a refusal"
    assert_status(response, int(expected), cell)
    code = error_entries(response)[0]["code"]
    if expected == "401":
        assert code == "UNAUTHORIZED", f"{cell}: code {code}"
        challenge = response.get("WWW-Authenticate", "")
        assert challenge.startswith("Bearer "), f"{cell}: challenge {challenge!r}"
        assert f'realm="{REALM}"' in challenge, f"{cell}: challenge {challenge!r}"
        assert f'service="{SERVICE}"' in challenge, f"{cell}: challenge {challenge!r}"
        if scope:
            assert f'scope="{scope}"' in challenge, f"{cell}: challenge {challenge!r}"
        else:
            assert "scope=" not in challenge, f"{cell}: challenge {challenge!r}"
    elif expected == "404":
        assert code == "NAME_UNKNOWN", f"{cell}: code {code}"
        assert "WWW-Authenticate" not in response, cell
    else:
        assert code == "DENIED", f"{cell}: code {code}"


def version_exists(image: OwnerImage, tag: str) -> bool:
    return PackageVersion.objects.filter(
        package__owner__name=image.owner_name, package__name="app", version=tag
    ).exists()


@dataclass(frozen=True)
class Cell:
    owner_key: str
    actor_key: str
    action: str
    mode: str

    @property
    def id(self) -> str:
        return f"{self.owner_key}|{self.actor_key}|{self.action}|{self.mode}"

    @property
    def expected(self) -> str:
        return EXPECTED[(self.owner_key, self.actor_key)][self.action]


def token_scopes(cell: Cell, image: OwnerImage, actor: Actor) -> list[str]:
    if cell.action == "catalog":
        return ["registry:catalog:*"]
    if cell.action == "mount":
        return [f"repository:{image.repo}:pull", f"repository:{actor.mount_target}:pull,push"]
    return [f"repository:{image.repo}:pull,push"]


def check_granted(cell: Cell, image: OwnerImage, actor: Actor, token: str) -> None:
    """The token grants what the table says the caller may do, and nothing more."""
    row = EXPECTED[(cell.owner_key, cell.actor_key)]
    access = granted_access(token)
    if cell.action == "catalog":
        assert access == {"registry:catalog": {"*"}}, f"{cell.id}: granted {access}"
        return
    repo = f"repository:{image.repo}"
    wanted = {"pull"} if row["pull-manifest"] == "ok" else set()
    if cell.action != "mount" and row["push-blob"] == "ok":
        wanted.add("push")
    if cell.action == "mount" and actor.mount_target != image.repo:
        target = f"repository:{actor.mount_target}"
        # The caller reads its own namespace, and writes it unless its token is read-only.
        target_actions = {"pull", "push"} if cell.expected in ("201", "202") else {"pull"}
        assert access.get(target, set()) == target_actions, f"{cell.id}: granted {access}"
    assert access.get(repo, set()) == wanted, f"{cell.id}: granted {access}"


def run_cell(world: World, cell: Cell) -> None:
    client = world.client
    image = world.image(cell.owner_key)
    actor = world.actor(cell.owner_key, cell.actor_key)
    auth = actor.auth
    if cell.mode == "bearer":
        response = request_token(client, actor.auth, token_scopes(cell, image, actor))
        if not actor.gets_tokens:
            assert cell.expected == "401", cell.id
            assert_refused(response, "401", f"{cell.id} (at /v2/token)", scope="")
            return
        assert_status(response, 200, f"{cell.id} (at /v2/token)")
        token = json.loads(response.content)["token"]
        check_granted(cell, image, actor, token)
        auth = bearer(token)
    ACTION_RUNNERS[cell.action](world, cell, image, actor, auth)


def run_pull_manifest(world, cell, image, actor, auth):
    response = send(world.client, "GET", f"/v2/{image.repo}/manifests/v1", auth=auth)
    if cell.expected != "ok":
        assert_refused(response, cell.expected, cell.id, f"repository:{image.repo}:pull")
        return
    assert_status(response, 200, cell.id)
    assert content(response) == image.manifest, cell.id
    assert response["Docker-Content-Digest"] == image.digest, cell.id


def run_pull_blob(world, cell, image, actor, auth):
    response = send(world.client, "GET", f"/v2/{image.repo}/blobs/{image.layer_digest}", auth=auth)
    if cell.expected != "ok":
        assert_refused(response, cell.expected, cell.id, f"repository:{image.repo}:pull")
        return
    assert_status(response, 200, cell.id)
    assert content(response) == image.layer, cell.id


def run_push_blob(world, cell, image, actor, auth):
    data = f"a blob {actor.key} pushed to {image.repo}".encode()
    digest = digest_of(data)
    path = f"/v2/{image.repo}/blobs/uploads/?digest={digest}"
    response = send(world.client, "POST", path, data, auth=auth)
    stored = PackageBlob.objects.filter(sha256=digest.partition(":")[2]).exists()
    if cell.expected != "ok":
        assert_refused(response, cell.expected, cell.id, f"repository:{image.repo}:pull,push")
        assert not stored, f"{cell.id}: a refused push stored the blob"
        return
    assert_status(response, 201, cell.id)
    assert response["Docker-Content-Digest"] == digest, cell.id
    assert response["Location"] == f"/v2/{image.repo}/blobs/{digest}", cell.id
    assert stored, cell.id


def run_push_manifest(world, cell, image, actor, auth):
    response = put_manifest(world.client, image.repo, "pushed", image.manifest, auth=auth)
    if cell.expected != "ok":
        assert_refused(response, cell.expected, cell.id, f"repository:{image.repo}:pull,push")
        assert not version_exists(image, "pushed"), f"{cell.id}: a refused push made the tag"
        return
    assert_status(response, 201, cell.id)
    assert response["Docker-Content-Digest"] == image.digest, cell.id
    assert version_exists(image, "pushed"), cell.id


def run_delete(world, cell, image, actor, auth):
    response = send(world.client, "DELETE", f"/v2/{image.repo}/manifests/throwaway", auth=auth)
    if cell.expected != "ok":
        assert_refused(response, cell.expected, cell.id, f"repository:{image.repo}:delete")
        assert version_exists(image, "throwaway"), f"{cell.id}: a refused delete deleted"
        return
    assert_status(response, 202, cell.id)
    assert not version_exists(image, "throwaway"), cell.id


def run_mount(world, cell, image, actor, auth):
    target = actor.mount_target
    path = f"/v2/{target}/blobs/uploads/?mount={image.layer_digest}&from={image.repo}"
    response = send(world.client, "POST", path, auth=auth)
    if cell.expected in ("401", "403", "404"):
        assert_refused(response, cell.expected, cell.id, f"repository:{target}:pull,push")
        return
    assert_status(response, int(cell.expected), cell.id)
    in_target = send(world.client, "GET", f"/v2/{target}/blobs/{image.layer_digest}", auth=auth)
    if cell.expected == "201":
        assert response["Docker-Content-Digest"] == image.layer_digest, cell.id
        assert response["Location"] == f"/v2/{target}/blobs/{image.layer_digest}", cell.id
        assert_status(in_target, 200, f"{cell.id} (the mounted blob)")
        assert content(in_target) == image.layer, cell.id
    else:
        # A new upload session, and nothing of the source's blob.
        assert "Docker-Content-Digest" not in response, cell.id
        assert response["Location"].startswith(f"/v2/{target}/blobs/uploads/"), cell.id
        assert_status(in_target, 404, f"{cell.id} (the blob must not be in {target})")
        assert error_entries(in_target)[0]["code"] == "BLOB_UNKNOWN", cell.id


def run_catalog(world, cell, image, actor, auth):
    response = send(world.client, "GET", "/v2/_catalog", auth=auth)
    if cell.expected not in ("listed", "hidden"):
        assert_refused(response, cell.expected, cell.id, "registry:catalog:*")
        return
    assert_status(response, 200, cell.id)
    # Every owner's image is there; which of the others show is the catalog test's.
    found = json.loads(response.content)["repositories"]
    listed = image.repo in found
    assert listed == (cell.expected == "listed"), f"{cell.id}: got {found}"


def run_tags_list(world, cell, image, actor, auth):
    response = send(world.client, "GET", f"/v2/{image.repo}/tags/list", auth=auth)
    if cell.expected != "ok":
        assert_refused(response, cell.expected, cell.id, f"repository:{image.repo}:pull")
        return
    assert_status(response, 200, cell.id)
    found = json.loads(response.content)
    assert found == {"name": image.repo, "tags": ["throwaway", "v1"]}, f"{cell.id}: {found}"


def run_referrers(world, cell, image, actor, auth):
    response = send(world.client, "GET", f"/v2/{image.repo}/referrers/{image.digest}", auth=auth)
    if cell.expected != "ok":
        assert_refused(response, cell.expected, cell.id, f"repository:{image.repo}:pull")
        return
    assert_status(response, 200, cell.id)
    assert response["Content-Type"] == OCI_INDEX, cell.id
    index = json.loads(response.content)
    assert index["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": image.referrer_digest,
            "size": image.referrer_size,
            "artifactType": image.artifact_type,
        }
    ], cell.id


ACTION_RUNNERS = {
    "pull-manifest": run_pull_manifest,
    "pull-blob": run_pull_blob,
    "push-blob": run_push_blob,
    "push-manifest": run_push_manifest,
    "delete": run_delete,
    "mount": run_mount,
    "catalog": run_catalog,
    "tags-list": run_tags_list,
    "referrers": run_referrers,
}
assert set(ACTION_RUNNERS) == set(ACTIONS)


def known_bug(cell: Cell) -> str | None:
    values = (cell.owner_key, cell.actor_key, cell.action, cell.mode)
    for pattern, reason in KNOWN_BUGS:
        if all(p is None or p == v for p, v in zip(pattern, values, strict=True)):
            return reason
    return None


def matrix_params():
    for owner_key in OWNERS:
        for actor_key in ACTORS:
            for action in ACTIONS:
                for mode in MODES:
                    cell = Cell(owner_key, actor_key, action, mode)
                    reason = known_bug(cell)
                    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
                    yield pytest.param(cell, id=cell.id, marks=marks)


MATRIX = list(matrix_params())


@pytest.mark.parametrize("cell", MATRIX)
def test_access_matrix(world, cell):
    run_cell(world, cell)


def test_every_cell_is_in_the_matrix():
    assert len(MATRIX) == len(OWNERS) * len(ACTORS) * len(ACTIONS) * len(MODES) == 630


# The catalog with every image present: exactly what each user may read.

CATALOG_TABLE = """
user           public-user limited-user private-user public-org private-org
anonymous      listed      hidden       hidden       listed     hidden
outsider       listed      listed       hidden       listed     hidden
reader         listed      listed       hidden       listed     listed
writer         listed      listed       hidden       listed     listed
orgadmin       listed      listed       hidden       listed     listed
pubuser        listed      listed       hidden       listed     hidden
limuser        listed      listed       hidden       listed     hidden
privuser       listed      listed       listed       listed     hidden
privuser-token listed      listed       listed       listed     hidden
root           listed      listed       listed       listed     listed
"""


def parse_catalog_table(text: str) -> dict[str, list[str]]:
    lines = [line.split() for line in text.strip().splitlines() if line.strip()]
    header, rows = lines[0], lines[1:]
    assert header[1:] == list(OWNERS), header
    return {
        row[0]: sorted(
            f"{OWNERS[owner_key][0]}/app"
            for owner_key, mark in zip(header[1:], row[1:], strict=True)
            if mark == "listed"
        )
        for row in rows
    }


CATALOGS = parse_catalog_table(CATALOG_TABLE)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("who", list(CATALOGS))
def test_catalog_lists_exactly_what_the_caller_may_read(world, who, mode):
    if who == "anonymous":
        auth = {}
    elif who == "privuser-token":
        _, secret = create_access_token(world.users["privuser"], "ro", ["read:package"])
        auth = basic_auth("privuser", secret)
    else:
        auth = credentials(who)
    if mode == "bearer":
        response = request_token(world.client, auth, ["registry:catalog:*"])
        assert response.status_code == 200, describe(response)
        auth = bearer(json.loads(response.content)["token"])

    response = send(world.client, "GET", "/v2/_catalog", auth=auth)

    assert response.status_code == 200, describe(response)
    assert json.loads(response.content) == {"repositories": CATALOGS[who]}


# Credentials that stop working, and tokens used beyond what they grant


def assert_invalid_token(response, scope: str) -> None:
    assert_refused(response, "401", "bearer", scope)
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_an_inactive_user_is_refused_and_its_bearer_tokens_stop_working(world):
    image = world.image("public-user")
    auth = credentials("pubuser")
    scope = f"repository:{image.repo}:pull"
    response = request_token(world.client, auth, [f"repository:{image.repo}:pull,push"])
    assert response.status_code == 200
    token = json.loads(response.content)["token"]
    manifest = f"/v2/{image.repo}/manifests/v1"
    assert send(world.client, "GET", manifest, auth=bearer(token)).status_code == 200
    assert send(world.client, "GET", manifest, auth=auth).status_code == 200  # and cached

    user = world.users["pubuser"]
    user.is_active = False
    user.save()

    assert_refused(send(world.client, "GET", manifest, auth=auth), "401", "basic", scope)
    assert_invalid_token(send(world.client, "GET", manifest, auth=bearer(token)), scope)
    assert_refused(
        request_token(world.client, auth, [f"repository:{image.repo}:pull"]), "401", "token", ""
    )


def test_an_inactive_users_access_tokens_and_their_bearer_tokens_stop_working(world):
    image = world.image("private-user")
    _, secret = create_access_token(world.users["privuser"], "ci", ["read:package"])
    auth = basic_auth("privuser", secret)
    token = token_for(world, auth, [f"repository:{image.repo}:pull"])
    manifest = f"/v2/{image.repo}/manifests/v1"
    assert send(world.client, "GET", manifest, auth=auth).status_code == 200
    assert send(world.client, "GET", manifest, auth=token).status_code == 200

    user = world.users["privuser"]
    user.is_active = False
    user.save()

    scope = f"repository:{image.repo}:pull"
    assert_refused(send(world.client, "GET", manifest, auth=auth), "401", "basic", scope)
    assert_invalid_token(send(world.client, "GET", manifest, auth=token), scope)


def test_an_access_token_that_expires_ends_its_bearer_tokens(world):
    image = world.image("limited-user")
    access_token, secret = create_access_token(world.users["limuser"], "ci", ["read:package"])
    token = token_for(world, basic_auth("limuser", secret), [f"repository:{image.repo}:pull"])
    manifest = f"/v2/{image.repo}/manifests/v1"
    assert send(world.client, "GET", manifest, auth=token).status_code == 200

    access_token.expires_at = timezone.now() - timedelta(seconds=1)
    access_token.save(update_fields=["expires_at"])

    assert_invalid_token(
        send(world.client, "GET", manifest, auth=token), f"repository:{image.repo}:pull"
    )


def test_a_revoked_access_tokens_bearer_tokens_stop_working(world):
    image = world.image("private-user")
    access_token, secret = create_access_token(world.users["privuser"], "ci", ["write:package"])
    auth = basic_auth("privuser", secret)
    response = request_token(world.client, auth, [f"repository:{image.repo}:pull,push"])
    assert response.status_code == 200
    token = json.loads(response.content)["token"]
    manifest = f"/v2/{image.repo}/manifests/v1"
    assert send(world.client, "GET", manifest, auth=bearer(token)).status_code == 200

    revoke_token(access_token)

    scope = f"repository:{image.repo}:pull"
    assert_invalid_token(send(world.client, "GET", manifest, auth=bearer(token)), scope)
    push = f"/v2/{image.repo}/blobs/uploads/"
    assert_invalid_token(
        send(world.client, "POST", push, auth=bearer(token)), f"repository:{image.repo}:pull,push"
    )
    assert_refused(send(world.client, "GET", manifest, auth=auth), "401", "basic", scope)
    assert_refused(
        request_token(world.client, auth, [f"repository:{image.repo}:pull"]), "401", "token", ""
    )


def token_for(world, auth, scopes: list[str]) -> dict[str, str]:
    response = request_token(world.client, auth, scopes)
    assert response.status_code == 200, describe(response)
    return bearer(json.loads(response.content)["token"])


@pytest.fixture
def two_repos(world):
    """pubuser/app and pubuser/other, both public, with tag v1."""
    image = world.image("public-user")
    push_image(world.client, "pubuser/other", "v1", auth=credentials("pubuser"))
    return image.repo, "pubuser/other"


@pytest.mark.parametrize(
    ("method", "suffix", "scope_actions"),
    [
        ("GET", "manifests/v1", "pull"),
        ("GET", "tags/list", "pull"),
        ("POST", "blobs/uploads/", "pull,push"),
        ("DELETE", "manifests/v1", "delete"),
    ],
)
def test_a_bearer_token_for_one_repository_does_not_open_another(
    world, two_repos, method, suffix, scope_actions
):
    """The user could have B: 403 with a challenge naming B's scope, to fetch a new token."""
    repo_a, repo_b = two_repos
    auth = token_for(world, credentials("pubuser"), [f"repository:{repo_a}:pull,push"])

    response = send(world.client, method, f"/v2/{repo_b}/{suffix}", auth=auth)

    assert_refused(response, "403", "signed in, token for A used on B", "")
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{REALM}",service="{SERVICE}"'), challenge
    assert f'scope="repository:{repo_b}:{scope_actions}"' in challenge, challenge
    assert 'error="insufficient_scope"' in challenge, challenge
    assert version_exists(world.image("public-user"), "v1")


def test_a_bearer_token_for_one_repository_is_refused_on_an_unreadable_one(world):
    """Without read access to B by the rules, the token for A changes nothing: B is
    hidden (404), as it is without a token.
    """
    auth = token_for(world, credentials(OUTSIDER), ["repository:pubuser/app:pull"])

    response = send(world.client, "GET", "/v2/privuser/app/manifests/v1", auth=auth)

    assert_refused(response, "404", "outsider, token for A used on private B", "")


def assert_insufficient_scope(response, cell: str, scope: str) -> None:
    """403 DENIED with a challenge naming the scope to fetch (docs/authentication.md)."""
    assert_refused(response, "403", cell, "")
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{REALM}",service="{SERVICE}"'), challenge
    assert f'scope="{scope}"' in challenge, challenge
    assert 'error="insufficient_scope"' in challenge, challenge


@pytest.mark.parametrize(
    ("owner_key", "method", "suffix", "scope_actions"),
    [
        ("public-user", "POST", "blobs/uploads/", "pull,push"),
        ("private-user", "GET", "manifests/v1", "pull"),
    ],
)
def test_an_anonymous_bearer_token_for_one_repository_is_401_where_anonymous_may_not(
    world, two_repos, owner_key, method, suffix, scope_actions
):
    image = world.image(owner_key)
    repo_b = "pubuser/other" if owner_key == "public-user" else image.repo
    auth = token_for(world, {}, ["repository:pubuser/app:pull"])

    response = send(world.client, method, f"/v2/{repo_b}/{suffix}", auth=auth)

    assert_refused(
        response, "401", "anonymous, token for A used on B", f"repository:{repo_b}:{scope_actions}"
    )


def test_an_anonymous_bearer_token_for_one_repository_gets_a_challenge_on_another(world, two_repos):
    """Anonymous may pull B, but not with this token: the documented answer for a
    missing scope, 403 with an insufficient_scope challenge, as for signed-in callers.

    Not the 401 that "anonymous without the right" gets: anonymous has the right, its
    token lacks the scope. oras-py 0.2 (oras/provider.py do_request) retries a 401 with
    the token it holds and fetches a new one only after a 403, so a 401 here would
    strand an anonymous oras-py client moving on to a second repository.
    """
    repo_a, repo_b = two_repos
    auth = token_for(world, {}, [f"repository:{repo_a}:pull"])

    response = send(world.client, "GET", f"/v2/{repo_b}/manifests/v1", auth=auth)

    assert_insufficient_scope(response, "anonymous, token for A", f"repository:{repo_b}:pull")


@pytest.mark.parametrize("who", ["anonymous", "outsider"])
def test_a_bearer_token_without_the_catalog_scope_gets_a_challenge_for_it(world, two_repos, who):
    auth = {} if who == "anonymous" else credentials(OUTSIDER)
    auth = token_for(world, auth, [f"repository:{two_repos[0]}:pull"])

    response = send(world.client, "GET", "/v2/_catalog", auth=auth)

    assert_insufficient_scope(response, f"{who}, token without the catalog", "registry:catalog:*")


def test_a_bearer_token_stops_granting_push_when_its_user_loses_write(world):
    """Tokens carry what was granted then; every request checks the rules again."""
    image = world.image("private-org")
    auth = token_for(world, credentials(ORG_WRITER), [f"repository:{image.repo}:pull,push"])
    upload = f"/v2/{image.repo}/blobs/uploads/"
    assert send(world.client, "POST", upload, auth=auth).status_code == 202

    owners.set_membership(
        owners.get_owner("privorg"), world.users[ORG_WRITER], Membership.Role.READ
    )

    assert_refused(send(world.client, "POST", upload, auth=auth), "403", "demoted writer", "")
    manifest = f"/v2/{image.repo}/manifests/v1"
    assert send(world.client, "GET", manifest, auth=auth).status_code == 200


def test_an_anonymous_bearer_token_stops_reading_an_owner_made_private(world):
    image = world.image("public-org")
    auth = token_for(world, {}, [f"repository:{image.repo}:pull"])
    manifest = f"/v2/{image.repo}/manifests/v1"
    assert send(world.client, "GET", manifest, auth=auth).status_code == 200

    org = owners.get_owner("puborg")
    org.visibility = Visibility.PRIVATE
    org.save(update_fields=["visibility"])

    response = send(world.client, "GET", manifest, auth=auth)
    assert_refused(response, "401", "anonymous, owner now private", f"repository:{image.repo}:pull")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("method", "suffix", "scope_actions"),
    [("GET", "manifests/v1", "pull"), ("POST", "blobs/uploads/", "pull,push")],
)
def test_an_unknown_owner_is_404_name_unknown_signed_in_and_401_anonymous(
    world, mode, method, suffix, scope_actions
):
    path = f"/v2/nobody/app/{suffix}"
    scopes = ["repository:nobody/app:pull,push"]
    signed_in, anonymous = credentials(OUTSIDER), {}
    if mode == "bearer":
        signed_in, anonymous = token_for(world, signed_in, scopes), token_for(world, {}, scopes)

    response = send(world.client, method, path, auth=signed_in)
    assert_status(response, 404, f"signed in, {mode}")
    assert error_entries(response)[0]["code"] == "NAME_UNKNOWN"

    response = send(world.client, method, path, auth=anonymous)
    assert_refused(response, "401", f"anonymous, {mode}", f"repository:nobody/app:{scope_actions}")


def test_a_bearer_token_is_refused_by_another_service(world):
    """Tokens carry the host they were issued for as audience; another host refuses them."""
    image = world.image("public-user")
    auth = token_for(world, credentials("pubuser"), [f"repository:{image.repo}:pull,push"])
    upload = f"/v2/{image.repo}/blobs/uploads/"

    response = send(world.client, "POST", upload, auth=auth, HTTP_HOST="localhost")

    assert_status(response, 401, "token for testserver, used at localhost")
    assert error_entries(response)[0]["code"] == "UNAUTHORIZED"
    challenge = response["WWW-Authenticate"]
    assert 'service="localhost"' in challenge, challenge
    assert 'error="invalid_token"' in challenge, challenge
    assert send(world.client, "POST", upload, auth=auth).status_code == 202

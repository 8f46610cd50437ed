"""The Django admin of packages_core: every model listed, the forms' rules, the actions."""

import io
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from packages_core.models import (
    AccessToken,
    BlobUpload,
    CleanupRule,
    Membership,
    Owner,
    OwnerQuota,
    Package,
    PackageBlob,
    PackageFile,
    PackageProperty,
    PackageVersion,
)
from packages_core.services import blobs, properties, tokens, versions, webhooks
from packages_core.services import owners as owner_services
from packages_core.services import uploads as upload_services
from registry import images

SECRET_PATTERN = re.compile(r"fgt_[A-Za-z0-9_-]{20,}")


def changelist_url(model) -> str:
    return reverse(f"admin:packages_core_{model._meta.model_name}_changelist")


def add_url(model) -> str:
    return reverse(f"admin:packages_core_{model._meta.model_name}_add")


def change_url(obj) -> str:
    return reverse(f"admin:packages_core_{obj._meta.model_name}_change", args=[obj.pk])


def delete_url(obj) -> str:
    return reverse(f"admin:packages_core_{obj._meta.model_name}_delete", args=[obj.pk])


def listed(response) -> list:
    """The objects on a changelist page."""
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def inline_management_data(response, **total_forms) -> dict:
    """Management-form data for every inline of an add/change page (no forms by default)."""
    data = {}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        prefix = formset.prefix
        data[f"{prefix}-TOTAL_FORMS"] = str(total_forms.get(prefix, 0))
        data[f"{prefix}-INITIAL_FORMS"] = str(formset.initial_form_count())
        data[f"{prefix}-MIN_NUM_FORMS"] = "0"
        data[f"{prefix}-MAX_NUM_FORMS"] = "1000"
    return data


def store_bytes(data: bytes) -> PackageBlob:
    return blobs.store_blob(io.BytesIO(data)).blob


@pytest.fixture
def admin_client(client, site_admin):
    client.force_login(site_admin)
    return client


@pytest.fixture
def catalog(alice, org, store):
    """One object of every packages_core model, made the way the site makes them."""
    alice_owner = Owner.objects.get(user=alice)
    # Pushed by its sha512, so the blob's pages have both digests to show.
    blob = blobs.store_blob(io.BytesIO(b"a layer"), sha512=True).blob
    package = versions.get_or_create_package(alice_owner, "container", "app")
    version, _ = versions.get_or_create_version(package, "1.0", creator=alice)
    file = versions.add_file(version, blob, f"sha256:{blob.sha256}", is_lead=True)
    token, secret = tokens.create_access_token(alice, "ci", "read:package")
    prop = properties.set_property(
        PackageProperty.RefType.VERSION, version.pk, "container.image.type", "oci"
    )
    upload = BlobUpload.objects.create(
        owner=alice_owner, package_name="app", creator=alice, storage_key="uploads/abc"
    )
    quota = OwnerQuota.objects.create(owner=org, max_bytes=10 * 1024**3, max_versions=-1)
    rule = CleanupRule.objects.create(owner=org, type="container", keep_count=3)
    webhook = webhooks.create_webhook(org, "https://ci.example.com/hook", secret="s")
    delivery = webhooks.test_delivery(webhook)
    return SimpleNamespace(
        alice_owner=alice_owner,
        org=org,
        membership=Membership.objects.get(owner=org, user=alice),
        token=token,
        secret=secret,
        package=package,
        version=version,
        file=file,
        blob=blob,
        property=prop,
        upload=upload,
        quota=quota,
        rule=rule,
        webhook=webhook,
        delivery=delivery,
    )


CATALOG_OBJECTS = [
    "alice_owner",
    "membership",
    "token",
    "package",
    "version",
    "file",
    "blob",
    "property",
    "upload",
    "quota",
    "rule",
    "webhook",
    "delivery",
]


# Registration and the pages of every model.


def test_every_packages_core_model_is_registered():
    models = set(apps.get_app_config("packages_core").get_models())
    assert models == {model for model in models if admin.site.is_registered(model)}
    assert len(models) == 14


@pytest.mark.parametrize("name", CATALOG_OBJECTS)
def test_changelist_lists_the_object(admin_client, catalog, name):
    obj = getattr(catalog, name)
    response = admin_client.get(changelist_url(type(obj)))
    assert obj.pk in [row.pk for row in listed(response)]
    assert change_url(obj) in response.content.decode()


@pytest.mark.parametrize("name", CATALOG_OBJECTS)
def test_change_page_opens(admin_client, catalog, name):
    obj = getattr(catalog, name)
    response = admin_client.get(change_url(obj))
    assert response.status_code == 200
    assert response.context["original"].pk == obj.pk


@pytest.mark.parametrize("name", CATALOG_OBJECTS)
def test_pages_need_a_staff_user(client, alice, catalog, name):
    client.force_login(alice)
    obj = getattr(catalog, name)
    response = client.get(changelist_url(type(obj)))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# Query counts: a longer list costs no more queries.


def count_changelist_queries(client, model) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(changelist_url(model))
    assert response.status_code == 200
    return len(queries)


def add_rows(catalog, alice, bob, numbers):
    """More owners, packages, versions, files and tokens, each row with its own relations."""
    for i in numbers:
        owner = catalog.org if i % 2 else catalog.alice_owner
        package = versions.get_or_create_package(owner, "container", f"img{i}")
        version, _ = versions.get_or_create_version(package, f"v{i}", creator=bob)
        versions.add_file(version, store_bytes(f"layer {i}".encode()), f"layer{i}")
        tokens.create_access_token(bob if i % 2 else alice, f"token{i}", "write:package")
        Owner.objects.create(name=f"team{i}", kind=Owner.Kind.ORG)


@pytest.mark.parametrize("model", [Owner, Package, PackageVersion, PackageFile, AccessToken])
def test_changelist_queries_do_not_grow_with_rows(admin_client, catalog, alice, bob, model):
    add_rows(catalog, alice, bob, range(1))
    few = count_changelist_queries(admin_client, model)
    add_rows(catalog, alice, bob, range(1, 6))
    assert count_changelist_queries(admin_client, model) == few


# Owners.


def test_owner_list_shows_kind_user_and_package_count(admin_client, catalog):
    versions.get_or_create_package(catalog.alice_owner, "container", "second")
    rows = {row.name: row for row in listed(admin_client.get(changelist_url(Owner)))}
    assert rows["alice"].package_count == 2
    assert rows["acme"].package_count == 0
    assert rows["acme"].kind == Owner.Kind.ORG
    assert rows["alice"].user.username == "alice"


def test_owner_search_finds_by_name(admin_client, catalog):
    response = admin_client.get(changelist_url(Owner), {"q": "acm"})
    assert [row.name for row in listed(response)] == ["acme"]


def test_owner_search_finds_by_username(admin_client, catalog, bob):
    Owner.objects.filter(user=bob).update(name="robert")
    response = admin_client.get(changelist_url(Owner), {"q": "bob"})
    assert [row.name for row in listed(response)] == ["robert"]


def test_owner_filter_by_kind(admin_client, catalog):
    response = admin_client.get(changelist_url(Owner), {"kind__exact": "org"})
    assert [row.name for row in listed(response)] == ["acme"]


def owner_add_data(client, **fields) -> dict:
    page = client.get(add_url(Owner))
    assert page.status_code == 200
    data = inline_management_data(page)
    data.update({"name": "", "kind": "", "user": "", "visibility": "public", "description": ""})
    data.update(fields)
    return data


def test_admin_creates_an_organisation_with_members(admin_client, bob):
    data = owner_add_data(admin_client, name="newco", kind="org", visibility="private")
    data.update(
        {
            "memberships-TOTAL_FORMS": "1",
            "memberships-0-user": str(bob.pk),
            "memberships-0-role": "admin",
        }
    )
    response = admin_client.post(add_url(Owner), data)
    assert response.status_code == 302, response.context["errors"]
    org = Owner.objects.get(name="newco")
    assert (org.kind, org.user, org.visibility) == ("org", None, "private")
    assert list(org.memberships.values_list("user__username", "role")) == [("bob", "admin")]


def test_user_owner_without_a_user_is_a_form_error(admin_client, db):
    data = owner_add_data(admin_client, name="nobody", kind="user")
    response = admin_client.post(add_url(Owner), data)
    assert response.status_code == 200
    assert "user" in response.context["adminform"].form.errors
    assert not Owner.objects.filter(name="nobody").exists()


def test_organisation_with_a_user_is_a_form_error(admin_client, bob):
    Owner.objects.filter(user=bob).delete()
    data = owner_add_data(admin_client, name="bobco", kind="org", user=str(bob.pk))
    response = admin_client.post(add_url(Owner), data)
    assert response.status_code == 200
    assert "user" in response.context["adminform"].form.errors
    assert not Owner.objects.filter(name="bobco").exists()


def test_admin_links_a_user_owner_to_its_user(admin_client, bob):
    Owner.objects.filter(user=bob).delete()
    data = owner_add_data(admin_client, name="bobby", kind="user", user=str(bob.pk))
    response = admin_client.post(add_url(Owner), data)
    assert response.status_code == 302
    assert Owner.objects.get(name="bobby").user == bob


def test_user_owner_cannot_get_members(admin_client, alice, bob):
    Owner.objects.filter(user=bob).delete()
    data = owner_add_data(admin_client, name="bobby", kind="user", user=str(bob.pk))
    data.update(
        {
            "memberships-TOTAL_FORMS": "1",
            "memberships-0-user": str(alice.pk),
            "memberships-0-role": "read",
        }
    )
    response = admin_client.post(add_url(Owner), data)
    assert response.status_code == 200
    assert "Only organisations have members." in response.content.decode()
    assert not Owner.objects.filter(name="bobby").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [("ALICE", "already taken"), ("v2", "reserved"), ("-bad-", "not a valid name")],
)
def test_owner_name_follows_the_service_rules(admin_client, alice, name, message):
    data = owner_add_data(admin_client, name=name, kind="org")
    response = admin_client.post(add_url(Owner), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["name"]
    assert any(message in error for error in errors)


def test_owner_can_be_edited_without_renaming(admin_client, catalog):
    page = admin_client.get(change_url(catalog.org))
    data = inline_management_data(page, memberships=1)
    data.update({"name": "Acme", "user": "", "visibility": "limited", "description": "Tools"})
    # The existing membership stays as it is.
    data.update(
        {
            "memberships-0-id": str(catalog.membership.pk),
            "memberships-0-owner": str(catalog.org.pk),
            "memberships-0-user": str(catalog.membership.user_id),
            "memberships-0-role": "admin",
            "memberships-TOTAL_FORMS": "1",
        }
    )
    response = admin_client.post(change_url(catalog.org), data)
    assert response.status_code == 302, response.context["errors"]
    catalog.org.refresh_from_db()
    assert (catalog.org.name, catalog.org.visibility) == ("Acme", "limited")
    assert catalog.org.kind == "org"


def test_user_owner_page_has_no_member_inline(admin_client, catalog):
    response = admin_client.get(change_url(catalog.alice_owner))
    prefixes = [inline.formset.prefix for inline in response.context["inline_admin_formsets"]]
    assert prefixes == ["quota"]
    response = admin_client.get(change_url(catalog.org))
    prefixes = [inline.formset.prefix for inline in response.context["inline_admin_formsets"]]
    assert prefixes == ["memberships", "quota"]


def test_deleting_an_owner_removes_its_package_properties(admin_client, catalog):
    response = admin_client.post(delete_url(catalog.alice_owner), {"post": "yes"})
    assert response.status_code == 302
    assert not Package.objects.filter(pk=catalog.package.pk).exists()
    assert not PackageProperty.objects.filter(pk=catalog.property.pk).exists()
    # The blob stays for garbage collection.
    assert PackageBlob.objects.filter(pk=catalog.blob.pk).exists()


def test_membership_needs_an_organisation(admin_client, catalog, bob):
    data = {"owner": str(catalog.alice_owner.pk), "user": str(bob.pk), "role": "read"}
    response = admin_client.post(add_url(Membership), data)
    assert response.status_code == 200
    assert "owner" in response.context["adminform"].form.errors
    data["owner"] = str(catalog.org.pk)
    assert admin_client.post(add_url(Membership), data).status_code == 302
    assert catalog.org.memberships.filter(user=bob, role="read").exists()


def test_quota_list_reads_limits(admin_client, catalog):
    content = admin_client.get(changelist_url(OwnerQuota)).content.decode()
    assert "10.0\xa0GB" in content
    assert "unlimited" in content
    assert "site default" in content


# Access tokens.


def test_token_list_shows_active_state(admin_client, catalog, alice):
    expired, _ = tokens.create_access_token(alice, "old", "read:package", expires_in_days=1)
    AccessToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(1))
    revoked, _ = tokens.create_access_token(alice, "gone", "read:package")
    tokens.revoke_token(revoked)
    model_admin = admin.site.get_model_admin(AccessToken)
    rows = {row.name: row for row in listed(admin_client.get(changelist_url(AccessToken)))}
    assert model_admin.active(rows["ci"]) is True
    assert model_admin.active(rows["old"]) is False
    assert model_admin.active(rows["gone"]) is False
    response = admin_client.get(changelist_url(AccessToken), {"status": "active"})
    assert [row.name for row in listed(response)] == ["ci"]
    response = admin_client.get(changelist_url(AccessToken), {"status": "expired"})
    assert [row.name for row in listed(response)] == ["old"]
    response = admin_client.get(changelist_url(AccessToken), {"status": "revoked"})
    assert [row.name for row in listed(response)] == ["gone"]


def test_revoke_action_revokes_only_the_selected_tokens(admin_client, catalog, bob):
    other, other_secret = tokens.create_access_token(bob, "keep", "read:package")
    response = admin_client.post(
        changelist_url(AccessToken),
        {"action": "revoke_tokens", "_selected_action": [str(catalog.token.pk)]},
    )
    assert response.status_code == 302
    catalog.token.refresh_from_db()
    assert catalog.token.revoked_at is not None
    assert tokens.authenticate_token(catalog.secret) is None
    assert tokens.authenticate_token(other_secret) == other
    assert "Revoked 1 token(s)." in [str(m) for m in get_messages(response.wsgi_request)]


def test_revoking_again_keeps_the_first_revocation_time(admin_client, catalog):
    tokens.revoke_token(catalog.token)
    first = catalog.token.revoked_at
    admin_client.post(
        changelist_url(AccessToken),
        {"action": "revoke_tokens", "_selected_action": [str(catalog.token.pk)]},
    )
    catalog.token.refresh_from_db()
    assert catalog.token.revoked_at == first


def test_adding_a_token_shows_its_secret_once_and_stores_its_hash(admin_client, bob):
    assert admin_client.get(add_url(AccessToken)).status_code == 200
    response = admin_client.post(
        add_url(AccessToken),
        {"user": str(bob.pk), "name": "deploy", "scopes": ["write:package"]},
        follow=True,
    )
    assert response.status_code == 200
    notes = [str(message) for message in response.context["messages"]]
    shown = [match.group() for note in notes if (match := SECRET_PATTERN.search(note))]
    assert len(shown) == 1, notes
    secret = shown[0]
    assert response.content.decode().count(secret) == 1
    token = AccessToken.objects.get(user=bob, name="deploy")
    assert token.token_hash == tokens.hash_token(secret)
    assert secret.startswith(token.token_prefix)
    assert token.scopes == ["write:package"]
    assert token.expires_at is None
    stored = AccessToken.objects.filter(pk=token.pk).values().get()
    assert secret not in [str(value) for value in stored.values()]
    assert tokens.authenticate_token(secret) == token
    # The secret was a one-off message: the token's page does not show it again.
    assert secret not in admin_client.get(change_url(token)).content.decode()


def test_added_token_can_expire(admin_client, bob):
    admin_client.post(
        add_url(AccessToken),
        {"user": str(bob.pk), "name": "short", "scopes": ["read:package"], "expires_in_days": "7"},
    )
    token = AccessToken.objects.get(user=bob, name="short")
    assert timedelta(days=6) < token.expires_at - timezone.now() <= timedelta(days=7)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "ci", "scopes": ["read:package"]}, "__all__"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["admin:site"]}, "scopes"),
        ({"name": "x", "scopes": ["read:package"], "expires_in_days": "0"}, "expires_in_days"),
    ],
)
def test_bad_token_input_is_a_form_error(admin_client, catalog, alice, fields, field):
    before = AccessToken.objects.count()
    response = admin_client.post(add_url(AccessToken), {"user": str(alice.pk), **fields})
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert AccessToken.objects.count() == before


def test_token_hash_and_usage_are_read_only(admin_client, catalog):
    token = catalog.token
    original_hash = token.token_hash
    response = admin_client.post(
        change_url(token),
        {
            "name": "renamed",
            "scopes": ["read:package", "write:package"],
            "expires_at_0": "",
            "expires_at_1": "",
            "token_hash": "0" * 64,
            "token_prefix": "fgt_xxxx",
            "last_used_at": "2020-01-01 00:00",
            "revoked_at": "2020-01-01 00:00",
        },
    )
    assert response.status_code == 302, response.context["errors"]
    token.refresh_from_db()
    assert token.name == "renamed"
    assert token.scopes == ["read:package", "write:package"]
    assert token.token_hash == original_hash
    assert token.last_used_at is None
    assert token.revoked_at is None
    assert tokens.authenticate_token(catalog.secret) == token


def test_searching_a_whole_secret_finds_its_token(admin_client, catalog, alice):
    tokens.create_access_token(alice, "other", "read:package")
    response = admin_client.get(changelist_url(AccessToken), {"q": catalog.secret})
    assert [row.pk for row in listed(response)] == [catalog.token.pk]


# Packages, versions, files, properties.


def test_package_list_counts_published_versions(admin_client, catalog):
    versions.get_or_create_version(catalog.package, "2.0")
    versions.get_or_create_version(catalog.package, "_staging", is_internal=True)
    (row,) = listed(admin_client.get(changelist_url(Package)))
    assert row.version_count == 2


def test_package_filter_by_type(admin_client, catalog):
    versions.get_or_create_package(catalog.org, "npm", "lib")
    response = admin_client.get(changelist_url(Package), {"package_type": "npm"})
    assert [row.name for row in listed(response)] == ["lib"]


def test_version_filters(admin_client, catalog):
    staging, _ = versions.get_or_create_version(catalog.package, "_s", is_internal=True)
    chart = versions.get_or_create_package(catalog.org, "helm", "chart")
    helm_version, _ = versions.get_or_create_version(chart, "0.1")
    response = admin_client.get(changelist_url(PackageVersion), {"is_internal__exact": "1"})
    assert [row.pk for row in listed(response)] == [staging.pk]
    response = admin_client.get(changelist_url(PackageVersion), {"package_type": "helm"})
    assert [row.pk for row in listed(response)] == [helm_version.pk]


def test_version_page_lists_its_files_read_only(admin_client, catalog):
    response = admin_client.get(change_url(catalog.version))
    (inline,) = response.context["inline_admin_formsets"]
    assert inline.formset.model is PackageFile
    assert [form.instance.pk for form in inline.formset.forms] == [catalog.file.pk]
    assert not inline.has_add_permission
    assert not inline.has_change_permission
    assert catalog.file.name in response.content.decode()


def test_version_download_count_and_metadata_are_read_only(admin_client, catalog):
    PackageVersion.objects.filter(pk=catalog.version.pk).update(
        download_count=5, metadata={"architecture": "arm64"}
    )
    page = admin_client.get(change_url(catalog.version))
    data = inline_management_data(page)
    data.update(
        {
            "package": str(catalog.package.pk),
            "version": "1.0",
            "creator": "",
            "metadata": '{"architecture": "amd64"}',
            "download_count": "999",
        }
    )
    response = admin_client.post(change_url(catalog.version), data)
    assert response.status_code == 302, response.context["errors"]
    catalog.version.refresh_from_db()
    assert catalog.version.download_count == 5
    # Metadata comes from the pushed config: the admin shows it, never edits it.
    assert catalog.version.metadata == {"architecture": "arm64"}


def test_deleting_a_version_removes_its_files_and_properties(admin_client, catalog):
    file_property = properties.set_property(
        PackageProperty.RefType.FILE, catalog.file.pk, "container.mediatype", "x"
    )
    response = admin_client.post(delete_url(catalog.version), {"post": "yes"})
    assert response.status_code == 302
    assert not PackageFile.objects.filter(pk=catalog.file.pk).exists()
    assert not PackageProperty.objects.filter(
        pk__in=[catalog.property.pk, file_property.pk]
    ).exists()


def test_file_list_shows_readable_blob_size(admin_client, catalog):
    big = store_bytes(b"x" * 3 * 1024 * 1024)
    versions.add_file(catalog.version, big, "big")
    content = admin_client.get(changelist_url(PackageFile)).content.decode()
    assert "3.0\xa0MB" in content


def test_property_links_to_what_it_is_attached_to(admin_client, catalog):
    response = admin_client.get(changelist_url(PackageProperty))
    assert change_url(catalog.version) in response.content.decode()
    response = admin_client.get(changelist_url(PackageProperty), {"q": str(catalog.version.pk)})
    assert [row.pk for row in listed(response)] == [catalog.property.pk]


# Blobs and uploads.


def test_blobs_cannot_be_added_changed_or_deleted_by_hand(admin_client, catalog):
    assert admin_client.get(add_url(PackageBlob)).status_code == 403
    before = PackageBlob.objects.count()
    response = admin_client.post(
        add_url(PackageBlob), {"size": "1", "sha256": "a" * 64, "sha512": "b" * 128}
    )
    assert response.status_code == 403
    assert PackageBlob.objects.count() == before
    assert admin_client.post(delete_url(catalog.blob), {"post": "yes"}).status_code == 403
    response = admin_client.post(change_url(catalog.blob), {"size": "1"})
    assert response.status_code == 403
    catalog.blob.refresh_from_db()
    assert catalog.blob.size == len(b"a layer")


def test_blob_page_shows_hashes_size_and_users(admin_client, catalog):
    content = admin_client.get(change_url(catalog.blob)).content.decode()
    assert catalog.blob.sha256 in content
    assert catalog.blob.sha512 in content
    assert "7\xa0bytes" in content
    assert change_url(catalog.file) in content


def test_blob_page_of_a_blob_with_no_sha512_says_so(admin_client, catalog):
    blob = store_bytes(b"pushed by sha256 only")

    response = admin_client.get(changelist_url(PackageBlob))

    assert response.status_code == 200
    assert blob.sha512 is None
    assert admin_client.get(change_url(blob)).status_code == 200


def test_blob_search_accepts_a_digest(admin_client, catalog):
    store_bytes(b"another layer")
    prefix = f"sha256:{catalog.blob.sha256[:12]}"
    response = admin_client.get(changelist_url(PackageBlob), {"q": prefix})
    assert [row.pk for row in listed(response)] == [catalog.blob.pk]


def test_uploads_are_view_only(admin_client, catalog):
    assert admin_client.get(add_url(BlobUpload)).status_code == 403
    response = admin_client.post(change_url(catalog.upload), {"bytes_received": "99"})
    assert response.status_code == 403
    catalog.upload.refresh_from_db()
    assert catalog.upload.bytes_received == 0


def test_upload_search_by_id(admin_client, catalog):
    BlobUpload.objects.create(owner=catalog.org, package_name="other", storage_key="uploads/def")
    response = admin_client.get(changelist_url(BlobUpload), {"q": str(catalog.upload.pk)})
    assert [row.pk for row in listed(response)] == [catalog.upload.pk]


def test_deleting_an_upload_drops_its_staged_bytes_after_commit(
    admin_client, catalog, store, django_capture_on_commit_callbacks
):
    store.save(catalog.upload.storage_key, io.BytesIO(b"partial"))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(delete_url(catalog.upload), {"post": "yes"})
    assert response.status_code == 302
    assert len(callbacks) == 1
    assert not BlobUpload.objects.filter(pk=catalog.upload.pk).exists()
    assert not store.exists(catalog.upload.storage_key)


def test_manifest_changelist_lists_pushed_manifests_read_only(admin_client):
    mallory = owner_services.create_user("mallory", password="pw")
    body = (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":'
        b'"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",'
        b'"size":2},"layers":[]}'
    )
    pushed = images.put_manifest(mallory.package_owner, "art", "v1", body, None)
    response = admin_client.get("/admin/registry/manifest/")
    assert response.status_code == 200
    assert pushed.digest in response.content.decode()
    assert admin_client.get("/admin/registry/manifest/add/").status_code == 403


# Versions: metadata, properties, list columns and the delete action.


def test_version_page_shows_metadata_pretty_printed_and_read_only(admin_client, catalog):
    metadata = {"architecture": "amd64", "labels": {"note": "<b>&</b>"}, "layers": 2}
    PackageVersion.objects.filter(pk=catalog.version.pk).update(metadata=metadata)
    response = admin_client.get(change_url(catalog.version))
    form = response.context["adminform"].form
    assert "metadata" not in form.fields
    content = response.content.decode()
    assert '<pre class="version-metadata">' in content
    # Indented, keys sorted, and escaped.
    assert "  &quot;architecture&quot;: &quot;amd64&quot;,\n  &quot;labels&quot;: {" in content
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in content
    assert "<b>&</b>" not in content


def test_version_page_lists_its_and_its_files_properties_read_only(admin_client, catalog):
    file_property = properties.set_property(
        PackageProperty.RefType.FILE, catalog.file.pk, "container.mediatype", "x/<y>"
    )
    other, _ = versions.get_or_create_version(catalog.package, "2.0")
    unrelated = properties.set_property(
        PackageProperty.RefType.VERSION, other.pk, "container.unrelated", "no"
    )
    response = admin_client.get(change_url(catalog.version))
    content = response.content.decode()
    table = content[content.index('<table class="version-properties">') :]
    table = table[: table.index("</table>")]
    assert "container.image.type" in table
    assert change_url(catalog.property) in table
    assert f"file {catalog.file.name}" in table
    assert change_url(file_property) in table
    assert "x/&lt;y&gt;" in table
    assert unrelated.name not in table
    # The version's own properties come first.
    assert table.index("container.image.type") < table.index("container.mediatype")
    assert "property_list" not in response.context["adminform"].form.fields


def test_version_without_properties_says_so(admin_client, catalog):
    other, _ = versions.get_or_create_version(catalog.package, "2.0")
    model_admin = admin.site.get_model_admin(PackageVersion)
    assert model_admin.property_list(other) == "none"


def test_version_list_shows_file_count_and_size(admin_client, catalog):
    versions.add_file(catalog.version, store_bytes(b"y" * 2048), "second")
    empty, _ = versions.get_or_create_version(catalog.package, "empty")
    rows = {row.pk: row for row in listed(admin_client.get(changelist_url(PackageVersion)))}
    assert rows[catalog.version.pk].file_count == 2
    assert rows[catalog.version.pk].total_size == len(b"a layer") + 2048
    assert rows[empty.pk].file_count == 0
    model_admin = admin.site.get_model_admin(PackageVersion)
    assert model_admin.total_size(rows[empty.pk]) == "0\xa0bytes"
    assert model_admin.total_size(rows[catalog.version.pk]) == "2.0\xa0KB"


def test_version_does_not_move_to_another_package(admin_client, catalog):
    elsewhere = versions.get_or_create_package(catalog.org, "container", "elsewhere")
    page = admin_client.get(change_url(catalog.version))
    data = inline_management_data(page)
    data.update({"package": str(elsewhere.pk), "version": "1.0", "creator": ""})
    response = admin_client.post(change_url(catalog.version), data)
    assert response.status_code == 302, response.context["errors"]
    catalog.version.refresh_from_db()
    assert catalog.version.package == catalog.package


def version_action_choices(client) -> dict:
    response = client.get(changelist_url(PackageVersion))
    assert response.status_code == 200
    action_form = response.context["action_form"]
    return dict(action_form.fields["action"].choices) if action_form else {}


def test_delete_selected_versions_action_is_the_only_delete_action(admin_client, catalog):
    choices = version_action_choices(admin_client)
    assert choices["delete_selected"] == "Delete selected versions"
    assert [name for name in choices if "delete" in name] == ["delete_selected"]


def test_delete_selected_versions_confirms_then_removes_through_the_service(
    admin_client, catalog, monkeypatch
):
    file_property = properties.set_property(
        PackageProperty.RefType.FILE, catalog.file.pk, "container.mediatype", "x"
    )
    second, _ = versions.get_or_create_version(catalog.package, "2.0")
    second_property = properties.set_property(
        PackageProperty.RefType.VERSION, second.pk, "container.image.type", "oci"
    )
    kept, _ = versions.get_or_create_version(catalog.package, "3.0")
    kept_property = properties.set_property(
        PackageProperty.RefType.VERSION, kept.pk, "container.image.type", "oci"
    )
    removed = []
    real_remove = versions.remove_versions

    def spy(doomed, **context):
        removed.extend(version.pk for version in doomed)
        return real_remove(doomed, **context)

    monkeypatch.setattr(versions, "remove_versions", spy)
    selected = {"action": "delete_selected", "_selected_action": [catalog.version.pk, second.pk]}

    confirmation = admin_client.post(changelist_url(PackageVersion), selected)
    assert confirmation.status_code == 200
    assert "Are you sure" in confirmation.content.decode()
    assert PackageVersion.objects.filter(pk=catalog.version.pk).exists()

    response = admin_client.post(changelist_url(PackageVersion), {**selected, "post": "yes"})
    assert response.status_code == 302
    assert sorted(removed) == sorted([catalog.version.pk, second.pk])
    assert list(PackageVersion.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not PackageFile.objects.filter(pk=catalog.file.pk).exists()
    gone = [catalog.property.pk, file_property.pk, second_property.pk]
    assert not PackageProperty.objects.filter(pk__in=gone).exists()
    assert PackageProperty.objects.filter(pk=kept_property.pk).exists()
    # Blobs stay for garbage collection.
    assert PackageBlob.objects.filter(pk=catalog.blob.pk).exists()
    notes = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Successfully deleted 2" in note for note in notes), notes


def test_deleting_a_version_from_its_page_goes_through_the_service(
    admin_client, catalog, monkeypatch
):
    removed = []
    real_remove = versions.remove_versions

    def spy(doomed, **context):
        removed.extend(version.pk for version in doomed)
        return real_remove(doomed, **context)

    monkeypatch.setattr(versions, "remove_versions", spy)
    response = admin_client.post(delete_url(catalog.version), {"post": "yes"})
    assert response.status_code == 302
    assert removed == [catalog.version.pk]
    assert not PackageProperty.objects.filter(pk=catalog.property.pk).exists()


def test_version_delete_action_needs_the_delete_permission(client, catalog, django_user_model):
    staff = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(codename="view_packageversion"),
        Permission.objects.get(codename="change_packageversion"),
    )
    client.force_login(staff)
    assert "delete_selected" not in version_action_choices(client)
    response = client.post(
        changelist_url(PackageVersion),
        {"action": "delete_selected", "_selected_action": [catalog.version.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert PackageVersion.objects.filter(pk=catalog.version.pk).exists()


# Links between owners, packages and versions.


def test_owner_page_links_to_its_packages(admin_client, catalog):
    versions.get_or_create_package(catalog.alice_owner, "container", "second")
    content = admin_client.get(change_url(catalog.alice_owner)).content.decode()
    link = f"{changelist_url(Package)}?owner__id__exact={catalog.alice_owner.pk}"
    assert f'href="{link}"' in content
    assert "2 package(s)" in content
    rows = listed(admin_client.get(link))
    assert sorted(row.name for row in rows) == ["app", "second"]


def test_package_page_links_to_its_versions(admin_client, catalog):
    other = versions.get_or_create_package(catalog.org, "container", "other")
    versions.get_or_create_version(other, "9.9")
    content = admin_client.get(change_url(catalog.package)).content.decode()
    link = f"{changelist_url(PackageVersion)}?package__id__exact={catalog.package.pk}"
    assert f'href="{link}"' in content
    assert "1 version(s)" in content
    assert [row.pk for row in listed(admin_client.get(link))] == [catalog.version.pk]


# Blobs: reference counts.


def test_blob_list_counts_the_files_using_each_blob(admin_client, catalog):
    other, _ = versions.get_or_create_version(catalog.package, "2.0")
    versions.add_file(other, catalog.blob, "same layer")
    garbage = store_bytes(b"nobody uses me")
    response = admin_client.get(changelist_url(PackageBlob))
    rows = {row.pk: row for row in listed(response)}
    assert rows[catalog.blob.pk].reference_count == 2
    assert rows[garbage.pk].reference_count == 0
    assert "Files using it" in response.content.decode()
    content = admin_client.get(change_url(catalog.blob)).content.decode()
    assert catalog.blob.sha512[:16] in content


def test_blob_list_filters_by_reference(admin_client, catalog):
    garbage = store_bytes(b"nobody uses me")
    response = admin_client.get(changelist_url(PackageBlob), {"referenced": "no"})
    assert [row.pk for row in listed(response)] == [garbage.pk]
    response = admin_client.get(changelist_url(PackageBlob), {"referenced": "yes"})
    assert [row.pk for row in listed(response)] == [catalog.blob.pk]


def test_blob_list_sorts_by_reference_count(admin_client, catalog):
    garbage = store_bytes(b"nobody uses me")
    model_admin = admin.site.get_model_admin(PackageBlob)
    column = model_admin.list_display.index("reference_count")
    response = admin_client.get(changelist_url(PackageBlob), {"o": str(column)})
    assert [row.pk for row in listed(response)] == [garbage.pk, catalog.blob.pk]


def test_blob_list_queries_do_not_grow_with_rows(admin_client, catalog, alice, bob):
    add_rows(catalog, alice, bob, range(1))
    few = count_changelist_queries(admin_client, PackageBlob)
    add_rows(catalog, alice, bob, range(1, 6))
    store_bytes(b"garbage")
    assert count_changelist_queries(admin_client, PackageBlob) == few


# Uploads: the stale filter and the cancel action.


def age_upload(upload, hours: float) -> None:
    BlobUpload.objects.filter(pk=upload.pk).update(updated=timezone.now() - timedelta(hours=hours))


def test_stale_filter_finds_uploads_idle_for_over_a_day(admin_client, catalog):
    old = BlobUpload.objects.create(
        owner=catalog.org, package_name="old", storage_key="uploads/old"
    )
    age_upload(old, 25)
    recent = BlobUpload.objects.create(
        owner=catalog.org, package_name="new", storage_key="uploads/new"
    )
    age_upload(recent, 23)
    response = admin_client.get(changelist_url(BlobUpload), {"stale": "yes"})
    assert [row.pk for row in listed(response)] == [old.pk]
    response = admin_client.get(changelist_url(BlobUpload), {"stale": "no"})
    assert {row.pk for row in listed(response)} == {recent.pk, catalog.upload.pk}
    model_admin = admin.site.get_model_admin(BlobUpload)
    old.refresh_from_db()
    recent.refresh_from_db()
    assert model_admin.stale(old) is True
    assert model_admin.stale(recent) is False


def test_cancel_selected_uploads_discards_them_through_the_service(
    admin_client, catalog, store, monkeypatch, django_capture_on_commit_callbacks
):
    other = BlobUpload.objects.create(
        owner=catalog.org, package_name="other", storage_key="uploads/o"
    )
    kept = BlobUpload.objects.create(
        owner=catalog.org, package_name="kept", storage_key="uploads/k"
    )
    for upload in (catalog.upload, other, kept):
        store.save(upload.storage_key, io.BytesIO(b"partial"))
        BlobUpload.objects.filter(pk=upload.pk).update(bytes_received=7)
    discarded = []
    real_discard = upload_services.discard_upload

    def spy(upload, **kwargs):
        discarded.append(upload.pk)
        real_discard(upload, **kwargs)

    monkeypatch.setattr(upload_services, "discard_upload", spy)
    model_admin = admin.site.get_model_admin(BlobUpload)
    assert "Cancel selected uploads" in str(model_admin.cancel_uploads.short_description)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            changelist_url(BlobUpload),
            {"action": "cancel_uploads", "_selected_action": [catalog.upload.pk, other.pk]},
        )
    assert response.status_code == 302
    assert sorted(discarded) == sorted([catalog.upload.pk, other.pk])
    assert list(BlobUpload.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not store.exists(catalog.upload.storage_key)
    assert not store.exists(other.storage_key)
    assert store.exists(kept.storage_key)
    assert "Cancelled 2 upload(s)." in [str(m) for m in get_messages(response.wsgi_request)]


def test_cancel_action_is_offered_on_the_upload_list(admin_client, catalog):
    response = admin_client.get(changelist_url(BlobUpload))
    choices = dict(response.context["action_form"].fields["action"].choices)
    assert choices["cancel_uploads"] == "Cancel selected uploads"


def test_owner_page_shows_usage_against_the_limits(admin_client, alice, settings):
    settings.PACKAGES = {"QUOTA_OWNER_VERSIONS": 7, "QUOTA_OWNER_BYTES": -1}
    blob = blobs.store_blob(io.BytesIO(b"x" * 2048)).blob
    package = versions.get_or_create_package(alice.package_owner, "container", "app")
    version, _ = versions.get_or_create_version(package, "1.0")
    versions.add_file(version, blob, "layer")
    page = admin_client.get(f"/admin/packages_core/owner/{alice.package_owner.pk}/change/")
    text = page.content.decode()
    assert "1 version(s) of 7" in text
    assert "2.0\xa0KB of unlimited" in text


# An organisation keeps an admin, and a file goes with its version (issue 16).


def test_the_last_admins_role_cannot_be_lowered(admin_client, catalog):
    membership = catalog.membership  # alice, acme's only admin
    data = {"owner": str(catalog.org.pk), "user": str(membership.user_id), "role": "read"}

    response = admin_client.post(change_url(membership), data)

    assert response.status_code == 200
    assert "last admin of acme" in str(response.context["adminform"].form.errors["role"])
    assert Membership.objects.get(pk=membership.pk).role == "admin"


def test_the_last_admin_cannot_be_deleted_but_another_member_can(admin_client, catalog, bob):
    other = owner_services.set_membership(catalog.org, bob, "write")

    def delete_selected(*memberships):
        selected = [m.pk for m in memberships]
        return admin_client.post(
            changelist_url(Membership),
            {"action": "delete_selected", "_selected_action": selected, "post": "yes"},
        )

    assert admin_client.post(delete_url(catalog.membership), {"post": "yes"}).status_code == 403
    assert delete_selected(catalog.membership, other).status_code == 403  # all or nothing
    assert catalog.org.memberships.count() == 2
    assert delete_selected(other).status_code == 302
    assert list(catalog.org.memberships.values_list("user__username", flat=True)) == ["alice"]


def test_the_owner_page_keeps_an_admin_among_its_members(admin_client, catalog):
    page = admin_client.get(change_url(catalog.org))
    data = inline_management_data(page, memberships=1)
    data.update(
        {
            "name": "acme",
            "kind": "org",
            "user": "",
            "visibility": "public",
            "description": "",
            "memberships-0-id": str(catalog.membership.pk),
            "memberships-0-owner": str(catalog.org.pk),
            "memberships-0-user": str(catalog.membership.user_id),
            "memberships-0-role": "write",
        }
    )

    response = admin_client.post(change_url(catalog.org), data)

    assert response.status_code == 200
    assert "would have no admin left" in str(
        response.context["inline_admin_formsets"][0].formset.non_form_errors()
    )
    assert Membership.objects.get(pk=catalog.membership.pk).role == "admin"


def test_a_lead_file_goes_only_with_its_version(admin_client, catalog):
    response = admin_client.post(delete_url(catalog.file), {"post": "yes"})

    assert "delete the version" in response.content.decode()
    assert PackageFile.objects.filter(pk=catalog.file.pk).exists()

"""Owner pages: an owner's images (search, pages), an organisation's members, and who sees them."""

import pytest
from django.urls import reverse

from packages_core.models.owners import Visibility
from packages_core.services import owners
from tests.registry_helpers import ALICE
from tests.web_helpers import CAROL, page, push_by_digest, push_distinct, push_tags, set_visibility

pytestmark = pytest.mark.django_db


def image_names(response) -> list[str]:
    return [image.name for image in response.context["images"]]


# An owner's images


def test_owner_page_lists_images_with_latest_tag_size_and_push_time(client, web_image):
    push_distinct(client, "alice/web", "2.0", 1)

    response = page(client, "owner_packages", "alice")

    assert response.status_code == 200
    [image] = response.context["images"]
    assert (image.name, image.latest_tag, image.version_count) == ("web", "2.0", 2)
    assert image.size > 1024
    assert image.last_pushed is not None
    assert reverse("registry_web:package", args=["alice", "web"]) in response.text
    assert "<code>2.0</code>" in response.text
    assert "just now" in response.text


def test_image_size_counts_shared_blobs_once(client, alice):
    push_tags(client, "alice/app", ["a", "b", "c"])
    one = push_tags(client, "alice/one", ["a"])
    assert one

    sizes = {i.name: i.size for i in page(client, "owner_packages", "alice").context["images"]}

    assert sizes["app"] == sizes["one"]


def test_owner_page_lists_the_most_recently_pushed_image_first(client, alice):
    push_tags(client, "alice/old", ["v1"])
    push_tags(client, "alice/new", ["v1"])

    assert image_names(page(client, "owner_packages", "alice")) == ["new", "old"]


def test_image_with_only_untagged_versions_has_no_latest_tag(client, alice):
    push_by_digest(client, "alice/bare", b"{}", [b"one"])

    [image] = page(client, "owner_packages", "alice").context["images"]

    assert image.latest_tag == ""


def test_images_with_only_staged_blobs_are_not_listed(client, alice):
    from tests.registry_helpers import push_blob

    push_blob(client, "alice/unfinished", b"a blob")

    assert image_names(page(client, "owner_packages", "alice")) == []
    assert "alice has no images yet" in page(client, "owner_packages", "alice").text


def test_search_finds_images_by_part_of_their_name(client, alice):
    for name in ("web", "webhooks", "tools/web-cli", "db"):
        push_tags(client, f"alice/{name}", ["v1"])

    response = page(client, "owner_packages", "alice", query="?q=WEB")

    assert sorted(image_names(response)) == ["tools/web-cli", "web", "webhooks"]
    assert 'value="WEB"' in response.text


def test_search_without_matches_says_so(client, web_image):
    response = page(client, "owner_packages", "alice", query="?q=nothing")

    assert image_names(response) == []
    assert "No image matches “nothing”" in response.text


def test_owner_images_are_paginated(client, alice):
    for n in range(23):
        push_tags(client, f"alice/img{n:02}", ["v1"])

    first = page(client, "owner_packages", "alice")
    second = page(client, "owner_packages", "alice", query="?page=2")

    assert len(first.context["images"]) == 20
    assert len(second.context["images"]) == 3


def test_owner_page_queries_do_not_grow_with_its_images(
    client, alice, django_assert_max_num_queries
):
    for n in range(12):
        push_tags(client, f"alice/img{n:02}", ["v1", "v2"])

    with django_assert_max_num_queries(10):
        assert len(page(client, "owner_packages", "alice").context["images"]) == 12


def test_owner_page_of_an_org_lists_its_images(client, org):
    push_tags(client, "acme/app", ["v1"], auth=ALICE)

    response = page(client, "owner_packages", "acme")

    assert image_names(response) == ["app"]
    assert "Organisation" in response.text
    assert reverse("registry_web:owner_members", args=["acme"]) in response.text


def test_owner_names_ignore_case(client, web_image):
    assert page(client, "owner_packages", "ALICE").status_code == 200


def test_unknown_owner_is_404(client, db):
    assert page(client, "owner_packages", "nobody").status_code == 404


def test_owner_address_redirects_to_its_packages(client, alice):
    response = page(client, "owner", "Alice")

    assert response.status_code == 302
    assert response.url == reverse("registry_web:owner_packages", args=["alice"])


# Members


def test_org_members_page_lists_members_and_roles(client, org, bob, reader_of):
    reader_of(bob, "write")

    response = page(client, "owner_members", "acme")

    assert response.status_code == 200
    assert [(m["name"], m["role_label"]) for m in response.context["members"]] == [
        ("alice", "Admin"),
        ("bob", "Write"),
    ]
    assert reverse("registry_web:owner_packages", args=["bob"]) in response.text


def test_members_link_only_to_owners_the_visitor_may_see(client, org, carol):
    owners.set_membership(org, carol, "read")

    response = page(client, "owner_members", "acme")

    assert "carol" in response.text
    assert reverse("registry_web:owner_packages", args=["carol"]) not in response.text


def test_users_have_no_members_page(client, alice):
    assert page(client, "owner_members", "alice").status_code == 404


def test_private_org_members_are_404_to_outsiders(client, org, bob):
    set_visibility(org, Visibility.PRIVATE)

    assert page(client, "owner_members", "acme").status_code == 404
    client.force_login(bob)
    assert page(client, "owner_members", "acme").status_code == 404


def test_private_org_members_are_visible_to_members(client, org, bob, reader_of):
    set_visibility(org, Visibility.PRIVATE)
    reader_of(bob, "read")
    client.force_login(bob)

    assert page(client, "owner_members", "acme").status_code == 200


# Visibility: every owner page, as the registry decides


def owner_pages(owner: str, image: str, tag: str) -> list[str]:
    return [
        reverse("registry_web:owner", args=[owner]),
        reverse("registry_web:owner_packages", args=[owner]),
        reverse("registry_web:package", args=[owner, image]),
        reverse("registry_web:package_version", args=[owner, image, tag]),
        reverse("registry_web:package_versions", args=[owner, image]),
    ]


def statuses(client, urls) -> set[int]:
    return {client.get(url).status_code for url in urls}


def test_private_user_pages_are_404_to_anonymous(client, carol_image):
    assert statuses(client, owner_pages("carol", "secret", "1")) == {404}


def test_private_user_pages_are_404_to_other_users(client, carol_image, bob):
    client.force_login(bob)

    assert statuses(client, owner_pages("carol", "secret", "1")) == {404}


def test_private_user_pages_are_visible_to_the_user(client, carol_image, carol):
    client.force_login(carol)

    assert statuses(client, owner_pages("carol", "secret", "1")) <= {200, 302}
    assert page(client, "package_version", "carol", "secret", "1").status_code == 200


def test_private_user_pages_are_visible_to_site_admins(client, carol_image, site_admin):
    client.force_login(site_admin)

    assert page(client, "package_version", "carol", "secret", "1").status_code == 200
    assert page(client, "owner_packages", "carol").status_code == 200


def test_private_org_pages_are_404_to_outsiders_and_visible_to_members(client, org, bob, reader_of):
    push_tags(client, "acme/app", ["v1"], auth=ALICE)
    set_visibility(org, Visibility.PRIVATE)
    urls = owner_pages("acme", "app", "v1")

    assert statuses(client, urls) == {404}
    client.force_login(bob)
    assert statuses(client, urls) == {404}
    reader_of(bob, "read")
    assert statuses(client, urls) <= {200, 302}


def test_limited_owner_pages_need_sign_in(client, web_image, alice, bob):
    set_visibility(alice.package_owner, Visibility.LIMITED)
    urls = owner_pages("alice", "web", "1.0")

    assert statuses(client, urls) == {404}
    response = page(client, "owner_packages", "alice")
    assert "or you may not see it" in response.text
    assert reverse("registry_web:login") + "?next=/alice/-/packages" in response.text
    client.force_login(bob)
    assert statuses(client, urls) <= {200, 302}


def test_require_signin_view_hides_public_owners_from_anonymous(client, web_image, settings, bob):
    settings.PACKAGES = {**settings.PACKAGES, "REQUIRE_SIGNIN_VIEW": True}

    assert statuses(client, owner_pages("alice", "web", "1.0")) == {404}
    client.force_login(bob)
    assert page(client, "owner_packages", "alice").status_code == 200


def test_inactive_users_see_only_what_anonymous_sees(client, carol_image, carol):
    carol.is_active = False
    carol.save()
    client.force_login(carol)

    assert page(client, "owner_packages", "carol").status_code == 404


def test_private_owner_can_push_and_see_the_image_pushed(client, carol):
    push_tags(client, "carol/more", ["v1"], auth=CAROL)
    client.force_login(carol)

    assert image_names(page(client, "owner_packages", "carol")) == ["more"]


def test_the_owner_named_admin_has_pages_and_the_django_admin_stays_at_admin(client, db):
    from packages_core.services.owners import create_user

    create_user("admin", password="pw", is_admin=True)
    assert client.get("/admin/-/packages").status_code == 200
    assert client.get("/admin/").status_code == 302  # the Django admin's sign-in

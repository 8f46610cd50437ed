"""An image's versions page (filter, sort, pages) and deleting a version."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from packages_core.models import PackageVersion
from tests.registry_helpers import ALICE, send
from tests.web_helpers import page, push_distinct, push_tags

pytestmark = pytest.mark.django_db


def names(response) -> list[str]:
    return [row.version for row in response.context["versions"]]


def versions_page(client, query: str = "", image: str = "app"):
    return page(client, "package_versions", "alice", image, query=query)


@pytest.fixture
def app(client, alice):
    """alice/app: tags b, a, c pushed in that order, and one untagged manifest."""
    push_distinct(client, "alice/app", "b", 1)
    push_distinct(client, "alice/app", "a", 2)
    old = push_distinct(client, "alice/app", "c", 3)
    push_distinct(client, "alice/app", "c", 4)  # c moves on: its old manifest stays untagged
    return old.digest


# Listing


def test_versions_page_lists_tags_and_untagged_manifests_newest_first(client, app):
    response = versions_page(client)

    assert response.status_code == 200
    assert names(response) == ["c", app, "a", "b"]
    assert app[:19] in response.text


def test_versions_page_rows_show_digest_size_and_platform(client, app):
    row = versions_page(client).context["versions"][0]

    assert row.digest.startswith("sha256:")
    assert row.size > 0
    assert row.summary == "linux/amd64"
    assert row.kind == "image"


def test_filter_tagged(client, app):
    assert names(versions_page(client, "?type=tagged")) == ["c", "a", "b"]


def test_filter_untagged(client, app):
    assert names(versions_page(client, "?type=untagged")) == [app]


def test_unknown_filter_shows_everything(client, app):
    assert len(names(versions_page(client, "?type=bogus"))) == 4


def test_sort_oldest_first(client, app):
    assert names(versions_page(client, "?type=tagged&sort=oldest")) == ["b", "a", "c"]


def test_sort_by_name(client, app):
    assert names(versions_page(client, "?type=tagged&sort=name")) == ["a", "b", "c"]


def test_a_tag_pushed_again_is_newest_again(client, app):
    push_distinct(client, "alice/app", "b", 5)

    assert names(versions_page(client, "?type=tagged"))[0] == "b"


def test_versions_are_paginated_twenty_a_page(client, alice):
    push_tags(client, "alice/many", [f"t{n:02}" for n in range(45)])

    first = versions_page(client, "?sort=name", image="many")
    third = versions_page(client, "?sort=name&page=3", image="many")

    assert names(first) == [f"t{n:02}" for n in range(20)]
    assert names(third) == [f"t{n:02}" for n in range(40, 45)]
    assert "Page 1 of 3" in first.text
    # The next-page link keeps the sort order.
    assert "?sort=name&amp;page=2" in first.text


def test_versions_page_queries_do_not_grow_with_its_rows(
    client, alice, django_assert_max_num_queries
):
    push_tags(client, "alice/many", [f"t{n:02}" for n in range(20)])

    with django_assert_max_num_queries(10):
        assert len(names(versions_page(client, image="many"))) == 20


def test_page_past_the_end_shows_the_last_page(client, alice):
    push_tags(client, "alice/many", [f"t{n:02}" for n in range(25)])

    assert versions_page(client, "?page=99", image="many").context["page"].number == 2


def test_versions_page_of_unknown_image_is_404(client, alice):
    assert versions_page(client, image="nothing").status_code == 404


def test_versions_page_of_nested_image(client, alice):
    push_tags(client, "alice/a/b", ["v1"])

    response = client.get("/alice/-/packages/container/a/b/-/versions")

    assert response.status_code == 200
    assert names(response) == ["v1"]


def test_versions_page_never_lists_staging(client, app):
    assert "~staging" not in names(versions_page(client))
    assert PackageVersion.objects.filter(version="~staging").exists()


def test_dates_follow_the_last_push(client, app):
    PackageVersion.objects.filter(version="b").update(updated=timezone.now() + timedelta(days=1))

    assert names(versions_page(client))[0] == "b"


# Deleting a version


def delete_url(reference: str, image: str = "app") -> str:
    return reverse("registry_web:package_version_delete", args=["alice", image, reference])


def test_writer_gets_a_confirmation_page(client, app, alice):
    client.force_login(alice)

    response = client.get(delete_url("a"))

    assert response.status_code == 200
    assert "Delete this version?" in response.text
    assert 'method="post"' in response.text
    assert PackageVersion.objects.filter(version="a").exists()


def test_writer_deletes_with_post_and_returns_to_the_versions(client, app, alice):
    client.force_login(alice)

    response = client.post(delete_url("a"))

    assert response.status_code == 302
    assert response.url == reverse("registry_web:package_versions", args=["alice", "app"])
    assert not PackageVersion.objects.filter(package__name="app", version="a").exists()
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Deleted alice/app a."]


def test_the_versions_page_says_what_was_deleted(client, app, alice):
    client.force_login(alice)

    response = client.post(delete_url("a"), follow=True)

    assert "Deleted alice/app a." in response.text
    assert names(response) == ["c", app, "b"]


def test_deleted_tag_is_gone_from_the_registry(client, app, alice):
    client.force_login(alice)
    client.post(delete_url("a"))

    assert send(client, "GET", "/v2/alice/app/manifests/a", auth=ALICE).status_code == 404
    assert send(client, "GET", "/v2/alice/app/manifests/b", auth=ALICE).status_code == 200


def test_writer_deletes_an_untagged_manifest_by_digest(client, app, alice):
    client.force_login(alice)

    assert client.post(delete_url(app)).status_code == 302

    assert not PackageVersion.objects.filter(version=app).exists()


def test_deleting_the_last_version_returns_to_the_owner(client, alice):
    push_tags(client, "alice/solo", ["only"])
    client.force_login(alice)

    response = client.post(delete_url("only", image="solo"))

    assert response.url == reverse("registry_web:owner_packages", args=["alice"])


def test_org_writer_may_delete(client, org, bob, reader_of):
    push_tags(client, "acme/app", ["v1"], auth=ALICE)
    reader_of(bob, "write")
    client.force_login(bob)

    response = client.post(
        reverse("registry_web:package_version_delete", args=["acme", "app", "v1"])
    )

    assert response.status_code == 302
    assert not PackageVersion.objects.filter(version="v1").exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_org_reader_is_forbidden(client, org, bob, reader_of, method):
    push_tags(client, "acme/app", ["v1"], auth=ALICE)
    reader_of(bob, "read")
    client.force_login(bob)

    response = getattr(client, method)(
        reverse("registry_web:package_version_delete", args=["acme", "app", "v1"])
    )

    assert response.status_code == 403
    assert PackageVersion.objects.filter(version="v1").exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_other_users_may_not_delete(client, app, bob, method):
    client.force_login(bob)

    response = getattr(client, method)(delete_url("a"))

    assert response.status_code == 403
    assert PackageVersion.objects.filter(version="a").exists()


def test_anonymous_is_sent_to_sign_in(client, app):
    response = client.post(delete_url("a"))

    assert response.status_code == 302
    assert response.url.startswith(reverse("registry_web:login") + "?next=")
    assert PackageVersion.objects.filter(version="a").exists()


def test_private_owners_versions_are_404_to_outsiders(client, carol_image, bob):
    client.force_login(bob)
    url = reverse("registry_web:package_version_delete", args=["carol", "secret", "1"])

    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert PackageVersion.objects.filter(version="1").exists()


def test_deleting_an_unknown_version_is_404(client, app, alice):
    client.force_login(alice)

    assert client.post(delete_url("nope")).status_code == 404


def test_site_admin_may_delete(client, app, site_admin):
    client.force_login(site_admin)

    assert client.post(delete_url("a")).status_code == 302
    assert not PackageVersion.objects.filter(version="a").exists()

"""The front page, signing in and out, and the site header."""

import pytest
from django.urls import reverse

from packages_core.models.owners import Visibility
from tests.registry_helpers import ALICE, basic_auth
from tests.web_helpers import CAROL, page, push_tags, set_visibility

pytestmark = pytest.mark.django_db


def owner_names(response) -> list[str]:
    return [owner.name for owner in response.context["owners"]]


def test_home_lists_the_owners_the_visitor_may_see(client, alice, bob, org, carol):
    set_visibility(bob.package_owner, Visibility.LIMITED)

    response = page(client, "home")

    assert response.status_code == 200
    assert owner_names(response) == ["acme", "alice"]
    assert reverse("registry_web:owner_packages", args=["alice"]) in response.text


def test_signed_in_users_also_see_limited_owners_and_their_own(client, alice, bob, carol):
    set_visibility(bob.package_owner, Visibility.LIMITED)
    client.force_login(carol)

    assert owner_names(page(client, "home")) == ["alice", "bob", "carol"]


def test_site_admins_see_every_owner_but_system_accounts(client, alice, carol, site_admin):
    client.force_login(site_admin)

    assert owner_names(page(client, "home")) == ["alice", "carol"]


def test_site_admins_without_images_are_not_listed(client, alice, site_admin):
    # Such as the `admin` that ensureadmin makes: an account for running the site.
    assert owner_names(page(client, "home")) == ["alice"]


def test_site_admins_with_images_are_listed(client, alice, site_admin):
    push_tags(client, "root/tools", ["v1"], auth=basic_auth("root", "root-pw"))

    [root] = [owner for owner in page(client, "home").context["owners"] if owner.name == "root"]

    assert root.image_count == 1


def test_staff_who_are_not_site_admins_are_listed(client, alice, bob):
    bob.is_staff = True
    bob.save()

    assert owner_names(page(client, "home")) == ["alice", "bob"]


def test_new_organisation_shows_to_who_may_create_one(client, alice, settings):
    new_org = reverse("registry_web:org_new")
    assert new_org not in page(client, "home").text
    client.force_login(alice)
    assert new_org in page(client, "home").text
    settings.PACKAGES = {**settings.PACKAGES, "ALLOW_ORG_CREATION": False}
    assert new_org not in page(client, "home").text


def test_home_shows_recently_pushed_images_of_visible_owners(client, alice, carol):
    push_tags(client, "alice/web", ["v1"], auth=ALICE)
    push_tags(client, "carol/secret", ["v1"], auth=CAROL)

    response = page(client, "home")

    assert [(i.owner, i.name) for i in response.context["recent"]] == [("alice", "web")]
    assert reverse("registry_web:package", args=["alice", "web"]) in response.text
    assert "carol/secret" not in response.text


def test_home_counts_each_owners_images(client, alice):
    push_tags(client, "alice/a", ["v1"], auth=ALICE)
    push_tags(client, "alice/b", ["v1", "v2"], auth=ALICE)

    [owner] = page(client, "home").context["owners"]

    assert owner.image_count == 2


# Signing in and out


def test_sign_in_page_renders(client, db):
    response = client.get(reverse("registry_web:login"))

    assert response.status_code == 200
    assert 'name="username"' in response.text
    assert 'name="password"' in response.text


def test_signing_in_goes_to_the_next_page(client, alice):
    response = client.post(
        reverse("registry_web:login"),
        {"username": "alice", "password": "alice-pw", "next": "/-/settings/tokens"},
    )

    assert response.status_code == 302
    assert response.url == "/-/settings/tokens"
    assert client.get(reverse("registry_web:settings_tokens")).status_code == 200


def test_wrong_password_shows_an_error(client, alice):
    response = client.post(reverse("registry_web:login"), {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert "didn't match" in response.text


def test_a_wrong_password_is_logged_without_it(client, alice, caplog):
    with caplog.at_level("INFO", logger="registry.web.views.signin"):
        client.post(reverse("registry_web:login"), {"username": "alice", "password": "nope"})

    assert caplog.messages == ["pages: sign-in of 'alice' from 127.0.0.1 refused"]


def test_signing_out_is_a_post(client, alice):
    client.force_login(alice)

    assert client.get(reverse("registry_web:logout")).status_code == 405
    response = client.post(reverse("registry_web:logout"))

    assert response.status_code == 302
    assert response.url == reverse("registry_web:home")
    assert client.get(reverse("registry_web:settings_tokens")).status_code == 302


def test_header_offers_sign_in_to_visitors(client, db):
    text = page(client, "home").text

    assert f'href="{reverse("registry_web:login")}?next=/"' in text
    assert "Sign out" not in text


def test_header_of_signed_in_users_has_settings_their_packages_and_sign_out(client, alice):
    client.force_login(alice)

    text = page(client, "home").text

    assert f'href="{reverse("registry_web:settings_tokens")}"' in text
    assert f'href="{reverse("registry_web:owner_packages", args=["alice"])}"' in text
    assert f'action="{reverse("registry_web:logout")}"' in text
    assert "Sign out" in text
    assert reverse("admin:index") not in text


def test_header_links_staff_to_the_admin(client, site_admin):
    client.force_login(site_admin)

    assert reverse("admin:index") in page(client, "home").text


# Routes


def test_owner_routes_do_not_shadow_the_site_routes(client, db):
    assert client.get("/v2/").status_code == 401
    assert client.get("/admin/").status_code == 302
    assert client.get("/login/").status_code == 200


def test_unknown_pages_are_404_pages_of_the_site(client, db):
    response = client.get("/nobody/-/packages")

    assert response.status_code == 404
    assert "Not found" in response.text


@pytest.mark.parametrize(
    ("login_url", "expected"),
    [("registry_web:login", "/login/"), ("/accounts/login/", "/accounts/login/")],
)
def test_sign_in_links_go_to_the_sites_login_url(client, settings, login_url, expected):
    settings.LOGIN_URL = login_url

    response = page(client, "home")

    assert f'href="{expected}?next=/"' in response.text
    assert f'href="{expected}">Sign in</a> to see more' in response.text

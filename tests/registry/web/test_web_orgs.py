"""Organisations on the web: creating one, its settings, its members and their roles,
and leaving it; who may do each, and what a refusal looks like.
"""

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from packages_core.models import Membership, Owner
from packages_core.models.owners import Visibility
from packages_core.services import owners
from tests.web_helpers import page, set_visibility

pytestmark = pytest.mark.django_db


def url(name: str, *args) -> str:
    return reverse(f"registry_web:{name}", args=args)


def said(response) -> list[str]:
    """The messages the next page would show."""
    return [str(message) for message in get_messages(response.wsgi_request)]


def roles(org) -> dict[str, str]:
    return {m.user.get_username(): m.role for m in org.memberships.select_related("user")}


def membership(org, user) -> Membership:
    return Membership.objects.get(owner=org, user=user)


@pytest.fixture
def alice_signed_in(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def dave(db):
    return owners.create_user("dave", password="dave-pw")


# Creating an organisation


def new_org_data(**fields) -> dict:
    return {"name": "acme", "visibility": "public", "description": "", **fields}


def test_new_org_form_asks_anonymous_visitors_to_sign_in(client, db):
    response = client.get(url("org_new"))

    assert response.status_code == 302
    assert response.url.startswith(url("login"))


def test_new_org_form_shows_to_signed_in_users(alice_signed_in):
    response = alice_signed_in.get(url("org_new"))

    assert response.status_code == 200
    assert 'name="name"' in response.text
    assert 'name="visibility"' in response.text


def test_creating_an_org_makes_the_creator_its_admin(alice_signed_in):
    data = new_org_data(visibility="limited", description="Shared tools")

    response = alice_signed_in.post(url("org_new"), data)

    assert response.status_code == 302
    assert response.url == url("owner_members", "acme")
    org = Owner.objects.get(name="acme")
    assert (org.kind, org.visibility, org.description) == ("org", "limited", "Shared tools")
    assert roles(org) == {"alice": "admin"}
    assert said(response) == ["Created the organisation acme; you are its admin."]


def test_the_new_org_page_says_what_is_wrong_with_a_name(alice_signed_in, alice):
    for name, problem in [
        ("no spaces", "is not a valid name"),
        ("alice", "already taken"),
        ("V2", "is reserved"),
    ]:
        response = alice_signed_in.post(url("org_new"), new_org_data(name=name))

        assert response.status_code == 200
        assert problem in response.text
    assert not Owner.objects.filter(kind=Owner.Kind.ORG).exists()


def test_the_new_org_page_refuses_an_unknown_visibility(alice_signed_in):
    response = alice_signed_in.post(url("org_new"), new_org_data(visibility="secret"))

    assert response.status_code == 200
    assert response.context["form"].errors["visibility"]
    assert not Owner.objects.filter(name="acme").exists()


def test_where_only_admins_create_orgs_users_get_403(alice_signed_in, settings):
    settings.PACKAGES = {**settings.PACKAGES, "ALLOW_ORG_CREATION": False}

    assert alice_signed_in.get(url("org_new")).status_code == 403
    assert alice_signed_in.post(url("org_new"), new_org_data()).status_code == 403
    assert not Owner.objects.filter(name="acme").exists()


def test_where_only_admins_create_orgs_site_admins_still_do(client, site_admin, settings):
    settings.PACKAGES = {**settings.PACKAGES, "ALLOW_ORG_CREATION": False}
    client.force_login(site_admin)

    assert client.post(url("org_new"), new_org_data()).status_code == 302
    assert roles(Owner.objects.get(name="acme")) == {"root": "admin"}


def test_forms_need_the_csrf_token(alice, org):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)

    assert strict.post(url("org_new"), new_org_data(name="other")).status_code == 403
    assert strict.post(url("member_leave", "acme")).status_code == 403
    assert not Owner.objects.filter(name="other").exists()


# The organisation's settings


def test_org_admins_change_visibility_and_description(alice_signed_in, org):
    response = alice_signed_in.post(
        url("org_settings", "acme"), {"visibility": "private", "description": "Ours"}
    )

    assert response.status_code == 302
    assert response.url == url("org_settings", "acme")
    org.refresh_from_db()
    assert (org.visibility, org.description) == ("private", "Ours")
    assert said(response) == ["Saved the settings of acme."]
    assert "Ours" in page(alice_signed_in, "owner_packages", "acme").text


def test_org_settings_page_shows_the_current_values(alice_signed_in, org):
    owners.update_org(org, visibility="limited", description="Shared tools")

    response = page(alice_signed_in, "org_settings", "acme")

    assert response.status_code == 200
    assert response.context["form"].initial == {
        "visibility": "limited",
        "description": "Shared tools",
    }
    assert url("owner_cleanup", "acme") in response.text


def test_org_settings_refuse_members_who_are_not_admins(client, org, bob, reader_of):
    reader_of(bob, "write")
    client.force_login(bob)

    assert page(client, "org_settings", "acme").status_code == 403
    data = {"visibility": "private", "description": ""}
    assert client.post(url("org_settings", "acme"), data).status_code == 403
    org.refresh_from_db()
    assert org.visibility == Visibility.PUBLIC


def test_org_settings_of_a_private_org_are_404_to_outsiders(client, org, bob):
    set_visibility(org, Visibility.PRIVATE)
    client.force_login(bob)

    assert page(client, "org_settings", "acme").status_code == 404


def test_org_settings_ask_anonymous_visitors_to_sign_in(client, org):
    response = page(client, "org_settings", "acme")

    assert response.status_code == 302
    assert response.url.startswith(url("login"))


def test_site_admins_change_any_orgs_settings(client, org, site_admin):
    client.force_login(site_admin)

    response = client.post(url("org_settings", "acme"), {"visibility": "limited"})

    assert response.status_code == 302
    org.refresh_from_db()
    assert org.visibility == Visibility.LIMITED


def test_users_have_no_org_settings(alice_signed_in):
    assert page(alice_signed_in, "org_settings", "alice").status_code == 404


def test_an_orgs_settings_address_leads_to_its_org_settings(alice_signed_in, org):
    response = page(alice_signed_in, "owner_settings", "acme")

    assert response.status_code == 302
    assert response.url == url("org_settings", "acme")
    assert url("org_settings", "acme") in page(alice_signed_in, "owner_packages", "acme").text


# Members: adding, roles, removing


def test_admins_see_the_member_forms_and_readers_do_not(client, org, bob, reader_of):
    reader_of(bob, "read")
    client.force_login(bob)
    as_reader = page(client, "owner_members", "acme").text
    client.force_login(org.memberships.get(role="admin").user)
    as_admin = page(client, "owner_members", "acme").text

    for action in (url("member_add", "acme"), url("member_role", "acme", membership(org, bob).pk)):
        assert action in as_admin
        assert action not in as_reader


def test_admins_add_a_member_with_a_role(alice_signed_in, org, bob):
    response = alice_signed_in.post(url("member_add", "acme"), {"username": "bob", "role": "write"})

    assert response.status_code == 302
    assert response.url == url("owner_members", "acme")
    assert roles(org) == {"alice": "admin", "bob": "write"}
    assert said(response) == ["Added bob to acme as Write."]


def test_adding_an_unknown_user_says_so(alice_signed_in, org):
    response = alice_signed_in.post(
        url("member_add", "acme"), {"username": "nobody", "role": "read"}
    )

    assert response.status_code == 400
    assert "No user named &#x27;nobody&#x27;" in response.text
    assert roles(org) == {"alice": "admin"}


def test_adding_a_member_again_says_to_change_the_role_instead(alice_signed_in, org, bob):
    owners.add_member(org, bob, "read")

    response = alice_signed_in.post(url("member_add", "acme"), {"username": "bob", "role": "admin"})

    assert response.status_code == 400
    assert "already a member of acme" in response.text
    assert roles(org)["bob"] == "read"


def test_adding_with_an_unknown_role_is_refused(alice_signed_in, org, bob):
    response = alice_signed_in.post(url("member_add", "acme"), {"username": "bob", "role": "boss"})

    assert response.status_code == 400
    assert "bob" not in roles(org)


def test_admins_change_a_members_role(alice_signed_in, org, bob):
    owners.add_member(org, bob, "read")

    response = alice_signed_in.post(
        url("member_role", "acme", membership(org, bob).pk), {"role": "admin"}
    )

    assert response.status_code == 302
    assert roles(org)["bob"] == "admin"
    assert said(response) == ["bob is now Admin in acme."]


def test_the_last_admin_is_not_demoted(alice_signed_in, org, alice):
    response = alice_signed_in.post(
        url("member_role", "acme", membership(org, alice).pk), {"role": "read"}
    )

    assert response.status_code == 302
    assert roles(org) == {"alice": "admin"}
    [message] = said(response)
    assert "'alice' is the last admin of acme" in message


def test_a_role_change_without_a_known_role_changes_nothing(alice_signed_in, org, bob):
    owners.add_member(org, bob, "read")

    response = alice_signed_in.post(
        url("member_role", "acme", membership(org, bob).pk), {"role": "root"}
    )

    assert response.status_code == 302
    assert roles(org)["bob"] == "read"
    assert said(response) == ["Choose one of the roles for bob."]


def test_admins_remove_a_member(alice_signed_in, org, bob):
    owners.add_member(org, bob, "write")

    response = alice_signed_in.post(url("member_remove", "acme", membership(org, bob).pk))

    assert response.status_code == 302
    assert roles(org) == {"alice": "admin"}
    assert said(response) == ["Removed bob from acme."]


def test_the_last_admin_is_not_removed(alice_signed_in, org, alice):
    response = alice_signed_in.post(url("member_remove", "acme", membership(org, alice).pk))

    assert roles(org) == {"alice": "admin"}
    assert "last admin" in said(response)[0]


def test_members_of_another_org_are_404(alice_signed_in, org, bob):
    other = owners.create_org("other", owner_user=bob)
    foreign = membership(other, bob).pk

    assert alice_signed_in.post(url("member_remove", "acme", foreign)).status_code == 404
    data = {"role": "read"}
    assert alice_signed_in.post(url("member_role", "acme", foreign), data).status_code == 404
    assert roles(other) == {"bob": "admin"}


@pytest.mark.parametrize("role", ["read", "write"])
def test_members_who_are_not_admins_may_not_manage_members(client, org, bob, dave, role):
    owners.add_member(org, bob, role)
    owners.add_member(org, dave, "read")
    client.force_login(bob)
    target = membership(org, dave).pk

    answers = [
        client.post(url("member_add", "acme"), {"username": "root", "role": "admin"}),
        client.post(url("member_role", "acme", target), {"role": "admin"}),
        client.post(url("member_remove", "acme", target)),
    ]

    assert [answer.status_code for answer in answers] == [403, 403, 403]
    assert roles(org) == {"alice": "admin", "bob": role, "dave": "read"}


def test_outsiders_get_404_for_a_private_orgs_members(client, org, bob, dave):
    owners.add_member(org, dave, "read")
    set_visibility(org, Visibility.PRIVATE)
    client.force_login(bob)

    assert client.post(url("member_remove", "acme", membership(org, dave).pk)).status_code == 404
    assert client.post(url("member_leave", "acme")).status_code == 404


def test_anonymous_visitors_are_asked_to_sign_in_to_manage(client, org, bob):
    owners.add_member(org, bob, "read")

    response = client.post(url("member_remove", "acme", membership(org, bob).pk))

    assert response.status_code == 302
    assert response.url.startswith(url("login"))
    assert "bob" in roles(org)


def test_managing_members_takes_posts_only(alice_signed_in, org, bob):
    owners.add_member(org, bob, "read")

    assert (
        alice_signed_in.get(url("member_remove", "acme", membership(org, bob).pk)).status_code
        == 405
    )
    assert "bob" in roles(org)


def test_site_admins_manage_any_orgs_members(client, org, bob, site_admin):
    client.force_login(site_admin)

    client.post(url("member_add", "acme"), {"username": "bob", "role": "admin"})
    client.post(url("member_role", "acme", membership(org, bob).pk), {"role": "write"})

    assert roles(org) == {"alice": "admin", "bob": "write"}


def test_users_have_no_members_to_manage(alice_signed_in, bob):
    response = alice_signed_in.post(url("member_add", "alice"), {"username": "bob", "role": "read"})

    assert response.status_code == 404


# Leaving


def test_a_member_leaves(client, org, bob):
    owners.add_member(org, bob, "write")
    client.force_login(bob)

    response = client.post(url("member_leave", "acme"))

    assert response.status_code == 302
    assert response.url == url("owner_members", "acme")
    assert roles(org) == {"alice": "admin"}
    assert said(response) == ["You left acme."]


def test_the_leave_button_shows_to_members_only(client, org, bob):
    assert url("member_leave", "acme") not in page(client, "owner_members", "acme").text
    owners.add_member(org, bob, "read")
    client.force_login(bob)
    assert url("member_leave", "acme") in page(client, "owner_members", "acme").text


def test_the_last_admin_may_not_leave(alice_signed_in, org):
    response = alice_signed_in.post(url("member_leave", "acme"))

    assert roles(org) == {"alice": "admin"}
    assert "make another member an admin first" in said(response)[0]


def test_an_admin_leaves_once_another_is_admin(alice_signed_in, org, bob):
    owners.add_member(org, bob, "admin")

    alice_signed_in.post(url("member_leave", "acme"))

    assert roles(org) == {"bob": "admin"}


def test_leaving_a_private_org_lands_on_the_front_page(client, org, bob):
    owners.add_member(org, bob, "read")
    set_visibility(org, Visibility.PRIVATE)
    client.force_login(bob)

    response = client.post(url("member_leave", "acme"))

    assert response.url == url("home")
    assert page(client, "owner_members", "acme").status_code == 404


def test_non_members_cannot_leave(client, org, bob):
    client.force_login(bob)

    assert client.post(url("member_leave", "acme")).status_code == 404


def test_leaving_needs_a_sign_in(client, org):
    response = client.post(url("member_leave", "acme"))

    assert response.status_code == 302
    assert response.url.startswith(url("login"))

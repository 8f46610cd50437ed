"""Organisations' memberships through the owners service: adding, changing roles,
removing, and never leaving an organisation without an admin.
"""

import pytest
from django.db import transaction

from packages_core import access
from packages_core.exceptions import InvalidInput, LastAdmin, NotFound
from packages_core.models import Membership, Owner
from packages_core.services import owners

pytestmark = pytest.mark.django_db


def roles(org) -> dict[str, str]:
    return {m.user.get_username(): m.role for m in org.memberships.select_related("user")}


def test_create_org_makes_its_creator_the_admin_with_a_description(alice):
    org = owners.create_org("acme", owner_user=alice, visibility="limited", description="Tools")

    assert (org.kind, org.visibility, org.description) == ("org", "limited", "Tools")
    assert roles(org) == {"alice": "admin"}


def test_add_member_gives_the_role(org, bob):
    owners.add_member(org, bob, "write")

    assert roles(org) == {"alice": "admin", "bob": "write"}


def test_add_member_refuses_a_member_already_there(org, bob):
    owners.add_member(org, bob, "read")

    with pytest.raises(InvalidInput, match="already a member"):
        owners.add_member(org, bob, "admin")
    assert roles(org)["bob"] == "read"


def test_add_member_refuses_an_unknown_role(org, bob):
    with pytest.raises(InvalidInput, match="Unknown role"):
        owners.add_member(org, bob, "owner")


def test_users_have_no_members(alice, bob):
    with pytest.raises(InvalidInput, match="not an organisation"):
        owners.add_member(alice.package_owner, bob, "read")
    with pytest.raises(InvalidInput, match="not an organisation"):
        owners.remove_membership(alice.package_owner, bob)


def test_set_membership_changes_a_role(org, bob):
    owners.add_member(org, bob, "read")

    owners.set_membership(org, bob, "admin")

    assert roles(org)["bob"] == "admin"


def test_the_last_admin_cannot_be_demoted(org, alice):
    with pytest.raises(LastAdmin, match="'alice' is the last admin of acme"):
        owners.set_membership(org, alice, "write")
    assert roles(org) == {"alice": "admin"}


def test_the_last_admin_cannot_be_removed(org, alice):
    with pytest.raises(LastAdmin, match="make another member an admin first"):
        owners.remove_membership(org, alice)
    assert roles(org) == {"alice": "admin"}


def test_an_admin_may_step_down_once_another_is_admin(org, alice, bob):
    owners.add_member(org, bob, "admin")

    owners.set_membership(org, alice, "read")
    assert roles(org) == {"alice": "read", "bob": "admin"}
    owners.remove_membership(org, alice)
    assert roles(org) == {"bob": "admin"}


def test_the_second_of_two_admins_is_the_last(org, alice, bob):
    owners.add_member(org, bob, "admin")
    owners.remove_membership(org, alice)

    with pytest.raises(LastAdmin):
        owners.remove_membership(org, bob)


def test_other_members_come_and_go_freely(org, bob):
    owners.add_member(org, bob, "write")
    owners.set_membership(org, bob, "read")

    owners.remove_membership(org, bob)

    assert roles(org) == {"alice": "admin"}


def test_removing_a_non_member_is_not_found(org, bob):
    with pytest.raises(NotFound, match="'bob' is not a member of acme"):
        owners.remove_membership(org, bob)


def test_an_org_without_admins_still_gains_and_loses_members(bob):
    # As the Django admin may leave one: no admin to protect.
    org = Owner.objects.create(name="loose", kind=Owner.Kind.ORG)

    owners.add_member(org, bob, "read")
    owners.remove_membership(org, bob)

    assert roles(org) == {}


def test_a_refused_change_inside_a_transaction_changes_nothing(org, alice, bob):
    owners.add_member(org, bob, "write")
    with pytest.raises(LastAdmin), transaction.atomic():
        owners.set_membership(org, alice, "read")

    assert Membership.objects.get(owner=org, user=alice).role == "admin"


def test_update_org_sets_visibility_and_description(org):
    owners.update_org(org, visibility="private", description="Secret things")

    org.refresh_from_db()
    assert (org.visibility, org.description) == ("private", "Secret things")


def test_update_org_refuses_an_unknown_visibility(org):
    with pytest.raises(InvalidInput, match="Unknown visibility"):
        owners.update_org(org, visibility="hidden", description="")


# Who may create organisations


def test_signed_in_users_may_create_orgs_by_default(alice, site_admin):
    assert access.can_create_org(alice)
    assert access.can_create_org(site_admin)


def test_anonymous_and_inactive_users_may_not_create_orgs(alice):
    from django.contrib.auth.models import AnonymousUser

    assert not access.can_create_org(AnonymousUser())
    alice.is_active = False
    assert not access.can_create_org(alice)


def test_the_site_may_keep_org_creation_to_its_admins(settings, alice, site_admin):
    settings.PACKAGES = {**settings.PACKAGES, "ALLOW_ORG_CREATION": False}

    assert not access.can_create_org(alice)
    assert access.can_create_org(site_admin)

"""The default access adapter: Gitea's read and write rules for user owners and organisations."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from packages_core.adapter import AccessAdapter, get_adapter
from packages_core.models import Membership, Owner
from packages_core.models.owners import Visibility
from packages_core.services import owners
from tests.conftest import as_in_a_test, module_transaction

pytestmark = pytest.mark.django_db

PUBLIC, LIMITED, PRIVATE = Visibility.PUBLIC, Visibility.LIMITED, Visibility.PRIVATE

# Who asks, per kind of owner. "self" owns the user owner; "inactive_self" is that
# owner deactivated; "inactive_member" is a deactivated admin of the organisation;
# "inactive_site_admin" is a deactivated superuser. Inactive users count as anonymous.
USER_OWNER_ACTORS = [
    "anonymous",
    "stranger",
    "self",
    "site_admin",
    "inactive_self",
    "inactive_site_admin",
]
ORG_ACTORS = [
    "anonymous",
    "stranger",
    "reader",
    "writer",
    "org_admin",
    "site_admin",
    "inactive_member",
    "inactive_site_admin",
]

CAN_READ = {
    ("user", PUBLIC): set(USER_OWNER_ACTORS),
    ("user", LIMITED): {"stranger", "self", "site_admin"},
    ("user", PRIVATE): {"self", "site_admin"},
    ("org", PUBLIC): set(ORG_ACTORS),
    ("org", LIMITED): {"stranger", "reader", "writer", "org_admin", "site_admin"},
    ("org", PRIVATE): {"reader", "writer", "org_admin", "site_admin"},
}
CAN_WRITE = {
    "user": {"self", "site_admin"},
    "org": {"writer", "org_admin", "site_admin"},
}
# With REQUIRE_SIGNIN_VIEW nobody reads without signing in; the rest stays as it was.
CAN_READ_SIGNED_IN_ONLY = {
    ("user", PUBLIC): {"stranger", "self", "site_admin"},
    ("user", LIMITED): {"stranger", "self", "site_admin"},
    ("user", PRIVATE): {"self", "site_admin"},
    ("org", PUBLIC): {"stranger", "reader", "writer", "org_admin", "site_admin"},
    ("org", LIMITED): {"stranger", "reader", "writer", "org_admin", "site_admin"},
    ("org", PRIVATE): {"reader", "writer", "org_admin", "site_admin"},
}


def actors_of(kind):
    return USER_OWNER_ACTORS if kind == "user" else ORG_ACTORS


def read_cases(table):
    return [
        pytest.param(kind, visibility, actor, actor in allowed, id=f"{kind}-{visibility}-{actor}")
        for (kind, visibility), allowed in table.items()
        for actor in actors_of(kind)
    ]


WRITE_CASES = [
    pytest.param(kind, visibility, actor, actor in allowed, id=f"{kind}-{visibility}-{actor}")
    for kind, allowed in CAN_WRITE.items()
    for visibility in Visibility.values
    for actor in actors_of(kind)
]


def make_user(username, *, active=True, superuser=False):
    User = get_user_model()
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@example.com", "pw")
    else:
        user = User.objects.create_user(username, password="pw")
    if not active:
        user.is_active = False
        user.save()
    return user


@pytest.fixture(scope="module")
def world_rows(django_db_setup, django_db_blocker, tmp_path_factory):
    """The rows of `world`, made once for the module: the actors' user ids and the org's."""
    with module_transaction(django_db_blocker):
        with as_in_a_test(tmp_path_factory.mktemp("access") / "packages"):
            olivia = make_user("olivia")
            org_admin = make_user("otto")
            org = owners.create_org("acme", owner_user=org_admin)
            people = {
                "stranger": make_user("sam"),
                "self": olivia,
                "reader": make_user("rita"),
                "writer": make_user("wes"),
                "org_admin": org_admin,
                "site_admin": make_user("root", superuser=True),
                "inactive_member": make_user("ivan"),
                "inactive_site_admin": make_user("former-root", superuser=True),
            }
            owners.set_membership(org, people["reader"], Membership.Role.READ)
            owners.set_membership(org, people["writer"], Membership.Role.WRITE)
            owners.set_membership(org, people["inactive_member"], Membership.Role.ADMIN)
            for name in ("inactive_member", "inactive_site_admin"):
                people[name].is_active = False
                people[name].save()
        yield {"people": {actor: user.pk for actor, user in people.items()}, "org": org.pk}


@pytest.fixture
def world(world_rows, db):
    """A user owner ("olivia"), an organisation ("acme") and everyone who may ask,
    read afresh: tests change them.
    """
    users = get_user_model().objects.in_bulk(world_rows["people"].values())
    people = {actor: users[pk] for actor, pk in world_rows["people"].items()}
    people["anonymous"] = AnonymousUser()
    org = Owner.objects.get(pk=world_rows["org"])
    return {"owners": {"user": people["self"].package_owner, "org": org}, "people": people}


def target_and_actor(world, kind, visibility, actor):
    owner = world["owners"][kind]
    owner.visibility = visibility
    owner.save()
    if actor == "inactive_self":
        user = owner.user
        user.is_active = False
        user.save()
        return owner, user
    return owner, world["people"][actor]


@pytest.mark.parametrize(("kind", "visibility", "actor", "allowed"), read_cases(CAN_READ))
def test_read_access(world, kind, visibility, actor, allowed):
    owner, user = target_and_actor(world, kind, visibility, actor)

    assert AccessAdapter().can_read(user, owner) is allowed


@pytest.mark.parametrize(("kind", "visibility", "actor", "allowed"), WRITE_CASES)
def test_write_access(world, kind, visibility, actor, allowed):
    owner, user = target_and_actor(world, kind, visibility, actor)

    assert AccessAdapter().can_write(user, owner) is allowed


@pytest.mark.parametrize(
    ("kind", "visibility", "actor", "allowed"), read_cases(CAN_READ_SIGNED_IN_ONLY)
)
def test_read_access_when_signing_in_is_required(world, settings, kind, visibility, actor, allowed):
    settings.PACKAGES = {**settings.PACKAGES, "REQUIRE_SIGNIN_VIEW": True}
    owner, user = target_and_actor(world, kind, visibility, actor)

    assert AccessAdapter().can_read(user, owner) is allowed


@pytest.mark.parametrize(("kind", "visibility", "actor", "allowed"), WRITE_CASES)
def test_write_access_does_not_change_when_signing_in_is_required(
    world, settings, kind, visibility, actor, allowed
):
    settings.PACKAGES = {**settings.PACKAGES, "REQUIRE_SIGNIN_VIEW": True}
    owner, user = target_and_actor(world, kind, visibility, actor)

    assert AccessAdapter().can_write(user, owner) is allowed


def test_no_user_at_all_is_treated_as_anonymous(world):
    owner = world["owners"]["user"]

    assert AccessAdapter().can_read(None, owner) is True
    assert AccessAdapter().can_write(None, owner) is False


def test_a_user_owns_only_their_own_user_owner(world):
    olivia = world["people"]["self"]
    sams_owner = world["people"]["stranger"].package_owner
    sams_owner.visibility = PRIVATE
    sams_owner.save()

    assert AccessAdapter().can_read(olivia, sams_owner) is False
    assert AccessAdapter().can_write(olivia, sams_owner) is False


def test_membership_rows_on_a_user_owner_grant_nothing(world):
    owner = world["owners"]["user"]
    owner.visibility = PRIVATE
    owner.save()
    sam = world["people"]["stranger"]
    Membership.objects.create(owner=owner, user=sam, role=Membership.Role.ADMIN)

    assert AccessAdapter().can_read(sam, owner) is False
    assert AccessAdapter().can_write(sam, owner) is False


def test_membership_of_one_org_grants_nothing_in_another(world):
    other = owners.create_org("other", owner_user=world["people"]["stranger"])
    other.visibility = PRIVATE
    other.save()
    writer = world["people"]["writer"]

    assert AccessAdapter().can_read(writer, other) is False
    assert AccessAdapter().can_write(writer, other) is False


@pytest.mark.parametrize(
    ("actor", "role"),
    [("reader", "read"), ("writer", "write"), ("org_admin", "admin"), ("stranger", None)],
)
def test_role_of_is_the_members_role_in_the_org(world, actor, role):
    assert AccessAdapter().role_of(world["people"][actor], world["owners"]["org"]) == role


def test_role_of_an_anonymous_user_is_none(world):
    assert AccessAdapter().role_of(AnonymousUser(), world["owners"]["org"]) is None


# The adapter is the host's to choose


class NamesWithPrefix(AccessAdapter):
    """A host's adapter that gives every user's owner a prefixed name."""

    def owner_name_for_user(self, user):
        return f"u-{user.get_username()}"


def test_get_adapter_returns_the_default_adapter(settings):
    assert type(get_adapter()) is AccessAdapter


def test_get_adapter_returns_the_adapter_named_in_settings(settings):
    settings.PACKAGES = {**settings.PACKAGES, "ACCESS_ADAPTER": f"{__name__}.NamesWithPrefix"}

    assert isinstance(get_adapter(), NamesWithPrefix)


def test_new_users_owners_are_named_by_the_configured_adapter(settings, db):
    settings.PACKAGES = {**settings.PACKAGES, "ACCESS_ADAPTER": f"{__name__}.NamesWithPrefix"}

    user = make_user("carol")

    assert Owner.objects.get(user=user).name == "u-carol"

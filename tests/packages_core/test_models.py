"""The package domain's models: database constraints and every user's owner."""

import hashlib

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import DataError, IntegrityError, transaction
from django.db.models import ProtectedError
from django.db.models.signals import post_save

from packages_core import lookups, signals
from packages_core.exceptions import InvalidInput
from packages_core.models import (
    AccessToken,
    CleanupRule,
    Membership,
    Owner,
    OwnerQuota,
    Package,
    PackageBlob,
    PackageFile,
    PackageVersion,
)
from packages_core.models.owners import OWNER_NAME_MAX_LENGTH, validate_owner_name
from packages_core.services import owners

pytestmark = pytest.mark.django_db

SHA256_A = hashlib.sha256(b"a").hexdigest()
SHA512_A = hashlib.sha512(b"a").hexdigest()


def make_user(username):
    return get_user_model().objects.create_user(username, password="pw")


def assert_valid_owner_name(name):
    validate_owner_name(name)
    assert len(name) <= OWNER_NAME_MAX_LENGTH


# Owners


def test_owner_names_are_unique_case_insensitively(alice):
    with pytest.raises(IntegrityError), transaction.atomic():
        Owner.objects.create(name="ALICE", kind=Owner.Kind.ORG)


def test_owners_with_different_names_coexist(alice):
    Owner.objects.create(name="alice2", kind=Owner.Kind.ORG)

    assert Owner.objects.named("Alice2").count() == 1
    assert Owner.objects.named("alice").count() == 1


def test_owner_lookup_by_name_ignores_case(alice):
    assert Owner.objects.named("ALICE").get().user == alice


@pytest.mark.parametrize("name", ["al\x00ice", "a" * 41, "-alice", "al/ice", ""])
def test_owner_lookup_of_a_name_no_owner_may_have_finds_none_without_a_query(
    alice, django_assert_num_queries, name
):
    """A NUL byte would be an error on PostgreSQL rather than no rows."""
    with django_assert_num_queries(0):
        assert Owner.objects.named(name).first() is None
        assert lookups.owner_named(name) is None


def test_user_owner_needs_a_user(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Owner.objects.create(name="nobody", kind=Owner.Kind.USER, user=None)


def test_org_owner_must_not_have_a_user(alice):
    # Free alice from her own owner, so only the kind/user rule can fail.
    Owner.objects.filter(user=alice).delete()

    with pytest.raises(IntegrityError), transaction.atomic():
        Owner.objects.create(name="acme", kind=Owner.Kind.ORG, user=alice)


def test_owner_kind_must_be_user_or_org(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Owner.objects.create(name="acme", kind="team")


def test_owner_visibility_must_be_a_known_value(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Owner.objects.create(name="acme", kind=Owner.Kind.ORG, visibility="secret")


@pytest.mark.parametrize("name", ["a..b", "-lead", "trail.", "sp ace", "at@sign", "x" * 41])
def test_full_clean_rejects_invalid_owner_names(db, name):
    owner = Owner(name=name, kind=Owner.Kind.ORG)

    with pytest.raises(ValidationError) as excinfo:
        owner.full_clean()

    assert "name" in excinfo.value.message_dict


def test_membership_is_unique_per_owner_and_user(org, bob):
    Membership.objects.create(owner=org, user=bob, role=Membership.Role.READ)

    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(owner=org, user=bob, role=Membership.Role.WRITE)


def test_membership_role_must_be_read_write_or_admin(org, bob):
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(owner=org, user=bob, role="owner")


@pytest.mark.parametrize(
    ("role", "can_write"),
    [(Membership.Role.READ, False), (Membership.Role.WRITE, True), (Membership.Role.ADMIN, True)],
)
def test_membership_can_write_with_write_or_admin_role(role, can_write):
    assert Membership(role=role).can_write is can_write


# Every user's owner


def test_every_user_gets_an_owner_named_after_them(db):
    user = make_user("carol")

    owner = Owner.objects.get(user=user)
    assert owner.name == "carol"
    assert owner.kind == Owner.Kind.USER


def test_superusers_get_an_owner_too(db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")

    assert Owner.objects.get(user=user).name == "boss"


def test_saving_a_user_again_does_not_make_a_second_owner(db):
    user = make_user("carol")
    user.first_name = "Carol"
    user.save()

    assert Owner.objects.filter(user=user).count() == 1


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("jo@example.com", "jo-example.com"),
        ("a..b", "a-b"),
        ("-dash-", "dash"),
        ("with space", "with-space"),
        ("x+y", "x-y"),
    ],
)
def test_usernames_that_are_not_owner_names_get_a_sanitised_owner_name(db, username, expected):
    user = make_user(username)

    name = Owner.objects.get(user=user).name
    assert name == expected
    assert_valid_owner_name(name)


def test_a_username_without_any_name_characters_gets_a_valid_owner_name(db):
    user = make_user("@@@")

    assert_valid_owner_name(Owner.objects.get(user=user).name)


def test_a_long_username_gets_an_owner_name_within_the_length_limit(db):
    user = make_user("a" * 60)

    name = Owner.objects.get(user=user).name
    assert_valid_owner_name(name)
    assert name == "a" * OWNER_NAME_MAX_LENGTH


def test_a_username_clashing_with_an_owner_gets_a_numbered_owner_name(db):
    Owner.objects.create(name="alice2", kind=Owner.Kind.ORG)

    user = make_user("Alice2")

    assert Owner.objects.get(user=user).name == "Alice2-2"


def test_numbered_owner_names_skip_numbers_already_taken(db):
    Owner.objects.create(name="dave", kind=Owner.Kind.ORG)
    Owner.objects.create(name="dave-2", kind=Owner.Kind.ORG)

    user = make_user("dave")

    assert Owner.objects.get(user=user).name == "dave-3"


def test_a_username_that_is_a_reserved_name_gets_a_numbered_owner_name(db):
    user = make_user("v2")

    assert Owner.objects.get(user=user).name == "v2-2"


def test_a_host_reserves_its_own_routes(db, settings):
    settings.PACKAGES = {**settings.PACKAGES, "RESERVED_OWNER_NAMES": ["Intranet"]}

    assert Owner.objects.get(user=make_user("intranet")).name == "intranet-2"
    assert Owner.objects.get(user=make_user("v2")).name == "v2"  # no longer reserved
    with pytest.raises(InvalidInput, match="reserved"):
        owners.create_org("INTRANET", owner_user=None)


def test_a_numbered_variant_of_a_long_clashing_name_is_a_valid_owner_name(db):
    # The 36th character is a separator: cutting the name there for the "-N" suffix
    # must not leave a name with two separators in a row.
    username = "a" * 35 + ".bcd"
    make_user(username)

    user = make_user(username.upper())

    name = Owner.objects.get(user=user).name
    assert_valid_owner_name(name)
    assert name.lower() != username.lower()


# Packages, versions and files


def test_package_names_are_unique_per_owner_and_type_case_insensitively(package):
    with pytest.raises(IntegrityError), transaction.atomic():
        Package.objects.create(owner=package.owner, type=package.type, name="WEB")


def test_the_same_package_name_may_be_used_by_another_type(package):
    Package.objects.create(owner=package.owner, type="npm", name="web")

    assert Package.objects.filter(owner=package.owner).named("web").count() == 2


def test_package_and_version_lookups_of_a_name_with_a_nul_find_none_without_a_query(
    version, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert Package.objects.named("w\x00eb").first() is None
        assert PackageVersion.objects.versioned("1.0\x00").first() is None


def test_the_same_package_name_may_be_used_by_another_owner(package, bob):
    Package.objects.create(owner=bob.package_owner, type=package.type, name="web")

    assert Package.objects.named("web").count() == 2


def test_version_names_are_unique_per_package_case_insensitively(package):
    PackageVersion.objects.create(package=package, version="Latest")

    with pytest.raises(IntegrityError), transaction.atomic():
        PackageVersion.objects.create(package=package, version="latest")


def test_the_same_version_name_may_be_used_by_another_package(package):
    other = Package.objects.create(owner=package.owner, type=package.type, name="db")
    PackageVersion.objects.create(package=package, version="1.0")
    PackageVersion.objects.create(package=other, version="1.0")

    assert PackageVersion.objects.versioned("1.0").count() == 2


def test_file_names_are_unique_per_version_and_key_case_insensitively(version, blob):
    PackageFile.objects.create(version=version, blob=blob, name="manifest.json")

    with pytest.raises(IntegrityError), transaction.atomic():
        PackageFile.objects.create(version=version, blob=blob, name="MANIFEST.json")


def test_the_same_file_name_may_be_used_with_another_composite_key(version, blob):
    PackageFile.objects.create(version=version, blob=blob, name="layer", composite_key="a")
    PackageFile.objects.create(version=version, blob=blob, name="layer", composite_key="b")

    assert version.files.named("layer").count() == 2


def test_a_blob_in_use_by_a_file_cannot_be_deleted(version, blob):
    PackageFile.objects.create(version=version, blob=blob, name="layer")

    with pytest.raises(ProtectedError):
        blob.delete()


# Blobs


def test_blob_sha256_is_unique(db):
    PackageBlob.objects.create(size=1, sha256=SHA256_A, sha512=SHA512_A)

    with pytest.raises(IntegrityError), transaction.atomic():
        PackageBlob.objects.create(size=1, sha256=SHA256_A, sha512=SHA512_A)


@pytest.mark.parametrize(
    "sha256",
    [SHA256_A.upper(), SHA256_A[:63], "g" * 64, "", "sha256:" + SHA256_A[:57]],
    ids=["uppercase", "63-digits", "not-hex", "empty", "prefixed"],
)
def test_blob_sha256_must_be_64_lowercase_hex_digits(db, sha256):
    with pytest.raises(IntegrityError), transaction.atomic():
        PackageBlob.objects.create(size=1, sha256=sha256, sha512=SHA512_A)


def test_blob_sha256_longer_than_64_digits_is_refused(db):
    # PostgreSQL refuses it for the column's length (DataError), SQLite by the check.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        PackageBlob.objects.create(size=1, sha256=SHA256_A + "0", sha512=SHA512_A)


def test_blob_storage_key_is_content_addressed():
    blob = PackageBlob(sha256=SHA256_A)

    assert blob.storage_key == f"blobs/sha256/{SHA256_A[:2]}/{SHA256_A}"


# Tokens


def make_token(user, name, token_hash):
    return AccessToken.objects.create(
        user=user, name=name, token_hash=token_hash, token_prefix="fgt_abcd", scopes=[]
    )


def test_token_names_are_unique_per_user(alice):
    make_token(alice, "ci", "1" * 64)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_token(alice, "ci", "2" * 64)


def test_another_user_may_use_the_same_token_name(alice, bob):
    make_token(alice, "ci", "1" * 64)
    make_token(bob, "ci", "2" * 64)

    assert AccessToken.objects.filter(name="ci").count() == 2


def test_token_hashes_are_unique(alice, bob):
    make_token(alice, "ci", "1" * 64)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_token(bob, "ci", "1" * 64)


# Quotas and cleanup rules


@pytest.mark.parametrize("field", ["max_versions", "max_bytes", "max_blob_bytes"])
def test_quota_limits_below_minus_one_are_rejected(alice, field):
    with pytest.raises(IntegrityError), transaction.atomic():
        OwnerQuota.objects.create(owner=alice.package_owner, **{field: -2})


@pytest.mark.parametrize("value", [None, -1, 0, 10**12])
def test_quota_limits_may_be_empty_unlimited_or_non_negative(alice, value):
    OwnerQuota.objects.create(
        owner=alice.package_owner, max_versions=value, max_bytes=value, max_blob_bytes=value
    )

    assert OwnerQuota.objects.get(owner=alice.package_owner).max_bytes == value


def test_an_owner_has_at_most_one_quota(alice):
    OwnerQuota.objects.create(owner=alice.package_owner)

    with pytest.raises(IntegrityError), transaction.atomic():
        OwnerQuota.objects.create(owner=alice.package_owner)


def test_cleanup_rules_are_unique_per_owner_and_type(alice):
    CleanupRule.objects.create(owner=alice.package_owner, type="container")

    with pytest.raises(IntegrityError), transaction.atomic():
        CleanupRule.objects.create(owner=alice.package_owner, type="container")


def test_an_owner_may_have_cleanup_rules_for_several_types(alice):
    CleanupRule.objects.create(owner=alice.package_owner, type="container")
    CleanupRule.objects.create(owner=alice.package_owner, type="npm")

    assert alice.package_owner.cleanup_rules.count() == 2


@pytest.mark.parametrize("field", ["keep_pattern", "remove_pattern"])
def test_full_clean_rejects_invalid_cleanup_patterns(alice, field):
    rule = CleanupRule(owner=alice.package_owner, type="container", **{field: "v(1"})

    with pytest.raises(ValidationError) as excinfo:
        rule.full_clean()

    assert list(excinfo.value.message_dict) == [field]


def test_full_clean_accepts_valid_cleanup_patterns(alice):
    rule = CleanupRule(
        owner=alice.package_owner,
        type="container",
        keep_pattern=r"^v\d+\.\d+$",
        remove_pattern=r"^sha256-.*",
    )

    rule.full_clean()


@pytest.fixture
def users_without_owner_signal(django_user_model):
    """Users made as if before packages_core was installed: no owner for them."""
    uid = "packages_core.give_new_user_an_owner"
    post_save.disconnect(sender=django_user_model, dispatch_uid=uid)
    yield
    post_save.connect(signals.give_new_user_an_owner, sender=django_user_model, dispatch_uid=uid)


@pytest.mark.django_db
def test_migrate_gives_users_from_before_the_install_their_owners(
    django_user_model, users_without_owner_signal
):
    old = django_user_model.objects.create_user("veteran", password="pw")
    assert not Owner.objects.filter(user=old).exists()

    call_command("migrate", verbosity=0)

    assert Owner.objects.get(user=old).name == "veteran"

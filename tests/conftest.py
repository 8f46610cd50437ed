"""Shared fixtures: users, organisations and a content store on a temporary directory."""

import io

import pytest
from django.db import connection

from packages_core.content_store import ContentStore
from packages_core.models import Membership
from packages_core.services import owners, versions
from packages_core.services.blobs import store_blob


@pytest.fixture(autouse=True)
def package_storage(settings, tmp_path):
    """Every test writes blobs to its own directory, never to the developer's data/."""
    settings.STORAGES = {
        **settings.STORAGES,
        "packages": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "packages")},
        },
    }
    return tmp_path / "packages"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users made in tests hash their passwords cheaply; real hashing costs ~0.2 s each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def private_cache(settings, request):
    """Each test its own empty cache: sign-in failures and checked passwords never leak."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": request.node.nodeid,
        }
    }


@pytest.fixture
def store(package_storage):
    return ContentStore.default()


@pytest.fixture
def alice(db):
    return owners.create_user("alice", email="alice@example.com", password="alice-pw")


@pytest.fixture
def bob(db):
    return owners.create_user("bob", email="bob@example.com", password="bob-pw")


@pytest.fixture
def site_admin(db):
    return owners.create_user("root", password="root-pw", is_admin=True)


@pytest.fixture
def org(alice):
    """An organisation whose admin is alice."""
    return owners.create_org("acme", owner_user=alice)


@pytest.fixture
def reader_of(org):
    """Make a user a member of `org` with a role: reader_of(user, 'read')."""

    def make(user, role=Membership.Role.READ):
        return owners.set_membership(org, user, role)

    return make


def on_postgresql() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def blob(db, store):
    """A small blob stored through the blob service."""
    return store_blob(io.BytesIO(b"layer bytes"), store=store).blob


@pytest.fixture
def package(alice):
    """A container package in alice's owner."""
    return versions.get_or_create_package(alice.package_owner, "container", "web")


@pytest.fixture
def version(package, alice):
    """A published version of `package`."""
    return versions.create_version(package, "1.0", creator=alice)

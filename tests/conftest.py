"""Shared fixtures: users, organisations and a content store on a temporary directory.

Also a real S3 API on loopback (moto's server mode) for the S3 content store's tests.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test import override_settings

from packages_core import lookups, throttling
from packages_core.content_store import ContentStore
from packages_core.models import Membership
from packages_core.services import owners, tallies, versions, webhooks
from packages_core.services.blobs import store_blob
from registry import authentication, pull_cache
from registry.mirrors import service as mirrors
from registry.mirrors import upstream
from tests import checkout
from tests.redis_helpers import drop_keys, redis_cache_config, require_redis
from tests.s3_helpers import bucket_keys, drop_bucket, make_bucket, s3_client, s3_env, start_moto

# Fixtures of the web page tests: images pushed through /v2.
pytest_plugins = ["tests.web_helpers"]

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT_BEFORE = pytest.StashKey[set]()


def pytest_sessionstart(session):
    """Note the checkout's state; xdist's workers leave it to the process that started them."""
    if not hasattr(session.config, "workerinput"):
        session.config.stash[CHECKOUT_BEFORE] = checkout.checkout_state(ROOT)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if it wrote into the checkout (tests/checkout.py), naming the files."""
    if CHECKOUT_BEFORE not in session.config.stash:
        return
    before = session.config.stash[CHECKOUT_BEFORE]
    new = checkout.written(before, checkout.checkout_state(ROOT))
    if not new:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        # The progress line is still open here, with or without xdist.
        reporter.write("\n")
        reporter.write_line(
            "The run wrote into the checkout (or something else did while it ran): "
            + ", ".join(new[:20]),
            red=True,
        )
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def file_storage(location: Path) -> dict:
    """A STORAGES entry for files under `location`."""
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(location)},
    }


@pytest.fixture(autouse=True)
def package_storage(settings, tmp_path):
    """Every test writes blobs to its own directory, never to the developer's data/."""
    settings.STORAGES = {**settings.STORAGES, "packages": file_storage(tmp_path / "packages")}
    return tmp_path / "packages"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users made in tests hash their passwords cheaply; real hashing costs ~0.2 s each."""
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS


@pytest.fixture(autouse=True)
def download_counts_flushed_by_hand(monkeypatch):
    """No background thread writes download counts in tests: they call flush()."""
    monkeypatch.setattr(tallies._Tally, "start_flushing", lambda tally: None)
    tallies._tally.take()


@pytest.fixture(autouse=True)
def private_cache(settings, request):
    """Each test its own empty cache: sign-in failures and checked passwords never leak,
    nor what the process remembers in front of the cache (packages_core/memo.py).
    """
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": request.node.nodeid,
        }
    }
    authentication._verified.clear()
    throttling._clean.clear()
    lookups.forget()
    pull_cache._found.clear()
    # Webhooks and mirrors a rolled-back test made are not deleted: no signal says
    # they went.
    webhooks.forget()
    mirrors.forget()
    upstream.forget_tokens()


@contextlib.contextmanager
def module_transaction(django_db_blocker) -> Iterator[None]:
    """A transaction around the tests of a module, for rows they all read.

    Rows made in it before the first test stay for every test, which runs in a
    savepoint of its own on top (pytest-django's `db`): what one test changes is gone
    for the next. Leaving the block rolls them back, before the next module. For a
    module-scoped fixture that yields inside it; its tests must not be transactional.
    """
    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)


@contextlib.contextmanager
def as_in_a_test(package_dir: Path) -> Iterator[None]:
    """What the autouse fixtures here give a test, for code that runs before them (a
    module-scoped fixture): fast password hashing, a cache of its own, no thread
    flushing download counts, blobs written under `package_dir`.
    """
    with (
        override_settings(
            STORAGES={**django_settings.STORAGES, "packages": file_storage(package_dir)},
            PASSWORD_HASHERS=FAST_PASSWORD_HASHERS,
            CACHES={
                "default": {
                    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                    "LOCATION": f"as-in-a-test-{package_dir}",
                }
            },
        ),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(tallies._Tally, "start_flushing", lambda tally: None)
        yield


@pytest.fixture
def redis_cache(settings, private_cache):
    """The default cache on the Redis server (keys of this test's own, dropped after);
    yields its CACHES entry.
    """
    url = require_redis()
    config = redis_cache_config(url)
    settings.CACHES = {"default": config}
    yield config
    drop_keys(url, config["KEY_PREFIX"])


@pytest.fixture
def rehashes(monkeypatch):
    """The sizes of every pass over an upload's staged bytes (uploads._rehash), still
    doing them: finishing from a saved hash state makes none.
    """
    from packages_core.services import uploads

    calls = []
    original = uploads._rehash

    def counting(upload, store, **kwargs):
        calls.append(upload.bytes_received)
        return original(upload, store, **kwargs)

    monkeypatch.setattr(uploads, "_rehash", counting)
    return calls


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


# --- S3: moto's server on loopback ----------------------------------------------------


@pytest.fixture(scope="session")
def s3_server():
    """The endpoint URL of an in-memory S3 API (moto's server) on 127.0.0.1.

    One for the whole session; without moto the S3 tests skip (fail with CI=true).
    """
    server, endpoint = start_moto()
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_admin(s3_server):
    """One boto3 client on the S3 test server for the session's set-ups and assertions."""
    return s3_client(s3_server)


@dataclass
class S3Bucket:
    """A bucket the test's package storage writes to, and a client to look inside it."""

    name: str
    endpoint: str
    client: Any
    settings: Any
    data_path: Any

    def configure(self, **extra_env: str) -> dict:
        """Point STORAGES['packages'] at this bucket, as forge.environment maps the
        FORGE_* variables (plus `extra_env`, e.g. FORGE_S3_PREFIX); returns the entry.
        """
        from forge import environment

        config = environment.package_storage(
            s3_env(self.endpoint, self.name, **extra_env), self.data_path
        )
        self.settings.STORAGES = {**self.settings.STORAGES, "packages": config}
        return config

    def list_keys(self, prefix: str = "") -> list[str]:
        return bucket_keys(self.client, self.name, prefix)

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()


@pytest.fixture
def s3_storage(package_storage, settings, s3_server, s3_admin, tmp_path):
    """The package storage on a fresh bucket of the S3 test server.

    Overrides the file-system store of `package_storage` (which it runs after) with
    the S3Storage entry forge.environment makes for FORGE_STORAGE=s3. Yields an
    S3Bucket: its `name`, a boto3 `client` to look inside, `configure(**env)`.
    """
    bucket = S3Bucket(make_bucket(s3_admin), s3_server, s3_admin, settings, tmp_path)
    bucket.configure()
    yield bucket
    drop_bucket(s3_admin, bucket.name)


@pytest.fixture
def receiver(settings):
    """A webhook receiver on loopback, which deliveries may reach (WEBHOOK_ALLOWED_HOSTS)."""
    from tests.webhook_helpers import Receiver

    settings.PACKAGES = {**settings.PACKAGES, "WEBHOOK_ALLOWED_HOSTS": ["127.0.0.1"]}
    receiver = Receiver()
    yield receiver
    receiver.close()

"""System checks on packages_core's settings: storage alias, PACKAGES keys, adapter, S3, WAL."""

import socket

import pytest
from botocore.config import Config
from django.core.checks import registry, run_checks

from forge import environment
from packages_core import checks
from registry import checks as registry_checks

S3 = "storages.backends.s3.S3Storage"
S3_BOTO3 = "storages.backends.s3boto3.S3Boto3Storage"

# Changing DATABASES makes Django warn that the running connections do not follow;
# the WAL check only reads the setting, so that is fine here.
databases_overridden = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


def ids(messages):
    return [message.id for message in messages]


def with_packages_storage(settings, config):
    settings.STORAGES = {**settings.STORAGES, "packages": config}


def test_packages_checks_are_registered():
    registered = registry.registry.get_checks()

    assert {checks.check_settings, checks.check_storage, checks.check_sqlite_wal} <= set(registered)


def test_the_forge_settings_pass_the_settings_and_storage_checks():
    assert checks.check_settings() + checks.check_storage() == []


# Storage


def test_a_missing_storage_alias_is_packages_e001(settings):
    settings.STORAGES = {
        alias: config for alias, config in settings.STORAGES.items() if alias != "packages"
    }

    assert ids(checks.check_storage()) == ["packages.E001"]


def test_a_storage_alias_setting_naming_no_storage_is_packages_e001(settings):
    settings.PACKAGES = {**settings.PACKAGES, "STORAGE_ALIAS": "blobs"}

    messages = checks.check_storage()

    assert ids(messages) == ["packages.E001"]
    assert "'blobs'" in messages[0].msg


def test_a_storage_alias_setting_naming_a_storage_passes(settings):
    settings.PACKAGES = {**settings.PACKAGES, "STORAGE_ALIAS": "blobs"}
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }

    assert checks.check_storage() == []


@pytest.mark.parametrize("backend", [S3, S3_BOTO3])
def test_s3_storage_without_a_bucket_name_is_packages_e004(settings, backend):
    with_packages_storage(settings, {"BACKEND": backend, "OPTIONS": {"region_name": "eu-west-1"}})

    assert ids(checks.check_storage()) == ["packages.E004"]


def test_s3_storage_without_options_is_packages_e004(settings):
    with_packages_storage(settings, {"BACKEND": S3})

    assert ids(checks.check_storage()) == ["packages.E004"]


@pytest.mark.parametrize("backend", [S3, S3_BOTO3])
def test_s3_storage_with_a_bucket_name_passes(settings, backend):
    with_packages_storage(settings, {"BACKEND": backend, "OPTIONS": {"bucket_name": "blobs"}})

    assert checks.check_storage() == []


def test_s3_storage_with_the_bucket_in_aws_storage_bucket_name_passes(settings):
    # django-storages falls back to settings.AWS_STORAGE_BUCKET_NAME when OPTIONS
    # has no bucket_name, so such a site is configured correctly.
    settings.AWS_STORAGE_BUCKET_NAME = "blobs"
    with_packages_storage(settings, {"BACKEND": S3, "OPTIONS": {}})

    assert checks.check_storage() == []


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_unreachable_bucket(settings):
    """S3 blob storage whose endpoint refuses connections, asked once (no retries)."""
    options = {
        "bucket_name": "blobs",
        "endpoint_url": f"http://127.0.0.1:{refused_port()}",
        "access_key": "key",
        "secret_key": "secret",
        "region_name": "us-east-1",
        "client_config": Config(retries={"max_attempts": 1}, connect_timeout=2),
    }
    with_packages_storage(settings, {"BACKEND": "packages_core.s3.S3Storage", "OPTIONS": options})


def test_the_bucket_is_looked_at_by_the_deployment_checks_only(settings):
    """Every management command runs the checks; only `check --deploy` (and a server's
    start) should wait on the network for the bucket.
    """
    with_unreachable_bucket(settings)

    assert "packages.E005" not in ids(run_checks())
    assert "packages.E005" in ids(run_checks(include_deployment_checks=True))
    assert ids(run_checks(tags=[checks.NETWORK], include_deployment_checks=True)) == [
        "packages.E005"
    ]


def test_the_forge_s3_storage_settings_pass(settings):
    config = environment.package_storage(
        {"FORGE_STORAGE": "s3", "FORGE_S3_BUCKET": "blobs"}, data_path=None
    )
    with_packages_storage(settings, config)

    assert checks.check_storage() == []


# PACKAGES keys and the adapter


def test_an_unknown_packages_key_is_packages_e002(settings):
    settings.PACKAGES = {**settings.PACKAGES, "STORAGE_ALAIS": "packages"}

    messages = checks.check_settings()

    assert ids(messages) == ["packages.E002"]
    assert "STORAGE_ALAIS" in messages[0].msg


def test_known_packages_keys_pass(settings):
    settings.PACKAGES = {
        "STORAGE_ALIAS": "packages",
        "UPLOAD_PREFIX": "uploads",
        "REQUIRE_SIGNIN_VIEW": True,
        "ACCESS_ADAPTER": "packages_core.adapter.AccessAdapter",
        "TOKEN_LAST_USED_RESOLUTION": 0,
        "QUOTA_OWNER_VERSIONS": 10,
        "QUOTA_OWNER_BYTES": -1,
        "QUOTA_BLOB_BYTES": -1,
    }

    assert checks.check_settings() == []


def test_no_packages_setting_at_all_passes(settings):
    del settings.PACKAGES

    assert checks.check_settings() == []


@pytest.mark.parametrize(
    "path",
    [
        "packages_core.adapter.NoSuchAdapter",
        "packages_core.no_such_module.AccessAdapter",
        "not-a-dotted-path",
    ],
)
def test_an_access_adapter_path_that_does_not_import_is_packages_e003(settings, path):
    settings.PACKAGES = {**settings.PACKAGES, "ACCESS_ADAPTER": path}

    assert ids(checks.check_settings()) == ["packages.E003"]


@pytest.mark.parametrize("value", [-1, "1", None, True, float("nan")])
def test_an_identity_cache_time_that_is_no_number_of_seconds_is_packages_e006(settings, value):
    settings.PACKAGES = {**settings.PACKAGES, "IDENTITY_CACHE_SECONDS": value}

    assert ids(checks.check_settings()) == ["packages.E006"]


@pytest.mark.parametrize("value", [0, 0.5, 30])
def test_an_identity_cache_time_of_zero_or_more_seconds_passes(settings, value):
    settings.PACKAGES = {**settings.PACKAGES, "IDENTITY_CACHE_SECONDS": value}

    assert checks.check_settings() == []


# SQLite in WAL mode


@databases_overridden
def test_sqlite_without_an_init_command_is_packages_w001(settings, tmp_path):
    settings.DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db")}
    }

    assert ids(checks.check_sqlite_wal()) == ["packages.W001"]


@databases_overridden
def test_sqlite_with_an_init_command_that_is_not_wal_is_packages_w001(settings, tmp_path):
    settings.DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(tmp_path / "db"),
            "OPTIONS": {"init_command": "PRAGMA synchronous=NORMAL;"},
        }
    }

    assert ids(checks.check_sqlite_wal()) == ["packages.W001"]


@databases_overridden
def test_each_sqlite_database_without_wal_gets_a_warning(settings, tmp_path):
    settings.DATABASES = {
        "default": environment.database({}, tmp_path),
        "archive": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "old")},
    }

    messages = checks.check_sqlite_wal()

    assert ids(messages) == ["packages.W001"]
    assert "'archive'" in messages[0].msg


@databases_overridden
def test_sqlite_with_the_forge_default_options_passes(settings, tmp_path):
    settings.DATABASES = {"default": environment.database({}, tmp_path)}

    assert checks.check_sqlite_wal() == []


@databases_overridden
def test_the_wal_init_command_is_recognised_in_any_case_and_spacing(settings, tmp_path):
    settings.DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(tmp_path / "db"),
            "OPTIONS": {"init_command": "pragma JOURNAL_MODE = wal"},
        }
    }

    assert checks.check_sqlite_wal() == []


@databases_overridden
def test_postgresql_gets_no_wal_warning(settings):
    settings.DATABASES = {
        "default": environment.database(
            {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/forge"}, None
        )
    }

    assert checks.check_sqlite_wal() == []


def test_packages_setting_that_is_not_a_dict_is_reported_not_raised(settings):
    settings.PACKAGES = ["STORAGE_ALIAS"]
    errors = checks.check_settings()
    assert [error.id for error in errors] == ["packages.E002"]
    assert "must be a dict" in errors[0].msg


def test_registry_checks_pass_with_the_forge_settings():
    assert registry_checks.check_settings() == []
    assert registry_checks.check_mounted_at_root() == []


def test_unknown_registry_setting_is_an_error(settings):
    settings.REGISTRY = {"EXTERNL_URL": "https://x"}
    assert [e.id for e in registry_checks.check_settings()] == ["registry.E002"]


def test_shared_cache_that_does_not_exist_is_an_error(settings):
    settings.PACKAGES = {"CACHE": "nowhere"}
    assert [e.id for e in checks.check_settings()] == ["packages.E008"]


def test_a_key_that_moved_to_packages_is_named_with_its_new_place(settings):
    settings.REGISTRY = {"CACHE": "default", "TRUSTED_PROXIES": [], "EXTERNL_URL": "x"}

    errors = {e.id: e.msg for e in registry_checks.check_settings()}

    assert set(errors) == {"registry.E008", "registry.E002"}
    assert "CACHE, TRUSTED_PROXIES, which moved to settings.PACKAGES" in errors["registry.E008"]
    assert "EXTERNL_URL" in errors["registry.E002"]


def test_deploy_check_warns_without_external_url_and_with_a_per_process_cache(settings):
    settings.REGISTRY = {}
    ids = [e.id for e in registry_checks.check_deployment()]
    assert ids == ["registry.W001", "registry.W002"]  # conftest gives tests a LocMemCache
    settings.REGISTRY = {"EXTERNAL_URL": "https://cr.example.com"}
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": "/tmp/forge-check-cache",
        }
    }
    assert registry_checks.check_deployment() == []


def test_registry_not_at_the_root_is_an_error(settings):
    settings.ROOT_URLCONF = "tests.urls_under_prefix"
    assert [e.id for e in registry_checks.check_mounted_at_root()] == ["registry.E001"]


def test_a_trusted_proxy_that_is_not_an_address_is_packages_e007(settings):
    settings.PACKAGES = {"TRUSTED_PROXIES": ["127.0.0.1", "nginx.internal"]}

    errors = [e for e in checks.check_settings() if e.id == "packages.E007"]

    assert len(errors) == 1
    assert "nginx.internal" in errors[0].msg


def test_trusted_proxies_as_networks_or_any_pass(settings):
    settings.PACKAGES = {"TRUSTED_PROXIES": ["10.0.0.0/8", "::1", "*"]}

    assert not [e for e in checks.check_settings() if e.id == "packages.E007"]


@pytest.mark.parametrize("value", [-1, "10", None, False, float("nan")])
def test_a_pull_cache_time_that_is_no_number_of_seconds_is_registry_e007(settings, value):
    settings.REGISTRY = {**getattr(settings, "REGISTRY", {}), "PULL_CACHE_SECONDS": value}

    assert [e.id for e in registry_checks.check_settings()] == ["registry.E007"]


@pytest.mark.parametrize("value", [0, 2.5, 10])
def test_a_pull_cache_time_of_zero_or_more_seconds_passes(settings, value):
    settings.REGISTRY = {**getattr(settings, "REGISTRY", {}), "PULL_CACHE_SECONDS": value}

    assert registry_checks.check_settings() == []


@pytest.mark.parametrize("size", ["20MiB", 0, -1, 1.5, True])
def test_max_manifest_size_that_is_not_a_positive_int_is_registry_e006(settings, size):
    settings.REGISTRY = {"MAX_MANIFEST_SIZE": size}

    assert [e.id for e in registry_checks.check_settings()] == ["registry.E006"]


def test_max_manifest_size_raised_above_the_default_passes(settings):
    settings.REGISTRY = {"MAX_MANIFEST_SIZE": 64 * 1024 * 1024}

    assert registry_checks.check_settings() == []


@pytest.mark.parametrize("value", ["false", 0, None])
def test_org_creation_that_is_not_a_bool_is_packages_e009(settings, value):
    settings.PACKAGES = {**settings.PACKAGES, "ALLOW_ORG_CREATION": value}

    assert [e.id for e in checks.check_settings()] == ["packages.E009"]


@pytest.mark.parametrize("value", ["true", 1, None])
def test_signup_that_is_not_a_bool_is_registry_e009(settings, value):
    settings.REGISTRY = {**getattr(settings, "REGISTRY", {}), "ALLOW_SIGNUP": value}

    assert [e.id for e in registry_checks.check_settings()] == ["registry.E009"]

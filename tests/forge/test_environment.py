"""Parsing the forge site's settings from environment variables."""

import os
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from forge import environment

BASE = Path("/srv/forge")


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("YES", True), ("1", True), ("off", False), ("", False)]
)
def test_bool_words(raw, expected):
    assert environment.get_bool({"X": raw}, "X") is expected


def test_bool_default_when_unset():
    assert environment.get_bool({}, "X", default=True) is True


def test_bool_rejects_other_words():
    with pytest.raises(ImproperlyConfigured, match="X must be true or false"):
        environment.get_bool({"X": "maybe"}, "X")


def test_data_dir_defaults_to_data_under_the_project():
    assert environment.data_dir({}, BASE) == BASE / "data"


def test_relative_data_dir_is_under_the_project_and_absolute_is_kept():
    assert environment.data_dir({"FORGE_DATA_DIR": "var"}, BASE) == BASE / "var"
    assert environment.data_dir({"FORGE_DATA_DIR": "/var/lib/forge"}, BASE) == Path(
        "/var/lib/forge"
    )


def test_default_database_is_sqlite_in_the_data_dir_with_wal_and_busy_timeout():
    config = environment.database({}, BASE / "data")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(BASE / "data" / "forge.sqlite3")
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert config["OPTIONS"]["timeout"] >= 5
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    # Reconnecting (and re-running the PRAGMAs) per request doubles a manifest HEAD.
    assert config["CONN_MAX_AGE"] > 0


def test_database_url_selects_postgresql():
    config = environment.database(
        {"DATABASE_URL": "postgres://forge:secret@db.internal:5433/registry"}, BASE
    )
    # Django's backend with a health check that costs no round trip.
    assert config["ENGINE"] == "packages_core.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.internal", 5433, "registry")
    assert (config["USER"], config["PASSWORD"]) == ("forge", "secret")
    assert config["CONN_HEALTH_CHECKS"] is True
    assert "init_command" not in config.get("OPTIONS", {})
    # The per-request lookups are prepared statements, planned once per connection.
    assert config["OPTIONS"]["prepare_threshold"] == 5


@pytest.mark.parametrize(("given", "threshold"), [("off", None), ("0", 0), ("20", 20)])
def test_prepared_statements_can_be_tuned_or_turned_off_in_the_url(given, threshold):
    """Off for PgBouncer in transaction mode before 1.21, which cannot keep them."""
    config = environment.database(
        {"DATABASE_URL": f"postgres://forge@db/registry?prepare_threshold={given}"}, BASE
    )
    assert config["OPTIONS"]["prepare_threshold"] == threshold


def test_sqlite_database_url_also_gets_wal():
    config = environment.database({"DATABASE_URL": "sqlite:////tmp/x.sqlite3"}, BASE)
    assert config["NAME"] == "/tmp/x.sqlite3"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]


def test_database_url_of_unknown_scheme_is_an_error():
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        environment.database({"DATABASE_URL": "nosuchdb://x/y"}, BASE)


def test_external_url_loses_its_trailing_slash():
    assert environment.external_url({"FORGE_EXTERNAL_URL": "https://cr.example/"}) == (
        "https://cr.example"
    )
    assert environment.external_url({}) == ""


@pytest.mark.parametrize("raw", ["cr.example", "ftp://cr.example", "https://"])
def test_external_url_must_be_absolute_http(raw):
    with pytest.raises(ImproperlyConfigured, match="FORGE_EXTERNAL_URL"):
        environment.external_url({"FORGE_EXTERNAL_URL": raw})


def test_allowed_hosts_default_to_loopback():
    assert environment.allowed_hosts({}) == ["localhost", "127.0.0.1", "[::1]"]


def test_allowed_hosts_are_comma_separated_and_include_the_external_host():
    env = {
        "FORGE_ALLOWED_HOSTS": " a.example, ,b.example ",
        "FORGE_EXTERNAL_URL": "https://cr.x:8443",
    }
    assert environment.allowed_hosts(env) == ["a.example", "b.example", "cr.x"]


def test_filesystem_storage_is_the_default_under_the_data_dir():
    config = environment.package_storage({}, BASE / "data")
    assert config["BACKEND"] == "django.core.files.storage.FileSystemStorage"
    assert config["OPTIONS"]["location"] == str(BASE / "data" / "packages")


def test_s3_storage_maps_every_variable_onto_django_storages_options():
    env = {
        "FORGE_STORAGE": "s3",
        "FORGE_S3_BUCKET": "blobs",
        "FORGE_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "FORGE_S3_REGION": "eu-west-1",
        "FORGE_S3_ACCESS_KEY": "AK",
        "FORGE_S3_SECRET_KEY": "SK",
        "FORGE_S3_ADDRESSING_STYLE": "path",
        "FORGE_S3_PREFIX": "/registry/blobs/",
    }
    config = environment.package_storage(env, BASE)
    assert config["BACKEND"] == "packages_core.s3.S3Storage"
    options = config["OPTIONS"]
    assert options["bucket_name"] == "blobs"
    assert options["endpoint_url"] == "http://127.0.0.1:9000"
    assert options["region_name"] == "eu-west-1"
    assert (options["access_key"], options["secret_key"]) == ("AK", "SK")
    assert options["client_config"].s3 == {"addressing_style": "path"}
    assert options["client_config"].signature_version == "s3v4"
    assert options["location"] == "registry/blobs"
    assert options["file_overwrite"] is True


def test_s3_storage_without_a_bucket_is_left_to_the_system_check():
    config = environment.package_storage({"FORGE_STORAGE": "s3"}, BASE)
    assert "bucket_name" not in config["OPTIONS"]


def test_serving_defaults_to_direct_urls_for_five_minutes():
    assert environment.serving({}) == {
        "SERVE_DIRECT": True,
        "URL_EXPIRY": 300,
        "ACCEL_REDIRECT_PREFIX": "",
    }


def test_serving_settings_come_from_the_environment():
    env = {
        "FORGE_SERVE_DIRECT": "false",
        "FORGE_S3_URL_EXPIRY": "90",
        "FORGE_ACCEL_REDIRECT_PREFIX": "/_blobs/",
    }
    assert environment.serving(env) == {
        "SERVE_DIRECT": False,
        "URL_EXPIRY": "90",
        "ACCEL_REDIRECT_PREFIX": "/_blobs/",
    }


def test_s3_addressing_style_is_checked():
    env = {"FORGE_STORAGE": "s3", "FORGE_S3_BUCKET": "b", "FORGE_S3_ADDRESSING_STYLE": "sideways"}
    with pytest.raises(ImproperlyConfigured, match="ADDRESSING_STYLE"):
        environment.package_storage(env, BASE)


def test_unknown_storage_kind_is_an_error():
    with pytest.raises(ImproperlyConfigured, match="FORGE_STORAGE"):
        environment.package_storage({"FORGE_STORAGE": "ftp"}, BASE)


def test_secret_key_from_the_environment_wins(tmp_path):
    assert environment.secret_key({"FORGE_SECRET_KEY": "given"}, tmp_path) == "given"
    assert not (tmp_path / "secret_key").exists()


def test_generated_secret_key_is_persisted_and_reused(tmp_path):
    first = environment.secret_key({}, tmp_path / "data")
    assert len(first) >= 50
    assert environment.secret_key({}, tmp_path / "data") == first
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_workers_starting_together_agree_on_one_secret_key(tmp_path):
    keys, barrier = [], threading.Barrier(16)

    def worker():
        barrier.wait()
        keys.append(environment.secret_key({}, tmp_path))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 16
    assert len(set(keys)) == 1
    assert os.listdir(tmp_path) == ["secret_key"]


def test_empty_secret_key_file_is_an_error(tmp_path):
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(ImproperlyConfigured, match="empty"):
        environment.secret_key({}, tmp_path)


def test_without_a_cache_url_the_cache_is_files_in_the_data_dir(tmp_path):
    config = environment.cache({}, tmp_path)

    assert config["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert config["LOCATION"] == str(tmp_path / "cache")


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/3", "rediss://cache.internal:6380/0", "unix:///run/redis.sock"]
)
def test_a_cache_url_selects_djangos_redis_backend(tmp_path, url):
    config = environment.cache({"FORGE_CACHE_URL": url}, tmp_path)

    assert config["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert config["LOCATION"] == url
    assert config["OPTIONS"]["socket_timeout"] <= 1


@pytest.mark.parametrize("url", ["memcached://127.0.0.1:11211", "127.0.0.1:6379", "http://x"])
def test_a_cache_url_that_is_not_redis_is_an_error(tmp_path, url):
    with pytest.raises(ImproperlyConfigured, match="FORGE_CACHE_URL"):
        environment.cache({"FORGE_CACHE_URL": url}, tmp_path)


# Misconfigurations: one ConfigurationError naming the variable and the fix


def test_a_configuration_error_is_one_line_naming_the_variable_and_the_fix():
    error = environment.ConfigurationError("FORGE_X", "it is wrong", "set it right")

    assert str(error) == "it is wrong (FORGE_X); set it right"
    assert isinstance(error, ImproperlyConfigured)
    named = environment.ConfigurationError("FORGE_X", "FORGE_X is wrong", "set it right")
    assert str(named) == "FORGE_X is wrong; set it right"


@pytest.mark.parametrize(
    ("call", "variable"),
    [
        (lambda: environment.get_bool({"X": "maybe"}, "X"), "X"),
        (lambda: environment.get_int({"X": "many"}, "X", 1), "X"),
        (lambda: environment.get_size({"X": "lots"}, "X"), "X"),
        (lambda: environment.external_url({"FORGE_EXTERNAL_URL": "cr"}), "FORGE_EXTERNAL_URL"),
        (lambda: environment.database({"DATABASE_URL": "x"}, BASE), "DATABASE_URL"),
        (lambda: environment.cache({"FORGE_CACHE_URL": "x://"}, BASE), "FORGE_CACHE_URL"),
        (lambda: environment.package_storage({"FORGE_STORAGE": "s4"}, BASE), "FORGE_STORAGE"),
        (lambda: environment.log_level({"FORGE_LOG_LEVEL": "loud"}), "FORGE_LOG_LEVEL"),
    ],
)
def test_every_bad_value_is_a_configuration_error_naming_its_variable(call, variable):
    with pytest.raises(environment.ConfigurationError) as raised:
        call()

    assert raised.value.variable == variable
    assert variable in str(raised.value)
    assert "\n" not in str(raised.value)
    assert raised.value.fix


def test_int_has_an_optional_maximum():
    assert environment.get_int({"PORT": "65535"}, "PORT", 8000, maximum=65535) == 65535
    with pytest.raises(environment.ConfigurationError, match="PORT must be at most 65535"):
        environment.get_int({"PORT": "70000"}, "PORT", 8000, maximum=65535)


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "nan", "inf"])
def test_seconds_must_be_a_positive_finite_number(raw):
    with pytest.raises(environment.ConfigurationError, match="X must be a positive number"):
        environment.get_seconds({"X": raw}, "X", 10)


def test_seconds_default_when_unset_and_take_fractions():
    assert environment.get_seconds({}, "X", 10) == 10
    assert environment.get_seconds({"X": "2.5"}, "X", 10) == 2.5


def test_log_level_is_a_name_logging_knows_in_any_case():
    assert environment.log_level({}) == "INFO"
    assert environment.log_level({"FORGE_LOG_LEVEL": "warning"}) == "WARNING"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("garbage", "is not a URL"),
        ("nosuchdb://x/y", "has an unknown scheme 'nosuchdb'"),
        ("postgres://forge:pw@db:notaport/forge", "is not a valid URL"),
        ("postgres://forge:pw@db:5432", "names no database"),
    ],
)
def test_a_bad_database_url_says_what_is_wrong_and_hides_the_password(url, problem):
    with pytest.raises(environment.ConfigurationError, match=problem) as raised:
        environment.database({"DATABASE_URL": url}, BASE)

    assert ":pw@" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgres://forge:s3cret@db:5432/x", "postgres://forge:***@db:5432/x"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("postgres://forge@db/x", "postgres://forge@db/x"),
        ("postgres://forge:pa/ss#w@db:5432/x", "postgres://forge:***@db:5432/x"),
        ("forge:s3cret@db", "forge:***@db"),
    ],
)
def test_redacted_urls_keep_everything_but_the_password(url, shown):
    assert environment.redacted_url(url) == shown


def test_a_data_dir_that_cannot_be_made_names_forge_data_dir(tmp_path):
    (tmp_path / "file").write_text("")

    for path in (tmp_path / "file", tmp_path / "file" / "data"):
        with pytest.raises(environment.ConfigurationError) as raised:
            environment.writable_data_dir(path)
        assert raised.value.variable == "FORGE_DATA_DIR"
        assert str(path) in str(raised.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a read-only directory")
def test_a_read_only_data_dir_is_not_writable(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o555)

    with pytest.raises(environment.ConfigurationError, match="not writable"):
        environment.writable_data_dir(data)


def test_a_missing_data_dir_is_made(tmp_path):
    assert environment.writable_data_dir(tmp_path / "a" / "b").is_dir()


def test_the_data_dir_need_not_be_writable_when_nothing_is_kept_there():
    elsewhere = {
        "DATABASE_URL": "postgres://db/forge",
        "FORGE_STORAGE": "s3",
        "FORGE_CACHE_URL": "redis://cache",
        "FORGE_SECRET_KEY": "k",
    }

    assert not environment.keeps_files_in_data_dir(elsewhere)
    for name in ("DATABASE_URL", "FORGE_CACHE_URL", "FORGE_SECRET_KEY"):
        assert environment.keeps_files_in_data_dir({**elsewhere, name: ""})
    assert environment.keeps_files_in_data_dir({**elsewhere, "FORGE_STORAGE": "fs"})


def test_a_secret_key_in_a_data_dir_that_cannot_be_made_names_forge_data_dir(tmp_path):
    (tmp_path / "file").write_text("")

    with pytest.raises(environment.ConfigurationError, match="FORGE_DATA_DIR"):
        environment.secret_key({}, tmp_path / "file" / "data")

"""Turns the process environment into the forge site's Django settings values.

Each function takes the environment as a mapping so tests can feed it any values;
`forge/settings.py` calls them with `os.environ`. Bad values raise
`ConfigurationError` naming the variable and the fix, so a typo fails at start-up
rather than on the first request, and manage.py and gunicorn (forge/startup.py) can
say so in one line.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})

SQLITE_FILE_NAME = "forge.sqlite3"
SECRET_KEY_FILE_NAME = "secret_key"

# psycopg's own default: a query is prepared on its fifth run on a connection.
PREPARE_THRESHOLD = 5
# WAL lets readers go on while one writer commits; IMMEDIATE takes the write lock
# when a transaction starts, so two writers queue on the busy timeout instead of
# one failing with "database is locked" when it upgrades a read lock.
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}

S3_VARIABLES = {
    "FORGE_S3_BUCKET": "bucket_name",
    "FORGE_S3_ENDPOINT_URL": "endpoint_url",
    "FORGE_S3_REGION": "region_name",
    "FORGE_S3_ACCESS_KEY": "access_key",
    "FORGE_S3_SECRET_KEY": "secret_key",
    "FORGE_S3_PREFIX": "location",
}
ADDRESSING_STYLES = ("auto", "path", "virtual")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DATA_DIR_FIX = "make it a directory this user can write to, or set FORGE_DATA_DIR to one that is"


class ConfigurationError(ImproperlyConfigured):
    """A variable of the environment has a value the site cannot run with.

    An `ImproperlyConfigured`, so Django treats it as any settings error; `str()` is
    one line saying what is wrong, naming the variable, and how to fix it.
    """

    def __init__(self, variable: str, problem: str, fix: str):
        self.variable = variable
        self.problem = problem
        self.fix = fix
        # The message is all an operator sees: it must name what to change.
        named = problem if variable in problem else f"{problem} ({variable})"
        super().__init__(f"{named}; {fix}")


def redacted_url(url: str) -> str:
    """`url` without its password, for messages: they end up in logs and terminals.

    Cut by hand, not by urlsplit: a malformed URL (an unquoted `/` or `#` in the
    password) is exactly the one that gets shown, and urlsplit would leave part of
    its password in the path. Everything up to the last `@` counts as user info.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{separator}{user}:***@{host}"


def get_bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """Read a yes/no variable; anything unrecognised is an error, not a silent False."""
    raw = env.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigurationError(
        name, f"{name} must be true or false, not {raw!r}", "set it to true or false, or unset it"
    )


def get_int(
    env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None
) -> int:
    """Read a whole number from `minimum` to `maximum`."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    fix = f"set it to a whole number of at least {minimum}" + (
        f" and at most {maximum}" if maximum is not None else ""
    )
    fix += f", or unset it for {default}"
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(name, f"{name} must be a whole number, not {raw!r}", fix) from None
    if value < minimum:
        raise ConfigurationError(name, f"{name} must be at least {minimum}, not {value}", fix)
    if maximum is not None and value > maximum:
        raise ConfigurationError(name, f"{name} must be at most {maximum}, not {value}", fix)
    return value


def get_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """Read a positive number of seconds, such as 10 or 2.5."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    # NaN and infinity parse as floats but are no timeout.
    if not 0 < value < float("inf"):
        raise ConfigurationError(
            name,
            f"{name} must be a positive number of seconds, not {raw!r}",
            f"set it to a number such as {default:g}, or unset it for {default:g}",
        )
    return value


SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def get_size(env: Mapping[str, str], name: str, default: int = -1) -> int:
    """A byte count like `500MiB`, `10GB` or `1048576`; -1 (the default) is unlimited."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw == "-1":
        return -1
    number = raw.rstrip("KMGTBibktmg")
    unit = raw[len(number) :].strip().lower()
    try:
        value = float(number.strip())
    except ValueError:
        value = -2
    if unit not in SIZE_UNITS or value < 0:
        raise ConfigurationError(
            name,
            f"{name} must be a size like 500MiB or 10GB, or -1 for unlimited, not {raw!r}",
            "set it to a size such as 500MiB, or to -1 (or unset it) for no limit",
        )
    return int(value * SIZE_UNITS[unit])


def get_list(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """Read a comma-separated variable, dropping blanks."""
    raw = env.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def data_dir(env: Mapping[str, str], base_dir: Path) -> Path:
    """Where the SQLite file, the blobs and upload staging live."""
    raw = env.get("FORGE_DATA_DIR", "").strip()
    path = Path(raw) if raw else base_dir / "data"
    if not path.is_absolute():
        path = base_dir / path
    return path


def keeps_files_in_data_dir(env: Mapping[str, str]) -> bool:
    """Whether the site writes to the data dir: the SQLite database, blobs on local
    disk, the file cache or a generated secret key. With all four elsewhere it may be
    read-only (static files collected into an image).
    """
    elsewhere = ("DATABASE_URL", "FORGE_CACHE_URL", "FORGE_SECRET_KEY")
    storage = env.get("FORGE_STORAGE", "").strip().lower()
    return storage in ("", "fs") or not all(env.get(name, "").strip() for name in elsewhere)


def writable_data_dir(path: Path) -> Path:
    """`path`, made if missing; a ConfigurationError if it cannot be made or written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = "it is a file" if isinstance(exc, FileExistsError) else exc.strerror
        raise ConfigurationError(
            "FORGE_DATA_DIR",
            f"the data dir {path} (FORGE_DATA_DIR) cannot be made: {reason}",
            DATA_DIR_FIX,
        ) from None
    # access() answers for this user, and for root too on a read-only file system.
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigurationError(
            "FORGE_DATA_DIR",
            f"the data dir {path} (FORGE_DATA_DIR) is not writable by this user",
            DATA_DIR_FIX,
        )
    return path


def external_url(env: Mapping[str, str]) -> str:
    """The URL clients reach the site at, without a trailing slash; '' if unset."""
    raw = env.get("FORGE_EXTERNAL_URL", "").strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            "FORGE_EXTERNAL_URL",
            f"FORGE_EXTERNAL_URL must be an absolute http(s) URL, not {raw!r}",
            "set it to the URL clients reach, such as https://cr.example.com, or unset it",
        )
    return raw.rstrip("/")


def allowed_hosts(env: Mapping[str, str]) -> list[str]:
    """Hosts Django answers for: the variable (default loopback), plus the external URL's host."""
    hosts = get_list(env, "FORGE_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
    url = external_url(env)
    hostname = urlsplit(url).hostname if url else None
    if hostname and hostname not in hosts:
        hosts.append(hostname)
    return hosts


def database(env: Mapping[str, str], data_path: Path) -> dict:
    """The default database: DATABASE_URL, or a SQLite file in the data dir."""
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(data_path / SQLITE_FILE_NAME)}
    else:
        config = _parse_database_url(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with a health check that costs no round trip.
        config["ENGINE"] = "packages_core.postgresql"
        config["OPTIONS"] = _postgresql_options(config.get("OPTIONS", {}))
    # Reuse connections across requests: opening one (and, on SQLite, its PRAGMAs)
    # costs more than a manifest HEAD. Health checks drop ones the server closed.
    config["CONN_MAX_AGE"] = config.get("CONN_MAX_AGE") or 60
    config["CONN_HEALTH_CHECKS"] = True
    return config


def _postgresql_options(options: dict) -> dict:
    """psycopg's prepared statements on, unless the URL says `?prepare_threshold=off`.

    The registry's per-request lookups (packages_core/prepared.py) are then planned once
    per connection. Off is for PgBouncer in transaction mode before 1.21, which cannot
    keep prepared statements.
    """
    threshold = options.get("prepare_threshold", PREPARE_THRESHOLD)
    if isinstance(threshold, str) and threshold.lower() in ("off", "none", ""):
        threshold = None
    return {**options, "prepare_threshold": threshold}


def _parse_database_url(url: str) -> dict:
    fix = "set it to postgres://user:password@host:5432/name, or unset it for SQLite"
    shown = redacted_url(url)
    try:
        config = dj_database_url.parse(url)
    except dj_database_url.UnknownSchemeError:
        scheme = url.partition("://")[0] if "://" in url else ""
        problem = (
            f"DATABASE_URL {shown!r} has an unknown scheme {scheme!r}"
            if scheme
            else f"DATABASE_URL {shown!r} is not a URL"
        )
        raise ConfigurationError("DATABASE_URL", problem, fix) from None
    except (ValueError, KeyError):
        raise ConfigurationError(
            "DATABASE_URL",
            f"DATABASE_URL {shown!r} is not a valid URL",
            "check the port, and write reserved characters in the password as %XX "
            "(@ as %40, / as %2F, : as %3A)",
        ) from None
    if not config.get("NAME") and not config.get("OPTIONS", {}).get("service"):
        raise ConfigurationError("DATABASE_URL", f"DATABASE_URL {shown!r} names no database", fix)
    return config


CACHE_SCHEMES = ("redis", "rediss", "unix")


def cache(env: Mapping[str, str], data_path: Path) -> dict:
    """The default cache, which every worker (and node) shares: Redis at FORGE_CACHE_URL,
    else files in the data dir (enough for one machine, nothing else to run).
    """
    url = env.get("FORGE_CACHE_URL", "").strip()
    if not url:
        return {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(data_path / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 10000},
        }
    if urlsplit(url).scheme not in CACHE_SCHEMES:
        raise ConfigurationError(
            "FORGE_CACHE_URL",
            f"FORGE_CACHE_URL must be a redis://, rediss:// or unix:// URL, "
            f"not {redacted_url(url)!r}",
            "set it to redis://host:6379/0, or unset it to keep the cache in the data dir",
        )
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "forge",
        # A Redis that is down or stalls costs a request a second at most: the
        # registry goes on without the cache (registry/shared_cache.py).
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }


def package_storage(env: Mapping[str, str], data_path: Path) -> dict:
    """The STORAGES entry the content store writes blobs through.

    A missing bucket is left for the system check (packages.E004) to report.
    """
    kind = env.get("FORGE_STORAGE", "fs").strip().lower() or "fs"
    if kind == "fs":
        return {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(data_path / "packages"), "base_url": None},
        }
    if kind != "s3":
        raise ConfigurationError(
            "FORGE_STORAGE",
            f"FORGE_STORAGE must be fs or s3, not {kind!r}",
            "set it to fs (files in the data dir) or s3 (with FORGE_S3_BUCKET)",
        )
    options = {
        option: env[variable].strip()
        for variable, option in S3_VARIABLES.items()
        if env.get(variable, "").strip()
    }
    if "location" in options:
        options["location"] = options["location"].strip("/")
    style = env.get("FORGE_S3_ADDRESSING_STYLE", "").strip() or "auto"
    if style not in ADDRESSING_STYLES:
        raise ConfigurationError(
            "FORGE_S3_ADDRESSING_STYLE",
            f"FORGE_S3_ADDRESSING_STYLE must be auto, path or virtual, not {style!r}",
            "set it to auto, path (MinIO and most S3 servers of your own) or virtual",
        )
    options.update(
        {
            # Blobs are content-addressed: the same key always holds the same bytes,
            # so overwriting is safe and saves django-storages a HEAD per save.
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
            # Fail fast on an unreachable endpoint instead of boto3's minute-long waits.
            # Bodies stream in with no length known, and boto3 holds each multipart
            # chunk in memory until it is sent: at most two 8 MiB chunks per upload.
            "transfer_config": _transfer_config(),
            "client_config": Config(
                s3={"addressing_style": style},
                signature_version="s3v4",
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        }
    )
    return {"BACKEND": "packages_core.s3.S3Storage", "OPTIONS": options}


def _transfer_config() -> TransferConfig:
    config = TransferConfig(
        multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=2
    )
    # s3transfer's own knob, which boto3's constructor does not take (default 10).
    config.max_in_memory_upload_chunks = 2
    return config


def serving(env: Mapping[str, str]) -> dict:
    """How blobs leave: REGISTRY settings for direct (presigned) URLs and X-Accel-Redirect.

    The expiry is passed on as given; the registry's system check (registry.E004)
    reports a value that is not a positive number of seconds.
    """
    return {
        "SERVE_DIRECT": get_bool(env, "FORGE_SERVE_DIRECT", True),
        "URL_EXPIRY": env.get("FORGE_S3_URL_EXPIRY", "").strip() or 300,
        "ACCEL_REDIRECT_PREFIX": env.get("FORGE_ACCEL_REDIRECT_PREFIX", "").strip(),
    }


def secret_key(env: Mapping[str, str], data_path: Path) -> str:
    """FORGE_SECRET_KEY, or one generated once and kept in the data dir.

    Every gunicorn worker and every restart must sign with the same key, so the
    generated key is written with O_EXCL: when workers race, one file wins and
    all of them read it.
    """
    given = env.get("FORGE_SECRET_KEY", "").strip()
    if given:
        return given
    path = data_path / SECRET_KEY_FILE_NAME
    if not path.exists():
        writable_data_dir(data_path)
        # Write a private file, then publish it with link(): readers never see a
        # half-written key, and link() fails for every racer but the first.
        draft = data_path / f".{SECRET_KEY_FILE_NAME}.{secrets.token_hex(8)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if not key:
        raise ConfigurationError(
            "FORGE_SECRET_KEY",
            f"the secret key file {path} is empty and FORGE_SECRET_KEY is unset",
            "delete the file (a new key is made) or set FORGE_SECRET_KEY",
        )
    return key


def log_level(env: Mapping[str, str]) -> str:
    """FORGE_LOG_LEVEL as a name `logging` knows."""
    raw = env.get("FORGE_LOG_LEVEL", "").strip()
    level = raw.upper() or "INFO"
    if level not in LOG_LEVELS:
        raise ConfigurationError(
            "FORGE_LOG_LEVEL",
            f"FORGE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {raw!r}",
            "set it to INFO, or unset it",
        )
    return level

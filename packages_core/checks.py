"""System checks for packages_core's settings (ids packages.E0xx / W0xx)."""

import ipaddress

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from packages_core.conf import packages_settings

# The tag of checks that call a service over the network. They are deployment checks,
# run by `manage.py check --deploy` and by a server as it starts (forge/startup.py runs
# this tag), not before every management command: a `migrate` or `shell` must not wait
# on, or fail for, a bucket it does not touch.
NETWORK = "network"

S3_BACKENDS = (
    "packages_core.s3.S3Storage",
    "storages.backends.s3.S3Storage",
    "storages.backends.s3boto3.S3Boto3Storage",
)


def register() -> None:
    checks.register(check_settings)
    checks.register(check_storage)
    checks.register(check_bucket_exists, NETWORK, deploy=True)
    checks.register(check_sqlite_wal, checks.Tags.database)


def check_settings(app_configs=None, **kwargs):
    errors = []
    try:
        unknown = packages_settings.unknown_keys()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="packages.E002")]
    if unknown:
        errors.append(
            checks.Error(
                f"Unknown key(s) in settings.PACKAGES: {', '.join(unknown)}.",
                hint="Settings and their defaults: docs/configuration.md, packages_core/conf.py.",
                id="packages.E002",
            )
        )
    try:
        packages_settings.ACCESS_ADAPTER  # noqa: B018 - importing it is the check
    except ImportError as exc:
        errors.append(
            checks.Error(
                f"PACKAGES['ACCESS_ADAPTER'] cannot be imported: {exc}",
                id="packages.E003",
            )
        )
    errors += seconds_errors(packages_settings, "IDENTITY_CACHE_SECONDS", id="packages.E006")
    errors += bool_errors(packages_settings, "ALLOW_ORG_CREATION", id="packages.E009")
    errors += webhook_errors()
    for proxy in packages_settings.TRUSTED_PROXIES:
        if proxy.strip() == "*":
            continue
        try:
            ipaddress.ip_network(proxy.strip(), strict=False)
        except ValueError:
            errors.append(
                checks.Error(
                    f"PACKAGES['TRUSTED_PROXIES'] holds {proxy!r}, which is not an address "
                    "or network.",
                    hint='Addresses or networks such as "10.0.0.0/8", or "*" for any '
                    "(FORGE_FORWARDED_ALLOW_IPS in the bundled forge site).",
                    id="packages.E007",
                )
            )
    if packages_settings.CACHE not in settings.CACHES:
        errors.append(
            checks.Error(
                f"PACKAGES['CACHE'] names the cache {packages_settings.CACHE!r}, "
                "which is not in settings.CACHES.",
                id="packages.E008",
            )
        )
    return errors


def webhook_errors() -> list[checks.Error]:
    """The webhook settings: numbers where numbers belong, a list of host names."""
    errors = []
    for name in (
        "WEBHOOK_TIMEOUT",
        "WEBHOOK_RETRY_BASE_SECONDS",
        "WEBHOOK_RETRY_MAX_SECONDS",
        "WEBHOOK_CACHE_SECONDS",
        "WEBHOOK_POLL_SECONDS",
    ):
        errors += seconds_errors(packages_settings, name, id="packages.E010")
    for name in ("WEBHOOK_MAX_ATTEMPTS", "WEBHOOK_RESPONSE_LIMIT"):
        value = getattr(packages_settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            errors.append(
                checks.Error(
                    f"PACKAGES[{name!r}] must be a whole number, 1 or more; it is {value!r}.",
                    id="packages.E011",
                )
            )
    errors += host_list_errors(packages_settings, "WEBHOOK_ALLOWED_HOSTS", id="packages.E012")
    return errors


def host_list_errors(app_settings, name: str, *, id: str) -> list[checks.Error]:
    """An error unless the setting is a list of host names (a lone string is not: it
    would be read as a list of letters).
    """
    hosts = getattr(app_settings, name)
    if not isinstance(hosts, str) and all(isinstance(host, str) for host in hosts):
        return []
    return [
        checks.Error(
            f"{app_settings.setting_name}[{name!r}] must be a list of host names; it is {hosts!r}.",
            hint=f"FORGE_{name} in the bundled forge site (comma-separated).",
            id=id,
        )
    ]


def seconds_errors(app_settings, name: str, *, id: str) -> list[checks.Error]:
    """An error if the setting is not a number of seconds, 0 or more (NaN is not)."""
    seconds = getattr(app_settings, name)
    if not isinstance(seconds, bool) and isinstance(seconds, (int, float)) and seconds >= 0:
        return []
    return [
        checks.Error(
            f"{app_settings.setting_name}[{name!r}] must be a number of seconds, 0 or more; "
            f"it is {seconds!r}.",
            id=id,
        )
    ]


def bool_errors(app_settings, name: str, *, id: str) -> list[checks.Error]:
    """An error unless the setting is True or False: a string such as "false" is truthy,
    so it would quietly mean the opposite of what was written.
    """
    value = getattr(app_settings, name)
    if isinstance(value, bool):
        return []
    return [
        checks.Error(
            f"{app_settings.setting_name}[{name!r}] must be True or False; it is {value!r}.",
            id=id,
        )
    ]


def check_storage(app_configs=None, **kwargs):
    alias = packages_settings.STORAGE_ALIAS
    config = settings.STORAGES.get(alias)
    if config is None:
        return [
            checks.Error(
                f"settings.STORAGES has no {alias!r} alias for package blobs.",
                hint=f"Add STORAGES[{alias!r}] or set PACKAGES['STORAGE_ALIAS'].",
                id="packages.E001",
            )
        ]
    # django-storages also takes the bucket from its global AWS_STORAGE_BUCKET_NAME.
    bucket = config.get("OPTIONS", {}).get("bucket_name") or getattr(
        settings, "AWS_STORAGE_BUCKET_NAME", None
    )
    if config.get("BACKEND") in S3_BACKENDS and not bucket:
        return [
            checks.Error(
                f"STORAGES[{alias!r}] uses S3 without a bucket_name.",
                hint="Set OPTIONS['bucket_name'] (FORGE_S3_BUCKET in the forge site).",
                id="packages.E004",
            )
        ]
    return []


def check_bucket_exists(app_configs=None, **kwargs):
    """An S3 bucket must exist and be reachable; the registry never creates one."""
    config = settings.STORAGES.get(packages_settings.STORAGE_ALIAS) or {}
    if config.get("BACKEND") not in S3_BACKENDS:
        return []
    # Only a site that stores blobs in S3 has botocore (the wheel's s3 extra).
    from botocore.exceptions import BotoCoreError, ClientError

    # A storage of our own, not the cached one: this may run in gunicorn's master
    # before it forks, and boto3 connections must not be shared across processes.
    storage = import_string(config["BACKEND"])(**config.get("OPTIONS", {}))
    if not storage.bucket_name:
        return []  # packages.E004 says so
    try:
        storage.connection.meta.client.head_bucket(Bucket=storage.bucket_name)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        problem = (
            "does not exist"
            if code in ("404", "NoSuchBucket", "NotFound")
            else f"is not accessible ({code})"
        )
        return [
            checks.Error(
                f"The S3 bucket {storage.bucket_name!r} {problem}.",
                hint="Create it, or check FORGE_S3_BUCKET and the credentials; the registry "
                "does not create buckets.",
                id="packages.E005",
            )
        ]
    except BotoCoreError as exc:
        return [
            checks.Error(
                f"The S3 endpoint for bucket {storage.bucket_name!r} cannot be reached: {exc}",
                hint="Check FORGE_S3_ENDPOINT_URL and FORGE_S3_REGION.",
                id="packages.E005",
            )
        ]
    return []


def check_sqlite_wal(app_configs=None, databases=None, **kwargs):
    warnings = []
    for alias, config in settings.DATABASES.items():
        if config.get("ENGINE") != "django.db.backends.sqlite3":
            continue
        init = config.get("OPTIONS", {}).get("init_command", "").lower().replace(" ", "")
        if "journal_mode=wal" not in init:
            warnings.append(
                checks.Warning(
                    f"SQLite database {alias!r} does not run in WAL mode.",
                    hint="Concurrent pushes will fail with 'database is locked'. Set "
                    "OPTIONS init_command 'PRAGMA journal_mode=WAL;', a timeout and "
                    "transaction_mode 'IMMEDIATE'.",
                    id="packages.W001",
                )
            )
    return warnings

"""System checks for the registry's settings and mounting (ids registry.E0xx / W0xx)."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from packages_core.checks import bool_errors, host_list_errors, seconds_errors
from packages_core.conf import packages_settings
from registry.conf import MOVED_TO_PACKAGES, registry_settings

LOCAL_CACHES = ("django.core.cache.backends.locmem.LocMemCache",)


def register() -> None:
    checks.register(check_settings)
    checks.register(check_mounted_at_root, checks.Tags.urls)
    # What only matters in production is checked by `manage.py check --deploy`.
    checks.register(check_deployment, deploy=True)


def check_settings(app_configs=None, **kwargs):
    try:
        unknown = registry_settings.unknown_keys()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="registry.E002")]
    problems = []
    moved = [key for key in unknown if key in MOVED_TO_PACKAGES]
    unknown = [key for key in unknown if key not in MOVED_TO_PACKAGES]
    if moved:
        problems.append(
            checks.Error(
                f"settings.REGISTRY holds {', '.join(moved)}, which moved to settings.PACKAGES.",
                hint="The REST API shares them with /v2; move the keys as they are.",
                id="registry.E008",
            )
        )
    if unknown:
        problems.append(
            checks.Error(
                f"Unknown key(s) in settings.REGISTRY: {', '.join(unknown)}.",
                hint="The settings and their defaults: docs/configuration.md (registry/conf.py).",
                id="registry.E002",
            )
        )
    expiry = registry_settings.URL_EXPIRY
    if isinstance(expiry, bool) or not str(expiry).strip().isdigit() or int(expiry) <= 0:
        problems.append(
            checks.Error(
                f"REGISTRY['URL_EXPIRY'] must be a positive number of seconds, not {expiry!r}.",
                hint="Seconds, e.g. 300 (FORGE_S3_URL_EXPIRY in the bundled forge site).",
                id="registry.E004",
            )
        )
    problems += seconds_errors(registry_settings, "PULL_CACHE_SECONDS", id="registry.E007")
    problems += bool_errors(registry_settings, "ALLOW_SIGNUP", id="registry.E009")
    problems += host_list_errors(registry_settings, "MIRROR_ALLOWED_HOSTS", id="registry.E010")
    problems += seconds_errors(registry_settings, "MIRROR_TIMEOUT", id="registry.E011")
    size = registry_settings.MAX_MANIFEST_SIZE
    if type(size) is not int or size <= 0:
        # Checked here rather than at the first manifest push, which would be a 500.
        problems.append(
            checks.Error(
                f"REGISTRY['MAX_MANIFEST_SIZE'] must be a positive number of bytes, not {size!r}.",
                hint="An int, e.g. 20 * 1024 * 1024; the default is 10 MiB.",
                id="registry.E006",
            )
        )
    return problems


def check_deployment(app_configs=None, **kwargs):
    problems = []
    if not registry_settings.EXTERNAL_URL:
        problems.append(
            checks.Warning(
                "REGISTRY['EXTERNAL_URL'] is not set; the token realm is taken from each "
                "request's Host header.",
                hint="Set REGISTRY['EXTERNAL_URL'] to the URL clients use, e.g. "
                "https://registry.example.com (FORGE_EXTERNAL_URL in the bundled forge site).",
                id="registry.W001",
            )
        )
    alias = packages_settings.CACHE
    if settings.CACHES.get(alias, {}).get("BACKEND", "") in LOCAL_CACHES:
        problems.append(
            checks.Warning(
                f"The {alias!r} cache is private to each process, so failed sign-ins are "
                "counted per worker, and a worker may answer a pull from what it found up "
                "to PULL_CACHE_SECONDS before a push through another.",
                hint="Use a cache the workers share (file-based, database, Redis, memcached).",
                id="registry.W002",
            )
        )
    return problems


def check_mounted_at_root(app_configs=None, **kwargs):
    try:
        ping = reverse("registry:ping")
    except NoReverseMatch:
        return [
            checks.Error(
                "The registry URLs are not installed.",
                hint='Add path("", include("registry.urls")) to the root URLconf.',
                id="registry.E001",
            )
        ]
    if ping.rstrip("/") != "/v2":
        return [
            checks.Error(
                f"The registry is mounted at {ping}; Docker clients only look at /v2/.",
                hint='Include registry.urls at the root: path("", include("registry.urls")).',
                id="registry.E001",
            )
        ]
    return []

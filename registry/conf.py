"""The `REGISTRY` settings dict: documented defaults, read when first used."""

from packages_core.conf import AppSettings

DEFAULTS = {
    # The URL clients reach the site at (token realm, pull commands); '' derives it
    # from each request's host.
    "EXTERNAL_URL": "",
    # Manifests larger than this are refused with 413 (the OCI spec's suggestion).
    "MAX_MANIFEST_SIZE": 10 * 1024 * 1024,
    # Answer blob and manifest GETs with a 307 to the storage's own (presigned) URL
    # when it has one; False streams them through the registry.
    "SERVE_DIRECT": True,
    # How long such a URL stays valid, in seconds.
    "URL_EXPIRY": 300,
    # For local disk behind nginx: a URL prefix of an `internal` location that maps
    # to the blob storage directory; blob GETs then answer with X-Accel-Redirect and
    # nginx sends the file. Empty: the registry sends it.
    "ACCEL_REDIRECT_PREFIX": "",
    # Lifetime of Bearer tokens from /v2/token, in seconds. Clients fetch a new one
    # when it runs out; a request that started in time finishes however long it takes.
    "TOKEN_LIFETIME": 3600,
    # How long, in seconds at most, a process reuses a manifest a pull found, while no
    # image or owner has changed (registry/pull_cache.py); 0 asks the database on every
    # pull.
    "PULL_CACHE_SECONDS": 10,
    # The Bearer token (or Basic password) a Prometheus scraper presents at
    # /-/metrics; empty turns the endpoint off (404).
    "METRICS_TOKEN": "",
    # What the web pages call the site, in titles and the header.
    "SITE_NAME": "Container registry",
    # True: the pages offer a sign-up form where anyone makes themselves an account
    # (registry.web's /-/signup). Off by default: the site's admins make accounts.
    "ALLOW_SIGNUP": False,
    # Hosts a mirror may fetch from although they resolve to loopback, private or
    # link-local addresses ("*": any); others must be public (docs/mirrors.md).
    "MIRROR_ALLOWED_HOSTS": [],
    # Seconds a mirror waits on its upstream: to connect, and for each read.
    "MIRROR_TIMEOUT": 30,
}

# Keys that moved to PACKAGES, which the API shares with /v2; the check names the new place.
MOVED_TO_PACKAGES = frozenset(
    {"CACHE", "SIGNIN_FAILURE_LIMIT", "SIGNIN_FAILURE_WINDOW", "TRUSTED_PROXIES"}
)

registry_settings = AppSettings("REGISTRY", DEFAULTS)

"""The `REGISTRY` settings dict: documented defaults, read lazily on every access."""

from packages_core.conf import AppSettings

DEFAULTS = {
    # The URL clients reach the site at (token realm, pull commands); '' derives it
    # from each request's host.
    "EXTERNAL_URL": "",
    # Manifests larger than this are refused with 413 (the OCI spec's suggestion).
    "MAX_MANIFEST_SIZE": 10 * 1024 * 1024,
    # Serve blobs by redirecting to the storage's own (presigned) URL when it has one.
    "REDIRECT_BLOBS": True,
    # How long a redirect URL stays valid, in seconds.
    "REDIRECT_EXPIRY": 300,
}

registry_settings = AppSettings("REGISTRY", DEFAULTS)
